/**
 * The wire: a frame that leaves an interface reaches the other end of its point-to-point link (a tap's guest NIC,
 * a veth peer) or the other members of the L2 segment it is plugged into, which learns and floods like a switch.
 */
import { isMulticastMac } from '../addr/mac.ts';
import type { SegmentState } from './dataplane.ts';
import { DELAY_NS, type WalkEvent, type Walking } from './walk.ts';

/** A `tx` event: the frame leaves `ev.node:ev.iface` onto its link. */
export function linkTransmit(w: Walking, ev: WalkEvent): void {
  const st = w.state(ev.node);
  const iface = w.iface(st.node, ev.iface);
  const point = `${ev.node}:${ev.iface}`;
  const hop = w.newHop(ev, 'out', point);
  w.capture(hop, point, 'out');
  const t = ev.timeNs + (iface.pointToPoint ? DELAY_NS.internet : DELAY_NS.wire);
  if (iface.peer) {
    w.enqueue({
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
    const seg = w.ctx.dp.segments.get(iface.segment);
    if (!seg) {
      w.end(hop, 'blackholed', `segment ${iface.segment} is not defined`);
      return;
    }
    const self = memberIndex(seg, ev.node, ev.iface);
    if (!isMulticastMac(ev.frame.src) && self >= 0) seg.fdb.set(ev.frame.src, self);
    const known = isMulticastMac(ev.frame.dst) ? undefined : seg.fdb.get(ev.frame.dst);
    if (known === self) {
      w.end(hop, 'discarded', `the segment ${seg.name} delivers ${ev.frame.dst} back to the sender's port`);
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
    if (targets.length === 0) w.end(hop, 'blackholed', `nothing else is plugged into segment ${seg.name}`);
    for (const k of targets) {
      const m = seg.members[k]!;
      w.enqueue({ kind: 'rx', node: m.node, iface: m.iface, frame: ev.frame, parent: hop.id, timeNs: t });
    }
    return;
  }
  w.end(hop, 'blackholed', `${point} is not connected to anything in the scenario`);
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
