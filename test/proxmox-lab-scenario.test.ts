/**
 * The Proxmox scenario form on the real kernel: `lab run` builds examples/proxmox-lvs-dr (a `platform: proxmox` host:
 * tap ─ fwbr ─ fwln ═ fwpr ─ vmbr0, pve-firewall's ipsets, iptables and ebtables rules as lvsdoctor compiles them
 * from /etc/pve) in network namespaces, and every probe's outcome on the kernel must be what the simulator says —
 * broken, fixed twin, and with diagnose's proposed fix applied to the model. Root only (the lab's own checks).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findFix } from '../src/diagnose/fix-list.ts';
import { labNamespaces } from '../src/lab/lab.ts';
import { type LabReport, runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';

const examples = join(import.meta.dirname, '..', 'examples');

function probe(r: LabReport, name: string) {
  const p = r.probes.find((x) => x.probe === name);
  if (!p) throw new Error(`no probe ${name}`);
  return p;
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('the Proxmox scenario form on a real kernel', () => {
  it('broken: the director behind ipfilter loses the request at its firewall bridge, as the simulator says', async () => {
    const before = rootSnapshot();
    const r = await runLabScenario(load(join(examples, 'proxmox-lvs-dr')));
    const http = probe(r, 'http-to-vip');
    expect(http.real.ok).toBe(false);
    expect(http.real.lastSeen).toMatchObject({ point: 'pve1:fwbr100i0', stage: 'request' });
    const arp = probe(r, 'arp-for-vip');
    expect(arp.real.ok).toBe(false);
    expect(arp.real.lastSeen).toMatchObject({ point: 'pve1:fwbr100i0', stage: 'reply' });
    expect(r.probes.map((p) => [p.probe, p.agree])).toEqual(r.probes.map((p) => [p.probe, true]));
    expect(r.exitCode).toBe(1);
    expect(labNamespaces(r.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(before);
  });

  it('the fixed twin answers every probe on the kernel, as the simulator says', async () => {
    const r = await runLabScenario(load(join(examples, 'proxmox-lvs-dr-fixed')));
    expect(probe(r, 'http-to-vip').real).toMatchObject({ ok: true, servedBy: 'web1' });
    expect(r.probes.every((p) => p.real.ok && p.agree)).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it("diagnose's fix (IP filter off on the director NIC) applied to the model works on the kernel too", async () => {
    const loaded = load(join(examples, 'proxmox-lvs-dr'));
    const { fix } = findFix(loaded, 'pve-director-ipfilter-off-100');
    expect(fix).toBeDefined();
    const r = await runLabScenario(fix!.apply(loaded));
    expect(probe(r, 'http-to-vip').real).toMatchObject({ ok: true, servedBy: 'web1' });
    expect(probe(r, 'arp-for-vip').real.ok).toBe(true);
    expect(r.probes.every((p) => p.agree)).toBe(true);
  });
});
