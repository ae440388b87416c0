/**
 * keepalived's VMAC on the real kernel: the director holds the VIP on a macvlan `vrrp.51@eth0` with the VRRP MAC
 * 00:00:5e:00:01:33. The macvlan answers ARP for the VIP with that MAC (the kernel's macvlan, as the simulator's
 * device table says), and a `no-mac-spoofing` filter on the director's port drops that reply: the VIP cannot be
 * resolved. The simulator must agree with the kernel on both.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labNamespaces } from '../src/lab/lab.ts';
import { type LabReport, runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';
import { writeVmacScenario } from './scenario-builder.ts';

const work = mkdtempSync(join(tmpdir(), `lvsdoctor-lab-vmac-${process.pid}-`));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function runVmac(name: string, filter?: string): Promise<LabReport> {
  const dir = join(work, name);
  writeVmacScenario(dir, name, filter);
  return runLabScenario(load(dir), { filters: 'compiled', timeoutMs: 3000 });
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('keepalived VMAC on a real kernel', () => {
  it('the macvlan answers ARP for the VIP with the VRRP MAC and the service works through it', async () => {
    const before = rootSnapshot();
    const r = await runVmac('lab-vmac-healthy');
    expect(r.probes.find((p) => p.probe === 'arp-vip')!.real.ok).toBe(true);
    expect(r.probes.find((p) => p.probe === 'to-vip')!.real.ok).toBe(true);
    expect(r.probes.every((p) => p.agree && !p.unsupported)).toBe(true);
    expect(labNamespaces(r.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(before);
  });

  it('no-mac-spoofing on the director’s port drops the VMAC’s ARP reply, in the kernel as in the simulator', async () => {
    const r = await runVmac('lab-vmac-no-mac-spoofing', 'no-mac-spoofing');
    const arp = r.probes.find((p) => p.probe === 'arp-vip')!;
    expect(arp.real.ok).toBe(false);
    expect(r.probes.find((p) => p.probe === 'to-vip')!.real.ok).toBe(false);
    expect(r.probes.every((p) => p.agree)).toBe(true);
  });
});
