/** UDP (RFC 768). A computed checksum of 0 is sent as 0xffff; an explicit `checksum: 0` means "no checksum". */
import type { Ipv4 } from '../addr/ipv4.ts';
import { readU16, writeU16 } from './bytes.ts';
import { finishChecksum, pseudoHeaderSum, sumWords } from './checksum.ts';
import { IPPROTO_UDP, type UdpDatagram } from './types.ts';

export const UDP_SRC_PORT = 0;
export const UDP_DST_PORT = 2;
export const UDP_LENGTH = 4;
export const UDP_CHECKSUM = 6;
export const UDP_HEADER_LEN = 8;

/**
 * Parses a UDP datagram in `bytes[start, end)`; undefined when shorter than a header. The payload is every byte
 * after the header (even past a smaller length field); `length` is filled only when the field disagrees with it.
 */
export function parseUdpDatagram(bytes: Uint8Array, start = 0, end = bytes.length): UdpDatagram | undefined {
  if (end - start < UDP_HEADER_LEN) return undefined;
  const length = readU16(bytes, start + UDP_LENGTH);
  const base = {
    kind: 'udp' as const,
    srcPort: readU16(bytes, start + UDP_SRC_PORT),
    dstPort: readU16(bytes, start + UDP_DST_PORT),
    payload: bytes.subarray(start + UDP_HEADER_LEN, end),
    checksum: readU16(bytes, start + UDP_CHECKSUM),
  };
  return length === end - start ? base : { ...base, length };
}

export function udpDatagramLength(d: UdpDatagram): number {
  return UDP_HEADER_LEN + d.payload.length;
}

export function writeUdpDatagram(d: UdpDatagram, buf: Uint8Array, offset: number, src: Ipv4, dst: Ipv4): number {
  const len = UDP_HEADER_LEN + d.payload.length;
  writeU16(buf, offset + UDP_SRC_PORT, d.srcPort);
  writeU16(buf, offset + UDP_DST_PORT, d.dstPort);
  writeU16(buf, offset + UDP_LENGTH, d.length ?? len);
  writeU16(buf, offset + UDP_CHECKSUM, 0);
  buf.set(d.payload, offset + UDP_HEADER_LEN);
  let sum = d.checksum;
  if (sum === undefined) {
    // The pseudo-header carries the length field's value, as receivers verify it.
    sum = finishChecksum(sumWords(buf, offset, offset + len, pseudoHeaderSum(src, dst, IPPROTO_UDP, d.length ?? len)));
    if (sum === 0) sum = 0xffff;
  }
  writeU16(buf, offset + UDP_CHECKSUM, sum);
  return len;
}

export function emitUdpDatagram(d: UdpDatagram, src: Ipv4, dst: Ipv4): Uint8Array {
  const buf = new Uint8Array(udpDatagramLength(d));
  writeUdpDatagram(d, buf, 0, src, dst);
  return buf;
}
