import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { type Ipv4, ipv4, ipv4FromNumber } from '../addr/ipv4.ts';
import { type Mac, mac, macFromBytes } from '../addr/mac.ts';
import { finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum.ts';
import { ETH_MIN_FRAME_LEN, emitEthernet, ethernetLength, parseEthernet } from './ethernet.ts';
import { tcpOptionLength } from './tcp.ts';
import type { EthernetFrame, Ipv4Packet, L3Payload, L4Payload, TcpOption, TcpSegment } from './types.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const FOUNDING = hex(
  '020073b653c88478ac276c4108004500003cb8a04000300696c6c0f37791c00002d0c9bb0050d8eee2fd00000000a002390804c40000020405b40402080a2e895a5d0000000001030307',
);
const FOUNDING_REPR: EthernetFrame = {
  dst: mac('02:00:73:b6:53:c8'),
  src: mac('84:78:ac:27:6c:41'),
  vlans: [],
  etherType: 0x0800,
  payload: {
    kind: 'ipv4',
    tos: 0,
    id: 47264,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 48,
    protocol: 6,
    src: ipv4('192.243.119.145'),
    dst: ipv4('192.0.2.208'),
    payload: {
      kind: 'tcp',
      srcPort: 51643,
      dstPort: 80,
      seq: 3639534333,
      ack: 0,
      flags: 0x02,
      window: 14600,
      urgent: 0,
      options: [
        { kind: 'mss', value: 1460 },
        { kind: 'sack-permitted' },
        { kind: 'timestamp', val: 780753501, ecr: 0 },
        { kind: 'nop' },
        { kind: 'wscale', shift: 7 },
      ],
      payload: new Uint8Array(0),
    },
  },
};

/** Removes the checksums that `original` left to be computed, so a parsed frame can be compared with it. */
function stripComputed(parsed: EthernetFrame, original: EthernetFrame): EthernetFrame {
  const l4 = (p: L4Payload, o: L4Payload): L4Payload => {
    if (p.kind === 'ipv4' && o.kind === 'ipv4') return l3(p, o) as Ipv4Packet;
    if ((p.kind === 'tcp' || p.kind === 'udp' || p.kind === 'icmp') && p.kind === o.kind && o.checksum === undefined) {
      const { checksum: _, ...rest } = p;
      return rest as L4Payload;
    }
    return p;
  };
  const l3 = (p: L3Payload, o: L3Payload): L3Payload => {
    if (p.kind !== 'ipv4' || o.kind !== 'ipv4') return p;
    const { checksum, ...rest } = p;
    const base = o.checksum === undefined ? rest : { ...rest, checksum: checksum! };
    return { ...base, payload: l4(p.payload, o.payload) };
  };
  return { ...parsed, payload: l3(parsed.payload, original.payload) };
}

/** True when every checksum the frame left undefined verifies on the wire. */
function checksumsVerify(bytes: Uint8Array, frame: EthernetFrame): boolean {
  let off = 14 + 4 * frame.vlans.length;
  let p: L3Payload | L4Payload = frame.payload;
  while (p.kind === 'ipv4') {
    const hlen = (bytes[off]! & 15) * 4;
    if (p.checksum === undefined && internetChecksum(bytes, off, off + hlen) !== 0) return false;
    const src = p.src;
    const dst = p.dst;
    const start = off + hlen;
    const end = off + ((bytes[off + 2]! << 8) | bytes[off + 3]!);
    const inner: L4Payload = p.payload;
    if (inner.kind === 'tcp' && inner.checksum === undefined) {
      if (finishChecksum(sumWords(bytes, start, end, pseudoHeaderSum(src, dst, 6, end - start))) !== 0) return false;
    }
    if (inner.kind === 'udp' && inner.checksum === undefined) {
      if (finishChecksum(sumWords(bytes, start, end, pseudoHeaderSum(src, dst, 17, end - start))) !== 0) return false;
    }
    if (inner.kind === 'icmp' && inner.checksum === undefined && internetChecksum(bytes, start, end) !== 0)
      return false;
    off = start;
    p = inner;
  }
  return true;
}

// ---- arbitraries: canonical frames, i.e. the ones parse(emit(x)) reproduces ----

const arbMac: fc.Arbitrary<Mac> = fc.uint8Array({ minLength: 6, maxLength: 6 }).map((b) => macFromBytes(b));
const arbIpv4: fc.Arbitrary<Ipv4> = fc.nat({ max: 0xffffffff }).map(ipv4FromNumber);
const u16 = fc.nat({ max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });
const bytes = (max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ maxLength: max });
const optional = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const arbTcpOption: fc.Arbitrary<TcpOption> = fc.oneof(
  fc.constant<TcpOption>({ kind: 'nop' }),
  u16.map((value): TcpOption => ({ kind: 'mss', value })),
  fc.nat({ max: 255 }).map((shift): TcpOption => ({ kind: 'wscale', shift })),
  fc.constant<TcpOption>({ kind: 'sack-permitted' }),
  fc
    .array(fc.tuple(u32, u32), { maxLength: 3 })
    .map((blocks): TcpOption => ({ kind: 'sack', blocks: blocks.map(([a, b]) => [a, b] as const) })),
  fc.tuple(u32, u32).map(([val, ecr]): TcpOption => ({ kind: 'timestamp', val, ecr })),
  fc
    .tuple(fc.integer({ min: 9, max: 255 }), bytes(6))
    .map(([type, data]): TcpOption => ({ kind: 'unknown', type, data })),
);

const arbTcpOptions: fc.Arbitrary<TcpOption[]> = fc.array(arbTcpOption, { maxLength: 8 }).map((opts) => {
  const out: TcpOption[] = [];
  let n = 0;
  for (const o of opts) {
    if (n + tcpOptionLength(o) > 39) break;
    out.push(o);
    n += tcpOptionLength(o);
  }
  if (n % 4 !== 0) out.push({ kind: 'eol' });
  return out;
});

const arbTcp: fc.Arbitrary<TcpSegment> = fc.record(
  {
    kind: fc.constant('tcp' as const),
    srcPort: u16,
    dstPort: u16,
    seq: u32,
    ack: u32,
    flags: fc.nat({ max: 255 }),
    window: u16,
    urgent: u16,
    options: arbTcpOptions,
    payload: bytes(40),
    checksum: u16,
  },
  { requiredKeys: ['kind', 'srcPort', 'dstPort', 'seq', 'ack', 'flags', 'window', 'urgent', 'options', 'payload'] },
);

const arbUdp: fc.Arbitrary<L4Payload> = fc.record(
  { kind: fc.constant('udp' as const), srcPort: u16, dstPort: u16, payload: bytes(40), checksum: optional(u16) },
  { requiredKeys: ['kind', 'srcPort', 'dstPort', 'payload'] },
) as fc.Arbitrary<L4Payload>;

const arbIcmp: fc.Arbitrary<L4Payload> = fc.record(
  {
    kind: fc.constant('icmp' as const),
    type: fc.nat({ max: 255 }),
    code: fc.nat({ max: 255 }),
    rest: u32,
    payload: bytes(40),
    checksum: u16,
  },
  { requiredKeys: ['kind', 'type', 'code', 'rest', 'payload'] },
);

const PROTO: Record<string, number> = { tcp: 6, udp: 17, icmp: 1, ipv4: 4 };

function arbIpv4Packet(depth: number): fc.Arbitrary<Ipv4Packet> {
  const l4: fc.Arbitrary<L4Payload>[] = [arbTcp, arbUdp, arbIcmp];
  if (depth > 0) l4.push(arbIpv4Packet(depth - 1));
  const header = fc.record(
    {
      tos: fc.nat({ max: 255 }),
      id: u16,
      dontFragment: fc.boolean(),
      moreFragments: fc.boolean(),
      ttl: fc.nat({ max: 255 }),
      src: arbIpv4,
      dst: arbIpv4,
      options: optional(
        fc.integer({ min: 1, max: 10 }).chain((n) => fc.uint8Array({ minLength: 4 * n, maxLength: 4 * n })),
      ),
      checksum: u16,
    },
    { requiredKeys: ['tos', 'id', 'dontFragment', 'moreFragments', 'ttl', 'src', 'dst'] },
  ) as fc.Arbitrary<Omit<Ipv4Packet, 'kind' | 'fragmentOffset' | 'protocol' | 'payload'>>;
  const structured = fc.tuple(header, fc.oneof(...l4)).map(
    ([h, payload]): Ipv4Packet => ({
      kind: 'ipv4',
      ...h,
      fragmentOffset: 0,
      protocol: PROTO[payload.kind]!,
      payload,
    }),
  );
  const fragment = fc.tuple(header, fc.integer({ min: 1, max: 0x1fff }), fc.nat({ max: 255 }), bytes(40)).map(
    ([h, fragmentOffset, protocol, b]): Ipv4Packet => ({
      kind: 'ipv4',
      ...h,
      fragmentOffset,
      protocol,
      payload: { kind: 'raw', bytes: b },
    }),
  );
  const otherProtocol = fc
    .tuple(
      header,
      fc.nat({ max: 255 }).filter((p) => ![1, 4, 6, 17].includes(p)),
      bytes(40),
    )
    .map(
      ([h, protocol, b]): Ipv4Packet => ({
        kind: 'ipv4',
        ...h,
        fragmentOffset: 0,
        protocol,
        payload: { kind: 'raw', bytes: b },
      }),
    );
  return fc.oneof({ weight: 4, arbitrary: structured }, fragment, otherProtocol);
}

const arbL3: fc.Arbitrary<{ etherType: number; payload: L3Payload }> = fc.oneof(
  arbIpv4Packet(1).map((payload) => ({ etherType: 0x0800, payload })),
  fc
    .record({ op: u16, htype: u16, sha: arbMac, spa: arbIpv4, tha: arbMac, tpa: arbIpv4, rarp: fc.boolean() })
    .map(({ rarp, ...a }) => ({
      etherType: rarp ? 0x8035 : 0x0806,
      payload: { kind: 'arp' as const, ptype: 0x0800, ...a },
    })),
  fc
    .tuple(
      u16.filter((t) => ![0x0800, 0x0806, 0x8035, 0x8100, 0x88a8, 0x9100, 0x9200].includes(t)),
      bytes(60),
    )
    .map(([etherType, b]) => ({ etherType, payload: { kind: 'raw' as const, bytes: b } })),
);

const arbVlan = fc.record(
  {
    pcp: fc.nat({ max: 7 }),
    dei: fc.boolean(),
    vid: fc.nat({ max: 4095 }),
    tpid: fc.constantFrom(0x88a8, 0x9100, 0x9200),
  },
  { requiredKeys: ['pcp', 'dei', 'vid'] },
);

const arbFrame: fc.Arbitrary<EthernetFrame> = fc
  .tuple(arbMac, arbMac, fc.array(arbVlan, { maxLength: 2 }), arbL3)
  .map(([dst, src, vlans, l3]) => ({ dst, src, vlans, ...l3 }));

describe('Ethernet', () => {
  it('parses the founding frame layer by layer', () => {
    const parsed = parseEthernet(FOUNDING);
    expect(stripComputed(parsed, FOUNDING_REPR)).toEqual(FOUNDING_REPR);
    expect(parsed.payload).toMatchObject({ checksum: 0x96c6, payload: { checksum: 0x04c4 } });
  });

  it('emits the founding frame byte for byte', () => {
    expect(emitEthernet(FOUNDING_REPR)).toEqual(FOUNDING);
    expect(ethernetLength(FOUNDING_REPR)).toBe(74);
  });

  it('writes 802.1Q and 802.1ad tags outermost first', () => {
    const frame: EthernetFrame = {
      ...FOUNDING_REPR,
      vlans: [
        { pcp: 0, dei: false, vid: 20, tpid: 0x88a8 },
        { pcp: 5, dei: true, vid: 100 },
      ],
    };
    const b = emitEthernet(frame);
    expect(Buffer.from(b.subarray(12, 22)).toString('hex')).toBe('88a800148100b0640800');
    expect(parseEthernet(b).vlans).toEqual(frame.vlans);
  });

  it('pads to 60 bytes only when asked', () => {
    const arp: EthernetFrame = {
      dst: mac('ff:ff:ff:ff:ff:ff'),
      src: mac('02:00:73:b6:53:c8'),
      vlans: [],
      etherType: 0x0806,
      payload: {
        kind: 'arp',
        htype: 1,
        ptype: 0x0800,
        op: 1,
        sha: mac('02:00:73:b6:53:c8'),
        spa: ipv4('192.0.2.10'),
        tha: mac('00:00:00:00:00:00'),
        tpa: ipv4('198.51.100.11'),
      },
    };
    expect(emitEthernet(arp).length).toBe(42);
    const padded = emitEthernet(arp, { pad: true });
    expect(padded.length).toBe(ETH_MIN_FRAME_LEN);
    expect(parseEthernet(padded)).toEqual(arp);
    expect(emitEthernet(FOUNDING_REPR, { pad: true }).length).toBe(74);
  });

  it('keeps unknown ethertypes and broken upper layers as raw payloads', () => {
    const b = FOUNDING.slice();
    b[14] = 0x65;
    expect(parseEthernet(b).payload).toEqual({ kind: 'raw', bytes: b.subarray(14) });
    b[12] = 0x88;
    b[13] = 0xb5;
    expect(parseEthernet(b).etherType).toBe(0x88b5);
  });

  it('never throws on truncated frames', () => {
    for (let n = 0; n <= FOUNDING.length; n++) expect(() => parseEthernet(FOUNDING.subarray(0, n))).not.toThrow();
    expect(parseEthernet(FOUNDING.subarray(0, 5))).toMatchObject({ dst: mac('02:00:73:b6:53:00'), vlans: [] });
  });

  test.prop([arbFrame], { numRuns: 500 })('parse(emit(frame)) gives the frame back with checksums filled', (frame) => {
    const b = emitEthernet(frame);
    const parsed = parseEthernet(b);
    expect(stripComputed(parsed, frame)).toEqual(frame);
    expect(emitEthernet(parsed)).toEqual(b);
    expect(checksumsVerify(b, frame)).toBe(true);
  });

  test.prop([fc.uint8Array({ maxLength: 120 })], { numRuns: 2000 })('parsing random bytes never throws', (b) => {
    const parsed = parseEthernet(b);
    expect(() => emitEthernet(parsed)).not.toThrow();
  });
});
