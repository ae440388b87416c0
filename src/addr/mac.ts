/** MAC addresses as canonical lower-case `aa:bb:cc:dd:ee:ff` strings with a brand, usable as Map keys. */
export type Mac = string & { readonly __brand: 'Mac' };

const MAC_RE =
  /^([0-9A-Fa-f]{1,2})[:-]([0-9A-Fa-f]{1,2})[:-]([0-9A-Fa-f]{1,2})[:-]([0-9A-Fa-f]{1,2})[:-]([0-9A-Fa-f]{1,2})[:-]([0-9A-Fa-f]{1,2})$/;

/**
 * Parses `02:00:73:b6:53:c8`, `02-00-73-B6-53-C8` and the one-digit groups that legacy ebtables prints (`2:0:73:b6:53:c8`).
 * The separator must be consistent.
 */
export function parseMac(text: string): Mac | undefined {
  if (isCanonicalMac(text)) return text as Mac;
  const m = MAC_RE.exec(text);
  if (!m) return undefined;
  const sep = text.includes(':') ? ':' : '-';
  if (text.includes(sep === ':' ? '-' : ':')) return undefined;
  return m
    .slice(1)
    .map((g) => g.toLowerCase().padStart(2, '0'))
    .join(':') as Mac;
}

/** `aa:bb:cc:dd:ee:ff` in lower case (performance: the usual form, taken as it is without a regular expression). */
function isCanonicalMac(t: string): boolean {
  if (t.length !== 17) return false;
  for (let i = 0; i < 17; i++) {
    const c = t.charCodeAt(i);
    if (i % 3 === 2) {
      if (c !== 58) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

export function mac(text: string): Mac {
  const v = parseMac(text);
  if (v === undefined) throw new Error(`not a MAC address: ${text}`);
  return v;
}

export function macToBytes(m: Mac): Uint8Array {
  const out = new Uint8Array(6);
  for (let i = 0; i < 6; i++) out[i] = Number.parseInt(m.slice(i * 3, i * 3 + 2), 16);
  return out;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function macFromBytes(b: Uint8Array, offset = 0): Mac {
  return `${HEX[b[offset]!]}:${HEX[b[offset + 1]!]}:${HEX[b[offset + 2]!]}:${HEX[b[offset + 3]!]}:${HEX[b[offset + 4]!]}:${HEX[b[offset + 5]!]}` as Mac;
}

/** Legacy ebtables prints MACs without leading zeros in each group (`2:0:73:b6:53:c8`). */
export function formatMacShort(m: Mac): string {
  return m
    .split(':')
    .map((g) => g.replace(/^0(?=.)/, ''))
    .join(':');
}

export const MAC_BROADCAST = 'ff:ff:ff:ff:ff:ff' as Mac;
export const MAC_ZERO = '00:00:00:00:00:00' as Mac;

/** The group bit is the low bit of the first octet: its second hex digit is odd. */
export function isMulticastMac(m: Mac): boolean {
  const c = m.charCodeAt(1);
  // '0'-'9' = 48-57, 'a'-'f' = 97-102 (canonical lower case): odd digit values are odd code points for 0-9, even for a-f.
  return c <= 57 ? (c & 1) === 1 : (c & 1) === 0;
}

/** Compares under a mask: bits set in `mask` must be equal. */
export function macMatches(value: Mac, want: Mac, mask?: Mac): boolean {
  if (mask === undefined) return value === want;
  const v = macToBytes(value);
  const w = macToBytes(want);
  const k = macToBytes(mask);
  for (let i = 0; i < 6; i++) if ((v[i]! & k[i]!) !== (w[i]! & k[i]!)) return false;
  return true;
}
