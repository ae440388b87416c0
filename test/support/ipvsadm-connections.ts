/**
 * The simulator's connection table as `ipvsadm -L -n -c` prints it (list_conn / print_conn of ipvsadm 1.31), through
 * the one writer of that listing, `writeIpvsadmConnectionList`. Rows come in the table's creation order; the kernel
 * prints hash-table order, which is randomised per boot, so only the set of rows is comparable with a real listing.
 */
import type { Ipv4 } from '../../src/addr/ipv4.ts';
import type { Connection, ConnectionTable } from '../../src/ipvs/conn-table.ts';
import { type ConnectionRow, writeIpvsadmConnectionList } from '../../src/ipvs/ipvsadm-conn-list.ts';
import { TCP_STATE_NAMES } from '../../src/ipvs/tcp-state.ts';

function protoName(p: number): string {
  return p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : p === 0 ? 'IP' : `IP_${p}`;
}

function stateName(c: Connection): string {
  if (c.template) return c.assured ? 'ASSURED' : 'NONE';
  if (c.protocol === 17) return 'UDP';
  return TCP_STATE_NAMES[c.state] ?? 'ERR!';
}

const ipv4 = (n: number) => ({ family: 'ipv4', addr: (n >>> 0) as Ipv4 }) as const;

/** One connection as a listing row at time `now` (ms): `expires` is the remaining time in whole seconds. */
export function connectionRow(c: Connection, now: number): ConnectionRow {
  return {
    protocol: protoName(c.protocol),
    expires: Math.max(0, Math.trunc((c.expiresAt - now) / 1000)),
    state: stateName(c),
    source: { address: ipv4(c.caddr), port: c.cport },
    virtual: { address: ipv4(c.vaddr), port: c.vport },
    destination: { address: c.daddr, port: c.dport },
  };
}

/** The whole `ipvsadm -L -n -c` output at time `now` (ms). Expires due entries first. */
export function writeIpvsadmConnections(table: ConnectionTable, now: number): string {
  table.expire(now);
  return writeIpvsadmConnectionList([...table.entries()].map((c) => connectionRow(c, now)));
}
