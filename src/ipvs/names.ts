/**
 * Host and service names as ipvsadm prints them without `-n` (`addrport_to_anyname`: `gethostbyaddr` and
 * `getservbyport`, numeric fallback; IPv6 names inside brackets too) and as `ipvsadm -S` (without `-n`) writes them.
 * lvsdoctor runs offline: host names come from a caller-supplied map, service names from a built-in table of the
 * usual `/etc/services` entries (Debian netbase). Names that cannot be resolved are reported, never guessed.
 */
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
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

/**
 * A port written as a number or a service name: `services` (a host's own `/etc/services`, from a bundle) first,
 * then the well-known services.
 */
export function parsePortOrName(
  text: string,
  services?: ReadonlyMap<string, number>,
): { port: number; named: boolean } | undefined {
  if (/^(0|[1-9][0-9]*)$/.test(text)) {
    const n = Number(text);
    return n <= 65535 ? { port: n, named: false } : undefined;
  }
  const p = services?.get(text) ?? WELL_KNOWN_PORTS.get(text);
  return p === undefined ? undefined : { port: p, named: true };
}

/**
 * The fields of each line of a `#`-commented table file (hosts(5), services(5)), with its line number; `parse`
 * says what it read or returns false, and such a line becomes `code` with `expected`.
 */
function readTableFile(
  text: string,
  file: string,
  code: string,
  expected: string,
  parse: (fields: readonly string[]) => boolean,
): Issue[] {
  const issues: Issue[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const t = lines[i]!.replace(/#.*$/, '').trim().split(/\s+/);
    if (t[0] === '' || parse(t)) continue;
    issues.push(issue(code, `expected '${expected}', got '${lines[i]!.trim()}'`, filePos(file, i + 1)));
  }
  return issues;
}

/**
 * Reads `/etc/hosts` (hosts(5)): `ADDRESS NAME [ALIAS…]`, `#` comments. Every name and alias maps to the first
 * address listed for it, as the files backend of gethostbyname answers. Lines that are not an address and a name
 * are issues with their line; the rest is read.
 */
export function readEtcHosts(text: string, file: string): ReadResult<ReadonlyMap<string, IpAddress>> {
  const out = new Map<string, IpAddress>();
  const issues = readTableFile(text, file, 'etc-hosts-bad-line', 'ADDRESS NAME [ALIAS…]', (t) => {
    const v4 = parseIpv4(t[0]!);
    const v6 = v4 === undefined ? parseIpv6(t[0]!.replace(/%.*$/, '')) : undefined;
    if ((v4 === undefined && v6 === undefined) || t.length < 2) return false;
    const a: IpAddress = v4 !== undefined ? { family: 'ipv4', addr: v4 } : { family: 'ipv6', addr: v6! };
    for (const name of t.slice(1)) if (!out.has(name)) out.set(name, a);
    return true;
  });
  return { value: out, issues };
}

/**
 * Reads `/etc/services` (services(5)): `NAME PORT/PROTOCOL [ALIAS…]`, `#` comments. Names and aliases map to their
 * port (TCP entries win over other protocols for a name, as ipvsadm's listings are mostly TCP).
 */
export function readEtcServices(text: string, file: string): ReadResult<ReadonlyMap<string, number>> {
  const out = new Map<string, number>();
  const tcp = new Set<string>();
  const issues = readTableFile(text, file, 'etc-services-bad-line', 'NAME PORT/PROTOCOL [ALIAS…]', (t) => {
    const m = /^(0|[1-9][0-9]*)\/([a-z0-9-]+)$/i.exec(t[1] ?? '');
    if (!m || Number(m[1]) > 65535) return false;
    const isTcp = m[2]!.toLowerCase() === 'tcp';
    for (const name of [t[0]!, ...t.slice(2)]) {
      if (out.has(name) && (tcp.has(name) || !isTcp)) continue;
      out.set(name, Number(m[1]));
      if (isTcp) tcp.add(name);
    }
    return true;
  });
  return { value: out, issues };
}
