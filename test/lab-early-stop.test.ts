/**
 * A failing probe is stopped early only when the kernel's captures show its packets last seen exactly where the
 * simulator says they end, and nothing has moved since; otherwise it gets its whole timeout.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { l2View } from '../src/lab/correlate.ts';
import { labDown, labUp, resetLearnedState } from '../src/lab/lab.ts';
import { runRealProbe } from '../src/lab/probes.ts';
import { runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load } from './lab-helpers.ts';

const founding = join(import.meta.dirname, '..', 'examples', 'kvm-lvs-dr');

describe.skipIf(LAB_SKIP_REASON !== undefined)('stopping a failing probe early', () => {
  it('stops the founding case probes where the simulator says they die, long before a 10 s timeout', async () => {
    const r = await runLabScenario(load(founding), { filters: 'compiled', timeoutMs: 10_000 });
    // The founding case's VIP probes fail; the direct-to-real-server check the probe plan adds succeeds.
    const failing = r.probes.filter((p) => !p.sim.ok);
    expect(failing.map((p) => p.probe)).toEqual(expect.arrayContaining(['http-to-vip', 'arp-for-vip']));
    for (const p of failing) expect(p.real.detail).toMatch(/^no answer; stopped after \d+ ms/);
    for (const p of r.probes) expect(p.agree).toBe(true);
    expect(r.timings.probes).toBeLessThan(10_000);
    expect(r.exitCode).toBe(1);
  });

  it('waits out the timeout when the packets end anywhere else than expected', async () => {
    const loaded = load(founding);
    const lab = await labUp(loaded, { filters: 'compiled', directorMode: { kind: 'fresh' } });
    try {
      const view = l2View(loaded.scenario);
      for (const probe of loaded.scenario.probes) {
        await resetLearnedState(lab);
        const t0 = Date.now();
        // A made-up expectation the kernel never meets: the probe must run its full 1.5 s.
        const out = await runRealProbe(lab, probe, {
          timeoutMs: 1500,
          expect: { view, lastSeen: { rank: 1, stage: 'request', point: 'client:nowhere', seenAt: [] } },
        });
        expect(out.ok).toBe(false);
        expect(out.detail).not.toMatch(/stopped after/);
        expect(Date.now() - t0).toBeGreaterThanOrEqual(1500);
      }
    } finally {
      await labDown(lab);
    }
  });
});
