/** ARP/RARP for Ethernet + IPv4 (RFC 826). Other hardware/protocol combinations stay raw payloads. */
import { ipv4FromBytes } from '../addr/ipv4.ts';
import { macFromBytes } from '../addr/mac.ts';
import { readU16, writeMac, writeU16, writeU32 } from './bytes.ts';
import type { ArpPacket } from './types.ts';

export const ARP_HTYPE = 0;
export const ARP_PTYPE = 2;
export const ARP_HLEN = 4;
export const ARP_PLEN = 5;
export const ARP_OP = 6;
export const ARP_SHA = 8;
export const ARP_SPA = 14;
export const ARP_THA = 18;
export const ARP_TPA = 24;
export const ARP_PACKET_LEN = 28;
export const ARP_HTYPE_ETHERNET = 1;

/** Parses an Ethernet/IPv4 ARP packet at `start`; undefined when it is truncated or of another kind. */
export function parseArpPacket(bytes: Uint8Array, start = 0, end = bytes.length): ArpPacket | undefined {
  if (end - start < ARP_PACKET_LEN) return undefined;
  if (bytes[start + ARP_HLEN] !== 6 || bytes[start + ARP_PLEN] !== 4) return undefined;
  return {
    kind: 'arp',
    htype: readU16(bytes, start + ARP_HTYPE),
    ptype: readU16(bytes, start + ARP_PTYPE),
    op: readU16(bytes, start + ARP_OP),
    sha: macFromBytes(bytes, start + ARP_SHA),
    spa: ipv4FromBytes(bytes, start + ARP_SPA),
    tha: macFromBytes(bytes, start + ARP_THA),
    tpa: ipv4FromBytes(bytes, start + ARP_TPA),
  };
}

export function arpPacketLength(_p: ArpPacket): number {
  return ARP_PACKET_LEN;
}

export function writeArpPacket(p: ArpPacket, buf: Uint8Array, offset: number): number {
  writeU16(buf, offset + ARP_HTYPE, p.htype);
  writeU16(buf, offset + ARP_PTYPE, p.ptype);
  buf[offset + ARP_HLEN] = 6;
  buf[offset + ARP_PLEN] = 4;
  writeU16(buf, offset + ARP_OP, p.op);
  writeMac(buf, offset + ARP_SHA, p.sha);
  writeU32(buf, offset + ARP_SPA, p.spa);
  writeMac(buf, offset + ARP_THA, p.tha);
  writeU32(buf, offset + ARP_TPA, p.tpa);
  return ARP_PACKET_LEN;
}

export function emitArpPacket(p: ArpPacket): Uint8Array {
  const buf = new Uint8Array(ARP_PACKET_LEN);
  writeArpPacket(p, buf, 0);
  return buf;
}
