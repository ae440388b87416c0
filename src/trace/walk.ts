/**
 * What a device sees of the walk in progress: the hops made so far, how to open a hop, end it and capture on it,
 * how to queue a frame for the wire, and the two kernel entry points that dispatch on the interface kind
 * (`netifReceive`, `xmit`). `walker.ts` implements it; the device files (`bridge.ts`, `ipv4-stack.ts`, …) use only
 * this, so they import no walker and no other device at run time.
 */
import type { Origin } from '../source/origin.ts';
import type { Iface, Node } from '../topology/model.ts';
import type { ArpPacket, EthernetFrame, Ipv4Packet, TcpSegment, UdpDatagram } from '../wire/types.ts';
import type { Dataplane, NodeState } from './dataplane.ts';
import type { Answers, DecisionLog, Question } from './decisions.ts';
import type { Capture, Disposition, EndCause, Hop, Place } from './types.ts';

/** Modelled delays (not predictions): they only order and space the timestamps of captures. */
export const DELAY_NS = {
  wire: 1_000n,
  bridge: 2_000n,
  ipvs: 11_000n,
  socket: 40_000n,
  internet: 20_000_000n,
} as const;

export interface WalkGoal {
  /** Called when a node's stack accepts a packet; returning true ends the branch as reached. */
  readonly onArpReply?: (node: Node, arp: ArpPacket) => boolean;
  readonly onTcp?: (node: Node, pkt: Ipv4Packet, seg: TcpSegment) => boolean;
  readonly onUdp?: (node: Node, pkt: Ipv4Packet, dgram: UdpDatagram) => boolean;
  /** A datagram to the port the probe sent from that is not its answer (another source): true ends it as stray. */
  readonly onStrayUdp?: (node: Node, pkt: Ipv4Packet, dgram: UdpDatagram) => boolean;
  /** An ICMP message a node's stack accepts; returning true ends the branch as delivered (e.g. frag-needed taken). */
  readonly onIcmp?: (node: Node, pkt: Ipv4Packet, hop: Hop) => boolean;
}

/** A frame queued to leave (`tx`, onto the interface's link) or to arrive at (`rx`) an interface. */
export interface WalkEvent {
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
  /** When set, every engine decision is logged (see `decisions.ts` and `retrace.ts`). */
  readonly reads?: DecisionLog;
}

/** The walk in progress, as devices and the IPv4 stack drive it. */
export interface Walking {
  readonly ctx: WalkContext;
  readonly goal: WalkGoal;
  readonly hops: Hop[];
  /** The hop where the goal was met, if it was. */
  reached: Hop | undefined;
  /** Opens a hop for an event (`point`: the capture point a tcpdump there would name). */
  newHop(ev: WalkEvent, direction: 'in' | 'out', point?: string): Hop;
  /** Records a capture at `point` on the hop (a tcpdump there sees `frame` at `timeNs`). */
  capture(hop: Hop, point: string, direction: 'in' | 'out', frame?: EthernetFrame, timeNs?: bigint): void;
  /** Ends a branch of the walk on the hop. */
  end(hop: Hop, disposition: Disposition, reason: string, origin?: Origin, place?: Place, cause?: EndCause): void;
  /** The one door for engine decisions (`decisions.ts`): asks a host's engine, recording the decision. */
  ask<Q extends Question>(st: NodeState, hop: Hop, q: Q): Answers[Q['kind']];
  /** Queues an event (a frame for the wire, or one arriving). */
  enqueue(ev: WalkEvent): void;
  state(name: string): NodeState;
  iface(node: Node, name: string): Iface;
  /**
   * A frame is received by `iface` itself — not as a bridge port — (`__netif_receive_skb` → the protocol
   * handlers), dispatched on the interface kind.
   */
  netifReceive(st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void;
  /** The node's own stack sends a frame out of `iface` (`dev_queue_xmit`), dispatched on the interface kind. */
  xmit(st: NodeState, iface: Iface, frame: EthernetFrame, parentId: number | undefined, timeNs: bigint): void;
  /** A walk of its own with the same dataplane (an ARP exchange inside a hop). */
  spawn(goal: WalkGoal): Walking;
  /** Seeds the queue and walks until it is empty. */
  runFrom(seed: () => void): void;
}

/** How frames enter and leave interfaces of one kind (see `devices.ts`, which registers one per kind). */
export interface Device {
  /** A frame arrived on `port`, enslaved to `upper` (a device of this kind); `hop` is the arrival's hop. */
  readonly portReceive?: (w: Walking, st: NodeState, port: Iface, upper: Iface, hop: Hop) => void;
  /** A frame received by the device itself; default: the IPv4 stack. */
  readonly receive?: (w: Walking, st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame) => void;
  /** The node's own stack sends `frame` out of the device. */
  readonly xmit: (
    w: Walking,
    st: NodeState,
    iface: Iface,
    frame: EthernetFrame,
    parentId: number | undefined,
    timeNs: bigint,
  ) => void;
}
