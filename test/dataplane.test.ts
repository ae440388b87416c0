/**
 * The simulator on layouts beyond the founding case: a fleet-sized LAN (fan-out is not a loop, a real loop is),
 * DR to a real server behind a router, policy routing on a real server, and keepalived's VMAC.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatIssue } from '../src/source/issue.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../src/trace/session.ts';
import type { Trace } from '../src/trace/types.ts';
import { baseSpec, type RealServerSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-dp-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function build(spec: ScenarioSpec, edit?: (dir: string) => void): string {
  const dir = join(root, `s${n++}`);
  writeScenario(dir, spec);
  edit?.(dir);
  return dir;
}

function run(dir: string): Record<string, Trace> {
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error').map(formatIssue)).toEqual([]);
  const loaded = r.value!;
  const session = openSession(loaded);
  return Object.fromEntries(probesOf(loaded).map((p) => [p.name, runProbe(session, p)]));
}

const append = (file: string, text: string) => writeFileSync(file, readFileSync(file, 'utf8') + text);
const replace = (file: string, from: string | RegExp, to: string) =>
  writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));

/** 5 hypervisors × 48 guests on one segment (a director and 239 real servers). */
function fleet(): ScenarioSpec {
  const b = baseSpec();
  const rs0 = b.realServers[0]!;
  const hosts = [2, 3, 4, 5, 6].map((k) => ({
    name: `kvm${k - 1}`,
    ip: `198.51.100.${k}`,
    mac: `52:54:00:aa:00:0${k}`,
  }));
  const realServers: RealServerSpec[] = [];
  for (let g = 0; g < 239; g++) {
    const last = 11 + g;
    realServers.push({
      ...rs0,
      name: `web${g + 1}`,
      host: hosts[(g + 1) % 5]!.name,
      ip: `198.51.100.${last}`,
      mac: `52:54:00:01:${(last >> 8).toString(16).padStart(2, '0')}:${(last & 255).toString(16).padStart(2, '0')}`,
      weight: 1,
    });
  }
  return {
    ...b,
    vip: '198.51.100.253',
    scheduler: 'rr',
    hosts,
    director: { ...b.director, host: 'kvm1' },
    realServers,
  };
}

describe('scale: fan-out is not a loop', () => {
  it('a LAN of 5 hosts × 48 guests answers: the gateway’s ARP broadcast reaches every port and no walk ends "loop"', () => {
    const t = run(build(fleet()));
    expect(t['arp-vip']!.disposition).toBe('replied');
    expect(t['tcp-vip']!.disposition).toBe('replied');
    // The broadcast really fanned out to every guest port (far more than 512 hops in one walk).
    expect(t['arp-vip']!.hops.length).toBeGreaterThan(512);
    for (const tr of Object.values(t)) expect(tr.hops.some((h) => h.end?.disposition === 'loop')).toBe(false);
  });

  it('a real bridge loop (two host NICs of one bridge on the same segment) is still reported as a forwarding loop', () => {
    const dir = build(baseSpec(), (d) => {
      append(
        join(d, 'kvm2/ip-addr.txt'),
        `9: eth1: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq master br0 state UP group default qlen 1000
    link/ether 52:54:00:aa:01:02 brd ff:ff:ff:ff:ff:ff
`,
      );
      replace(join(d, 'scenario.yaml'), 'kvm2:eth0,', 'kvm2:eth0, kvm2:eth1,');
    });
    const t = run(dir);
    const loops = t['arp-vip']!.hops.filter((h) => h.end?.disposition === 'loop');
    expect(loops.length).toBeGreaterThan(0);
    expect(loops[0]!.end!.reason).toMatch(/the frame comes back to kvm2:eth[01] .*a forwarding loop/);
  });
});

describe('routing', () => {
  it('DR to a real server reached through a router hands the frame to the router, which routes the VIP back: a loop', () => {
    const s = baseSpec();
    const dir = build(s, (d) => {
      // web2 is reached via the gateway (a host route as a routed real server would have).
      append(join(d, 'lb1/ip-route.txt'), '198.51.100.22 via 198.51.100.1 dev eth0 proto static metric 50\n');
    });
    const t = run(dir);
    // wrr 3:1 — the first connection goes to web1 (on-link); drive a second scheduler pick via rr.
    const t2 = run(
      build({ ...s, scheduler: 'rr', realServers: [s.realServers[1]!] }, (d) =>
        append(join(d, 'lb1/ip-route.txt'), '198.51.100.22 via 198.51.100.1 dev eth0 proto static metric 50\n'),
      ),
    );
    expect(t['tcp-vip']!.disposition).toBe('replied');
    const tr = t2['tcp-vip']!;
    const route = tr.hops
      .filter((h) => h.place.node === 'lb1')
      .flatMap((h) => h.steps)
      .find((st) => st.kind === 'route' && st.dst === 0xc6336416);
    expect(route && route.kind === 'route' ? route.nextHop : 0).toBe(0xc6336401); // 198.51.100.1, not .22
    // The router receives a frame for the VIP and routes it by that, back to the director.
    expect(tr.disposition).not.toBe('replied');
    expect(tr.hops.some((h) => h.end?.disposition === 'loop' || h.end?.disposition === 'ttl-exceeded')).toBe(true);
    expect(tr.hops.some((h) => h.place.node === 'web2' && h.steps.some((st) => st.kind === 'deliver'))).toBe(false);
  });

  it('a policy rule on a real server sends replies from the VIP through another table, and the trace follows it', () => {
    const s = baseSpec();
    const one = { ...s, scheduler: 'rr', realServers: [s.realServers[0]!] };
    /** web1 with `ip rule`: replies from the VIP look up table 100, whose default goes via `gw`. */
    const withRule = (rules: string, gw: string) =>
      build(one, (d) => {
        writeFileSync(join(d, 'web1/ip-rule.txt'), rules);
        append(join(d, 'web1/ip-route.txt'), `default via ${gw} dev eth0 table 100\n`);
        replace(
          join(d, 'scenario.yaml'),
          '    ip-route: web1/ip-route.txt',
          '    ip-route: web1/ip-route.txt\n    ip-rule: web1/ip-rule.txt',
        );
      });
    const broken = withRule(
      '0:\tfrom all lookup local\n100:\tfrom 198.51.100.100 lookup 100\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n',
      '198.51.100.10',
    );
    const t = run(broken)['tcp-vip']!;
    // The SYN-ACK (from the VIP) follows table 100 to the director, which does not forward.
    expect(t.disposition).toBe('discarded');
    expect(t.stage).toBe('reply');
    expect(t.end.place.node).toBe('lb1');
    const replyRoute = t.hops
      .filter((h) => h.place.node === 'web1')
      .flatMap((h) => h.steps)
      .find((st) => st.kind === 'route' && st.nextHop === 0xc633640a);
    expect(replyRoute?.kind === 'route' ? replyRoute.origin?.label : '').toBe('route (table 100)');
    // The same rule pointing at the gateway is healthy.
    const healthy = withRule('100:\tfrom 198.51.100.100 lookup 100\n32766:\tfrom all lookup main\n', '198.51.100.1');
    expect(run(healthy)['tcp-vip']!.disposition).toBe('replied');
  });
});

describe('interfaces operators have', () => {
  /** The director holds the VIP on keepalived's VMAC interface `vrrp.51@eth0`, as `use_vmac` makes it. */
  function vmac(filter?: string) {
    const s = baseSpec();
    const spec: ScenarioSpec = {
      ...s,
      director: {
        ...s.director,
        vipOnEth0: false,
        // keepalived sets these for use_vmac: the base interface must not answer for the VIP.
        sysctl: { 'net.ipv4.conf.eth0.arp_ignore': 1, 'net.ipv4.conf.vrrp/51.accept_local': 1 },
        ...(filter ? { filter: { name: filter, params: [] } } : {}),
      },
    };
    return build(spec, (d) =>
      append(
        join(d, 'lb1/ip-addr.txt'),
        `3: vrrp.51@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 00:00:5e:00:01:33 brd ff:ff:ff:ff:ff:ff
    inet ${s.vip}/32 scope global vrrp.51
       valid_lft forever preferred_lft forever
`,
      ),
    );
  }

  it('the VMAC answers ARP for the VIP with its own MAC, and traffic to the VIP reaches IPVS through it', () => {
    const t = run(vmac());
    const arp = t['arp-vip']!;
    expect(arp.disposition).toBe('replied');
    const reply = arp.hops.find((h) => h.steps.some((st) => st.kind === 'arp' && st.action === 'reply'))!;
    expect(reply.place).toEqual({ node: 'lb1', iface: 'vrrp.51' });
    const learnt = arp.hops.flatMap((h) => h.steps).find((st) => st.kind === 'arp' && st.action === 'learn');
    expect(learnt?.kind === 'arp' ? learnt.reason : '').toContain('is-at 00:00:5e:00:01:33');
    expect(t['tcp-vip']!.disposition).toBe('replied');
  });

  it('no-mac-spoofing on the director’s port drops the VMAC’s ARP reply, and the trace shows where', () => {
    const t = run(vmac('no-mac-spoofing'));
    const arp = t['arp-vip']!;
    expect(arp.disposition).toBe('dropped-by-filter');
    expect(arp.end.place).toEqual({ node: 'kvm1', iface: 'vnet0' });
    const drop = arp.hops.find((h) => h.end === arp.end)!;
    expect(drop.frame.src).toBe('00:00:5e:00:01:33');
    expect(drop.frame.payload.kind === 'arp' && drop.frame.payload.op).toBe(2);
    expect(t['tcp-vip']!.disposition).toBe('arp-unresolved');
  });
});

describe('VLANs and bonds', () => {
  const vlanIface = (
    ip: string,
    mac: string,
  ) => `7: eth0.100@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether ${mac} brd ff:ff:ff:ff:ff:ff
    inet ${ip}/24 brd 192.0.2.255 scope global eth0.100
       valid_lft forever preferred_lft forever
`;

  function vlanLan(rsHasVlan: boolean) {
    const s = baseSpec();
    const probes = ['probes:', '  - name: arp-vlan', '    arp: 192.0.2.21', '    from: lb1'].join('\n');
    return build({ ...s, probes }, (d) => {
      append(join(d, 'lb1/ip-addr.txt'), vlanIface('192.0.2.10', s.director.mac));
      if (rsHasVlan) append(join(d, 'web1/ip-addr.txt'), vlanIface('192.0.2.21', s.realServers[0]!.mac));
    });
  }

  it('frames of a VLAN sub-interface leave tagged through its lower device and reach the peer’s VLAN device', () => {
    const t = run(vlanLan(true))['arp-vlan']!;
    expect(t.disposition).toBe('replied');
    const tagged = t.hops.find((h) => h.place.node === 'kvm1' && h.frame.vlans.length > 0);
    expect(tagged?.frame.vlans[0]?.vid).toBe(100);
    const reply = t.hops.find((h) => h.steps.some((st) => st.kind === 'arp' && st.action === 'reply'))!;
    // Captured where it arrived (web1:eth0, tagged), received and answered by eth0.100.
    expect(reply.place).toEqual({ node: 'web1', iface: 'eth0' });
    expect(
      reply.steps.some((st) => st.kind === 'note' && st.text === 'VLAN 100: untagged and received by eth0.100'),
    ).toBe(true);
  });

  it('a tagged frame meets no VLAN device of its tag: dropped', () => {
    const t = run(vlanLan(false))['arp-vlan']!;
    expect(t.disposition).not.toBe('replied');
    expect(t.hops.some((h) => h.place.node === 'web1' && /no VLAN 100 device/.test(h.end?.reason ?? ''))).toBe(true);
  });

  it('a host VLAN device enslaved to a bridge (eno1.100 master br100) bridges the untagged frame both ways', () => {
    // The gateway is on VLAN 100 of the trunk (`gateway.vlan`); guests sit on br100 untagged.
    const t = run('fixtures/scenarios/dr-host-vlan-bridge-healthy');
    const arp = t['arp-198.51.100.100']!;
    expect(arp.disposition).toBe('replied');
    // In: tagged on eno1, untagged into br100 (not the host's own stack).
    const into = arp.hops.find((h) => h.place.node === 'kvm1' && h.place.iface === 'eno1.100' && h.direction === 'in');
    expect(into?.frame.vlans).toEqual([]);
    expect(into?.steps.some((st) => st.kind === 'bridge' && st.bridge === 'br100')).toBe(true);
    // Out: the bridge hands the reply to eno1.100, which tags it onto eno1.
    const out = arp.hops.find(
      (h) => h.place.node === 'kvm1' && h.place.iface === 'eno1' && h.direction === 'out' && h.frame.vlans.length > 0,
    );
    expect(out?.frame.vlans[0]?.vid).toBe(100);
    for (const name of Object.keys(t)) expect([name, t[name]!.disposition]).toEqual([name, 'replied']);
  });

  it('a host bridging another VLAN than the segment carries cuts its guests off (tagged frame dropped)', () => {
    const t = run('fixtures/scenarios/dr-host-vlan-wrong-tag');
    expect(Object.values(t).some((tr) => tr.disposition !== 'replied')).toBe(true);
    expect(
      Object.values(t).some((tr) =>
        tr.hops.some((h) => h.place.node === 'kvm2' && /no VLAN 100 device/.test(h.end?.reason ?? '')),
      ),
    ).toBe(true);
  });

  it('a DR director on a VLAN sub-interface forwards the frame it received untagged, so it leaves tagged once', () => {
    const t = run('fixtures/scenarios/dr-guest-vlan-subif-healthy');
    for (const name of Object.keys(t)) expect([name, t[name]!.disposition]).toEqual([name, 'replied']);
    const vip = t['tcp-198.51.100.100-80']!;
    const out = vip.hops.filter(
      (h) => h.place.node === 'lb1' && h.direction === 'out' && h.frame.payload.kind === 'ipv4',
    );
    expect(out.length).toBeGreaterThan(0);
    for (const h of out) expect(h.frame.vlans.length).toBeLessThanOrEqual(1);
    expect(out.some((h) => h.place.iface === 'eth0' && h.frame.vlans[0]?.vid === 100)).toBe(true);
  });

  it('a real server whose address is on bond0 (its NIC a slave) answers through the bond', () => {
    const s = baseSpec();
    const rs = s.realServers[0]!;
    const dir = build({ ...s, scheduler: 'rr', realServers: [rs] }, (d) => {
      replace(
        join(d, 'web1/ip-addr.txt'),
        /2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n {4}link\/ether (\S+) brd ff:ff:ff:ff:ff:ff\n/,
        `2: eth0: <BROADCAST,MULTICAST,SLAVE,UP,LOWER_UP> mtu 1500 qdisc fq_codel master bond0 state UP group default qlen 1000
    link/ether $1 brd ff:ff:ff:ff:ff:ff
    altname enp1s0
3: bond0: <BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether $1 brd ff:ff:ff:ff:ff:ff
`,
      );
      replace(join(d, 'web1/ip-addr.txt'), 'scope global eth0', 'scope global bond0');
      writeFileSync(
        join(d, 'web1/ip-route.txt'),
        readFileSync(join(d, 'web1/ip-route.txt'), 'utf8').replaceAll('dev eth0', 'dev bond0'),
      );
    });
    const t = run(dir)['tcp-vip']!;
    expect(t.disposition).toBe('replied');
    const atRs = t.hops.find((h) => h.place.node === 'web1' && h.steps.some((st) => st.kind === 'deliver'))!;
    expect(atRs.place.iface).toBe('eth0');
    expect(t.hops.some((h) => h.place.node === 'web1' && h.place.iface === 'eth0' && h.direction === 'out')).toBe(true);
  });
});

describe('libvirt network interfaces', () => {
  it("a domain interface of type='network' with its live portid and bridge joins that bridge like type='bridge'", () => {
    const dir = build(baseSpec(), (d) => {
      replace(join(d, 'kvm1/lb1.xml'), "<interface type='bridge'>", "<interface type='network'>");
      replace(
        join(d, 'kvm1/lb1.xml'),
        "<source bridge='br0'/>",
        "<source network='default' portid='5b6a2f0e-8d0c-4f3e-9a53-2f4f1c2d7e11' bridge='br0'/>",
      );
    });
    expect(readFileSync(join(dir, 'kvm1/lb1.xml'), 'utf8')).toContain("portid='5b6a2f0e");
    const t = run(dir);
    expect(t['tcp-vip']!.disposition).toBe('replied');
    expect(t['arp-vip']!.disposition).toBe('replied');
  });
});
