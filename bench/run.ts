/**
 * Foundation benchmarks (issue 2): whole-process time to load and diagnose the founding case, and probe traces per
 * second through its model in one process. Figures are reported with a baseline measured in the same run.
 *   npx tsx bench/run.ts [--seconds N]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { evaluateEbtables } from '../src/netfilter/ebtables-eval.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../src/trace/session.ts';

const secondsAt = process.argv.indexOf('--seconds');
const seconds = secondsAt >= 0 ? Number(process.argv[secondsAt + 1]) : 3;
const EX = 'examples/kvm-lvs-dr';

function timeProcess(args: string[], runs: number): number {
  const t: number[] = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    spawnSync(process.execPath, args, { stdio: 'ignore' });
    t.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(runs / 2)]!;
}

function rate(fn: () => void): { perSecond: number; n: number } {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return { perSecond: n / ((performance.now() - start) / 1000), n };
}

if (!existsSync('dist/cli.mjs')) execFileSync(process.execPath, ['scripts/build.mjs']);

// 1. Whole process: node start-up alone is the baseline.
const nodeMs = timeProcess(['-e', ''], 7);
const diagMs = timeProcess(['bin/lvsdoctor.mjs', 'diagnose', EX], 7);

// 2. Traces per second in one process.
const loaded = loadScenario(EX).value!;
const session = openSession(loaded);
const probes = probesOf(loaded);
const tcp = probes.find((p) => p.kind === 'tcp')!;
const arp = probes.find((p) => p.kind === 'arp')!;
for (let i = 0; i < 2000; i++) runProbe(session, tcp); // warm-up
const tcpRate = rate(() => runProbe(session, tcp));
const arpRate = rate(() => runProbe(session, arp));
// Baseline: one evaluation of host1's PREROUTING on the dropped frame (the single most expensive decision of a trace).
const t = runProbe(session, tcp);
const dropHop = t.hops[t.path[t.path.length - 1]!]!;
const nat = session.hostRules.get('host1')!.nat;
const evalRate = rate(() => evaluateEbtables(nat, 'PREROUTING', dropHop.frame, { inIface: 'vnet0' }));

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
console.log('lvsdoctor foundation benchmark');
console.log(`node ${process.version}, ${seconds} s per rate measurement`);
console.log('');
console.log('| measurement | value | baseline (same run) | ratio |');
console.log('| --- | --- | --- | --- |');
console.log(
  `| diagnose ${EX}, whole process (median of 7) | ${diagMs.toFixed(0)} ms | node -e '' ${nodeMs.toFixed(0)} ms | ${(diagMs / nodeMs).toFixed(2)}× node start-up |`,
);
console.log(
  `| TCP probe traces/s (SYN, IPVS, ARP walk, drop) | ${fmt(tcpRate.perSecond)} | ebtables PREROUTING evaluations/s ${fmt(evalRate.perSecond)} | one trace = ${(evalRate.perSecond / tcpRate.perSecond).toFixed(1)} evaluations |`,
);
console.log(`| ARP probe traces/s | ${fmt(arpRate.perSecond)} | | |`);
console.log(`| goal: ≥ 50,000 traces/s | | | TCP ${(tcpRate.perSecond / 50_000).toFixed(2)}× goal |`);
