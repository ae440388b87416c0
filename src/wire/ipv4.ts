/** IPv4 (RFC 791): header with raw options, fragments, and the upper layers this project models. */

import { ipv4FromBytes } from '../addr/ipv4.ts';
import { assertNever } from '../source/assert-never.ts';
import { readU16, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import { icmpMessageLength, parseIcmpMessage, writeIcmpMessage } from './icmp.ts';
import { parseTcpSegment, tcpSegmentLength, writeTcpSegment } from './tcp.ts';
import { IPPROTO_ICMP, IPPROTO_IPIP, IPPROTO_TCP, IPPROTO_UDP, type Ipv4Packet, type L4Payload } from './types.ts';
import { parseUdpDatagram, udpDatagramLength, writeUdpDatagram } from './udp.ts';

export const IPV4_VER_IHL = 0;
export const IPV4_TOS = 1;
export const IPV4_TOTAL_LEN = 2;
export const IPV4_ID = 4;
export const IPV4_FLAGS_FRAG = 6;
export const IPV4_TTL = 8;
export const IPV4_PROTOCOL = 9;
export const IPV4_CHECKSUM = 10;
export const IPV4_SRC = 12;
export const IPV4_DST = 16;
export const IPV4_HEADER_LEN = 20;
export const IPV4_MAX_OPTIONS_LEN = 40;
export const IPV4_FLAG_RESERVED = 0x8000;
export const IPV4_FLAG_DF = 0x4000;
export const IPV4_FLAG_MF = 0x2000;
export const IPV4_FRAG_OFFSET_MASK = 0x1fff;

/**
 * Parses an IPv4 packet in `bytes[start, end)`; undefined when the header is not a valid IPv4 header.
 * Non-first fragments and unknown or invalid upper layers become raw payloads. `checksum` is always filled;
 * `totalLength` only when it differs from what emitting the parsed packet would compute (truncated capture,
 * bogus length). Bytes after the total length (Ethernet padding) are not kept.
 */
export function parseIpv4Packet(bytes: Uint8Array, start = 0, end = bytes.length): Ipv4Packet | undefined {
  if (end - start < IPV4_HEADER_LEN) return undefined;
  const vihl = bytes[start]!;
  const hlen = (vihl & 0x0f) * 4;
  if (vihl >>> 4 !== 4 || hlen < IPV4_HEADER_LEN || start + hlen > end) return undefined;
  const totalLength = readU16(bytes, start + IPV4_TOTAL_LEN);
  const payloadEnd = totalLength < hlen ? end : Math.min(end, start + totalLength);
  const ff = readU16(bytes, start + IPV4_FLAGS_FRAG);
  const fragmentOffset = ff & IPV4_FRAG_OFFSET_MASK;
  const protocol = bytes[start + IPV4_PROTOCOL]!;
  const ps = start + hlen;
  let payload: L4Payload | undefined;
  if (fragmentOffset === 0) {
    if (protocol === IPPROTO_TCP) payload = parseTcpSegment(bytes, ps, payloadEnd);
    else if (protocol === IPPROTO_UDP) payload = parseUdpDatagram(bytes, ps, payloadEnd);
    else if (protocol === IPPROTO_ICMP) payload = parseIcmpMessage(bytes, ps, payloadEnd);
    else if (protocol === IPPROTO_IPIP) payload = parseIpv4Packet(bytes, ps, payloadEnd);
  }
  payload ??= { kind: 'raw', bytes: bytes.subarray(ps, payloadEnd) };
  const base = {
    kind: 'ipv4' as const,
    tos: bytes[start + IPV4_TOS]!,
    id: readU16(bytes, start + IPV4_ID),
    dontFragment: (ff & IPV4_FLAG_DF) !== 0,
    moreFragments: (ff & IPV4_FLAG_MF) !== 0,
    fragmentOffset,
    ttl: bytes[start + IPV4_TTL]!,
    protocol,
    src: ipv4FromBytes(bytes, start + IPV4_SRC),
    dst: ipv4FromBytes(bytes, start + IPV4_DST),
    checksum: readU16(bytes, start + IPV4_CHECKSUM),
  };
  const withOptions = hlen > IPV4_HEADER_LEN ? { ...base, options: bytes.subarray(start + 20, start + hlen) } : base;
  return hlen + l4PayloadLength(payload) === totalLength
    ? { ...withOptions, payload }
    : { ...withOptions, totalLength, payload };
}

export function l4PayloadLength(p: L4Payload): number {
  switch (p.kind) {
    case 'tcp':
      return tcpSegmentLength(p);
    case 'udp':
      return udpDatagramLength(p);
    case 'icmp':
      return icmpMessageLength(p);
    case 'ipv4':
      return ipv4PacketLength(p);
    case 'raw':
      return p.bytes.length;
    default:
      return assertNever(p, 'L4 payload');
  }
}

function optionsLength(p: Ipv4Packet): number {
  const n = p.options?.length ?? 0;
  const padded = (n + 3) & ~3;
  if (padded > IPV4_MAX_OPTIONS_LEN) throw new RangeError(`IPv4 options too long: ${n} bytes`);
  return padded;
}

/** The number of bytes `writeIpv4Packet` writes (independent of a `totalLength` override). */
export function ipv4PacketLength(p: Ipv4Packet): number {
  return IPV4_HEADER_LEN + optionsLength(p) + l4PayloadLength(p.payload);
}

/** Writes the packet at `offset`; returns the number of bytes written. Options are zero-padded to 4 bytes. */
export function writeIpv4Packet(p: Ipv4Packet, buf: Uint8Array, offset: number): number {
  const hlen = IPV4_HEADER_LEN + optionsLength(p);
  const ps = offset + hlen;
  let payloadLen: number;
  const pl = p.payload;
  switch (pl.kind) {
    case 'tcp':
      payloadLen = writeTcpSegment(pl, buf, ps, p.src, p.dst);
      break;
    case 'udp':
      payloadLen = writeUdpDatagram(pl, buf, ps, p.src, p.dst);
      break;
    case 'icmp':
      payloadLen = writeIcmpMessage(pl, buf, ps);
      break;
    case 'ipv4':
      payloadLen = writeIpv4Packet(pl, buf, ps);
      break;
    case 'raw':
      buf.set(pl.bytes, ps);
      payloadLen = pl.bytes.length;
      break;
    default:
      return assertNever(pl, 'L4 payload');
  }
  buf[offset + IPV4_VER_IHL] = 0x40 | (hlen >>> 2);
  buf[offset + IPV4_TOS] = p.tos;
  writeU16(buf, offset + IPV4_TOTAL_LEN, p.totalLength ?? hlen + payloadLen);
  writeU16(buf, offset + IPV4_ID, p.id);
  writeU16(
    buf,
    offset + IPV4_FLAGS_FRAG,
    (p.dontFragment ? IPV4_FLAG_DF : 0) | (p.moreFragments ? IPV4_FLAG_MF : 0) | (p.fragmentOffset & 0x1fff),
  );
  buf[offset + IPV4_TTL] = p.ttl;
  buf[offset + IPV4_PROTOCOL] = p.protocol;
  writeU32(buf, offset + IPV4_SRC, p.src);
  writeU32(buf, offset + IPV4_DST, p.dst);
  if (p.options) {
    buf.set(p.options, offset + IPV4_HEADER_LEN);
    buf.fill(0, offset + IPV4_HEADER_LEN + p.options.length, ps);
  }
  let sum = p.checksum;
  if (sum === undefined) {
    writeU16(buf, offset + IPV4_CHECKSUM, 0);
    sum = internetChecksum(buf, offset, ps);
  }
  writeU16(buf, offset + IPV4_CHECKSUM, sum);
  return hlen + payloadLen;
}

export function emitIpv4Packet(p: Ipv4Packet): Uint8Array {
  const buf = new Uint8Array(ipv4PacketLength(p));
  writeIpv4Packet(p, buf, 0);
  return buf;
}
