/**
 * Builds the web app's model (contract.ts) from a loaded scenario with the CLI's own domain functions: `diagnose`
 * for traces, findings and fixes, `retraceChanged` for what-ifs (what-if.ts), `traceJson`/`renderStep` for the
 * words. The page draws what this says; it decides nothing.
 */
import type { CorrelationReport } from '../capture/correlate.ts';
import type { PortBinding } from '../topology/model.ts';
import { originJson } from '../trace/trace-json.ts';
import { capturesView } from './captures-view.ts';
import type { BindingView, FindingView, FixView, OriginLink, TopologyView, WebModel } from './contract.ts';
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
    files: originFiles(s, collectOrigins(probes, findings)),
    assumptions: r.assumptions,
    fleet: fleetView(s.loaded, r),
    ...(o.captures ? { captures: capturesView(o.captures, topology.places) } : {}),
    live: o.live,
  };
  return model;
}
