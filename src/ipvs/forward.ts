/**
 * What the director's IPVS does with one client→server frame that reached LOCAL_IN (`ip_vs_in_hook`): find an
 * existing connection entry or match a service and schedule a new one, update the entry's protocol state and the
 * counters, then transmit by the destination's forwarding method (DR, NAT, IPIP tunnel). Every outcome is a value.
 *
 * The caller decides that the frame is delivered locally (the VIP is a local address) — the topology's job.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';
import {
  type EthernetFrame,
  IPPROTO_IPIP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv4Packet,
  TCP_RST,
  TCP_SYN,
} from '../wire/types.ts';
import { Connection } from './conn-table.ts';
import type { DestState } from './dest-state.ts';
import type { IpvsEngine } from './engine.ts';
import type { IpvsDestination, ServiceKey } from './model.ts';
import { formatServiceKey } from './model.ts';
import { scheduleInput } from './scheduler.ts';
import type { ServiceState } from './service-state.ts';
import {
  nextTcpState,
  S_CLOSE,
  S_ESTABLISHED,
  S_FIN_WAIT,
  S_TIME_WAIT,
  TCP_STATE_NAMES,
  tcpStateActive,
} from './tcp-state.ts';

export interface ForwardContext {
  /** Milliseconds on the simulation clock. */
  readonly now: number;
  /** MAC of the director's interface toward the real servers (source MAC of forwarded frames). */
  readonly directorMac: Mac;
  /** The director's own address toward the real servers: outer source of tunnel packets. */
  readonly directorIp?: Ipv4;
  /** Firewall mark of the packet (0 = none). */
  readonly fwmark?: number;
  /**
   * Neighbour resolution on the director: the MAC to send to for `ip`. For DR the kernel forces the real server
   * itself as next hop; for NAT and TUN pass the next hop of the director's route to the real server.
   */
  readonly resolveNeighbour: (ip: Ipv4) => Mac | undefined;
}

export interface ServiceRef {
  readonly key: ServiceKey;
  readonly scheduler: string;
  readonly origin: Origin;
}

export type Decision =
  | { readonly kind: 'scheduled'; readonly scheduler: string; readonly destination: IpvsDestination }
  | {
      readonly kind: 'persistent-template';
      /** True when the template existed (the scheduler was not asked). */
      readonly reused: boolean;
      readonly scheduler: string;
      readonly destination: IpvsDestination;
    }
  | { readonly kind: 'existing-connection'; readonly destination: IpvsDestination; readonly createdAt: number };

export interface ConnectionReport {
  readonly created: boolean;
  /** An old TIME_WAIT/CLOSE (or FIN_WAIT with conn_reuse_mode bit 2) entry was expired by this SYN (conn_reuse_mode). */
  readonly replacedOld: boolean;
  readonly stateBefore: string;
  readonly state: string;
  /** Seconds until the entry expires. */
  readonly timeout: number;
  /** The destination's counters after this packet. */
  readonly activeConns: number;
  readonly inactConns: number;
}

export type ForwardOutcome =
  /** IPVS lets the packet continue to the director's own stack (NF_ACCEPT). */
  | {
      readonly kind: 'not-handled';
      readonly reason: 'not-ipv4' | 'not-tcp-udp' | 'no-service' | 'tcp-not-syn';
      readonly message: string;
      /** The service that would have matched (for `tcp-not-syn`). */
      readonly service?: ServiceRef;
    }
  /** No destination: the kernel logs `log` and answers the client with ICMP port unreachable. */
  | {
      readonly kind: 'no-destination';
      readonly service: ServiceRef;
      readonly scheduler: string;
      readonly log: string;
      readonly response: 'icmp-port-unreachable';
      /** The scheduler exists in the kernel but is not modelled here. */
      readonly unmodelled: boolean;
    }
  /** IPVS drops the packet. */
  | {
      readonly kind: 'dropped';
      readonly reason:
        | 'port-zero-not-persistent'
        | 'destination-deleted'
        | 'neighbour-unresolved'
        | 'ttl-exceeded'
        | 'unsupported';
      readonly message: string;
      readonly service?: ServiceRef;
      readonly decision?: Decision;
      readonly connection?: ConnectionReport;
    }
  /** Local-node destination: delivered to the director's own stack. */
  | { readonly kind: 'local-delivery'; readonly service: ServiceRef; readonly decision: Decision }
  | {
      readonly kind: 'forwarded';
      readonly method: 'route' | 'masq' | 'tunnel';
      readonly frame: EthernetFrame;
      readonly service: ServiceRef;
      readonly decision: Decision;
      readonly connection: ConnectionReport;
      /** Kernel behaviours worth telling (TTL kept or decremented…). */
      readonly notes: readonly string[];
    };

function serviceRef(s: ServiceState): ServiceRef {
  return { key: s.key, scheduler: s.schedulerName, origin: s.config.origin };
}

const input = scheduleInput();

function isNewConnExpected(c: Connection, mode: number): boolean {
  if (c.control !== undefined || c.protocol !== IPPROTO_TCP) return false;
  return c.state === S_TIME_WAIT || c.state === S_CLOSE || ((mode & 2) !== 0 && c.state === S_FIN_WAIT && c.noOutput);
}

function stateName(c: Connection): string {
  return c.protocol === IPPROTO_UDP ? 'UDP' : TCP_STATE_NAMES[c.state]!;
}

/** The facts of a client→server packet IPVS looks at (IPv4; addresses as u32). */
export interface ClientPacket {
  /** IPPROTO_TCP or IPPROTO_UDP. */
  readonly protocol: number;
  readonly saddr: number;
  readonly sport: number;
  readonly daddr: number;
  readonly dport: number;
  /** TCP flags (0 for UDP). */
  readonly tcpFlags: number;
  /** IP total length, for the byte counters. */
  readonly length: number;
  /** Firewall mark (0 = none). */
  readonly fwmark: number;
}

/** The packet was accepted by IPVS: it belongs to `conn`, whose state and counters were updated. */
export interface Accepted {
  readonly kind: 'accepted';
  readonly conn: Connection;
  readonly service: ServiceRef;
  readonly decision: Decision;
  readonly connection: ConnectionReport;
}

export type InputOutcome = Accepted | Exclude<ForwardOutcome, { kind: 'forwarded' | 'local-delivery' }>;

/**
 * `ip_vs_in_hook` up to transmission: connection lookup (with `conn_reuse_mode`), scheduling of a new connection
 * (persistence templates included), the `expire_nodest_conn` rule, the input statistics and the protocol state
 * update. Used by `forwardFrame` and by simulations that need no frames.
 */
export function ipvsInput(engine: IpvsEngine, pkt: ClientPacket, now: number): InputOutcome {
  engine.connections.expire(now);
  const { protocol, tcpFlags, fwmark } = pkt;
  const sport = pkt.sport;
  const vport = pkt.dport;

  let conn = engine.connections.lookup(protocol, pkt.saddr, sport, pkt.daddr, vport);
  let replacedOld = false;
  if (
    conn !== undefined &&
    tcpFlags & TCP_SYN &&
    engine.connReuseMode &&
    isNewConnExpected(conn, engine.connReuseMode)
  ) {
    engine.connections.remove(conn);
    conn = undefined;
    replacedOld = true;
  }

  let decision: Decision;
  let created = false;
  if (conn === undefined) {
    if (protocol === IPPROTO_TCP && (tcpFlags & TCP_RST || !(engine.sloppyTcp || tcpFlags & TCP_SYN))) {
      const s = engine.findService(protocol, pkt.daddr, vport, fwmark);
      return {
        kind: 'not-handled',
        reason: 'tcp-not-syn',
        message:
          'a TCP packet without SYN (or with RST) and without a connection entry is not scheduled; it goes to the ' +
          "director's own stack, which normally answers with a RST",
        ...(s ? { service: serviceRef(s) } : {}),
      };
    }
    const svc = engine.findService(protocol, pkt.daddr, vport, fwmark);
    if (svc === undefined)
      return {
        kind: 'not-handled',
        reason: 'no-service',
        message: `no virtual service matches ${protocol === IPPROTO_TCP ? 'TCP' : 'UDP'} ${formatIpv4(pkt.daddr as Ipv4)}:${vport}${fwmark ? ` fwmark ${fwmark}` : ''}`,
      };
    const r = scheduleNew(engine, svc, protocol, pkt.saddr, sport, pkt.daddr, vport, now);
    if (r.kind !== 'ok') return r;
    conn = r.conn;
    decision = r.decision;
    created = true;
  } else {
    decision = { kind: 'existing-connection', destination: conn.dest.config, createdAt: conn.createdAt };
  }

  const dest = conn.dest;
  const service = serviceRef(conn.service);
  const stateBefore = created ? 'NONE' : stateName(conn);
  if (!dest.available) {
    if (engine.expireNodestConn) {
      engine.connections.expireNow(conn);
      return {
        kind: 'dropped',
        reason: 'destination-deleted',
        message:
          'the connection entry points at a real server that was deleted; expire_nodest_conn=1 expires the entry ' +
          'now and drops this packet (the next packet without an entry is scheduled afresh)',
        service,
        decision,
      };
    }
    return {
      kind: 'dropped',
      reason: 'destination-deleted',
      message:
        'the connection entry points at a real server that was deleted; the packet is dropped silently until the ' +
        'entry expires (expire_nodest_conn=0)',
      service,
      decision,
    };
  }

  // ip_vs_in_stats
  const len = pkt.length;
  conn.inPkts++;
  dest.inPkts++;
  conn.service.inPkts++;
  conn.inBytes += len;
  dest.inBytes += len;
  conn.service.inBytes += len;

  // ip_vs_set_state (direction input; DR/TUN use the INPUT-ONLY table)
  const timeout = setState(engine, conn, tcpFlags, conn.noOutput ? 'input-only' : 'input', created);
  engine.connections.touch(conn, now, timeout);
  if (conn.control !== undefined && conn.protocol === IPPROTO_TCP && conn.state === S_ESTABLISHED)
    conn.control.assured = true;
  return {
    kind: 'accepted',
    conn,
    service,
    decision,
    connection: {
      created,
      replacedOld,
      stateBefore,
      state: stateName(conn),
      timeout,
      activeConns: dest.activeConns,
      inactConns: dest.inactConns,
    },
  };
}

/** Protocol state transition with the ActiveConn/InActConn move; returns the new timeout (seconds). */
function setState(
  engine: IpvsEngine,
  conn: Connection,
  tcpFlags: number,
  direction: 'input' | 'output' | 'input-only',
  created: boolean,
): number {
  if (conn.protocol !== IPPROTO_TCP) return engine.udpTimeout;
  const dest = conn.dest;
  const ns = nextTcpState(conn.state, tcpFlags, direction);
  if (ns !== conn.state || created) {
    const active = tcpStateActive(ns);
    if (!conn.inactive && !active) {
      dest.activeConns--;
      dest.inactConns++;
      conn.inactive = true;
    } else if (conn.inactive && active) {
      dest.activeConns++;
      dest.inactConns--;
      conn.inactive = false;
    }
  }
  conn.state = ns;
  return engine.tcpTimeouts[ns]!;
}

export function forwardFrame(engine: IpvsEngine, frame: EthernetFrame, ctx: ForwardContext): ForwardOutcome {
  const ip = frame.payload;
  if (ip.kind !== 'ipv4')
    return { kind: 'not-handled', reason: 'not-ipv4', message: 'not an IPv4 packet (IPv6 forwarding is not modelled)' };
  const l4 = ip.payload;
  if (l4.kind !== 'tcp' && l4.kind !== 'udp')
    return { kind: 'not-handled', reason: 'not-tcp-udp', message: `IP protocol ${ip.protocol} is not balanced` };
  const r = ipvsInput(
    engine,
    {
      protocol: l4.kind === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
      saddr: ip.src,
      sport: l4.srcPort,
      daddr: ip.dst,
      dport: l4.dstPort,
      tcpFlags: l4.kind === 'tcp' ? l4.flags : 0,
      length: ip.totalLength ?? 0,
      fwmark: ctx.fwmark ?? 0,
    },
    ctx.now,
  );
  if (r.kind !== 'accepted') return r;
  return transmit(engine, frame, ip, r.conn, r.conn.dest, ctx, r.service, r.decision, r.connection);
}

export type ReplyOutcome =
  /** No NAT entry for this reply tuple: IPVS leaves the packet alone (it is routed or filtered as usual). */
  | { readonly kind: 'not-ipvs'; readonly message: string }
  /** The reply was rewritten (source := VIP:vport) and continues toward the client. */
  | {
      readonly kind: 'snat';
      readonly frame: EthernetFrame;
      readonly service: ServiceRef;
      readonly connection: ConnectionReport;
      readonly notes: readonly string[];
    };

/**
 * The director's handling of a real server's reply in NAT mode (`ip_vs_out_hook` at FORWARD, `handle_response`):
 * look the connection up by the reply tuple ⟨real server:port → client:port⟩, rewrite the source to the virtual
 * address and port, update the state with the OUTPUT table (the first reply clears NOOUTPUT) and count the outgoing
 * statistics. Call it when a frame from a real server reaches the director's FORWARD path. The returned frame keeps
 * the MAC addresses of the input; the caller routes it toward the client (checksums are left to be recomputed).
 */
export function forwardReply(engine: IpvsEngine, frame: EthernetFrame, now: number): ReplyOutcome {
  engine.connections.expire(now);
  const ip = frame.payload;
  if (ip.kind !== 'ipv4') return { kind: 'not-ipvs', message: 'not an IPv4 packet' };
  const l4 = ip.payload;
  if (l4.kind !== 'tcp' && l4.kind !== 'udp') return { kind: 'not-ipvs', message: 'not TCP or UDP' };
  const protocol = l4.kind === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP;
  const conn = engine.connections.lookupOut(protocol, ip.src, l4.srcPort, ip.dst, l4.dstPort);
  if (conn === undefined)
    return {
      kind: 'not-ipvs',
      message: `no IPVS NAT entry for ${formatIpv4(ip.src)}:${l4.srcPort} → ${formatIpv4(ip.dst)}:${l4.dstPort}`,
    };
  const dest = conn.dest;
  const stateBefore = stateName(conn);
  const len = ip.totalLength ?? 0;
  conn.outPkts++;
  conn.outBytes += len;
  dest.outPkts++;
  dest.outBytes += len;
  conn.service.outPkts++;
  conn.service.outBytes += len;
  conn.noOutput = false;
  const timeout = setState(engine, conn, l4.kind === 'tcp' ? l4.flags : 0, 'output', false);
  engine.connections.touch(conn, now, timeout);
  if (conn.control !== undefined && (protocol === IPPROTO_UDP || conn.state === S_ESTABLISHED))
    conn.control.assured = true;
  const { checksum: _c, ...l4rest } = l4;
  const { checksum: _i, ...iprest } = ip;
  const vaddr = conn.vaddr as Ipv4;
  return {
    kind: 'snat',
    frame: { ...frame, payload: { ...iprest, src: vaddr, payload: { ...l4rest, srcPort: conn.vport } } },
    service: serviceRef(conn.service),
    connection: {
      created: false,
      replacedOld: false,
      stateBefore,
      state: stateName(conn),
      timeout,
      activeConns: dest.activeConns,
      inactConns: dest.inactConns,
    },
    notes: [
      `NAT reply: source ${formatIpv4(ip.src)}:${l4.srcPort} rewritten to the virtual service ${formatIpv4(vaddr)}:${conn.vport}`,
    ],
  };
}

type Scheduled = { kind: 'ok'; conn: Connection; decision: Decision };

function scheduleNew(
  engine: IpvsEngine,
  svc: ServiceState,
  protocol: number,
  caddr: number,
  cport: number,
  vaddr: number,
  vport: number,
  now: number,
): Scheduled | Extract<ForwardOutcome, { kind: 'no-destination' | 'dropped' }> {
  const key = svc.key;
  const persistence = svc.config.persistence;
  const noDest = (failure: string, unmodelled: boolean): Extract<ForwardOutcome, { kind: 'no-destination' }> => ({
    kind: 'no-destination',
    service: serviceRef(svc),
    scheduler: svc.schedulerName,
    log: `IPVS: ${svc.schedulerName}: ${logName(key)} - ${failure}`,
    response: 'icmp-port-unreachable',
    unmodelled,
  });
  const pick = (): DestState | string => {
    const s = svc.scheduler;
    if (s === undefined) return `scheduler '${svc.schedulerName}' not modelled`;
    input.saddr = caddr;
    input.sport = cport;
    input.daddr = vaddr;
    input.dport = vport;
    return s.schedule(svc, input) ?? s.failure;
  };
  const svcPort = key.kind === 'addr' ? key.port : 0;

  if (persistence !== undefined) {
    // ip_vs_sched_persist
    const snet = (caddr & persistence.netmask) >>> 0;
    const tProto = key.kind === 'fwmark' ? 0 : protocol;
    const tVaddr = key.kind === 'fwmark' ? key.fwmark : vaddr;
    const tVport = key.kind === 'fwmark' || svcPort === 0 ? 0 : vport;
    let tmpl = engine.connections.lookup(tProto, snet, 0, tVaddr, tVport);
    if (tmpl !== undefined && (!tmpl.dest.available || (engine.expireQuiescentTemplate && tmpl.dest.weight === 0))) {
      engine.connections.remove(tmpl);
      tmpl = undefined;
    }
    let reused = true;
    if (tmpl === undefined) {
      const d = pick();
      if (typeof d === 'string') return noDest(d, svc.scheduler === undefined);
      reused = false;
      tmpl = new Connection({
        protocol: tProto,
        caddr: snet,
        cport: 0,
        vaddr: tVaddr,
        vport: tVport,
        dport: tVport === 0 ? 0 : d.port,
        dest: d,
        service: svc,
        template: true,
        now,
        timeout: persistence.timeout,
      });
      engine.connections.add(tmpl);
    } else engine.connections.touch(tmpl, now, persistence.timeout);
    const dest = tmpl.dest;
    const conn = new Connection({
      protocol,
      caddr,
      cport,
      vaddr,
      vport,
      dport: vport === svcPort && dest.port ? dest.port : vport,
      dest,
      service: svc,
      template: false,
      control: tmpl,
      now,
      timeout: 3,
    });
    engine.connections.add(conn);
    countNew(svc, dest);
    return {
      kind: 'ok',
      conn,
      decision: { kind: 'persistent-template', reused, scheduler: svc.schedulerName, destination: dest.config },
    };
  }

  if (key.kind === 'addr' && vport !== svcPort)
    return {
      kind: 'dropped',
      reason: 'port-zero-not-persistent',
      message: 'Schedule: port zero only supported in persistent services, check your ipvs configuration',
      service: serviceRef(svc),
    };
  const d = pick();
  if (typeof d === 'string') return noDest(d, svc.scheduler === undefined);
  const conn = new Connection({
    protocol,
    caddr,
    cport,
    vaddr,
    vport,
    dport: d.port ? d.port : vport,
    dest: d,
    service: svc,
    template: false,
    now,
    timeout: 3,
  });
  engine.connections.add(conn);
  countNew(svc, d);
  return { kind: 'ok', conn, decision: { kind: 'scheduled', scheduler: svc.schedulerName, destination: d.config } };
}

function countNew(svc: ServiceState, d: DestState): void {
  svc.conns++;
  d.conns++;
}

/** How `ip_vs_scheduler_err` names a service in the kernel log. */
function logName(k: ServiceKey): string {
  if (k.kind === 'fwmark') return `FWM ${k.fwmark} 0x${k.fwmark.toString(16)}`;
  return formatServiceKey(k);
}

function transmit(
  engine: IpvsEngine,
  frame: EthernetFrame,
  ip: Ipv4Packet,
  conn: Connection,
  dest: DestState,
  ctx: ForwardContext,
  service: ServiceRef,
  decision: Decision,
  connection: ConnectionReport,
): ForwardOutcome {
  const f = dest.forwarding;
  if (f.kind === 'local') return { kind: 'local-delivery', service, decision };
  const dropped = (
    reason: 'neighbour-unresolved' | 'ttl-exceeded' | 'unsupported',
    message: string,
  ): ForwardOutcome => ({ kind: 'dropped', reason, message, service, decision, connection });
  if (dest.address.family !== 'ipv4')
    return dropped('unsupported', 'IPv6 real servers (tunnel to IPv6) are not modelled');
  const rip = dest.address.addr;
  const notes: string[] = [];
  let inner: Ipv4Packet = ip;
  if (engine.decrementTtl) {
    if (ip.ttl <= 1) return dropped('ttl-exceeded', 'TTL exceeded on transmit (decrement_ttl); ICMP time exceeded');
    inner = withoutChecksum({ ...ip, ttl: ip.ttl - 1 });
    notes.push(`TTL decremented ${ip.ttl} → ${ip.ttl - 1} (decrement_ttl, current kernels)`);
  } else notes.push(`TTL kept at ${ip.ttl} (kernels before decrement_ttl; as in the founding case capture)`);

  switch (f.kind) {
    case 'route': {
      const mac = ctx.resolveNeighbour(rip);
      if (mac === undefined)
        return dropped(
          'neighbour-unresolved',
          `DR: no neighbour entry for real server ${formatIpv4(rip)} (ARP failed)`,
        );
      notes.push('DR: IP header untouched; only the MAC addresses change (next hop = the real server)');
      return {
        kind: 'forwarded',
        method: 'route',
        frame: { ...frame, src: ctx.directorMac, dst: mac, payload: inner },
        service,
        decision,
        connection,
        notes,
      };
    }
    case 'masq': {
      const l4 = inner.payload;
      if (l4.kind !== 'tcp' && l4.kind !== 'udp') return dropped('unsupported', 'NAT of this protocol is not modelled');
      const mac = ctx.resolveNeighbour(rip);
      if (mac === undefined)
        return dropped('neighbour-unresolved', `NAT: no neighbour entry toward ${formatIpv4(rip)} (ARP failed)`);
      const { checksum: _c, ...l4rest } = l4;
      const { checksum: _i, ...iprest } = inner;
      notes.push(`NAT: destination rewritten to ${formatIpv4(rip)}:${conn.dport}; source (the client) unchanged`);
      return {
        kind: 'forwarded',
        method: 'masq',
        frame: {
          ...frame,
          src: ctx.directorMac,
          dst: mac,
          payload: { ...iprest, dst: rip, payload: { ...l4rest, dstPort: conn.dport } },
        },
        service,
        decision,
        connection,
        notes,
      };
    }
    case 'tunnel': {
      const encap = f.encap ?? { type: 'ipip' };
      if (encap.type !== 'ipip') return dropped('unsupported', `tunnel type ${encap.type} is not modelled (only ipip)`);
      if (ctx.directorIp === undefined)
        return dropped('unsupported', "TUN needs the director's own address (ForwardContext.directorIp)");
      const mac = ctx.resolveNeighbour(rip);
      if (mac === undefined)
        return dropped('neighbour-unresolved', `TUN: no neighbour entry toward ${formatIpv4(rip)} (ARP failed)`);
      notes.push(
        `TUN: IPIP outer header ${formatIpv4(ctx.directorIp)} → ${formatIpv4(rip)} around the unchanged client packet`,
      );
      const outer: Ipv4Packet = {
        kind: 'ipv4',
        tos: inner.tos,
        id: 0,
        dontFragment: inner.dontFragment,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: inner.ttl,
        protocol: IPPROTO_IPIP,
        src: ctx.directorIp,
        dst: rip,
        payload: inner,
      };
      return {
        kind: 'forwarded',
        method: 'tunnel',
        frame: { ...frame, src: ctx.directorMac, dst: mac, payload: outer },
        service,
        decision,
        connection,
        notes,
      };
    }
  }
}

function withoutChecksum(p: Ipv4Packet): Ipv4Packet {
  const { checksum: _c, ...rest } = p;
  return rest;
}
