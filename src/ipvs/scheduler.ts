/**
 * One interface for every IPVS scheduler (`net/netfilter/ipvs/ip_vs_<name>.c`). A `Scheduler` instance holds the
 * per-service state the kernel keeps in `svc->sched_data`; `schedule` is the hot path and must not allocate.
 * Destinations are iterated in kernel list order (newest first), which decides ties.
 */
import type { DestState, OverheadMode } from './dest-state.ts';

/** What a scheduler may read of its service. */
export interface SchedService {
  /** Kernel list order. */
  readonly dests: readonly DestState[];
  /** SCHED_FLAG_* bits (`-b`). */
  readonly schedFlags: number;
  readonly overheadMode: OverheadMode;
}

/**
 * Packet facts the hashing schedulers use. Callers reuse one mutable object (no allocation per decision).
 * Addresses are u32: IPv4 as is, IPv6 XOR-folded (`addressKey`).
 */
export interface ScheduleInput {
  saddr: number;
  sport: number;
  daddr: number;
  dport: number;
  /** Simulation time in milliseconds (lblc/lblcr cache ageing); 0 when absent. */
  now?: number;
}

export function scheduleInput(): ScheduleInput {
  return { saddr: 0, sport: 0, daddr: 0, dport: 0, now: 0 };
}

export type DestChange =
  | { readonly kind: 'add'; readonly dest: DestState }
  | { readonly kind: 'edit'; readonly dest: DestState }
  /** `index` is where the server was in the list before removal. */
  | { readonly kind: 'delete'; readonly dest: DestState; readonly index: number };

export interface Scheduler {
  readonly name: string;
  /** `init_service`: called once the service's destinations are in place. */
  init(svc: SchedService): void;
  /** `add_dest` / `upd_dest` / `del_dest`. */
  changed(svc: SchedService, change: DestChange): void;
  /** Picks a destination for a new connection, or undefined ("no destination available"). */
  schedule(svc: SchedService, input: ScheduleInput): DestState | undefined;
  /** After `schedule` returned undefined: the kernel's log text (`no destination available…`). */
  readonly failure: string;
}

export const NO_DEST = 'no destination available';
