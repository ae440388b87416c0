/**
 * The dataplane: the scenario plus the mutable state packets change as they move (bridge and switch FDBs,
 * neighbour tables, IPVS connection tables). `resetDataplane` gives every probe the same starting state.
 *
 * Performance: the warm FDBs are derived from the topology alone (interfaces, links, segments), so they are
 * computed per bridge the first time a frame meets it and shared by every session whose topology is the same
 * (by identity: fixes copy only what they change). A probe sees them through overlays: it reads the pristine
 * table and writes to a layer of its own, so starting a probe costs nothing and it pays only for what it changes.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { isMulticastMac, type Mac } from '../addr/mac.ts';
import { implicit, type Origin } from '../source/origin.ts';
import {
  type BridgeVlans,
  DEFAULT_BRIDGE_VLANS,
  type Iface,
  type NeighbourEntry,
  type Node,
  type Scenario,
  vlanMember,
} from '../topology/model.ts';
import { Conntrack } from './conntrack.ts';
import type { BridgeFirewall, IpvsEngine } from './engines.ts';
import { uppersOf } from './node-config.ts';

export interface FdbEntry {
  readonly port: string;
  readonly origin: Origin;
}

/** A map that reads through to a base it never changes and keeps its own writes. */
export class Overlay<K, V> {
  private local: Map<K, V> | undefined;
  constructor(private readonly base: ReadonlyMap<K, V>) {}
  get(key: K): V | undefined {
    if (this.local !== undefined) {
      const v = this.local.get(key);
      if (v !== undefined) return v;
    }
    return this.base.get(key);
  }
  has(key: K): boolean {
    return this.local?.has(key) === true || this.base.has(key);
  }
  set(key: K, value: V): this {
    if (this.local === undefined) this.local = new Map();
    this.local.set(key, value);
    return this;
  }
}

/**
 * The warm FDB of one bridge. Without VLAN filtering an entry per MAC (the kernel's vid 0). With VLAN filtering the
 * kernel keys entries by (VLAN, MAC) (`br_fdb_find(br, addr, vid)`): the warm table keeps, per MAC, every port it
 * lives behind, and a lookup in VLAN `vid` takes a port that carries `vid` — the port whose PVID is `vid` (where the
 * MAC's owner sends untagged frames into that VLAN, e.g. a guest's access port) before one that carries it tagged
 * (a trunk, where the MAC may live in any of its VLANs).
 */
export interface WarmFdb {
  readonly byMac: ReadonlyMap<Mac, FdbEntry>;
  /** VLAN-filtering bridges: every port a MAC lives behind, with the port's VLANs. */
  readonly candidates?: ReadonlyMap<Mac, readonly { readonly entry: FdbEntry; readonly vlans: BridgeVlans }[]>;
}

/** One bridge's FDB during a probe: the warm table, plus what the probe learned, keyed by (VLAN, MAC). */
export class BridgeFdb {
  private local: Map<string, FdbEntry> | undefined;
  constructor(private readonly warm: WarmFdb) {}
  /** The entry for `mac` in VLAN `vid` (undefined: a bridge without VLAN filtering, the kernel's vid 0). */
  get(mac: Mac, vid?: number): FdbEntry | undefined {
    const own = this.local?.get(vid === undefined ? mac : `${vid} ${mac}`);
    if (own !== undefined) return own;
    if (vid === undefined || this.warm.candidates === undefined) return this.warm.byMac.get(mac);
    let tagged: FdbEntry | undefined;
    for (const c of this.warm.candidates.get(mac) ?? []) {
      if (c.vlans.pvid === vid && c.vlans.untagged.includes(vid)) return c.entry;
      if (tagged === undefined && vlanMember(c.vlans, vid)) tagged = c.entry;
    }
    return tagged;
  }
  set(mac: Mac, vid: number | undefined, entry: FdbEntry): void {
    if (this.local === undefined) this.local = new Map();
    this.local.set(vid === undefined ? mac : `${vid} ${mac}`, entry);
  }
}

/** The FDBs of one node's bridges, by bridge name. */
export interface NodeFdbs {
  get(bridge: string): BridgeFdb | undefined;
}

export interface NodeState {
  readonly node: Node;
  /** bridge name → MAC → port. */
  readonly fdb: NodeFdbs;
  readonly neighbours: Overlay<Ipv4, NeighbourEntry>;
  readonly firewall?: BridgeFirewall | undefined;
  readonly ipvs?: IpvsEngine | undefined;
  /** The node's connection tracking during this probe (made when first used). */
  readonly conntrack: Conntrack;
}

export interface SegmentState {
  readonly name: string;
  readonly members: readonly { readonly node: string; readonly iface: string }[];
  /** MAC → member index. */
  readonly fdb: Overlay<Mac, number>;
}

/** Node and segment states by name, made on first use. */
export interface StateMap<T> {
  get(name: string): T | undefined;
}

export interface Dataplane {
  readonly scenario: Scenario;
  readonly nodes: StateMap<NodeState>;
  readonly segments: StateMap<SegmentState>;
}

export interface DataplaneEngines {
  /** Each host's ebtables (looked up when a frame first meets the host, so hosts no frame meets are never compiled). */
  readonly firewalls: StateMap<BridgeFirewall>;
  /** Factories so each probe starts with an empty connection table. */
  readonly ipvs: ReadonlyMap<string, () => IpvsEngine>;
}

const WARM = implicit(
  'warm FDB: learned from earlier traffic (lvsdoctor assumes every bridge and switch knows where each MAC lives)',
);

/** The MACs reachable by leaving `node` through `iface`, not crossing `skipSegment`. */
/** Whether two ports of a VLAN-filtering bridge are members of a common VLAN. */
function shareVlan(a: BridgeVlans, b: BridgeVlans): boolean {
  if (a.untagged.some((v) => vlanMember(b, v)) || b.untagged.some((v) => vlanMember(a, v))) return true;
  return a.tagged.some(([lo, hi]) => b.tagged.some(([l2, h2]) => lo <= h2 && l2 <= hi));
}

function macsBehind(
  s: Scenario,
  segmentsByName: ReadonlyMap<string, Scenario['segments'][number]>,
  node: string,
  iface: string,
  skipSegment?: string,
): Set<Mac> {
  const out = new Set<Mac>();
  const seen = new Set<Iface>();
  const visitIface = (n: Node, i: Iface, arriving: boolean) => {
    if (seen.has(i)) return;
    seen.add(i);
    if (arriving) {
      out.add(i.mac);
      // Devices stacked on it (a VMAC macvlan, VLANs) receive through it; a bond slave's frames reach the bond.
      for (const u of uppersOf(n, i.name)) out.add(u.mac);
      const upper = i.master !== undefined ? n.interfaces.get(i.master) : undefined;
      if (upper?.kind === 'bond') {
        out.add(upper.mac);
        for (const u of uppersOf(n, upper.name)) out.add(u.mac);
        return;
      }
      // A bridge port leads to the bridge and every other port of it — on a VLAN-filtering bridge, to the ports that
      // share a VLAN with it (a frame from elsewhere reaches this port only in a VLAN both carry).
      if (i.master) {
        const br = upper;
        if (br) out.add(br.mac);
        const filtering = br?.vlanFiltering === true;
        for (const other of n.interfaces.values())
          if (
            other.master === i.master &&
            other.name !== i.name &&
            (!filtering || shareVlan(i.bridgeVlans ?? DEFAULT_BRIDGE_VLANS, other.bridgeVlans ?? DEFAULT_BRIDGE_VLANS))
          )
            visitIface(n, other, false);
      }
      return;
    }
    // Leaving through i: follow its link.
    if (i.peer) {
      const pn = s.nodes.get(i.peer.node);
      const pi = pn?.interfaces.get(i.peer.iface);
      if (pn && pi) visitIface(pn, pi, true);
    }
    if (i.segment && i.segment !== skipSegment) {
      const seg = segmentsByName.get(i.segment);
      for (const m of seg?.members ?? []) {
        if (m.node === n.name && m.iface === i.name) continue;
        const mn = s.nodes.get(m.node);
        const mi = mn?.interfaces.get(m.iface);
        if (mn && mi) visitIface(mn, mi, true);
      }
    }
  };
  const n = s.nodes.get(node);
  const i = n?.interfaces.get(iface);
  if (n && i) visitIface(n, i, false);
  return out;
}

/**
 * The warm FDBs of one topology, computed on demand. Valid for any scenario with the same segments and the same
 * interface maps on the same node names (all `macsBehind` reads).
 */
class Topology {
  private readonly segmentsByName = new Map<string, Scenario['segments'][number]>();
  private readonly bridgeTables = new Map<string, Map<string, WarmFdb>>();
  private readonly segmentTables = new Map<string, ReadonlyMap<Mac, number>>();
  readonly interfaces = new Map<string, ReadonlyMap<string, Iface>>();

  /** The segment whose state a name gives (the last of that name, as a map built in order keeps). */
  readonly segmentState = new Map<string, Scenario['segments'][number]>();

  constructor(private readonly s: Scenario) {
    // Paths follow the first segment of a name.
    for (const g of s.segments) {
      if (!this.segmentsByName.has(g.name)) this.segmentsByName.set(g.name, g);
      this.segmentState.set(g.name, g);
    }
    for (const [name, n] of s.nodes) this.interfaces.set(name, n.interfaces);
  }

  fits(s: Scenario): boolean {
    if (s.segments !== this.s.segments || s.nodes.size !== this.interfaces.size) return false;
    if (s.nodes === this.s.nodes) return true;
    for (const [name, n] of s.nodes) if (this.interfaces.get(name) !== n.interfaces) return false;
    return true;
  }

  /** The warm FDB of `bridge` on `node`, or undefined when it is not a bridge there. */
  bridge(nodeName: string, bridge: string): WarmFdb | undefined {
    let byBridge = this.bridgeTables.get(nodeName);
    if (byBridge === undefined) {
      byBridge = new Map();
      this.bridgeTables.set(nodeName, byBridge);
    }
    let table = byBridge.get(bridge);
    if (table !== undefined) return table;
    const node = this.s.nodes.get(nodeName);
    const br = node?.interfaces.get(bridge);
    if (!node || br?.kind !== 'bridge') return undefined;
    const t = new Map<Mac, FdbEntry>();
    const candidates = br.vlanFiltering
      ? new Map<Mac, { readonly entry: FdbEntry; readonly vlans: BridgeVlans }[]>()
      : undefined;
    for (const port of node.interfaces.values()) {
      if (port.master !== br.name) continue;
      const entry: FdbEntry = { port: port.name, origin: WARM };
      const vlans = port.bridgeVlans ?? DEFAULT_BRIDGE_VLANS;
      for (const m of macsBehind(this.s, this.segmentsByName, node.name, port.name)) {
        if (isMulticastMac(m)) continue;
        t.set(m, entry);
        if (candidates) {
          const list = candidates.get(m);
          if (list) list.push({ entry, vlans });
          else candidates.set(m, [{ entry, vlans }]);
        }
      }
    }
    table = candidates ? { byMac: t, candidates } : { byMac: t };
    byBridge.set(bridge, table);
    return table;
  }

  segment(name: string): ReadonlyMap<Mac, number> | undefined {
    let fdb = this.segmentTables.get(name);
    if (fdb !== undefined) return fdb;
    const seg = this.segmentState.get(name);
    if (!seg) return undefined;
    const s = this.s;
    const t = new Map<Mac, number>();
    seg.members.forEach((m, idx) => {
      const n = s.nodes.get(m.node);
      const i = n?.interfaces.get(m.iface);
      if (!n || !i) return;
      // What sits behind a member: its own MAC and everything reachable through its node.
      t.set(i.mac, idx);
      if (i.master) {
        const br = n.interfaces.get(i.master);
        if (br) t.set(br.mac, idx);
        for (const other of n.interfaces.values())
          if (other.master === i.master && other.name !== i.name)
            for (const mac of macsBehind(s, this.segmentsByName, n.name, other.name, seg.name))
              if (!t.has(mac)) t.set(mac, idx);
      }
    });
    fdb = t;
    this.segmentTables.set(name, fdb);
    return fdb;
  }
}

const topologies = new WeakMap<Scenario['segments'], Topology[]>();

function topologyOf(s: Scenario): Topology {
  let list = topologies.get(s.segments);
  if (list === undefined) {
    list = [];
    topologies.set(s.segments, list);
  }
  for (const t of list) if (t.fits(s)) return t;
  const t = new Topology(s);
  if (list.length >= 4) list.shift();
  list.push(t);
  return t;
}

/** The starting state of every probe: the scenario, its engines and its topology's warm FDBs. */
export function buildDataplane(s: Scenario, engines: DataplaneEngines): Dataplane {
  return freshDataplane(s, engines, topologyOf(s));
}

interface Pristine extends Dataplane {
  readonly [PRISTINE]: { readonly engines: DataplaneEngines; readonly topology: Topology };
}
const PRISTINE = Symbol('pristine');

function freshDataplane(s: Scenario, engines: DataplaneEngines, topology: Topology): Pristine {
  const nodes = new Map<string, NodeState>();
  const segments = new Map<string, SegmentState>();
  return {
    scenario: s,
    [PRISTINE]: { engines, topology },
    nodes: {
      get(name) {
        let st = nodes.get(name);
        if (st === undefined) {
          const made = nodeState(s, engines, topology, name);
          if (made === undefined) return undefined;
          st = made;
          nodes.set(name, st);
        }
        return st;
      },
    },
    segments: {
      get(name) {
        let st = segments.get(name);
        if (st === undefined) {
          const base = topology.segment(name);
          if (base === undefined) return undefined;
          st = { name, members: topology.segmentState.get(name)!.members, fdb: new Overlay(base) };
          segments.set(name, st);
        }
        return st;
      },
    },
  };
}

function nodeState(s: Scenario, engines: DataplaneEngines, topology: Topology, name: string): NodeState | undefined {
  const node = s.nodes.get(name);
  return node === undefined ? undefined : new LiveNode(node, name, engines, topology);
}

class LiveFdbs implements NodeFdbs {
  private readonly tables = new Map<string, BridgeFdb>();
  constructor(
    private readonly topology: Topology,
    private readonly name: string,
  ) {}
  get(bridge: string): BridgeFdb | undefined {
    let t = this.tables.get(bridge);
    if (t === undefined) {
      const base = this.topology.bridge(this.name, bridge);
      if (base === undefined) return undefined;
      t = new BridgeFdb(base);
      this.tables.set(bridge, t);
    }
    return t;
  }
}

/** A node's state during one probe. Its firewall and IPVS engine are looked up when the walker first asks. */
class LiveNode implements NodeState {
  readonly fdb: LiveFdbs;
  readonly neighbours: Overlay<Ipv4, NeighbourEntry>;
  private fw: BridgeFirewall | undefined | null = null;
  private engine: IpvsEngine | undefined | null = null;
  private ct: Conntrack | undefined;

  constructor(
    readonly node: Node,
    private readonly name: string,
    private readonly engines: DataplaneEngines,
    topology: Topology,
  ) {
    this.fdb = new LiveFdbs(topology, name);
    this.neighbours = new Overlay(node.neighbours);
  }

  get firewall(): BridgeFirewall | undefined {
    if (this.fw === null) this.fw = this.engines.firewalls.get(this.name);
    return this.fw;
  }

  get conntrack(): Conntrack {
    if (this.ct === undefined) this.ct = new Conntrack();
    return this.ct;
  }

  get ipvs(): IpvsEngine | undefined {
    if (this.engine === null) this.engine = this.engines.ipvs.get(this.name)?.();
    return this.engine;
  }
}

/** A fresh view of the mutable state, so every probe starts from the scenario's state. */
export function resetDataplane(dp: Dataplane, engines: DataplaneEngines): Dataplane {
  const p = (dp as Partial<Pristine>)[PRISTINE];
  return freshDataplane(dp.scenario, engines, p?.topology ?? topologyOf(dp.scenario));
}

/** True when two dataplanes share their warm FDBs (the same topology by identity), so walks meet the same ports. */
export function sameTopology(a: Dataplane, b: Dataplane): boolean {
  const ta = (a as Partial<Pristine>)[PRISTINE]?.topology;
  return ta !== undefined && ta === (b as Partial<Pristine>)[PRISTINE]?.topology;
}
