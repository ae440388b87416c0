/** Runtime state of one virtual service: its destinations in kernel list order and its scheduler instance. */
import { DestState, type OverheadMode } from './dest-state.ts';
import type { IpvsDestination, IpvsService, ServiceKey } from './model.ts';
import type { SchedService, Scheduler } from './scheduler.ts';
import { createScheduler } from './schedulers.ts';

export class ServiceState implements SchedService {
  readonly config: IpvsService;
  readonly key: ServiceKey;
  readonly schedulerName: string;
  /** Undefined when the scheduler is not modelled (every new connection then fails with an explanation). */
  readonly scheduler: Scheduler | undefined;
  readonly dests: DestState[] = [];
  readonly schedFlags: number;
  readonly overheadMode: OverheadMode;
  conns = 0;
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  /**
   * `destinations` are taken in kernel list order (index 0 = head = most recently added). Use `addDestination` to
   * replay `ipvsadm -a` commands instead: each one is inserted at the head, as the kernel does.
   */
  constructor(config: IpvsService, overheadMode: OverheadMode, destinations = config.destinations) {
    this.config = config;
    this.key = config.key;
    this.schedulerName = config.scheduler ?? 'wlc';
    this.scheduler = createScheduler(this.schedulerName);
    this.schedFlags = config.schedFlags;
    this.overheadMode = overheadMode;
    for (const d of destinations) this.dests.push(new DestState(d, overheadMode));
    this.scheduler?.init(this);
  }

  /** `ipvsadm -a`: the new server goes to the head of the list. */
  addDestination(config: IpvsDestination): DestState {
    const d = new DestState(config, this.overheadMode);
    this.dests.unshift(d);
    this.scheduler?.changed(this, { kind: 'add', dest: d });
    return d;
  }

  /** `ipvsadm -e`: keeps the list position. */
  editDestination(
    dest: DestState,
    edit: { readonly weight?: number; readonly upperThreshold?: number; readonly lowerThreshold?: number },
  ): void {
    if (edit.weight !== undefined) {
      dest.weight = edit.weight;
      if (edit.weight > 0) dest.lastWeight = edit.weight;
    }
    if (edit.upperThreshold !== undefined || edit.lowerThreshold !== undefined)
      dest.setThresholds(edit.upperThreshold ?? dest.upperThreshold, edit.lowerThreshold ?? dest.lowerThreshold);
    this.scheduler?.changed(this, { kind: 'edit', dest });
  }

  /** `ipvsadm -d`: connection entries keep pointing at the server, which becomes unavailable. */
  removeDestination(dest: DestState): void {
    const index = this.dests.indexOf(dest);
    if (index < 0) return;
    this.dests.splice(index, 1);
    dest.available = false;
    this.scheduler?.changed(this, { kind: 'delete', dest, index });
  }
}
