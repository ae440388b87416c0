import { describe, expect, it } from 'vitest';
import { bridgedPair, loggingFirewall, tcpProbe, tinySession } from '../../test/support/tiny-net.ts';
import { traceProbe } from './probe.ts';
import { changedNodes, retraceFrom, runProbeRecorded } from './retrace.ts';

const KNOWN = {
  a: { neighbours: { '198.51.100.20': '52:54:00:00:00:0b' } },
  b: { listen: [80], neighbours: { '198.51.100.10': '52:54:00:00:00:0a' } },
};
const PROBE = tcpProbe('a', '198.51.100.20', 80);
const scenario = bridgedPair(KNOWN);
const quiet = loggingFirewall([]);

function fresh(session: ReturnType<typeof tinySession>) {
  return traceProbe(session.pristine, PROBE);
}

describe('re-tracing from a recorded walk (retrace.ts)', () => {
  it('patches the steps of a changed firewall that drops nothing, without walking again', () => {
    const rec = runProbeRecorded(tinySession(scenario, { firewalls: { host: quiet } }), PROBE);
    const asked: string[] = [];
    const next = tinySession(scenario, {
      firewalls: { host: loggingFirewall(asked, (table) => (table === 'filter' ? 'ACCEPT' : undefined)) },
    });
    const t = retraceFrom(rec, next)!;
    // Only the recorded firewall decisions were asked again, and untouched hops are the recorded ones.
    expect(asked).toHaveLength(rec.firewallByHost.get('host')!.length);
    expect(t).toBeDefined();
    expect(t).toEqual(fresh(next));
    const untouched = t.hops.filter((h, k) => h === rec.trace.hops[k]);
    expect(untouched.length).toBeGreaterThan(0);
    expect(untouched.length).toBeLessThan(t.hops.length);
  });

  it('walks again when a changed firewall now drops', () => {
    const rec = runProbeRecorded(tinySession(scenario, { firewalls: { host: quiet } }), PROBE);
    const next = tinySession(scenario, {
      firewalls: { host: loggingFirewall([], (_table, hook) => (hook === 'POSTROUTING' ? 'DROP' : undefined)) },
    });
    expect(retraceFrom(rec, next)).toBeUndefined();
  });

  it('walks again when a node the walk entered changed (its routes and sysctls answered the walk)', () => {
    const rec = runProbeRecorded(tinySession(scenario, { firewalls: { host: quiet } }), PROBE);
    // The same topology (interfaces, segments), but node b is another object, as after a sysctl fix on it.
    const next = tinySession(
      { ...scenario, nodes: new Map([...scenario.nodes, ['b', { ...scenario.nodes.get('b')! }]]) },
      { firewalls: { host: quiet } },
    );
    expect(retraceFrom(rec, next)).toBeUndefined();
  });

  it('gives the recorded trace itself when no engine the walk asked changed', () => {
    const rec = runProbeRecorded(tinySession(scenario, { firewalls: { host: quiet } }), PROBE);
    const next = tinySession(scenario, { firewalls: { host: quiet } });
    expect(retraceFrom(rec, next)).toBe(rec.trace);
  });

  it('knows which nodes differ between two sessions: the node object, its IPVS tables, its kernel, one side only', () => {
    const base = tinySession(scenario, { firewalls: { host: quiet } });
    const with_ = (loaded: Partial<typeof base.loaded>) => ({ ...base, loaded: { ...base.loaded, ...loaded } });
    expect(changedNodes(base, base)).toEqual([]);
    expect(changedNodes(base, with_({}))).toEqual([]);
    const nodes = new Map([...scenario.nodes, ['b', { ...scenario.nodes.get('b')! }]]);
    expect(changedNodes(base, with_({ scenario: { ...scenario, nodes } }))).toEqual(['b']);
    const c = { ...scenario.nodes.get('b')!, name: 'c' };
    expect(
      changedNodes(base, with_({ scenario: { ...scenario, nodes: new Map([...scenario.nodes, ['c', c]]) } })),
    ).toEqual(['c']);
    expect(changedNodes(base, with_({ kernels: new Map([...base.loaded.kernels, ['a', '6.1.0-99']]) }))).toEqual(['a']);
    const ipvs = new Map(base.loaded.ipvs);
    ipvs.set('b', { services: [] } as unknown as NonNullable<ReturnType<typeof ipvs.get>>);
    expect(changedNodes(base, with_({ ipvs }))).toEqual(['b']);
    // Each of these makes a recorded walk that entered the node be walked again.
    const rec = runProbeRecorded(base, PROBE);
    expect(rec.nodes.has('a') && rec.nodes.has('b')).toBe(true);
    expect(retraceFrom(rec, with_({ kernels: new Map([...base.loaded.kernels, ['a', '6.1.0-99']]) }))).toBeUndefined();
    expect(retraceFrom(rec, with_({ ipvs }))).toBeUndefined();
    expect(retraceFrom(rec, with_({}))).toBe(rec.trace);
  });
});
