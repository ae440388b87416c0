/** Small big-endian helpers shared by the protocol modules (no allocation). */
import type { Mac } from '../addr/mac.ts';

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return 0;
}

/** Writes a canonical `aa:bb:cc:dd:ee:ff` MAC without allocating. */
export function writeMac(b: Uint8Array, o: number, m: Mac): void {
  for (let i = 0; i < 6; i++) b[o + i] = (hexValue(m.charCodeAt(i * 3)) << 4) | hexValue(m.charCodeAt(i * 3 + 1));
}
