/**
 * Walks one ready frame a node sends out of one of its interfaces (a VRRP advert, a gratuitous ARP) through a fresh
 * copy of the session's dataplane, and says which nodes it reached and where it was dropped. Unlike a probe there
 * is no answer to wait for: the walk ends when every copy of the frame (bridges flood multicast) has ended.
 */

import type { EthernetFrame } from '../wire/types.ts';
import { resetDataplane } from './dataplane.ts';
import { checkWalk } from './invariants.ts';
import type { Session } from './session.ts';
import type { Capture, Hop, NetfilterStep } from './types.ts';
import { Walker } from './walker.ts';

export interface FrameWalk {
  readonly hops: readonly Hop[];
  /** Nodes whose network stack received the frame (not just a bridge it crossed). */
  readonly reached: ReadonlySet<string>;
  /** Every firewall drop the frame's copies met, in walk order. */
  readonly drops: readonly { readonly hop: Hop; readonly step: NetfilterStep }[];
}

export function walkFrame(
  session: Session,
  from: string,
  iface: string,
  frame: EthernetFrame,
  timeNs: bigint,
): FrameWalk | undefined {
  const dp = resetDataplane(session.pristine, session.engines);
  const st = dp.nodes.get(from);
  const out = st?.node.interfaces.get(iface);
  if (!st || !out) return undefined;
  const captures: Capture[] = [];
  const walker = new Walker({ dp, captures }, {});
  const root: Hop = { id: 0, place: { node: from }, direction: 'out', timeNs, frame, steps: [] };
  walker.hops.push(root);
  walker.runFrom(() => walker.xmit(st, out, frame, root.id, timeNs));
  checkWalk(walker.hops, () => `the walk of a frame ${from} sends out of ${iface}`);
  const reached = new Set<string>();
  const drops: { hop: Hop; step: NetfilterStep }[] = [];
  for (const h of walker.hops) {
    const node = dp.nodes.get(h.place.node)?.node;
    if (h.direction === 'in' && node && node.kind !== 'host' && h.place.node !== from) {
      const dropped = h.steps.some((s) => s.kind === 'l2' && !s.accepted);
      if (!dropped) reached.add(h.place.node);
    }
    if (h.direction === 'in' && node?.kind === 'host' && h.place.iface) {
      const i = node.interfaces.get(h.place.iface);
      // A host's own stack receives frames on its bridge device or an address-carrying NIC.
      if (i && (i.kind === 'bridge' || i.addrs.length > 0) && !h.steps.some((s) => s.kind === 'l2' && !s.accepted))
        reached.add(h.place.node);
    }
    for (const s of h.steps) if (s.kind === 'netfilter' && s.verdict === 'DROP') drops.push({ hop: h, step: s });
  }
  return { hops: walker.hops, reached, drops };
}
