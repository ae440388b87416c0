/**
 * Benchmark: `lab run` on the founding case (up, probes, down), goal ≤ 5 s. Reports the time of every phase, for
 * the compiled rules and (when installed) a real libvirt installing the filter.
 *
 *   npx tsx bench/lab-run.ts [runs]
 */
import { join } from 'node:path';
import { labUnavailable, preflight } from '../src/lab/preflight.ts';
import { runLabScenario } from '../src/lab/run.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';

const GOAL_MS = 5000;
const runs = Number(process.argv[2] ?? 3);
const why = labUnavailable();
if (why) {
  console.error(`lab benchmark skipped: ${why}`);
  process.exit(2);
}
const loaded = loadScenario(join(import.meta.dirname, '..', 'examples', 'kvm-lvs-dr')).value!;
const modes = preflight().libvirt ? (['compiled', 'libvirt'] as const) : (['compiled'] as const);
let worst = 0;
for (const filters of modes) {
  for (let k = 0; k < runs; k++) {
    const t0 = performance.now();
    const r = await runLabScenario(loaded, { filters }); // the defaults of `lvsdoctor lab run`
    const total = performance.now() - t0;
    if (filters === 'compiled') worst = Math.max(worst, total);
    const phases = Object.entries(r.timings)
      .map(([p, ms]) => `${p} ${Math.round(ms)}`)
      .join(', ');
    console.log(
      `lab run kvm-lvs-dr (${filters}) #${k + 1}: ${Math.round(total)} ms (exit ${r.exitCode}; ${r.probes.map((p) => `${p.probe} ${p.real.ok ? 'ok' : 'fails'}${p.agree ? '' : ' DISAGREE'}`).join(', ')})\n  phases (ms): ${phases}`,
    );
    for (const p of r.probes) if (!p.agree) console.log(`  ${p.probe}: ${p.real.detail}; ${p.difference}`);
  }
}
console.log(`worst compiled run ${Math.round(worst)} ms; goal ≤ ${GOAL_MS} ms: ${worst <= GOAL_MS ? 'met' : 'missed'}`);
