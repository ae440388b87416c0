/**
 * The kernel's outcomes recorded in the lab fixtures (fixtures/lab/NAME/disagreement.json: what the real kernel did
 * when the simulator disagreed) hold the simulator to them without root: for every recorded probe the simulator must
 * now succeed or fail as the kernel did, and when both fail, last see the packet at the same point and leg.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { l2View, lastSeen, probeKey } from '../src/lab/correlate.ts';
import { openSession, probesOf, runProbe } from '../src/trace/session.ts';
import { load } from './lab-helpers.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'lab');

interface Recorded {
  probe: string;
  real: { ok: boolean; lastSeen: { point?: string; stage?: string } };
}

const record = (name: string) =>
  JSON.parse(readFileSync(join(FIXTURES, name, 'disagreement.json'), 'utf8')) as {
    labBug?: string;
    report: { probes: Recorded[] };
  };
// A fixture whose recorded kernel outcome came from a bug of the lab itself (`labBug`) says nothing of the kernel.
const saved = readdirSync(FIXTURES).filter(
  (d) => existsSync(join(FIXTURES, d, 'disagreement.json')) && record(d).labBug === undefined,
);

describe('the simulator against the kernel outcomes saved in lab fixtures', () => {
  it('has fixtures to check', () => expect(saved.length).toBeGreaterThan(0));

  it.each(saved)('%s: the simulator does what the kernel did', (name) => {
    const rec = record(name);
    const loaded = load(join(FIXTURES, name));
    const session = openSession(loaded);
    const view = l2View(loaded.scenario);
    const probes = new Map(probesOf(loaded).map((p) => [p.name, p]));
    const differences: string[] = [];
    for (const r of rec.report.probes) {
      const p = probes.get(r.probe);
      if (!p) {
        differences.push(`${r.probe}: the simulator has no such probe`);
        continue;
      }
      const t = runProbe(session, p);
      const ok = t.disposition === 'replied';
      const seen = lastSeen(view, probeKey(loaded, p), t.captures);
      if (ok !== r.real.ok)
        differences.push(`${r.probe}: kernel ${r.real.ok ? 'succeeds' : 'fails'}, simulator: ${t.summary}`);
      else if (!ok && (seen.point !== r.real.lastSeen.point || seen.stage !== r.real.lastSeen.stage))
        differences.push(
          `${r.probe}: kernel last saw the ${r.real.lastSeen.stage} at ${r.real.lastSeen.point}, the simulator the ${seen.stage} at ${seen.point} (${t.summary})`,
        );
    }
    expect(differences).toEqual([]);
  });
});
