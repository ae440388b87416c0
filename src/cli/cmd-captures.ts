/**
 * `lvsdoctor captures FILE@POINT... [--json] [--scenario DIR]`: correlates captures taken at several points and says
 * where packets vanished. Exit 0 when every packet is accounted for, 1 when one seen at a point is missing where it
 * should have gone next, 2 on bad input. With a scenario, each flow's first packet is also walked through the model
 * and the report names the hop where reality departs from the simulated path.
 */
import { statSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { ExpectedHop, ExpectedPath, FlowQuery } from '../capture/correlate.ts';
import { type CaptureInput, correlateCaptureFiles, isText } from '../capture/correlate-files.ts';
import { renderCorrelation } from '../capture/render-correlation.ts';
import { frameList, localInterfaceName, showCapture } from '../capture/show.ts';
import type { TextNames } from '../capture/tcpdump-text.ts';
import type { IpAddress } from '../ipvs/model.ts';
import { LIMITS } from '../source/files.ts';
import { implicit } from '../source/origin.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Node, TcpProbeSpec } from '../topology/model.ts';
import { openSession, runProbe, type Session } from '../trace/session.ts';
import { type Io, reportIssues } from './io.ts';
import { toJsonText } from './json.ts';
import { progress } from './progress.ts';
import { loadForCommand } from './scenario-input.ts';

export interface CapturesOptions {
  readonly json: boolean;
  readonly scenario?: string;
}

/** `FILE@POINT`; without `@POINT` the point is the file name without extension. */
export function parseCaptureSpec(spec: string): CaptureInput | undefined {
  const at = spec.lastIndexOf('@');
  if (at === 0 || at === spec.length - 1) return undefined;
  if (at < 0) return { file: spec, point: basename(spec, extname(spec)) };
  return { file: spec.slice(0, at), point: spec.slice(at + 1) };
}

const MAX_MODEL_RUNS = 200;

function nodeWithAddress(loaded: LoadedScenario, a: Ipv4): Node | undefined {
  for (const n of loaded.scenario.nodes.values())
    for (const i of n.interfaces.values()) if (i.addrs.some((x) => x.prefix.addr === a)) return n;
  return undefined;
}

/** The model's path for a TCP flow: the SYN's captures (matched by sequence number) in time order. */
function modelExpect(session: Session): (q: FlowQuery) => ExpectedPath | undefined {
  const loaded = session.loaded;
  const cache = new Map<string, ExpectedPath | undefined>();
  const client = [...loaded.scenario.nodes.values()].find((n) => n.kind === 'client');
  return (q) => {
    if (q.proto !== 6) return undefined;
    const key = `${q.src}|${q.dst}|${q.dport}`;
    if (cache.has(key)) return cache.get(key);
    if (cache.size >= MAX_MODEL_RUNS) return undefined;
    const from = nodeWithAddress(loaded, q.src) ?? client;
    if (!from) {
      cache.set(key, undefined);
      return undefined;
    }
    const probe: TcpProbeSpec = {
      kind: 'tcp',
      name: `capture ${formatIpv4(q.src)}.${q.sport} > ${formatIpv4(q.dst)}.${q.dport}`,
      from: from.name,
      to: q.dst,
      dport: q.dport,
      sport: q.sport,
      seq: q.seq,
      ipId: q.ipId,
      window: q.window ?? 64240,
      tsval: q.tsval ?? 1,
      timeNs: q.timeNs,
      origin: implicit('a flow found in the captures'),
    };
    const trace = runProbe(session, probe);
    const hops: ExpectedHop[] = [];
    for (const cap of trace.captures) {
      const p = cap.frame.payload;
      if (p.kind !== 'ipv4') continue;
      const inner = p.payload.kind === 'ipv4' ? p.payload.payload : p.payload;
      if (inner.kind !== 'tcp' || inner.seq !== q.seq || (inner.flags & 0x12) !== 0x02) continue;
      hops.push({ point: cap.point, srcMac: cap.frame.src, dstMac: cap.frame.dst });
    }
    const out: ExpectedPath = {
      hops,
      end: trace.summary,
      ok: trace.disposition === 'replied' || trace.disposition === 'delivered',
    };
    cache.set(key, out);
    return out;
  };
}

/** Names a paste without `-n` may print for the scenario's nodes: the node's name, its first address. */
function scenarioHosts(loaded: LoadedScenario): Map<string, Ipv4> {
  const out = new Map<string, Ipv4>();
  for (const n of loaded.scenario.nodes.values())
    for (const i of n.interfaces.values()) {
      const a = i.addrs[0]?.prefix.addr;
      if (a !== undefined && !out.has(n.name)) out.set(n.name, a);
    }
  return out;
}

/**
 * Names a paste of `point` may print without `-n`, as the capturing machine resolved them: its own /etc/hosts and
 * /etc/services first (from its bundle), then the scenario's node names, then the other guests' files.
 */
function pointNames(loaded: LoadedScenario, point: string, nodes: ReadonlyMap<string, Ipv4>): TextNames {
  const node = point.includes(':') ? point.slice(0, point.indexOf(':')) : point;
  const own = loaded.etcNames?.get(node);
  const others = [...(loaded.etcNames ?? [])].filter(([g]) => g !== node).map(([, n]) => n);
  const hosts = new Map<string, Ipv4>();
  const addHosts = (m: ReadonlyMap<string, IpAddress> | undefined): void => {
    for (const [name, a] of m ?? []) if (a.family === 'ipv4' && !hosts.has(name)) hosts.set(name, a.addr);
  };
  addHosts(own?.hosts);
  for (const [name, a] of nodes) if (!hosts.has(name)) hosts.set(name, a);
  for (const n of others) addHosts(n.hosts);
  const services = new Map<string, number>();
  for (const n of [own, ...others])
    for (const [name, port] of n?.services ?? []) if (!services.has(name)) services.set(name, port);
  return { hosts, ...(services.size > 0 ? { services } : {}) };
}

/** Capture points of the scenario (from every probe's walk), to warn about points the model does not know. */
function scenarioPoints(session: Session): Set<string> {
  const out = new Set<string>();
  for (const node of session.loaded.scenario.nodes.values())
    for (const i of node.interfaces.values()) out.add(`${node.name}:${i.name}`);
  return out;
}

export function runCaptures(io: Io, specs: readonly string[], o: CapturesOptions): number {
  if (specs.length === 0) {
    io.stderr('lvsdoctor captures: name at least one capture as FILE@POINT\n');
    return 2;
  }
  const inputs: CaptureInput[] = [];
  for (const s of specs) {
    const p = parseCaptureSpec(s);
    if (!p) {
      io.stderr(`lvsdoctor captures: "${s}" is not FILE@POINT\n`);
      return 2;
    }
    if (inputs.some((x) => x.point === p.point)) {
      io.stderr(`lvsdoctor captures: point "${p.point}" is named twice\n`);
      return 2;
    }
    inputs.push(p);
  }
  // The captures together are bounded in bytes (time) here and in packets (memory) while they are read.
  let total = 0;
  for (const i of inputs) {
    const size = statSync(i.file, { throwIfNoEntry: false })?.size ?? 0;
    total += size;
    if (size > LIMITS.captureText && isText(i.file)) {
      io.stderr(
        `lvsdoctor captures: ${i.file} is tcpdump text of ${Math.round(size / 1048576)} MiB; text is read whole, at most ${LIMITS.captureText / 1048576} MiB (capture to a file instead: tcpdump -w FILE.pcap, read in chunks up to ${LIMITS.captureTotal / 1073741824} GiB)\n`,
      );
      return 2;
    }
  }
  if (total > LIMITS.captureTotal) {
    io.stderr(
      `lvsdoctor captures: the captures hold ${Math.round(total / 1048576)} MiB; at most ${LIMITS.captureTotal / 1048576} MiB are correlated at once (cut them to the time of interest, e.g. editcap -A/-B, or tcpdump -r with a filter)\n`,
    );
    return 2;
  }
  let expect: ((q: FlowQuery) => ExpectedPath | undefined) | undefined;
  let hosts: Map<string, Ipv4> | undefined;
  if (o.scenario !== undefined) {
    const loaded = loadForCommand(io, o.scenario);
    if (!loaded) return 2;
    const session = openSession(loaded);
    if (reportIssues(io, session.issues)) return 2;
    const known = scenarioPoints(session);
    for (const i of inputs)
      if (!known.has(i.point))
        io.stderr(
          `lvsdoctor captures: warning: point "${i.point}" is not an interface of the scenario (name points node:iface, e.g. ${[...known].slice(0, 3).join(', ')})\n`,
        );
    expect = modelExpect(session);
    hosts = scenarioHosts(loaded);
    for (let k = 0; k < inputs.length; k++)
      inputs[k] = { ...inputs[k]!, names: pointNames(loaded, inputs[k]!.point, hosts) };
  }
  const p = progress(io, 'reading the captures');
  let shown = '';
  const r = correlateCaptureFiles(inputs, expect ? { expect } : {}, hosts, (done, total, i, bytes, size) => {
    // Per byte read, in whole percents (at most 100 updates a capture, however big).
    const pct = size > 0 ? Math.min(100, Math.floor((100 * bytes) / size)) : 0;
    if (`${done}:${pct}` === shown) return;
    shown = `${done}:${pct}`;
    p.update(
      `${done + 1}/${total}: ${i.point}${size > 0 ? ` ${byteCount(bytes)} of ${byteCount(size)} (${pct} %)` : ''}`,
    );
  });
  p.done();
  const bad = reportIssues(io, r.issues);
  if (!r.report) {
    for (const f of r.unusable) io.stderr(`lvsdoctor captures: nothing usable in ${f}\n`);
    return 2;
  }
  if (bad) io.stderr('lvsdoctor captures: some captures are damaged; what was read before the damage is used\n');
  const code = r.report.missing > 0 ? 1 : 0;
  if (o.json) io.stdout(toJsonText({ ...r.report, exitCode: code }));
  else io.stdout(renderCorrelation(r.report));
  return code;
}

/** `512 KiB`, `12.5 MiB`, `1.2 GiB`. */
function byteCount(n: number): string {
  if (n < 1048576) return `${Math.round(n / 1024)} KiB`;
  if (n < 1073741824) return `${(n / 1048576).toFixed(1)} MiB`;
  return `${(n / 1073741824).toFixed(2)} GiB`;
}

export interface ShowOptions {
  readonly link: boolean;
  readonly verbosity: number;
  /** How many `-n` were given (0: tcpdump would print names; lvsdoctor prints numbers and says so). */
  readonly numeric: number;
}

/**
 * `lvsdoctor captures show FILE [-e] [-v…] [-n…]`: the capture as tcpdump text on stdout; on stderr what was not
 * decoded (by frame number) and what could not be read. Exit 0 when every frame is printed as tcpdump prints it, 1
 * when some carry what lvsdoctor does not decode (their lines are not tcpdump's from there on), 2 on bad input.
 */
export function runCapturesShow(io: Io, file: string, o: ShowOptions): number {
  const r = showCapture(
    file,
    { link: o.link, verbosity: Math.min(3, o.verbosity), interfaceName: localInterfaceName },
    io.stdout,
  );
  const bad = reportIssues(io, r.issues);
  if (bad && r.frames === 0) return 2;
  if (o.numeric === 0)
    io.stderr(
      'lvsdoctor captures show: addresses and ports are printed as numbers (as tcpdump -nn prints them); names are not looked up\n',
    );
  if (r.cookedV2 > 0)
    io.stderr(
      `lvsdoctor captures show: ${r.cookedV2} frame(s) of Linux cooked v2 (tcpdump -i any): interface names are this machine's names for the captured interface indexes, as tcpdump 4.99 prints them ("interface names might be incorrect"); the index is in -e output\n`,
    );
  for (const [what, frames] of r.notRendered)
    io.stderr(
      `lvsdoctor captures show: ${frames.length} frame(s) of ${what} not printed: tcpdump's text for that link type is not rendered${what.startsWith('link type 14 ') ? ' (tcpdump on Linux refuses it: unknown data link type 14)' : ''} (frames ${frameList(frames)})\n`,
    );
  for (const [what, frames] of r.undecoded)
    io.stderr(
      `lvsdoctor captures show: not decoded: ${what} in ${frames.length} frame(s) (frames ${frameList(frames)}); tcpdump decodes it, so these lines differ from tcpdump's from there on\n`,
    );
  const other = r.frames - r.decoded;
  io.stderr(
    `lvsdoctor captures show: ${r.frames} frame(s), ${r.decoded} printed exactly as tcpdump prints them${other ? `, ${other} not` : ''}\n`,
  );
  if (bad) return 2;
  return other > 0 ? 1 : 0;
}
