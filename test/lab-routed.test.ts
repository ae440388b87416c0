/**
 * Routed and HA layouts on the real kernel: a real server whose replies from the VIP follow a policy rule
 * (`ip rule from VIP lookup 100`) to a table whose default goes via the router (healthy) or via the director (which
 * does not forward them), with a BACKUP director (same IPVS table, no VIP) on the segment. The simulator must say
 * what the kernel does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labNamespaces } from '../src/lab/lab.ts';
import { type LabReport, runLabScenario } from '../src/lab/run.ts';
import { LAB_SKIP_REASON, load, rootSnapshot } from './lab-helpers.ts';
import { baseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const work = mkdtempSync(join(tmpdir(), `lvsdoctor-lab-routed-${process.pid}-`));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function spec(name: string, replyTable: 'router' | 'director'): ScenarioSpec {
  const s = baseSpec();
  return {
    ...s,
    name,
    scheduler: 'rr',
    realServers: [{ ...s.realServers[1]!, replyTable }],
    backup: { name: 'lb2', host: 'kvm2', ip: '198.51.100.11', mac: '52:54:00:00:00:11' },
    probes: ['probes:', '  - name: to-vip', '    tcp: 198.51.100.100:443', '    sport: 42001'].join('\n'),
  };
}

async function runSpec(s: ScenarioSpec): Promise<LabReport> {
  const dir = join(work, s.name);
  writeScenario(dir, s);
  return runLabScenario(load(dir), { filters: 'compiled', timeoutMs: 3000 });
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('policy routing and a BACKUP director on a real kernel', () => {
  it('replies from the VIP routed by `ip rule` via the router reach the client; the BACKUP director stays out', async () => {
    const before = rootSnapshot();
    const r = await runSpec(spec('lab-routed-healthy', 'router'));
    const p = r.probes.find((x) => x.probe === 'to-vip')!;
    expect(p.real).toMatchObject({ ok: true, servedBy: 'web2' });
    expect(r.probes.every((x) => x.agree && !x.unsupported)).toBe(true);
    expect(labNamespaces(r.prefix)).toEqual([]);
    expect(rootSnapshot()).toEqual(before);
  });

  it('replies routed by `ip rule` via the director die there, in the kernel as in the simulator', async () => {
    const r = await runSpec(spec('lab-routed-via-director', 'director'));
    const p = r.probes.find((x) => x.probe === 'to-vip')!;
    expect(p.real.ok).toBe(false);
    expect(p.real.lastSeen?.point).toBe('lb1:eth0');
    expect(p.agree).toBe(true);
  });
});
