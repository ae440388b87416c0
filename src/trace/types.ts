/**
 * Traces: what happened to a probe, hop by hop. A hop is one frame at one place (a NIC, a bridge, a tap);
 * its steps are the decisions taken there, each with the origin of what decided. Dispositions form a closed set
 * documented in docs/dispositions.md.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';
import type { AnyProbeSpec, Scenario } from '../topology/model.ts';
import type { EthernetFrame } from '../wire/types.ts';

export const DISPOSITIONS = [
  'replied',
  'delivered',
  'dropped-by-filter',
  'dropped-by-kernel',
  'no-route',
  'no-real-server',
  'arp-unresolved',
  'refused',
  'ttl-exceeded',
  'discarded',
  'blackholed',
  'loop',
] as const;
export type Disposition = (typeof DISPOSITIONS)[number];

/** How much a death explains a failure: a filter drop outranks a flooded copy discarded by a NIC. */
export const DISPOSITION_RANK: Readonly<Record<Disposition, number>> = {
  replied: 100,
  delivered: 90,
  'dropped-by-filter': 80,
  'no-real-server': 75,
  'dropped-by-kernel': 70,
  'no-route': 65,
  'arp-unresolved': 60,
  refused: 55,
  'ttl-exceeded': 50,
  loop: 45,
  blackholed: 40,
  discarded: 10,
};

export interface Place {
  readonly node: string;
  readonly iface?: string;
}

/** A decision made on a hop. */
export type Step =
  | { readonly kind: 'capture'; readonly point: string; readonly direction: 'in' | 'out' }
  | NetfilterStep
  | {
      readonly kind: 'bridge';
      readonly bridge: string;
      readonly decision: 'forward' | 'flood' | 'local' | 'same-port';
      readonly ports: readonly string[];
      readonly learned?: string;
      readonly origin: Origin;
    }
  | {
      readonly kind: 'segment';
      readonly segment: string;
      readonly decision: 'forward' | 'flood';
      readonly to: readonly string[];
    }
  | { readonly kind: 'l2'; readonly accepted: boolean; readonly reason: string }
  | {
      readonly kind: 'arp';
      readonly action: 'reply' | 'ignore' | 'learn' | 'not-for-us';
      readonly reason: string;
      readonly origin?: Origin;
    }
  | {
      readonly kind: 'rp-filter';
      readonly mode: number;
      readonly passed: boolean;
      readonly reason: string;
      readonly origin: Origin;
    }
  | {
      readonly kind: 'route';
      readonly dst: Ipv4;
      readonly nextHop?: Ipv4;
      readonly outIface?: string;
      readonly src?: Ipv4;
      readonly origin?: Origin;
    }
  | NeighbourStep
  | IpvsStep
  | { readonly kind: 'forward'; readonly ttlBefore: number; readonly ttlAfter: number; readonly origin: Origin }
  | { readonly kind: 'deliver'; readonly socket: string; readonly origin: Origin }
  | { readonly kind: 'reply'; readonly what: string }
  | { readonly kind: 'note'; readonly text: string; readonly origin?: Origin };

export interface NetfilterStep {
  readonly kind: 'netfilter';
  readonly family: 'bridge' | 'ipv4';
  readonly table: string;
  readonly hook: string;
  readonly verdict: 'ACCEPT' | 'DROP';
  /** The chain and 1-based rule number that decided, or the chain whose policy applied. */
  readonly chain: string;
  readonly ruleNumber?: number;
  /**
   * The rule as `ebtables -L` / `iptables-save` print it (or `policy: X`); with `nft`, as `nft list ruleset` printed
   * it (the host's rules came from there).
   */
  readonly ruleText: string;
  /** The deciding rule came from `nft list ruleset`: its chain there (`table/chain`). */
  readonly nft?: { readonly chain: string };
  /** Origin of the deciding rule or policy (rule ← filter ← filterref ← domain interface). */
  readonly origin: Origin;
  /** Chains entered, in order, e.g. PREROUTING → libvirt-I-vnet0 → I-vnet0-ipv4-ip. */
  readonly path: readonly string[];
  readonly rulesVisited: number;
  /** raw: a NOTRACK rule matched, conntrack leaves the packet alone (ctstate UNTRACKED); the deciding rule is it. */
  readonly notrack?: boolean;
  /** mangle: the packet's netfilter mark before and after the chain (`-j MARK`); the deciding rule set it last. */
  readonly mark?: { readonly before: number; readonly after: number };
  /** nat POSTROUTING: SNAT/MASQUERADE rewrote the source from `from` to `to`; the deciding rule did it. */
  readonly snat?: { readonly from: Ipv4; readonly to: Ipv4; readonly fromPort?: number; readonly toPort?: number };
  /** nat PREROUTING/OUTPUT: DNAT/REDIRECT rewrote the destination (and port); the deciding rule did it. */
  readonly dnat?: {
    readonly from: Ipv4;
    readonly to: Ipv4;
    readonly fromPort?: number;
    readonly toPort?: number;
  };
}

export interface NeighbourStep {
  readonly kind: 'neighbour';
  readonly ip: Ipv4;
  readonly iface: string;
  readonly mac?: Mac;
  readonly source: 'cache' | 'arp' | 'peer';
  readonly origin?: Origin;
  /** The ARP exchange lvsdoctor walked to resolve the address. */
  readonly arp?: Walk;
}

export interface IpvsStep {
  readonly kind: 'ipvs';
  readonly service: string;
  readonly serviceOrigin: Origin;
  readonly outcome: 'forwarded' | 'no-destination';
  readonly method?: 'Route' | 'Masq' | 'Tunnel';
  readonly destination?: string;
  readonly destinationOrigin?: Origin;
  readonly scheduler: string;
  readonly connection: string;
  readonly explanation: string;
}

/** Machine-readable causes of ends that findings look for. */
export type EndCause =
  | 'ip-forward-off'
  | 'rp-filter'
  | 'martian-source'
  | 'no-ipip'
  | 'tunnel-down'
  | 'unexpected-reply'
  | 'not-local'
  /** A packet with DF set larger than the next link's MTU (ICMP fragmentation needed sent back). */
  | 'frag-needed'
  /** A frame larger than a bridge port's MTU (dropped silently, no ICMP). */
  | 'too-big-for-port'
  /** A VLAN-filtering bridge refused a frame: its VLAN is not a member of the port (or no PVID for it untagged). */
  | 'vlan-filtered';

export interface End {
  readonly disposition: Disposition;
  readonly cause?: EndCause;
  readonly place: Place;
  readonly reason: string;
  /** What decided (a rule, a sysctl, a route…), with its origin chain. */
  readonly origin?: Origin;
}

export interface Hop {
  readonly id: number;
  readonly parent?: number;
  readonly place: Place;
  /** Capture point name `node:iface` when a tcpdump there would see the frame. */
  readonly point?: string;
  readonly direction: 'in' | 'out';
  readonly timeNs: bigint;
  readonly frame: EthernetFrame;
  readonly steps: Step[];
  end?: End;
}

/** One walk of frames through the model (the probe itself, or an ARP exchange inside it). */
export interface Walk {
  readonly hops: readonly Hop[];
}

export interface Capture {
  readonly point: string;
  readonly timeNs: bigint;
  readonly frame: EthernetFrame;
}

export interface Trace extends Walk {
  readonly probe: AnyProbeSpec;
  readonly disposition: Disposition;
  /** Which leg the decisive end is on. */
  readonly stage: 'request' | 'reply';
  readonly end: End;
  /** Hop ids from the probe's first frame to the decisive end. */
  readonly path: readonly number[];
  readonly captures: readonly Capture[];
  readonly summary: string;
}

/**
 * Why an ARP request went unanswered. A broadcast reaches nodes that do not own the address — its normal fate,
 * never the story. The story is where it died on its way to an owner (`owners`: the nodes holding the address and
 * their hypervisors), else any other end; when every end is a node that does not own it, the first of those.
 */
export function pickArpEnd(hops: readonly Hop[], owners: ReadonlySet<string>): Hop | undefined {
  const notOurs = (h: Hop) => h.steps.some((s) => s.kind === 'arp' && s.action === 'not-for-us');
  const ended = hops.filter((h) => h.end !== undefined);
  const telling = ended.filter((h) => !notOurs(h));
  const pool = telling.length > 0 ? telling : ended;
  const near = pool.filter((h) => owners.has(h.place.node));
  const best = pickEnd(near.length > 0 ? near : pool);
  return best ? pool.find((h) => h.end === best) : undefined;
}

/** The nodes that own `ip` (an address on one of their interfaces) and the hypervisors they run on. */
export function arpOwners(scenario: Scenario, ip: Ipv4): Set<string> {
  const out = new Set<string>();
  for (const n of scenario.nodes.values())
    for (const i of n.interfaces.values())
      if (i.addrs.some((a) => a.prefix.addr === ip)) {
        out.add(n.name);
        if (n.host !== undefined) out.add(n.host);
      }
  return out;
}

/** The most telling end among hops: highest rank, first met on ties. */
export function pickEnd(hops: readonly Hop[]): End | undefined {
  let best: End | undefined;
  for (const h of hops) {
    if (!h.end) continue;
    if (!best || DISPOSITION_RANK[h.end.disposition] > DISPOSITION_RANK[best.disposition]) best = h.end;
  }
  return best;
}
