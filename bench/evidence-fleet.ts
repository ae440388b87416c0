/**
 * Live-evidence benchmark (issue 18): the synthetic fleet of bench/fleet-bundles.ts (default 200 hypervisors × 40
 * guests, clean-traffic on every port) where every hypervisor bundle has a watch window (ebtables nat listed at
 * the start and the end, every 7th rule counted in between). Timed in one run: the fleet diagnose alone (import in
 * memory, load, compile, diagnose — what `diagnose BUNDLE…` does) and, on top, reading the windows and joining
 * every moved counter to the model (`importedWindows` + `joinEvidence`). Goal: the join ≤ 2 s; reported as a ratio
 * against the diagnose alone. Bundles are generated in a temporary directory (not timed).
 *   node scripts/bench.mjs bench/evidence-fleet.ts [--hosts N] [--guests N] [--keep]
 */
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importedWindows } from '../src/cli/cmd-diagnose.ts';
import { readBundle } from '../src/collect/bundle.ts';
import { joinEvidence } from '../src/collect/counter-join.ts';
import { importedSource, importToMemory } from '../src/collect/import.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { compileAllHostRules } from '../src/topology/host-rules.ts';
import { loadScenarioFrom } from '../src/topology/load-scenario.ts';
import { writeFleetBundles } from './fleet-bundles.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const HOSTS = arg('hosts', 200);
const GUESTS = arg('guests', 40);
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-bench-evidence-'));
try {
  const bundles = writeFleetBundles(root, { hosts: HOSTS, guests: GUESTS, clusters: 4 });
  let rules = 0;
  for (const dir of readdirSync(root).filter((d) => d.includes('-hypervisor-'))) {
    const b = join(root, dir);
    const nat = readFileSync(join(b, 'cmd', 'ebtables-nat.out'), 'utf8');
    let k = 0;
    const end = nat.replace(/pcnt = (\d+) -- bcnt = (\d+)/g, (m, p, by) => {
      rules++;
      return ++k % 7 === 0 ? `pcnt = ${Number(p) + 57} -- bcnt = ${Number(by) + 3420}` : m;
    });
    let m =
      'watch-seconds\t10\nwatch-start\t2024-03-01T09:59:50Z 1709287190\nwatch-end\t2024-03-01T10:00:00Z 1709287200\n';
    for (const [phase, text] of [
      ['start', nat],
      ['end', end],
    ] as const) {
      writeFileSync(join(b, 'cmd', `counters-${phase}-ebtables-nat.out`), text);
      writeFileSync(join(b, 'cmd', `counters-${phase}-ebtables-nat.err`), '');
      m += `cmd\tcounters-${phase}-ebtables-nat\tok\t0\tcmd/counters-${phase}-ebtables-nat.out\tcmd/counters-${phase}-ebtables-nat.err\tebtables -t nat -L --Lc\n`;
    }
    appendFileSync(join(b, 'manifest.tsv'), m);
  }
  console.log(`fleet: ${HOSTS} hosts × ${GUESTS} guests, ${rules} listed ebtables rules (generation not timed)`);

  // The fleet diagnose alone, as `diagnose BUNDLE…` does it.
  let t = performance.now();
  const read = new Map(bundles.map((p) => [p, readBundle(p)] as const));
  const imported = importToMemory(bundles, { read });
  const loaded = loadScenarioFrom(importedSource(imported)!).value!;
  const compiled = compileAllHostRules(loaded);
  const report = diagnose(loaded);
  const diagnoseMs = performance.now() - t;

  // On top: the windows and the join.
  t = performance.now();
  const windows = importedWindows(
    imported,
    [...read.values()].flatMap((r) => (r.value ? [r.value] : [])),
  );
  const windowsMs = performance.now() - t;
  t = performance.now();
  const ev = joinEvidence(report, windows.windows, compiled.hostRules);
  const joinMs = performance.now() - t;
  const moved = [...windows.windows.values()].reduce((n, w) => n + w.rules.length, 0);
  console.log(
    `diagnose alone ${s(diagnoseMs)}; windows (read ${windows.windows.size} windows, ${moved} moved counters) ${s(windowsMs)}; join ${s(joinMs)} (${ev.joined.length} joined, ${ev.unmapped.length} unmapped, ${ev.probes.length} probes)`,
  );
  const onTop = windowsMs + joinMs;
  console.log(
    `evidence on top of the diagnose: ${s(onTop)} = ${(onTop / diagnoseMs).toFixed(3)} × the diagnose alone (goal ≤ 2 s: ${onTop <= 2000 ? 'met' : 'NOT met'})`,
  );
  if (ev.unmapped.length > 0) console.log(`first unmapped: ${ev.unmapped[0]!.why}`);
} finally {
  if (!process.argv.includes('--keep')) rmSync(root, { recursive: true, force: true });
}
