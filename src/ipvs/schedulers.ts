/** The scheduler registry: kernel module name → a fresh per-service instance. */
import { DestinationHashScheduler, SourceHashScheduler } from './sched-hash.ts';
import { LocalityLeastConnectionReplicationScheduler, LocalityLeastConnectionScheduler } from './sched-lblc.ts';
import {
  LeastConnectionScheduler,
  NeverQueueScheduler,
  ShortestExpectedDelayScheduler,
  WeightedFailoverScheduler,
  WeightedLeastConnectionScheduler,
  WeightedOverflowScheduler,
} from './sched-least.ts';
import { MaglevScheduler } from './sched-mh.ts';
import { RoundRobinScheduler } from './sched-rr.ts';
import { PowerOfTwoScheduler } from './sched-twos.ts';
import { WeightedRoundRobinScheduler } from './sched-wrr.ts';
import type { Scheduler } from './scheduler.ts';

export const SCHEDULER_FACTORIES: Readonly<Record<string, () => Scheduler>> = {
  rr: () => new RoundRobinScheduler(),
  wrr: () => new WeightedRoundRobinScheduler(),
  lc: () => new LeastConnectionScheduler(),
  wlc: () => new WeightedLeastConnectionScheduler(),
  sed: () => new ShortestExpectedDelayScheduler(),
  nq: () => new NeverQueueScheduler(),
  fo: () => new WeightedFailoverScheduler(),
  ovf: () => new WeightedOverflowScheduler(),
  sh: () => new SourceHashScheduler(),
  dh: () => new DestinationHashScheduler(),
  lblc: () => new LocalityLeastConnectionScheduler(),
  lblcr: () => new LocalityLeastConnectionReplicationScheduler(),
  mh: () => new MaglevScheduler(),
  twos: () => new PowerOfTwoScheduler(),
};

/** Every scheduler of Linux 6.12 (`net/netfilter/ipvs/ip_vs_<name>.c`). */
export const KERNEL_SCHEDULERS: readonly string[] = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'fo',
  'ovf',
  'mh',
  'twos',
];

/** Kernel schedulers lvsdoctor does not model (none left). */
export const UNMODELLED_SCHEDULERS: readonly string[] = KERNEL_SCHEDULERS.filter(
  (s) => !Object.hasOwn(SCHEDULER_FACTORIES, s),
);

export function createScheduler(name: string): Scheduler | undefined {
  const f = Object.hasOwn(SCHEDULER_FACTORIES, name) ? SCHEDULER_FACTORIES[name] : undefined;
  return f?.();
}
