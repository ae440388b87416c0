/**
 * The IPVS table as configuration: virtual services and their real servers (destinations), each remembering the
 * listing line it came from. Runtime state (connection counters, scheduler state, connection entries) lives in
 * `state.ts` / `conn-table.ts`; this file is plain readonly data.
 *
 * Destination order: the kernel keeps a service's destinations in a list where every newly added server is
 * inserted at the HEAD (`list_add_rcu` in `__ip_vs_update_dest`), so the kernel order is the reverse of the order of
 * addition, and schedulers iterate (and break ties) in that order. `ipvsadm -L`/`-S` print the table SORTED by
 * address and port unless `--nosort` is given, which hides the kernel order. `IpvsTable.order` says which of the
 * two the `destinations` arrays hold.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Ipv6 } from '../addr/ipv6.ts';
import type { Origin } from '../source/origin.ts';

export type IpvsProtocol = 'TCP' | 'UDP' | 'SCTP';

export const IPVS_PROTOCOL_NUMBER: Readonly<Record<IpvsProtocol, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

export type IpAddress =
  | { readonly family: 'ipv4'; readonly addr: Ipv4 }
  | { readonly family: 'ipv6'; readonly addr: Ipv6 };

/** Address-based (`-t/-u/--sctp-service VIP:PORT`) or firewall-mark (`-f MARK`) service. */
export type ServiceKey =
  | {
      readonly kind: 'addr';
      readonly protocol: IpvsProtocol;
      readonly address: IpAddress;
      readonly port: number;
    }
  | {
      readonly kind: 'fwmark';
      /** Unsigned 32-bit mark (ipvsadm ≤ 1.31 prints marks ≥ 2^31 as negative numbers; readers convert). */
      readonly fwmark: number;
      readonly family: 'ipv4' | 'ipv6';
    };

/** Scheduler flag bits as `ipvsadm -b` names them: `flag-1..3`, for sh/mh `{sh,mh}-fallback` and `{sh,mh}-port`. */
export const SCHED_FLAG_1 = 1;
export const SCHED_FLAG_2 = 2;
export const SCHED_FLAG_3 = 4;
export const SH_FALLBACK = SCHED_FLAG_1;
export const SH_PORT = SCHED_FLAG_2;
export const MH_FALLBACK = SCHED_FLAG_1;
export const MH_PORT = SCHED_FLAG_2;

export interface Persistence {
  /** Seconds (`-p`; ipvsadm's default without a value is 360). */
  readonly timeout: number;
  /**
   * IPv4 services: the client netmask as an unsigned 32-bit number (0xffffffff = per client address).
   * IPv6 services: the prefix length (128 = per client address).
   */
  readonly netmask: number;
  /** Persistence engine (`--pe sip`). */
  readonly pe?: string;
}

/** Counters as `ipvsadm --stats` prints them (64-bit in the kernel; kept as numbers here, exact up to 2^53). */
export interface IpvsStats {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

/** Rates as `ipvsadm --rate` prints them. */
export interface IpvsRates {
  readonly cps: number;
  readonly inPps: number;
  readonly outPps: number;
  readonly inBps: number;
  readonly outBps: number;
}

export interface IpvsService {
  readonly key: ServiceKey;
  /**
   * Kernel scheduler module name (`rr`, `wrr`, `wlc`, …); ipvsadm does not validate it. Absent when the source does
   * not show it (`--stats`/`--rate` listings).
   */
  readonly scheduler?: string;
  /** Bit set of SCHED_FLAG_*. */
  readonly schedFlags: number;
  readonly persistence?: Persistence;
  /** One-packet scheduling (`-o`, printed `ops`). */
  readonly onePacket: boolean;
  /** Destinations in the order given by `IpvsTable.order`. */
  readonly destinations: readonly IpvsDestination[];
  readonly stats?: IpvsStats;
  readonly rates?: IpvsRates;
  readonly origin: Origin;
}

export type TunnelEncap =
  | { readonly type: 'ipip' }
  | { readonly type: 'gue'; readonly port: number; readonly csum: 'nocsum' | 'csum' | 'remcsum' }
  | { readonly type: 'gre'; readonly csum: 'nocsum' | 'csum' };

/**
 * Forwarding method. `local` is what old kernels displayed for a real server whose address is local to the
 * director; current kernels keep the configured method.
 */
export type Forwarding =
  | { readonly kind: 'route' }
  | { readonly kind: 'masq' }
  | { readonly kind: 'local' }
  /** `encap` is absent when the source did not show it (the default listing prints only `Tunnel`); the kernel default is ipip. */
  | { readonly kind: 'tunnel'; readonly encap?: TunnelEncap };

export interface IpvsDestination {
  readonly address: IpAddress;
  readonly port: number;
  /** Absent when the source does not show it (`--stats`, `--rate`, `--thresholds`, `--persistent-conn`). */
  readonly forwarding?: Forwarding;
  /** Absent when the source does not show it (`--stats`, `--rate`, `--thresholds`). */
  readonly weight?: number;
  /** `-x`; 0 = no limit. Absent when the source does not show it (default listing, save format). */
  readonly upperThreshold?: number;
  /** `-y`; 0 = derived from the upper threshold. */
  readonly lowerThreshold?: number;
  /** Counters as observed in a listing (ActiveConn / InActConn), when the source shows them. */
  readonly activeConns?: number;
  readonly inactConns?: number;
  readonly persistConns?: number;
  readonly stats?: IpvsStats;
  readonly rates?: IpvsRates;
  readonly origin: Origin;
}

export interface IpvsTable {
  /** `kernel`: destinations newest first, as the kernel iterates them. `sorted`: ipvsadm's address/port order. */
  readonly order: 'kernel' | 'sorted';
  readonly services: readonly IpvsService[];
}

/** `IP Virtual Server version 1.2.1 (size=4096)`. */
export interface IpvsHeader {
  readonly version: string;
  readonly size: number;
}

export const IPVS_VERSION = '1.2.1';
export const IPVS_DEFAULT_CONN_TAB_SIZE = 4096;
export const IPVS_DEFAULT_PERSISTENT_TIMEOUT = 360;

export function ipv4Address(addr: Ipv4): IpAddress {
  return { family: 'ipv4', addr };
}

export function ipv6Address(addr: Ipv6): IpAddress {
  return { family: 'ipv6', addr };
}

export function sameAddress(a: IpAddress, b: IpAddress): boolean {
  return a.family === b.family && a.addr === b.addr;
}

/** `10.0.0.1:80` / `[2001:db8::1]:80`, as ipvsadm -n prints addresses. */
export function formatAddrPort(a: IpAddress, port: number): string {
  return a.family === 'ipv4' ? `${formatIpv4(a.addr)}:${port}` : `[${a.addr}]:${port}`;
}

export function formatAddress(a: IpAddress): string {
  return a.family === 'ipv4' ? formatIpv4(a.addr) : a.addr;
}

/** A one-line name for a service: `TCP 192.0.2.208:80`, `FWM 10`, `FWM 2 IPv6`. */
export function formatServiceKey(k: ServiceKey): string {
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}${k.family === 'ipv6' ? ' IPv6' : ''}`;
  return `${k.protocol} ${formatAddrPort(k.address, k.port)}`;
}

export function serviceFamily(k: ServiceKey): 'ipv4' | 'ipv6' {
  return k.kind === 'fwmark' ? k.family : k.address.family;
}

export function sameServiceKey(a: ServiceKey, b: ServiceKey): boolean {
  if (a.kind === 'fwmark') return b.kind === 'fwmark' && a.fwmark === b.fwmark && a.family === b.family;
  return b.kind === 'addr' && a.protocol === b.protocol && a.port === b.port && sameAddress(a.address, b.address);
}

/** The name ipvsadm's Forward column prints. */
export function forwardName(f: Forwarding): 'Route' | 'Masq' | 'Local' | 'Tunnel' {
  switch (f.kind) {
    case 'route':
      return 'Route';
    case 'masq':
      return 'Masq';
    case 'local':
      return 'Local';
    case 'tunnel':
      return 'Tunnel';
  }
}

/** Names of the scheduler flag bits for a scheduler, as ipvsadm's `print_sched_flags` chooses them. */
export function schedFlagNames(scheduler: string): readonly [string, string, string] {
  if (scheduler === 'sh') return ['sh-fallback', 'sh-port', 'flag-3'];
  if (scheduler === 'mh') return ['mh-fallback', 'mh-port', 'flag-3'];
  return ['flag-1', 'flag-2', 'flag-3'];
}
