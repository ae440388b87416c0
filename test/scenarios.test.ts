import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { formatIssue } from '../src/source/issue.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../src/trace/session.ts';
import { baseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-scen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function load(spec: ScenarioSpec) {
  const dir = join(root, `s${n++}`);
  writeScenario(dir, spec);
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error').map(formatIssue)).toEqual([]);
  return r.value!;
}

function run(spec: ScenarioSpec) {
  const loaded = load(spec);
  const session = openSession(loaded);
  expect(session.issues.map(formatIssue)).toEqual([]);
  return Object.fromEntries(probesOf(loaded).map((p) => [p.name, runProbe(session, p)]));
}

const ct = (ip: string[]) => ({ name: 'clean-traffic', params: ip.map((a) => ['IP', a] as const) });

describe('made-up DR clusters', () => {
  it('a healthy cluster answers through ARP resolved on the way (no cached neighbour entry)', () => {
    const t = run(baseSpec());
    expect(t['tcp-vip']!.disposition).toBe('replied');
    expect(t['arp-vip']!.disposition).toBe('replied');
    // The gateway had to ARP for the VIP inside the TCP probe.
    const gwHop = t['tcp-vip']!.hops.find((h) => h.steps.some((s) => s.kind === 'neighbour' && s.source === 'arp'));
    expect(gwHop?.place.node).toBe('gateway');
  });

  it('wrr with weights 3 and 1 sends the first connection to the heavier server', () => {
    const t = run(baseSpec());
    const ipvs = t['tcp-vip']!.hops.flatMap((h) => h.steps).find((s) => s.kind === 'ipvs');
    expect(ipvs && ipvs.kind === 'ipvs' ? ipvs.destination : '').toBe('198.51.100.21:443');
  });

  it('a modern director kernel decrements the TTL when it forwards', () => {
    const t = run(baseSpec());
    const delivered = t['tcp-vip']!.hops.find(
      (h) => h.steps.some((s) => s.kind === 'deliver') && h.place.node === 'web1',
    );
    expect(delivered).toBeDefined();
    const p = delivered!.frame.payload;
    expect(p.kind === 'ipv4' ? p.ttl : 0).toBe(62); // client 64, gateway 63, IPVS 62
  });

  it('clean-traffic on the director with the VIP in IP still drops DR forwarding, but ARP for the VIP works', () => {
    const s = baseSpec();
    const t = run({ ...s, director: { ...s.director, filter: ct([s.director.ip, s.vip]) } });
    expect(t['arp-vip']!.disposition).toBe('replied');
    expect(t['tcp-vip']!.disposition).toBe('dropped-by-filter');
    expect(t['tcp-vip']!.end.place).toEqual({ node: 'kvm1', iface: 'vnet0' });
  });

  it('without a cached entry, a director filter lacking the VIP leaves the gateway unable to resolve it', () => {
    const s = baseSpec();
    const t = run({ ...s, director: { ...s.director, filter: ct([s.director.ip]) } });
    expect(t['tcp-vip']!.disposition).toBe('arp-unresolved');
    expect(t['tcp-vip']!.end.origin?.data?.filter).toBe('no-arp-ip-spoofing');
  });

  it('a real server with clean-traffic drops its own VIP-sourced replies, and adding the VIP fixes it', () => {
    const s = baseSpec();
    const rs = s.realServers.map((r) => ({ ...r, filter: ct([r.ip]) }));
    const loaded = load({ ...s, realServers: rs });
    const report = diagnose(loaded);
    const tcp = report.traces.find((t) => t.probe.name === 'tcp-vip')!;
    expect(tcp.disposition).toBe('dropped-by-filter');
    expect(tcp.stage).toBe('reply');
    expect(report.findings.map((f) => f.code)).toContain('rs-anti-spoofing');
    const fix = report.fixes.find((f) => f.id.startsWith('add-ip:kvm1:vnet1'));
    expect(fix?.verified).toBe(true);
    // The asked probe, and the connection lvsdoctor pins to web1 (every real server is traced).
    expect(fix?.unblocks).toContain('tcp-vip');
    expect(fix?.unblocks.every((p) => p === 'tcp-vip' || p.endsWith('-to-198.51.100.21-443'))).toBe(true);
  });

  it('a real server without the VIP discards the DR frame', () => {
    const s = baseSpec();
    const t = run({ ...s, realServers: s.realServers.map((r) => ({ ...r, vipOnLo: false })) });
    expect(t['tcp-vip']!.disposition).toBe('discarded');
    expect(t['tcp-vip']!.end.place.node).toBe('web1');
    expect(t['tcp-vip']!.end.reason).toContain('ip_forward=0');
  });

  it('a real server that does not listen answers with a reset', () => {
    const s = baseSpec();
    const t = run({ ...s, realServers: s.realServers.map((r) => ({ ...r, listen: [8080] })) });
    expect(t['tcp-vip']!.disposition).toBe('refused');
  });

  it('all weights 0 leave IPVS without a destination', () => {
    const s = baseSpec();
    const t = run({ ...s, realServers: s.realServers.map((r) => ({ ...r, weight: 0 })) });
    expect(t['tcp-vip']!.disposition).toBe('no-real-server');
    expect(t['tcp-vip']!.end.place.node).toBe('lb1');
  });

  it('real servers that answer ARP for the VIP (arp_ignore=0) compete with the director', () => {
    const s = baseSpec();
    const loaded = load({ ...s, realServers: s.realServers.map((r) => ({ ...r, sysctl: {} })) });
    const session = openSession(loaded);
    const arp = runProbe(session, probesOf(loaded).find((p) => p.kind === 'arp')!);
    const answered = arp.hops
      .filter((h) => h.steps.some((st) => st.kind === 'arp' && st.action === 'reply'))
      .map((h) => h.place.node);
    expect(answered.sort()).toEqual(['lb1', 'web1', 'web2']);
  });

  it('diagnoses the made-up cluster with a director filter and proves the safer filter on it', () => {
    const s = baseSpec();
    const report = diagnose(load({ ...s, director: { ...s.director, filter: ct([s.director.ip]) } }));
    expect(report.healthy).toBe(false);
    const safer = report.fixes.find((f) => f.id === 'dr-director-filter:kvm1:vnet0');
    expect(safer?.verified).toBe(true);
    expect(safer?.artifacts.find((a) => a.path.endsWith('binding-vnet0.xml'))?.content).toContain(
      "value='52:54:00:00:00:22'",
    );
  });
});
