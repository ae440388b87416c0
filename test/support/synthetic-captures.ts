/** Builders for synthetic captures (tests, benchmarks, examples): TCP/IPv4 frames with the fields correlation uses. */
import { type Ipv4, ipv4 } from '../../src/addr/ipv4.ts';
import { type Mac, mac } from '../../src/addr/mac.ts';
import type { PcapRecordInput } from '../../src/capture/pcap.ts';
import { emitEthernet } from '../../src/wire/ethernet.ts';
import { ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet, type TcpOption } from '../../src/wire/types.ts';

export interface TcpFrameSpec {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly ack?: number;
  /** TCP flags bit set (0x02 SYN, 0x10 ACK, 0x12 SYN-ACK…). */
  readonly flags: number;
  readonly id: number;
  readonly ttl?: number;
  readonly tsval?: number;
  readonly tsecr?: number;
  readonly payload?: Uint8Array;
  readonly srcMac?: string;
  readonly dstMac?: string;
  /** Wrap in IPIP with these outer addresses. */
  readonly ipip?: { readonly src: string; readonly dst: string };
}

export function tcpPacket(f: TcpFrameSpec): Ipv4Packet {
  const options: TcpOption[] =
    f.tsval !== undefined
      ? f.flags & 0x02
        ? [
            { kind: 'mss', value: 1460 },
            { kind: 'sack-permitted' },
            { kind: 'timestamp', val: f.tsval, ecr: f.tsecr ?? 0 },
            { kind: 'nop' },
            { kind: 'wscale', shift: 7 },
          ]
        : [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamp', val: f.tsval, ecr: f.tsecr ?? 0 }]
      : [];
  return {
    kind: 'ipv4',
    tos: 0,
    id: f.id,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: f.ttl ?? 64,
    protocol: 6,
    src: ipv4(f.src),
    dst: ipv4(f.dst),
    payload: {
      kind: 'tcp',
      srcPort: f.sport,
      dstPort: f.dport,
      seq: f.seq >>> 0,
      ack: (f.ack ?? 0) >>> 0,
      flags: f.flags,
      window: 14600,
      urgent: 0,
      options,
      payload: f.payload ?? new Uint8Array(0),
    },
  };
}

export function tcpFrame(f: TcpFrameSpec): EthernetFrame {
  let pkt = tcpPacket(f);
  if (f.ipip)
    pkt = {
      kind: 'ipv4',
      tos: 0,
      id: (f.id + 1) & 0xffff,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 4,
      src: ipv4(f.ipip.src) as Ipv4,
      dst: ipv4(f.ipip.dst) as Ipv4,
      payload: pkt,
    };
  return {
    dst: mac(f.dstMac ?? '02:00:00:00:00:02') as Mac,
    src: mac(f.srcMac ?? '02:00:00:00:00:01') as Mac,
    vlans: [],
    etherType: ETHERTYPE_IPV4,
    payload: pkt,
  };
}

export function tcpRecord(timeNs: bigint, f: TcpFrameSpec): PcapRecordInput {
  return { timeNs, bytes: emitEthernet(tcpFrame(f)) };
}

/** `n` data segments of 50 client ports to one server, `payload` bytes each, 10 µs apart (big captures for tests). */
export function manyTcpRecords(n: number, payload: number): PcapRecordInput[] {
  const data = new Uint8Array(payload).fill(0x61);
  return Array.from({ length: n }, (_, i) =>
    tcpRecord(1_700_000_000_000_000_000n + BigInt(i) * 10_000n, {
      src: '192.0.2.1',
      dst: '198.51.100.10',
      sport: 10000 + (i % 50),
      dport: 80,
      seq: i * 1000,
      flags: 0x18,
      id: i & 0xffff,
      payload: data,
    }),
  );
}
