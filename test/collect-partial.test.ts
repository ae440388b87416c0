/**
 * What an import records beyond the domain XML, and how partial bundles end up in the model: live filter bindings
 * (`hosts.NAME.bindings`) as the truth, guests' neighbour caches (`guests.NAME.ip-neigh`), the scenario's own
 * `assumptions:` carried into the diagnosis, and bundles with a tool missing, a command refused, a guest not
 * collected or an interface type the model does not cover — all of which load and diagnose without an error.
 * Built from the real-kernel bundles in fixtures/collect/founding-real.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIpv4 } from '../src/addr/ipv4.ts';
import { runDiagnose } from '../src/cli/cmd-diagnose.ts';
import { importBundles } from '../src/collect/import.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { type LoadedScenario, loadScenario } from '../src/topology/load-scenario.ts';
import type { NeighbourStep } from '../src/trace/types.ts';
import { bundleCopies, edit, fail, type Name } from './bundle-fixtures.ts';

const { tmp, bundles, done } = bundleCopies('collect-partial');
afterAll(done);

/** Imports, loads (no error allowed) and diagnoses. */
function importLoad(b: Record<string, string>, name: string, only?: Name[]) {
  const out = join(tmp, name);
  const paths = Object.entries(b)
    .filter(([k]) => !only || only.includes(k as Name))
    .map(([, v]) => v);
  const r = importBundles(paths, { out });
  expect(r.dir).toBe(out);
  const loaded = loadScenario(out);
  expect(loaded.issues.filter((i) => i.severity === 'error')).toEqual([]);
  const report = diagnose(loaded.value!);
  return {
    r,
    out,
    loaded: loaded.value!,
    issues: loaded.issues,
    report,
    yaml: readFileSync(join(out, 'scenario.yaml'), 'utf8'),
  };
}

const paramsOf = (l: LoadedScenario, port: string) =>
  Object.fromEntries(
    [...l.scenario.bindings.find((b) => b.binding.portdev === port)!.binding.params].map(([k, v]) => [k, v.join(',')]),
  );

describe('live filter bindings (hosts.NAME.bindings)', () => {
  it('the import names the live bindings and the model takes their parameters over the domain XML', () => {
    const b = bundles((d) =>
      edit(join(d('host1'), 'cmd', 'binding-vnet0.out'), "value='192.0.2.200'", "value='192.0.2.201'"),
    );
    const { yaml, loaded, r } = importLoad(b, 'live-binding');
    expect(yaml).toMatch(/^ {4}bindings: host1\/bindings/m);
    // The domain XML still says 192.0.2.200: drift says so, and the model follows the live binding.
    expect(r.drift.find((d) => d.area === 'binding')?.lines).toContain(
      '- clean-traffic IP=192.0.2.200 mac 02:00:73:b6:53:c8',
    );
    expect(paramsOf(loaded, 'vnet0').IP).toBe('192.0.2.201');
    const origin = loaded.scenario.bindings.find((x) => x.binding.portdev === 'vnet0')!.binding.origin;
    expect(JSON.stringify(origin)).toContain('host1/bindings/vnet0.xml');
  });

  it('without a live binding for a port the domain XML is the fallback, and that is an assumption', () => {
    const b = bundles();
    const { out } = importLoad(b, 'binding-fallback');
    // Keep the directory but move the binding to a port no domain has.
    edit(join(out, 'host1', 'bindings', 'vnet0.xml'), /<portdev name='vnet0'\/>/, "<portdev name='vnet9'/>");
    const l = loadScenario(out);
    expect(l.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(l.issues.map((i) => `${i.severity} ${i.code}`)).toContain('warning scenario.binding-port');
    expect(paramsOf(l.value!, 'vnet0').IP).toBe('192.0.2.200');
    expect(l.value!.scenario.assumptions).toContainEqual(
      "host1: no live filter binding for vnet0; the domain XML's filterref clean-traffic is assumed",
    );
  });
});

describe("guests' neighbour caches (guests.NAME.ip-neigh)", () => {
  it("the director's cached entry for the real server is used by the trace instead of an ARP exchange", () => {
    const rsMac = '02:00:73:b6:53:e2';
    const b = bundles((d) =>
      writeFileSync(
        join(d('director'), 'cmd', 'ip-j-neigh.out'),
        JSON.stringify([
          { dst: '192.0.2.1', dev: 'eth0', lladdr: '84:78:ac:27:6c:41', state: ['STALE'] },
          { dst: '192.0.2.226', dev: 'eth0', lladdr: rsMac, state: ['REACHABLE'] },
          { dst: '192.0.2.99', dev: 'eth0', state: ['FAILED'] },
        ]),
      ),
    );
    const { yaml, loaded, report } = importLoad(b, 'neigh');
    expect(yaml).toContain('ip-neigh: guests/r2-10105/ip-neigh.json');
    const director = loaded.scenario.nodes.get('r2-10105')!;
    expect([...director.neighbours].map(([ip, e]) => `${formatIpv4(ip)} ${e.mac}`)).toEqual([
      '192.0.2.1 84:78:ac:27:6c:41',
      '192.0.2.226 02:00:73:b6:53:e2',
    ]);
    const steps = report.traces.flatMap((t) =>
      t.hops.filter((h) => h.place.node === 'r2-10105').flatMap((h) => h.steps),
    );
    const toRs = steps.filter((s): s is NeighbourStep => s.kind === 'neighbour' && formatIpv4(s.ip) === '192.0.2.226');
    expect(toRs.length).toBeGreaterThan(0);
    expect(toRs.every((s) => s.source === 'cache' && s.mac === rsMac)).toBe(true);
  });

  it('without the entry the director has to ARP for the real server', () => {
    const { report } = importLoad(bundles(), 'neigh-none');
    const toRs = report.traces
      .flatMap((t) => t.hops.filter((h) => h.place.node === 'r2-10105').flatMap((h) => h.steps))
      .filter((s): s is NeighbourStep => s.kind === 'neighbour' && formatIpv4(s.ip) === '192.0.2.226');
    expect(toRs.length).toBeGreaterThan(0);
    expect(toRs.every((s) => s.source === 'arp')).toBe(true);
  });
});

describe('assumptions: what the import could not know, carried into the diagnosis', () => {
  it('a tool missing on a host: written with its evidence (the manifest line), loaded, and stated by diagnose', () => {
    const b = bundles((d) => fail(d('host2'), 'bridge-j-fdb', 'missing', '127', 'bridge: command not found\n'));
    const { yaml, loaded, report } = importLoad(b, 'tool-missing');
    expect(yaml).toMatch(
      /- assumed: "host host2: bridge forwarding database unknown"\n {4}evidence: "bridge -j fdb show: tool not installed \(bridge: command not found\) \(lvsdoctor-bundle-hypervisor-host2\/manifest.tsv:\d+\)"/,
    );
    const a = loaded.declaredAssumptions.find((x) => x.assumed === 'host host2: bridge forwarding database unknown')!;
    expect(a.origin.pos?.file).toMatch(/scenario\.yaml$/);
    expect(a.origin.pos?.line).toBeGreaterThan(1);
    expect(report.assumptions).toContainEqual(
      expect.stringMatching(
        /^host host2: bridge forwarding database unknown \[evidence: bridge -j fdb show: tool not installed/,
      ),
    );
  });

  it('a refused command: the assumption says permission denied, and --json and the text report carry it', () => {
    const b = bundles((d) =>
      fail(d('rs'), 'sysctl-net', 'denied', '1', 'sysctl: permission denied on key "net.ipv4.conf.all.arp_ignore"\n'),
    );
    const { out, yaml } = importLoad(b, 'denied');
    expect(yaml).toContain('- assumed: "guest r2-10106: sysctls unknown"');
    let json = '';
    runDiagnose({ stdout: (s) => (json += s), stderr: () => {} }, out, { json: true });
    expect(JSON.parse(json).assumptions).toContainEqual(
      expect.stringMatching(/^guest r2-10106: sysctls unknown \[evidence: .*permission denied/),
    );
    let text = '';
    runDiagnose({ stdout: (s) => (text += s), stderr: () => {} }, out, { json: false });
    expect(text).toMatch(/assumptions:\n(.*\n)* {2}- guest r2-10106: sysctls unknown \[evidence: /);
  });

  it('a guest not collected: assumed unknown, with the MAC nobody had as evidence', () => {
    const { loaded } = importLoad(bundles(), 'not-collected', ['host1', 'host2', 'director', 'router']);
    expect(loaded.declaredAssumptions.map((a) => `${a.assumed} | ${a.evidence}`)).toContainEqual(
      expect.stringMatching(
        /^guest r2-10106 \(on host2\) was not collected: .* \| no guest bundle has a NIC with the MAC 02:00:73:b6:53:e2 of domain r2-10106/,
      ),
    );
  });

  it('an interface type the model does not cover: the domain stays, that interface is left out, nothing fails', () => {
    const b = bundles((d) =>
      edit(
        join(d('host2'), 'cmd', 'domain-r2-10106.out'),
        /( *)<interface type='bridge'>/,
        "$1<interface type='direct'>\n$1  <mac address='02:00:5e:00:53:01'/>\n$1  <source dev='eth1' mode='vepa'/>\n$1  <target dev='macvtap0'/>\n$1</interface>\n$1<interface type='bridge'>",
      ),
    );
    const { r, loaded, issues, report } = importLoad(b, 'direct');
    expect(r.cluster!.guests.map((g) => g.node)).toContain('r2-10106');
    expect(r.assumptions.map((a) => a.assumed)).toContainEqual(
      "the traffic of domain r2-10106's interface macvtap0 (on host2) is unknown: left out of the model",
    );
    const warning = issues.find((i) => i.code === 'domain.interface-type')!;
    expect(warning.severity).toBe('warning');
    expect(warning.pos?.file).toMatch(/host2\/r2-10106\.xml$/);
    expect(loaded.scenario.assumptions).toContainEqual(
      expect.stringMatching(/^host2: interface 02:00:5e:00:53:01 of domain r2-10106 left out/),
    );
    // The real server is still modelled through its bridged NIC; the director's fault is still found.
    expect(loaded.scenario.nodes.get('host2')!.interfaces.has('macvtap0')).toBe(false);
    expect(loaded.scenario.nodes.get('r2-10106')!.role).toBe('real-server');
    expect(report.findings.map((f) => `${f.code} at ${f.where}`)).toContain('director-anti-spoofing at host1:vnet0');
  });

  it('a malformed assumptions entry is a schema error naming the line and what is expected', () => {
    const { out } = importLoad(bundles(), 'bad-assumption');
    const yamlFile = join(out, 'scenario.yaml');
    writeFileSync(yamlFile, `${readFileSync(yamlFile, 'utf8')}  - assumed: "a thing"\n`);
    const l = loadScenario(out);
    const e = l.issues.find((i) => i.severity === 'error')!;
    expect(e.message).toMatch(/^assumptions\.\d+\.evidence: /);
    expect(e.pos?.line).toBe(readFileSync(yamlFile, 'utf8').trimEnd().split('\n').length);
  });
});
