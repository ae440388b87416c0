/**
 * `twos` — power of two choices (ip_vs_twos.c, Linux 6.2+). Two weighted random draws in `[0, total weight]`
 * (inclusive, so the first eligible server gets weight + 1 chances); the second choice wins when its overhead per
 * weight is strictly lower. The kernel draws from `prandom_u32() % (total + 1)`; the simulator uses a seeded
 * xorshift32 generator instead so that runs are reproducible (`seed`, default 1).
 */
import { activeFactor, type DestState } from './dest-state.ts';
import { NO_DEST, type SchedService, type Scheduler } from './scheduler.ts';

export class PowerOfTwoScheduler implements Scheduler {
  readonly name = 'twos';
  readonly failure = NO_DEST;
  private state: number;

  constructor(seed = 1) {
    this.state = seed >>> 0 || 1;
  }

  /** Reseeds the generator. */
  seed(seed: number): void {
    this.state = seed >>> 0 || 1;
  }

  /** xorshift32: the next unsigned 32-bit random number. */
  nextU32(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  init(_svc: SchedService): void {}
  changed(_svc: SchedService): void {}

  schedule(svc: SchedService): DestState | undefined {
    const ds = svc.dests;
    const n = ds.length;
    const af = activeFactor(svc.overheadMode);
    let total = 0;
    let choice1: DestState | undefined;
    for (let i = 0; i < n; i++) {
      const d = ds[i]!;
      if (!d.overloaded && d.weight > 0) {
        total += d.weight;
        choice1 = d;
      }
    }
    if (choice1 === undefined) return undefined;
    total += 1;
    let r1 = this.nextU32() % total;
    let r2 = this.nextU32() % total;
    let choice2: DestState | undefined;
    let w1 = -1;
    let w2 = -1;
    let oh1 = 0;
    let oh2 = 0;
    for (let i = 0; i < n; i++) {
      const d = ds[i]!;
      if (d.overloaded) continue;
      const w = d.weight;
      if (w <= 0) continue;
      r1 -= w;
      r2 -= w;
      if (r1 <= 0 && w1 === -1) {
        choice1 = d;
        w1 = w;
        oh1 = d.activeConns * af + d.inactConns;
      }
      if (r2 <= 0 && w2 === -1) {
        choice2 = d;
        w2 = w;
        oh2 = d.activeConns * af + d.inactConns;
      }
      if (w1 !== -1 && w2 !== -1) break;
    }
    if (choice2 !== undefined && w2 * oh1 > w1 * oh2) choice1 = choice2;
    return choice1;
  }
}
