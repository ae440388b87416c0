/** IPv6 addresses as canonical RFC 5952 strings with a brand, usable as Map keys. */
export type Ipv6 = string & { readonly __brand: 'Ipv6' };

function parseGroups(text: string): number[] | undefined {
  if (text === '') return [];
  const out: number[] = [];
  const parts = text.split(':');
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (i === parts.length - 1 && p.includes('.')) {
      const q = p.split('.');
      if (q.length !== 4 || q.some((x) => !/^(0|[1-9][0-9]{0,2})$/.test(x) || Number(x) > 255)) return undefined;
      out.push(Number(q[0]) * 256 + Number(q[1]), Number(q[2]) * 256 + Number(q[3]));
      continue;
    }
    if (!/^[0-9A-Fa-f]{1,4}$/.test(p)) return undefined;
    out.push(Number.parseInt(p, 16));
  }
  return out;
}

export function ipv6ToGroups(a: Ipv6): number[] {
  return parseIpv6Groups(a)!;
}

function parseIpv6Groups(text: string): number[] | undefined {
  const dbl = text.indexOf('::');
  if (dbl >= 0) {
    if (text.indexOf('::', dbl + 1) >= 0) return undefined;
    const head = parseGroups(text.slice(0, dbl));
    const tail = parseGroups(text.slice(dbl + 2));
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const g = parseGroups(text);
  return g && g.length === 8 ? g : undefined;
}

export function formatIpv6Groups(g: readonly number[]): Ipv6 {
  // RFC 5952: compress the longest run (≥ 2) of zero groups, the first one on ties.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] === 0) {
      let j = i;
      while (j < 8 && g[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    } else i++;
  }
  const hex = g.map((x) => x.toString(16));
  if (bestStart < 0) return hex.join(':') as Ipv6;
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}` as Ipv6;
}

export function parseIpv6(text: string): Ipv6 | undefined {
  const g = parseIpv6Groups(text);
  return g ? formatIpv6Groups(g) : undefined;
}

export function ipv6(text: string): Ipv6 {
  const v = parseIpv6(text);
  if (v === undefined) throw new Error(`not an IPv6 address: ${text}`);
  return v;
}

export function ipv6ToBytes(a: Ipv6): Uint8Array {
  const g = ipv6ToGroups(a);
  const out = new Uint8Array(16);
  g.forEach((x, i) => {
    out[i * 2] = x >> 8;
    out[i * 2 + 1] = x & 255;
  });
  return out;
}

export function ipv6FromBytes(b: Uint8Array, offset = 0): Ipv6 {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push((b[offset + i * 2]! << 8) | b[offset + i * 2 + 1]!);
  return formatIpv6Groups(g);
}
