/**
 * `node:crypto`'s `createHash` for the offline report's what-if engine: SHA-1 and SHA-256 (FIPS 180-4) of UTF-8
 * text, digested as hex or base64 — the two hashes the domain code names files and ipsets with. The page's own
 * crypto.subtle is asynchronous; the domain code is not. crypto.test.ts compares both with node:crypto.
 */

const rotl = (x: number, n: number) => (x << n) | (x >>> (32 - n));
const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** The message padded to 64-byte blocks, as big-endian 32-bit words. */
function blocks(bytes: Uint8Array): Uint32Array {
  const n = Math.ceil((bytes.length + 9) / 64) * 64;
  const buf = new Uint8Array(n);
  buf.set(bytes);
  buf[bytes.length] = 0x80;
  const bits = bytes.length * 8;
  const view = new DataView(buf.buffer);
  view.setUint32(n - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(n - 4, bits >>> 0);
  const words = new Uint32Array(n / 4);
  for (let k = 0; k < words.length; k++) words[k] = view.getUint32(k * 4);
  return words;
}

function sha1(bytes: Uint8Array): number[] {
  const h = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0];
  const m = blocks(bytes);
  const w = new Uint32Array(80);
  for (let b = 0; b < m.length; b += 16) {
    for (let t = 0; t < 80; t++) w[t] = t < 16 ? m[b + t]! : rotl(w[t - 3]! ^ w[t - 8]! ^ w[t - 14]! ^ w[t - 16]!, 1);
    let [a, bb, c, d, e] = h as [number, number, number, number, number];
    for (let t = 0; t < 80; t++) {
      const f =
        t < 20 ? (bb & c) | (~bb & d) : t < 40 ? bb ^ c ^ d : t < 60 ? (bb & c) | (bb & d) | (c & d) : bb ^ c ^ d;
      const k = t < 20 ? 0x5a827999 : t < 40 ? 0x6ed9eba1 : t < 60 ? 0x8f1bbcdc : 0xca62c1d6;
      const tmp = (rotl(a, 5) + f + e + k + w[t]!) | 0;
      e = d;
      d = c;
      c = rotl(bb, 30);
      bb = a;
      a = tmp;
    }
    h[0] = (h[0]! + a) | 0;
    h[1] = (h[1]! + bb) | 0;
    h[2] = (h[2]! + c) | 0;
    h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0;
  }
  return h;
}

const K256 = [
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
  0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
  0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
  0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
  0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
  0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
  0xc67178f2,
];

function sha256(bytes: Uint8Array): number[] {
  const h = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  const m = blocks(bytes);
  const w = new Uint32Array(64);
  for (let b = 0; b < m.length; b += 16) {
    for (let t = 0; t < 64; t++) {
      if (t < 16) w[t] = m[b + t]!;
      else {
        const x = w[t - 15]!;
        const y = w[t - 2]!;
        const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
        const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
        w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
      }
    }
    let [a, bb, c, d, e, f, g, hh] = h as [number, number, number, number, number, number, number, number];
    for (let t = 0; t < 64; t++) {
      const t1 = (hh + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K256[t]! + w[t]!) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c))) | 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) | 0;
    }
    const v = [a, bb, c, d, e, f, g, hh];
    for (let k = 0; k < 8; k++) h[k] = (h[k]! + v[k]!) | 0;
  }
  return h;
}

function toBytes(words: readonly number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const view = new DataView(out.buffer);
  for (let k = 0; k < words.length; k++) view.setUint32(k * 4, words[k]! >>> 0);
  return out;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function base64(b: Uint8Array): string {
  let out = '';
  for (let k = 0; k < b.length; k += 3) {
    const n = (b[k]! << 16) | ((b[k + 1] ?? 0) << 8) | (b[k + 2] ?? 0);
    out += B64[(n >>> 18) & 63]! + B64[(n >>> 12) & 63]!;
    out += k + 1 < b.length ? B64[(n >>> 6) & 63]! : '=';
    out += k + 2 < b.length ? B64[n & 63]! : '=';
  }
  return out;
}

export interface Hash {
  update(data: string | Uint8Array): Hash;
  digest(encoding: 'hex' | 'base64'): string;
}

export function createHash(algorithm: string): Hash {
  const fn = algorithm === 'sha1' ? sha1 : algorithm === 'sha256' ? sha256 : undefined;
  if (!fn) throw new Error(`createHash: "${algorithm}" is not available in the offline report (sha1, sha256 are)`);
  const parts: Uint8Array[] = [];
  const hash: Hash = {
    update(data) {
      parts.push(typeof data === 'string' ? new TextEncoder().encode(data) : data);
      return hash;
    },
    digest(encoding) {
      const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const p of parts) {
        all.set(p, at);
        at += p.length;
      }
      const d = toBytes(fn(all));
      return encoding === 'hex' ? [...d].map((x) => x.toString(16).padStart(2, '0')).join('') : base64(d);
    },
  };
  return hash;
}
