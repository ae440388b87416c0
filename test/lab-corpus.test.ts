/**
 * The simulator held to the real kernel on the scenario corpus (fixtures/scenarios): every scenario whose
 * expect.yaml says `lab: "checked …"` — DR, NAT one- and two-armed, keepalived pairs (their current state) — is
 * run in the lab, and the kernel and the simulator must agree on every probe lab runs. Root only; the scenarios the
 * lab cannot run say why in their own `lab:` line.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'scenarios');
const checked = readdirSync(ROOT, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .filter((n) => {
    const e = parse(readFileSync(join(ROOT, n, 'expect.yaml'), 'utf8')) as { lab?: string; exit: number };
    return e.exit !== 2 && (e.lab ?? '').startsWith('checked ');
  })
  .sort();

describe.skipIf(LAB_SKIP_REASON !== undefined)('kernel and simulator on the scenario corpus', () => {
  for (const name of checked)
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
});
