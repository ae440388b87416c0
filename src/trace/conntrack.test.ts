import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../addr/ipv4.ts';
import { type Ipv4Packet, TCP_ACK, TCP_PSH, TCP_SYN } from '../wire/types.ts';
import { Conntrack } from './conntrack.ts';

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
