import { describe, expect, it } from 'vitest';
import { lvsLan, type NodeSpec, tcpProbe, tinyScenario, trace } from '../../test/support/tiny-net.ts';
import { formatIpv4 } from '../addr/ipv4.ts';
import type { Hop, Trace } from './types.ts';

const VIP = '198.51.100.100';
const RS_MAC = '52:54:00:00:00:21';

/**
 * `b` sends to the VIP, which `rs` holds on lo (b's neighbour table already says the VIP is at rs, as after a DR
 * director): rs answers the SYN from the VIP and must first resolve b, choosing the ARP source per arp_announce.
 */
function vipOnLo(sysctl: Record<string, number>, neighbours?: Record<string, string>) {
  return tinyScenario({
    b: {
      ifaces: { eth0: { mac: '52:54:00:00:00:0b', addrs: ['198.51.100.20/24'], peer: 'rs:eth0' } },
      neighbours: { [VIP]: RS_MAC },
    },
    rs: {
      ifaces: {
        lo: { addrs: ['127.0.0.1/8', `${VIP}/32`] },
        eth0: { mac: RS_MAC, addrs: ['198.51.100.21/24'], peer: 'b:eth0' },
      },
      listen: [80],
      sysctl,
      ...(neighbours ? { neighbours } : {}),
    },
  });
}

/** The sender address of the ARP request rs walked to resolve b. */
function arpSender(t: Trace): string {
  const n = t.hops.flatMap((h) => h.steps).find((s) => s.kind === 'neighbour' && s.source === 'arp');
  if (n?.kind !== 'neighbour' || !n.arp) throw new Error('no ARP walk');
  const p = n.arp.hops[0]!.frame.payload;
  if (p.kind !== 'arp') throw new Error('not an ARP request');
  return formatIpv4(p.spa);
}

describe('neighbour resolution in IPv4 output (ipv4-output.ts, arp_solicit)', () => {
  it("asks from the packet's source (the VIP) with arp_announce=0", () => {
    const t = trace(vipOnLo({}), tcpProbe('b', VIP, 80));
    expect(t.disposition).toBe('replied');
    expect(arpSender(t)).toBe(VIP);
  });

  it("asks from the outgoing interface's own address with arp_announce=2 (inet_select_addr)", () => {
    const t = trace(vipOnLo({ 'net.ipv4.conf.all.arp_announce': 2 }), tcpProbe('b', VIP, 80));
    expect(t.disposition).toBe('replied');
    expect(arpSender(t)).toBe('198.51.100.21');
  });

  it('uses a cached neighbour without walking an ARP exchange', () => {
    const t = trace(vipOnLo({}, { '198.51.100.20': '52:54:00:00:00:0b' }), tcpProbe('b', VIP, 80));
    expect(t.disposition).toBe('replied');
    const n = t.hops.flatMap((h) => h.steps).filter((s) => s.kind === 'neighbour');
    // The SYN and its SYN-ACK, then the request and the response: each hop's neighbour from the cache.
    expect(n.map((s) => s.kind === 'neighbour' && s.source)).toEqual(['cache', 'cache', 'cache', 'cache']);
  });
});

function lan(method: 'Route' | 'Tunnel', rs: Partial<NodeSpec>, routes?: NodeSpec['routes']) {
  const { scenario, engines } = lvsLan(method, rs, routes);
  return trace(scenario, tcpProbe('c', VIP, 80), engines);
}

/** The frame the director sends after IPVS scheduled the packet (the first hop out of d after the IPVS step). */
function transmitted(t: Trace): Hop {
  const at = t.hops.findIndex((h) => h.place.node === 'd' && h.steps.some((s) => s.kind === 'ipvs'));
  return t.hops.find((h, k) => k > at && h.place.node === 'd' && h.direction === 'out' && h.parent === at)!;
}

describe('IPVS transmit in IPv4 output (ipv4-output.ts)', () => {
  it('DR (ip_vs_dr_xmit) sends the packet unchanged to the real server MAC, and the real server answers the client', () => {
    const t = lan('Route', {});
    const out = transmitted(t);
    expect(out.frame.dst).toBe(RS_MAC);
    expect(out.frame.payload.kind === 'ipv4' && formatIpv4(out.frame.payload.dst)).toBe(VIP);
    expect(t.disposition).toBe('replied');
  });

  it('DR resolves the real server, not the VIP, on a connected route (FLOWI_FLAG_KNOWN_NH)', () => {
    const t = lan('Route', {});
    const d = t.hops.find((h) => h.place.node === 'd' && h.steps.some((s) => s.kind === 'ipvs'))!;
    const route = d.steps.find((s) => s.kind === 'route');
    expect(route?.kind === 'route' && route.nextHop !== undefined && formatIpv4(route.nextHop)).toBe('198.51.100.21');
  });

  it('DR to a real server routed through a gateway hands the frame to that gateway (rt_uses_gateway)', () => {
    const t = lan('Route', {}, [{ dst: '198.51.100.21/32', via: '198.51.100.1', dev: 'eth0' }]);
    const d = t.hops.find((h) => h.place.node === 'd' && h.steps.some((s) => s.kind === 'ipvs'))!;
    const route = d.steps.find((s) => s.kind === 'route');
    expect(route?.kind === 'route' && route.nextHop !== undefined && formatIpv4(route.nextHop)).toBe('198.51.100.1');
    expect(d.steps.some((s) => s.kind === 'note' && s.text.startsWith('DR: 198.51.100.21 is reached via'))).toBe(true);
  });

  it('TUN (ip_vs_tunnel_xmit) wraps the packet in IPIP to the real server, which decapsulates it on tunl0', () => {
    const t = lan('Tunnel', {});
    const p = transmitted(t).frame.payload;
    expect(p.kind).toBe('ipv4');
    if (p.kind !== 'ipv4') return;
    expect(p.protocol).toBe(4);
    expect(formatIpv4(p.src)).toBe('198.51.100.10');
    expect(formatIpv4(p.dst)).toBe('198.51.100.21');
    expect(p.payload.kind === 'ipv4' && formatIpv4(p.payload.dst)).toBe(VIP);
    expect(t.disposition).toBe('replied');
  });

  it('TUN to a real server without tunl0 ends where the ipip module would be', () => {
    const t = lan('Tunnel', { ifaces: { eth0: { mac: RS_MAC, addrs: ['198.51.100.21/24'], segment: 'lan' } } });
    expect(t.disposition).toBe('discarded');
    expect(t.end.cause).toBe('no-ipip');
  });

  it('NAT (ip_vs_nat_xmit) rewrites the destination to the real server, and SNATs its reply in FORWARD', () => {
    const s = tinyScenario({
      c: {
        ifaces: { eth0: { mac: '52:54:00:00:00:50', addrs: ['203.0.113.50/24'], peer: 'd:eth1' } },
        routes: [{ dst: 'default', via: '203.0.113.1', dev: 'eth0' }],
      },
      d: {
        ifaces: {
          eth0: { mac: '52:54:00:00:00:10', addrs: ['198.51.100.10/24'], peer: 'rs:eth0' },
          eth1: { mac: '52:54:00:00:01:10', addrs: ['203.0.113.1/24', '203.0.113.100/24'], peer: 'c:eth0' },
        },
        sysctl: { 'net.ipv4.ip_forward': 1 },
      },
      rs: {
        ifaces: { eth0: { mac: RS_MAC, addrs: ['198.51.100.21/24'], peer: 'd:eth0' } },
        routes: [{ dst: 'default', via: '198.51.100.10', dev: 'eth0' }],
        listen: [8080],
      },
    });
    const ipvsadm = {
      d: [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  203.0.113.100:80 rr',
        '  -> 198.51.100.21:8080           Masq    1      0          0',
        '',
      ].join('\n'),
    };
    const t = trace(s, tcpProbe('c', '203.0.113.100', 80), { ipvsadm });
    const p = transmitted(t).frame.payload;
    expect(p.kind === 'ipv4' && `${formatIpv4(p.dst)}:${p.payload.kind === 'tcp' ? p.payload.dstPort : ''}`).toBe(
      '198.51.100.21:8080',
    );
    const snat = t.hops.find((h) => h.place.node === 'd' && h.steps.some((s) => s.kind === 'forward'))!;
    expect(snat.steps.filter((s) => s.kind === 'ipvs')).toHaveLength(1);
    expect(t.disposition).toBe('replied');
  });
});
