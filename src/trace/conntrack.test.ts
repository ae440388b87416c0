import { describe, expect, it } from 'vitest';
import { tcpProbe, tinyScenario, trace } from '../../test/support/tiny-net.ts';
import { parseIpv4 } from '../addr/ipv4.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { type Ipv4Packet, TCP_ACK, TCP_PSH, TCP_SYN } from '../wire/types.ts';
import { Conntrack } from './conntrack.ts';
import { makeBridgeFirewall } from './firewall.ts';

const C = parseIpv4('203.0.113.7')!;
const V = parseIpv4('198.51.100.10')!;

function seg(src: number, sport: number, dst: number, dport: number, flags: number): Ipv4Packet {
  return {
    kind: 'ipv4',
    tos: 0,
    id: 1,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: 6,
    src: src as never,
    dst: dst as never,
    payload: {
      kind: 'tcp',
      srcPort: sport,
      dstPort: dport,
      seq: 1,
      ack: 0,
      flags,
      window: 100,
      urgent: 0,
      options: [],
      payload: new Uint8Array(0),
    },
  };
}

describe('conntrack', () => {
  it('follows a full handshake: NEW, ESTABLISHED reply, ESTABLISHED ACK', () => {
    const ct = new Conntrack();
    expect(ct.track(seg(C, 4000, V, 80, TCP_SYN)).ctState).toBe('NEW');
    const sa = ct.track(seg(V, 80, C, 4000, TCP_SYN | TCP_ACK));
    expect([sa.ctState, sa.ctDir]).toEqual(['ESTABLISHED', 'REPLY']);
    const ack = ct.track(seg(C, 4000, V, 80, TCP_ACK));
    expect([ack.ctState, ack.ctDir]).toEqual(['ESTABLISHED', 'ORIGINAL']);
    expect(ct.track(seg(C, 4000, V, 80, TCP_ACK | TCP_PSH)).ctState).toBe('ESTABLISHED');
  });

  it('calls the client ACK of a connection whose SYN-ACK it never saw INVALID (one-way DR)', () => {
    const ct = new Conntrack();
    ct.track(seg(C, 4000, V, 80, TCP_SYN));
    const ack = ct.track(seg(C, 4000, V, 80, TCP_ACK));
    expect(ack.ctState).toBe('INVALID');
    expect(ack.explanation).toMatch(/SYN_SENT \+ ACK .*never the SYN-ACK/);
  });

  it('picks up a connection mid-stream when it saw neither SYN nor SYN-ACK (tcp_loose)', () => {
    const ct = new Conntrack();
    expect(ct.track(seg(C, 4000, V, 80, TCP_ACK)).ctState).toBe('NEW');
    expect(ct.track(seg(V, 80, C, 4000, TCP_ACK)).ctState).toBe('ESTABLISHED');
  });

  it('calls a SYN-ACK without a tracked SYN INVALID', () => {
    const ct = new Conntrack();
    expect(ct.track(seg(V, 80, C, 4000, TCP_SYN | TCP_ACK)).ctState).toBe('INVALID');
  });
});

/**
 * A host routing between two networks whose filter FORWARD drops ctstate INVALID (pve-firewall's PVEFW-FORWARD rule
 * 1, which also judges routed traffic). Client c (198.51.100.50) reaches server s (203.0.113.20) through host h; s
 * answers through router r, so h routes the SYN and the client's next packets but never sees the SYN-ACK.
 */
function routedAsymmetric(sAnswersVia: 'h' | 'r') {
  const scenario = tinyScenario(
    {
      c: {
        ifaces: { eth0: { mac: '52:54:00:00:00:50', addrs: ['198.51.100.50/24'], segment: 'a' } },
        routes: [{ dst: 'default', via: '198.51.100.1' }],
      },
      h: {
        kind: 'host',
        ifaces: {
          eth0: { mac: '52:54:00:00:01:01', addrs: ['198.51.100.1/24'], segment: 'a' },
          eth1: { mac: '52:54:00:00:01:02', addrs: ['203.0.113.1/24'], segment: 'b' },
        },
        sysctl: { 'net.ipv4.ip_forward': 1 },
      },
      r: {
        ifaces: {
          eth0: { mac: '52:54:00:00:02:01', addrs: ['198.51.100.2/24'], segment: 'a' },
          eth1: { mac: '52:54:00:00:02:02', addrs: ['203.0.113.2/24'], segment: 'b' },
        },
        sysctl: { 'net.ipv4.ip_forward': 1 },
      },
      s: {
        ifaces: { eth0: { mac: '52:54:00:00:00:20', addrs: ['203.0.113.20/24'], segment: 'b' } },
        routes: [{ dst: 'default', via: sAnswersVia === 'h' ? '203.0.113.1' : '203.0.113.2' }],
        listen: [80],
      },
    },
    { a: ['c:eth0', 'h:eth0', 'r:eth0'], b: ['h:eth1', 'r:eth1', 's:eth0'] },
  );
  const rules = readIptablesSave(
    '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:PVEFW-FORWARD - [0:0]\n-A FORWARD -j PVEFW-FORWARD\n-A PVEFW-FORWARD -m conntrack --ctstate INVALID -j DROP\n-A PVEFW-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n',
    'h/iptables-save.txt',
    'ipv4',
  ).value!.find((t) => t.name === 'filter')!;
  const h = makeBridgeFirewall({ host4: rules }, 'nft');
  return trace(scenario, tcpProbe('c', '203.0.113.20', 80), { firewalls: { h } });
}

describe("the host's own hooks see its conntrack's state, not the probe's", () => {
  it('a routed connection whose SYN-ACK takes another path: the client’s next packet is INVALID at FORWARD', () => {
    const t = routedAsymmetric('r');
    expect(t.disposition).toBe('dropped-by-filter');
    expect(t.end.place.node).toBe('h');
    expect(t.end.reason).toContain('--ctstate INVALID -j DROP');
    const hop = t.hops.find((x) => x.end === t.end)!;
    expect(hop.steps.some((s) => s.kind === 'note' && /SYN_SENT \+ ACK in the original direction/.test(s.text))).toBe(
      true,
    );
    // The handshake itself passed h (the SYN was NEW there).
    expect(t.hops.some((x) => x.end?.reason.includes('completed the handshake'))).toBe(true);
  });

  it('the same rules pass the whole conversation when the answers come back through the host', () => {
    expect(routedAsymmetric('h').disposition).toBe('replied');
  });
});
