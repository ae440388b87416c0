/**
 * Ethernet II with any number of 802.1Q / 802.1ad tags. Frames are emitted without FCS; padding to the 60-byte
 * minimum happens only on request (Linux captures outbound small frames unpadded, which is what tcpdump shows).
 */

import { macFromBytes } from '../addr/mac.ts';
import { assertNever } from '../source/assert-never.ts';
import { arpPacketLength, parseArpPacket, writeArpPacket } from './arp.ts';
import { readU16, writeMac, writeU16 } from './bytes.ts';
import { ipv4PacketLength, parseIpv4Packet, writeIpv4Packet } from './ipv4.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_RARP,
  ETHERTYPE_VLAN,
  type EthernetFrame,
  type L3Payload,
  type VlanTag,
} from './types.ts';

export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export const ETH_HEADER_LEN = 14;
export const VLAN_TAG_LEN = 4;
/** Minimum frame length without FCS. */
export const ETH_MIN_FRAME_LEN = 60;
export const ETHERTYPE_QINQ = 0x88a8;
export const ETHERTYPE_VLAN_9100 = 0x9100;
export const ETHERTYPE_VLAN_9200 = 0x9200;

/** TPIDs recognised as VLAN tags when parsing (the ones tcpdump decodes as 802.1Q). */
export function isVlanTpid(t: number): boolean {
  return t === ETHERTYPE_VLAN || t === ETHERTYPE_QINQ || t === ETHERTYPE_VLAN_9100 || t === ETHERTYPE_VLAN_9200;
}

export interface EmitEthernetOptions {
  /** Pad with zeros to the 60-byte minimum (what a NIC puts on the wire, without FCS). */
  readonly pad?: boolean;
}

const EMPTY = new Uint8Array(0);

/**
 * Lenient parser: never throws. Frames shorter than a header get zero-filled addresses and an empty raw payload;
 * unknown ethertypes and invalid upper layers become raw payloads. Payload byte arrays are views of `bytes`.
 * Bytes after the end of an ARP packet or an IPv4 total length (Ethernet padding) are not kept.
 */
export function parseEthernet(bytes: Uint8Array): EthernetFrame {
  const n = bytes.length;
  if (n < ETH_HEADER_LEN) {
    const hdr = new Uint8Array(ETH_HEADER_LEN);
    hdr.set(bytes);
    return {
      dst: macFromBytes(hdr, ETH_DST),
      src: macFromBytes(hdr, ETH_SRC),
      vlans: [],
      etherType: readU16(hdr, ETH_TYPE),
      payload: { kind: 'raw', bytes: EMPTY },
    };
  }
  let etherType = readU16(bytes, ETH_TYPE);
  let off = ETH_HEADER_LEN;
  let vlans: VlanTag[] | undefined;
  while (isVlanTpid(etherType) && off + VLAN_TAG_LEN <= n) {
    const tci = readU16(bytes, off);
    const tag: VlanTag =
      etherType === ETHERTYPE_VLAN
        ? { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0xfff }
        : { pcp: tci >>> 13, dei: (tci & 0x1000) !== 0, vid: tci & 0xfff, tpid: etherType };
    if (vlans === undefined) vlans = [tag];
    else vlans.push(tag);
    etherType = readU16(bytes, off + 2);
    off += VLAN_TAG_LEN;
  }
  let payload: L3Payload | undefined;
  if (etherType === ETHERTYPE_IPV4) payload = parseIpv4Packet(bytes, off, n);
  else if (etherType === ETHERTYPE_ARP || etherType === ETHERTYPE_RARP) payload = parseArpPacket(bytes, off, n);
  return {
    dst: macFromBytes(bytes, ETH_DST),
    src: macFromBytes(bytes, ETH_SRC),
    vlans: vlans ?? [],
    etherType,
    payload: payload ?? { kind: 'raw', bytes: bytes.subarray(off, n) },
  };
}

export function l3PayloadLength(p: L3Payload): number {
  switch (p.kind) {
    case 'arp':
      return arpPacketLength(p);
    case 'ipv4':
      return ipv4PacketLength(p);
    case 'raw':
      return p.bytes.length;
    default:
      return assertNever(p, 'L3 payload');
  }
}

/** The length `emitEthernet` will produce (without padding). */
export function ethernetLength(frame: EthernetFrame): number {
  return ETH_HEADER_LEN + VLAN_TAG_LEN * frame.vlans.length + l3PayloadLength(frame.payload);
}

/** Writes the frame at `offset` of `buf` (which must be large enough); returns the number of bytes written. */
export function writeEthernet(frame: EthernetFrame, buf: Uint8Array, offset = 0): number {
  writeMac(buf, offset + ETH_DST, frame.dst);
  writeMac(buf, offset + ETH_SRC, frame.src);
  let off = offset + ETH_TYPE;
  for (const tag of frame.vlans) {
    writeU16(buf, off, tag.tpid ?? ETHERTYPE_VLAN);
    writeU16(buf, off + 2, ((tag.pcp & 7) << 13) | (tag.dei ? 0x1000 : 0) | (tag.vid & 0xfff));
    off += VLAN_TAG_LEN;
  }
  writeU16(buf, off, frame.etherType);
  off += 2;
  const p = frame.payload;
  switch (p.kind) {
    case 'arp':
      off += writeArpPacket(p, buf, off);
      break;
    case 'ipv4':
      off += writeIpv4Packet(p, buf, off);
      break;
    case 'raw':
      buf.set(p.bytes, off);
      off += p.bytes.length;
      break;
    default:
      assertNever(p, 'L3 payload');
  }
  return off - offset;
}

/** Emits the frame; lengths and checksums left undefined in the representation are computed. */
export function emitEthernet(frame: EthernetFrame, options?: EmitEthernetOptions): Uint8Array {
  const len = ethernetLength(frame);
  const buf = new Uint8Array(options?.pad && len < ETH_MIN_FRAME_LEN ? ETH_MIN_FRAME_LEN : len);
  writeEthernet(frame, buf, 0);
  return buf;
}
