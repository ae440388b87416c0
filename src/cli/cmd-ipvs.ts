/**
 * `lvsdoctor ipvs show FILE [--format ipvsadm|save|json]` and `lvsdoctor ipvs simulate FILE --connections N
 * [--clients SPEC]`. FILE is an `ipvsadm -L -n` listing, an `ipvsadm -S`/`-Sn` save, a keepalived.conf or
 * `/proc/net/ip_vs` (`show` also re-renders `ipvsadm -L -n -c` connection listings, `/proc/net/ip_vs_conn` and
 * `--timeout` lines). Exit codes: 0 fine, 1 a problem found (simulate: some connections got no real server),
 * 2 bad input or usage. Input problems are printed as `file:line: error: message [code]`.
 */
import { resolve } from 'node:path';
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { OverheadMode } from '../ipvs/dest-state.ts';
import { IpvsEngine } from '../ipvs/engine.ts';
import { type IpvsInput, readIpvsInput } from '../ipvs/ipvs-input.ts';
import { formatConnEndpoint, writeIpvsadmConnectionList } from '../ipvs/ipvsadm-conn-list.ts';
import { serviceName, writeIpvsadmList } from '../ipvs/ipvsadm-list-writer.ts';
import { writeIpvsadmSave } from '../ipvs/ipvsadm-save.ts';
import { writeIpvsadmTimeout } from '../ipvs/ipvsadm-timeout.ts';
import {
  formatAddress,
  formatAddrPort,
  forwardName,
  type IpvsDestination,
  type IpvsService,
  type IpvsTable,
  schedFlagNames,
} from '../ipvs/model.ts';
import { formatClientSpec, type Lifecycle, parseClientSpec, runWorkload } from '../ipvs/workload.ts';
import { FileError, readInputText } from '../source/files.ts';
import { formatIssue, type Issue } from '../source/issue.ts';
import { IPPROTO_UDP } from '../wire/types.ts';
import { type Io, reportIssues } from './io.ts';
import { originJson, toJsonText } from './json.ts';

export type IpvsShowFormat = 'ipvsadm' | 'save' | 'json';

export interface IpvsShowOptions {
  readonly format: IpvsShowFormat;
}

interface Loaded {
  readonly input: IpvsInput;
  readonly issues: readonly Issue[];
}

/** Reads FILE and prints its issues; undefined (after printing why) when the command must stop with exit 2. */
function load(io: Io, file: string): Loaded | undefined {
  let text: string;
  try {
    text = readInputText(resolve(io.cwd ?? process.cwd(), file));
  } catch (e) {
    if (!(e instanceof FileError)) throw e;
    io.stderr(`${file}: error: cannot read the file: ${e.reason} [ipvs-input-unreadable]\n`);
    return undefined;
  }
  const r = readIpvsInput(text, file);
  const bad = reportIssues(io, r.issues);
  if (bad || r.value === undefined) return undefined;
  return { input: r.value, issues: r.issues };
}

function flagList(svc: IpvsService): string[] {
  const names = schedFlagNames(svc.scheduler ?? '');
  const out: string[] = [];
  for (let bit = 0; bit < 3; bit++) if (svc.schedFlags & (1 << bit)) out.push(names[bit]!);
  return out;
}

function destJson(d: IpvsDestination): unknown {
  const f = d.forwarding;
  return {
    address: formatAddress(d.address),
    port: d.port,
    ...(f ? { forward: forwardName(f), ...(f.kind === 'tunnel' && f.encap ? { tunnel: f.encap } : {}) } : {}),
    ...(d.weight !== undefined ? { weight: d.weight } : {}),
    ...(d.upperThreshold !== undefined ? { upperThreshold: d.upperThreshold } : {}),
    ...(d.lowerThreshold !== undefined ? { lowerThreshold: d.lowerThreshold } : {}),
    ...(d.activeConns !== undefined ? { activeConns: d.activeConns } : {}),
    ...(d.inactConns !== undefined ? { inactConns: d.inactConns } : {}),
    ...(d.persistConns !== undefined ? { persistConns: d.persistConns } : {}),
    ...(d.stats ? { stats: d.stats } : {}),
    ...(d.rates ? { rates: d.rates } : {}),
    origin: originJson(d.origin),
  };
}

function serviceJson(s: IpvsService): unknown {
  const k = s.key;
  return {
    service: serviceName(k).replace(/ +/g, ' '),
    ...(k.kind === 'fwmark'
      ? { fwmark: k.fwmark, family: k.family }
      : { protocol: k.protocol, address: formatAddress(k.address), port: k.port }),
    ...(s.scheduler !== undefined ? { scheduler: s.scheduler } : {}),
    flags: flagList(s),
    ...(s.persistence
      ? {
          persistence: {
            timeout: s.persistence.timeout,
            netmask:
              (k.kind === 'fwmark' ? k.family : k.address.family) === 'ipv4'
                ? formatIpv4((s.persistence.netmask >>> 0) as Ipv4)
                : s.persistence.netmask,
            ...(s.persistence.pe ? { pe: s.persistence.pe } : {}),
          },
        }
      : {}),
    onePacket: s.onePacket,
    ...(s.stats ? { stats: s.stats } : {}),
    ...(s.rates ? { rates: s.rates } : {}),
    origin: originJson(s.origin),
    destinations: s.destinations.map(destJson),
  };
}

function tableJson(t: IpvsTable): unknown {
  return { order: t.order, services: t.services.map(serviceJson) };
}

function showJson(input: IpvsInput, issues: readonly Issue[]): unknown {
  const base = {
    input: input.kind,
    issues: issues.map((i) => ({
      code: i.code,
      severity: i.unsupported ? 'unsupported' : i.severity,
      message: i.message,
      ...(i.pos ? { file: i.pos.file, line: i.pos.line } : {}),
    })),
  };
  switch (input.kind) {
    case 'ipvsadm-list':
      return {
        ...base,
        ...(input.listing.header ? { header: input.listing.header } : {}),
        format: input.listing.format,
        ...tableJsonFields(input.table),
      };
    case 'proc-ip-vs':
      return { ...base, ...(input.header ? { header: input.header } : {}), ...tableJsonFields(input.table) };
    case 'ipvsadm-save':
      return { ...base, ...tableJsonFields(input.table) };
    case 'keepalived': {
      const c = input.config;
      return {
        ...base,
        ...tableJsonFields(input.table),
        keepalived: {
          globals: c.globals,
          vrrpInstances: c.vrrpInstances.map((v) => ({
            ...v,
            virtualIpaddresses: v.virtualIpaddresses.map((x) => ({ ...x, address: formatAddress(x.address) })),
            pos: undefined,
            line: v.pos.line,
          })),
          virtualServers: c.virtualServers.map((v) => ({
            name: v.name,
            form: v.form,
            line: v.pos.line,
            delayLoop: v.delayLoop,
            quorum: v.quorum,
            hysteresis: v.hysteresis,
            inhibitOnFailure: v.inhibitOnFailure,
            ...(v.sorryServer
              ? { sorryServer: { address: formatAddress(v.sorryServer.address), port: v.sorryServer.port } }
              : {}),
            realServers: v.realServers.map((r) => ({
              address: formatAddress(r.address),
              port: r.configuredPort,
              weight: r.weight,
              inhibitOnFailure: r.inhibitOnFailure,
              line: r.pos.line,
              checkers: r.checkers.map((ch) => ({ ...ch, pos: undefined, line: ch.pos.line, settings: undefined })),
            })),
          })),
        },
      };
    }
    case 'ipvsadm-connections':
    case 'proc-ip-vs-conn':
      return {
        ...base,
        connections: input.connections.rows.map((r) => ({
          protocol: r.protocol,
          expires: r.expires,
          state: r.state,
          source: formatConnEndpoint(r.source),
          virtual: formatConnEndpoint(r.virtual),
          destination: formatConnEndpoint(r.destination),
          ...(r.peName !== undefined ? { peName: r.peName, peData: r.peData } : {}),
          ...(r.pos ? { line: r.pos.line } : {}),
        })),
      };
    case 'ipvsadm-timeout':
      return { ...base, timeouts: input.timeouts };
  }
}

function tableJsonFields(t: IpvsTable): { order: string; services: unknown } {
  return tableJson(t) as { order: string; services: unknown };
}

/** `ipvs show FILE --format ipvsadm|save|json`. */
export function runIpvsShow(io: Io, file: string, options: IpvsShowOptions): number {
  const format = options.format;
  if (format !== 'ipvsadm' && format !== 'save' && format !== 'json') {
    io.stderr(`error: --format must be ipvsadm, save or json, not "${String(format)}"\n`);
    return 2;
  }
  const loaded = load(io, file);
  if (!loaded) return 2;
  const { input, issues } = loaded;
  if (format === 'json') {
    io.stdout(toJsonText(showJson(input, issues)));
    return 0;
  }
  if (!('table' in input)) {
    if (format === 'save') {
      io.stderr(`${file}: error: ${input.kind} input holds no services to save [ipvs-input-no-table]\n`);
      return 2;
    }
    if (input.kind === 'ipvsadm-timeout') io.stdout(writeIpvsadmTimeout(input.timeouts));
    else io.stdout(writeIpvsadmConnectionList(input.connections.rows, input.connections.persistentConn));
    return 0;
  }
  if (format === 'save') {
    io.stdout(writeIpvsadmSave(input.table));
    return 0;
  }
  if (input.kind === 'ipvsadm-list') {
    const l = input.listing;
    io.stdout(
      writeIpvsadmList(l.table, {
        format: l.format,
        exact: l.exact,
        header: l.header ?? false,
        nosort: l.table.order === 'kernel',
      }),
    );
    return 0;
  }
  io.stdout(writeIpvsadmList(input.table, input.kind === 'proc-ip-vs' && input.header ? { header: input.header } : {}));
  return 0;
}

// ───────────────────────────── simulate ─────────────────────────────

export interface IpvsSimulateOptions {
  readonly connections: number;
  readonly clients?: string;
  /**
   * Client packets of each connection: `syn` (SYN only: half-open), `established` (SYN, ACK; default) or `closed`
   * (SYN, ACK, FIN+ACK). UDP services get one datagram per connection.
   */
  readonly lifecycle?: Lifecycle;
  /** Milliseconds between connection starts (default 10). */
  readonly intervalMs?: number;
  /** Connection-overhead formula and overload rules (default classic). */
  readonly overhead?: OverheadMode;
}

function pct(n: number, total: number): string {
  return total === 0 ? '-' : `${((100 * n) / total).toFixed(1)}%`;
}

/** `ipvs simulate FILE --connections N [--clients SPEC]`. */
export function runIpvsSimulate(io: Io, file: string, options: IpvsSimulateOptions): number {
  const n = options.connections;
  if (!Number.isInteger(n) || n < 1 || n > 100_000_000) {
    io.stderr(`error: --connections must be an integer from 1 to 100000000, not "${String(n)}"\n`);
    return 2;
  }
  const spec = parseClientSpec(options.clients);
  if (typeof spec === 'string') {
    io.stderr(`error: --clients: ${spec}\n`);
    return 2;
  }
  const lifecycle = options.lifecycle ?? 'established';
  const interval = options.intervalMs ?? 10;
  const loaded = load(io, file);
  if (!loaded) return 2;
  if (!('table' in loaded.input)) {
    io.stderr(`${file}: error: ${loaded.input.kind} input holds no services to simulate [ipvs-input-no-table]\n`);
    return 2;
  }
  const table = loaded.input.table;
  const engine = new IpvsEngine(table, { overhead: options.overhead ?? 'classic' });
  let bad = false;
  for (const i of engine.issues) {
    if (i.severity === 'error') bad = true;
    if (i.code !== 'ipvs-list-order-unknown') io.stderr(`${formatIssue(i)}\n`);
  }
  if (table.order === 'sorted' && table.services.some((s) => s.destinations.length > 1))
    io.stdout(
      'note: the input is sorted by address (ipvsadm -L without --nosort), which hides the kernel list order that ' +
        'breaks ties; the listed order is assumed\n\n',
    );
  let problem = bad;
  const { services, now } = runWorkload(engine, { connections: n, clients: spec, lifecycle, intervalMs: interval });
  for (const s of services) if (s.kind === 'skipped') io.stdout(`${s.title} ${s.svc.schedulerName}: ${s.reason}\n\n`);
  for (const run of services) {
    if (run.kind !== 'run') continue;
    const { svc, counts } = run;
    const failed = counts.noDestination + counts.dropped + counts.notHandled;
    if (failed > 0) problem = true;
    const what =
      run.protocol === IPPROTO_UDP
        ? 'one UDP datagram each'
        : lifecycle === 'syn'
          ? 'client SYN only (half-open)'
          : lifecycle === 'established'
            ? 'client SYN, ACK'
            : 'client SYN, ACK, FIN';
    let out = `${run.title} ${svc.schedulerName}: ${n} new connection${n === 1 ? '' : 's'} from ${formatClientSpec(spec)}; one every ${interval} ms; ${what}\n`;
    out += `  -> ${'RemoteAddress:Port'.padEnd(28)} ${'Forward'.padEnd(7)} ${'Weight'.padEnd(6)} ${'Conns'.padStart(10)} ${'Share'.padStart(6)} ${'ActiveConn'.padEnd(10)} ${'InActConn'.padEnd(10)} PersistConn\n`;
    for (const d of svc.dests) {
      const c = run.perDest.get(d) ?? 0;
      out += `  -> ${formatAddrPort(d.address, d.port).padEnd(28)} ${forwardName(d.forwarding).padEnd(7)} ${String(d.weight).padEnd(6)} ${String(c).padStart(10)} ${pct(c, n).padStart(6)} ${String(d.activeConns).padEnd(10)} ${String(d.inactConns).padEnd(10)} ${d.persistConns}\n`;
    }
    const parts: string[] = [];
    if (counts.scheduled) parts.push(`${counts.scheduled} scheduled by ${svc.schedulerName}`);
    if (counts.templateNew) parts.push(`${counts.templateNew} by ${svc.schedulerName} creating a persistence template`);
    if (counts.templateReused) parts.push(`${counts.templateReused} following an existing persistence template`);
    if (counts.existing) parts.push(`${counts.existing} matched an existing entry (client port reused)`);
    if (counts.noDestination)
      parts.push(`${counts.noDestination} no destination → ICMP port unreachable ("${counts.firstLog}")`);
    if (counts.dropped) parts.push(`${counts.dropped} dropped (${counts.firstDrop})`);
    if (counts.notHandled) parts.push(`${counts.notHandled} not handled (${counts.firstNotHandled})`);
    out += `  decisions: ${parts.join('; ') || 'none'}\n\n`;
    io.stdout(out);
  }
  io.stdout(`ipvsadm -L -n at the end of the simulation (t = ${(now / 1000).toFixed(2)} s):\n`);
  io.stdout(writeIpvsadmList(engine.snapshot(now)));
  return problem ? 1 : 0;
}
