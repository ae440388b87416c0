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

export class DestState {
  readonly config: IpvsDestination;
  readonly address: IpAddress;
  readonly port: number;
  readonly forwarding: Forwarding;
  /** u32 hash key of the address (`addressKey`). */
  readonly addrKey: number;
  weight: number;
  /** Latest non-zero weight (`last_weight`, used by mh). */
  lastWeight: number;
  upperThreshold: number;
  lowerThreshold: number;
  activeConns = 0;
  inactConns = 0;
  persistConns = 0;
  /** IP_VS_DEST_F_OVERLOAD, derived from the thresholds. */
  overloaded = false;
  /** IP_VS_DEST_F_AVAILABLE: false once the server was deleted from its service (entries may still point at it). */
  available = true;
  conns = 0;
  inPkts = 0;
  inBytes = 0;
  outPkts = 0;
  outBytes = 0;

  constructor(config: IpvsDestination) {
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

  /** `ip_vs_bind_dest` counter update and overload check (classic threshold logic). */
  bind(template: boolean, inactive: boolean): void {
    if (template) this.persistConns++;
    else if (inactive) this.inactConns++;
    else this.activeConns++;
    if (this.upperThreshold !== 0 && this.activeConns + this.inactConns >= this.upperThreshold) this.overloaded = true;
  }

  /** `ip_vs_unbind_dest` counter update and overload release (classic threshold logic). */
  unbind(template: boolean, inactive: boolean): void {
    if (template) this.persistConns--;
    else if (inactive) this.inactConns--;
    else this.activeConns--;
    const total = this.activeConns + this.inactConns;
    if (this.lowerThreshold !== 0) {
      if (total < this.lowerThreshold) this.overloaded = false;
    } else if (this.upperThreshold !== 0) {
      if (total * 4 < this.upperThreshold * 3) this.overloaded = false;
    } else this.overloaded = false;
  }
}

/** `ip_vs_dest_conn_overhead()`. */
export function connOverhead(d: DestState, mode: OverheadMode): number {
  return mode === 'classic' ? d.activeConns * 256 + d.inactConns : d.activeConns * 257 + d.inactConns;
}
