/**
 * The dataplane: the scenario plus the mutable state packets change as they move (bridge and switch FDBs,
 * neighbour tables, IPVS connection tables). `snapshot()` gives every probe the same starting state.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { isMulticastMac, type Mac } from '../addr/mac.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { Iface, NeighbourEntry, Node, Scenario } from '../topology/model.ts';
import type { BridgeFirewall, IpvsEngine } from './engines.ts';

export interface FdbEntry {
  readonly port: string;
  readonly origin: Origin;
}

export interface NodeState {
  readonly node: Node;
  /** bridge name → MAC → port. */
  readonly fdb: Map<string, Map<Mac, FdbEntry>>;
  readonly neighbours: Map<Ipv4, NeighbourEntry>;
  readonly firewall?: BridgeFirewall;
  readonly ipvs?: IpvsEngine;
}

export interface SegmentState {
  readonly name: string;
  readonly members: readonly { readonly node: string; readonly iface: string }[];
  /** MAC → member index. */
  readonly fdb: Map<Mac, number>;
}

export interface Dataplane {
  readonly scenario: Scenario;
  readonly nodes: ReadonlyMap<string, NodeState>;
  readonly segments: ReadonlyMap<string, SegmentState>;
}

export interface DataplaneEngines {
  readonly firewalls: ReadonlyMap<string, BridgeFirewall>;
  /** Factories so each probe starts with an empty connection table. */
  readonly ipvs: ReadonlyMap<string, () => IpvsEngine>;
}

const WARM = implicit(
  'warm FDB: learned from earlier traffic (lvsdoctor assumes every bridge and switch knows where each MAC lives)',
);

/** The MACs reachable by leaving `node` through `iface`, not crossing `skipSegment`. */
function macsBehind(s: Scenario, node: string, iface: string, skipSegment?: string): Set<Mac> {
  const out = new Set<Mac>();
  const seen = new Set<string>();
  const visitIface = (n: Node, i: Iface, arriving: boolean) => {
    const key = `${n.name}:${i.name}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (arriving) {
      out.add(i.mac);
      // A bridge port leads to the bridge and every other port of it.
      if (i.master) {
        const br = n.interfaces.get(i.master);
        if (br) out.add(br.mac);
        for (const other of n.interfaces.values())
          if (other.master === i.master && other.name !== i.name) visitIface(n, other, false);
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
      const seg = s.segments.find((g) => g.name === i.segment);
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

export function buildDataplane(s: Scenario, engines: DataplaneEngines): Dataplane {
  const nodes = new Map<string, NodeState>();
  for (const node of s.nodes.values()) {
    const fdb = new Map<string, Map<Mac, FdbEntry>>();
    for (const br of node.interfaces.values()) {
      if (br.kind !== 'bridge') continue;
      const table = new Map<Mac, FdbEntry>();
      for (const port of node.interfaces.values()) {
        if (port.master !== br.name) continue;
        for (const m of macsBehind(s, node.name, port.name))
          if (!isMulticastMac(m)) table.set(m, { port: port.name, origin: WARM });
      }
      fdb.set(br.name, table);
    }
    const firewall = engines.firewalls.get(node.name);
    const ipvsFactory = engines.ipvs.get(node.name);
    nodes.set(node.name, {
      node,
      fdb,
      neighbours: new Map(node.neighbours),
      ...(firewall ? { firewall } : {}),
      ...(ipvsFactory ? { ipvs: ipvsFactory() } : {}),
    });
  }
  const segments = new Map<string, SegmentState>();
  for (const seg of s.segments) {
    const fdb = new Map<Mac, number>();
    seg.members.forEach((m, idx) => {
      const n = s.nodes.get(m.node);
      const i = n?.interfaces.get(m.iface);
      if (!n || !i) return;
      // What sits behind a member: its own MAC and everything reachable through its node.
      fdb.set(i.mac, idx);
      if (i.master) {
        const br = n.interfaces.get(i.master);
        if (br) fdb.set(br.mac, idx);
        for (const other of n.interfaces.values())
          if (other.master === i.master && other.name !== i.name)
            for (const mac of macsBehind(s, n.name, other.name, seg.name)) if (!fdb.has(mac)) fdb.set(mac, idx);
      }
    });
    segments.set(seg.name, { name: seg.name, members: seg.members, fdb });
  }
  return { scenario: s, nodes, segments };
}

/** A fresh copy of the mutable state, so every probe starts from the scenario's state. */
export function resetDataplane(dp: Dataplane, engines: DataplaneEngines): Dataplane {
  const nodes = new Map<string, NodeState>();
  for (const [name, st] of dp.nodes) {
    const fdb = new Map<string, Map<Mac, FdbEntry>>();
    for (const [br, t] of st.fdb) fdb.set(br, new Map(t));
    const ipvsFactory = engines.ipvs.get(name);
    const fresh: { -readonly [K in keyof NodeState]: NodeState[K] } = {
      node: st.node,
      fdb,
      neighbours: new Map(st.node.neighbours),
    };
    if (st.firewall) fresh.firewall = st.firewall;
    // IPVS state is built on first use: most probes cross few directors.
    if (ipvsFactory) {
      let engine: IpvsEngine | undefined;
      Object.defineProperty(fresh, 'ipvs', { get: () => (engine ??= ipvsFactory()), enumerable: true });
    }
    nodes.set(name, fresh);
  }
  const segments = new Map<string, SegmentState>();
  for (const [name, seg] of dp.segments) segments.set(name, { ...seg, fdb: new Map(seg.fdb) });
  return { scenario: dp.scenario, nodes, segments };
}
