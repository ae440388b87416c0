/** Small questions diagnosis asks of traces and of the scenario. */
import type { Ipv4 } from '../addr/ipv4.ts';
import { MAC_BROADCAST, type Mac } from '../addr/mac.ts';
import type { IpvsService } from '../ipvs/model.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { type CompiledBinding, compileBinding } from '../libvirt/compile.ts';
import type { NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import { compileHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Iface, Node, PortBinding } from '../topology/model.ts';
import type { BridgeFirewall } from '../trace/engines.ts';
import { makeBridgeFirewall } from '../trace/firewall.ts';
import type { Hop, IpvsStep, NetfilterStep, Trace } from '../trace/types.ts';
import { ARP_REPLY, ETHERTYPE_ARP, ETHERTYPE_IPV4, type EthernetFrame, TCP_SYN } from '../wire/types.ts';

export function endHop(t: Trace): Hop | undefined {
  const id = t.path[t.path.length - 1];
  return id === undefined ? undefined : t.hops[id];
}

export function dropStep(h: Hop): NetfilterStep | undefined {
  for (const s of h.steps) if (s.kind === 'netfilter' && s.verdict === 'DROP') return s;
  return undefined;
}

export function ipvsStep(h: Hop): IpvsStep | undefined {
  for (const s of h.steps) if (s.kind === 'ipvs') return s;
  return undefined;
}

/** Hops on the trace's path, in order. */
export function pathHops(t: Trace): Hop[] {
  return t.path.map((id) => t.hops[id]!);
}

const BINDING_INDEX = new WeakMap<readonly PortBinding[], Map<string, PortBinding[]>>();

/** The binding of a host's port (the first, in binding order); bindings are grouped by host once per list. */
export function bindingAt(loaded: LoadedScenario, host: string, portdev: string): PortBinding | undefined {
  const all = loaded.scenario.bindings;
  let byHost = BINDING_INDEX.get(all);
  if (byHost === undefined) {
    byHost = new Map();
    for (const b of all) {
      const list = byHost.get(b.host);
      if (list === undefined) byHost.set(b.host, [b]);
      else list.push(b);
    }
    BINDING_INDEX.set(all, byHost);
  }
  return byHost.get(host)?.find((b) => b.binding.portdev === portdev);
}

/** A frame a guest sent, dropped by ebtables as it entered the bridge from the guest's tap: the hop, rule, guest. */
export function guestEgressDrop(
  loaded: LoadedScenario,
  hop: Hop | undefined,
): { hop: Hop; drop: NetfilterStep; guest: Node; host: string; tap: string } | undefined {
  const drop = hop && dropStep(hop);
  if (!hop || !drop || !hop.place.iface || hop.direction !== 'in' || drop.family !== 'bridge') return undefined;
  const guest = guestBehind(loaded, hop.place.node, hop.place.iface);
  return guest ? { hop, drop, guest, host: hop.place.node, tap: hop.place.iface } : undefined;
}

/** The guest behind a host's tap. */
export function guestBehind(loaded: LoadedScenario, host: string, tap: string): Node | undefined {
  const i = loaded.scenario.nodes.get(host)?.interfaces.get(tap);
  if (i?.kind !== 'tap' || !i.peer) return undefined;
  return loaded.scenario.nodes.get(i.peer.node);
}

export function ownsAddress(n: Node, a: Ipv4): boolean {
  for (const i of n.interfaces.values()) for (const ad of i.addrs) if (ad.prefix.addr === a) return true;
  return false;
}

/** IPv4 address services of a director. */
export function ipv4Services(loaded: LoadedScenario, director: string): IpvsService[] {
  return (loaded.ipvs.get(director)?.services ?? []).filter(
    (s) => s.key.kind === 'addr' && s.key.address.family === 'ipv4',
  );
}

export function serviceVip(s: IpvsService): Ipv4 | undefined {
  return s.key.kind === 'addr' && s.key.address.family === 'ipv4' ? s.key.address.addr : undefined;
}

/** Every VIP of every director. */
export function allVips(loaded: LoadedScenario): Set<Ipv4> {
  const out = new Set<Ipv4>();
  for (const d of loaded.ipvs.keys()) for (const s of ipv4Services(loaded, d)) out.add(serviceVip(s)!);
  return out;
}

type Nic = { node: Node; iface: Iface };
const NIC_INDEX = new WeakMap<ReadonlyMap<string, Node>, Map<Ipv4, Nic>>();

/**
 * The NIC of the scenario that owns an address (for real-server MACs): the first in node and interface order.
 * Performance: looked up in an index built once per node map (fixes that do not touch nodes share it).
 */
export function nicOwning(loaded: LoadedScenario, a: Ipv4): { node: Node; iface: Iface } | undefined {
  const nodes = loaded.scenario.nodes;
  let index = NIC_INDEX.get(nodes);
  if (index === undefined) {
    index = new Map();
    for (const n of nodes.values())
      for (const i of n.interfaces.values()) {
        if (i.kind === 'loopback') continue;
        for (const x of i.addrs) if (!index.has(x.prefix.addr)) index.set(x.prefix.addr, { node: n, iface: i });
      }
    NIC_INDEX.set(nodes, index);
  }
  return index.get(a);
}

const NEIGHBOUR_INDEX = new WeakMap<ReadonlyMap<string, Node>, Map<Ipv4, string[]>>();

/** Names of the nodes whose neighbour table holds `ip`, in node order (indexed once per node map). */
export function nodesCaching(loaded: LoadedScenario, ip: Ipv4): string[] {
  const nodes = loaded.scenario.nodes;
  let index = NEIGHBOUR_INDEX.get(nodes);
  if (index === undefined) {
    index = new Map();
    for (const n of nodes.values())
      for (const a of n.neighbours.keys()) {
        const list = index.get(a);
        if (list === undefined) index.set(a, [n.name]);
        else list.push(n.name);
      }
    NEIGHBOUR_INDEX.set(nodes, index);
  }
  return [...(index.get(ip) ?? [])];
}

const NO_CUSTOM = {};
const MODES = new WeakMap<NwFilterBinding, WeakMap<object, CompiledBinding['mode']>>();

/**
 * How libvirt applies a binding (`compileBinding(...).mode`: explicit IP, IP learning…) with its host's filters.
 * Performance: remembered per binding and custom filter list, which fixes leave unchanged on other ports.
 */
export function bindingMode(loaded: LoadedScenario, b: PortBinding): CompiledBinding['mode'] {
  const custom = loaded.filters.get(b.host);
  let byCustom = MODES.get(b.binding);
  if (byCustom === undefined) {
    byCustom = new WeakMap();
    MODES.set(b.binding, byCustom);
  }
  const key = custom ?? NO_CUSTOM;
  let mode = byCustom.get(key);
  if (mode === undefined) {
    mode = compileBinding(b.binding, filterRegistry(custom ?? [])).mode;
    byCustom.set(key, mode);
  }
  return mode;
}

/**
 * Replaces one binding (found by host and port, so fixes made on a modified copy apply to the original too) in a
 * copy of the scenario, or removes it with `undefined`.
 */
export function withBinding(
  loaded: LoadedScenario,
  target: PortBinding,
  next: PortBinding | undefined,
): LoadedScenario {
  const same = (b: PortBinding) => b.host === target.host && b.binding.portdev === target.binding.portdev;
  const bindings = loaded.scenario.bindings.flatMap((b) => (same(b) ? (next ? [next] : []) : [b]));
  return { ...loaded, scenario: { ...loaded.scenario, bindings } };
}

const FIREWALLS = new WeakMap<LoadedScenario, Map<string, BridgeFirewall>>();

/**
 * What the host's ebtables do to a frame the guest behind `tap` sends (nat PREROUTING -i tap): the deciding step,
 * or undefined when nothing there can drop it. Used by static checks with frames made up for the question.
 */
export function guestEgressVerdict(
  loaded: LoadedScenario,
  host: string,
  tap: string,
  frame: EthernetFrame,
): NetfilterStep | undefined {
  let byHost = FIREWALLS.get(loaded);
  if (!byHost) {
    byHost = new Map();
    FIREWALLS.set(loaded, byHost);
  }
  let fw = byHost.get(host);
  if (!fw) {
    fw = makeBridgeFirewall({ nat: compileHostRules(loaded, host, 'nft').nat }, 'nft');
    byHost.set(host, fw);
  }
  return fw.evaluate('nat', 'PREROUTING', frame, { inIface: tap });
}

/** The host and tap a guest's NIC is plugged into. */
export function tapOf(loaded: LoadedScenario, guest: Node): { host: string; tap: string; nic: Iface } | undefined {
  for (const nic of guest.interfaces.values())
    if (nic.peer && loaded.scenario.nodes.get(nic.peer.node)?.kind === 'host')
      return { host: nic.peer.node, tap: nic.peer.iface, nic };
  return undefined;
}

/** A TCP SYN frame as a guest would send it (for static filter questions). */
export function synFrame(srcMac: Mac, dstMac: Mac, src: Ipv4, dst: Ipv4, dport: number): EthernetFrame {
  return {
    dst: dstMac,
    src: srcMac,
    vlans: [],
    etherType: ETHERTYPE_IPV4,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 6,
      src,
      dst,
      payload: {
        kind: 'tcp',
        srcPort: 40000,
        dstPort: dport,
        seq: 1,
        ack: 0,
        flags: TCP_SYN,
        window: 64240,
        urgent: 0,
        options: [],
        payload: new Uint8Array(0),
      },
    },
  };
}

/** A gratuitous-style ARP reply a guest sends for `ip` (for static filter questions). */
export function arpReplyFrame(srcMac: Mac, ip: Ipv4): EthernetFrame {
  return {
    dst: MAC_BROADCAST,
    src: srcMac,
    vlans: [],
    etherType: ETHERTYPE_ARP,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: ETHERTYPE_IPV4,
      op: ARP_REPLY,
      sha: srcMac,
      spa: ip,
      tha: MAC_BROADCAST,
      tpa: ip,
    },
  };
}
