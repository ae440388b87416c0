/** ICMP for IPv4 (RFC 792): type, code, the 4 "rest of header" bytes, and the payload (echo data or quoted packet). */
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { internetChecksum } from './checksum.ts';
import type { IcmpMessage } from './types.ts';

export const ICMP_TYPE = 0;
export const ICMP_CODE = 1;
export const ICMP_CHECKSUM = 2;
export const ICMP_REST = 4;
export const ICMP_HEADER_LEN = 8;

export const ICMP_ECHO_REPLY = 0;
export const ICMP_DEST_UNREACHABLE = 3;
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_REDIRECT = 5;
export const ICMP_ECHO_REQUEST = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETER_PROBLEM = 12;

export const ICMP_UNREACH_NET = 0;
export const ICMP_UNREACH_HOST = 1;
export const ICMP_UNREACH_PROTOCOL = 2;
export const ICMP_UNREACH_PORT = 3;
export const ICMP_UNREACH_NEEDFRAG = 4;
export const ICMP_UNREACH_ADMIN_PROHIBITED = 13;

/** `rest` for echo messages. */
export function icmpEchoRest(id: number, seq: number): number {
  return (((id & 0xffff) << 16) | (seq & 0xffff)) >>> 0;
}

/** Parses an ICMP message in `bytes[start, end)`; undefined when shorter than the 8-byte header. */
export function parseIcmpMessage(bytes: Uint8Array, start = 0, end = bytes.length): IcmpMessage | undefined {
  if (end - start < ICMP_HEADER_LEN) return undefined;
  return {
    kind: 'icmp',
    type: bytes[start + ICMP_TYPE]!,
    code: bytes[start + ICMP_CODE]!,
    rest: readU32(bytes, start + ICMP_REST),
    payload: bytes.subarray(start + ICMP_HEADER_LEN, end),
    checksum: readU16(bytes, start + ICMP_CHECKSUM),
  };
}

export function icmpMessageLength(m: IcmpMessage): number {
  return ICMP_HEADER_LEN + m.payload.length;
}

export function writeIcmpMessage(m: IcmpMessage, buf: Uint8Array, offset: number): number {
  const len = ICMP_HEADER_LEN + m.payload.length;
  buf[offset + ICMP_TYPE] = m.type;
  buf[offset + ICMP_CODE] = m.code;
  writeU16(buf, offset + ICMP_CHECKSUM, 0);
  writeU32(buf, offset + ICMP_REST, m.rest);
  buf.set(m.payload, offset + ICMP_HEADER_LEN);
  writeU16(buf, offset + ICMP_CHECKSUM, m.checksum ?? internetChecksum(buf, offset, offset + len));
  return len;
}

export function emitIcmpMessage(m: IcmpMessage): Uint8Array {
  const buf = new Uint8Array(icmpMessageLength(m));
  writeIcmpMessage(m, buf, 0);
  return buf;
}
