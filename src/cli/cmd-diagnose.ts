import { importedSource, importToMemory, isBundlePath, renderImportReport } from '../collect/import.ts';
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
  const imported = importToMemory(inputs);
  p.done();
  const source = importedSource(imported);
  if (reportIssues(io, imported.issues) || source === undefined) return 2;
  if (!o.json) io.stderr(renderImportReport(imported));
  return runDiagnose(io, source, o);
}

/** Prints a diagnosis as `diagnose` does (text or --json) and writes the fixes' files for --fix-dir. */
export function outputReport(io: Io, report: Report, o: DiagnoseOptions): void {
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
        plan: report.plan,
        probes: report.traces.map((t) => traceJson(t)),
        checks: report.checks,
        findings: report.findings.map((f) => ({ ...f, culprit: originJson(f.culprit) })),
        fixes: report.fixes,
        assumptions: report.assumptions,
      }),
    );
  } else io.stdout(renderReport(report));
}

/** Diagnoses a scenario directory, or a scenario source (an import held in memory). */
export function runDiagnose(io: Io, input: string | ScenarioSource, o: DiagnoseOptions): number {
  // Refused before any work: an output directory that cannot be made.
  if (o.fixDir !== undefined) prepareOutputDir(o.fixDir, '--fix-dir');
  const loaded = loadForCommand(io, input);
  if (!loaded) return 2;
  if (reportIssues(io, compileAllHostRules(loaded).issues)) return 2;
  const p = progress(io, 'diagnosing');
  const report = diagnose(loaded);
  p.done();
  outputReport(io, report, o);
  // Zero evidence is never a pass: with no probe to decide, there is no verdict (2), not "healthy".
  return report.noVerdict ? 2 : report.healthy ? 0 : 1;
}
