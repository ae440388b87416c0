/** Mutations of seed inputs for the fuzz driver: byte-level and line-level, driven by a seeded PRNG (reproducible). */
import { Xorshift32 } from '../../src/ipvs/workload.ts';

/** A seeded generator: the same seed gives the same cases. */
export class Rng extends Xorshift32 {
  int(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
  pick<T>(a: readonly T[]): T {
    return a[this.int(a.length)]!;
  }
}

/** Tokens that broke readers before (issue 15) or are classic trouble. */
const TOKENS = [
  '4294967295',
  '2147483647',
  '-1',
  '99999999999999999999999',
  '/33',
  '0x',
  'NaN',
  '../../../../etc/passwd',
  '/dev/zero',
  '*a',
  '&a [*a, *a, *a]',
  '<!DOCTYPE x [<!ENTITY e "e">]>',
  '<![CDATA[<!DOCTYPE]]>',
  '\uFEFF',
  '\0',
  '\r',
  '\r\n',
  '\t',
  '%s%n',
  "'; touch /tmp/lvsdoctor-fuzz-pwned; '",
  '$(touch /tmp/lvsdoctor-fuzz-pwned)',
  '\u00e9\u{1F600}',
  '\uFFFD',
  'length 4294967295',
  'length 2147483647',
  ': ',
  '- ',
  '{',
  '}',
  '[',
  ']',
  '<',
  '>',
  '"',
  "'",
  '::',
  ',',
];

export type Mutation = (b: Uint8Array, r: Rng) => Uint8Array;

const enc = new TextEncoder();
const cat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/** Line boundaries of a buffer (start offsets, with the end as the last). */
function lineStarts(b: Uint8Array): number[] {
  const s = [0];
  for (let i = 0; i < b.length; i++) if (b[i] === 10) s.push(i + 1);
  if (s.at(-1) !== b.length) s.push(b.length);
  return s;
}

function randomLine(b: Uint8Array, r: Rng): [number, number] {
  const s = lineStarts(b);
  const i = r.int(Math.max(1, s.length - 1));
  return [s[i]!, s[i + 1] ?? b.length];
}

export const MUTATIONS: Readonly<Record<string, Mutation>> = {
  flipBits(b, r) {
    const out = b.slice();
    const n = 1 + r.int(8);
    for (let i = 0; i < n && out.length > 0; i++) {
      const at = r.int(out.length);
      out[at] = out[at]! ^ (1 << r.int(8));
    }
    return out;
  },
  randomBytes(b, r) {
    const out = b.slice();
    const n = 1 + r.int(16);
    for (let i = 0; i < n && out.length > 0; i++) out[r.int(out.length)] = r.int(256);
    return out;
  },
  insertToken(b, r) {
    const at = r.int(b.length + 1);
    return cat(b.subarray(0, at), enc.encode(r.pick(TOKENS)), b.subarray(at));
  },
  replaceNumber(b, r) {
    const text = new TextDecoder().decode(b);
    const nums = [...text.matchAll(/\d+/g)];
    if (nums.length === 0) return MUTATIONS.insertToken!(b, r);
    const m = r.pick(nums);
    const to = r.pick(['4294967295', '2147483647', '0', '65536', '256', '-1', '1e308', '99999999999999999999', '33']);
    return enc.encode(text.slice(0, m.index) + to + text.slice(m.index! + m[0].length));
  },
  truncate(b, r) {
    return b.subarray(0, r.int(b.length + 1));
  },
  deleteLine(b, r) {
    const [s, e] = randomLine(b, r);
    return cat(b.subarray(0, s), b.subarray(e));
  },
  duplicateLine(b, r) {
    const [s, e] = randomLine(b, r);
    const line = b.subarray(s, e);
    const n = 2 + r.int(300);
    return cat(b.subarray(0, e), ...Array.from({ length: n }, () => line), b.subarray(e));
  },
  swapLines(b, r) {
    const [s1, e1] = randomLine(b, r);
    const [s2, e2] = randomLine(b, r);
    if (s2 < e1) return b;
    return cat(b.subarray(0, s1), b.subarray(s2, e2), b.subarray(e1, s2), b.subarray(s1, e1), b.subarray(e2));
  },
  longRun(b, r) {
    const at = r.int(b.length + 1);
    const ch = r.pick([' ', '\t', 'a', '0', '<a>', '-', '[', '{', '/', ':', '.']);
    return cat(b.subarray(0, at), enc.encode(ch.repeat(1000 + r.int(20000))), b.subarray(at));
  },
  crLines(b) {
    return enc.encode(new TextDecoder().decode(b).replace(/\r?\n/g, '\r'));
  },
  splice(b, r) {
    const a = r.int(b.length + 1);
    const c = r.int(b.length + 1);
    const [lo, hi] = a < c ? [a, c] : [c, a];
    const at = r.int(b.length + 1);
    return cat(b.subarray(0, at), b.subarray(lo, hi), b.subarray(at));
  },
};

/** One to three mutations chosen at random. */
export function mutate(seed: Uint8Array, r: Rng): { bytes: Uint8Array; ops: string[] } {
  const names = Object.keys(MUTATIONS);
  let b = seed;
  const ops: string[] = [];
  const n = 1 + r.int(3);
  for (let i = 0; i < n; i++) {
    const name = r.pick(names);
    ops.push(name);
    b = MUTATIONS[name]!(b, r);
  }
  return { bytes: b, ops };
}
