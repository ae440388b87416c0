/**
 * `mh` — Maglev hashing (ip_vs_mh.c, Linux 4.18+). A prime-sized lookup table (default 4093 slots,
 * `CONFIG_IP_VS_MH_TAB_INDEX` 12) is filled from per-server permutations derived with the kernel's `hsiphash`
 * (64-bit SipHash-1-3) under two fixed keys; weights (the LAST non-zero weight, `last_weight`) set how many slots a
 * server claims per pass. A server set to weight 0 keeps its slots, so lookups that land on them fail ("no destination
 * available") unless the `mh-fallback` flag is set; `mh-port` adds the client's source port to the hash key.
 */
import type { DestState } from './dest-state.ts';
import { MH_FALLBACK, MH_PORT } from './model.ts';
import { NO_DEST, type SchedService, type ScheduleInput, type Scheduler } from './scheduler.ts';
import { type HsiphashKey, hsiphash1u32, hsiphash1u32Int, hsiphashKey } from './siphash.ts';

/** The table sizes `CONFIG_IP_VS_MH_TAB_INDEX` 8..17 selects. */
export const MH_TAB_PRIMES: readonly number[] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
export const MH_DEFAULT_TAB_SIZE = 4093;

/** `generate_hash_secret`: both words of each key are fixed constants. */
export const MH_HASH1: HsiphashKey = hsiphashKey(2654435761);
export const MH_HASH2: HsiphashKey = hsiphashKey(2654446892);

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** `fls`: 1-based index of the most significant set bit, 0 for 0. */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** `ip_vs_mh_hashkey`: hsiphash of `offset + port + address` (u32, host order). */
export function mhHash(addrKey: number, port: number, key: HsiphashKey, offset: number): number {
  return hsiphash1u32((offset + port + addrKey) >>> 0, key);
}

/** `mhHash(…) % size` without boxing the unsigned hash (hot path). */
function mhSlot(addrKey: number, port: number, offset: number, size: number): number {
  return (hsiphash1u32Int((offset + port + addrKey) | 0, MH_HASH1) >>> 0) % size;
}

function unavailable(d: DestState): boolean {
  return d.weight <= 0 || d.overloaded;
}

export class MaglevScheduler implements Scheduler {
  readonly name = 'mh';
  readonly failure = NO_DEST;
  readonly size: number;
  /** `IP_VS_MH_TAB_BITS` = TAB_INDEX / 2, used by the weight shift. */
  readonly tabBits: number;
  /** The lookup table: slot → server. */
  readonly lookup: (DestState | undefined)[];
  gcd = 0;
  rshift = 0;

  constructor(size: number = MH_DEFAULT_TAB_SIZE) {
    const index = MH_TAB_PRIMES.indexOf(size);
    if (index < 0) throw new RangeError(`mh table size must be one of ${MH_TAB_PRIMES.join(', ')}`);
    this.size = size;
    this.tabBits = Math.trunc((index + 8) / 2);
    this.lookup = new Array<DestState | undefined>(size).fill(undefined);
  }

  init(svc: SchedService): void {
    this.changed(svc);
  }

  /** `ip_vs_mh_dest_changed`: recompute gcd and shift, re-permutate and re-populate. */
  changed(svc: SchedService): void {
    const ds = svc.dests;
    let g = 0;
    let max = 0;
    for (const d of ds) {
      const w = d.lastWeight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    this.gcd = g;
    this.rshift = g < 1 ? 0 : Math.max(fls(Math.trunc(max / g)) - this.tabBits, 0);
    if (g < 1) {
      this.lookup.fill(undefined);
      return;
    }
    const M = this.size;
    const n = ds.length;
    const perm = new Int32Array(n);
    const skip = new Int32Array(n);
    const turns = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const d = ds[i]!;
      perm[i] = mhHash(d.addrKey, d.port, MH_HASH1, 0) % M;
      skip[i] = (mhHash(d.addrKey, d.port, MH_HASH2, 0) % (M - 1)) + 1;
      const lw = d.lastWeight;
      turns[i] = Math.trunc(lw / g) >> this.rshift || (lw !== 0 ? 1 : 0);
    }
    // ip_vs_mh_populate: passes over the list; each server with turns ≥ 1 claims `turns` free slots in a row.
    const taken = new Uint8Array(M);
    let filled = 0;
    let dtCount = 0;
    for (;;) {
      let i = 0;
      while (i < n) {
        if (turns[i]! < 1) {
          i++;
          continue;
        }
        let c = perm[i]!;
        while (taken[c]) {
          c += skip[i]!;
          if (c >= M) c -= M;
        }
        perm[i] = c;
        taken[c] = 1;
        this.lookup[c] = ds[i];
        if (++filled === M) return;
        if (++dtCount >= turns[i]!) {
          dtCount = 0;
          i++;
        }
      }
    }
  }

  /** Slots per server, in list order (for tests and explanations). */
  slotCounts(svc: SchedService): number[] {
    const counts = svc.dests.map(() => 0);
    for (const d of this.lookup) if (d !== undefined) counts[svc.dests.indexOf(d)]!++;
    return counts;
  }

  schedule(svc: SchedService, input: ScheduleInput): DestState | undefined {
    const M = this.size;
    const port = svc.schedFlags & MH_PORT ? input.sport : 0;
    const ihash = mhSlot(input.saddr, port, 0, M);
    const first = this.lookup[ihash];
    if (first === undefined) return undefined;
    if (!unavailable(first)) return first;
    if (!(svc.schedFlags & MH_FALLBACK)) return undefined;
    for (let offset = 0; offset < M; offset++) {
      const roffset = (offset + ihash) % M;
      const d = this.lookup[mhSlot(input.saddr, port, roffset, M)];
      if (d === undefined) return undefined;
      if (!unavailable(d)) return d;
    }
    return undefined;
  }
}
