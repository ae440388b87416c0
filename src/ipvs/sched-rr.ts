/** `rr` (ip_vs_rr.c): cyclic from the last pick, skipping weight 0 and overloaded servers; weights otherwise ignored. */
import type { DestState } from './dest-state.ts';
import { type DestChange, NO_DEST, type SchedService, type Scheduler } from './scheduler.ts';

export class RoundRobinScheduler implements Scheduler {
  readonly name = 'rr';
  failure = NO_DEST;
  /** Index of the last chosen server; -1 = the list head (nothing chosen yet). */
  pos = -1;

  init(_svc: SchedService): void {
    this.pos = -1;
  }

  changed(_svc: SchedService, change: DestChange): void {
    // The kernel keeps a pointer to the last chosen node; indices shift around it.
    if (change.kind === 'add') {
      if (this.pos >= 0) this.pos++;
    } else if (change.kind === 'delete') {
      // ip_vs_rr_del_dest: a pointer to the removed node moves to its predecessor.
      if (this.pos >= change.index) this.pos--;
    }
  }

  schedule(svc: SchedService, _input: unknown): DestState | undefined {
    const ds = svc.dests;
    const n = ds.length;
    const last = this.pos;
    let start = last;
    let pass = 0;
    do {
      for (let j = start + 1; j < n; j++) {
        const d = ds[j]!;
        if (!d.overloaded && d.weight > 0) {
          this.pos = j;
          return d;
        }
        if (j === last) return undefined;
      }
      pass++;
      start = -1;
    } while (pass < 2 && last !== -1);
    return undefined;
  }
}
