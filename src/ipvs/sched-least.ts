/**
 * The least-connection family: `lc`, `wlc` (the default scheduler), `sed`, `nq` (ip_vs_{lc,wlc,sed,nq}.c). All
 * compare with strict inequalities, so ties go to the earliest server in kernel list order (the newest added).
 * Weighted comparisons are done by cross-multiplication as the kernel does (h1/w1 > h2/w2 ⇔ h1·w2 > h2·w1).
 */
import { activeFactor, type DestState, type DestWatcher } from './dest-state.ts';
import { type DestChange, NO_DEST, type SchedService, type Scheduler } from './scheduler.ts';

abstract class StatelessScheduler implements Scheduler {
  abstract readonly name: string;
  readonly failure = NO_DEST;
  init(_svc: SchedService): void {}
  changed(_svc: SchedService): void {}
  abstract schedule(svc: SchedService, input: unknown): DestState | undefined;
}

/** lc: minimal overhead; skips overloaded and weight-0 servers; other weights ignored. */
export class LeastConnectionScheduler extends StatelessScheduler {
  readonly name = 'lc';
  schedule(svc: SchedService): DestState | undefined {
    const ds = svc.dests;
    const n = ds.length;
    const af = activeFactor(svc.overheadMode);
    let least: DestState | undefined;
    let loh = 0;
    for (let i = 0; i < n; i++) {
      const d = ds[i]!;
      if (d.overloaded || d.weight === 0) continue;
      const doh = d.activeConns * af + d.inactConns;
      if (least === undefined || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

/**
 * wlc and sed as the kernel scans them (linear, strict `>` so the earliest server wins ties). Kept as the reference
 * the indexed schedulers are checked against.
 */
export function weightedLeastLinear(svc: SchedService, sed: boolean): DestState | undefined {
  const ds = svc.dests;
  const n = ds.length;
  let i = 0;
  for (; i < n; i++) {
    const d = ds[i]!;
    if (!d.overloaded && d.weight > 0) break;
  }
  if (i === n) return undefined;
  // sed: overhead = active + 1, i.e. factor 1, inactive ignored, plus one.
  const af = sed ? 1 : activeFactor(svc.overheadMode);
  const inact = sed ? 0 : 1;
  const plus = sed ? 1 : 0;
  let least = ds[i]!;
  let lw = least.weight;
  let loh = least.activeConns * af + least.inactConns * inact + plus;
  for (i++; i < n; i++) {
    const d = ds[i]!;
    if (d.overloaded) continue;
    const doh = d.activeConns * af + d.inactConns * inact + plus;
    if (loh * d.weight > doh * lw) {
      least = d;
      lw = d.weight;
      loh = doh;
    }
  }
  return least;
}

/**
 * The same choice as `weightedLeastLinear`, kept current in a segment tree over the kernel list: each leaf holds its
 * server when it can win (not overloaded, weight > 0), each inner node the better of its children, the LEFT one
 * (earlier in the list) unless the right one is strictly better by the kernel's cross-multiplication — which is
 * exactly the result of the kernel's left-to-right scan with strict `>`. Servers report every change of their
 * counters, weight and overload flag (`DestWatcher`), so a decision costs O(1) and a change O(log n).
 */
abstract class IndexedWeightedLeast implements Scheduler, DestWatcher {
  abstract readonly name: string;
  readonly failure = NO_DEST;
  protected abstract readonly sed: boolean;
  private dests: readonly DestState[] = [];
  private leaves = 1;
  private tree: Int32Array = new Int32Array(2).fill(-1);
  private af = 256;

  init(svc: SchedService): void {
    this.rebuild(svc);
  }

  changed(svc: SchedService, change: DestChange): void {
    if (change.kind === 'delete' && change.dest.watcher === this) {
      change.dest.watcher = undefined;
      change.dest.slot = -1;
    }
    this.rebuild(svc);
  }

  private overhead(d: DestState): number {
    return this.sed ? d.activeConns + 1 : d.activeConns * this.af + d.inactConns;
  }

  private better(a: number, b: number): number {
    if (a < 0) return b;
    if (b < 0) return a;
    const da = this.dests[a]!;
    const db = this.dests[b]!;
    return this.overhead(da) * db.weight > this.overhead(db) * da.weight ? b : a;
  }

  private leaf(d: DestState): number {
    return !d.overloaded && d.weight > 0 ? d.slot : -1;
  }

  private rebuild(svc: SchedService): void {
    for (const d of this.dests) if (d.watcher === this) d.watcher = undefined;
    const ds = svc.dests;
    this.dests = ds;
    this.af = this.sed ? 1 : activeFactor(svc.overheadMode);
    let leaves = 1;
    while (leaves < ds.length) leaves <<= 1;
    this.leaves = leaves;
    const tree = new Int32Array(2 * leaves).fill(-1);
    this.tree = tree;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      d.slot = i;
      d.watcher = this;
      tree[leaves + i] = this.leaf(d);
    }
    for (let node = leaves - 1; node >= 1; node--) tree[node] = this.better(tree[2 * node]!, tree[2 * node + 1]!);
  }

  destChanged(d: DestState): void {
    const tree = this.tree;
    const slot = d.slot;
    let node = this.leaves + slot;
    tree[node] = this.leaf(d);
    for (node >>= 1; node >= 1; node >>= 1) {
      const old = tree[node]!;
      const now = this.better(tree[2 * node]!, tree[2 * node + 1]!);
      tree[node] = now;
      // Same winner, and not the changed server: nothing above can change.
      if (now === old && now !== slot) return;
    }
  }

  schedule(_svc: SchedService): DestState | undefined {
    const best = this.tree[1]!;
    return best < 0 ? undefined : this.dests[best];
  }
}

export class WeightedLeastConnectionScheduler extends IndexedWeightedLeast {
  readonly name = 'wlc';
  protected readonly sed = false;
}

export class ShortestExpectedDelayScheduler extends IndexedWeightedLeast {
  readonly name = 'sed';
  protected readonly sed = true;
}

/** nq: the first idle server in list order, else shortest expected delay. */
export class NeverQueueScheduler extends StatelessScheduler {
  readonly name = 'nq';
  schedule(svc: SchedService): DestState | undefined {
    const ds = svc.dests;
    const n = ds.length;
    let least: DestState | undefined;
    let lw = 0;
    let loh = 0;
    for (let i = 0; i < n; i++) {
      const d = ds[i]!;
      if (d.overloaded || d.weight === 0) continue;
      if (d.activeConns === 0) return d;
      const doh = d.activeConns + 1;
      if (least === undefined || loh * d.weight > doh * lw) {
        least = d;
        lw = d.weight;
        loh = doh;
      }
    }
    return least;
  }
}

/** The first server in list order with the highest non-zero weight among those `eligible` accepts. */
function firstOfHighestWeight(svc: SchedService, eligible: (d: DestState) => boolean): DestState | undefined {
  let best: DestState | undefined;
  let bw = 0;
  for (const d of svc.dests) {
    if (d.weight > bw && eligible(d)) {
      best = d;
      bw = d.weight;
    }
  }
  return best;
}

/** fo: highest weight among non-overloaded servers; first in list order on ties; connections ignored. */
export class WeightedFailoverScheduler extends StatelessScheduler {
  readonly name = 'fo';
  schedule(svc: SchedService): DestState | undefined {
    return firstOfHighestWeight(svc, (d) => !d.overloaded);
  }
}

/** ovf: highest weight among servers whose active connections do not exceed their weight. */
export class WeightedOverflowScheduler extends StatelessScheduler {
  readonly name = 'ovf';
  schedule(svc: SchedService): DestState | undefined {
    return firstOfHighestWeight(svc, (d) => !d.overloaded && d.activeConns <= d.weight);
  }
}
