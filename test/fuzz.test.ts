/**
 * Issue 15: the fuzz suite in CI — a few mutated cases of every input kind, each in a child process with a memory
 * and a time limit, and the linear-time checks. A longer run: `npm run fuzz -- --cases N`.
 */
import { describe, expect, it } from 'vitest';
import { fuzz } from './fuzz/driver.ts';

describe('the fuzz suite', () => {
  it('finds no crash, hang, stack trace, unnamed error, stray file or superlinear time', async () => {
    const r = await fuzz({ cases: Number(process.env.LVSDOCTOR_FUZZ_CASES ?? 6), seed: 15, memoryMb: 512 });
    expect(r.cases).toBeGreaterThanOrEqual(15 * 6);
    expect(r.scaling.length).toBeGreaterThan(5);
    expect(r.failures.map((f) => `${f.kind}: ${f.what}: ${f.detail.slice(0, 300)}`)).toEqual([]);
  }, 600_000);
});
