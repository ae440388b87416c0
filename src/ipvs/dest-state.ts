/**
 * Runtime state of one real server inside a service: the kernel's `struct ip_vs_dest` fields that schedulers and
 * connection accounting read and write. Mutable on purpose (stateful machinery on the scheduling hot path).
 */
import { ipv6ToGroups } from '../addr/ipv6.ts';
import type { Forwarding, IpAddress, IpvsDestination } from './model.ts';

/** Which connection-overhead formula `ip_vs_dest_conn_overhead()` uses (see fact sheet §2.0.3). */
export type OverheadMode =
  /** `active*256 + inactive` — every kernel up to the 2026 stable backports. */
  | 'classic'
  /** `active*256 + total` — Linux 6.12.105+ ("ipvs: add totalconns for dest"). */
  | 'totalconns';

/** IPv4 address as u32, IPv6 folded as the kernel folds it for hashing (XOR of the four 32-bit words). */
export function addressKey(a: IpAddress): number {
  if (a.family === 'ipv4') return a.addr;
  const g = ipv6ToGroups(a.addr);
  let k = 0;
  for (let i = 0; i < 8; i += 2) k ^= (g[i]! << 16) | g[i + 1]!;
  return k >>> 0;
}

/** Told when a server's counters, weight or overload flag change. */
export interface DestWatcher {
  destChanged(d: DestState): void;
}

export class DestState {
  readonly config: IpvsDestination;
  readonly address: IpAddress;
  readonly port: number;
  readonly forwarding: Forwarding;
  /** u32 hash key of the address (`addressKey`). */
  readonly addrKey: number;
  /** Latest non-zero weight (`last_weight`, used by mh). */
  lastWeight: number;
  upperThreshold: number;
  lowerThreshold: number;
  private active = 0;
  private inact = 0;
  private w = 0;
  private over = false;
  /**
   * A scheduler that indexes its servers (wlc, sed) and must hear about every change of the fields it ranks by;
   * `slot` is the server's position in that scheduler's list.
   */
  watcher: DestWatcher | undefined = undefined;
  slot = -1;
  persistConns = 0;
  /** ActiveConn. */
  get activeConns(): number {
    return this.active;
  }
  set activeConns(v: number) {
    this.active = v;
    if (this.watcher !== undefined) this.watcher.destChanged(this);
  }
  /** InActConn. */
  get inactConns(): number {
    return this.inact;
  }
  set inactConns(v: number) {
    this.inact = v;
    if (this.watcher !== undefined) this.watcher.destChanged(this);
  }
  get weight(): number {
    return this.w;
  }
  set weight(v: number) {
    this.w = v;
    if (this.watcher !== undefined) this.watcher.destChanged(this);
  }
  /** IP_VS_DEST_F_OVERLOAD, derived from the thresholds. */
  get overloaded(): boolean {
    return this.over;
  }
  set overloaded(v: boolean) {
    this.over = v;
    if (this.watcher !== undefined) this.watcher.destChanged(this);
  }
  /** IP_VS_DEST_F_AVAILABLE: false once the server was deleted from its service (entries may still point at it). */
  available = true;
  conns = 0;
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  /**
   * Which overload-flag rules apply: `classic` (set at total ≥ u on bind; cleared below l, or below ¾·u when l = 0)
   * or the 6.12.105+ hysteresis (`__ip_vs_dest_update_overload`), chosen together with the overhead formula.
   */
  readonly overloadRules: OverheadMode;

  constructor(config: IpvsDestination, overloadRules: OverheadMode = 'classic') {
    this.overloadRules = overloadRules;
    this.config = config;
    this.address = config.address;
    this.port = config.port;
    this.forwarding = config.forwarding ?? { kind: 'route' };
    this.addrKey = addressKey(config.address);
    this.weight = config.weight ?? 1;
    this.lastWeight = this.weight;
    this.upperThreshold = config.upperThreshold ?? 0;
    this.lowerThreshold = config.lowerThreshold ?? 0;
  }

  /** Connections counted by thresholds and by `totalconns` (non-template, active + inactive). */
  get totalConns(): number {
    return this.activeConns + this.inactConns;
  }

  /** `l_threshold_val` of 6.12: the lower threshold, or `u - u/4` (75 %, rounded up) when it is 0. */
  get lowerThresholdValue(): number {
    const u = this.upperThreshold;
    return this.lowerThreshold || u - (u >> 2);
  }

  /** 6.12 `__ip_vs_dest_update_overload`: mode +1 new connection, -1 expiry, 0 threshold edit. */
  private updateOverload(mode: number): void {
    const u = this.upperThreshold;
    if (u === 0) {
      this.overloaded = false;
      return;
    }
    const l = this.lowerThresholdValue;
    const conns = this.activeConns + this.inactConns;
    if (conns >= (mode > 0 ? l : u)) {
      this.overloaded = true;
      return;
    }
    if (conns >= (mode < 0 ? u : l)) return;
    this.overloaded = false;
  }

  /** `ip_vs_bind_dest` counter update and overload check. */
  bind(template: boolean, inactive: boolean): void {
    if (template) {
      this.persistConns++;
      return;
    }
    if (inactive) this.inactConns++;
    else this.activeConns++;
    const total = this.activeConns + this.inactConns;
    if (this.overloadRules === 'classic') {
      if (this.upperThreshold !== 0 && total >= this.upperThreshold) this.overloaded = true;
    } else if (total === this.upperThreshold) this.updateOverload(1);
  }

  /** `ip_vs_unbind_dest` counter update and overload release. */
  unbind(template: boolean, inactive: boolean): void {
    if (template) {
      this.persistConns--;
      return;
    }
    const before = this.activeConns + this.inactConns;
    if (inactive) this.inactConns--;
    else this.activeConns--;
    const total = before - 1;
    if (this.overloadRules !== 'classic') {
      if (before === this.lowerThresholdValue) this.updateOverload(-1);
      return;
    }
    if (this.lowerThreshold !== 0) {
      if (total < this.lowerThreshold) this.overloaded = false;
    } else if (this.upperThreshold !== 0) {
      if (total * 4 < this.upperThreshold * 3) this.overloaded = false;
    } else this.overloaded = false;
  }

  /** `ipvsadm -e … -x U -y L`: new thresholds and the overload flag as the kernel recomputes it. */
  setThresholds(upper: number, lower: number): void {
    if (this.overloadRules === 'classic') {
      // __ip_vs_update_dest: a raised or removed upper threshold clears the flag.
      if (upper === 0 || upper > this.upperThreshold) this.overloaded = false;
      this.upperThreshold = upper;
      this.lowerThreshold = lower;
      return;
    }
    this.upperThreshold = upper;
    this.lowerThreshold = lower;
    this.updateOverload(0);
  }
}

/** `ip_vs_dest_conn_overhead()`. */
export function connOverhead(d: DestState, mode: OverheadMode): number {
  return mode === 'classic' ? d.activeConns * 256 + d.inactConns : d.activeConns * 257 + d.inactConns;
}

/**
 * The multiplier of active connections in the overhead: 256 (`active << 8` + inactive) classically, 257 on
 * 6.12.105+ (`active << 8` + total = 257·active + inactive). Hot loops hoist it out of the iteration.
 */
export function activeFactor(mode: OverheadMode): number {
  return mode === 'classic' ? 256 : 257;
}
