import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { importToTemp, isBundlePath, renderImportReport } from '../collect/import.ts';
import { diagnose } from '../diagnose/diagnose.ts';
import { openSession } from '../trace/session.ts';
import { type Io, reportIssues } from './io.ts';
import { originJson, toJsonText, traceJson } from './json.ts';
import { renderReport } from './render-report.ts';
import { loadForCommand } from './scenario-input.ts';

export interface DiagnoseOptions {
  readonly json: boolean;
  readonly fixDir?: string;
}

/** A scenario directory, or collector bundles imported into a temporary scenario first. */
export function runDiagnoseInputs(io: Io, inputs: readonly string[], o: DiagnoseOptions): number {
  if (inputs.length === 1 && !isBundlePath(inputs[0]!)) return runDiagnose(io, inputs[0]!, o);
  const imported = importToTemp(inputs);
  try {
    if (reportIssues(io, imported.issues) || imported.dir === undefined) return 2;
    if (!o.json) io.stderr(renderImportReport(imported));
    return runDiagnose(io, imported.dir, o);
  } finally {
    if (imported.dir !== undefined) rmSync(imported.dir, { recursive: true, force: true });
  }
}

export function runDiagnose(io: Io, dir: string, o: DiagnoseOptions): number {
  const loaded = loadForCommand(io, dir);
  if (!loaded) return 2;
  if (reportIssues(io, openSession(loaded).issues)) return 2;
  const report = diagnose(loaded);
  if (o.fixDir !== undefined) {
    for (const f of report.fixes)
      for (const a of f.artifacts) {
        const p = join(o.fixDir, a.path);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, a.content);
      }
    if (!o.json) io.stderr(`wrote the fixes' files to ${o.fixDir}\n`);
  }
  if (o.json) {
    io.stdout(
      toJsonText({
        scenario: report.scenario,
        healthy: report.healthy,
        probes: report.traces.map((t) => traceJson(t)),
        checks: report.checks,
        findings: report.findings.map((f) => ({ ...f, culprit: originJson(f.culprit) })),
        fixes: report.fixes,
        assumptions: report.assumptions,
      }),
    );
  } else io.stdout(renderReport(report));
  return report.healthy ? 0 : 1;
}
