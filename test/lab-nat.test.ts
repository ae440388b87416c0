/**
 * LVS-NAT on the real kernel (real IPVS where the kernel has it, else the nftables emulation): the director
 * rewrites the destination to a real server and, as the real servers' gateway, gives their replies the VIP back.
 * The classic mistakes fail where the simulator says they do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labNamespaces } from '../src/lab/lab.ts';
import { type LabReport, runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';
import { natBaseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const work = mkdtempSync(join(tmpdir(), `lvsdoctor-lab-nat-${process.pid}-`));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A two-server NAT cluster; the real servers listen on 8443 behind the VIP's 443. */
function natSpec(name: string, change: (s: ScenarioSpec) => ScenarioSpec = (s) => s): ScenarioSpec {
  return change({
    ...natBaseSpec(),
    name,
    probes: [
      'probes:',
      '  - name: to-vip',
      '    tcp: 198.51.100.100:443',
      '    sport: 41001',
      '  - name: to-web1',
      '    tcp: 198.51.100.21:8443',
      '    sport: 41002',
    ].join('\n'),
  });
}

async function runSpec(spec: ScenarioSpec): Promise<LabReport> {
  const dir = join(work, spec.name);
  writeScenario(dir, spec);
  return runLabScenario(load(dir), { filters: 'compiled', timeoutMs: 3000 });
}

function probe(r: LabReport, name: string) {
  const p = r.probes.find((x) => x.probe === name);
  if (!p) throw new Error(`no probe ${name}`);
  return p;
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('LVS-NAT on a real kernel', () => {
  it('answers from the VIP, served by the real server a fresh IPVS picks; a direct request is not rewritten', async () => {
    const before = rootSnapshot();
    const r = await runSpec(natSpec('lab-nat-healthy'));
    // wrr: the first of highest weight (web1, weight 3).
    expect(probe(r, 'to-vip').real).toMatchObject({ ok: true, servedBy: 'web1' });
    expect(probe(r, 'to-vip').real.lastSeen).toMatchObject({ rank: 4, point: 'client:eth0' });
    // The reply of a connection the director did not schedule keeps the real server's address.
    expect(probe(r, 'to-web1').real).toMatchObject({ ok: true, servedBy: 'web1' });
    expect(r.probes.every((p) => p.agree && !p.unsupported)).toBe(true);
    expect(r.exitCode).toBe(0);
    expect(labNamespaces(r.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(before);
  });

  it("fails when the real servers' default route bypasses the director: the client gets the real server's SYN-ACK", async () => {
    const r = await runSpec(
      natSpec('lab-nat-via-router', (s) => ({
        ...s,
        realServers: s.realServers.map((x) => ({ ...x, via: 'router' as const })),
      })),
    );
    const p = probe(r, 'to-vip');
    expect(p.real.ok).toBe(false);
    expect(p.real.lastSeen).toMatchObject({ rank: 3, stage: 'reply', point: 'client:eth0' });
    expect(probe(r, 'to-web1').real.ok).toBe(true);
    expect(r.probes.every((x) => x.agree)).toBe(true);
  });

  it('fails when the director does not forward: the reply dies on the director', async () => {
    const r = await runSpec(
      natSpec('lab-nat-no-forwarding', (s) => ({
        ...s,
        director: { ...s.director, sysctl: { 'net.ipv4.ip_forward': 0 } },
      })),
    );
    expect(probe(r, 'to-vip').real).toMatchObject({ ok: false, lastSeen: { stage: 'reply', point: 'lb1:eth0' } });
    expect(r.probes.every((x) => x.agree)).toBe(true);
  });

  it("fails when the director's clean-traffic filter drops the rewritten request, which carries the client's address", async () => {
    const r = await runSpec(
      natSpec('lab-nat-director-filter', (s) => ({
        ...s,
        director: { ...s.director, filter: { name: 'clean-traffic', params: [['IP', s.director.ip]] } },
        // The gateway's cached VIP entry: the director's ARP replies for the VIP would be dropped too.
        gateway: { ...s.gateway, cachedVip: true },
      })),
    );
    expect(probe(r, 'to-vip').real).toMatchObject({
      ok: false,
      lastSeen: { rank: 2, stage: 'request', point: 'kvm1:vnet0' },
    });
    expect(r.probes.every((x) => x.agree)).toBe(true);
  });
});
