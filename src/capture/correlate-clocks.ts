/**
 * Correlation, clocks (stage 2 of correlate.ts): each pair of points that saw the same packets gives time
 * differences; traffic both ways gives the offset as the midpoint of the two directions (as NTP does), one-way traffic
 * the median when it is above 1 ms, else none. Offsets are chained from the point with most matches.
 */

import type { Ingest } from './correlate-ingest.ts';
import { type Flows, MAX_POINTS, type Packets } from './correlate-keys.ts';

/** One-way time differences below this are taken as latency, above it as a clock offset. */
export const ONE_WAY_OFFSET_THRESHOLD_NS = 1_000_000;
/** Two-way estimates below this are path asymmetry, not clock offset. */
export const TWO_WAY_OFFSET_THRESHOLD_NS = 50_000;
const MAX_SAMPLES = 20_000;

export type OffsetMethod = 'reference' | 'two-way' | 'one-way' | 'none' | 'unrelated';

export class Clocks {
  /** Nanoseconds to subtract from a point's timestamps to get the reference clock. */
  readonly offset: Float64Array;
  readonly methods: OffsetMethod[];
  readonly against: number[];
  readonly samplesPerPoint: number[];
  /** Pairs of points (lower × MAX_POINTS + higher) whose offset comes from one-way traffic. */
  readonly ambiguous = new Set<number>();
  private readonly np: number;

  constructor(
    private readonly x: Ingest,
    private readonly pk: Packets,
    private readonly fl: Flows,
  ) {
    this.np = x.points.length;
    this.offset = new Float64Array(this.np);
    this.methods = Array.from({ length: this.np }, () => 'unrelated' as OffsetMethod);
    this.against = Array.from({ length: this.np }, () => -1);
    this.samplesPerPoint = Array.from({ length: this.np }, () => 0);
    this.clocks();
  }

  // Step 2: clock offsets between points.
  private clocks(): void {
    const c = this.x.c;
    const np = this.np;
    const pairs = new Map<number, { d: number[]; tup: number[] }>();
    for (let g = 0; g < this.pk.gCount; g++) {
      const m = this.pk.gMask[g]!;
      if ((m & (m - 1)) === 0) continue;
      for (let s = this.pk.gHead[g]!; s >= 0; s = c.next[s]!) {
        if (this.pk.dup[s]) continue;
        for (let u = c.next[s]!; u >= 0; u = c.next[u]!) {
          if (this.pk.dup[u] || c.pt[u] === c.pt[s]) continue;
          let a = s;
          let b = u;
          if (c.pt[a]! > c.pt[b]!) [a, b] = [b, a];
          const key = c.pt[a]! * MAX_POINTS + c.pt[b]!;
          let e = pairs.get(key);
          if (!e) {
            e = { d: [], tup: [] };
            pairs.set(key, e);
          }
          if (e.d.length < MAX_SAMPLES) {
            e.d.push(c.t[b]! - c.t[a]!);
            const t = c.tup[a]!;
            e.tup.push(t === 0 ? -1 : this.fl.find(t) * 2 + this.fl.lastParity);
          }
        }
      }
    }
    // Per pair: offset of b relative to a.
    const est: { a: number; b: number; theta: number; n: number; method: OffsetMethod }[] = [];
    for (const [key, e] of pairs) {
      const a = Math.floor(key / MAX_POINTS);
      const b = key % MAX_POINTS;
      const byTup = new Map<number, number[]>();
      for (let k = 0; k < e.d.length; k++) {
        const t = e.tup[k]!;
        let l = byTup.get(t);
        if (!l) {
          l = [];
          byTup.set(t, l);
        }
        l.push(e.d[k]!);
      }
      // Two-way: a tuple and its reverse both crossed the pair.
      const thetas: number[] = [];
      const seen = new Set<number>();
      for (const [t, l] of byTup) {
        if (seen.has(t) || t < 0) continue;
        const r = t ^ 1;
        const lr = byTup.get(r);
        if (!lr) continue;
        seen.add(t);
        seen.add(r);
        thetas.push((median(l) + median(lr)) / 2);
      }
      let theta: number;
      let method: OffsetMethod;
      if (thetas.length > 0) {
        theta = median(thetas);
        method = 'two-way';
        // Path asymmetry alone makes a few microseconds; below this the clocks are taken as equal.
        if (Math.abs(theta) < TWO_WAY_OFFSET_THRESHOLD_NS) {
          theta = 0;
          method = 'none';
        }
      } else {
        const m = median(e.d);
        if (Math.abs(m) >= ONE_WAY_OFFSET_THRESHOLD_NS) {
          theta = m;
          method = 'one-way';
          this.ambiguous.add(key);
        } else {
          theta = 0;
          method = 'none';
        }
      }
      est.push({ a, b, theta, n: e.d.length, method });
      this.samplesPerPoint[a]! += e.d.length;
      this.samplesPerPoint[b]! += e.d.length;
    }
    // Spanning tree from the point with most samples (then the first point).
    let ref = 0;
    for (let p = 1; p < np; p++) if (this.samplesPerPoint[p]! > this.samplesPerPoint[ref]!) ref = p;
    const done = new Uint8Array(np);
    done[ref] = 1;
    this.methods[ref] = 'reference';
    est.sort((x, y) => y.n - x.n);
    for (let changed = true; changed; ) {
      changed = false;
      for (const e of est) {
        if (done[e.a] && !done[e.b]) {
          this.offset[e.b] = this.offset[e.a]! + e.theta;
          this.methods[e.b] = e.method;
          this.against[e.b] = e.a;
          done[e.b] = 1;
          changed = true;
        } else if (done[e.b] && !done[e.a]) {
          this.offset[e.a] = this.offset[e.b]! - e.theta;
          this.methods[e.a] = e.method;
          this.against[e.a] = e.b;
          done[e.a] = 1;
          changed = true;
        }
      }
    }
  }
}

function median(a: number[]): number {
  if (a.length === 0) return 0;
  const s = Float64Array.from(a).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
