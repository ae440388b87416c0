/** The scheduler registry: kernel module name → a fresh per-service instance. */
import { DestinationHashScheduler, SourceHashScheduler } from './sched-hash.ts';
import {
  LeastConnectionScheduler,
  NeverQueueScheduler,
  ShortestExpectedDelayScheduler,
  WeightedFailoverScheduler,
  WeightedLeastConnectionScheduler,
  WeightedOverflowScheduler,
} from './sched-least.ts';
import { RoundRobinScheduler } from './sched-rr.ts';
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
};

/** Kernel schedulers lvsdoctor does not model yet. */
export const UNMODELLED_SCHEDULERS: readonly string[] = ['lblc', 'lblcr', 'mh', 'twos'];

export function createScheduler(name: string): Scheduler | undefined {
  const f = Object.hasOwn(SCHEDULER_FACTORIES, name) ? SCHEDULER_FACTORIES[name] : undefined;
  return f?.();
}
