import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../src/trace/session.ts';
import { baseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-meth-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function load(spec: ScenarioSpec) {
  const dir = join(root, `m${n++}`);
  writeScenario(dir, spec);
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}
function tcp(spec: ScenarioSpec) {
  const loaded = load(spec);
  const p = probesOf(loaded).find((x) => x.name === 'tcp-vip')!;
  return runProbe(openSession(loaded), p);
}

const base = baseSpec();
const fwd = { ...base.director, sysctl: { 'net.ipv4.ip_forward': 1 } };
const nat: ScenarioSpec = {
  ...base,
  method: 'Masq',
  port: 443,
  director: fwd,
  realServers: base.realServers.map((r) => ({ ...r, vipOnLo: false, via: 'director' as const })),
};
const tun: ScenarioSpec = {
  ...base,
  method: 'Tunnel',
  realServers: base.realServers.map((r) => ({ ...r, tunl0: 'up' as const })),
};

describe('NAT forwarding, end to end', () => {
  it('DNATs to the real server and SNATs the reply back through the director', () => {
    const t = tcp(nat);
    expect(t.disposition).toBe('replied');
    const ipvs = t.hops.flatMap((h) => h.steps).filter((s) => s.kind === 'ipvs');
    // The SYN and its SYN-ACK, then the full-size request and its response: each way through IPVS.
    expect(ipvs.map((s) => (s.kind === 'ipvs' ? s.method : ''))).toEqual(['Masq', 'Masq', 'Masq', 'Masq']);
    const atRs = t.hops.find((h) => h.place.node === 'web1' && h.direction === 'in')!;
    const p = atRs.frame.payload;
    expect(p.kind === 'ipv4' ? p.dst : 0).toBe(
      loadScenario(join(root, 'm0')).value!.scenario.nodes.get('web1')!.interfaces.get('eth0')!.addrs[0]!.prefix.addr,
    );
  });

  it('loses the reply when the real server routes it around the director', () => {
    const t = tcp({ ...nat, realServers: nat.realServers.map((r) => ({ ...r, via: 'router' as const })) });
    expect(t.disposition).toBe('discarded');
    expect(t.end.cause).toBe('unexpected-reply');
    expect(t.end.place.node).toBe('client');
  });

  it('loses the reply when the director does not forward', () => {
    const t = tcp({ ...nat, director: base.director });
    expect(t.disposition).toBe('discarded');
    expect(t.end.cause).toBe('ip-forward-off');
    expect(t.end.place.node).toBe('lb1');
  });

  it('is dropped by clean-traffic on the director too (the client source address is kept)', () => {
    const t = tcp({
      ...nat,
      director: {
        ...fwd,
        filter: {
          name: 'clean-traffic',
          params: [
            ['IP', fwd.ip],
            ['IP', base.vip],
          ],
        },
      },
    });
    expect(t.disposition).toBe('dropped-by-filter');
    expect(t.end.place).toEqual({ node: 'kvm1', iface: 'vnet0' });
  });
});

describe('TUN forwarding, end to end', () => {
  it('encapsulates in IPIP from the director and the real server answers from the VIP', () => {
    const t = tcp(tun);
    expect(t.disposition).toBe('replied');
    const sent = t.hops.find(
      (h) =>
        h.place.node === 'lb1' &&
        h.direction === 'out' &&
        h.frame.payload.kind === 'ipv4' &&
        h.frame.payload.protocol === 4,
    );
    expect(sent).toBeDefined();
  });

  it('passes clean-traffic on the director: the outer source is the director', () => {
    const t = tcp({
      ...tun,
      director: {
        ...base.director,
        filter: {
          name: 'clean-traffic',
          params: [
            ['IP', base.director.ip],
            ['IP', base.vip],
          ],
        },
      },
    });
    expect(t.disposition).toBe('replied');
  });

  it('is dropped by strict rp_filter on the real server (the client is reached through eth0, not tunl0)', () => {
    const t = tcp({
      ...tun,
      realServers: tun.realServers.map((r) => ({ ...r, sysctl: { ...r.sysctl, 'net.ipv4.conf.all.rp_filter': 1 } })),
    });
    expect(t.disposition).toBe('dropped-by-kernel');
    expect(t.end.cause).toBe('rp-filter');
  });

  it('is dropped without the ipip module', () => {
    const t = tcp({
      ...tun,
      realServers: tun.realServers.map((r) => ({ ...r, tunl0: undefined as never, vipOnLo: true })),
    });
    expect(t.disposition).toBe('discarded');
    expect(t.end.cause).toBe('no-ipip');
  });

  it('names these faults as findings', () => {
    const codes = (s: ScenarioSpec) => diagnose(load(s)).findings.map((f) => f.code);
    expect(
      codes({
        ...tun,
        realServers: tun.realServers.map((r) => ({ ...r, sysctl: { ...r.sysctl, 'net.ipv4.conf.all.rp_filter': 1 } })),
      }),
    ).toContain('tun-rp-filter');
    expect(codes({ ...nat, director: base.director })).toContain('nat-forwarding-off');
    expect(codes({ ...nat, realServers: nat.realServers.map((r) => ({ ...r, via: 'router' as const })) })).toContain(
      'nat-reply-bypasses-director',
    );
  });
});

describe('br_netfilter: bridged traffic through the iptables rules of nwfilters', () => {
  const noHttps = `<filter name='rs-no-https' chain='root'>
  <rule action='drop' direction='in' priority='500'>
    <tcp dstportstart='443'/>
  </rule>
</filter>
`;
  const spec = (brnf: number): ScenarioSpec => ({
    ...base,
    hosts: base.hosts.map((h) =>
      h.name === 'kvm1' ? { ...h, sysctl: { 'net.bridge.bridge-nf-call-iptables': brnf }, filters: [noHttps] } : h,
    ),
    realServers: base.realServers.map((r) =>
      r.name === 'web1' ? { ...r, filter: { name: 'rs-no-https', params: [] } } : r,
    ),
  });

  it('drops in FORWARD when bridge-nf-call-iptables=1, naming the FO- chain rule and its nwfilter', () => {
    const t = tcp(spec(1));
    expect(t.disposition).toBe('dropped-by-filter');
    expect(t.end.place).toEqual({ node: 'kvm1', iface: 'vnet1' });
    const step = t.hops
      .flatMap((h) => h.steps)
      .find((s) => s.kind === 'netfilter' && s.family === 'ipv4' && s.verdict === 'DROP');
    expect(step && step.kind === 'netfilter' ? step.chain : '').toBe('FO-vnet1');
    expect(t.end.origin?.data?.filter).toBe('rs-no-https');
  });

  it('lets the same traffic pass when bridged traffic does not reach iptables', () => {
    expect(tcp(spec(0)).disposition).toBe('replied');
  });
});

describe('source validation of received IPv4 packets (fib_validate_source), delivered or forwarded', () => {
  // LVS-DR with the director as the real servers' gateway: their replies come from the VIP, an address of the
  // director — a martian source there unless accept_local, although the director forwards.
  const viaDirector: ScenarioSpec = {
    ...base,
    director: fwd,
    realServers: base.realServers.map((r) => ({ ...r, via: 'director' as const })),
  };

  it('drops a reply to be forwarded whose source is one of the router’s own addresses', () => {
    const t = tcp(viaDirector);
    expect(t.disposition).toBe('dropped-by-kernel');
    expect(t.end.cause).toBe('martian-source');
    expect(t.end.place.node).toBe('lb1');
    expect(t.end.reason).toMatch(/source 198\.51\.100\.100 is an address of lb1 .*accept_local=0/);
  });

  it('forwards it with accept_local=1', () => {
    const t = tcp({
      ...viaDirector,
      director: { ...fwd, sysctl: { ...fwd.sysctl, 'net.ipv4.conf.all.accept_local': 1 } },
    });
    expect(t.disposition).toBe('replied');
  });

  it('applies strict rp_filter to forwarded packets too', () => {
    // NAT: replies of the real servers reach the director on eth0 and the route back to them is eth0 — they pass;
    // a client whose route back leaves elsewhere does not (the director's only route is eth0, so rp_filter=1 passes
    // the forward path and the test checks the passed step is recorded).
    const t = tcp({ ...nat, director: { ...fwd, sysctl: { ...fwd.sysctl, 'net.ipv4.conf.all.rp_filter': 1 } } });
    expect(t.disposition).toBe('replied');
    const forwarded = t.hops.filter((h) => h.place.node === 'lb1' && h.steps.some((s) => s.kind === 'forward'));
    expect(forwarded.length).toBeGreaterThan(0);
    for (const h of forwarded) expect(h.steps.some((s) => s.kind === 'rp-filter' && s.passed)).toBe(true);
  });
});
