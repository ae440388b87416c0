/**
 * The strict representation of frames shared by every layer: trace steps keep frames in this form, the netfilter
 * evaluator matches on it, IPVS rewrites it, and `emit*`/`parse*` in this folder convert it to and from bytes.
 *
 * Checksum and length fields are optional: `undefined` means "compute on emit"; a number is used as is (so broken
 * frames can be built on purpose). Parsers fill them with the values found on the wire.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_VLAN = 0x8100;
export const ETHERTYPE_RARP = 0x8035;
export const ETHERTYPE_IPV6 = 0x86dd;

export const IPPROTO_ICMP = 1;
export const IPPROTO_IGMP = 2;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_GRE = 47;
export const IPPROTO_ESP = 50;
export const IPPROTO_AH = 51;
export const IPPROTO_SCTP = 132;

/** An 802.1Q tag. */
export interface VlanTag {
  readonly pcp: number;
  readonly dei: boolean;
  readonly vid: number;
  /** TPID, 0x8100 unless another is wanted (e.g. 0x88a8). */
  readonly tpid?: number;
}

export interface EthernetFrame {
  readonly dst: Mac;
  readonly src: Mac;
  /** Outermost first. Empty for untagged frames. */
  readonly vlans: readonly VlanTag[];
  /** Ethertype after the tags (or an 802.3 length ≤ 1500). */
  readonly etherType: number;
  readonly payload: L3Payload;
}

export type L3Payload = ArpPacket | Ipv4Packet | RawPayload;

export interface RawPayload {
  readonly kind: 'raw';
  readonly bytes: Uint8Array;
}

export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

/** ARP/RARP for Ethernet + IPv4 (other hardware/protocol types are carried as raw payloads). */
export interface ArpPacket {
  readonly kind: 'arp';
  /** Hardware type, 1 = Ethernet. */
  readonly htype: number;
  /** Protocol type, 0x0800. */
  readonly ptype: number;
  readonly op: number;
  readonly sha: Mac;
  readonly spa: Ipv4;
  readonly tha: Mac;
  readonly tpa: Ipv4;
}

export interface Ipv4Packet {
  readonly kind: 'ipv4';
  readonly tos: number;
  readonly id: number;
  readonly dontFragment: boolean;
  readonly moreFragments: boolean;
  /** In 8-byte units. */
  readonly fragmentOffset: number;
  readonly ttl: number;
  readonly protocol: number;
  readonly src: Ipv4;
  readonly dst: Ipv4;
  /** Raw option bytes (length a multiple of 4). */
  readonly options?: Uint8Array;
  readonly checksum?: number;
  /** Total length override. */
  readonly totalLength?: number;
  readonly payload: L4Payload;
}

export type L4Payload = TcpSegment | UdpDatagram | IcmpMessage | RawPayload | Ipv4Packet;

export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_URG = 0x20;
export const TCP_ECE = 0x40;
export const TCP_CWR = 0x80;

export type TcpOption =
  | { readonly kind: 'eol' }
  | { readonly kind: 'nop' }
  | { readonly kind: 'mss'; readonly value: number }
  | { readonly kind: 'wscale'; readonly shift: number }
  | { readonly kind: 'sack-permitted' }
  | { readonly kind: 'sack'; readonly blocks: readonly (readonly [number, number])[] }
  | { readonly kind: 'timestamp'; readonly val: number; readonly ecr: number }
  | { readonly kind: 'unknown'; readonly type: number; readonly data: Uint8Array };

export interface TcpSegment {
  readonly kind: 'tcp';
  readonly srcPort: number;
  readonly dstPort: number;
  readonly seq: number;
  readonly ack: number;
  /** Bit set of TCP_* flags. */
  readonly flags: number;
  readonly window: number;
  readonly urgent: number;
  readonly options: readonly TcpOption[];
  readonly payload: Uint8Array;
  readonly checksum?: number;
}

export interface UdpDatagram {
  readonly kind: 'udp';
  readonly srcPort: number;
  readonly dstPort: number;
  readonly payload: Uint8Array;
  readonly checksum?: number;
  readonly length?: number;
}

export interface IcmpMessage {
  readonly kind: 'icmp';
  readonly type: number;
  readonly code: number;
  /** The 4 bytes after the checksum (identifier + sequence for echo, unused/MTU for errors…). */
  readonly rest: number;
  readonly payload: Uint8Array;
  readonly checksum?: number;
}

/** A frame with the time it was seen (µs resolution is what tcpdump prints; nanoseconds are kept). */
export interface TimedFrame {
  /** Nanoseconds since the epoch, as a bigint so nanosecond captures are exact. */
  readonly timeNs: bigint;
  readonly frame: EthernetFrame;
}
