import { type Bundle, readBundle } from '../collect/bundle.ts';
import { type EvidenceReport, joinEvidence, renderEvidence } from '../collect/counter-join.ts';
import { type CounterWindow, counterWindows } from '../collect/counter-window.ts';
import {
  type ImportResult,
  importedSource,
  importToMemory,
  isBundlePath,
  renderImportReport,
} from '../collect/import.ts';
import { diagnose } from '../diagnose/diagnose.ts';
import type { Report } from '../diagnose/types.ts';
import { checkNoneExist, prepareOutputDir, writeNewFile } from '../source/files.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import type { ScenarioSource } from '../topology/scenario-source.ts';
import { type Io, reportIssues } from './io.ts';
import { originJson, toJsonText, traceJson } from './json.ts';
import { progress } from './progress.ts';
import { renderReport } from './render-report.ts';
import { loadForCommand } from './scenario-input.ts';

export interface DiagnoseOptions {
  readonly json: boolean;
  readonly fixDir?: string;
}

/**
 * A scenario directory, or collector bundles imported first — in memory: the scenario is loaded from the files
 * the import built, nothing is written (files are named relative to the scenario, as `import -o DIR` would write
 * them).
 */
export function runDiagnoseInputs(io: Io, inputs: readonly string[], o: DiagnoseOptions): number {
  if (inputs.length === 1 && !isBundlePath(inputs[0]!)) return runDiagnose(io, inputs[0]!, o);
  const p = progress(io, `importing ${inputs.length} bundles`);
  // Read once: two bundles of one machine make a counter window; only the later one is modelled.
  const read = new Map(inputs.map((i) => [i, readBundle(i)] as const));
  const latest = new Map<string, { path: string; date: string }>();
  for (const [path, r] of read) {
    if (!r.value) continue;
    const k = `${r.value.kind}\t${r.value.hostname}`;
    const date = r.value.meta.get('date') ?? '';
    const cur = latest.get(k);
    if (!cur || date > cur.date) latest.set(k, { path, date });
  }
  const keep = new Set([...latest.values()].map((x) => x.path));
  const imported = importToMemory(
    inputs.filter((i) => keep.has(i) || !read.get(i)?.value),
    { read },
  );
  p.done();
  const source = importedSource(imported);
  if (reportIssues(io, imported.issues) || source === undefined) return 2;
  if (!o.json) io.stderr(renderImportReport(imported));
  const windows = importedWindows(
    imported,
    [...read.values()].flatMap((r) => (r.value ? [r.value] : [])),
  );
  if (reportIssues(io, windows.issues)) return 2;
  return runDiagnose(io, source, o, windows.windows);
}

/**
 * The counter windows of bundles, keyed by the node the import made of each: a bundle's watch window, and two
 * bundles of one machine taken apart (the later one's node).
 */
export function importedWindows(
  r: ImportResult,
  all: readonly Bundle[],
): {
  readonly windows: ReadonlyMap<string, CounterWindow>;
  readonly issues: ReturnType<typeof counterWindows>['issues'];
} {
  const nodeOf = new Map<string, string>();
  const c = r.cluster;
  for (const h of c?.hosts ?? []) nodeOf.set(h.ev.bundle.name, h.node);
  for (const g of c?.guests ?? []) if (g.ev) nodeOf.set(g.ev.bundle.name, g.node);
  if (c?.gateway?.ev) nodeOf.set(c.gateway.ev.bundle.name, 'gateway');
  const w = counterWindows(all);
  const windows = new Map<string, CounterWindow>();
  for (const x of w.windows) windows.set(nodeOf.get(x.bundle) ?? x.host, x);
  return { windows, issues: w.issues };
}

/** Prints a diagnosis as `diagnose` does (text or --json) and writes the fixes' files for --fix-dir. */
export function outputReport(io: Io, report: Report, o: DiagnoseOptions, evidence?: EvidenceReport): void {
  if (o.fixDir !== undefined) {
    // New files only, never through links, all or none (see src/source/files.ts).
    prepareOutputDir(o.fixDir, '--fix-dir');
    const artifacts = report.fixes.flatMap((f) => f.artifacts);
    checkNoneExist(
      o.fixDir,
      artifacts.map((a) => a.path),
    );
    for (const a of artifacts) writeNewFile(o.fixDir, a.path, a.content);
    if (!o.json) io.stderr(`wrote the fixes' files to ${o.fixDir}\n`);
  }
  if (o.json) {
    io.stdout(
      toJsonText({
        scenario: report.scenario,
        healthy: report.healthy,
        ...(report.noVerdict ? { noVerdict: report.noVerdict } : {}),
        unchecked: report.unchecked,
        plan: report.plan,
        probes: report.traces.map((t) => traceJson(t)),
        checks: report.checks,
        findings: report.findings.map((f) => ({ ...f, culprit: originJson(f.culprit) })),
        fixes: report.fixes,
        assumptions: report.assumptions,
        ...(evidence ? { evidence: evidenceJson(evidence) } : {}),
      }),
    );
  } else io.stdout(renderReport(report) + (evidence ? renderEvidence(evidence) : ''));
}

function evidenceJson(e: EvidenceReport) {
  const delta = (d: EvidenceReport['joined'][number]['delta']) => ({
    source: d.source,
    table: d.table,
    chain: d.chain,
    ...(d.ruleNumber !== undefined ? { ruleNumber: d.ruleNumber } : {}),
    text: d.text,
    packets: d.packets,
    bytes: d.bytes,
    where: `${d.pos.file}:${d.pos.line}`,
  });
  return {
    windows: e.windows,
    probes: e.probes,
    joined: e.joined.map((j) => ({
      node: j.node,
      counted: delta(j.delta),
      rule: {
        chain: j.rule.chain,
        ...(j.rule.ruleNumber !== undefined ? { ruleNumber: j.rule.ruleNumber } : {}),
        text: j.rule.text,
        origin: originJson(j.rule.origin),
      },
      by: j.by,
    })),
    unmapped: e.unmapped.map((u) => ({ node: u.node, counted: delta(u.delta), why: u.why })),
    stack: e.stack,
  };
}

/** Diagnoses a scenario directory, or a scenario source (an import held in memory). */
export function runDiagnose(
  io: Io,
  input: string | ScenarioSource,
  o: DiagnoseOptions,
  windows?: ReadonlyMap<string, CounterWindow>,
): number {
  // Refused before any work: an output directory that cannot be made.
  if (o.fixDir !== undefined) prepareOutputDir(o.fixDir, '--fix-dir');
  const loaded = loadForCommand(io, input);
  if (!loaded) return 2;
  const compiled = compileAllHostRules(loaded);
  if (reportIssues(io, compiled.issues)) return 2;
  const p = progress(io, 'diagnosing');
  const report = diagnose(loaded);
  p.done();
  const evidence = windows && windows.size > 0 ? joinEvidence(report, windows, compiled.hostRules) : undefined;
  outputReport(io, report, o, evidence);
  // Zero evidence is never a pass: with no probe to decide, there is no verdict (2), not "healthy".
  return report.noVerdict ? 2 : report.healthy ? 0 : 1;
}
