/**
 * Host and service names as ipvsadm prints them without `-n` (`addrport_to_anyname`: `gethostbyaddr` and
 * `getservbyport`, numeric fallback; IPv6 names inside brackets too) and as `ipvsadm -S` (without `-n`) writes them.
 * lvsdoctor runs offline: host names come from a caller-supplied map, service names from a built-in table of the
 * usual `/etc/services` entries (Debian netbase). Names that cannot be resolved are reported, never guessed.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import type { IpAddress } from './model.ts';

/** Service name → port, `/etc/services` names (aliases included) for TCP and UDP. */
export const WELL_KNOWN_PORTS: ReadonlyMap<string, number> = new Map([
  ['ftp-data', 20],
  ['ftp', 21],
  ['ssh', 22],
  ['telnet', 23],
  ['smtp', 25],
  ['domain', 53],
  ['tftp', 69],
  ['gopher', 70],
  ['finger', 79],
  ['http', 80],
  ['www', 80],
  ['kerberos', 88],
  ['pop3', 110],
  ['sunrpc', 111],
  ['ntp', 123],
  ['imap2', 143],
  ['imap', 143],
  ['snmp', 161],
  ['ldap', 389],
  ['https', 443],
  ['microsoft-ds', 445],
  ['syslog', 514],
  ['submission', 587],
  ['ldaps', 636],
  ['imaps', 993],
  ['pop3s', 995],
  ['ms-sql-s', 1433],
  ['openvpn', 1194],
  ['radius', 1812],
  ['nfs', 2049],
  ['mysql', 3306],
  ['sip', 5060],
  ['postgresql', 5432],
  ['postgres', 5432],
  ['redis', 6379],
  ['http-alt', 8080],
  ['webcache', 8080],
]);

/** Port → the first (canonical) name, as getservbyport returns it. */
const PORT_NAMES: ReadonlyMap<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, port] of WELL_KNOWN_PORTS) {
    if (name === 'www' || name === 'imap' || name === 'postgres' || name === 'webcache') continue;
    if (!m.has(port)) m.set(port, name);
  }
  return m;
})();

export interface NameResolver {
  /** Reverse lookup of an address; undefined → numeric. */
  host(a: IpAddress): string | undefined;
  /** `getservbyport(port, proto)`; undefined → the number. */
  service(port: number, protocol: 'tcp' | 'udp' | 'sctp'): string | undefined;
}

/** Resolves service names from the built-in table and host names from `hosts` (dotted/IPv6 text → name). */
export function offlineResolver(hosts: ReadonlyMap<string, string> = new Map()): NameResolver {
  return {
    host: (a) => hosts.get(a.family === 'ipv4' ? formatIpv4(a.addr) : a.addr),
    service: (port) => PORT_NAMES.get(port),
  };
}

/** `addrport_to_anyname` without FMT_NUMERIC: `name:service`, `[name]:service` for IPv6 (59 characters at most). */
export function addrPortName(
  a: IpAddress,
  port: number,
  protocol: 'tcp' | 'udp' | 'sctp',
  resolver: NameResolver,
): string {
  const host = resolver.host(a) ?? (a.family === 'ipv4' ? formatIpv4(a.addr) : a.addr);
  const svc = resolver.service(port, protocol) ?? String(port);
  const s = a.family === 'ipv4' ? `${host}:${svc}` : `[${host}]:${svc}`;
  return s.slice(0, 59);
}

/** A port written as a number or a well-known service name. */
export function parsePortOrName(text: string): { port: number; named: boolean } | undefined {
  if (/^(0|[1-9][0-9]*)$/.test(text)) {
    const n = Number(text);
    return n <= 65535 ? { port: n, named: false } : undefined;
  }
  const p = WELL_KNOWN_PORTS.get(text);
  return p === undefined ? undefined : { port: p, named: true };
}
