/**
 * Fleet benchmark (issue 7): import and diagnose a synthetic fleet of collector bundles — by default 200
 * hypervisors × 40 guests, clean-traffic on every port, every guest collected, a few LVS-DR clusters (a director
 * and real servers on different hosts). Bundles are generated as directories in a temporary directory (not timed);
 * the import and the diagnosis are timed per phase, both ways: (a) `import -o DIR` then loading DIR from disk, and
 * (b) `diagnose BUNDLE…`, which imports in memory and loads from the files built. Goal: import + diagnose ≤ 10 s.
 *   node scripts/bench.mjs bench/import-fleet.ts [--hosts N] [--guests N] [--clusters N] [--path memory|disk|both]
 *     [--skip-diagnose] [--keep]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ImportResult, importBundles, importedSource, importToMemory } from '../src/collect/import.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { type LoadedScenario, type LoadResult, loadScenario, loadScenarioFrom } from '../src/topology/load-scenario.ts';
import { openSession } from '../src/trace/session.ts';
import { writeFleetBundles } from './fleet-bundles.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const HOSTS = arg('hosts', 200);
const GUESTS = arg('guests', 40);
const CLUSTERS = arg('clusters', 4);

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const skipDiagnose = process.argv.includes('--skip-diagnose');
const which = (() => {
  const i = process.argv.indexOf('--path');
  return i >= 0 ? process.argv[i + 1]! : 'both';
})();

/** Opens a session and diagnoses; wall clock and CPU time (on a shared machine CPU varies less). */
function diagnosePhase(loaded: LoadedScenario) {
  let t = performance.now();
  const session = openSession(loaded);
  const sessionMs = performance.now() - t;
  void session;
  t = performance.now();
  const cpu0 = process.cpuUsage();
  const report = skipDiagnose ? { traces: [], fixes: [], findings: [] as { code: string }[] } : diagnose(loaded);
  const diagnoseMs = performance.now() - t;
  const cpu = process.cpuUsage(cpu0);
  return { report, sessionMs, diagnoseMs, diagnoseCpuMs: (cpu.user + cpu.system) / 1000 };
}

function importLine(r: ImportResult): string {
  const t = r.timings;
  if (r.issues.some((i) => i.severity === 'error')) console.log(r.issues.slice(0, 5));
  if (r.drift.length)
    console.log(
      `  first drift: ${r.drift[0]!.host} ${r.drift[0]!.subject}: ${r.drift[0]!.message} ${r.drift[0]!.lines.slice(0, 2).join(' | ')}`,
    );
  return `read bundles ${s(t.readMs)}, infer ${s(t.inferMs)}, build scenario files ${s(t.buildMs)}, ${t.writeMs > 0 ? `write them ${s(t.writeMs)}, ` : ''}drift (compile ${HOSTS * GUESTS} bindings, compare) ${s(t.driftMs)}`;
}

function check(loaded: LoadResult): LoadedScenario {
  if (!loaded.value)
    throw new Error(
      `load failed: ${loaded.issues
        .slice(0, 3)
        .map((i) => i.message)
        .join('; ')}`,
    );
  return loaded.value;
}

function summary(report: ReturnType<typeof diagnosePhase>['report'], r: ImportResult): string {
  return `drift entries ${r.drift.length}; findings ${report.findings.length} (${[...new Set(report.findings.map((f) => f.code))].join(', ')}); segments ${r.cluster?.segments.length}`;
}

/** (b) `lvsdoctor diagnose BUNDLE…`: import in memory, load from the files built, diagnose. */
function memoryPath(bundles: readonly string[]): number {
  const total0 = performance.now();
  const r = importToMemory(bundles);
  const importMs = performance.now() - total0;
  const t = performance.now();
  const loaded = check(loadScenarioFrom(importedSource(r)!));
  const loadMs = performance.now() - t;
  const d = diagnosePhase(loaded);
  const totalMs = performance.now() - total0;
  console.log('(b) diagnose BUNDLE… (in memory: nothing written, nothing re-read)');
  console.log(`  import: ${importLine(r)} = ${s(importMs)}`);
  console.log(
    `  load scenario from memory ${s(loadMs)}; open session ${s(d.sessionMs)}; diagnose (${d.report.traces.length} probes, ${d.report.fixes.length} fixes re-traced) ${s(d.diagnoseMs)} (CPU ${s(d.diagnoseCpuMs)})`,
  );
  console.log(`  ${summary(d.report, r)}`);
  console.log(`  total import + diagnose: ${s(totalMs)} (goal ≤ 10 s) ${totalMs <= 10_000 ? 'OK' : 'OVER'}`);
  return totalMs;
}

/** (a) `lvsdoctor import -o DIR` then `lvsdoctor diagnose DIR`. */
function diskPath(bundles: readonly string[], out: string): number {
  const total0 = performance.now();
  const r = importBundles(bundles, { out, name: 'fleet' });
  const importMs = performance.now() - total0;
  const t = performance.now();
  const loaded = check(loadScenario(out));
  const loadMs = performance.now() - t;
  const d = diagnosePhase(loaded);
  const totalMs = performance.now() - total0;
  console.log('(a) import -o DIR, then diagnose DIR (load from disk)');
  console.log(`  import: ${importLine(r)} = ${s(importMs)}`);
  console.log(
    `  load scenario from disk ${s(loadMs)}; open session ${s(d.sessionMs)}; diagnose (${d.report.traces.length} probes, ${d.report.fixes.length} fixes re-traced) ${s(d.diagnoseMs)} (CPU ${s(d.diagnoseCpuMs)})`,
  );
  console.log(`  ${summary(d.report, r)}`);
  console.log(`  total import + load + diagnose: ${s(totalMs)} (goal ≤ 10 s) ${totalMs <= 10_000 ? 'OK' : 'OVER'}`);
  return totalMs;
}

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-fleet-'));
try {
  const t = performance.now();
  const bundles = writeFleetBundles(join(root, 'bundles'), { hosts: HOSTS, guests: GUESTS, clusters: CLUSTERS });
  const genMs = performance.now() - t;
  console.log(
    `fleet: ${HOSTS} hypervisors × ${GUESTS} guests (${HOSTS * GUESTS} ports with clean-traffic, every guest collected), ${CLUSTERS} LVS-DR clusters; ${bundles.length} bundles generated in ${(genMs / 1000).toFixed(1)} s (not timed)`,
  );
  // The in-memory path runs first (cold, as the CLI runs it); the disk path then profits from a warm JIT.
  if (which !== 'disk') memoryPath(bundles);
  if (which !== 'memory') diskPath(bundles, join(root, 'scenario'));
} finally {
  if (!process.argv.includes('--keep')) rmSync(root, { recursive: true, force: true });
  else console.log(`kept ${root}`);
}
