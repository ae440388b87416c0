/**
 * Real keepalived (Debian's, VRRP only) on the directors of the keepalived pairs of the scenario corpus, in the lab:
 * which adverts reach which peer on the kernel — through the real port filters — and who holds the VIP once keepalived
 * has elected must be what the simulator's VRRP model says (its advert walks, and the holders they imply: a backup
 * that hears no better master takes the VIP too, which is split brain). Root and keepalived only.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keepalivedUnavailable, runVrrpLab } from '../src/lab/keepalived.ts';
import { whichCommand } from '../src/lab/preflight.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'scenarios');
const SKIP = LAB_SKIP_REASON ?? (whichCommand('keepalived') ? undefined : 'keepalived is not installed');
if (SKIP) console.warn(`real keepalived tests skipped: ${SKIP}`);

const SCENARIOS = [
  'ha-dr-pair-healthy',
  'ha-adverts-dropped-no-ip-multicast',
  'ha-split-brain-no-ip-multicast',
  'ha-unicast-pair-healthy',
  'ha-unicast-no-ip-multicast-healthy',
  'ha-backup-no-ip-multicast',
];

describe.skipIf(SKIP !== undefined)('real keepalived and the simulator on the HA scenarios', () => {
  for (const name of SCENARIOS)
    it(`${name}: adverts and VIP holders on the kernel are the simulator's`, async () => {
      const loaded = load(join(ROOT, name));
      expect(keepalivedUnavailable(loaded)).toBeUndefined();
      const before = rootSnapshot();
      const r = await runVrrpLab(loaded, { filters: 'compiled' });
      expect({
        adverts: r.adverts.filter((a) => !a.agree),
        groups: r.groups.filter((g) => !g.agree),
        states: r.states,
      }).toEqual({
        adverts: [],
        groups: [],
        states: r.states,
      });
      expect(r.adverts.length).toBeGreaterThan(0);
      expect(rootSnapshot()).toEqual(before);
    }, 60_000);
});
