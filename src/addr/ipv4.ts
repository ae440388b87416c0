/** IPv4 addresses as immutable values: an unsigned 32-bit integer with a brand, usable as a Map key. */
export type Ipv4 = number & { readonly __brand: 'Ipv4' };

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Strict dotted-quad parser: four decimal octets 0–255, no leading zeros (`010.0.0.1` is rejected). */
export function parseIpv4(text: string): Ipv4 | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    value = value * 256 + n;
  }
  return value as Ipv4;
}

/** Parses a literal that is known to be valid (code and tests); throws on a bad literal. */
export function ipv4(text: string): Ipv4 {
  const v = parseIpv4(text);
  if (v === undefined) throw new Error(`not an IPv4 address: ${text}`);
  return v;
}

export function ipv4FromNumber(n: number): Ipv4 {
  return (n >>> 0) as Ipv4;
}

export function formatIpv4(a: Ipv4): string {
  return `${(a >>> 24) & 255}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
}

export function ipv4ToBytes(a: Ipv4): Uint8Array {
  return Uint8Array.of((a >>> 24) & 255, (a >>> 16) & 255, (a >>> 8) & 255, a & 255);
}

export function ipv4FromBytes(b: Uint8Array, offset = 0): Ipv4 {
  return (((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0) as Ipv4;
}

export const IPV4_ANY = 0 as Ipv4;
export const IPV4_BROADCAST = 0xffffffff as Ipv4;

export function isIpv4Multicast(a: Ipv4): boolean {
  return a >>> 28 === 0xe;
}
