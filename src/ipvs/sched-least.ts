/**
 * The least-connection family: `lc`, `wlc` (the default scheduler), `sed`, `nq` (ip_vs_{lc,wlc,sed,nq}.c). All
 * compare with strict inequalities, so ties go to the earliest server in kernel list order (the newest added).
 * Weighted comparisons are done by cross-multiplication as the kernel does (h1/w1 > h2/w2 ⇔ h1·w2 > h2·w1).
 */
import { connOverhead, type DestState } from './dest-state.ts';
import { NO_DEST, type SchedService, type Scheduler } from './scheduler.ts';

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
    let least: DestState | undefined;
    let loh = 0;
    for (const d of svc.dests) {
      if (d.overloaded || d.weight === 0) continue;
      const doh = connOverhead(d, svc.overheadMode);
      if (least === undefined || doh < loh) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

/** wlc and sed differ only in the overhead: the connection overhead vs `activeconns + 1`. */
function weightedLeast(svc: SchedService, sed: boolean): DestState | undefined {
  const ds = svc.dests;
  const n = ds.length;
  let i = 0;
  for (; i < n; i++) {
    const d = ds[i]!;
    if (!d.overloaded && d.weight > 0) break;
  }
  if (i === n) return undefined;
  let least = ds[i]!;
  let loh = sed ? least.activeConns + 1 : connOverhead(least, svc.overheadMode);
  for (i++; i < n; i++) {
    const d = ds[i]!;
    if (d.overloaded) continue;
    const doh = sed ? d.activeConns + 1 : connOverhead(d, svc.overheadMode);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export class WeightedLeastConnectionScheduler extends StatelessScheduler {
  readonly name = 'wlc';
  schedule(svc: SchedService): DestState | undefined {
    return weightedLeast(svc, false);
  }
}

export class ShortestExpectedDelayScheduler extends StatelessScheduler {
  readonly name = 'sed';
  schedule(svc: SchedService): DestState | undefined {
    return weightedLeast(svc, true);
  }
}

/** nq: the first idle server in list order, else shortest expected delay. */
export class NeverQueueScheduler extends StatelessScheduler {
  readonly name = 'nq';
  schedule(svc: SchedService): DestState | undefined {
    let least: DestState | undefined;
    let loh = 0;
    for (const d of svc.dests) {
      if (d.overloaded || d.weight === 0) continue;
      const doh = d.activeConns + 1;
      if (d.activeConns === 0) return d;
      if (least === undefined || loh * d.weight > doh * least.weight) {
        least = d;
        loh = doh;
      }
    }
    return least;
  }
}

/** fo: highest weight among non-overloaded servers; first in list order on ties; connections ignored. */
export class WeightedFailoverScheduler extends StatelessScheduler {
  readonly name = 'fo';
  schedule(svc: SchedService): DestState | undefined {
    let best: DestState | undefined;
    let hw = 0;
    for (const d of svc.dests) {
      if (!d.overloaded && d.weight > hw) {
        best = d;
        hw = d.weight;
      }
    }
    return best;
  }
}

/** ovf: highest weight among servers whose active connections do not exceed their weight. */
export class WeightedOverflowScheduler extends StatelessScheduler {
  readonly name = 'ovf';
  schedule(svc: SchedService): DestState | undefined {
    let best: DestState | undefined;
    for (const d of svc.dests) {
      const w = d.weight;
      if (d.overloaded || d.activeConns > w || w === 0) continue;
      if (best === undefined || w > best.weight) best = d;
    }
    return best;
  }
}
