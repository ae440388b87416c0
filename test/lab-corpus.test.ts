/**
 * The simulator held to the real kernel on the whole scenario corpus (fixtures/scenarios): every scenario the
 * kernel here can show — DR, NAT one- and two-armed, keepalived pairs (their current state), routed real servers,
 * hosts' own rule sets (Docker, libvirt, firewalld, conntrack) loaded for real — is run in the lab, and the kernel and
 * the simulator must agree on every probe, each probe a whole conversation (handshake, full-size request, complete
 * response). A scenario the kernel cannot show is listed as skipped with its reasons (`labLimits`, the same words
 * `lvsdoctor lab` prints), and `lab run` must refuse it with exit 4 rather than build half of it. Root only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { EXIT_CANNOT_SHOW, runLab } from '../src/cli/cmd-lab.ts';
import { kernelCapabilities, labLimits } from '../src/lab/limits.ts';
import { runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'scenarios');
const caps = kernelCapabilities();
const all = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort()
  .map((name) => {
    const e = parse(readFileSync(join(ROOT, name, 'expect.yaml'), 'utf8')) as { exit: number };
    // Exit 2 scenarios have no verdict to check (the lab refuses them too: no probe can run).
    const limits =
      e.exit === 2 ? ['diagnose gives no verdict (exit 2): no probe can run'] : labLimits(load(join(ROOT, name)), caps);
    return { name, limits };
  });
const checked = all.filter((s) => s.limits.length === 0);
const refused = all.filter((s) => s.limits.length > 0);
console.info(
  `lab corpus: ${checked.length} of ${all.length} scenarios kernel-checked; not checked:\n${refused.map((s) => `  ${s.name}: ${s.limits.join('; ')}`).join('\n')}`,
);

// Without root too: an expect.yaml must not claim a kernel check the kernel here cannot give.
it('claims a kernel check (lab: "checked …") only for scenarios the kernel here can show', () => {
  const claimed = all.filter((s) => {
    const e = parse(readFileSync(join(ROOT, s.name, 'expect.yaml'), 'utf8')) as { lab?: string };
    return (e.lab ?? '').startsWith('checked ') && s.limits.length > 0 && !s.limits[0]!.startsWith('diagnose');
  });
  expect(claimed.map((s) => `${s.name}: ${s.limits.join('; ')}`)).toEqual([]);
});

describe.skipIf(LAB_SKIP_REASON !== undefined)('kernel and simulator on the scenario corpus', () => {
  for (const { name } of checked)
    it(`${name}: the kernel agrees with the simulator on every probe`, async () => {
      const before = rootSnapshot();
      let r = await runLabScenario(load(join(ROOT, name)), { timeoutMs: 1500 });
      // A busy machine can miss a short timeout: a disagreement is confirmed with more time and no early stop.
      if (r.probes.some((p) => !p.agree))
        r = await runLabScenario(load(join(ROOT, name)), { timeoutMs: 4000, quietMs: 0 });
      expect(
        r.probes.filter((p) => !p.agree).map((p) => `${p.probe}: kernel ${p.real.detail}; simulator ${p.sim.summary}`),
      ).toEqual([]);
      expect(r.probes.length).toBeGreaterThan(0);
      expect(rootSnapshot()).toEqual(before);
    }, 120_000);
  for (const { name, limits } of refused) it.skip(`${name}: not kernel-checked — ${limits.join('; ')}`, () => {});

  it('refuses every scenario the kernel cannot show with exit 4, naming each reason, and builds nothing', async () => {
    const before = rootSnapshot();
    for (const { name, limits } of refused.filter((s) => !s.limits[0]!.startsWith('diagnose'))) {
      const err: string[] = [];
      const io = { stdout: () => {}, stderr: (s: string) => err.push(s), cwd: ROOT };
      const code = await runLab(io, 'run', join(ROOT, name), { filters: 'compiled' });
      expect({ name, code }).toEqual({ name, code: EXIT_CANNOT_SHOW });
      expect(err.join('')).toContain(`cannot show ${name}`);
      for (const l of limits) expect(err.join('')).toContain(l);
    }
    expect(rootSnapshot()).toEqual(before);
  }, 120_000);
});
