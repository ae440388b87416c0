/**
 * Builds the web app's model (contract.ts) from a loaded scenario with the CLI's own domain functions: `diagnose`
 * for traces, findings and fixes, `retraceChanged` for what-ifs (what-if.ts), `traceJson`/`renderStep` for the
 * words. The page draws what this says; it decides nothing.
 */
import type { CorrelationReport } from '../capture/correlate.ts';
import type { PortBinding } from '../topology/model.ts';
import { originJson } from '../trace/trace-json.ts';
import { capturesView } from './captures-view.ts';
import type {
  BindingView,
  EvidenceView,
  FindingView,
  FixView,
  OriginLink,
  ProbeView,
  TopologyView,
  WebModel,
} from './contract.ts';
import { WEB_MODEL_VERSION } from './contract.ts';
import { fleetView } from './fleet.ts';
import { topologyView } from './topology-view.ts';
import { collectOrigins, originFiles, probeView, type WebSession } from './what-if.ts';

function bindingView(b: PortBinding): BindingView {
  return {
    host: b.host,
    port: b.binding.portdev,
    domain: b.domain,
    filter: b.binding.filter,
    params: Object.fromEntries(b.binding.params),
  };
}

export interface ModelOptions {
  /** A `captures` correlation to draw on the topology. */
  readonly captures?: CorrelationReport;
  readonly live: boolean;
  /**
   * Live evidence joined to the diagnosis (counter windows, kernel traces), placed on the probes' paths: built by
   * the CLI, which reads it (src/collect is beyond src/web's imports).
   */
  readonly evidence?: (
    probes: readonly ProbeView[],
    places: Readonly<Record<string, string>>,
  ) => EvidenceView | undefined;
}

/** Every origin chain of the live evidence (the page shows their lines, as for the trace's). */
export function evidenceOrigins(e: EvidenceView | undefined): (readonly OriginLink[] | undefined)[] {
  if (!e) return [];
  return [
    ...e.joined.map((c) => c.rule?.origin),
    ...(e.kernel?.joined ?? []).map((x) => x.rule?.origin),
    ...e.probes.flatMap((p) => p.marks.map((m) => m.rule?.origin)),
  ];
}

export async function buildWebModel(s: WebSession, o: ModelOptions): Promise<WebModel> {
  const topology = await topologyView(s.loaded);
  return buildWebModelWith(s, topology, o);
}

export function buildWebModelWith(s: WebSession, topology: TopologyView, o: ModelOptions): WebModel {
  const r = s.diagnosis.report;
  const findings: FindingView[] = r.findings.map((f) => ({
    key: `${f.code}@${f.where}`,
    code: f.code,
    severity: f.severity,
    title: f.title,
    explanation: f.explanation,
    probes: f.probes,
    where: f.where,
    ...(f.culprit ? { culprit: originJson(f.culprit) as OriginLink[] } : {}),
    fixes: f.fixes,
    source: f.source,
    after: f.after,
  }));
  const explains = (probe: string) =>
    findings.find((f) => f.probes.includes(probe) && f.after.length === 0)?.key ??
    findings.find((f) => f.probes.includes(probe))?.key;
  const probes = r.traces.map((t) => probeView(t, topology.places, explains(t.probe.name)));
  const safest = r.fixes.find((f) => f.verified && f.requires.length === 0);
  const fixes: FixView[] = r.fixes.map((f) => ({
    id: f.id,
    title: f.title,
    keeps: f.keeps,
    protectionRank: f.protectionRank,
    artifacts: f.artifacts,
    commands: f.commands,
    verified: f.verified,
    retraced: f.retraced,
    unblocks: f.unblocks,
    requires: f.requires,
    clears: f.clears,
    safest: f === safest,
  }));
  const evidence = o.evidence?.(probes, topology.places);
  const model: WebModel = {
    version: WEB_MODEL_VERSION,
    scenario: { name: s.loaded.scenario.name, description: s.loaded.scenario.description },
    healthy: r.healthy,
    verdict: r.noVerdict ? 'no-verdict' : r.healthy ? 'healthy' : 'broken',
    ...(r.noVerdict ? { noVerdict: r.noVerdict } : {}),
    unchecked: r.unchecked.map((u) => ({ what: u.what, why: u.why })),
    topology,
    probes,
    findings,
    fixes,
    bindings: s.loaded.scenario.bindings.map(bindingView),
    files: originFiles(s, [...collectOrigins(probes, findings), ...evidenceOrigins(evidence)]),
    assumptions: r.assumptions,
    fleet: fleetView(s.loaded, r),
    ...(o.captures ? { captures: capturesView(o.captures, topology.places) } : {}),
    ...(evidence ? { evidence } : {}),
    live: o.live,
  };
  return model;
}
