import { formatIpv4, type Ipv4, parseIpv4 } from './ipv4.ts';

/** An IPv4 prefix such as 192.0.2.0/24. `addr` keeps the address as written (host bits may be set, as in `ip addr`). */
export interface Ipv4Prefix {
  readonly addr: Ipv4;
  readonly len: number;
}

export function ipv4Mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function parseIpv4Prefix(text: string): Ipv4Prefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) {
    const a = parseIpv4(text);
    return a === undefined ? undefined : { addr: a, len: 32 };
  }
  const a = parseIpv4(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  if (a === undefined || !/^(0|[1-9][0-9]?)$/.test(lenText)) return undefined;
  const len = Number(lenText);
  if (len > 32) return undefined;
  return { addr: a, len };
}

export function prefixContains(p: Ipv4Prefix, a: Ipv4): boolean {
  const m = ipv4Mask(p.len);
  return (p.addr & m) >>> 0 === (a & m) >>> 0;
}

export function prefixNetwork(p: Ipv4Prefix): Ipv4 {
  return ((p.addr & ipv4Mask(p.len)) >>> 0) as Ipv4;
}

export function formatIpv4Prefix(p: Ipv4Prefix): string {
  return `${formatIpv4(p.addr)}/${p.len}`;
}
