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
import { bundleKernelTraces, bundleListings, readKernelTrace, readListing } from '../collect/kernel-trace-input.ts';
import {
  joinKernelTraces,
  type KernelTraceInput,
  type KernelTraceReport,
  type NodeListings,
  renderKernelTraces,
} from '../collect/trace-join.ts';
import { diagnose } from '../diagnose/diagnose.ts';
import type { Report } from '../diagnose/types.ts';
import { appendAll } from '../source/arrays.ts';
import { checkNoneExist, prepareOutputDir, readInputText, writeNewFile } from '../source/files.ts';
import type { Issue, ReadResult } from '../source/issue.ts';
import { compileAllHostRules, modelHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { ScenarioSource } from '../topology/scenario-source.ts';
import { type Io, reportIssues, UsageError } from './io.ts';
import { originJson, toJsonText, traceJson } from './json.ts';
import { progress } from './progress.ts';
import { renderReport } from './render-report.ts';
import { loadForCommand } from './scenario-input.ts';
import { dropView, eventView, ruleView } from './web-evidence.ts';

export interface DiagnoseOptions {
  readonly json: boolean;
  readonly fixDir?: string;
  /** `--trace NODE=FILE`: kernel trace files the operator saved on that node. */
  readonly traces?: readonly string[];
}

/** Kernel traces for `diagnose`: the files read, and per node the listings that place traced rules. */
export interface KernelTraces {
  readonly inputs: readonly KernelTraceInput[];
  readonly listings: ReadonlyMap<string, NodeListings>;
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
  const imported = importToMemory(latestBundles(inputs, read), { read });
  p.done();
  const source = importedSource(imported);
  if (reportIssues(io, imported.issues) || source === undefined) return 2;
  if (!o.json) io.stderr(renderImportReport(imported));
  const live = bundleLiveInputs(io, imported, read);
  if (!live) return 2;
  return runDiagnose(io, source, o, live.windows, live.kernel);
}

/**
 * The bundles to import: the latest of each machine (two bundles of one machine make a counter window between
 * them; the later one is the model), and every input that is not a readable bundle (the import names its problem).
 */
export function latestBundles(inputs: readonly string[], read: ReadonlyMap<string, ReadResult<Bundle>>): string[] {
  const latest = new Map<string, { path: string; date: string }>();
  for (const [path, r] of read) {
    if (!r.value) continue;
    const k = `${r.value.kind}\t${r.value.hostname}`;
    const date = r.value.meta.get('date') ?? '';
    const cur = latest.get(k);
    if (!cur || date > cur.date) latest.set(k, { path, date });
  }
  const keep = new Set([...latest.values()].map((x) => x.path));
  return inputs.filter((i) => keep.has(i) || !read.get(i)?.value);
}

/** What bundles carry of the live system: counter windows and kernel traces (with the listings that place them). */
export interface LiveInputs {
  readonly windows: ReadonlyMap<string, CounterWindow>;
  readonly kernel: KernelTraces;
}

/** The live inputs of the bundles read; undefined when they hold errors (printed: exit 2). */
export function bundleLiveInputs(
  io: Io,
  imported: ImportResult,
  read: ReadonlyMap<string, ReadResult<Bundle>>,
): LiveInputs | undefined {
  const all = [...read.values()].flatMap((r) => (r.value ? [r.value] : []));
  const windows = importedWindows(imported, all);
  if (reportIssues(io, windows.issues)) return undefined;
  const kernel = importedKernelTraces(imported, all);
  if (reportIssues(io, kernel.issues)) return undefined;
  return { windows: windows.windows, kernel: kernel.value };
}

/** The scenario node each bundle was imported as (hosts, guests, the gateway). */
function bundleNodes(r: ImportResult): Map<string, string> {
  const nodeOf = new Map<string, string>();
  const c = r.cluster;
  for (const h of c?.hosts ?? []) nodeOf.set(h.ev.bundle.name, h.node);
  for (const g of c?.guests ?? []) if (g.ev) nodeOf.set(g.ev.bundle.name, g.node);
  if (c?.gateway?.ev) nodeOf.set(c.gateway.ev.bundle.name, 'gateway');
  return nodeOf;
}

/** Kernel trace files carried by bundles (`collect.sh --trace FILE`), and every bundle's listings, by node. */
export function importedKernelTraces(
  r: ImportResult,
  all: readonly Bundle[],
): { readonly value: KernelTraces; readonly issues: readonly Issue[] } {
  const nodeOf = bundleNodes(r);
  const inputs: KernelTraceInput[] = [];
  const listings = new Map<string, NodeListings>();
  const issues: Issue[] = [];
  // The latest bundle of a node gives its listings (bundles are read in the order given).
  const sorted = [...all].sort((x, y) => (x.meta.get('date') ?? '').localeCompare(y.meta.get('date') ?? ''));
  for (const b of sorted) {
    const node = nodeOf.get(b.name) ?? b.hostname;
    const t = bundleKernelTraces(b, node);
    appendAll(inputs, t.value);
    appendAll(issues, t.issues);
    listings.set(node, bundleListings(b).value);
  }
  return { value: { inputs, listings }, issues };
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
  const nodeOf = bundleNodes(r);
  const w = counterWindows(all);
  const windows = new Map<string, CounterWindow>();
  for (const x of w.windows) windows.set(nodeOf.get(x.bundle) ?? x.host, x);
  return { windows, issues: w.issues };
}

/** Prints a diagnosis as `diagnose` does (text or --json) and writes the fixes' files for --fix-dir. */
export function outputReport(
  io: Io,
  report: Report,
  o: DiagnoseOptions,
  evidence?: EvidenceReport,
  kernel?: KernelTraceReport,
): void {
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
        ...(kernel ? { kernelTraces: kernelTracesJson(kernel) } : {}),
      }),
    );
  } else
    io.stdout(
      renderReport(report) + (evidence ? renderEvidence(evidence) : '') + (kernel ? renderKernelTraces(kernel) : ''),
    );
}

function kernelTracesJson(k: KernelTraceReport) {
  return {
    files: k.files,
    probes: k.probes,
    joined: k.joined.map(eventView),
    setup: k.setup,
    unmapped: k.unmapped.map(eventView),
    drops: k.drops.map(dropView),
  };
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
      rule: ruleView(j.rule),
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
  kernel?: KernelTraces,
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
  const live = joinLive(io, loaded, report, windows, kernel, o.traces ?? []);
  if (!live) return 2;
  outputReport(io, report, o, live.evidence, live.kernel);
  // Zero evidence is never a pass: with no probe to decide, there is no verdict (2), not "healthy".
  return report.noVerdict ? 2 : report.healthy ? 0 : 1;
}

/** Live evidence joined to a diagnosis: the counter windows, and the kernel traces (bundles' and `--trace`'s). */
export interface JoinedLive {
  readonly evidence?: EvidenceReport;
  readonly kernel?: KernelTraceReport;
}

/**
 * Joins the counter windows and the kernel traces — those bundles carried and the `--trace NODE=FILE` files — to
 * the model of a diagnosis; undefined when a trace file holds errors (printed: exit 2).
 */
export function joinLive(
  io: Io,
  loaded: LoadedScenario,
  report: Report,
  windows: ReadonlyMap<string, CounterWindow> | undefined,
  kernel: KernelTraces | undefined,
  traces: readonly string[],
): JoinedLive | undefined {
  // Live evidence joins the rules the model evaluates: a host's own iptables tables where its iptables-save is given.
  let rules: ReturnType<typeof modelHostRules> | undefined;
  const modelRules = () => (rules ??= modelHostRules(loaded));
  const evidence = windows && windows.size > 0 ? joinEvidence(report, windows, modelRules()) : undefined;
  // --trace NODE=FILE beside what the bundles carried.
  const inputs = [...(kernel?.inputs ?? [])];
  const listings = new Map(kernel?.listings ?? []);
  for (const spec of traces) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1)
      throw new UsageError(`--trace wants NODE=FILE (the node of the scenario the trace was taken on), not "${spec}"`);
    const node = spec.slice(0, eq);
    if (!loaded.scenario.nodes.has(node))
      throw new UsageError(
        `--trace ${spec}: the scenario has no node ${node} (nodes: ${[...loaded.scenario.nodes.keys()].join(', ')})`,
      );
    const file = spec.slice(eq + 1);
    const text = readInputText(file);
    // A listing of the node's rules (nft -a list ruleset, ebtables -L --Lc, iptables-save -c) places traced rules.
    const l = readListing(text, file);
    if (l) {
      if (reportIssues(io, l.issues)) return undefined;
      const had = listings.get(node);
      listings.set(node, {
        xtables: [...(had?.xtables ?? []), ...l.value.xtables],
        nft: [...(had?.nft ?? []), ...l.value.nft],
      });
      continue;
    }
    const r = readKernelTrace(node, text, file);
    if (reportIssues(io, r.issues)) return undefined;
    inputs.push(r.value);
  }
  const traced =
    inputs.length > 0 ? joinKernelTraces(report, inputs, modelRules(), listings, loaded.scenario) : undefined;
  return { ...(evidence ? { evidence } : {}), ...(traced ? { kernel: traced } : {}) };
}
