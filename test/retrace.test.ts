/**
 * The fast re-trace of diagnosis (src/trace/retrace.ts) must give exactly what a fresh session gives: for made-up
 * scenarios, every fix the findings propose (alone and after another) and a few hand-made edits are applied, and
 * every probe's derived trace is compared, serialized, with a fresh walk on a new session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Mac } from '../src/addr/mac.ts';
import { FINDING_KINDS } from '../src/diagnose/findings/catalogue.ts';
import type { FixProposal } from '../src/diagnose/types.ts';
import { implicit } from '../src/source/origin.ts';
import { type LoadedScenario, loadScenario } from '../src/topology/load-scenario.ts';
import type { PortBinding, SysctlValue } from '../src/topology/model.ts';
import { plannedSpecs } from '../src/trace/probe-plan.ts';
import { type RecordedTrace, retraceFrom, runProbeRecorded } from '../src/trace/retrace.ts';
import { openSession, runProbe } from '../src/trace/session.ts';
import type { Trace } from '../src/trace/types.ts';
import { baseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-retrace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function load(spec: ScenarioSpec): LoadedScenario {
  const dir = join(root, `s${n++}`);
  writeScenario(dir, spec);
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}

/** Canonical text of a trace: key order included, so "identical" means byte-identical output. */
function text(t: Trace): string {
  return JSON.stringify(t, (_k, v) =>
    typeof v === 'bigint'
      ? `${v}n`
      : v instanceof Uint8Array
        ? [...v]
        : v instanceof Map
          ? [...v]
          : v instanceof Set
            ? [...v]
            : v,
  );
}

/** Every fix the findings propose for the scenario: from static checks and from explaining each failed trace. */
function fixesOf(loaded: LoadedScenario, traces: readonly Trace[]): FixProposal[] {
  const out = new Map<string, FixProposal>();
  const add = (fs: readonly FixProposal[]) => {
    for (const f of fs) if (!out.has(f.id)) out.set(f.id, f);
  };
  for (const k of FINDING_KINDS) if (k.check) for (const d of k.check({ loaded })) add(d.fixes);
  for (const t of traces)
    if (t.disposition !== 'replied')
      for (const k of FINDING_KINDS) {
        const d = k.detect?.({ loaded }, t);
        if (d) add(d.fixes);
      }
  return [...out.values()];
}

function withSysctl(loaded: LoadedScenario, node: string, key: string, value: string): LoadedScenario {
  const nd = loaded.scenario.nodes.get(node)!;
  const sysctl = new Map<string, SysctlValue>(nd.sysctl);
  sysctl.set(key, { value, origin: implicit('test edit') });
  const nodes = new Map(loaded.scenario.nodes);
  nodes.set(node, { ...nd, sysctl });
  return { ...loaded, scenario: { ...loaded.scenario, nodes } };
}

/** The tap the scenario builder gives a guest: vnetK, K its rank among the guests of its host. */
function tapOfGuest(spec: ScenarioSpec, guest: string): string {
  const all = [spec.director, ...spec.realServers];
  const g = all.find((x) => x.name === guest)!;
  return `vnet${all.filter((x) => x.host === g.host).indexOf(g)}`;
}

interface Tally {
  same: number;
  patched: number;
  walked: number;
}

function compare(recorded: readonly RecordedTrace[], changed: LoadedScenario, tally: Tally, label: string): void {
  const fast = openSession(changed);
  const fresh = openSession(changed);
  for (const r of recorded) {
    const derived = retraceFrom(r, fast);
    if (derived === undefined) tally.walked++;
    else if (derived === r.trace) tally.same++;
    else tally.patched++;
    const walked = runProbe(fresh, r.probe);
    expect(derived === undefined ? undefined : text(derived), `${label}: ${r.probe.name}`).toBe(
      derived === undefined ? undefined : text(walked),
    );
  }
}

const ct = (ips: string[]) => ({ name: 'clean-traffic', params: ips.map((a) => ['IP', a] as const) });
const base = baseSpec();
const guarded = (s: ScenarioSpec): ScenarioSpec => ({
  ...s,
  director: { ...s.director, filter: ct([s.director.ip]) },
  realServers: s.realServers.map((r) => ({ ...r, filter: ct([r.ip]) })),
});
const SCENARIOS: { name: string; spec: ScenarioSpec }[] = [
  { name: 'clean-traffic on the director and both real servers (DR)', spec: guarded(base) },
  {
    name: 'every guest on one host, so a fix on one port changes steps of frames to the others',
    spec: guarded({
      ...base,
      realServers: base.realServers.map((r) => ({ ...r, host: 'kvm1' })),
    }),
  },
  {
    name: 'no-arp-spoofing on the director, the gateway without a cached VIP',
    spec: {
      ...base,
      director: { ...base.director, filter: { name: 'no-arp-spoofing', params: [['IP', base.director.ip]] } },
    },
  },
  {
    name: 'a NAT director with forwarding off behind clean-traffic',
    spec: guarded({
      ...base,
      method: 'Masq',
      realServers: base.realServers.map((r) => ({ ...r, vipOnLo: false, via: 'director' as const })),
    }),
  },
];

describe('re-tracing a fix from the recorded traces', () => {
  const tally: Tally = { same: 0, patched: 0, walked: 0 };
  for (const { name, spec } of SCENARIOS)
    it(`gives the traces of a fresh session: ${name}`, () => {
      const loaded = load(spec);
      const session = openSession(loaded);
      const recorded = plannedSpecs(loaded).map((p) => runProbeRecorded(session, p));
      for (const r of recorded) expect(text(r.trace)).toBe(text(runProbe(openSession(loaded), r.probe)));
      const fixes = fixesOf(
        loaded,
        recorded.map((r) => r.trace),
      );
      expect(fixes.length).toBeGreaterThan(0);
      for (const f of fixes) {
        const once = f.apply(loaded);
        compare(recorded, once, tally, f.id);
        // A fix applied on top of another (as diagnosis does with prerequisites).
        for (const g of fixes) if (g !== f) compare(recorded, g.apply(once), tally, `${f.id} then ${g.id}`);
      }
      // Hand-made edits: a copy that changes nothing the walks read, a sysctl of a guest every probe meets, and
      // one of a host.
      compare(
        recorded,
        { ...loaded, scenario: { ...loaded.scenario, bindings: [...loaded.scenario.bindings] } },
        tally,
        'copy',
      );
      compare(
        recorded,
        withSysctl(loaded, spec.director.name, 'net.ipv4.conf.all.arp_ignore', '8'),
        tally,
        'arp_ignore',
      );
      compare(
        recorded,
        withSysctl(loaded, spec.hosts[0]!.name, 'net.bridge.bridge-nf-call-iptables', '1'),
        tally,
        'br_netfilter',
      );
      // A filter on a port that had none: decisions that had nothing to say now add steps.
      for (const g of [spec.director, ...spec.realServers]) {
        if (g.filter) continue;
        const tap = tapOfGuest(spec, g.name);
        const binding: PortBinding = {
          host: g.host,
          domain: g.name,
          binding: {
            portdev: tap,
            mac: g.mac as Mac,
            filter: 'no-mac-spoofing',
            params: new Map(),
            origin: implicit('test binding'),
          },
        };
        const bindings = [...loaded.scenario.bindings, binding];
        compare(recorded, { ...loaded, scenario: { ...loaded.scenario, bindings } }, tally, `filter on ${g.name}`);
      }
    });
  it('used every path: unchanged traces, patched traces and walks', () => {
    console.log(`retrace paths: ${JSON.stringify(tally)}`);
    expect(tally.same).toBeGreaterThan(0);
    expect(tally.patched).toBeGreaterThan(0);
    expect(tally.walked).toBeGreaterThan(0);
  });
});
