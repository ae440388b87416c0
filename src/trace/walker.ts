/**
 * The walker: moves frames through the dataplane, hop by hop, the way Linux would — NICs, taps, bridges with
 * ebtables hooks, L2 segments, the IPv4 stack (ARP with arp_ignore/arp_announce, rp_filter, routing,
 * forwarding), IPVS in LOCAL_IN, sockets that answer.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { isMulticastMac, MAC_BROADCAST, MAC_ZERO, type Mac } from '../addr/mac.ts';
import { ipv4Mask, prefixContains } from '../addr/prefix.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { Iface, Node, Route } from '../topology/model.ts';
import {
  ARP_REPLY,
  ARP_REQUEST,
  type ArpPacket,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetFrame,
  IPPROTO_IPIP,
  type Ipv4Packet,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  type TcpSegment,
} from '../wire/types.ts';
import type { Dataplane, NodeState, SegmentState } from './dataplane.ts';
import type { BridgeHook } from './engines.ts';
import {
  type Capture,
  DISPOSITION_RANK,
  type Disposition,
  type End,
  type EndCause,
  type Hop,
  type NeighbourStep,
  type NetfilterStep,
  type Place,
  type Step,
} from './types.ts';

/** Modelled delays (not predictions): they only order and space the timestamps of captures. */
export const DELAY_NS = {
  wire: 1_000n,
  bridge: 2_000n,
  ipvs: 11_000n,
  socket: 40_000n,
  internet: 20_000_000n,
} as const;

const MAX_HOPS = 512;
const FLOODED = implicit('broadcast and multicast frames are flooded');

export interface WalkGoal {
  /** Called when a node's stack accepts a packet; returning true ends the branch as reached. */
  readonly onArpReply?: (node: Node, arp: ArpPacket) => boolean;
  readonly onTcp?: (node: Node, pkt: Ipv4Packet, seg: TcpSegment) => boolean;
}

interface Event {
  readonly kind: 'rx' | 'tx';
  readonly node: string;
  readonly iface: string;
  readonly frame: EthernetFrame;
  readonly parent?: number;
  readonly timeNs: bigint;
}

export interface WalkContext {
  readonly dp: Dataplane;
  readonly captures: Capture[];
  /** When set, every firewall decision is logged (see `retrace.ts`). */
  readonly reads?: FirewallReads;
}

/** A firewall decision as the walker asked for it, where its step went, and what it got. */
export interface FirewallRead {
  readonly host: string;
  readonly kind: 'ebtables' | 'bridged';
  readonly table: 'nat' | 'filter';
  readonly hook: BridgeHook;
  readonly frame: EthernetFrame;
  readonly ctx: { readonly inIface?: string; readonly outIface?: string } & {
    readonly bridge?: string;
    readonly inPort?: string;
    readonly outPort?: string;
  };
  readonly hop: Hop;
  /** Index in `hop.steps` the step took (or would have taken). */
  readonly pos: number;
  readonly step: NetfilterStep | undefined;
}

export interface FirewallReads {
  readonly firewall: FirewallRead[];
}

export class Walker {
  readonly hops: Hop[] = [];
  private readonly queue: Event[] = [];
  /** Index of the next event to take from `queue` (taken events stay: shifting would copy the array). */
  private head = 0;
  reached: Hop | undefined;

  constructor(
    private readonly ctx: WalkContext,
    private readonly goal: WalkGoal,
  ) {}

  run(first: Event): void {
    this.runFrom(() => this.queue.push(first));
  }

  /** Seeds the queue (e.g. with a frame sent by a host through its bridge device) and walks until it is empty. */
  runFrom(seed: () => void): void {
    seed();
    while (this.head < this.queue.length) {
      const ev = this.queue[this.head++]!;
      if (this.hops.length >= MAX_HOPS) {
        const hop = this.newHop(ev, 'in');
        this.end(hop, 'loop', `more than ${MAX_HOPS} hops: a forwarding loop`);
        break;
      }
      if (ev.kind === 'tx') this.transmit(ev);
      else this.receive(ev);
    }
  }

  /** Starts a walk with a frame sent by `node` out of `iface`. */
  static send(
    ctx: WalkContext,
    goal: WalkGoal,
    node: string,
    iface: string,
    frame: EthernetFrame,
    timeNs: bigint,
    parent?: number,
  ): Walker {
    const w = new Walker(ctx, goal);
    w.run({ kind: 'tx', node, iface, frame, timeNs, ...(parent !== undefined ? { parent } : {}) });
    return w;
  }

  // ---- hops and ends ----

  private newHop(ev: Event, direction: 'in' | 'out', point?: string): Hop {
    // Built field by field: conditional spreads cost more than the rest of a hop.
    const hop = {
      id: this.hops.length,
      place: { node: ev.node, iface: ev.iface },
      direction,
      timeNs: ev.timeNs,
      frame: ev.frame,
      steps: [],
    } as { -readonly [K in keyof Hop]: Hop[K] };
    if (ev.parent !== undefined) hop.parent = ev.parent;
    if (point) hop.point = point;
    this.hops.push(hop);
    return hop;
  }

  private capture(
    hop: Hop,
    point: string,
    direction: 'in' | 'out',
    frame: EthernetFrame = hop.frame,
    timeNs = hop.timeNs,
  ): void {
    hop.steps.push({ kind: 'capture', point, direction });
    this.ctx.captures.push({ point, timeNs, frame });
  }

  private end(
    hop: Hop,
    disposition: Disposition,
    reason: string,
    origin?: Origin,
    place?: Place,
    cause?: EndCause,
  ): void {
    const e = { disposition, place: place ?? hop.place, reason } as { -readonly [K in keyof End]: End[K] };
    if (origin) e.origin = origin;
    if (cause) e.cause = cause;
    hop.end = e;
  }

  private state(name: string): NodeState {
    const st = this.ctx.dp.nodes.get(name);
    if (!st) throw new Error(`internal: unknown node ${name}`);
    return st;
  }

  private iface(node: Node, name: string): Iface {
    const i = node.interfaces.get(name);
    if (!i) throw new Error(`internal: unknown interface ${node.name}:${name}`);
    return i;
  }

  // ---- links ----

  private transmit(ev: Event): void {
    const st = this.state(ev.node);
    const iface = this.iface(st.node, ev.iface);
    const point = `${ev.node}:${ev.iface}`;
    const hop = this.newHop(ev, 'out', point);
    this.capture(hop, point, 'out');
    const t = ev.timeNs + (iface.pointToPoint ? DELAY_NS.internet : DELAY_NS.wire);
    if (iface.peer) {
      this.queue.push({
        kind: 'rx',
        node: iface.peer.node,
        iface: iface.peer.iface,
        frame: ev.frame,
        parent: hop.id,
        timeNs: t,
      });
      return;
    }
    if (iface.segment) {
      const seg = this.ctx.dp.segments.get(iface.segment);
      if (!seg) {
        this.end(hop, 'blackholed', `segment ${iface.segment} is not defined`);
        return;
      }
      const self = memberIndex(seg, ev.node, ev.iface);
      if (!isMulticastMac(ev.frame.src) && self >= 0) seg.fdb.set(ev.frame.src, self);
      const known = isMulticastMac(ev.frame.dst) ? undefined : seg.fdb.get(ev.frame.dst);
      if (known === self) {
        this.end(hop, 'discarded', `the segment ${seg.name} delivers ${ev.frame.dst} back to the sender's port`);
        return;
      }
      let targets: number[];
      if (known !== undefined) targets = [known];
      else {
        targets = [];
        for (let k = 0; k < seg.members.length; k++) if (k !== self) targets.push(k);
      }
      const labels = memberLabels(seg);
      hop.steps.push({
        kind: 'segment',
        segment: seg.name,
        decision: known !== undefined ? 'forward' : 'flood',
        to: targets.map((k) => labels[k]!),
      });
      if (targets.length === 0) this.end(hop, 'blackholed', `nothing else is plugged into segment ${seg.name}`);
      for (const k of targets) {
        const m = seg.members[k]!;
        this.queue.push({ kind: 'rx', node: m.node, iface: m.iface, frame: ev.frame, parent: hop.id, timeNs: t });
      }
      return;
    }
    this.end(hop, 'blackholed', `${point} is not connected to anything in the scenario`);
  }

  private receive(ev: Event): void {
    const st = this.state(ev.node);
    const iface = this.iface(st.node, ev.iface);
    const point = `${ev.node}:${ev.iface}`;
    const hop = this.newHop(ev, 'in', point);
    this.capture(hop, point, 'in');
    if (!iface.up) {
      this.end(hop, 'discarded', `${point} is down`, iface.origin);
      return;
    }
    if (iface.master) {
      this.bridgeIngress(st, iface, hop);
      return;
    }
    this.stackReceive(st, iface, hop, ev.frame);
  }

  // ---- bridge ----

  private firewall(
    st: NodeState,
    hop: Hop,
    table: 'nat' | 'filter',
    hookName: BridgeHook,
    frame: EthernetFrame,
    inIface?: string,
    outIface?: string,
  ): boolean {
    if (!st.firewall) return true;
    // Plain object, no conditional spreads: this runs several times per hop.
    const ctx = { inIface, outIface } as { readonly inIface?: string; readonly outIface?: string };
    const step = st.firewall.evaluate(table, hookName, frame, ctx);
    this.ctx.reads?.firewall.push({
      host: st.node.name,
      kind: 'ebtables',
      table,
      hook: hookName,
      frame,
      ctx,
      hop,
      pos: hop.steps.length,
      step,
    });
    if (!step) return true;
    hop.steps.push(step);
    if (step.verdict === 'DROP') {
      this.end(
        hop,
        'dropped-by-filter',
        `ebtables -t ${table} ${hookName}: ${step.chain}${step.ruleNumber !== undefined ? ` rule ${step.ruleNumber}` : ''} "${step.ruleText}"`,
        step.origin,
      );
      return false;
    }
    return true;
  }

  private bridgeIngress(st: NodeState, port: Iface, hop: Hop): void {
    const frame = hop.frame;
    const brName = port.master!;
    const br = this.iface(st.node, brName);
    if (!this.firewall(st, hop, 'nat', 'PREROUTING', frame, port.name)) return;
    // tcpdump on the bridge device (promiscuous) sees what passed PREROUTING.
    const brPoint = `${st.node.name}:${brName}`;
    this.capture(hop, brPoint, 'in', frame, hop.timeNs + DELAY_NS.bridge / 2n);
    const fdb = st.fdb.get(brName)!;
    let learned: string | undefined;
    if (!isMulticastMac(frame.src)) {
      const prev = fdb.get(frame.src);
      if (!prev || prev.port !== port.name) {
        fdb.set(frame.src, { port: port.name, origin: learnedOn(brName, port) });
        learned = `${frame.src} on ${port.name}`;
      }
    }
    const t = hop.timeNs + DELAY_NS.bridge;
    const bstep = (
      decision: 'forward' | 'flood' | 'local' | 'same-port',
      ports: readonly string[],
      origin: Origin,
    ): Step => {
      const out = { kind: 'bridge' as const, bridge: brName, decision, ports, origin } as Extract<
        Step,
        { kind: 'bridge' }
      >;
      if (learned) (out as { learned?: string }).learned = learned;
      return out;
    };
    if (frame.dst === br.mac) {
      hop.steps.push(bstep('local', [], implicit(`${frame.dst} is the bridge's own address`)));
      if (!this.firewall(st, hop, 'filter', 'INPUT', frame, port.name)) return;
      this.stackReceive(st, br, hop, frame);
      return;
    }
    const ports = bridgePorts(st.node, brName).filter((i) => i.name !== port.name);
    if (isMulticastMac(frame.dst)) {
      hop.steps.push(
        bstep(
          'flood',
          ports.map((p) => p.name),
          FLOODED,
        ),
      );
      for (const p of ports) this.bridgeEgress(st, p, frame, hop, t);
      // The bridge device itself gets a copy too.
      if (this.firewall(st, hop, 'filter', 'INPUT', frame, port.name)) this.stackReceiveCopy(st, br, frame, hop, t);
      return;
    }
    const entry = fdb.get(frame.dst);
    if (!entry) {
      hop.steps.push(
        bstep(
          'flood',
          ports.map((p) => p.name),
          implicit(`${frame.dst} is not in the FDB of ${brName}`),
        ),
      );
      for (const p of ports) this.bridgeEgress(st, p, frame, hop, t);
      return;
    }
    if (entry.port === port.name) {
      hop.steps.push(bstep('same-port', [], entry.origin));
      this.end(hop, 'discarded', `${brName} knows ${frame.dst} on the port it came from (${port.name})`);
      return;
    }
    hop.steps.push(bstep('forward', [entry.port], entry.origin));
    this.bridgeEgress(st, this.iface(st.node, entry.port), frame, hop, t);
  }

  private bridgeEgress(st: NodeState, port: Iface, frame: EthernetFrame, parent: Hop, timeNs: bigint): void {
    // Per-port egress decisions are recorded on a hop of their own so that flooded copies are told apart.
    const hop = this.newHop(
      { kind: 'tx', node: st.node.name, iface: port.name, frame, parent: parent.id, timeNs },
      'out',
    );
    if (!this.firewall(st, hop, 'filter', 'FORWARD', frame, parent.place.iface, port.name)) return;
    // br_netfilter: bridged IPv4 passes through iptables FORWARD (with physdev) after ebtables' FORWARD.
    const fw = st.firewall;
    const bctx = { bridge: port.master ?? '', inPort: parent.place.iface ?? '', outPort: port.name };
    const ipStep = fw?.evaluateBridged(frame, bctx);
    if (fw)
      this.ctx.reads?.firewall.push({
        host: st.node.name,
        kind: 'bridged',
        table: 'filter',
        hook: 'FORWARD',
        frame,
        ctx: bctx,
        hop,
        pos: hop.steps.length,
        step: ipStep,
      });
    if (ipStep) {
      hop.steps.push(ipStep);
      if (ipStep.verdict === 'DROP') {
        this.end(
          hop,
          'dropped-by-filter',
          `iptables -t filter FORWARD (br_netfilter): ${ipStep.chain}${ipStep.ruleNumber !== undefined ? ` rule ${ipStep.ruleNumber}` : ''} "${ipStep.ruleText}"`,
          ipStep.origin,
        );
        return;
      }
    }
    if (!this.firewall(st, hop, 'nat', 'POSTROUTING', frame, undefined, port.name)) return;
    this.queue.push({ kind: 'tx', node: st.node.name, iface: port.name, frame, parent: hop.id, timeNs });
  }

  /** The host's own stack sends through its bridge device. */
  private bridgeLocalOut(
    st: NodeState,
    br: Iface,
    frame: EthernetFrame,
    parentId: number | undefined,
    timeNs: bigint,
  ): void {
    const ev: Event = {
      kind: 'tx',
      node: st.node.name,
      iface: br.name,
      frame,
      timeNs,
      ...(parentId !== undefined ? { parent: parentId } : {}),
    };
    const hop = this.newHop(ev, 'out', `${st.node.name}:${br.name}`);
    this.capture(hop, `${st.node.name}:${br.name}`, 'out');
    if (!this.firewall(st, hop, 'nat', 'OUTPUT', frame)) return;
    if (!this.firewall(st, hop, 'filter', 'OUTPUT', frame)) return;
    const ports = bridgePorts(st.node, br.name);
    const entry = isMulticastMac(frame.dst) ? undefined : st.fdb.get(br.name)?.get(frame.dst);
    const out = entry ? ports.filter((p) => p.name === entry.port) : ports;
    hop.steps.push({
      kind: 'bridge',
      bridge: br.name,
      decision: entry ? 'forward' : 'flood',
      ports: out.map((p) => p.name),
      origin: entry?.origin ?? implicit('flooded'),
    });
    for (const p of out) {
      if (!this.firewall(st, hop, 'nat', 'POSTROUTING', frame, undefined, p.name)) continue;
      this.queue.push({ kind: 'tx', node: st.node.name, iface: p.name, frame, parent: hop.id, timeNs });
    }
  }

  // ---- IPv4 stack ----

  private stackReceiveCopy(st: NodeState, iface: Iface, frame: EthernetFrame, parent: Hop, timeNs: bigint): void {
    const hop = this.newHop(
      { kind: 'rx', node: st.node.name, iface: iface.name, frame, parent: parent.id, timeNs },
      'in',
    );
    this.stackReceive(st, iface, hop, frame);
  }

  private stackReceive(st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
    const forUs = frame.dst === iface.mac || isMulticastMac(frame.dst) || iface.pointToPoint === true;
    if (!forUs) {
      hop.steps.push({ kind: 'l2', accepted: false, reason: `destination ${frame.dst} is not ${iface.mac}` });
      this.end(hop, 'discarded', `${st.node.name}:${iface.name} is not addressed (${frame.dst}) and not promiscuous`);
      return;
    }
    const p = frame.payload;
    if (frame.etherType === ETHERTYPE_ARP && p.kind === 'arp') {
      this.arpReceive(st, iface, hop, p);
      return;
    }
    if (frame.etherType === ETHERTYPE_IPV4 && p.kind === 'ipv4') {
      this.ipReceive(st, iface, hop, p);
      return;
    }
    this.end(
      hop,
      'discarded',
      `ethertype 0x${frame.etherType.toString(16).padStart(4, '0')} is not modelled by the stack of ${st.node.name}`,
    );
  }

  private localAddress(node: Node, a: Ipv4): { iface: Iface; prefixLen: number; origin: Origin } | undefined {
    for (const i of node.interfaces.values())
      for (const ad of i.addrs)
        if (ad.prefix.addr === a) return { iface: i, prefixLen: ad.prefix.len, origin: ad.origin };
    return undefined;
  }

  private arpReceive(st: NodeState, iface: Iface, hop: Hop, arp: ArpPacket): void {
    const node = st.node;
    if (arp.op === ARP_REPLY) {
      if (arp.tha !== iface.mac && !isMulticastMac(hop.frame.dst) && hop.frame.dst !== iface.mac) {
        this.end(hop, 'discarded', 'ARP reply not addressed to this interface');
        return;
      }
      st.neighbours.set(arp.spa, {
        mac: arp.sha,
        iface: iface.name,
        origin: implicit(`learned from an ARP reply at ${hop.timeNs}`),
      });
      hop.steps.push({ kind: 'arp', action: 'learn', reason: `${formatIpv4(arp.spa)} is-at ${arp.sha}` });
      if (this.goal.onArpReply?.(node, arp)) {
        this.reached = hop;
        this.end(hop, 'replied', `${node.name} learned ${formatIpv4(arp.spa)} is-at ${arp.sha}`);
        return;
      }
      this.end(hop, 'delivered', `ARP reply consumed by ${node.name}`);
      return;
    }
    if (arp.op !== ARP_REQUEST) {
      this.end(hop, 'discarded', `ARP opcode ${arp.op} is not modelled`);
      return;
    }
    const local = this.localAddress(node, arp.tpa);
    if (!local) {
      hop.steps.push({
        kind: 'arp',
        action: 'not-for-us',
        reason: `${formatIpv4(arp.tpa)} is not an address of ${node.name}`,
      });
      this.end(hop, 'discarded', `${node.name} does not own ${formatIpv4(arp.tpa)}`);
      return;
    }
    // arp_process answers only if ip_route_input(target, sender) succeeds: fib_validate_source rejects a sender
    // address that is local to this node (a martian) unless accept_local, and applies rp_filter to the sender.
    const bad = this.sourceCheck(node, iface, arp.spa, 'sender');
    if (bad && !bad.ok) {
      hop.steps.push(bad.step);
      this.end(hop, 'dropped-by-kernel', `${node.name} does not answer: ${bad.why}`, bad.origin, undefined, bad.cause);
      return;
    }
    const ig = this.sysctlMax(node, 'arp_ignore', iface.name);
    let reply = true;
    let why = `arp_ignore=${ig.value}: reply for any local address`;
    if (ig.value === 1 || ig.value === 2) {
      const onIface = iface.addrs.find((a) => a.prefix.addr === arp.tpa);
      if (!onIface) {
        reply = false;
        why = `arp_ignore=${ig.value}: ${formatIpv4(arp.tpa)} is configured on ${local.iface.name}, not on ${iface.name}`;
      } else if (ig.value === 2 && !prefixContains(onIface.prefix, arp.spa)) {
        reply = false;
        why = `arp_ignore=2: sender ${formatIpv4(arp.spa)} is not in ${formatIpv4(arp.tpa)}/${onIface.prefix.len}`;
      } else why = `arp_ignore=${ig.value}: ${formatIpv4(arp.tpa)} is configured on ${iface.name}`;
    } else if (ig.value >= 8) {
      reply = false;
      why = `arp_ignore=${ig.value}: never reply`;
    } else if (ig.value === 3 && local.iface.kind === 'loopback') {
      reply = false;
      why = 'arp_ignore=3: do not reply for addresses of host scope';
    }
    hop.steps.push({ kind: 'arp', action: reply ? 'reply' : 'ignore', reason: why, origin: ig.origin });
    if (!reply) {
      this.end(hop, 'discarded', `${node.name} ignores the ARP request (${why})`, ig.origin);
      return;
    }
    st.neighbours.set(arp.spa, { mac: arp.sha, iface: iface.name, origin: implicit('learned from an ARP request') });
    const out: EthernetFrame = {
      dst: hop.frame.src,
      src: iface.mac,
      vlans: [],
      etherType: ETHERTYPE_ARP,
      payload: {
        kind: 'arp',
        htype: 1,
        ptype: ETHERTYPE_IPV4,
        op: ARP_REPLY,
        sha: iface.mac,
        spa: arp.tpa,
        tha: arp.sha,
        tpa: arp.spa,
      },
    };
    this.output(st, iface, out, hop, hop.timeNs + DELAY_NS.wire * 5n);
  }

  /**
   * `fib_validate_source`, which the input route of every received IPv4 packet (to deliver or to forward) and of every
   * ARP request answered (`ip_route_input_noref(skb, tip, sip, 0, dev)` in arp_process) passes: an address of this
   * node as source is a martian unless accept_local (all or the interface) is 1, and with rp_filter the route back to
   * the source must exist (2) or use the receiving interface (1). `passed` is the rp_filter step of a source that
   * passes a filter that is on.
   */
  private sourceCheck(
    node: Node,
    iface: Iface,
    src: Ipv4,
    what: 'sender' | 'source',
  ): { ok: false; step: Step; why: string; origin: Origin; cause: EndCause } | { ok: true; passed?: Step } | undefined {
    if (src === 0) return undefined; // an ARP probe (RFC 5227) has no sender address to validate
    const al = this.sysctlMax(node, 'accept_local', iface.name);
    const own = al.value === 1 ? undefined : this.localAddress(node, src);
    if (own) {
      const why = `the ${what} ${formatIpv4(src)} is an address of ${node.name} (${own.iface.name}): a martian source (accept_local=${al.value})`;
      return {
        ok: false,
        step:
          what === 'sender'
            ? { kind: 'arp', action: 'ignore', reason: why, origin: al.origin }
            : { kind: 'note', text: why, origin: al.origin },
        why,
        origin: al.origin,
        cause: 'martian-source',
      };
    }
    const rp = this.sysctlMax(node, 'rp_filter', iface.name);
    if (rp.value !== 1 && rp.value !== 2) return undefined;
    const back = this.route(node, src);
    if (rp.value === 2 ? back !== undefined : back?.dev === iface.name) {
      const reason = `the route back to ${formatIpv4(src)} leaves through ${back?.dev ?? '?'}`;
      return { ok: true, passed: { kind: 'rp-filter', mode: rp.value, passed: true, reason, origin: rp.origin } };
    }
    const reason = `the route back to the ${what} ${formatIpv4(src)} ${back ? `leaves through ${back.dev}` : 'does not exist'}, not ${iface.name}`;
    return {
      ok: false,
      step: { kind: 'rp-filter', mode: rp.value, passed: false, reason, origin: rp.origin },
      why: `rp_filter=${rp.value} on ${iface.name}: ${reason}`,
      origin: rp.origin,
      cause: 'rp-filter',
    };
  }

  /** `sourceCheck` on a received IPv4 packet: false (and the hop ended) when the kernel drops it. */
  private ipSourceValid(node: Node, iface: Iface, hop: Hop, src: Ipv4): boolean {
    const c = this.sourceCheck(node, iface, src, 'source');
    if (c === undefined) return true;
    if (c.ok) {
      if (c.passed) hop.steps.push(c.passed);
      return true;
    }
    hop.steps.push(c.step);
    this.end(
      hop,
      'dropped-by-kernel',
      `${node.name}:${iface.name} drops the packet from ${formatIpv4(src)}: ${c.why}`,
      c.origin,
      undefined,
      c.cause,
    );
    return false;
  }

  /** Effective value of a per-interface sysctl: the kernel takes max(all, interface) for arp_* and rp_filter. */
  private sysctlMax(node: Node, key: string, ifname: string): { value: number; origin: Origin } {
    let cache = SYSCTL_CACHE.get(node);
    if (!cache) {
      cache = new Map();
      SYSCTL_CACHE.set(node, cache);
    }
    const k = `${key} ${ifname}`;
    let v = cache.get(k);
    if (!v) {
      v = effectiveSysctl(node, key, ifname);
      cache.set(k, v);
    }
    return v;
  }

  private sysctlFlag(node: Node, key: string): { on: boolean; origin: Origin } {
    const v = node.sysctl.get(key);
    if (!v) return { on: false, origin: implicit(`${key} unknown: kernel default 0`) };
    return { on: v.value.trim() === '1', origin: v.origin };
  }

  private ipReceive(st: NodeState, iface: Iface, hop: Hop, received: Ipv4Packet): void {
    let pkt = received;
    const node = st.node;
    const local = this.localAddress(node, pkt.dst);
    if (local) {
      // The input route: martian source and reverse-path filter on the incoming interface.
      if (!this.ipSourceValid(node, iface, hop, pkt.src)) return;
      // IPIP to a local address: the ipip module hands the inner packet to tunl0, which receives it anew.
      if (pkt.protocol === IPPROTO_IPIP && pkt.payload.kind === 'ipv4') {
        this.decapsulate(st, hop, pkt.payload);
        return;
      }
      if (st.ipvs) {
        const d = st.ipvs.input(hop.frame, hop.timeNs, iface.addrs[0]?.prefix.addr);
        if (d.kind === 'no-destination') {
          hop.steps.push(d.step);
          this.end(hop, 'no-real-server', d.step.explanation, d.step.serviceOrigin);
          return;
        }
        if (d.kind === 'forward') {
          hop.steps.push(d.step);
          this.ipvsTransmit(st, hop, d.method, d.nextHop, d.build);
          return;
        }
      }
      this.socketDeliver(st, iface, hop, pkt, local.origin);
      return;
    }
    const fwd = this.sysctlFlag(node, 'net.ipv4.ip_forward');
    if (!fwd.on) {
      this.end(
        hop,
        'discarded',
        `${formatIpv4(pkt.dst)} is not local to ${node.name} and net.ipv4.ip_forward=0`,
        fwd.origin,
        undefined,
        'ip-forward-off',
      );
      return;
    }
    // The forwarding route validates the source as the local one does (`__mkroute_input`), after ip_forward.
    if (!this.ipSourceValid(node, iface, hop, pkt.src)) return;
    if (pkt.ttl <= 1) {
      this.end(hop, 'ttl-exceeded', `ttl ${pkt.ttl} expires at ${node.name}`);
      return;
    }
    hop.steps.push({ kind: 'forward', ttlBefore: pkt.ttl, ttlAfter: pkt.ttl - 1, origin: fwd.origin });
    // FORWARD: IPVS rewrites NAT replies of real servers to come from the virtual service.
    if (st.ipvs) {
      const r = st.ipvs.output(hop.frame, hop.timeNs);
      if (r.kind === 'snat' && r.frame.payload.kind === 'ipv4') {
        hop.steps.push(r.step);
        pkt = r.frame.payload;
      }
    }
    const { checksum: _stale, ...rest } = pkt;
    const fwdPkt: Ipv4Packet = { ...rest, ttl: pkt.ttl - 1 };
    this.ipOutput(st, fwdPkt, hop, hop.timeNs + DELAY_NS.wire * 10n);
  }

  /** IPIP decapsulation: the inner packet arrives on the fallback tunnel device (tunl0) and is received again. */
  private decapsulate(st: NodeState, hop: Hop, inner: Ipv4Packet): void {
    const tun = [...st.node.interfaces.values()].find((i) => i.kind === 'tunnel' && i.name.startsWith('tunl'));
    if (!tun) {
      this.end(
        hop,
        'discarded',
        `${st.node.name} has no tunl0: the ipip module is not loaded, so IPIP packets are dropped`,
        undefined,
        undefined,
        'no-ipip',
      );
      return;
    }
    if (!tun.up) {
      this.end(
        hop,
        'discarded',
        `${st.node.name}:${tun.name} is down: IPIP packets are dropped`,
        tun.origin,
        undefined,
        'tunnel-down',
      );
      return;
    }
    hop.steps.push({
      kind: 'note',
      text: `IPIP decapsulated: the inner packet ${formatIpv4(inner.src)} → ${formatIpv4(inner.dst)} arrives on ${tun.name}`,
      origin: tun.origin,
    });
    this.ipReceive(st, tun, hop, inner);
  }

  private socketDeliver(st: NodeState, iface: Iface, hop: Hop, pkt: Ipv4Packet, addrOrigin: Origin): void {
    const node = st.node;
    const l4 = pkt.payload;
    if (l4.kind !== 'tcp') {
      this.end(hop, 'delivered', `${node.name} accepted the packet (protocol ${pkt.protocol})`, addrOrigin);
      return;
    }
    if (this.goal.onTcp?.(node, pkt, l4)) {
      this.reached = hop;
      hop.steps.push({ kind: 'deliver', socket: `${formatIpv4(pkt.dst)}:${l4.dstPort}`, origin: addrOrigin });
      this.end(hop, 'replied', `${node.name} received the reply from ${formatIpv4(pkt.src)}:${l4.srcPort}`);
      return;
    }
    const listener = node.listeners.find((l) => l.protocol === 'tcp' && l.port === l4.dstPort);
    if (!listener && (l4.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
      hop.steps.push({ kind: 'note', text: `a SYN-ACK for no connection of ${node.name}: the kernel answers RST` });
      this.end(
        hop,
        'discarded',
        `${node.name} got a SYN-ACK from ${formatIpv4(pkt.src)}:${l4.srcPort}, which it never connected to`,
        undefined,
        undefined,
        'unexpected-reply',
      );
      return;
    }
    if (!listener) {
      hop.steps.push({ kind: 'note', text: `no socket listens on tcp/${l4.dstPort}: the kernel answers with RST` });
      this.end(hop, 'refused', `nothing listens on ${formatIpv4(pkt.dst)}:${l4.dstPort} at ${node.name}`);
      return;
    }
    hop.steps.push({
      kind: 'deliver',
      socket: `tcp/${l4.dstPort} on ${node.name} (${formatIpv4(pkt.dst)} is local, ${iface.name})`,
      origin: listener.origin,
    });
    if ((l4.flags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN) {
      this.end(hop, 'delivered', `${node.name} accepted the segment`);
      return;
    }
    // A listening socket answers a SYN with a SYN-ACK from the address the SYN was sent to.
    const tsOpt = l4.options.find((o) => o.kind === 'timestamp');
    const isn = (Math.imul(pkt.src ^ (l4.srcPort << 16) ^ l4.seq, 2654435761) >>> 0) as number;
    const synAck: Ipv4Packet = {
      kind: 'ipv4',
      tos: 0,
      id: 0,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: node.ttl,
      protocol: 6,
      src: pkt.dst,
      dst: pkt.src,
      payload: {
        kind: 'tcp',
        srcPort: l4.dstPort,
        dstPort: l4.srcPort,
        seq: isn,
        ack: (l4.seq + 1) >>> 0,
        flags: TCP_SYN | TCP_ACK,
        window: 28960,
        urgent: 0,
        options: [
          { kind: 'mss', value: 1460 },
          { kind: 'sack-permitted' },
          { kind: 'timestamp', val: 1000, ecr: tsOpt && tsOpt.kind === 'timestamp' ? tsOpt.val : 0 },
          { kind: 'nop' },
          { kind: 'wscale', shift: 7 },
        ],
        payload: new Uint8Array(0),
      },
    };
    // The SYN arrived; what happens to the SYN-ACK decides the probe, so this hop has no end of its own.
    hop.steps.push({ kind: 'reply', what: `SYN-ACK from ${formatIpv4(pkt.dst)}:${l4.dstPort}` });
    this.ipOutput(st, synAck, hop, hop.timeNs + DELAY_NS.socket);
  }

  // ---- entry points for probes ----

  /** A node's stack originates a packet: route, resolve the next hop, send. */
  originate(st: NodeState, pkt: Ipv4Packet, root: Hop, timeNs: bigint): void {
    this.ipOutput(st, pkt, root, timeNs);
  }

  /** A node sends a ready frame out of an interface. */
  originateFrame(st: NodeState, iface: Iface, frame: EthernetFrame, root: Hop, timeNs: bigint): void {
    this.output(st, iface, frame, root, timeNs);
  }

  // ---- routing and output ----

  route(node: Node, dst: Ipv4): Route | undefined {
    return lookupRoute(node, dst);
  }

  private ipOutput(st: NodeState, pkt: Ipv4Packet, parent: Hop, timeNs: bigint): void {
    const node = st.node;
    const r = this.route(node, pkt.dst);
    if (!r) {
      this.end(parent, 'no-route', `${node.name} has no route to ${formatIpv4(pkt.dst)}`, undefined, {
        node: node.name,
      });
      return;
    }
    if (r.type !== 'unicast' && r.type !== 'local') {
      this.end(parent, 'no-route', `${node.name} routes ${formatIpv4(pkt.dst)} to ${r.type}`, r.origin, {
        node: node.name,
      });
      return;
    }
    const outName = r.dev ?? (r.via !== undefined ? this.route(node, r.via)?.dev : undefined);
    const out = outName ? node.interfaces.get(outName) : undefined;
    if (!out) {
      this.end(
        parent,
        'no-route',
        `the route to ${formatIpv4(pkt.dst)} on ${node.name} names no usable device`,
        r.origin,
        { node: node.name },
      );
      return;
    }
    const nextHop = r.via ?? pkt.dst;
    parent.steps.push({ kind: 'route', dst: pkt.dst, nextHop, outIface: out.name, origin: r.origin });
    const mac = this.resolve(st, out, nextHop, pkt.src, parent, timeNs);
    if (!mac) return;
    const frame: EthernetFrame = { dst: mac, src: out.mac, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
    this.output(st, out, frame, parent, timeNs + DELAY_NS.wire);
  }

  private ipvsTransmit(
    st: NodeState,
    hop: Hop,
    method: 'Route' | 'Masq' | 'Tunnel',
    target: Ipv4,
    build: (src: Mac, dst: Mac) => EthernetFrame,
  ): void {
    const node = st.node;
    const r = this.route(node, target);
    const outName = r?.dev ?? (r?.via !== undefined ? this.route(node, r.via)?.dev : undefined);
    const out = outName ? node.interfaces.get(outName) : undefined;
    if (!r || !out) {
      this.end(hop, 'no-route', `${node.name} has no route to the real server ${formatIpv4(target)}`, r?.origin);
      return;
    }
    // DR: the kernel forces the real server itself as next hop (FLOWI_FLAG_KNOWN_NH), even when the route has a
    // gateway; the ARP for it on the egress interface must succeed. NAT and TUN follow the route.
    const nextHop = method === 'Route' ? target : (r.via ?? target);
    hop.steps.push({ kind: 'route', dst: target, nextHop, outIface: out.name, origin: r.origin });
    if (method === 'Route' && r.via !== undefined)
      hop.steps.push({
        kind: 'note',
        text: `DR sends straight to ${formatIpv4(target)}'s MAC although the route goes via ${formatIpv4(r.via)}: the real server must share ${out.name}'s segment`,
        origin: r.origin,
      });
    const t = hop.timeNs + DELAY_NS.ipvs;
    const mac = this.resolve(st, out, nextHop, undefined, hop, t);
    if (!mac) return;
    this.output(st, out, build(out.mac, mac), hop, t);
  }

  /** Sends a frame from a node's own stack. */
  private output(st: NodeState, iface: Iface, frame: EthernetFrame, parent: Hop, timeNs: bigint): void {
    if (iface.kind === 'bridge') {
      this.bridgeLocalOut(st, iface, frame, parent.id, timeNs);
      return;
    }
    this.queue.push({ kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parent.id, timeNs });
  }

  /** ARP source address per arp_announce (max of all and the interface). */
  private arpSource(node: Node, iface: Iface, target: Ipv4, hint: Ipv4 | undefined): Ipv4 | undefined {
    const ann = this.sysctlMax(node, 'arp_announce', iface.name).value;
    const inSubnet = iface.addrs.find((a) => ((a.prefix.addr ^ target) & ipv4Mask(a.prefix.len)) === 0);
    if (ann === 0 && hint !== undefined && this.localAddress(node, hint)) return hint;
    // arp_announce=1 (inet_addr_onlink): the packet's source if it is local and some subnet of the outgoing device
    // holds both it and the target — the VIP on lo qualifies when it lies in eth0's subnet.
    if (
      ann === 1 &&
      hint !== undefined &&
      this.localAddress(node, hint) &&
      iface.addrs.some((a) => prefixContains(a.prefix, target) && prefixContains(a.prefix, hint))
    )
      return hint;
    return (inSubnet ?? iface.addrs[0])?.prefix.addr;
  }

  /** Neighbour resolution: the cache, or a real ARP exchange walked through the model. */
  private resolve(
    st: NodeState,
    out: Iface,
    ip: Ipv4,
    srcHint: Ipv4 | undefined,
    hop: Hop,
    timeNs: bigint,
  ): Mac | undefined {
    if (out.pointToPoint && out.peer) {
      const peerNode = this.ctx.dp.nodes.get(out.peer.node);
      const mac = peerNode?.node.interfaces.get(out.peer.iface)?.mac ?? MAC_BROADCAST;
      hop.steps.push({ kind: 'neighbour', ip, iface: out.name, mac, source: 'peer' } satisfies NeighbourStep);
      return mac;
    }
    const cached = st.neighbours.get(ip);
    if (cached) {
      hop.steps.push({
        kind: 'neighbour',
        ip,
        iface: out.name,
        mac: cached.mac,
        source: 'cache',
        origin: cached.origin,
      });
      return cached.mac;
    }
    const spa = this.arpSource(st.node, out, ip, srcHint);
    if (spa === undefined) {
      this.end(hop, 'arp-unresolved', `${st.node.name}:${out.name} has no IPv4 address to send an ARP request from`);
      return undefined;
    }
    const req: EthernetFrame = {
      dst: MAC_BROADCAST,
      src: out.mac,
      vlans: [],
      etherType: ETHERTYPE_ARP,
      payload: {
        kind: 'arp',
        htype: 1,
        ptype: ETHERTYPE_IPV4,
        op: ARP_REQUEST,
        sha: out.mac,
        spa,
        tha: MAC_ZERO,
        tpa: ip,
      },
    };
    const asker = st.node.name;
    const sub = new Walker(this.ctx, { onArpReply: (n, a) => n.name === asker && a.spa === ip });
    sub.runFrom(() => {
      if (out.kind === 'bridge') sub.bridgeLocalOut(st, out, req, undefined, timeNs);
      else sub.queue.push({ kind: 'tx', node: asker, iface: out.name, frame: req, timeNs });
    });
    const got = st.neighbours.get(ip);
    hop.steps.push({
      kind: 'neighbour',
      ip,
      iface: out.name,
      ...(got ? { mac: got.mac } : {}),
      source: 'arp',
      arp: { hops: sub.hops },
    });
    if (!got) {
      const death = pickEnd(sub.hops);
      this.end(
        hop,
        'arp-unresolved',
        `${st.node.name} got no ARP reply for ${formatIpv4(ip)}${death ? `: ${death.reason}` : ''}`,
        death?.origin,
      );
      return undefined;
    }
    return got.mac;
  }
}

/** Longest-prefix match over a node's routes, lowest metric on ties. */
export function lookupRoute(node: Node, dst: Ipv4): Route | undefined {
  let best: Route | undefined;
  for (const r of node.routes) {
    if (!prefixContains(r.dst, dst)) continue;
    if (!best || r.dst.len > best.dst.len || (r.dst.len === best.dst.len && r.metric < best.metric)) best = r;
  }
  return best;
}

const SYSCTL_CACHE = new WeakMap<Node, Map<string, { value: number; origin: Origin }>>();

/** Effective value of a per-interface sysctl: the kernel takes max(all, interface) for arp_* and rp_filter. */
export function effectiveSysctl(node: Node, key: string, ifname: string): { value: number; origin: Origin } {
  const all = node.sysctl.get(`net.ipv4.conf.all.${key}`);
  const dev = node.sysctl.get(`net.ipv4.conf.${ifname}.${key}`);
  const a = all ? Number(all.value) : 0;
  const d = dev ? Number(dev.value) : 0;
  if (!all && !dev)
    return { value: 0, origin: implicit(`net.ipv4.conf.{all,${ifname}}.${key} unknown: kernel default 0`) };
  if (dev && d >= a) return { value: d, origin: dev.origin };
  return { value: a, origin: all!.origin };
}

const MEMBER_INDEX = new WeakMap<SegmentState['members'], Map<string, Map<string, number>>>();

/** The index of a node's interface among a segment's members (the first), or -1; indexed once per member list. */
function memberIndex(seg: SegmentState, node: string, iface: string): number {
  let byNode = MEMBER_INDEX.get(seg.members);
  if (byNode === undefined) {
    byNode = new Map();
    seg.members.forEach((m, k) => {
      let byIface = byNode!.get(m.node);
      if (byIface === undefined) {
        byIface = new Map();
        byNode!.set(m.node, byIface);
      }
      if (!byIface.has(m.iface)) byIface.set(m.iface, k);
    });
    MEMBER_INDEX.set(seg.members, byNode);
  }
  return byNode.get(node)?.get(iface) ?? -1;
}

const MEMBER_LABELS = new WeakMap<SegmentState['members'], string[]>();

/** `node:iface` of every member of a segment, made once per member list. */
function memberLabels(seg: SegmentState): string[] {
  let labels = MEMBER_LABELS.get(seg.members);
  if (labels === undefined) {
    labels = seg.members.map((m) => `${m.node}:${m.iface}`);
    MEMBER_LABELS.set(seg.members, labels);
  }
  return labels;
}

const LEARNED = new WeakMap<Iface, Origin>();

/** The origin of FDB entries learned on a port, made once per port. */
function learnedOn(bridge: string, port: Iface): Origin {
  let o = LEARNED.get(port);
  if (!o) {
    o = implicit(`learned on ${bridge} port ${port.name}`);
    LEARNED.set(port, o);
  }
  return o;
}

const PORTS = new WeakMap<Node, Map<string, Iface[]>>();

/** The ports of a bridge, computed once per node. */
function bridgePorts(node: Node, bridge: string): readonly Iface[] {
  let byBridge = PORTS.get(node);
  if (!byBridge) {
    byBridge = new Map();
    for (const i of node.interfaces.values())
      if (i.master) byBridge.set(i.master, [...(byBridge.get(i.master) ?? []), i]);
    PORTS.set(node, byBridge);
  }
  return byBridge.get(bridge) ?? [];
}

/** The most telling end among hops: highest rank, first met on ties. */
export function pickEnd(hops: readonly Hop[]): End | undefined {
  let best: End | undefined;
  for (const h of hops) {
    if (!h.end) continue;
    if (!best || rank(h.end.disposition) > rank(best.disposition)) best = h.end;
  }
  return best;
}

function rank(d: Disposition): number {
  return DISPOSITION_RANK[d];
}

export function stepKinds(steps: readonly Step[]): string[] {
  return steps.map((s) => s.kind);
}
