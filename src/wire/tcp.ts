/** TCP (RFC 9293) with the options Linux sends (mss, sackOK, timestamps, nop, wscale, sack, eol) and unknown ones. */

import type { Ipv4 } from '../addr/ipv4.ts';
import { assertNever } from '../source/assert-never.ts';
import { readU16, readU32, writeU16, writeU32 } from './bytes.ts';
import { finishChecksum, pseudoHeaderSum, sumWords } from './checksum.ts';
import { IPPROTO_TCP, type TcpOption, type TcpSegment } from './types.ts';

export const TCP_SRC_PORT = 0;
export const TCP_DST_PORT = 2;
export const TCP_SEQ = 4;
export const TCP_ACK_NUM = 8;
export const TCP_DATA_OFFSET = 12;
export const TCP_FLAGS = 13;
export const TCP_WINDOW = 14;
export const TCP_CHECKSUM = 16;
export const TCP_URGENT = 18;
export const TCP_HEADER_LEN = 20;
export const TCP_MAX_OPTIONS_LEN = 40;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MSS = 2;
export const TCPOPT_WSCALE = 3;
export const TCPOPT_SACK_PERMITTED = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;

const EOL: TcpOption = Object.freeze({ kind: 'eol' });
const NOP: TcpOption = Object.freeze({ kind: 'nop' });
const SACK_PERMITTED: TcpOption = Object.freeze({ kind: 'sack-permitted' });

/**
 * Parses the options area `bytes[start, end)`. Parsing stops at `eol` (the bytes after it are padding). Known kinds
 * with an unexpected length become `unknown` options. A malformed length (< 2 or past the end) ends the list with an
 * `unknown` option holding the remaining bytes — the one case that does not round-trip.
 */
export function parseTcpOptions(bytes: Uint8Array, start: number, end: number): TcpOption[] {
  const out: TcpOption[] = [];
  let i = start;
  while (i < end) {
    const kind = bytes[i]!;
    if (kind === TCPOPT_EOL) {
      out.push(EOL);
      break;
    }
    if (kind === TCPOPT_NOP) {
      out.push(NOP);
      i++;
      continue;
    }
    const len = i + 1 < end ? bytes[i + 1]! : 0;
    if (len < 2 || i + len > end) {
      // Keep the remaining bytes when that does not grow the header (a lone trailing kind byte is dropped).
      if (i + 2 <= end) out.push({ kind: 'unknown', type: kind, data: bytes.subarray(i + 2, end) });
      break;
    }
    const d = i + 2;
    if (kind === TCPOPT_MSS && len === 4) out.push({ kind: 'mss', value: readU16(bytes, d) });
    else if (kind === TCPOPT_WSCALE && len === 3) out.push({ kind: 'wscale', shift: bytes[d]! });
    else if (kind === TCPOPT_SACK_PERMITTED && len === 2) out.push(SACK_PERMITTED);
    else if (kind === TCPOPT_TIMESTAMP && len === 10)
      out.push({ kind: 'timestamp', val: readU32(bytes, d), ecr: readU32(bytes, d + 4) });
    else if (kind === TCPOPT_SACK && (len - 2) % 8 === 0) {
      const blocks: (readonly [number, number])[] = [];
      for (let j = d; j < i + len; j += 8) blocks.push([readU32(bytes, j), readU32(bytes, j + 4)]);
      out.push({ kind: 'sack', blocks });
    } else out.push({ kind: 'unknown', type: kind, data: bytes.subarray(d, i + len) });
    i += len;
  }
  return out;
}

export function tcpOptionLength(o: TcpOption): number {
  switch (o.kind) {
    case 'eol':
    case 'nop':
      return 1;
    case 'mss':
      return 4;
    case 'wscale':
      return 3;
    case 'sack-permitted':
      return 2;
    case 'sack':
      return 2 + 8 * o.blocks.length;
    case 'timestamp':
      return 10;
    case 'unknown':
      return 2 + o.data.length;
    default:
      return assertNever(o, 'TCP option');
  }
}

/** Encoded options length, zero-padded to a multiple of 4. */
export function tcpOptionsLength(options: readonly TcpOption[]): number {
  let n = 0;
  for (const o of options) n += tcpOptionLength(o);
  const padded = (n + 3) & ~3;
  if (padded > TCP_MAX_OPTIONS_LEN) throw new RangeError(`TCP options too long: ${n} bytes`);
  return padded;
}

function writeTcpOption(o: TcpOption, buf: Uint8Array, off: number): number {
  switch (o.kind) {
    case 'eol':
      buf[off] = TCPOPT_EOL;
      return 1;
    case 'nop':
      buf[off] = TCPOPT_NOP;
      return 1;
    case 'mss':
      buf[off] = TCPOPT_MSS;
      buf[off + 1] = 4;
      writeU16(buf, off + 2, o.value);
      return 4;
    case 'wscale':
      buf[off] = TCPOPT_WSCALE;
      buf[off + 1] = 3;
      buf[off + 2] = o.shift;
      return 3;
    case 'sack-permitted':
      buf[off] = TCPOPT_SACK_PERMITTED;
      buf[off + 1] = 2;
      return 2;
    case 'sack': {
      buf[off] = TCPOPT_SACK;
      buf[off + 1] = 2 + 8 * o.blocks.length;
      let p = off + 2;
      for (const [l, r] of o.blocks) {
        writeU32(buf, p, l);
        writeU32(buf, p + 4, r);
        p += 8;
      }
      return p - off;
    }
    case 'timestamp':
      buf[off] = TCPOPT_TIMESTAMP;
      buf[off + 1] = 10;
      writeU32(buf, off + 2, o.val);
      writeU32(buf, off + 6, o.ecr);
      return 10;
    case 'unknown':
      buf[off] = o.type;
      buf[off + 1] = 2 + o.data.length;
      buf.set(o.data, off + 2);
      return 2 + o.data.length;
    default:
      return assertNever(o, 'TCP option');
  }
}

/** Parses a TCP segment in `bytes[start, end)`; undefined when the header is truncated or its data offset invalid. */
export function parseTcpSegment(bytes: Uint8Array, start = 0, end = bytes.length): TcpSegment | undefined {
  if (end - start < TCP_HEADER_LEN) return undefined;
  const hlen = (bytes[start + TCP_DATA_OFFSET]! >>> 4) * 4;
  if (hlen < TCP_HEADER_LEN || start + hlen > end) return undefined;
  return {
    kind: 'tcp',
    srcPort: readU16(bytes, start + TCP_SRC_PORT),
    dstPort: readU16(bytes, start + TCP_DST_PORT),
    seq: readU32(bytes, start + TCP_SEQ),
    ack: readU32(bytes, start + TCP_ACK_NUM),
    flags: bytes[start + TCP_FLAGS]!,
    window: readU16(bytes, start + TCP_WINDOW),
    urgent: readU16(bytes, start + TCP_URGENT),
    options: hlen > TCP_HEADER_LEN ? parseTcpOptions(bytes, start + TCP_HEADER_LEN, start + hlen) : [],
    payload: bytes.subarray(start + hlen, end),
    checksum: readU16(bytes, start + TCP_CHECKSUM),
  };
}

export function tcpSegmentLength(s: TcpSegment): number {
  return TCP_HEADER_LEN + tcpOptionsLength(s.options) + s.payload.length;
}

/** Writes the segment at `offset`, computing the checksum over the IPv4 pseudo-header unless one is given. */
export function writeTcpSegment(s: TcpSegment, buf: Uint8Array, offset: number, src: Ipv4, dst: Ipv4): number {
  const optLen = tcpOptionsLength(s.options);
  const hlen = TCP_HEADER_LEN + optLen;
  writeU16(buf, offset + TCP_SRC_PORT, s.srcPort);
  writeU16(buf, offset + TCP_DST_PORT, s.dstPort);
  writeU32(buf, offset + TCP_SEQ, s.seq);
  writeU32(buf, offset + TCP_ACK_NUM, s.ack);
  buf[offset + TCP_DATA_OFFSET] = (hlen >>> 2) << 4;
  buf[offset + TCP_FLAGS] = s.flags;
  writeU16(buf, offset + TCP_WINDOW, s.window);
  writeU16(buf, offset + TCP_CHECKSUM, 0);
  writeU16(buf, offset + TCP_URGENT, s.urgent);
  let p = offset + TCP_HEADER_LEN;
  for (const o of s.options) p += writeTcpOption(o, buf, p);
  buf.fill(0, p, offset + hlen);
  buf.set(s.payload, offset + hlen);
  const len = hlen + s.payload.length;
  const sum =
    s.checksum ?? finishChecksum(sumWords(buf, offset, offset + len, pseudoHeaderSum(src, dst, IPPROTO_TCP, len)));
  writeU16(buf, offset + TCP_CHECKSUM, sum);
  return len;
}

export function emitTcpSegment(s: TcpSegment, src: Ipv4, dst: Ipv4): Uint8Array {
  const buf = new Uint8Array(tcpSegmentLength(s));
  writeTcpSegment(s, buf, 0, src, dst);
  return buf;
}
