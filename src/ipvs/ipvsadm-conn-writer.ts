/**
 * `ipvsadm -L -n -c` (list_conn / print_conn of ipvsadm 1.31). Rows come in the table's creation order; the kernel
 * prints hash-table order, which is randomised per boot, so only the set of rows is comparable with a real listing.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import type { Connection, ConnectionTable } from './conn-table.ts';
import { formatAddrPort } from './model.ts';
import { TCP_STATE_NAMES } from './tcp-state.ts';

function protoName(p: number): string {
  return p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : p === 0 ? 'IP' : `IP_${p}`;
}

function stateName(c: Connection): string {
  if (c.template) return c.assured ? 'ASSURED' : 'NONE';
  if (c.protocol === 17) return 'UDP';
  return TCP_STATE_NAMES[c.state] ?? 'ERR!';
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** One row of `ipvsadm -Lnc`; `expire` is the remaining time, `mm:ss` with minutes not capped. */
export function connectionRow(c: Connection, now: number): string {
  const secs = Math.max(0, Math.trunc((c.expiresAt - now) / 1000));
  const expire = `${two(Math.trunc(secs / 60))}:${two(secs % 60)}`;
  const source = `${formatIpv4(c.caddr as never)}:${c.cport}`;
  const virt = `${formatIpv4((c.vaddr >>> 0) as never)}:${c.vport}`;
  const dest = formatAddrPort(c.daddr, c.dport);
  return `${protoName(c.protocol).padEnd(3)} ${expire.padEnd(6)} ${stateName(c).padEnd(11)} ${source.padEnd(18)} ${virt.padEnd(18)} ${dest}`;
}

/** The whole `ipvsadm -L -n -c` output at time `now` (ms). Expires due entries first. */
export function writeIpvsadmConnections(table: ConnectionTable, now: number): string {
  table.expire(now);
  let out = 'IPVS connection entries\n';
  out += `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} destination\n`;
  for (const c of table.entries()) out += connectionRow(c, now) + '\n';
  return out;
}
