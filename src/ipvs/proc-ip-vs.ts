/**
 * `/proc/net/ip_vs` (`ip_vs_info_seq_show`): the kernel's own table listing, in KERNEL order (services in hash order,
 * destinations newest first), addresses and ports in hex (IPv6 uncompressed), fwmarks in hex, no scheduler flags,
 * `persistent <timeout> <netmask hex>`. IPv4 service lines end in two spaces, IPv6/fwmark ones in one. Read and written
 * byte for byte.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { formatIpv6Groups, ipv6ToGroups } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Origin } from '../source/origin.ts';
import {
  type Forwarding,
  formatAddrPort,
  formatServiceKey,
  type IpAddress,
  type IpvsDestination,
  type IpvsHeader,
  type IpvsProtocol,
  type IpvsService,
  type IpvsTable,
  type Persistence,
  type ServiceKey,
} from './model.ts';

export interface ProcIpVs {
  readonly header?: IpvsHeader;
  /** `order: 'kernel'`. */
  readonly table: IpvsTable;
}

function hex(n: number, width: number): string {
  return (n >>> 0).toString(16).toUpperCase().padStart(width, '0');
}

function procAddr(a: IpAddress): string {
  if (a.family === 'ipv4') return hex(a.addr, 8);
  return `[${ipv6ToGroups(a.addr)
    .map((g) => g.toString(16).padStart(4, '0'))
    .join(':')}]`;
}

function procFwdName(f: Forwarding | undefined): string {
  switch (f?.kind) {
    case 'local':
      return 'Local';
    case 'tunnel':
      return 'Tunnel';
    case 'route':
      return 'Route';
    default:
      return 'Masq';
  }
}

/** `/proc/net/ip_vs` for a table (taken in its order, which should be the kernel's). */
export function writeProcIpVs(table: IpvsTable, header: IpvsHeader = { version: '1.2.1', size: 4096 }): string {
  let out = `IP Virtual Server version ${header.version} (size=${header.size})\n`;
  out += 'Prot LocalAddress:Port Scheduler Flags\n';
  out += '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n';
  for (const s of table.services) {
    const k = s.key;
    const sched = s.scheduler ?? 'wlc';
    const ops = s.onePacket ? 'ops ' : '';
    if (k.kind === 'fwmark') out += `FWM  ${hex(k.fwmark, 8)} ${sched} ${ops}`;
    else if (k.address.family === 'ipv4')
      out += `${k.protocol}  ${procAddr(k.address)}:${hex(k.port, 4)} ${sched} ${ops} `;
    else out += `${k.protocol}  ${procAddr(k.address)}:${hex(k.port, 4)} ${sched} `;
    const p = s.persistence;
    out += p ? `persistent ${p.timeout} ${hex(p.netmask, 8)}\n` : '\n';
    for (const d of s.destinations)
      out += `  -> ${procAddr(d.address)}:${hex(d.port, 4)}      ${procFwdName(d.forwarding).padEnd(7)} ${String(d.weight ?? 0).padEnd(6)} ${String(d.activeConns ?? 0).padEnd(10)} ${String(d.inactConns ?? 0).padEnd(10)}\n`;
  }
  return out;
}

function parseProcAddrPort(text: string): { address: IpAddress; port: number } | undefined {
  let m = /^([0-9A-Fa-f]{8}):([0-9A-Fa-f]{4})$/.exec(text);
  if (m)
    return {
      address: { family: 'ipv4', addr: (Number.parseInt(m[1]!, 16) >>> 0) as Ipv4 },
      port: Number.parseInt(m[2]!, 16),
    };
  m = /^\[([0-9A-Fa-f:]+)\]:([0-9A-Fa-f]{4})$/.exec(text);
  if (m) {
    const g = m[1]!.split(':');
    if (g.length !== 8 || !g.every((x) => /^[0-9A-Fa-f]{1,4}$/.test(x))) return undefined;
    return {
      address: { family: 'ipv6', addr: formatIpv6Groups(g.map((x) => Number.parseInt(x, 16))) },
      port: Number.parseInt(m[2]!, 16),
    };
  }
  return undefined;
}

const FORWARD: Readonly<Record<string, Forwarding>> = {
  Masq: { kind: 'masq' },
  Route: { kind: 'route' },
  Tunnel: { kind: 'tunnel' },
  Local: { kind: 'local' },
};

interface MutableService {
  key: ServiceKey;
  scheduler: string;
  schedFlags: number;
  persistence?: Persistence;
  onePacket: boolean;
  destinations: IpvsDestination[];
  origin: Origin;
}

/** Reads `/proc/net/ip_vs`. Never throws; whitespace may be collapsed and trailing spaces stripped. */
export function readProcIpVs(text: string, file: string): ReadResult<ProcIpVs> {
  const issues: Issue[] = [];
  const services: MutableService[] = [];
  let header: IpvsHeader | undefined;
  let current: MutableService | undefined;
  let started = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const t = raw.trim().split(/\s+/);
    const pos = filePos(file, i + 1);
    if (t[0] === '') continue;
    if (t[0] === 'IP' && t[1] === 'Virtual') {
      const m = /^IP Virtual Server version (\d+\.\d+\.\d+) \(size=(\d+)\)$/.exec(t.join(' '));
      if (m) header = { version: m[1]!, size: Number(m[2]) };
      else issues.push(issue('proc-ip-vs-bad-header', `expected 'IP Virtual Server version X.Y.Z (size=N)'`, pos));
      started = true;
      continue;
    }
    if (t[0] === 'Prot' || (t[0] === '->' && t[1] === 'RemoteAddress:Port')) {
      started = true;
      continue;
    }
    if (t[0] === '->') {
      started = true;
      if (current === undefined) {
        issues.push(issue('proc-ip-vs-orphan-destination', 'real server line before any service', pos));
        continue;
      }
      const ap = t[1] === undefined ? undefined : parseProcAddrPort(t[1]);
      const fwd = FORWARD[t[2] ?? ''];
      const nums = t.slice(3).map((x) => (/^-?[0-9]+$/.test(x) ? Number(x) : undefined));
      if (ap === undefined || fwd === undefined || nums.length !== 3 || nums.some((x) => x === undefined)) {
        issues.push(
          issue(
            'proc-ip-vs-bad-destination',
            `expected '  -> HEXADDR:HEXPORT Forward Weight ActiveConn InActConn', got '${raw.trim()}'`,
            pos,
          ),
        );
        continue;
      }
      const svcOrigin = current.origin;
      current.destinations.push({
        address: ap.address,
        port: ap.port,
        forwarding: fwd,
        weight: nums[0]!,
        activeConns: nums[1]!,
        inactConns: nums[2]!,
        origin: {
          kind: 'ipvs',
          label: `/proc/net/ip_vs real server ${formatAddrPort(ap.address, ap.port)} of ${formatServiceKey(current.key)}`,
          pos,
          via: svcOrigin,
        },
      });
      continue;
    }
    started = true;
    current = undefined;
    let key: ServiceKey | undefined;
    if (t[0] === 'FWM' && t[1] !== undefined && /^[0-9A-Fa-f]{8}$/.test(t[1])) {
      key = { kind: 'fwmark', fwmark: Number.parseInt(t[1], 16) >>> 0, family: 'ipv4' };
    } else if (t[0] === 'TCP' || t[0] === 'UDP' || t[0] === 'SCTP') {
      const ap = t[1] === undefined ? undefined : parseProcAddrPort(t[1]);
      if (ap) key = { kind: 'addr', protocol: t[0] as IpvsProtocol, address: ap.address, port: ap.port };
    }
    if (key === undefined || t[2] === undefined) {
      issues.push(
        t[0] === 'FWM' || t[0] === 'TCP' || t[0] === 'UDP' || t[0] === 'SCTP'
          ? issue(
              'proc-ip-vs-bad-service',
              `expected 'PROTO  HEXADDR:HEXPORT SCHED …' or 'FWM  HEXMARK SCHED …', got '${raw.trim()}'`,
              pos,
            )
          : unsupported('proc-ip-vs-unknown-line', `not a /proc/net/ip_vs line: '${raw.trim()}'`, pos),
      );
      continue;
    }
    const svc: MutableService = {
      key,
      scheduler: t[2],
      schedFlags: 0,
      onePacket: false,
      destinations: [],
      origin: { kind: 'ipvs', label: `/proc/net/ip_vs service ${formatServiceKey(key)}`, pos },
    };
    let j = 3;
    if (t[j] === 'ops') {
      svc.onePacket = true;
      j++;
    }
    if (t[j] === 'persistent') {
      const timeout = t[j + 1];
      const mask = t[j + 2];
      if (timeout === undefined || !/^[0-9]+$/.test(timeout) || mask === undefined || !/^[0-9A-Fa-f]{8}$/.test(mask))
        issues.push(
          issue('proc-ip-vs-bad-service', `expected 'persistent SECONDS HEXMASK', got '${t.slice(j).join(' ')}'`, pos),
        );
      else svc.persistence = { timeout: Number(timeout), netmask: Number.parseInt(mask, 16) >>> 0 };
      j += 3;
    }
    if (j < t.length)
      issues.push(unsupported('proc-ip-vs-unknown-option', `unknown service flags '${t.slice(j).join(' ')}'`, pos));
    services.push(svc);
    current = svc;
  }
  if (!started) {
    issues.push(issue('proc-ip-vs-empty', 'no /proc/net/ip_vs content found', filePos(file, 0)));
    return { value: undefined, issues };
  }
  const table: IpvsTable = { order: 'kernel', services: services.map((s): IpvsService => ({ ...s })) };
  return { value: header ? { header, table } : { table }, issues };
}
