/**
 * The kernel's `hsiphash` on 64-bit machines (lib/siphash.c): SipHash-1-3 with a 128-bit key, output truncated to
 * 32 bits. Only the one-word form the IPVS `mh` scheduler uses (`hsiphash(&v, 4, key)` = `hsiphash_1u32(v, key)` on
 * little-endian) is implemented. 64-bit lanes are kept as pairs of 32-bit halves in local variables, so a call
 * allocates nothing (no BigInt on the hot path).
 */

/** A 128-bit hsiphash key as two 64-bit words, each given as high and low 32-bit halves. */
export interface HsiphashKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

/** Key with both 64-bit words equal to an unsigned 32-bit value (how ip_vs_mh.c's `generate_hash_secret` fills them). */
export function hsiphashKey(k0: number, k1: number = k0): HsiphashKey {
  const a = k0 >= 0x1_0000_0000 ? Math.floor(k0 / 0x1_0000_0000) : 0;
  const b = k1 >= 0x1_0000_0000 ? Math.floor(k1 / 0x1_0000_0000) : 0;
  return { k0hi: a >>> 0, k0lo: k0 >>> 0, k1hi: b >>> 0, k1lo: k1 >>> 0 };
}

/** `hsiphash_1u32(first, key)` of a 64-bit kernel: an unsigned 32-bit result. */
export function hsiphash1u32(first: number, key: HsiphashKey): number {
  return hsiphash1u32Int(first, key) >>> 0;
}

/**
 * The same hash as a signed 32-bit integer (same bits). Hot paths use this form and convert with `>>> 0` where
 * they use it, so that V8 never boxes a return value above 2^31 into a heap number.
 */
export function hsiphash1u32Int(first: number, key: HsiphashKey): number {
  // v0..v3 = "somepseudorandomlygeneratedbytes" ^ key
  let v0h = 0x736f6d65 ^ key.k0hi;
  let v0l = 0x70736575 ^ key.k0lo;
  let v1h = 0x646f7261 ^ key.k1hi;
  let v1l = 0x6e646f6d ^ key.k1lo;
  let v2h = 0x6c796765 ^ key.k0hi;
  let v2l = 0x6e657261 ^ key.k0lo;
  let v3h = 0x74656462 ^ key.k1hi;
  let v3l = 0x79746573 ^ key.k1lo;
  // b = (len 4) << 56 | first
  const bh = 0x04000000;
  const bl = first | 0;
  v3h ^= bh;
  v3l ^= bl;
  let s: number;
  let t: number;
  for (let round = 0; round < 4; round++) {
    if (round === 1) {
      v0h ^= bh;
      v0l ^= bl;
      v2l ^= 0xff;
    }
    // v0 += v1
    s = (v0l + v1l) | 0;
    v0h = (v0h + v1h + (s >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
    v0l = s;
    // v1 = rotl(v1, 13)
    t = v1h;
    v1h = (v1h << 13) | (v1l >>> 19);
    v1l = (v1l << 13) | (t >>> 19);
    v1h ^= v0h;
    v1l ^= v0l;
    // v0 = rotl(v0, 32)
    t = v0h;
    v0h = v0l;
    v0l = t;
    // v2 += v3
    s = (v2l + v3l) | 0;
    v2h = (v2h + v3h + (s >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
    v2l = s;
    // v3 = rotl(v3, 16)
    t = v3h;
    v3h = (v3h << 16) | (v3l >>> 16);
    v3l = (v3l << 16) | (t >>> 16);
    v3h ^= v2h;
    v3l ^= v2l;
    // v0 += v3
    s = (v0l + v3l) | 0;
    v0h = (v0h + v3h + (s >>> 0 < v0l >>> 0 ? 1 : 0)) | 0;
    v0l = s;
    // v3 = rotl(v3, 21)
    t = v3h;
    v3h = (v3h << 21) | (v3l >>> 11);
    v3l = (v3l << 21) | (t >>> 11);
    v3h ^= v0h;
    v3l ^= v0l;
    // v2 += v1
    s = (v2l + v1l) | 0;
    v2h = (v2h + v1h + (s >>> 0 < v2l >>> 0 ? 1 : 0)) | 0;
    v2l = s;
    // v1 = rotl(v1, 17)
    t = v1h;
    v1h = (v1h << 17) | (v1l >>> 15);
    v1l = (v1l << 17) | (t >>> 15);
    v1h ^= v2h;
    v1l ^= v2l;
    // v2 = rotl(v2, 32)
    t = v2h;
    v2h = v2l;
    v2l = t;
  }
  return v0l ^ v1l ^ v2l ^ v3l;
}
