/**
 * Real keepalived (Debian's, VRRP only) on the directors of the keepalived pairs of the scenario corpus, in the lab:
 * which adverts reach which peer on the kernel — through the real port filters — and who holds the VIP once keepalived
 * has elected must be what the simulator's VRRP model says (its advert walks, and the holders they imply: a backup
 * that hears no better master takes the VIP too, which is split brain). Then keepalived is stopped on the holders
 * (SIGTERM, as systemctl stop): who takes the VIPs over, which NICs its gratuitous ARP reaches (from which MAC), and
 * where its adverts arrive must be the simulator's failover (`failover` of diagnose/vrrp.ts). Root and keepalived only.
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
  // use_vmac: keepalived makes its own vrrp.51@eth0 and moves the VIP there; its GARP comes from the VMAC, which the
  // backup's no-mac-spoofing drops (the failover breaks); vmac_xmit_base adverts come from the base MAC.
  'ha-vmac-pair-healthy',
  'ha-failover-vmac-no-mac-spoofing',
  // The backup's clean-traffic drops what it sends from the VIP once it holds it.
  'ha-failover-backup-clean-traffic',
  // vrrp_strict without accept: keepalived ignores the authentication block and starts a `state MASTER` below
  // priority 255 as BACKUP, then elects as usual (its nft drop rules for the VIPs do not touch VRRP).
  'ha-vrrp-strict-no-accept',
  // The directors' own INPUT (their iptables-save, loaded in their namespaces): one that forgets VRRP keeps the
  // adverts from keepalived although they reach the NIC (split brain); one that opens it is healthy.
  'ha-backup-input-drops-vrrp',
  'ha-director-input-vrrp-accepted-healthy',
];

describe.skipIf(SKIP !== undefined)('real keepalived and the simulator on the HA scenarios', () => {
  for (const name of SCENARIOS)
    it(`${name}: adverts, VIP holders, and the failover once the master's keepalived stops, are the simulator's`, async () => {
      const loaded = load(join(ROOT, name));
      expect(keepalivedUnavailable(loaded)).toBeUndefined();
      const before = rootSnapshot();
      const r = await runVrrpLab(loaded, { filters: 'compiled', failover: true });
      expect({
        adverts: r.adverts.filter((a) => !a.agree),
        groups: r.groups.filter((g) => !g.agree),
        failovers: r.failovers?.filter((f) => !f.agree),
        states: r.states,
      }).toEqual({
        adverts: [],
        groups: [],
        failovers: [],
        states: r.states,
      });
      // The failover happened on the kernel: someone was stopped, and a GARP was compared for every other node.
      expect(r.failovers?.every((f) => f.stopped.length > 0 && f.garp.length > 0)).toBe(true);
      expect(r.adverts.length).toBeGreaterThan(0);
      expect(rootSnapshot()).toEqual(before);
    }, 90_000);
});
