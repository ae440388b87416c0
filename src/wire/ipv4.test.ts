import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { internetChecksum } from './checksum.ts';
import { emitIpv4Packet, IPV4_CHECKSUM, IPV4_FLAGS_FRAG, IPV4_TOTAL_LEN, parseIpv4Packet } from './ipv4.ts';
import type { Ipv4Packet } from './types.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const ICMP_ECHO_IP = hex(
  '4500005415b34000400138adc000020ac633640b0800ae4412670001101112131415161708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637',
);

const udp = (payload: Uint8Array): Ipv4Packet => ({
  kind: 'ipv4',
  tos: 0x10,
  id: 100,
  dontFragment: true,
  moreFragments: false,
  fragmentOffset: 0,
  ttl: 64,
  protocol: 17,
  src: ipv4('203.0.113.5'),
  dst: ipv4('198.51.100.12'),
  payload: { kind: 'udp', srcPort: 40001, dstPort: 5000, payload },
});

describe('IPv4', () => {
  it('parses an echo request with its header fields', () => {
    const p = parseIpv4Packet(ICMP_ECHO_IP);
    expect(p).toMatchObject({
      tos: 0,
      id: 5555,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 1,
      src: ipv4('192.0.2.10'),
      dst: ipv4('198.51.100.11'),
      checksum: 0x38ad,
      payload: { kind: 'icmp', type: 8, code: 0, rest: 0x12670001, checksum: 0xae44 },
    });
    expect(p?.totalLength).toBeUndefined();
  });

  it('emits the same bytes from the parsed packet', () => {
    expect(emitIpv4Packet(parseIpv4Packet(ICMP_ECHO_IP)!)).toEqual(ICMP_ECHO_IP);
  });

  it('computes total length and header checksum', () => {
    const b = emitIpv4Packet(udp(Uint8Array.of(1, 2, 3)));
    expect((b[IPV4_TOTAL_LEN]! << 8) | b[IPV4_TOTAL_LEN + 1]!).toBe(31);
    expect(internetChecksum(b, 0, 20)).toBe(0);
  });

  it('keeps explicit checksum and total length overrides', () => {
    const b = emitIpv4Packet({ ...udp(new Uint8Array(0)), checksum: 0xdead, totalLength: 120 });
    expect([b[IPV4_CHECKSUM], b[IPV4_CHECKSUM + 1]]).toEqual([0xde, 0xad]);
    const p = parseIpv4Packet(b);
    expect(p?.totalLength).toBe(120);
    expect(p?.checksum).toBe(0xdead);
  });

  it('writes options padded to 4 bytes into the header length', () => {
    const b = emitIpv4Packet({ ...udp(new Uint8Array(0)), options: Uint8Array.of(0x94, 4, 0, 0, 1) });
    expect(b[0]).toBe(0x47);
    expect(parseIpv4Packet(b)?.options).toEqual(Uint8Array.of(0x94, 4, 0, 0, 1, 0, 0, 0));
  });

  it('encodes DF, MF and the fragment offset, and keeps non-first fragments raw', () => {
    const frag: Ipv4Packet = {
      ...udp(new Uint8Array(0)),
      dontFragment: false,
      moreFragments: true,
      fragmentOffset: 185,
      payload: { kind: 'raw', bytes: Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9) },
    };
    const b = emitIpv4Packet(frag);
    expect((b[IPV4_FLAGS_FRAG]! << 8) | b[IPV4_FLAGS_FRAG + 1]!).toBe(0x2000 | 185);
    expect(parseIpv4Packet(b)?.payload).toEqual(frag.payload);
  });

  it('drops Ethernet padding after the total length', () => {
    const padded = new Uint8Array(ICMP_ECHO_IP.length + 6);
    padded.set(ICMP_ECHO_IP);
    expect(emitIpv4Packet(parseIpv4Packet(padded)!)).toEqual(ICMP_ECHO_IP);
  });

  it('treats another version, a short header length or a truncated header as not IPv4', () => {
    const b = ICMP_ECHO_IP.slice();
    b[0] = 0x65;
    expect(parseIpv4Packet(b)).toBeUndefined();
    b[0] = 0x44;
    expect(parseIpv4Packet(b)).toBeUndefined();
    expect(parseIpv4Packet(ICMP_ECHO_IP.subarray(0, 19))).toBeUndefined();
  });

  it('records the wire total length of a truncated capture', () => {
    const p = parseIpv4Packet(ICMP_ECHO_IP.subarray(0, 40));
    expect(p?.totalLength).toBe(84);
    expect(p?.payload.kind).toBe('icmp');
  });
});
