/** The probes diagnose runs beyond lab's list: UDP virtual services, and what no probe exercises ("not checked"). */
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { diagnosisPlan, probePlan, uncheckedServices } from '../src/trace/probe-plan.ts';

function load(name: string) {
  const r = loadScenario(`fixtures/scenarios/${name}`);
  if (!r.value) throw new Error(r.issues.map((i) => i.message).join('\n'));
  return r.value;
}

describe('the diagnosis plan', () => {
  it('adds a datagram for every UDP virtual service and one pinned to each real server; lab’s plan has none', () => {
    const loaded = load('dr-fwmark-udp-dns-healthy');
    const udp = diagnosisPlan(loaded).filter((p) => p.spec.kind === 'udp');
    expect(udp.map((p) => [p.spec.name, p.purpose, p.decisive])).toEqual([
      ['udp-198.51.100.100-53', 'service', true],
      ['udp-198.51.100.100-53-to-198.51.100.21-53', 'real-server', true],
      ['udp-198.51.100.100-53-to-198.51.100.22-53', 'real-server', true],
    ]);
    expect(new Set(udp.map((p) => p.spec.kind === 'udp' && p.spec.sport)).size).toBe(3);
    expect(probePlan(loaded).some((p) => (p.spec.kind as string) === 'udp')).toBe(false);
  });

  it('lists the fwmark service as not checked, with the reason, and every probed service as checked', () => {
    const loaded = load('dr-fwmark-udp-dns-healthy');
    const unchecked = uncheckedServices(loaded, diagnosisPlan(loaded));
    expect(unchecked).toHaveLength(1);
    expect(unchecked[0]!.what).toBe('FWM 1 on lb1');
    expect(unchecked[0]!.why).toMatch(/mangle rules/);
  });

  it('counts a service as checked when only a probe the scenario lists reaches it', () => {
    const loaded = load('dr-two-rs-healthy');
    // Only the client's probe of VIP:80, as scenario.yaml would list it (no `service` tag).
    const plan = diagnosisPlan(loaded)
      .filter((p) => p.purpose === 'service')
      .map((p) => ({ spec: p.spec, purpose: 'asked' as const, why: '', decisive: true }));
    expect(plan).toHaveLength(1);
    expect(uncheckedServices(loaded, plan)).toEqual([]);
    expect(uncheckedServices(loaded, [])).toHaveLength(1);
  });

  it('counts nothing as checked by an information-only probe', () => {
    const loaded = load('dr-two-rs-healthy');
    const plan = diagnosisPlan(loaded).map((p) => ({ ...p, decisive: p.spec.kind === 'arp' }));
    expect(uncheckedServices(loaded, plan).map((u) => u.what)).toEqual(['TCP 198.51.100.100:80 on lb1']);
  });
});
