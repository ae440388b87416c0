/**
 * Correlation, identity (stage 1 of correlate.ts): the hashing and tables every stage uses, the columns each
 * sighting's key fields are kept in, sightings grouped into packets by key (duplicates and the generations of a frame
 * repeated at one point told apart) and directional tuples joined into flows (NAT).
 */

export const MAX_POINTS = 32;
const DUP_WINDOW_NS = 1_000_000;
const MAX_GENERATION_WALK = 64;
/** Sightings (not counting duplicates) one packet may have: a frame re-emitted at one point more often is a new one. */
const MAX_GROUP_SIGHTINGS = 4 * MAX_POINTS;
export const DIGEST_BYTES = 64;

export const K_TCP = 1;
export const K_UDP = 2;
export const K_ICMP = 3;
export const K_IP = 4;
export const K_ARP = 5;
export const K_OTHER = 6;

// ---------------------------------------------------------------------------------------------------------------
// Hashing (murmur3-style mixing of 32-bit words)

export function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export const SEED1 = 0x9747b28c | 0;
export const SEED2 = 0x2545f491 | 0;

/** Open-addressing table from 64-bit keys (two int32 hashes) to non-negative ints; no allocation per lookup. */
export class KeyTable {
  private mask: number;
  private ka: Int32Array;
  private kb: Int32Array;
  private val: Int32Array;
  private size = 0;

  constructor(capacity = 1024) {
    let cap = 1024;
    while (cap * 3 < capacity * 4) cap *= 2;
    this.mask = cap - 1;
    this.ka = new Int32Array(cap);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap).fill(-1);
  }

  get(a: number, b: number): number {
    const mask = this.mask;
    let i = fmix(a ^ Math.imul(b, 0x9e3779b1)) & mask;
    for (;;) {
      const v = this.val[i]!;
      if (v < 0) return -1;
      if (this.ka[i] === a && this.kb[i] === b) return v;
      i = (i + 1) & mask;
    }
  }

  set(a: number, b: number, v: number): void {
    // At most three quarters full (linear probing stays short with a mixed hash; half full would double the memory).
    if ((this.size + 1) * 4 > this.mask * 3) this.grow();
    const mask = this.mask;
    let i = fmix(a ^ Math.imul(b, 0x9e3779b1)) & mask;
    for (;;) {
      const cur = this.val[i]!;
      if (cur < 0) {
        this.ka[i] = a;
        this.kb[i] = b;
        this.val[i] = v;
        this.size++;
        return;
      }
      if (this.ka[i] === a && this.kb[i] === b) {
        this.val[i] = v;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  /** Empties the table; a table grown past 4096 slots starts small again (so clearing after each of many small uses is cheap). */
  clear(): void {
    if (this.size === 0) return;
    this.size = 0;
    if (this.mask + 1 > 4096) {
      this.mask = 1023;
      this.ka = new Int32Array(1024);
      this.kb = new Int32Array(1024);
      this.val = new Int32Array(1024).fill(-1);
    } else this.val.fill(-1);
  }

  private grow(): void {
    const { ka, kb, val } = this;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.ka = new Int32Array(cap);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap).fill(-1);
    this.size = 0;
    for (let i = 0; i < val.length; i++) if (val[i]! >= 0) this.set(ka[i]!, kb[i]!, val[i]!);
  }
}

/** Counts per (key, next point): a `KeyTable` to blocks of `MAX_POINTS` counters. */
export class CountTable {
  private readonly index = new KeyTable();
  private counts = new Int32Array(MAX_POINTS * 1024);
  private blocks = 0;

  add(a: number, b: number, p: number): void {
    let k = this.index.get(a, b);
    if (k < 0) {
      k = this.blocks++;
      if (this.blocks * MAX_POINTS > this.counts.length) {
        const bigger = new Int32Array(this.counts.length * 2);
        bigger.set(this.counts);
        this.counts = bigger;
      }
      this.index.set(a, b, k);
    }
    this.counts[k * MAX_POINTS + p]!++;
  }

  /** The most frequent next point, or -1. */
  best(a: number, b: number): number {
    const k = this.index.get(a, b);
    if (k < 0) return -1;
    let bp = -1;
    let bc = 0;
    for (let p = 0; p < MAX_POINTS; p++) {
      const n = this.counts[k * MAX_POINTS + p]!;
      if (n > bc) {
        bc = n;
        bp = p;
      }
    }
    return bp;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Columns: one row per sighting

export class Cols {
  cap = 0;
  n = 0;
  pt = new Uint8Array(0);
  t = new Float64Array(0);
  c1 = new Int32Array(0);
  c2 = new Int32Array(0);
  ipid = new Int32Array(0);
  dig = new Int32Array(0);
  hdr = new Uint32Array(0);
  tup = new Uint32Array(0);
  tun = new Uint32Array(0);
  ttl = new Uint8Array(0);
  kind = new Uint8Array(0);
  fl = new Uint8Array(0);
  seq = new Uint32Array(0);
  ack = new Uint32Array(0);
  tsv = new Uint32Array(0);
  hasTs = new Uint8Array(0);
  win = new Uint16Array(0);
  plen = new Uint32Array(0);
  next = new Int32Array(0);
  grp = new Int32Array(0);
  /** Linux cooked captures (`tcpdump -i any`): 1 received, 2 sent, 0 not known. */
  dirn = new Uint8Array(0);
  /** Linux cooked v2: the interface index the packet was seen on (0: not known). */
  ifi = new Uint32Array(0);

  /** Room for at least `want` rows (kept exactly, so an estimate of the packet count wastes nothing). */
  reserve(want: number): void {
    if (want <= this.cap) return;
    const cap = want;
    // Column by column: each old column is garbage as soon as its copy exists, so growing never holds two copies of
    // every column at once.
    const g = <T extends { length: number; set(a: ArrayLike<number>): void }>(a: T, C: new (n: number) => T): T => {
      const b = new C(cap);
      b.set(a as unknown as ArrayLike<number>);
      return b;
    };
    this.pt = g(this.pt, Uint8Array);
    this.t = g(this.t, Float64Array);
    this.c1 = g(this.c1, Int32Array);
    this.c2 = g(this.c2, Int32Array);
    this.ipid = g(this.ipid, Int32Array);
    this.dig = g(this.dig, Int32Array);
    this.hdr = g(this.hdr, Uint32Array);
    this.tup = g(this.tup, Uint32Array);
    this.tun = g(this.tun, Uint32Array);
    this.ttl = g(this.ttl, Uint8Array);
    this.kind = g(this.kind, Uint8Array);
    this.fl = g(this.fl, Uint8Array);
    this.seq = g(this.seq, Uint32Array);
    this.ack = g(this.ack, Uint32Array);
    this.tsv = g(this.tsv, Uint32Array);
    this.hasTs = g(this.hasTs, Uint8Array);
    this.win = g(this.win, Uint16Array);
    this.plen = g(this.plen, Uint32Array);
    this.next = g(this.next, Int32Array);
    this.grp = g(this.grp, Int32Array);
    this.dirn = g(this.dirn, Uint8Array);
    this.ifi = g(this.ifi, Uint32Array);
    this.cap = cap;
  }

  /** Grows by half (geometric, so appending stays linear; a doubling would leave up to half the columns unused). */
  grow(): void {
    this.reserve(Math.max(1024, Math.ceil(this.cap * 1.5)));
  }

  /** The key hashes are needed only to group sightings into packets; dropped afterwards (8 bytes a sighting). */
  releaseKeys(): void {
    this.c1 = new Int32Array(0);
    this.c2 = new Int32Array(0);
  }
}

/** The MAC header of a sighting (interned). */
export interface HeaderInfo {
  readonly src?: string;
  readonly dst?: string;
  readonly vlan?: string;
}

/** The interned directional tuples (addresses, ports, protocol); index 0 is "none". */
export interface Tuples {
  readonly tupSrc: readonly number[];
  readonly tupDst: readonly number[];
  readonly tupSp: readonly number[];
  readonly tupDp: readonly number[];
  readonly tupProto: readonly number[];
}

// ---------------------------------------------------------------------------------------------------------------

/** Sightings of the same packet, grouped by key: each group lists its sightings (and apart, its duplicates). */
export class Packets {
  gHead = new Int32Array(0);
  gTail = new Int32Array(0);
  gMask = new Uint32Array(0);
  gLen = new Int32Array(0);
  gDupHead = new Int32Array(0);
  gDupTail = new Int32Array(0);
  gCount = 0;
  dup = new Uint8Array(0);

  constructor(
    private readonly c: Cols,
    private readonly useIpid: boolean,
    private readonly useDig: boolean,
  ) {
    this.group();
    c.releaseKeys();
    // What grouping alone needed goes; the rest is cut to the packets found (a second point halves them).
    const G = this.gCount;
    this.gTail = new Int32Array(0);
    this.gDupTail = new Int32Array(0);
    this.gHead = this.gHead.slice(0, G);
    this.gMask = this.gMask.slice(0, G);
    this.gLen = this.gLen.slice(0, G);
    this.gDupHead = this.gDupHead.slice(0, G);
  }

  // Step 1: group sightings of the same packet.
  private group(): void {
    const c = this.c;
    const n = c.n;
    const cap = Math.max(16, n);
    this.gHead = new Int32Array(cap);
    this.gTail = new Int32Array(cap);
    this.gMask = new Uint32Array(cap);
    this.gLen = new Int32Array(cap);
    this.gDupHead = new Int32Array(cap).fill(-1);
    this.gDupTail = new Int32Array(cap);
    this.dup = new Uint8Array(n);
    // Key → its group × 2 while it has one generation, else its list of generations × 2 + 1.
    const byKey = new KeyTable(n);
    const gens: number[][] = [];
    const useIpid = this.useIpid;
    const useDig = this.useDig;
    for (let i = 0; i < n; i++) {
      let a = c.c1[i]!;
      let b = c.c2[i]!;
      if (useIpid) {
        a = mix(a, c.ipid[i]!);
        b = mix(b, ~c.ipid[i]!);
      }
      if (useDig) {
        a = mix(a, c.dig[i]!);
        b = mix(b, c.dig[i]! ^ 0x7f4a7c15);
      }
      const bit = 1 << c.pt[i]!;
      const v = byKey.get(a, b);
      let g = -1;
      if (v >= 0 && (v & 1) === 0) {
        g = v >> 1;
        if (this.gMask[g]! & bit) g = this.generation([g], i);
      } else if (v >= 0) g = this.generation(gens[v >> 1]!, i);
      c.grp[i] = g;
      if (g < 0) {
        // A new generation of this key: the same bytes again at a point that already saw them.
        g = this.gCount++;
        c.grp[i] = g;
        this.gHead[g] = i;
        this.gTail[g] = i;
        this.gMask[g] = bit;
        this.gLen[g] = 1;
        if (v < 0) byKey.set(a, b, g * 2);
        else {
          let list: number[];
          if ((v & 1) === 0) {
            list = [v >> 1];
            byKey.set(a, b, gens.length * 2 + 1);
            gens.push(list);
          } else list = gens[v >> 1]!;
          // Kept in order of first sighting (appended when read in time order).
          const t = c.t[i]!;
          let k = list.length;
          while (k > 0 && c.t[this.gHead[list[k - 1]!]!]! > t) k--;
          list.splice(k, 0, g);
        }
      } else if (this.dup[i]) {
        // Duplicates hang off a list of their own, so the sightings walked per packet stay few.
        if (this.gDupHead[g]! < 0) this.gDupHead[g] = i;
        else c.next[this.gDupTail[g]!] = i;
        this.gDupTail[g] = i;
      } else {
        c.next[this.gTail[g]!] = i;
        this.gTail[g] = i;
        this.gMask[g]! |= bit;
        this.gLen[g]!++;
      }
    }
  }

  /**
   * Which generation of a key (`list`, in order of first sighting) sighting `i` belongs to: one that already has it
   * at its point within a millisecond (a duplicate), one re-emitted there with other headers (a rewrite), else the
   * one nearest in time that has not been seen at its point; -1 for a new generation. Generations are visited
   * nearest first and at most `MAX_GENERATION_WALK` of them, so the cost stays linear in the packets.
   */
  private generation(list: readonly number[], i: number): number {
    const c = this.c;
    const p = c.pt[i]!;
    const bit = 1 << p;
    const t = c.t[i]!;
    const headT = (k: number): number => c.t[this.gHead[list[k]!]!]!;
    // First generation first seen after t.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (headT(m) <= t) lo = m + 1;
      else hi = m;
    }
    let before = lo - 1;
    let after = lo;
    let best = -1;
    for (let walk = 0; walk < MAX_GENERATION_WALK && (before >= 0 || after < list.length); walk++) {
      let k: number;
      if (after >= list.length || (before >= 0 && t - headT(before) <= headT(after) - t)) k = before--;
      else k = after++;
      const g = list[k]!;
      if (this.gMask[g]! & bit) {
        // Same point already: the same frame again (duplicate), or re-emitted with other headers (a rewrite).
        let sameHdrGap = Number.POSITIVE_INFINITY;
        let otherHdr = false;
        for (let s = this.gHead[g]!; s >= 0; s = c.next[s]!) {
          if (c.pt[s] !== p) continue;
          if (c.hdr[s] === c.hdr[i] && c.tup[s] === c.tup[i] && c.tun[s] === c.tun[i])
            sameHdrGap = Math.min(sameHdrGap, Math.abs(c.t[s]! - t));
          else if (Math.abs(c.t[s]! - t) < 1e9) otherHdr = true;
        }
        if (sameHdrGap < DUP_WINDOW_NS) {
          this.dup[i] = 1;
          return g;
        }
        if (otherHdr && sameHdrGap === Number.POSITIVE_INFINITY && this.gLen[g]! < MAX_GROUP_SIGHTINGS) return g;
        continue;
      }
      if (best < 0) best = g;
    }
    return best;
  }
}

/** Flows: tuples joined by packets seen under several tuples (NAT), with each tuple's direction in its flow. */
export class Flows {
  canon: Int32Array = new Int32Array(0);
  cbit: Uint8Array = new Uint8Array(0);
  ufParent: Int32Array = new Int32Array(0);
  ufParity: Uint8Array = new Uint8Array(0);
  /** The direction parity of the last `find`. */
  lastParity = 0;

  constructor(
    private readonly x: Tuples & { readonly c: Cols },
    private readonly pk: Packets,
  ) {
    this.flows();
  }

  // Step 3: flows — tuples joined by packets seen under several tuples (NAT), with direction parity.
  private flows(): void {
    const x = this.x;
    const nt = x.tupSrc.length;
    this.canon = new Int32Array(nt);
    this.cbit = new Uint8Array(nt);
    const canonIds = new Map<string, number>();
    for (let t = 1; t < nt; t++) {
      const a = x.tupSrc[t]! * 65536 + x.tupSp[t]!;
      const b = x.tupDst[t]! * 65536 + x.tupDp[t]!;
      const flip = a > b;
      const k = flip ? `${b}|${a}|${x.tupProto[t]}` : `${a}|${b}|${x.tupProto[t]}`;
      let id = canonIds.get(k);
      if (id === undefined) {
        id = t; // representative: first directional tuple
        canonIds.set(k, id);
      }
      this.canon[t] = id;
      // bit: 0 when this tuple has the same orientation as the representative
      const ra = x.tupSrc[id]! * 65536 + x.tupSp[id]!;
      this.cbit[t] = ra === a ? 0 : 1;
    }
    this.ufParent = new Int32Array(nt);
    this.ufParity = new Uint8Array(nt);
    for (let t = 0; t < nt; t++) this.ufParent[t] = t;
    const c = x.c;
    for (let g = 0; g < this.pk.gCount; g++) {
      const m = this.pk.gMask[g]!;
      const h = this.pk.gHead[g]!;
      if ((m & (m - 1)) === 0 && c.next[h]! < 0) continue;
      const t0 = c.tup[h]!;
      for (let s = c.next[h]!; s >= 0; s = c.next[s]!) {
        const t = c.tup[s]!;
        if (t !== t0 && t !== 0 && t0 !== 0) this.union(t0, t);
      }
    }
  }

  /** Root and direction parity of a directional tuple relative to its flow's root. */
  find(t: number): number {
    let p = this.canon[t]!;
    let par = this.cbit[t]!;
    while (this.ufParent[p] !== p) {
      par ^= this.ufParity[p]!;
      p = this.ufParent[p]!;
    }
    this.lastParity = par;
    return p;
  }

  union(t1: number, t2: number): void {
    // Same packet under t1 and t2: direction(t1) == direction(t2).
    const r1 = this.find(t1);
    const p1 = this.lastParity;
    const r2 = this.find(t2);
    const p2 = this.lastParity;
    if (r1 === r2) return;
    this.ufParent[r2] = r1;
    this.ufParity[r2] = p1 ^ p2;
  }
}
