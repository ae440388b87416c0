/**
 * Renders `ipvsadm -L -n` listings byte for byte as ipvsadm 1.31 prints them (printf formats of `list_all`,
 * `print_title`, `print_service_entry`, `print_largenum`), including the trailing spaces of default destination
 * lines. Names are always numeric (`-n`).
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import { TextBuilder } from '../source/strings.ts';
import { sortLikeIpvsadm } from './ipvsadm-sort.ts';
import {
  formatAddrPort,
  forwardName,
  IPVS_DEFAULT_CONN_TAB_SIZE,
  IPVS_VERSION,
  type IpvsDestination,
  type IpvsHeader,
  type IpvsRates,
  type IpvsService,
  type IpvsStats,
  type IpvsTable,
  type ServiceKey,
  schedFlagNames,
  type TunnelEncap,
} from './model.ts';
import { addrPortName, type NameResolver } from './names.ts';

export type IpvsadmListFormat = 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn' | 'tun-info';

export interface IpvsadmListOptions {
  /** Which of `--stats`, `--rate`, `--thresholds`, `--persistent-conn`, `--tun-info` (default: none). */
  readonly format?: IpvsadmListFormat;
  /** `--exact`: no K/M/G/T abbreviation in `--stats`/`--rate`. */
  readonly exact?: boolean;
  /**
   * The version line. Default: `IP Virtual Server version 1.2.1 (size=4096)`. `false` omits it, as ipvsadm does
   * when listing one service (`ipvsadm -L -n -t VIP:PORT`).
   */
  readonly header?: IpvsHeader | false;
  /** `--nosort`: print in the table's order instead of ipvsadm's address order. */
  readonly nosort?: boolean;
  /** Without `-n`: host and service names (IPv4 columns truncated at 33/28 characters, IPv6 never). */
  readonly names?: NameResolver;
}

function left(s: string | number, width: number): string {
  return String(s).padEnd(width, ' ');
}

function right(s: string | number, width: number): string {
  return String(s).padStart(width, ' ');
}

/** ipvsadm `print_largenum`: 9 characters unless `--exact` and more than 8 digits. */
export function formatLargeNumber(i: number, exact: boolean): string {
  if (exact) {
    const s = String(i);
    return right(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 100_000_000) return right(i, 9);
  if (i < 1_000_000_000) return right(Math.floor(i / 1000), 8) + 'K';
  if (i < 100_000_000_000) return right(Math.floor(i / 1_000_000), 8) + 'M';
  if (i < 100_000_000_000_000) return right(Math.floor(i / 1_000_000_000), 8) + 'G';
  return right(Math.floor(i / 1_000_000_000_000), 8) + 'T';
}

/** fwmark printed with `%d` (ipvsadm ≤ 1.31 bug: marks ≥ 2^31 print negative). */
function fwmarkText(mark: number): string {
  return String(mark | 0);
}

function protoName(k: ServiceKey): 'tcp' | 'udp' | 'sctp' {
  return k.kind === 'fwmark' ? 'tcp' : k.protocol === 'TCP' ? 'tcp' : k.protocol === 'UDP' ? 'udp' : 'sctp';
}

/** The service column (`svc_name`), truncated to 33 characters for IPv4 as ipvsadm does. */
export function serviceName(k: ServiceKey, names?: NameResolver): string {
  let s: string;
  let v4: boolean;
  if (k.kind === 'fwmark') {
    s = `FWM  ${fwmarkText(k.fwmark)}${k.family === 'ipv6' ? ' IPv6' : ''}`;
    v4 = k.family === 'ipv4';
  } else {
    const ap = names ? addrPortName(k.address, k.port, protoName(k), names) : formatAddrPort(k.address, k.port);
    s = `${left(k.protocol, 4)} ${ap}`;
    v4 = k.address.family === 'ipv4';
  }
  return v4 ? s.slice(0, 33) : s;
}

function destName(d: IpvsDestination, k: ServiceKey, names?: NameResolver): string {
  const s = names ? addrPortName(d.address, d.port, protoName(k), names) : formatAddrPort(d.address, d.port);
  return d.address.family === 'ipv4' ? s.slice(0, 28) : s;
}

function schedFlagsText(svc: IpvsService): string {
  const names = schedFlagNames(svc.scheduler ?? '');
  const out: string[] = [];
  for (let bit = 0; bit < 3; bit++) if (svc.schedFlags & (1 << bit)) out.push(names[bit]!);
  return out.join(',');
}

/** The normal service line (`TCP  192.0.2.208:80 rr (flags) persistent 360 mask … pe … ops`). */
export function serviceLine(svc: IpvsService, names?: NameResolver): string {
  let line = `${serviceName(svc.key, names)} ${svc.scheduler ?? '?'}`;
  if (svc.schedFlags & 7) line += ` (${schedFlagsText(svc)})`;
  const p = svc.persistence;
  if (p) {
    line += ` persistent ${p.timeout}`;
    const v6 = (svc.key.kind === 'fwmark' ? svc.key.family : svc.key.address.family) === 'ipv6';
    if (v6) {
      if (p.netmask !== 128) line += ` mask ${p.netmask}`;
    } else if (p.netmask >>> 0 !== 0xffffffff) line += ` mask ${formatIpv4((p.netmask >>> 0) as never)}`;
    if (p.pe) line += ` pe ${p.pe}`;
  }
  if (svc.onePacket) line += ' ops';
  return line;
}

function csumText(c: 'nocsum' | 'csum' | 'remcsum'): string {
  return c === 'nocsum' ? '-c' : c === 'csum' ? '+c' : 'r+c';
}

function tunInfo(d: IpvsDestination): string {
  if (d.forwarding?.kind !== 'tunnel') return 'n/a';
  const e: TunnelEncap = d.forwarding.encap ?? { type: 'ipip' };
  switch (e.type) {
    case 'ipip':
      return 'ipip';
    case 'gue':
      return `gue:${e.port}:${csumText(e.csum)}`.slice(0, 15);
    case 'gre':
      return `gre:${csumText(e.csum)}`;
  }
}

const ZERO_STATS: IpvsStats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
const ZERO_RATES: IpvsRates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

function statsCols(s: IpvsStats, exact: boolean): string {
  return (
    formatLargeNumber(s.conns, exact) +
    formatLargeNumber(s.inPkts, exact) +
    formatLargeNumber(s.outPkts, exact) +
    formatLargeNumber(s.inBytes, exact) +
    formatLargeNumber(s.outBytes, exact)
  );
}

function titleLines(format: IpvsadmListFormat): string {
  switch (format) {
    case 'default':
      return (
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n'
      );
    case 'stats':
      return `${left('Prot LocalAddress:Port', 33)} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((s) => right(s, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
    case 'rate':
      return `${left('Prot LocalAddress:Port', 33)} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((s) => right(s, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
    case 'thresholds':
      return `${left('Prot LocalAddress:Port', 33)} ${left('Uthreshold', 10)} ${left('Lthreshold', 10)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
    case 'persistent-conn':
      return `${left('Prot LocalAddress:Port', 33)} ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
    case 'tun-info':
      return (
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n'
      );
  }
}

function serviceRow(svc: IpvsService, format: IpvsadmListFormat, exact: boolean, names?: NameResolver): string {
  switch (format) {
    case 'stats':
      return left(serviceName(svc.key, names), 33) + statsCols(svc.stats ?? ZERO_STATS, exact);
    case 'rate': {
      const r = svc.rates ?? ZERO_RATES;
      return (
        left(serviceName(svc.key, names), 33) +
        statsCols({ conns: r.cps, inPkts: r.inPps, outPkts: r.outPps, inBytes: r.inBps, outBytes: r.outBps }, exact)
      );
    }
    default:
      return serviceLine(svc, names);
  }
}

function destRow(
  d: IpvsDestination,
  k: ServiceKey,
  format: IpvsadmListFormat,
  exact: boolean,
  names?: NameResolver,
): string {
  const name = destName(d, k, names);
  const active = d.activeConns ?? 0;
  const inact = d.inactConns ?? 0;
  switch (format) {
    case 'default':
      return `  -> ${left(name, 28)} ${left(d.forwarding ? forwardName(d.forwarding) : '?', 7)} ${left(d.weight ?? 0, 6)} ${left(active, 10)} ${left(inact, 10)}`;
    case 'tun-info':
      return `  -> ${left(name, 28)} ${left(d.forwarding ? forwardName(d.forwarding) : '?', 7)} ${left(tunInfo(d), 13)} ${left(d.weight ?? 0, 6)} ${left(active, 10)} ${left(inact, 10)}`;
    case 'thresholds':
      return `  -> ${left(name, 28)} ${left(d.upperThreshold ?? 0, 10)} ${left(d.lowerThreshold ?? 0, 10)} ${left(active, 10)} ${left(inact, 10)}`;
    case 'persistent-conn':
      return `  -> ${left(name, 28)} ${left(d.weight ?? 0, 9)} ${left(d.persistConns ?? 0, 11)} ${left(active, 10)} ${left(inact, 10)}`;
    case 'stats':
      return `  -> ${left(name, 28)}${statsCols(d.stats ?? ZERO_STATS, exact)}`;
    case 'rate': {
      const r = d.rates ?? ZERO_RATES;
      return `  -> ${left(name, 28)} ${right(r.cps, 8)} ${right(r.inPps, 8)} ${right(r.outPps, 8)}${formatLargeNumber(r.inBps, exact)}${formatLargeNumber(r.outBps, exact)}`;
    }
  }
}

/** `ipvsadm -L -n [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--exact] [--nosort]`. */
export function writeIpvsadmList(table: IpvsTable, options: IpvsadmListOptions = {}): string {
  const format = options.format ?? 'default';
  const exact = options.exact ?? false;
  const t = options.nosort ? table : sortLikeIpvsadm(table);
  const out = new TextBuilder();
  if (options.header !== false) {
    const h = options.header ?? { version: IPVS_VERSION, size: IPVS_DEFAULT_CONN_TAB_SIZE };
    out.add(`IP Virtual Server version ${h.version} (size=${h.size})\n`);
  }
  out.add(titleLines(format));
  for (const svc of t.services) {
    out.add(`${serviceRow(svc, format, exact, options.names)}\n`);
    for (const d of svc.destinations) out.add(`${destRow(d, svc.key, format, exact, options.names)}\n`);
  }
  return out.text();
}
