/**
 * The simulated IPVS of one director: services (in kernel state), the connection table and the sysctls/kernel
 * behaviours that change outcomes. Built from an `IpvsTable`; `snapshot(now)` turns it back into a table with live
 * counters for `writeIpvsadmList`.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { type Issue, issue, unsupported } from '../source/issue.ts';
import { ConnectionTable } from './conn-table.ts';
import type { OverheadMode } from './dest-state.ts';
import { IPVS_PROTOCOL_NUMBER, type IpvsDestination, type IpvsService, type IpvsTable } from './model.ts';
import { UNMODELLED_SCHEDULERS } from './schedulers.ts';
import { ServiceState } from './service-state.ts';
import { TCP_TIMEOUTS, UDP_TIMEOUT } from './tcp-state.ts';

export interface IpvsEngineOptions {
  /** Connection-overhead formula (default `classic`; `totalconns` for Linux 6.12.105+). */
  readonly overhead?: OverheadMode;
  /**
   * Whether transmission decrements the IP TTL. Current kernels do (`decrement_ttl` in ip_vs_xmit.c); the founding
   * case's director (2016) did not — its capture shows ttl 48 in and out. Default false.
   */
  readonly decrementTtl?: boolean;
  /** `ipvsadm --set tcp tcpfin udp` in seconds (0 or absent = kernel default 900 120 300). */
  readonly timeouts?: { readonly tcp?: number; readonly tcpfin?: number; readonly udp?: number };
  /** sysctl `conn_reuse_mode` (default 1). */
  readonly connReuseMode?: number;
  /** sysctl `sloppy_tcp` (default false): schedule TCP without SYN. */
  readonly sloppyTcp?: boolean;
  /** sysctl `expire_quiescent_template` (default false). */
  readonly expireQuiescentTemplate?: boolean;
  /** sysctl `expire_nodest_conn` (default false): expire entries of deleted servers on their next packet. */
  readonly expireNodestConn?: boolean;
}

export class IpvsEngine {
  readonly services: ServiceState[] = [];
  readonly connections = new ConnectionTable();
  /** Problems found while building (unmodelled schedulers, unknown list order…). */
  readonly issues: Issue[] = [];
  readonly overhead: OverheadMode;
  readonly decrementTtl: boolean;
  readonly connReuseMode: number;
  readonly sloppyTcp: boolean;
  readonly expireQuiescentTemplate: boolean;
  readonly expireNodestConn: boolean;
  /** Seconds, indexed by TCP state. */
  readonly tcpTimeouts: number[];
  readonly udpTimeout: number;
  /** IPv4 address → (protocol << 16 | port) → service. */
  private readonly byAddr = new Map<number, Map<number, ServiceState>>();
  private readonly byFwmark = new Map<number, ServiceState>();

  constructor(table: IpvsTable, options: IpvsEngineOptions = {}) {
    this.overhead = options.overhead ?? 'classic';
    this.decrementTtl = options.decrementTtl ?? false;
    this.connReuseMode = options.connReuseMode ?? 1;
    this.sloppyTcp = options.sloppyTcp ?? false;
    this.expireQuiescentTemplate = options.expireQuiescentTemplate ?? false;
    this.expireNodestConn = options.expireNodestConn ?? false;
    this.tcpTimeouts = [...TCP_TIMEOUTS];
    if (options.timeouts?.tcp) this.tcpTimeouts[1] = options.timeouts.tcp;
    if (options.timeouts?.tcpfin) this.tcpTimeouts[4] = options.timeouts.tcpfin;
    this.udpTimeout = options.timeouts?.udp || UDP_TIMEOUT;
    if (table.order === 'sorted' && table.services.some((s) => s.destinations.length > 1))
      this.issues.push(
        issue(
          'ipvs-list-order-unknown',
          'the listing is sorted by address (ipvsadm without --nosort), which hides the kernel list order that ' +
            'schedulers iterate and break ties in; the listed order is assumed',
          undefined,
          'info',
        ),
      );
    for (const s of table.services) this.addService(s);
  }

  /** Adds a service with its destinations, taken in kernel list order. */
  addService(config: IpvsService, destinations: readonly IpvsDestination[] = config.destinations): ServiceState {
    const svc = new ServiceState(config, this.overhead, destinations);
    if (svc.scheduler === undefined)
      this.issues.push(
        UNMODELLED_SCHEDULERS.includes(svc.schedulerName)
          ? unsupported(
              'ipvs-scheduler-unmodelled',
              `scheduler '${svc.schedulerName}' is not modelled yet; new connections to this service are not simulated`,
              config.origin.pos,
            )
          : issue(
              'ipvs-scheduler-unknown',
              `no kernel scheduler '${svc.schedulerName}' (the kernel refuses the service: "Scheduler or persistence engine not found")`,
              config.origin.pos,
            ),
      );
    this.services.push(svc);
    const k = config.key;
    if (k.kind === 'fwmark') {
      if (k.family === 'ipv4') this.byFwmark.set(k.fwmark, svc);
    } else if (k.address.family === 'ipv4') {
      let m = this.byAddr.get(k.address.addr);
      if (m === undefined) {
        m = new Map();
        this.byAddr.set(k.address.addr, m);
      }
      m.set((IPVS_PROTOCOL_NUMBER[k.protocol] << 16) | k.port, svc);
    }
    return svc;
  }

  /**
   * `ip_vs_service_find`: the fwmark service first (when the packet carries a mark), then ⟨protocol, VIP, port⟩,
   * then the port-zero catch-all service. (The FTP-data special case is not modelled.)
   */
  findService(protocol: number, vaddr: Ipv4 | number, vport: number, fwmark: number): ServiceState | undefined {
    if (fwmark !== 0) {
      const s = this.byFwmark.get(fwmark >>> 0);
      if (s !== undefined) return s;
    }
    const m = this.byAddr.get(vaddr);
    if (m === undefined) return undefined;
    return m.get((protocol << 16) | vport) ?? m.get(protocol << 16);
  }

  /** The table with live counters (ActiveConn, InActConn, PersistConn, stats), in kernel order. */
  snapshot(now: number): IpvsTable {
    this.connections.expire(now);
    return {
      order: 'kernel',
      services: this.services.map((s) => ({
        ...s.config,
        stats: { conns: s.conns, inPkts: s.inPkts, outPkts: s.outPkts, inBytes: s.inBytes, outBytes: s.outBytes },
        destinations: s.dests.map((d) => ({
          ...d.config,
          forwarding: d.forwarding,
          weight: d.weight,
          upperThreshold: d.upperThreshold,
          lowerThreshold: d.lowerThreshold,
          activeConns: d.activeConns,
          inactConns: d.inactConns,
          persistConns: d.persistConns,
          stats: { conns: d.conns, inPkts: d.inPkts, outPkts: d.outPkts, inBytes: d.inBytes, outBytes: d.outBytes },
        })),
      })),
    };
  }
}
