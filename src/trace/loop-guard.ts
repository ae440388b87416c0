/**
 * Telling a forwarding loop from fan-out. A broadcast flooded to hundreds of ports makes many hops side by side; a
 * loop makes a chain of hops in which the same packet comes back to where it has already been. The guard follows
 * each new hop's ancestry: the same packet received again at the same place (a bridge loop: the very frame; a routing
 * loop: the same packet, its TTL lower) is a loop, and so is a chain deeper than any real path. A budget on the whole
 * walk stops pathological fan-out without calling it a loop.
 */
import type { EthernetFrame } from '../wire/types.ts';
import type { Hop } from './types.ts';

/** No real path through bridges, segments and routers is this many hops deep. */
export const MAX_DEPTH = 512;
/** Hops one walk may make in all (fan-out included) before it stops. */
export const MAX_WALK_HOPS = 200_000;

export type LoopVerdict =
  | { readonly kind: 'ok'; readonly depth: number }
  | { readonly kind: 'loop'; readonly depth: number; readonly first: Hop; readonly why: string }
  | { readonly kind: 'too-deep'; readonly depth: number; readonly why: string }
  | { readonly kind: 'budget'; readonly depth: number; readonly why: string };

/** Same packet: the very frame, or an IPv4 packet differing only in TTL/checksum/L2 header (routed again). */
function samePacket(a: EthernetFrame, b: EthernetFrame): boolean {
  if (a === b) return true;
  if (a.etherType !== b.etherType) return false;
  const pa = a.payload;
  const pb = b.payload;
  if (pa === pb) return a.dst === b.dst && a.src === b.src;
  if (pa.kind !== 'ipv4' || pb.kind !== 'ipv4') return false;
  return pa.payload === pb.payload && pa.src === pb.src && pa.dst === pb.dst && pa.id === pb.id;
}

/**
 * The guard of one walk. `check` is called for each event before its hop is made, with the hop it descends from;
 * `record` stores the depth of each hop made (hops are numbered in order, as the walker numbers them).
 */
export class LoopGuard {
  private readonly depths: number[] = [];

  record(hop: Hop, parent: number | undefined): void {
    this.depths[hop.id] = parent === undefined ? 0 : (this.depths[parent] ?? 0) + 1;
  }

  check(
    hops: readonly Hop[],
    ev: { readonly kind: 'rx' | 'tx'; readonly node: string; readonly iface: string; readonly frame: EthernetFrame },
    parent: number | undefined,
  ): LoopVerdict {
    const depth = parent === undefined ? 0 : (this.depths[parent] ?? 0) + 1;
    if (hops.length >= MAX_WALK_HOPS)
      return {
        kind: 'budget',
        depth,
        why: `the walk stopped after ${MAX_WALK_HOPS} hops (fan-out, not a loop: no packet came back where it had been)`,
      };
    if (depth > MAX_DEPTH)
      return { kind: 'too-deep', depth, why: `more than ${MAX_DEPTH} hops in a row: a forwarding loop` };
    // Only receptions are compared: a loop brings the packet back in through an interface it came in before.
    if (ev.kind !== 'rx') return { kind: 'ok', depth };
    for (let id = parent; id !== undefined; ) {
      const h = hops[id]!;
      if (
        h.direction === 'in' &&
        h.place.node === ev.node &&
        h.place.iface === ev.iface &&
        samePacket(h.frame, ev.frame)
      ) {
        const ttl = (f: EthernetFrame) => (f.payload.kind === 'ipv4' ? f.payload.ttl : undefined);
        const routed = h.frame !== ev.frame && ttl(h.frame) !== ttl(ev.frame);
        return {
          kind: 'loop',
          depth,
          first: h,
          why: routed
            ? `the packet comes back to ${ev.node}:${ev.iface} (first there at hop ${h.id}, TTL ${ttl(h.frame)}, now ${ttl(ev.frame)}): a routing loop, it circles until its TTL runs out`
            : `the frame comes back to ${ev.node}:${ev.iface} (first there at hop ${h.id}): a forwarding loop`,
        };
      }
      id = h.parent;
    }
    return { kind: 'ok', depth };
  }
}
