import { describe, expect, it } from 'vitest';
import { arpProbe, type NodeSpec, pathHops, tcpProbe, tinyScenario, trace } from '../../test/support/tiny-net.ts';

/** `a` asks for `rs`'s addresses over a direct link; `rs` has the VIP 198.51.100.100 on lo, as a DR real server. */
function arpPair(rsSysctl: Record<string, number>) {
  return tinyScenario({
    a: { ifaces: { eth0: { mac: '52:54:00:00:00:0a', addrs: ['198.51.100.10/24'], peer: 'rs:eth0' } } },
    rs: {
      ifaces: {
        lo: { addrs: ['127.0.0.1/8', '198.51.100.100/32'] },
        eth0: { mac: '52:54:00:00:00:21', addrs: ['198.51.100.21/24'], peer: 'a:eth0' },
      },
      sysctl: rsSysctl,
    },
  });
}

describe('ARP in the IPv4 stack (ipv4-stack.ts, arp_process)', () => {
  it('answers for an address on another interface with arp_ignore=0', () => {
    const t = trace(arpPair({}), arpProbe('a', '198.51.100.100'));
    expect(t.disposition).toBe('replied');
  });

  it('ignores a request for an address not configured on the incoming interface with arp_ignore=1', () => {
    const t = trace(arpPair({ 'net.ipv4.conf.all.arp_ignore': 1 }), arpProbe('a', '198.51.100.100'));
    expect(t.disposition).toBe('discarded');
    expect(t.end.reason).toContain('arp_ignore=1: 198.51.100.100 is configured on lo, not on eth0');
  });

  it('takes the larger of conf/all and conf/<iface> for arp_ignore (IN_DEV_MAXCONF)', () => {
    const t = trace(
      arpPair({ 'net.ipv4.conf.all.arp_ignore': 0, 'net.ipv4.conf.eth0.arp_ignore': 1 }),
      arpProbe('a', '198.51.100.100'),
    );
    expect(t.disposition).toBe('discarded');
    expect(t.end.origin?.label).toBe('net.ipv4.conf.eth0.arp_ignore = 1');
  });

  it("still answers for the incoming interface's own address with arp_ignore=1", () => {
    const t = trace(arpPair({ 'net.ipv4.conf.all.arp_ignore': 1 }), arpProbe('a', '198.51.100.21'));
    expect(t.disposition).toBe('replied');
  });

  it('does not answer a sender whose address is its own (a martian in fib_validate_source) unless accept_local', () => {
    const spoof = (sysctl: Record<string, number>) =>
      tinyScenario({
        a: { ifaces: { eth0: { mac: '52:54:00:00:00:0a', addrs: ['198.51.100.21/24'], peer: 'rs:eth0' } } },
        rs: { ifaces: { eth0: { mac: '52:54:00:00:00:21', addrs: ['198.51.100.21/24'], peer: 'a:eth0' } }, sysctl },
      });
    const t = trace(spoof({}), arpProbe('a', '198.51.100.21'));
    expect(t.disposition).toBe('dropped-by-kernel');
    expect(t.end.cause).toBe('martian-source');
    expect(trace(spoof({ 'net.ipv4.conf.all.accept_local': 1 }), arpProbe('a', '198.51.100.21')).disposition).toBe(
      'replied',
    );
  });
});

/**
 * `b` (203.0.113.50) reaches `r` on r's eth0, but r's route back to 203.0.113.0/24 leaves through eth1: the
 * asymmetric path reverse-path filtering is about.
 */
function asymmetric(rSysctl: Record<string, number>) {
  const r: NodeSpec = {
    ifaces: {
      eth0: { mac: '52:54:00:00:00:10', addrs: ['198.51.100.10/24'], peer: 'b:eth0' },
      eth1: { mac: '52:54:00:00:01:10', addrs: ['203.0.113.1/24', '192.0.2.1/24'], peer: 'c:eth0' },
    },
    listen: [80],
    neighbours: { '203.0.113.50': '52:54:00:00:00:50' },
    sysctl: rSysctl,
  };
  return tinyScenario({
    b: {
      ifaces: { eth0: { mac: '52:54:00:00:00:50', addrs: ['203.0.113.50/24'], peer: 'r:eth0' } },
      routes: [
        { dst: '198.51.100.0/24', dev: 'eth0' },
        { dst: '192.0.2.0/24', via: '198.51.100.10', dev: 'eth0' },
      ],
      neighbours: { '198.51.100.10': '52:54:00:00:00:10' },
    },
    r,
    c: { ifaces: { eth0: { mac: '52:54:00:00:00:c0', addrs: ['192.0.2.7/24'], peer: 'r:eth1' } } },
  });
}

describe('source validation in the IPv4 stack (ipv4-stack.ts, fib_validate_source)', () => {
  it('drops a packet whose route back leaves through another interface with rp_filter=1 (strict)', () => {
    const t = trace(asymmetric({ 'net.ipv4.conf.all.rp_filter': 1 }), tcpProbe('b', '198.51.100.10', 80));
    expect(t.disposition).toBe('dropped-by-kernel');
    expect(t.end.cause).toBe('rp-filter');
    expect(pathHops(t).at(-1)!.steps.at(-1)).toMatchObject({ kind: 'rp-filter', mode: 1, passed: false });
  });

  it('accepts it with rp_filter=2 (loose): a route back exists', () => {
    const t = trace(asymmetric({ 'net.ipv4.conf.eth0.rp_filter': 2 }), tcpProbe('b', '198.51.100.10', 80));
    const received = t.hops.find((h) => h.place.node === 'r' && h.direction === 'in')!;
    expect(received.steps).toContainEqual(expect.objectContaining({ kind: 'rp-filter', mode: 2, passed: true }));
    expect(received.steps).toContainEqual(expect.objectContaining({ kind: 'deliver' }));
  });

  it('does not check the way back with rp_filter=0', () => {
    const t = trace(asymmetric({}), tcpProbe('b', '198.51.100.10', 80));
    const received = t.hops.find((h) => h.place.node === 'r' && h.direction === 'in')!;
    expect(received.steps.some((s) => s.kind === 'rp-filter')).toBe(false);
    expect(received.steps).toContainEqual(expect.objectContaining({ kind: 'deliver' }));
  });
});

describe('forwarding in the IPv4 stack (ipv4-stack.ts, ip_forward)', () => {
  it('discards a packet for another host when net.ipv4.ip_forward is 0, and forwards it with ttl-1 when 1', () => {
    const off = trace(asymmetric({}), tcpProbe('b', '192.0.2.7', 80));
    expect(off.disposition).toBe('discarded');
    expect(off.end.cause).toBe('ip-forward-off');
    const on = trace(asymmetric({ 'net.ipv4.ip_forward': 1 }), tcpProbe('b', '192.0.2.7', 80));
    const fwd = on.hops.flatMap((h) => h.steps).find((s) => s.kind === 'forward');
    expect(fwd).toMatchObject({ ttlBefore: 64, ttlAfter: 63 });
    expect(on.hops.some((h) => h.place.node === 'c' && h.direction === 'in')).toBe(true);
  });
});
