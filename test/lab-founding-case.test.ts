/**
 * The founding case on the real kernel: the request to the VIP times out before the fix and succeeds after each
 * proposed fix (the article's, and the safer director filter), and the simulator agrees on every probe.
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

describe.skipIf(LAB_SKIP_REASON !== undefined)('the founding case on a real kernel', () => {
  it('times out before the fix, last seen where the director filter drops it, as the simulator says', async () => {
    const before = rootSnapshot();
    const r = await runLabScenario(load(join(examples, 'kvm-lvs-dr')));
    const http = probe(r, 'http-to-vip');
    expect(http.real.ok).toBe(false);
    expect(http.real.lastSeen.point).toBe('host1:vnet0');
    expect(http.real.lastSeen.stage).toBe('request');
    expect(http.agree).toBe(true);
    const arp = probe(r, 'arp-for-vip');
    expect(arp.real.ok).toBe(false);
    expect(arp.real.lastSeen).toMatchObject({ point: 'host1:vnet0', stage: 'reply' });
    expect(arp.agree).toBe(true);
    expect(r.exitCode).toBe(1);
    for (const c of r.ruleChecks) expect(c.kernel).toBe(c.compiled);
    expect(labNamespaces(r.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(before);
  });

  it("succeeds after the article's fix (the filterref removed)", async () => {
    const r = await runLabScenario(load(join(examples, 'kvm-lvs-dr-fixed')));
    expect(probe(r, 'http-to-vip').real).toMatchObject({ ok: true, servedBy: 'r2-10106' });
    expect(r.probes.every((p) => p.agree)).toBe(true);
    expect(r.exitCode).toBe(0);
  });

  it('succeeds after the safer director filter, which keeps MAC, ARP and IP anti-spoofing', async () => {
    const loaded = load(join(examples, 'kvm-lvs-dr'));
    const { fix } = findFix(loaded, 'dr-director-filter');
    expect(fix).toBeDefined();
    const r = await runLabScenario(fix!.apply(loaded));
    expect(probe(r, 'http-to-vip').real).toMatchObject({ ok: true, servedBy: 'r2-10106' });
    expect(probe(r, 'arp-for-vip').real.ok).toBe(true);
    expect(r.probes.every((p) => p.agree)).toBe(true);
    expect(r.exitCode).toBe(0);
    for (const c of r.ruleChecks) expect(c.kernel).toBe(c.compiled);
  });

  it('with only the VIP added to the IP list, ARP for the VIP works but the request still dies on host1', async () => {
    const loaded = load(join(examples, 'kvm-lvs-dr'));
    const { fix } = findFix(loaded, 'add-ip');
    expect(fix).toBeDefined();
    const r = await runLabScenario(fix!.apply(loaded));
    expect(probe(r, 'arp-for-vip').real.ok).toBe(true);
    expect(probe(r, 'http-to-vip').real).toMatchObject({ ok: false, lastSeen: { point: 'host1:vnet0' } });
    expect(r.probes.every((p) => p.agree)).toBe(true);
  });
});
