/**
 * `ipvsadm -S [-n]` (= `ipvsadm-save`) rules, written byte for byte as ipvsadm 1.31 prints them
 * (`print_service_entry` with FMT_RULE) and read back as `ipvsadm-restore` would apply them.
 *
 * Writer: one `-A` line per service followed by its `-a` lines, sorted like `ipvsadm -L`; thresholds (`-x`/`-y`),
 * timeouts and sync daemons are not saved (ipvsadm does not either); tunnel destinations always get
 * `--tun-type …` (1.31). Reader: the lines of a save file or any `ipvsadm` command lines `-A`/`-a`/`-C`
 * (`ipvsadm-restore` strips `#` comment lines; a leading `ipvsadm` token is dropped, as `ipvsadm -R` does).
 * The result is the table after the restore, in KERNEL order: every `-a` inserts at the head of its service's list.
 */
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Origin, type Position } from '../source/origin.ts';
import { sortLikeIpvsadm } from './ipvsadm-sort.ts';
import {
  type Forwarding,
  formatAddrPort,
  formatServiceKey,
  IPVS_DEFAULT_PERSISTENT_TIMEOUT,
  type IpAddress,
  type IpvsDestination,
  type IpvsProtocol,
  type IpvsService,
  type IpvsTable,
  type Persistence,
  type ServiceKey,
  sameServiceKey,
  schedFlagNames,
  type TunnelEncap,
} from './model.ts';
import { addrPortName, type NameResolver, parsePortOrName } from './names.ts';
import { KERNEL_SCHEDULERS } from './schedulers.ts';

export interface IpvsadmSaveOptions {
  /** Resolve names as `ipvsadm -S` without `-n` does (default: numeric, `-Sn`). */
  readonly names?: NameResolver;
  /** `--nosort`: keep the table's order. */
  readonly nosort?: boolean;
}

function protoLower(p: IpvsProtocol): 'tcp' | 'udp' | 'sctp' {
  return p === 'TCP' ? 'tcp' : p === 'UDP' ? 'udp' : 'sctp';
}

function ruleAddr(a: IpAddress, port: number, proto: 'tcp' | 'udp' | 'sctp', names?: NameResolver): string {
  return names ? addrPortName(a, port, proto, names) : formatAddrPort(a, port);
}

/** `svc_name` of the rule format: `-t ADDR:PORT`, `-u …`, `--sctp-service …`, `-f MARK [-6]`. */
export function saveServiceSpec(k: ServiceKey, names?: NameResolver): string {
  if (k.kind === 'fwmark') return `-f ${k.fwmark | 0}${k.family === 'ipv6' ? ' -6' : ''}`;
  const opt = k.protocol === 'TCP' ? '-t' : k.protocol === 'UDP' ? '-u' : '--sctp-service';
  return `${opt} ${ruleAddr(k.address, k.port, protoLower(k.protocol), names)}`;
}

function serviceRule(svc: IpvsService, names?: NameResolver): string {
  let line = `-A ${saveServiceSpec(svc.key, names)} -s ${svc.scheduler ?? 'wlc'}`;
  const p = svc.persistence;
  const v6 = (svc.key.kind === 'fwmark' ? svc.key.family : svc.key.address.family) === 'ipv6';
  if (p) {
    line += ` -p ${p.timeout}`;
    if (v6) {
      if (p.netmask !== 128) line += ` -M ${p.netmask}`;
    } else if (p.netmask >>> 0 !== 0xffffffff) line += ` -M ${formatIpv4((p.netmask >>> 0) as never)}`;
    if (p.pe) line += ` --pe ${p.pe}`;
  }
  if (svc.onePacket) line += ' -o';
  if (svc.schedFlags & 7) {
    const n = schedFlagNames(svc.scheduler ?? '');
    const flags: string[] = [];
    for (let bit = 0; bit < 3; bit++) if (svc.schedFlags & (1 << bit)) flags.push(n[bit]!);
    line += ` -b ${flags.join(',')}`;
  }
  return line;
}

const CSUM_OPTION = { nocsum: '--tun-nocsum', csum: '--tun-csum', remcsum: '--tun-remcsum' } as const;

function destRule(svc: IpvsService, d: IpvsDestination, names?: NameResolver): string {
  const proto = svc.key.kind === 'addr' ? protoLower(svc.key.protocol) : 'tcp';
  const f = d.forwarding ?? { kind: 'route' };
  const sw = f.kind === 'masq' ? '-m' : f.kind === 'tunnel' ? '-i' : '-g';
  const base = `-a ${saveServiceSpec(svc.key, names)} -r ${ruleAddr(d.address, d.port, proto, names)} ${sw} -w ${d.weight ?? 1}`;
  if (f.kind !== 'tunnel') return base;
  const e: TunnelEncap = f.encap ?? { type: 'ipip' };
  switch (e.type) {
    case 'ipip':
      return `${base} --tun-type ipip`;
    case 'gue':
      return `${base} --tun-type gue --tun-port ${e.port} ${CSUM_OPTION[e.csum]}`;
    case 'gre':
      return `${base} --tun-type gre ${CSUM_OPTION[e.csum]}`;
  }
}

/** `ipvsadm -S -n` (or `-S` with `names`). */
export function writeIpvsadmSave(table: IpvsTable, options: IpvsadmSaveOptions = {}): string {
  const t = options.nosort ? table : sortLikeIpvsadm(table);
  let out = '';
  for (const svc of t.services) {
    out += `${serviceRule(svc, options.names)}\n`;
    for (const d of svc.destinations) out += `${destRule(svc, d, options.names)}\n`;
  }
  return out;
}

export interface IpvsadmSave {
  /** Services in file order, destinations in kernel order (newest first). */
  readonly table: IpvsTable;
  /** The shell line before the rules, when the input carries one. */
  readonly command?: string;
}

interface MutableService {
  key: ServiceKey;
  scheduler: string;
  schedFlags: number;
  persistence?: Persistence;
  onePacket: boolean;
  destinations: IpvsDestination[];
  origin: Origin;
}

/** Long option → short option (ipvsadm's popt table, the ones a restore can meet). */
const LONG: Readonly<Record<string, string>> = {
  '--add-service': '-A',
  '--edit-service': '-E',
  '--delete-service': '-D',
  '--clear': '-C',
  '--add-server': '-a',
  '--edit-server': '-e',
  '--delete-server': '-d',
  '--tcp-service': '-t',
  '--udp-service': '-u',
  '--fwmark-service': '-f',
  '--scheduler': '-s',
  '--persistent': '-p',
  '--netmask': '-M',
  '--real-server': '-r',
  '--gatewaying': '-g',
  '--ipip': '-i',
  '--masquerading': '-m',
  '--weight': '-w',
  '--u-threshold': '-x',
  '--l-threshold': '-y',
  '--ops': '-o',
  '--sched-flags': '-b',
  '--ipv6': '-6',
};

const WITH_VALUE: ReadonlySet<string> = new Set([
  '-t',
  '-u',
  '--sctp-service',
  '-f',
  '-s',
  '-M',
  '--pe',
  '-r',
  '-w',
  '-x',
  '-y',
  '-b',
  '--tun-type',
  '--tun-port',
]);
const FLAGS: ReadonlySet<string> = new Set([
  '-g',
  '-i',
  '-m',
  '-o',
  '-6',
  '--tun-nocsum',
  '--tun-csum',
  '--tun-remcsum',
  '-n',
]);
const COMMANDS: ReadonlySet<string> = new Set(['-A', '-E', '-D', '-C', '-a', '-e', '-d']);

type AddrPort = { address: IpAddress; port: number } | { error: string; names: boolean };

/** `ADDR[:PORT]` / `[V6][:PORT]` with numeric addresses and numeric or well-known service ports. */
export function parseRuleAddrPort(text: string): AddrPort & { portGiven?: boolean } {
  let host: string;
  let port: string | undefined;
  let v6 = false;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { error: `expected [IPv6]:port, got '${text}'`, names: false };
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return { error: `expected [IPv6]:port, got '${text}'`, names: false };
    port = rest === '' ? undefined : rest.slice(1);
    v6 = true;
  } else {
    const colon = text.lastIndexOf(':');
    host = colon < 0 ? text : text.slice(0, colon);
    port = colon < 0 ? undefined : text.slice(colon + 1);
  }
  let address: IpAddress | undefined;
  if (v6) {
    const a = parseIpv6(host);
    if (a !== undefined) address = { family: 'ipv6', addr: a };
  } else {
    const a = parseIpv4(host);
    if (a !== undefined) address = { family: 'ipv4', addr: a };
  }
  if (address === undefined) {
    const isName = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host) && /[A-Za-z]/.test(host);
    return isName
      ? { error: `host name '${host}' cannot be resolved offline (save with ipvsadm -S -n)`, names: true }
      : { error: `'${host}' is not a numeric ${v6 ? 'IPv6' : 'IPv4'} address`, names: false };
  }
  if (port === undefined) return { address, port: 0, portGiven: false };
  const p = parsePortOrName(port);
  if (p === undefined)
    return /^[A-Za-z]/.test(port)
      ? { error: `service name '${port}' is not in lvsdoctor's table of well-known ports`, names: true }
      : { error: `'${port}' is not a port`, names: false };
  return { address, port: p.port, portGiven: true };
}

function parseUintText(t: string | undefined, max = 0x7fffffff): number | undefined {
  if (t === undefined || !/^(0|[1-9][0-9]*)$/.test(t)) return undefined;
  const n = Number(t);
  return n <= max ? n : undefined;
}

interface ParsedLine {
  command: string;
  opts: Map<string, string>;
  persistent: boolean;
  persistentValue?: string;
}

/** Splits one restore line into its command and options; a string describing the problem otherwise. */
function parseLine(tokens: readonly string[]): ParsedLine | string {
  let command: string | undefined;
  const opts = new Map<string, string>();
  let persistent = false;
  let persistentValue: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    let tok = tokens[i]!;
    let inline: string | undefined;
    const eq = tok.startsWith('--') ? tok.indexOf('=') : -1;
    if (eq > 0) {
      inline = tok.slice(eq + 1);
      tok = tok.slice(0, eq);
    }
    const opt = LONG[tok] ?? tok;
    if (COMMANDS.has(opt)) {
      if (command !== undefined) return `more than one command ('${command}' and '${opt}')`;
      command = opt;
      continue;
    }
    if (opt === '-p') {
      persistent = true;
      const next = inline ?? tokens[i + 1];
      if (next !== undefined && /^[0-9]+$/.test(next)) {
        persistentValue = next;
        if (inline === undefined) i++;
      }
      continue;
    }
    if (WITH_VALUE.has(opt)) {
      const v = inline ?? tokens[++i];
      if (v === undefined) return `option '${tok}' needs a value`;
      if (opts.has(opt)) return `multiple '${tok}' options specified`;
      opts.set(opt, v);
      continue;
    }
    if (FLAGS.has(opt)) {
      opts.set(opt, '');
      continue;
    }
    return `unknown or unsupported option '${tok}'`;
  }
  if (command === undefined) return 'no command (-A, -a, -C …) on the line';
  return persistentValue === undefined ? { command, opts, persistent } : { command, opts, persistent, persistentValue };
}

function parseTunnel(opts: Map<string, string>, pos: Position, issues: Issue[]): TunnelEncap | undefined {
  const type = opts.get('--tun-type') ?? 'ipip';
  const csum = opts.has('--tun-remcsum') ? 'remcsum' : opts.has('--tun-csum') ? 'csum' : 'nocsum';
  switch (type) {
    case 'ipip':
      return { type: 'ipip' };
    case 'gue': {
      const port = parseUintText(opts.get('--tun-port'), 65535);
      if (port === undefined) {
        issues.push(issue('ipvsadm-save-bad-tunnel', 'GUE tunnels need --tun-port PORT', pos));
        return undefined;
      }
      return { type: 'gue', port, csum };
    }
    case 'gre':
      if (csum === 'remcsum') {
        issues.push(issue('ipvsadm-save-bad-tunnel', '--tun-remcsum is only for GUE tunnels', pos));
        return undefined;
      }
      return { type: 'gre', csum };
    default:
      issues.push(issue('ipvsadm-save-bad-tunnel', `unknown tunnel type '${type}' (ipip, gue or gre)`, pos));
      return undefined;
  }
}

const SCHEDULER_NAMES: ReadonlySet<string> = new Set(KERNEL_SCHEDULERS);

/** Reads `ipvsadm -S`/`-Sn` output or an `ipvsadm-restore` input. Never throws. */
export function readIpvsadmSave(text: string, file: string): ReadResult<IpvsadmSave> {
  const issues: Issue[] = [];
  const services: MutableService[] = [];
  /** Service specs (as written) whose -A line could not be applied: their -a lines are skipped, not orphans. */
  const skippedSpecs = new Map<string, number>();
  let command: string | undefined;
  let started = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    const trimmed = raw.trim();
    const pos = filePos(file, lineNo);
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    let tokens = trimmed.split(/[ \t]+/);
    if (!tokens[0]!.startsWith('-') && tokens[0] !== 'ipvsadm') {
      if (!started) {
        if (/\b(ipvsadm|cat)\b/.test(trimmed)) command = trimmed;
        else
          issues.push(issue('ipvsadm-save-ignored-line', `ignored line before the rules: '${trimmed}'`, pos, 'info'));
        continue;
      }
      issues.push(issue('ipvsadm-save-bad-line', `expected an ipvsadm rule (-A/-a …), got '${trimmed}'`, pos));
      continue;
    }
    tokens = tokens.filter((t) => t !== 'ipvsadm');
    if (tokens.length === 0) continue;
    started = true;
    const parsed = parseLine(tokens);
    if (typeof parsed === 'string') {
      issues.push(issue('ipvsadm-save-bad-rule', `${parsed}: '${trimmed}'`, pos));
      continue;
    }
    const { command: cmd, opts } = parsed;
    if (cmd === '-C') {
      services.length = 0;
      continue;
    }
    if (cmd !== '-A' && cmd !== '-a') {
      issues.push(
        unsupported(
          'ipvsadm-save-command',
          `'${cmd}' is not read (only -A, -a and -C, what ipvsadm -S writes): '${trimmed}'`,
          pos,
        ),
      );
      continue;
    }
    // The service: -t/-u/--sctp-service ADDR:PORT or -f MARK [-6]
    const specOpts = ['-t', '-u', '--sctp-service', '-f'].filter((o) => opts.has(o));
    if (specOpts.length !== 1) {
      issues.push(
        issue(
          'ipvsadm-save-bad-rule',
          specOpts.length === 0
            ? `expected a service (-t, -u, --sctp-service ADDR:PORT or -f MARK): '${trimmed}'`
            : `more than one service option: '${trimmed}'`,
          pos,
        ),
      );
      continue;
    }
    const specOpt = specOpts[0]!;
    const specText = `${specOpt} ${opts.get(specOpt)}${opts.has('-6') ? ' -6' : ''}`;
    let key: ServiceKey;
    if (specOpt === '-f') {
      const v = opts.get('-f')!;
      if (!/^-?[0-9]+$/.test(v) || Number(v) > 0xffffffff || Number(v) < -0x80000000) {
        issues.push(issue('ipvsadm-save-bad-rule', `expected a firewall mark after -f, got '${v}'`, pos));
        continue;
      }
      key = { kind: 'fwmark', fwmark: Number(v) >>> 0, family: opts.has('-6') ? 'ipv6' : 'ipv4' };
    } else {
      const ap = parseRuleAddrPort(opts.get(specOpt)!);
      if ('error' in ap) {
        if (cmd === '-A') skippedSpecs.set(specText, lineNo);
        if (cmd === '-a' && skippedSpecs.has(specText))
          issues.push(
            issue(
              'ipvsadm-save-destination-skipped',
              `real server rule skipped: its service (line ${skippedSpecs.get(specText)}) could not be read`,
              pos,
              'warning',
            ),
          );
        else
          issues.push(
            ap.names
              ? unsupported('ipvsadm-names', ap.error, pos)
              : issue('ipvsadm-save-bad-rule', `${ap.error}: '${trimmed}'`, pos),
          );
        continue;
      }
      if (ap.portGiven === false) {
        issues.push(issue('ipvsadm-save-bad-rule', `the service needs ADDRESS:PORT, got '${opts.get(specOpt)}'`, pos));
        continue;
      }
      const protocol: IpvsProtocol = specOpt === '-t' ? 'TCP' : specOpt === '-u' ? 'UDP' : 'SCTP';
      key = { kind: 'addr', protocol, address: ap.address, port: ap.port };
    }
    const existing = services.find((s) => sameServiceKey(s.key, key));

    if (cmd === '-A') {
      const origin: Origin = { kind: 'ipvs', label: `ipvsadm -A ${formatServiceKey(key)}`, pos };
      if (existing) {
        issues.push(issue('ipvsadm-save-duplicate-service', `Service already exists: ${formatServiceKey(key)}`, pos));
        continue;
      }
      const sched = opts.get('-s') ?? 'wlc';
      if (!SCHEDULER_NAMES.has(sched)) {
        skippedSpecs.set(specText, lineNo);
        issues.push(
          issue(
            'ipvsadm-unknown-scheduler',
            `unknown scheduler '${sched}': the kernel refuses the service ("Scheduler or persistence engine not found"); Linux 6.12 has ${[...SCHEDULER_NAMES].join(', ')}`,
            pos,
          ),
        );
        continue;
      }
      const v6 = (key.kind === 'fwmark' ? key.family : key.address.family) === 'ipv6';
      let persistence: Persistence | undefined;
      if (parsed.persistent || opts.has('-M') || opts.has('--pe')) {
        const timeout =
          parsed.persistentValue === undefined ? IPVS_DEFAULT_PERSISTENT_TIMEOUT : Number(parsed.persistentValue);
        let netmask = v6 ? 128 : 0xffffffff;
        const m = opts.get('-M');
        if (m !== undefined) {
          const nm = v6 ? parseUintText(m, 128) : parseIpv4(m);
          if (nm === undefined) {
            issues.push(issue('ipvsadm-save-bad-rule', `bad netmask '${m}' after -M`, pos));
          } else netmask = nm;
        }
        const pe = opts.get('--pe');
        if (parsed.persistent || pe !== undefined)
          persistence = pe === undefined ? { timeout, netmask } : { timeout, netmask, pe };
      }
      if (key.kind === 'addr' && key.port === 0 && persistence === undefined) {
        skippedSpecs.set(specText, lineNo);
        issues.push(issue('ipvsadm-save-zero-port', 'Zero port specified for non-persistent service', pos));
        continue;
      }
      const onePacket = opts.has('-o');
      if (onePacket && key.kind === 'addr' && key.protocol !== 'UDP') {
        skippedSpecs.set(specText, lineNo);
        issues.push(issue('ipvsadm-save-ops', 'One-Packet Scheduling is only for UDP virtual services', pos));
        continue;
      }
      let schedFlags = 0;
      const b = opts.get('-b');
      if (b !== undefined) {
        for (const name of b.split(',')) {
          const generic = /^flag-([123])$/.exec(name);
          const m = /^(sh|mh)-(fallback|port)$/.exec(name);
          if (generic) schedFlags |= 1 << (Number(generic[1]) - 1);
          else if (m && m[1] === sched) schedFlags |= m[2] === 'fallback' ? 1 : 2;
          else
            issues.push(
              issue(
                'ipvsadm-save-bad-sched-flag',
                m
                  ? `incompatible scheduler flag '${name}' for scheduler '${sched}'`
                  : `unknown scheduler flag '${name}'`,
                pos,
              ),
            );
        }
      }
      services.push({
        key,
        scheduler: sched,
        schedFlags,
        ...(persistence ? { persistence } : {}),
        onePacket,
        destinations: [],
        origin,
      });
      continue;
    }

    // -a
    if (!existing) {
      if (skippedSpecs.has(specText))
        issues.push(
          issue(
            'ipvsadm-save-destination-skipped',
            `real server rule skipped: its service (line ${skippedSpecs.get(specText)}) could not be read`,
            pos,
            'warning',
          ),
        );
      else issues.push(issue('ipvsadm-save-no-service', `Service not defined: ${specText}`, pos));
      continue;
    }
    const r = opts.get('-r');
    if (r === undefined) {
      issues.push(
        issue('ipvsadm-save-bad-rule', "You need to supply the 'real-server' option for the 'add-server' command", pos),
      );
      continue;
    }
    const ap = parseRuleAddrPort(r);
    if ('error' in ap) {
      issues.push(
        ap.names
          ? unsupported('ipvsadm-names', ap.error, pos)
          : issue('ipvsadm-save-bad-rule', `${ap.error}: '${trimmed}'`, pos),
      );
      continue;
    }
    const methods = ['-g', '-i', '-m'].filter((o) => opts.has(o));
    if (methods.length > 1) {
      issues.push(issue('ipvsadm-save-bad-rule', `more than one forwarding method (${methods.join(', ')})`, pos));
      continue;
    }
    const method = methods[0] ?? '-g';
    let forwarding: Forwarding;
    if (method === '-i') {
      const encap = parseTunnel(opts, pos, issues);
      if (encap === undefined) continue;
      forwarding = { kind: 'tunnel', encap };
    } else {
      if (opts.has('--tun-type') || opts.has('--tun-port')) {
        issues.push(issue('ipvsadm-save-bad-rule', 'Tunnel options conflict with forward method', pos));
        continue;
      }
      forwarding = method === '-m' ? { kind: 'masq' } : { kind: 'route' };
    }
    const svcPort = key.kind === 'addr' ? key.port : 0;
    let port = ap.portGiven ? ap.port : svcPort;
    if (key.kind === 'addr' && method !== '-m' && port !== svcPort) {
      issues.push(
        issue(
          'ipvsadm-save-port-forced',
          `${method === '-g' ? 'DR' : 'TUN'} cannot remap ports: ipvsadm uses the service port ${svcPort} instead of ${port}`,
          pos,
          'warning',
        ),
      );
      port = svcPort;
    }
    if (ap.address.family !== (key.kind === 'fwmark' ? key.family : key.address.family) && method !== '-i') {
      issues.push(
        issue('ipvsadm-save-bad-rule', 'mixed address families are only allowed for tunnel destinations', pos),
      );
      continue;
    }
    const weight = opts.has('-w') ? parseUintText(opts.get('-w')) : 1;
    const upper = opts.has('-x') ? parseUintText(opts.get('-x')) : 0;
    const lower = opts.has('-y') ? parseUintText(opts.get('-y')) : 0;
    if (weight === undefined || upper === undefined || lower === undefined) {
      issues.push(issue('ipvsadm-save-bad-rule', `weight and thresholds must be unsigned numbers: '${trimmed}'`, pos));
      continue;
    }
    if (lower > upper) {
      issues.push(issue('ipvsadm-save-bad-rule', 'Numerical result out of range (l-threshold > u-threshold)', pos));
      continue;
    }
    if (existing.destinations.some((d) => d.port === port && d.address.addr === ap.address.addr)) {
      issues.push(issue('ipvsadm-save-duplicate-destination', 'Destination already exists', pos));
      continue;
    }
    const origin: Origin = {
      kind: 'ipvs',
      label: `ipvsadm -a ${formatAddrPort(ap.address, port)} of ${formatServiceKey(key)}`,
      pos,
      via: existing.origin,
    };
    existing.destinations.unshift({
      address: ap.address,
      port,
      forwarding,
      weight,
      ...(opts.has('-x') || opts.has('-y') ? { upperThreshold: upper, lowerThreshold: lower } : {}),
      origin,
    });
  }
  if (!started && services.length === 0) {
    issues.push(issue('ipvsadm-save-empty', 'no ipvsadm rules found', filePos(file, 0)));
    return { value: undefined, issues };
  }
  const table: IpvsTable = { order: 'kernel', services: services.map((s) => ({ ...s })) };
  return { value: command === undefined ? { table } : { table, command }, issues };
}
