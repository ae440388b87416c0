/**
 * `npm run fuzz -- --cases N [--seed S] [--only kind,kind] [--timeout MS] [--memory MB] [--no-scaling]`: the fuzz
 * suite with N cases per input kind; prints the counts and every failure; exit 1 when anything failed.
 */
import { fuzz } from './driver.ts';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const cases = Number(opt('--cases') ?? 50);
const seed = Number(opt('--seed') ?? Date.now() % 1_000_000);
const only = opt('--only')?.split(',');
const r = await fuzz({
  cases,
  seed,
  ...(only ? { only } : {}),
  timeoutMs: Number(opt('--timeout') ?? 20_000),
  memoryMb: Number(opt('--memory') ?? 512),
  scaling: !args.includes('--no-scaling'),
  log: (s) => console.log(s),
});
for (const [k, v] of Object.entries(r.byKind))
  console.log(
    `${k.padEnd(24)} ${String(v.cases).padStart(6)} cases  ${Object.entries(v.exit)
      .map(([e, n]) => `exit ${e}: ${n}`)
      .join(', ')}`,
  );
for (const s of r.scaling)
  console.log(
    `scaling ${s.kind.padEnd(24)} ×8 input → ×${s.ratio.toFixed(1)} time (${s.small.toFixed(0)} → ${s.big.toFixed(0)} ms)`,
  );
for (const f of r.failures) console.log(`FAIL ${f.kind}: ${f.what}: ${f.detail.replace(/\n/g, ' | ').slice(0, 400)}`);
console.log(`${r.cases} cases (seed ${seed}), ${r.failures.length} failures`);
process.exitCode = r.failures.length > 0 ? 1 : 0;
