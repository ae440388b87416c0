/**
 * Live evidence (counter windows, kernel traces: src/collect/counter-join.ts, trace-join.ts) as the web page shows
 * it (`EvidenceView` of src/web/contract.ts): per probe the verdict of each source beside the model's, the moved
 * counters on the chains the probe walks (placed on its hops), and the traced packets and kernel drops placed on its
 * path. Here in the CLI because src/web may not import src/collect (test/layering.test.ts); every fact was computed
 * by the join `diagnose` prints.
 */
import type {
  EvidenceReport,
  EvidenceVerdict,
  JoinedCount,
  ModelRule,
  UnmappedCount,
} from '../collect/counter-join.ts';
import type { KernelTraceReport, PlacedDrop, PlacedEvent, TraceMark } from '../collect/trace-join.ts';
import { originJson } from '../trace/trace-json.ts';
import type {
  CounterView,
  EvidenceRuleView,
  EvidenceVerdictView,
  EvidenceView,
  KernelDropView,
  KernelEventView,
  KernelMarkView,
  OriginLink,
  ProbeEvidenceView,
  ProbeView,
} from '../web/contract.ts';

/** A model rule with its origin chain, as `diagnose --json` and the page give it. */
export function ruleView(r: ModelRule): EvidenceRuleView {
  return {
    chain: r.chain,
    ...(r.ruleNumber !== undefined ? { ruleNumber: r.ruleNumber } : {}),
    text: r.text,
    origin: (originJson(r.origin) as OriginLink[] | undefined) ?? [],
  };
}

function counterView(c: JoinedCount | UnmappedCount): CounterView {
  const d = c.delta;
  return {
    node: c.node,
    source: d.source,
    table: d.table,
    chain: d.chain,
    ...(d.ruleNumber !== undefined ? { ruleNumber: d.ruleNumber } : {}),
    text: d.text,
    packets: d.packets,
    bytes: d.bytes,
    at: `${d.pos.file}:${d.pos.line}`,
    ...('rule' in c ? { rule: ruleView(c.rule), by: c.by } : { why: c.why }),
  };
}

/** A traced event as `diagnose --json` (`kernelTraces`) and the page give it. */
export function eventView(p: PlacedEvent): KernelEventView {
  const e = p.event;
  return {
    node: p.node,
    ...(p.iface !== undefined ? { iface: p.iface } : {}),
    ...(p.where !== undefined ? { where: p.where } : {}),
    tool: e.tool,
    id: e.id,
    family: e.family,
    table: e.table,
    chain: e.chain,
    what: e.what,
    verdict: e.verdict,
    ...(e.ruleText !== undefined ? { ruleText: e.ruleText } : {}),
    ...(e.handle !== undefined ? { handle: e.handle } : {}),
    at: `${e.pos.file}:${e.pos.line}`,
    ...(p.rule ? { rule: ruleView(p.rule), ...(p.by !== undefined ? { by: p.by } : {}) } : {}),
    ...(p.why !== undefined ? { why: p.why } : {}),
  };
}

/** A kernel drop (or pwru sighting) as `diagnose --json` and the page give it. */
export function dropView(d: PlacedDrop): KernelDropView {
  return {
    node: d.node,
    tool: d.event.tool,
    ...(d.event.reason !== undefined ? { reason: d.event.reason } : {}),
    ...(d.event.location !== undefined ? { location: d.event.location } : {}),
    ...(d.event.protocol !== undefined ? { protocol: d.event.protocol } : {}),
    count: d.event.count,
    at: `${d.event.pos.file}:${d.event.pos.line}`,
    ...(d.event.iface !== undefined ? { iface: d.event.iface } : {}),
    ...(d.seen
      ? { seen: true }
      : d.kind
        ? { kind: d.kind.kind, probes: d.probes }
        : d.why !== undefined
          ? { why: d.why }
          : {}),
  };
}

/** Contradicted if either source contradicts, else confirmed if either confirms, else no evidence. */
export function combinedVerdict(vs: readonly (EvidenceVerdict | undefined)[]): EvidenceVerdictView {
  if (vs.includes('contradicted')) return 'contradicted';
  if (vs.includes('confirmed')) return 'confirmed';
  return 'no-evidence';
}

/** The joined counters on the chains a probe's path walks: the rule that decided, and others of those chains. */
function movedOn(p: ProbeView, joined: readonly JoinedCount[]): ProbeEvidenceView['moved'] {
  const out: { counter: number; hop: number; decides: boolean }[] = [];
  const seen = new Set<number>();
  p.path.forEach((h, k) => {
    for (const s of h.steps) {
      if (s.kind !== 'netfilter') continue;
      const source = s.family === 'bridge' ? 'ebtables' : 'iptables';
      const chains = new Set((s.path as readonly string[] | undefined) ?? [s.chain as string]);
      joined.forEach((j, i) => {
        // nft counters of the tables xtables keeps are the listing's counters again: counted once.
        if (seen.has(i) || j.by === 'nft' || j.node !== h.node || j.delta.source !== source) return;
        if (j.delta.table !== s.table || !chains.has(j.rule.chain)) return;
        seen.add(i);
        out.push({
          counter: i,
          hop: k,
          decides: j.rule.chain === s.chain && j.rule.ruleNumber === (s.ruleNumber as number | undefined),
        });
      });
    }
  });
  return out;
}

function markView(m: TraceMark, p: ProbeView, places: Readonly<Record<string, string>>): KernelMarkView {
  const hops = m.hops.flatMap((id) => {
    const k = p.path.findIndex((h) => h.id === id);
    return k >= 0 ? [k] : [];
  });
  const element = (m.iface !== undefined ? places[`${m.node}:${m.iface}`] : undefined) ?? places[m.node];
  return {
    node: m.node,
    ...(m.iface !== undefined ? { iface: m.iface } : {}),
    hops,
    ...(element !== undefined ? { element } : {}),
    agree: m.agree,
    text: m.text,
    at: m.at,
    ...(m.rule ? { rule: ruleView(m.rule) } : {}),
  };
}

/** The page's view of the live evidence joined to a diagnosis; undefined when there is none. */
export function evidenceView(
  probes: readonly ProbeView[],
  places: Readonly<Record<string, string>>,
  counters: EvidenceReport | undefined,
  kernel: KernelTraceReport | undefined,
): EvidenceView | undefined {
  if (!counters && !kernel) return undefined;
  const joined = counters?.joined ?? [];
  return {
    windows: counters?.windows ?? [],
    probes: probes.map((p, k): ProbeEvidenceView => {
      const c = counters?.probes.find((x) => x.probe === p.name);
      const kk = kernel?.probes.findIndex((x) => x.probe === p.name) ?? -1;
      const t = kk >= 0 ? kernel!.probes[kk] : undefined;
      return {
        probe: p.name,
        verdict: combinedVerdict([c?.verdict, t?.verdict]),
        ...(c ? { counters: { verdict: c.verdict, facts: c.facts } } : {}),
        ...(t ? { kernel: { verdict: t.verdict, facts: t.facts } } : {}),
        moved: movedOn(probes[k]!, joined),
        marks: kk >= 0 ? (kernel!.marks[kk] ?? []).map((m) => markView(m, p, places)) : [],
      };
    }),
    joined: joined.map(counterView),
    unmapped: (counters?.unmapped ?? []).map(counterView),
    stack: counters?.stack ?? [],
    ipvs: (counters?.ipvs ?? []).map((d) => ({
      node: d.node,
      service: d.service,
      ...(d.destination !== undefined ? { destination: d.destination } : {}),
      conns: d.conns,
      inPkts: d.inPkts,
      outPkts: d.outPkts,
      at: `${d.pos.file}:${d.pos.line}`,
    })),
    ...(kernel
      ? {
          kernel: {
            files: kernel.files,
            joined: kernel.joined.map(eventView),
            unmapped: kernel.unmapped.map(eventView),
            setup: kernel.setup,
            drops: kernel.drops.map(dropView),
          },
        }
      : {}),
  };
}
