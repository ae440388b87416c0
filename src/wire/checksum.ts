/**
 * The Internet checksum (RFC 1071) over byte ranges, plus the IPv4 pseudo-header used by TCP and UDP.
 *
 * Sums are kept unfolded (plain numbers well below 2^53) so ranges can be added together before folding.
 */
import type { Ipv4 } from '../addr/ipv4.ts';

/** Adds the 16-bit big-endian words of `bytes[start, end)` to `initial`; an odd last byte is padded with zero. */
export function sumWords(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  let sum = initial;
  let i = start;
  const last = end - 1;
  for (; i < last; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (i < end) sum += bytes[i]! << 8;
  return sum;
}

/** Folds carries into 16 bits and complements: the value to store in a checksum field. */
export function finishChecksum(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return ~s & 0xffff;
}

/** The checksum of a byte range (0 when a range that contains its own correct checksum is verified). */
export function internetChecksum(bytes: Uint8Array, start = 0, end = bytes.length): number {
  return finishChecksum(sumWords(bytes, start, end));
}

/** The unfolded sum of the IPv4 pseudo-header: source, destination, zero + protocol, upper-layer length. */
export function pseudoHeaderSum(src: Ipv4, dst: Ipv4, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + (length & 0xffff);
}

/**
 * What the checksum field should have held, given the value found and the verification result over the whole
 * range (non-zero when wrong): the one's-complement sum of both, as tcpdump reports in `(incorrect -> 0x....)`.
 */
export function expectedChecksum(found: number, verification: number): number {
  let s = found + verification;
  s = (s & 0xffff) + (s >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return s & 0xffff;
}
