/**
 * `wrr` (ip_vs_wrr.c): the kernel's current-weight stepping. `cw` starts at the maximum weight and drops by the gcd
 * of the positive weights each time the list is exhausted; a server is picked when its weight ≥ cw. Overloaded
 * servers are skipped; weight 0 never qualifies (cw ≥ 1).
 */
import type { DestState } from './dest-state.ts';
import { type DestChange, NO_DEST, type SchedService, type Scheduler } from './scheduler.ts';

const ALL_OVERLOADED = 'no destination available: all destinations are overloaded';

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

export class WeightedRoundRobinScheduler implements Scheduler {
  readonly name = 'wrr';
  failure = NO_DEST;
  /** Current node index; -1 = the list head. */
  cl = -1;
  /** Current weight. */
  cw = 0;
  /** Maximum weight minus (di - 1). */
  mw = 0;
  /** Decreasing interval: gcd of the positive weights (1 if none). */
  di = 1;

  private recompute(svc: SchedService): void {
    let g = 0;
    let max = 0;
    for (const d of svc.dests) {
      const w = d.weight;
      if (w > 0) g = g > 0 ? gcd(w, g) : w;
      if (w > max) max = w;
    }
    this.di = g || 1;
    this.mw = max - (this.di - 1);
    this.cl = -1;
  }

  init(svc: SchedService): void {
    this.recompute(svc);
    this.cw = this.mw;
  }

  /** ip_vs_wrr_dest_changed, run on add, edit and delete. */
  changed(svc: SchedService, _change: DestChange): void {
    this.recompute(svc);
    if (this.cw > this.mw || this.cw === 0) this.cw = this.mw;
    else if (this.di > 1) this.cw = Math.trunc(this.cw / this.di) * this.di + 1;
  }

  schedule(svc: SchedService, _input: unknown): DestState | undefined {
    const ds = svc.dests;
    const n = ds.length;
    if (this.mw === 0) {
      this.failure = NO_DEST;
      return undefined;
    }
    const last = this.cl;
    const di = this.di;
    let cw = this.cw;
    let stop = -2;
    let lastPass = false;
    let restarted = false;
    let start = last;
    for (;;) {
      for (let j = start + 1; j < n; j++) {
        const d = ds[j]!;
        if (!d.overloaded && d.weight >= cw) {
          this.cl = j;
          this.cw = cw;
          return d;
        }
        if (j === stop) {
          this.cw = cw;
          this.failure = ALL_OVERLOADED;
          return undefined;
        }
      }
      cw -= di;
      if (cw <= 0) {
        cw = this.mw;
        if (lastPass || last === -1) {
          this.cw = cw;
          this.failure = ALL_OVERLOADED;
          return undefined;
        }
        restarted = true;
      }
      lastPass = cw <= di;
      if (lastPass && restarted && last !== -1) stop = last;
      start = -1;
    }
  }
}
