/**
 * Reads `ipvsadm -L -n` listings (`-Ln`, `-ln --sort`, `--stats`, `--rate`, `--thresholds`, `--persistent-conn`,
 * `--tun-info`, `--exact`, single-service listings without the version line). Tolerates collapsed whitespace,
 * missing trailing spaces, CRLF, and shell prompt/command lines before the listing. Never throws: every line it
 * cannot read becomes an issue with its file:line and what was expected, and the rest is still read.
 */
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Origin, type Position } from '../source/origin.ts';
import { flatString } from '../source/strings.ts';
import type { IpvsadmListFormat } from './ipvsadm-list-writer.ts';
import {
  type Forwarding,
  formatAddrPort,
  formatServiceKey,
  type IpAddress,
  type IpvsDestination,
  type IpvsHeader,
  type IpvsProtocol,
  type IpvsRates,
  type IpvsService,
  type IpvsStats,
  type IpvsTable,
  type Persistence,
  type ServiceKey,
  schedFlagNames,
  type TunnelEncap,
} from './model.ts';
import { parsePortOrName } from './names.ts';

export interface IpvsadmListing {
  /** Absent for single-service listings (`ipvsadm -L -n -t VIP:PORT`). */
  readonly header?: IpvsHeader;
  readonly format: IpvsadmListFormat;
  /** True when `--exact` was on the command line or a value shows it (≥ 10^8 without a unit). */
  readonly exact: boolean;
  /** The shell line that produced the listing, when the input carries one (prompt included). */
  readonly command?: string;
  readonly table: IpvsTable;
  /** Services and real servers listed by a name nothing resolved (not in `table`), each with its assumption. */
  readonly symbolic: readonly SymbolicEntry[];
}

interface MutableService {
  key: ServiceKey;
  scheduler?: string;
  schedFlags: number;
  persistence?: Persistence;
  onePacket: boolean;
  destinations: IpvsDestination[];
  stats?: IpvsStats;
  rates?: IpvsRates;
  origin: Origin;
}

const PROTOCOLS: ReadonlySet<string> = new Set(['TCP', 'UDP', 'SCTP']);
const UINT = /^(0|[1-9][0-9]*)$/;
const INT = /^-?(0|[1-9][0-9]*)$/;

/** Parses `a.b.c.d:port` or `[v6]:port`; a string describing the problem otherwise. */
export function parseAddrPort(text: string): { address: IpAddress; port: number } | string {
  let addrText: string;
  let portText: string;
  let v6 = false;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') return `expected [IPv6]:port, got '${text}'`;
    addrText = text.slice(1, close);
    portText = text.slice(close + 2);
    v6 = true;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return `expected ADDRESS:PORT, got '${text}'`;
    addrText = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  let address: IpAddress | undefined;
  if (v6) {
    const a = parseIpv6(addrText);
    if (a !== undefined) address = { family: 'ipv6', addr: a };
  } else {
    const a = parseIpv4(addrText);
    if (a !== undefined) address = { family: 'ipv4', addr: a };
  }
  if (address === undefined) return `'${addrText}' is not a numeric ${v6 ? 'IPv6' : 'IPv4'} address`;
  if (!UINT.test(portText) || Number(portText) > 65535) return `'${portText}' is not a numeric port`;
  return { address, port: Number(portText) };
}

/** Names to read a listing without `-n` through: hosts (scenario guests, `/etc/hosts`) and `/etc/services`. */
export interface ListingNames {
  readonly hosts?: ReadonlyMap<string, IpAddress>;
  readonly services?: ReadonlyMap<string, number>;
}

/**
 * A service or real server whose host (or service) name nothing resolved: kept as the name, with an assumption.
 * It is not in `table` (a name has no address to trace).
 */
export interface SymbolicEntry {
  readonly role: 'service' | 'real-server';
  /** The host as listed (a name, or the numeric address when only the service name is unknown). */
  readonly host: string;
  /** The port, or the service name when no services file or well-known service resolves it. */
  readonly port: number | string;
  /** For a real server: its service as listed (`TCP vip.example:http`). */
  readonly service?: string;
  /** What this means for the verdict, as said in the assumption. */
  readonly assumption: string;
  readonly origin: Origin;
}

type ListedAddr = { address: IpAddress; port: number } | { symbolic: { host: string; port: number | string } } | string;

const HOST_NAME = /^[A-Za-z0-9_.-]*[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * `parseAddrPort`, also accepting host names (`ipvsadm -L` without -n prints `web1.example:http`, `[name]:https`),
 * looked up in `names.hosts` (guests of the scenario, `/etc/hosts`), and service names, looked up in
 * `names.services` then the well-known services. A resolved name is reported as info; a name nothing resolves
 * comes back symbolic.
 */
function parseListedAddrPort(text: string, pos: Position, issues: Issue[], names: ListingNames): ListedAddr {
  const ap = parseAddrPort(text);
  if (typeof ap !== 'string') return ap;
  const colon = text.lastIndexOf(':');
  if (colon <= 0) return ap;
  const hostText = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  const bracketed = /^\[(.*)\]$/.exec(hostText);
  const host = bracketed ? bracketed[1]! : hostText;
  // All digits is a port number, never a service name: 99999 is an error, not a name to look up.
  const digits = /^[0-9]+$/.test(portText);
  if (!/^[A-Za-z0-9_-]+$/.test(portText) || (digits && (portText.length > 5 || Number(portText) > 65535))) return ap;
  const named = parsePortOrName(portText, names.services);
  let address: IpAddress | undefined;
  let hostIsName = false;
  if (HOST_NAME.test(host)) {
    hostIsName = true;
    address = names.hosts?.get(host) ?? names.hosts?.get(host.split('.')[0]!);
  } else {
    const again = parseAddrPort(`${hostText}:0`);
    if (typeof again === 'string') return ap;
    address = again.address;
  }
  if (address === undefined || named === undefined)
    return { symbolic: { host, port: named === undefined ? portText : named.port } };
  if (hostIsName || named.named)
    issues.push(
      issue(
        hostIsName ? 'ipvsadm-host-name' : 'ipvsadm-port-name',
        [
          hostIsName ? `host name '${host}' read as ${formatAddress(address)}` : undefined,
          named.named
            ? `service name '${portText}' read as port ${named.port}${names.services?.has(portText) ? ' (/etc/services of the bundle)' : ' (/etc/services)'}`
            : undefined,
        ]
          .filter((x) => x !== undefined)
          .join(', '),
        pos,
        'info',
      ),
    );
  return { address, port: named.port };
}

function formatAddress(a: IpAddress): string {
  return a.family === 'ipv4' ? formatIpv4(a.addr) : a.addr;
}

function looksLikeName(text: string): boolean {
  // A host or service name rather than a malformed number: letters where digits belong.
  return /[g-zG-Z_]/.test(text.replace(/^\[|\]?:.*$/g, '')) || /:[A-Za-z][A-Za-z0-9-]*$/.test(text);
}

/** A counter of `--stats`/`--rate`: digits with an optional K/M/G/T unit (×1000 steps, truncated by ipvsadm). */
function parseLargeNumber(text: string): { value: number; unit: boolean } | undefined {
  const m = /^(0|[1-9][0-9]*)([KMGT]?)$/.exec(text);
  if (!m) return undefined;
  const mult = { '': 1, K: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'];
  return { value: Number(m[1]) * mult, unit: m[2] !== '' };
}

/** A number ipvsadm prints from a kernel u32 (connection counters, thresholds); larger cannot come from it. */
function parseUint(text: string | undefined): number | undefined {
  return text !== undefined && UINT.test(text) && text.length <= 10 && Number(text) <= 0xffffffff
    ? Number(text)
    : undefined;
}

/** One object per method, shared by every real server (read-only data), not one per line. */
const ROUTE: Forwarding = { kind: 'route' };
const MASQ: Forwarding = { kind: 'masq' };
const LOCAL: Forwarding = { kind: 'local' };
const TUNNEL: Forwarding = { kind: 'tunnel' };

function parseForwarding(text: string): Forwarding | string {
  switch (text) {
    case 'Route':
      return ROUTE;
    case 'Masq':
      return MASQ;
    case 'Local':
      return LOCAL;
    case 'Tunnel':
      return TUNNEL;
    default:
      return text;
  }
}

function parseCsum(text: string | undefined): 'nocsum' | 'csum' | 'remcsum' | undefined {
  return text === '-c' ? 'nocsum' : text === '+c' ? 'csum' : text === 'r+c' ? 'remcsum' : undefined;
}

function parseTunInfo(text: string): TunnelEncap | 'n/a' | undefined {
  if (text === 'n/a') return 'n/a';
  if (text === 'ipip') return { type: 'ipip' };
  const parts = text.split(':');
  if (parts[0] === 'gue' && parts.length === 3) {
    const port = parseUint(parts[1]);
    const csum = parseCsum(parts[2]);
    return port !== undefined && csum ? { type: 'gue', port, csum } : undefined;
  }
  if (parts[0] === 'gre' && parts.length === 2) {
    const csum = parseCsum(parts[1]);
    return csum && csum !== 'remcsum' ? { type: 'gre', csum } : undefined;
  }
  return undefined;
}

const TITLE_FORMATS: Readonly<Record<string, IpvsadmListFormat>> = {
  Scheduler: 'default',
  Conns: 'stats',
  CPS: 'rate',
  Uthreshold: 'thresholds',
  Weight: 'persistent-conn',
};

function formatFromCommand(cmd: string): IpvsadmListFormat | undefined {
  for (const [flag, f] of [
    ['--stats', 'stats'],
    ['--rate', 'rate'],
    ['--thresholds', 'thresholds'],
    ['--persistent-conn', 'persistent-conn'],
    ['--tun-info', 'tun-info'],
  ] as const)
    if (cmd.includes(flag)) return f;
  return undefined;
}

/** Reports an address that did not parse: a host or service name (`-L` without `-n`) is unsupported, else bad input. */
function badAddress(token: string | undefined, code: string, expected: string, pos: Position, issues: Issue[]): void {
  if (token !== undefined && looksLikeName(token))
    issues.push(
      unsupported(
        'ipvsadm-names',
        `'${token}' is a host name lvsdoctor cannot resolve (not a guest, gateway or client of the scenario): paste ipvsadm -L -n (numeric)`,
        pos,
      ),
    );
  else issues.push(issue(code, expected, pos));
}

/** Reads one `ipvsadm -L -n` listing. `file` names the input in positions and origins. */
export function readIpvsadmList(
  text: string,
  file: string,
  hosts?: ReadonlyMap<string, IpAddress>,
  serviceNames?: ReadonlyMap<string, number>,
): ReadResult<IpvsadmListing> {
  const names: ListingNames = { ...(hosts ? { hosts } : {}), ...(serviceNames ? { services: serviceNames } : {}) };
  const symbolic: SymbolicEntry[] = [];
  let currentSymbolic: string | undefined; // the service line, as listed, of a symbolic service
  const issues: Issue[] = [];
  const services: MutableService[] = [];
  let header: IpvsHeader | undefined;
  let format: IpvsadmListFormat | undefined;
  let command: string | undefined;
  let exact = false;
  let started = false; // saw a header, title or service line
  let current: MutableService | undefined;
  let currentBadLine = 0; // line of an unreadable service line whose destinations follow

  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    const pos = filePos(file, lineNo);
    const t = raw.trim().split(/\s+/);
    if (t[0] === '') continue;
    const first = t[0]!;

    if (first === 'IP' && t[1] === 'Virtual' && t[2] === 'Server') {
      if (started) {
        issues.push(
          issue('ipvsadm-second-listing', 'a second listing starts here; only the first one is read', pos, 'warning'),
        );
        break;
      }
      const m = /^IP Virtual Server version (\d+\.\d+\.\d+) \(size=(\d+)\)$/.exec(t.join(' '));
      if (!m) {
        issues.push(
          issue('ipvsadm-bad-header', `expected 'IP Virtual Server version X.Y.Z (size=N)', got '${quoted(raw)}'`, pos),
        );
      } else {
        header = { version: m[1]!, size: Number(m[2]) };
        if (header.version !== '1.2.1' || header.size === 0)
          issues.push(
            unsupported(
              'ipvsadm-not-kernel-ipvs',
              `'${quoted(raw)}' is not the Linux kernel's IPVS (version 1.2.1, size > 0); DPVS and other forks are not modelled`,
              pos,
            ),
          );
      }
      started = true;
      continue;
    }

    if (first === 'Prot') {
      const f = t[1] === 'LocalAddress:Port' ? TITLE_FORMATS[t[2] ?? ''] : undefined;
      if (f === undefined) {
        issues.push(
          issue(
            'ipvsadm-bad-title',
            `expected a title line 'Prot LocalAddress:Port Scheduler Flags' (or Conns/CPS/Uthreshold/Weight columns), got '${quoted(raw)}'`,
            pos,
          ),
        );
      } else format = f;
      started = true;
      continue;
    }

    if (first === '->' && t[1] === 'RemoteAddress:Port') {
      if (t.includes('TunnelInfo')) format = 'tun-info';
      started = true;
      continue;
    }

    if (PROTOCOLS.has(first) || first === 'FWM' || first === '?') {
      started = true;
      current = undefined;
      if (/^[0-9A-F]{8}:[0-9A-F]{4}$/.test(t[1] ?? '')) {
        issues.push(
          issue(
            'ipvsadm-skipped-line',
            'skipped: a /proc/net/ip_vs line (hex address) inside an ipvsadm listing',
            pos,
            'warning',
          ),
        );
        current = undefined;
        currentBadLine = lineNo;
        continue;
      }
      currentSymbolic = undefined;
      const r = readServiceLine(t, format ?? 'default', raw.trim(), file, lineNo, issues, names);
      if (r !== undefined && 'symbolic' in r) {
        const listed = `${t[0]} ${t[1]}`;
        const assumption = `${listed} (${file}:${lineNo}) is kept as a name: '${r.symbolic.host}'${typeof r.symbolic.port === 'string' ? ` and service '${r.symbolic.port}'` : ''} resolve through neither the scenario, /etc/hosts nor /etc/services; a name has no address to trace, so this service and its real servers are not in the model and no probe's verdict covers them (paste ipvsadm -L -n, or add the name to the bundle's /etc/hosts)`;
        symbolic.push(symbolicEntry('service', r.symbolic, undefined, assumption, file, lineNo));
        issues.push(issue('ipvsadm-symbolic-name', assumption, pos, 'warning'));
        currentSymbolic = listed;
        currentBadLine = 0;
        continue;
      }
      if (r === undefined) {
        currentBadLine = lineNo;
        continue;
      }
      if (r.exactHint) exact = true;
      services.push(r.service);
      current = r.service;
      continue;
    }

    if (first === '->') {
      started = true;
      if (current === undefined && currentSymbolic !== undefined) {
        const ap = t[1] === undefined ? undefined : parseListedAddrPort(t[1], pos, issues, names);
        const sym =
          ap === undefined || typeof ap === 'string'
            ? { host: t[1] ?? '', port: '' }
            : 'symbolic' in ap
              ? ap.symbolic
              : { host: formatAddress(ap.address), port: ap.port };
        const assumption = `real server ${t[1] ?? ''} of the symbolic service ${currentSymbolic} (${file}:${lineNo}) is kept as listed; its service is not in the model, so no trace reaches it`;
        symbolic.push(symbolicEntry('real-server', sym, currentSymbolic, assumption, file, lineNo));
        issues.push(issue('ipvsadm-symbolic-name', assumption, pos, 'info'));
        continue;
      }
      if (current === undefined) {
        if (currentBadLine > 0)
          issues.push(
            issue(
              'ipvsadm-destination-skipped',
              `real server line skipped: it belongs to the unreadable service line ${currentBadLine}`,
              pos,
              'warning',
            ),
          );
        else
          issues.push(issue('ipvsadm-orphan-destination', 'expected a service line before this real server line', pos));
        continue;
      }
      const r = readDestinationLine(t, format ?? 'default', raw.trim(), current, file, lineNo, issues, names);
      if (r !== undefined && 'symbolic' in r) {
        const svc = formatServiceKey(current.key);
        const assumption = `real server ${t[1]} of ${formatServiceKey(current.key)} (${file}:${lineNo}) is kept as a name: '${r.symbolic.host}'${typeof r.symbolic.port === 'string' ? ` and service '${r.symbolic.port}'` : ''} resolve through neither the scenario, /etc/hosts nor /etc/services; a name has no address to trace, so the model schedules only the service's other real servers and a verdict for this service does not cover this one (paste ipvsadm -L -n, or add the name to the bundle's /etc/hosts)`;
        symbolic.push(symbolicEntry('real-server', r.symbolic, svc, assumption, file, lineNo));
        issues.push(issue('ipvsadm-symbolic-name', assumption, pos, 'warning'));
        continue;
      }
      if (r !== undefined) {
        if (r.exactHint) exact = true;
        current.destinations.push(r.destination);
      }
      continue;
    }

    if (!started && /\bipvsadm\b/.test(raw)) {
      command = raw.trim();
      if (/--exact\b/.test(raw)) exact = true;
      const f = formatFromCommand(raw);
      if (f !== undefined) format = f;
      continue;
    }
    if (!started) {
      issues.push(issue('ipvsadm-ignored-line', `ignored line before the listing: '${quoted(raw)}'`, pos, 'info'));
      continue;
    }
    // A paste goes on after the listing (a prompt, the next command, its output) or elides part of it (`...`):
    // what is there is read, what is not a listing line is skipped and said.
    const what = /^(\.\.\.|…)/.test(first)
      ? 'an elision: the listing is incomplete here'
      : /^\S*[#$%>]$/.test(first) || /^\S+@\S+[:~]/.test(first) || /^\[[^\]]*\][#$]/.test(raw.trim())
        ? 'a shell prompt or command'
        : 'not a service line (TCP/UDP/SCTP/FWM …) or a real server line (  -> ADDRESS:PORT …)';
    issues.push(issue('ipvsadm-skipped-line', `skipped (${what}): '${quoted(raw)}'`, pos, 'warning'));
  }

  if (!started && services.length === 0) {
    issues.push(
      issue(
        'ipvsadm-empty',
        `no ipvsadm listing found in lines 1-${lines.length} (expected 'IP Virtual Server version …' or a TCP/UDP/SCTP/FWM service line)`,
        filePos(file, 0),
      ),
    );
    return { value: undefined, issues };
  }

  const order = command !== undefined && /--nosort\b/.test(command) ? 'kernel' : 'sorted';
  const listing: IpvsadmListing = {
    ...(header ? { header } : {}),
    format: format ?? 'default',
    exact,
    ...(command !== undefined ? { command } : {}),
    table: { order, services: services.map(freezeService) },
    symbolic,
  };
  return { value: listing, issues };
}

function symbolicEntry(
  role: SymbolicEntry['role'],
  sym: { host: string; port: number | string },
  service: string | undefined,
  assumption: string,
  file: string,
  line: number,
): SymbolicEntry {
  return {
    role,
    host: sym.host,
    port: sym.port,
    ...(service !== undefined ? { service } : {}),
    assumption,
    origin: { kind: 'ipvs', label: `ipvsadm ${role} ${sym.host}:${sym.port} (symbolic)`, pos: filePos(file, line) },
  };
}

function freezeService(s: MutableService): IpvsService {
  return { ...s, destinations: s.destinations };
}

interface ServiceRead {
  service: MutableService;
  exactHint: boolean;
}

function readServiceLine(
  t: readonly string[],
  format: IpvsadmListFormat,
  text: string,
  file: string,
  line: number,
  issues: Issue[],
  names: ListingNames,
): ServiceRead | { symbolic: { host: string; port: number | string } } | undefined {
  const pos = filePos(file, line);
  let key: ServiceKey;
  let i: number;
  if (t[0] === 'FWM') {
    const n = t[1];
    if (n === undefined || !(INT.test(n) || /^[0-9A-Fa-f]{8}$/.test(n))) {
      issues.push(issue('ipvsadm-bad-service', `expected 'FWM <mark>', got '${text}'`, pos));
      return undefined;
    }
    // ipvsadm ≤ 1.31 prints marks ≥ 2^31 negative; convert back to unsigned.
    const fwmark = INT.test(n) ? Number(n) >>> 0 : Number.parseInt(n, 16);
    const v6 = t[2] === 'IPv6';
    key = { kind: 'fwmark', fwmark, family: v6 ? 'ipv6' : 'ipv4' };
    i = v6 ? 3 : 2;
  } else {
    if (t[0] === '?') {
      issues.push(unsupported('ipvsadm-unknown-protocol', `service with an unknown protocol ('?'): '${text}'`, pos));
      return undefined;
    }
    const ap = t[1] === undefined ? 'missing VIP:PORT' : parseListedAddrPort(t[1], pos, issues, names);
    if (typeof ap !== 'string' && 'symbolic' in ap) return ap;
    if (typeof ap === 'string') {
      badAddress(t[1], 'ipvsadm-bad-service', `expected '${t[0]} VIP:PORT SCHEDULER …': ${ap}`, pos, issues);
      return undefined;
    }
    key = { kind: 'addr', protocol: t[0] as IpvsProtocol, address: ap.address, port: ap.port };
    i = 2;
  }
  const origin: Origin = {
    kind: 'ipvs',
    label: flatString(`ipvsadm service ${formatServiceKey(key)}`),
    pos,
  };
  const service: MutableService = { key, schedFlags: 0, onePacket: false, destinations: [], origin };

  if (format === 'stats' || format === 'rate') {
    const nums = t.slice(i).map(parseLargeNumber);
    if (nums.length !== 5 || nums.some((n) => n === undefined)) {
      issues.push(
        issue(
          'ipvsadm-bad-service',
          `expected 5 ${format === 'stats' ? 'counters (Conns InPkts OutPkts InBytes OutBytes)' : 'rates (CPS InPPS OutPPS InBPS OutBPS)'} after the service, got '${text}'`,
          pos,
        ),
      );
      return { service, exactHint: false };
    }
    const v = nums.map((n) => n!.value);
    const exactHint = nums.some((n) => !n!.unit && n!.value >= 1e8);
    if (format === 'stats')
      service.stats = { conns: v[0]!, inPkts: v[1]!, outPkts: v[2]!, inBytes: v[3]!, outBytes: v[4]! };
    else
      service.rates = {
        cps: v[0]!,
        inPps: v[1]!,
        outPps: v[2]!,
        inBps: v[3]!,
        outBps: v[4]!,
      };
    return { service, exactHint };
  }

  const sched = t[i];
  if (sched === undefined) {
    issues.push(issue('ipvsadm-bad-service', `expected a scheduler name after '${t.slice(0, i).join(' ')}'`, pos));
    return { service, exactHint: false };
  }
  service.scheduler = sched;
  i++;
  const v6 = (key.kind === 'fwmark' ? key.family : key.address.family) === 'ipv6';
  while (i < t.length) {
    const tok = t[i]!;
    if (tok.startsWith('(')) {
      let flagsText = tok;
      while (!flagsText.endsWith(')') && i + 1 < t.length) flagsText += t[++i];
      i++;
      const names = schedFlagNames(sched);
      for (const name of flagsText.replace(/^\(|\)$/g, '').split(',')) {
        const bit = names.indexOf(name);
        const generic = /^flag-([123])$/.exec(name);
        if (bit >= 0) service.schedFlags |= 1 << bit;
        else if (generic) service.schedFlags |= 1 << (Number(generic[1]) - 1);
        else
          issues.push(
            issue('ipvsadm-bad-sched-flag', `unknown scheduler flag '${name}' for scheduler '${sched}'`, pos),
          );
      }
      continue;
    }
    if (tok === 'persistent') {
      const timeout = parseUint(t[i + 1]);
      if (timeout === undefined) {
        issues.push(issue('ipvsadm-bad-service', `expected seconds after 'persistent', got '${t[i + 1] ?? ''}'`, pos));
        i++;
        continue;
      }
      i += 2;
      let netmask = v6 ? 128 : 0xffffffff;
      let pe: string | undefined;
      if (t[i] === 'mask') {
        const m = t[i + 1] ?? '';
        const parsed = v6 ? parseUint(m) : parseIpv4(m);
        if (parsed === undefined || (v6 && parsed > 128))
          issues.push(
            issue(
              'ipvsadm-bad-service',
              `expected ${v6 ? 'a prefix length' : 'a dotted netmask'} after 'mask', got '${m}'`,
              pos,
            ),
          );
        else netmask = parsed;
        i += 2;
      }
      if (t[i] === 'pe') {
        pe = t[i + 1];
        i += 2;
      }
      service.persistence = pe === undefined ? { timeout, netmask } : { timeout, netmask, pe };
      continue;
    }
    if (tok === 'ops') {
      service.onePacket = true;
      i++;
      continue;
    }
    issues.push(
      unsupported(
        'ipvsadm-unknown-service-option',
        `unknown service option '${t.slice(i).join(' ')}' (expected '(flags)', 'persistent N [mask M] [pe NAME]' or 'ops')`,
        pos,
      ),
    );
    break;
  }
  return { service, exactHint: false };
}

function readDestinationLine(
  t: readonly string[],
  format: IpvsadmListFormat,
  text: string,
  svc: MutableService,
  file: string,
  line: number,
  issues: Issue[],
  names: ListingNames,
):
  | { destination: IpvsDestination; exactHint: boolean }
  | { symbolic: { host: string; port: number | string } }
  | undefined {
  const pos = filePos(file, line);
  const ap = t[1] === undefined ? 'missing ADDRESS:PORT' : parseListedAddrPort(t[1], pos, issues, names);
  if (typeof ap !== 'string' && 'symbolic' in ap) return ap;
  if (typeof ap === 'string') {
    badAddress(t[1], 'ipvsadm-bad-destination', `expected '  -> ADDRESS:PORT …': ${ap}`, pos, issues);
    return undefined;
  }
  const origin: Origin = {
    kind: 'ipvs',
    label: flatString(`ipvsadm real server ${formatAddrPort(ap.address, ap.port)} of ${formatServiceKey(svc.key)}`),
    pos,
    via: svc.origin,
  };
  const rest = t.slice(2);
  // Destinations are object literals, never `{ ...base, … }`: V8 gave each spread copy its own hidden class, which
  // took ~260 bytes per real server of a big listing (a third of the table's memory).
  const base = { address: ap.address, port: ap.port, origin };
  const bad = (expected: string): undefined => {
    issues.push(issue('ipvsadm-bad-destination', `expected '  -> ADDRESS:PORT ${expected}', got '${text}'`, pos));
    return undefined;
  };
  const uints = (xs: readonly string[]): number[] | undefined => {
    const out = xs.map(parseUint);
    return out.some((x) => x === undefined) ? undefined : (out as number[]);
  };
  // The kernel keeps a weight in an int (ipvsadm prints it with %d): above 2147483647 it cannot be listed.
  const weightOk = (n: readonly number[] | undefined): n is number[] => n !== undefined && n[0]! <= 0x7fffffff;
  const fwd = (s: string): Forwarding | undefined => {
    const f = parseForwarding(s);
    if (typeof f !== 'string') return f;
    if (f === 'FullNat')
      issues.push(unsupported('ipvsadm-fullnat', `forwarding method 'FullNat' is DPVS, not kernel IPVS`, pos));
    else
      issues.push(
        issue('ipvsadm-bad-forward', `expected a forwarding method Route, Masq, Tunnel or Local, got '${s}'`, pos),
      );
    return undefined;
  };

  switch (format) {
    case 'default': {
      if (rest.length !== 4) return bad('Forward Weight ActiveConn InActConn');
      const f = fwd(rest[0]!);
      const n = uints(rest.slice(1));
      if (f === undefined) return undefined;
      if (!weightOk(n)) return bad('Forward Weight ActiveConn InActConn (unsigned numbers, a weight up to 2147483647)');
      return {
        destination: {
          address: base.address,
          port: base.port,
          origin: base.origin,
          forwarding: f,
          weight: n[0]!,
          activeConns: n[1]!,
          inactConns: n[2]!,
        },
        exactHint: false,
      };
    }
    case 'tun-info': {
      if (rest.length !== 5) return bad('Forward TunnelInfo Weight ActiveConn InActConn');
      const f = fwd(rest[0]!);
      if (f === undefined) return undefined;
      const info = parseTunInfo(rest[1]!);
      const n = uints(rest.slice(2));
      if (info === undefined) return bad(`Forward TunnelInfo … (TunnelInfo ipip, gue:PORT:CSUM, gre:CSUM or n/a)`);
      if (!weightOk(n))
        return bad('Forward TunnelInfo Weight ActiveConn InActConn (unsigned numbers, a weight up to 2147483647)');
      const forwarding: Forwarding = f.kind === 'tunnel' && info !== 'n/a' ? { kind: 'tunnel', encap: info } : f;
      return {
        destination: {
          address: base.address,
          port: base.port,
          origin: base.origin,
          forwarding,
          weight: n[0]!,
          activeConns: n[1]!,
          inactConns: n[2]!,
        },
        exactHint: false,
      };
    }
    case 'thresholds': {
      const n = rest.length === 4 ? uints(rest) : undefined;
      if (!n) return bad('Uthreshold Lthreshold ActiveConn InActConn');
      return {
        destination: {
          address: base.address,
          port: base.port,
          origin: base.origin,
          upperThreshold: n[0]!,
          lowerThreshold: n[1]!,
          activeConns: n[2]!,
          inactConns: n[3]!,
        },
        exactHint: false,
      };
    }
    case 'persistent-conn': {
      const n = rest.length === 4 ? uints(rest) : undefined;
      if (!weightOk(n)) return bad('Weight PersistConn ActiveConn InActConn (a weight up to 2147483647)');
      return {
        destination: {
          address: base.address,
          port: base.port,
          origin: base.origin,
          weight: n[0]!,
          persistConns: n[1]!,
          activeConns: n[2]!,
          inactConns: n[3]!,
        },
        exactHint: false,
      };
    }
    case 'stats':
    case 'rate': {
      const nums = rest.map(parseLargeNumber);
      if (nums.length !== 5 || nums.some((x) => x === undefined))
        return bad(format === 'stats' ? 'Conns InPkts OutPkts InBytes OutBytes' : 'CPS InPPS OutPPS InBPS OutBPS');
      const v = nums.map((x) => x!.value);
      const exactHint = nums.some((x) => !x!.unit && x!.value >= 1e8);
      if (format === 'stats')
        return {
          destination: {
            address: base.address,
            port: base.port,
            origin: base.origin,
            stats: { conns: v[0]!, inPkts: v[1]!, outPkts: v[2]!, inBytes: v[3]!, outBytes: v[4]! },
          },
          exactHint,
        };
      return {
        destination: {
          address: base.address,
          port: base.port,
          origin: base.origin,
          rates: { cps: v[0]!, inPps: v[1]!, outPps: v[2]!, inBps: v[3]!, outBps: v[4]! },
        },
        exactHint,
      };
    }
  }
}

/** A line quoted in a message: trimmed, and cut at 160 characters so a pasted megabyte is not echoed back whole. */
function quoted(raw: string): string {
  const t = raw.trim();
  return t.length > 160 ? `${t.slice(0, 160)}… (${t.length} characters)` : t;
}
