/**
 * The walker: moves frames through the dataplane hop by hop, the way Linux would. It keeps the event loop (frames
 * queued to leave an interface onto its link, or to arrive at one), the hops, their ends and the captures; what
 * happens to a frame at an interface is the interface kind's device (`devices.ts`): NICs and taps (`link.ts`),
 * bridges with their ebtables and br_netfilter hooks (`bridge.ts`), the IPv4 stack (`ipv4-stack.ts`: ARP with
 * arp_ignore, rp_filter, forwarding, IPIP, IPVS in LOCAL_IN, sockets that answer) and IPv4 output
 * (`ipv4-output.ts`: routes, IPVS transmit, neighbour resolution with arp_announce).
 */
import type { Origin } from '../source/origin.ts';
import type { Iface, Node } from '../topology/model.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { NodeState } from './dataplane.ts';
import { type Answers, ask, type Question } from './decisions.ts';
import { deviceArrival, deviceReceive, deviceXmit } from './devices.ts';
import { linkTransmit } from './link.ts';
import { LoopGuard } from './loop-guard.ts';
import type { Disposition, End, EndCause, Hop, Place } from './types.ts';
import type { WalkContext, WalkEvent, WalkGoal, Walking } from './walk.ts';

export class Walker implements Walking {
  readonly hops: Hop[] = [];
  private readonly queue: WalkEvent[] = [];
  /** Index of the next event to take from `queue` (taken events stay: shifting would copy the array). */
  private head = 0;
  /** Tells loops (a packet back where it has been) from fan-out (a broadcast to many ports). */
  private readonly guard = new LoopGuard();
  reached: Hop | undefined;

  constructor(
    readonly ctx: WalkContext,
    readonly goal: WalkGoal,
  ) {}

  /** Seeds the queue (e.g. with a frame sent by a host through its bridge device) and walks until it is empty. */
  runFrom(seed: () => void): void {
    seed();
    while (this.head < this.queue.length) {
      const ev = this.queue[this.head++]!;
      const v = this.guard.check(this.hops, ev, ev.parent);
      if (v.kind !== 'ok') {
        const hop = this.newHop(ev, ev.kind === 'rx' ? 'in' : 'out');
        if (v.kind === 'budget') {
          this.end(hop, 'blackholed', v.why);
          break;
        }
        this.end(hop, 'loop', v.why);
        continue;
      }
      if (ev.kind === 'tx') linkTransmit(this, ev);
      else this.receive(ev);
    }
  }

  ask<Q extends Question>(st: NodeState, hop: Hop, q: Q): Answers[Q['kind']] {
    return ask(this.ctx.reads, st, hop, q);
  }

  enqueue(ev: WalkEvent): void {
    this.queue.push(ev);
  }

  spawn(goal: WalkGoal): Walker {
    return new Walker(this.ctx, goal);
  }

  netifReceive(st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
    deviceReceive(this, st, iface, hop, frame);
  }

  xmit(st: NodeState, iface: Iface, frame: EthernetFrame, parentId: number | undefined, timeNs: bigint): void {
    deviceXmit(this, st, iface, frame, parentId, timeNs);
  }

  // ---- hops, ends, captures ----

  newHop(ev: WalkEvent, direction: 'in' | 'out', point?: string): Hop {
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
    this.guard.record(hop, ev.parent);
    return hop;
  }

  capture(
    hop: Hop,
    point: string,
    direction: 'in' | 'out',
    frame: EthernetFrame = hop.frame,
    timeNs = hop.timeNs,
  ): void {
    hop.steps.push({ kind: 'capture', point, direction });
    this.ctx.captures.push({ point, timeNs, frame });
  }

  end(hop: Hop, disposition: Disposition, reason: string, origin?: Origin, place?: Place, cause?: EndCause): void {
    const e = { disposition, place: place ?? hop.place, reason } as { -readonly [K in keyof End]: End[K] };
    if (origin) e.origin = origin;
    if (cause) e.cause = cause;
    hop.end = e;
  }

  state(name: string): NodeState {
    const st = this.ctx.dp.nodes.get(name);
    if (!st) throw new Error(`internal: unknown node ${name}`);
    return st;
  }

  iface(node: Node, name: string): Iface {
    const i = node.interfaces.get(name);
    if (!i) throw new Error(`internal: unknown interface ${node.name}:${name}`);
    return i;
  }

  /** An `rx` event: the frame arrives at `ev.node:ev.iface`, where a tcpdump sees it. */
  private receive(ev: WalkEvent): void {
    const st = this.state(ev.node);
    const iface = this.iface(st.node, ev.iface);
    const point = `${ev.node}:${ev.iface}`;
    const hop = this.newHop(ev, 'in', point);
    this.capture(hop, point, 'in');
    deviceArrival(this, st, iface, hop);
  }
}
