/**
 * Hashing schedulers `sh` (source hashing) and `dh` (destination hashing), Linux 6.x formulas:
 * `hash_32(key, 8)` over a 256-bucket table rebuilt on every destination change.
 */
import type { DestState } from './dest-state.ts';
import { SH_FALLBACK, SH_PORT } from './model.ts';
import { NO_DEST, type SchedService, type ScheduleInput, type Scheduler } from './scheduler.ts';

const TAB_BITS = 8;
const TAB_SIZE = 1 << TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;
const GOLDEN_RATIO_32 = 0x61c88647;

/** include/linux/hash.h `hash_32`. */
export function hash32(value: number, bits: number): number {
  return (Math.imul(value >>> 0, GOLDEN_RATIO_32) >>> 0) >>> (32 - bits);
}

function unavailable(d: DestState): boolean {
  return d.weight <= 0 || d.overloaded;
}

/** sh: buckets filled cyclically, each server taking max(weight, 1) consecutive buckets. */
export class SourceHashScheduler implements Scheduler {
  readonly name = 'sh';
  readonly failure = NO_DEST;
  readonly buckets: (DestState | undefined)[] = new Array(TAB_SIZE).fill(undefined);

  private reassign(svc: SchedService): void {
    const ds = svc.dests;
    let p = 0;
    let count = 0;
    for (let i = 0; i < TAB_SIZE; i++) {
      if (ds.length === 0) {
        this.buckets[i] = undefined;
        continue;
      }
      if (p >= ds.length) p = 0;
      const d = ds[p]!;
      this.buckets[i] = d;
      if (++count >= d.weight) {
        p++;
        count = 0;
      }
    }
  }

  init(svc: SchedService): void {
    this.reassign(svc);
  }

  changed(svc: SchedService): void {
    this.reassign(svc);
  }

  /** `ip_vs_sh_hashkey`. */
  static bucket(addr: number, port: number, offset: number): number {
    return (offset + hash32((port + addr) >>> 0, TAB_BITS)) & TAB_MASK;
  }

  schedule(svc: SchedService, input: ScheduleInput): DestState | undefined {
    const port = svc.schedFlags & SH_PORT ? input.sport : 0;
    const ihash = SourceHashScheduler.bucket(input.saddr, port, 0);
    const first = this.buckets[ihash];
    if (first === undefined) return undefined;
    if (!unavailable(first)) return first;
    if (!(svc.schedFlags & SH_FALLBACK)) return undefined;
    for (let offset = 0; offset < TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % TAB_SIZE;
      const d = this.buckets[SourceHashScheduler.bucket(input.saddr, port, roffset)];
      if (d === undefined) return undefined;
      if (!unavailable(d)) return d;
    }
    return undefined;
  }
}

/** dh: one bucket per server in turn (weights ignored), keyed by the packet's destination address; no fallback. */
export class DestinationHashScheduler implements Scheduler {
  readonly name = 'dh';
  readonly failure = NO_DEST;
  readonly buckets: (DestState | undefined)[] = new Array(TAB_SIZE).fill(undefined);

  private reassign(svc: SchedService): void {
    const ds = svc.dests;
    for (let i = 0; i < TAB_SIZE; i++) this.buckets[i] = ds.length === 0 ? undefined : ds[i % ds.length];
  }

  init(svc: SchedService): void {
    this.reassign(svc);
  }

  changed(svc: SchedService): void {
    this.reassign(svc);
  }

  schedule(_svc: SchedService, input: ScheduleInput): DestState | undefined {
    const d = this.buckets[hash32(input.daddr, TAB_BITS)];
    if (d === undefined || !d.available || d.weight <= 0 || d.overloaded) return undefined;
    return d;
  }
}
