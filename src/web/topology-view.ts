/**
 * The topology as the page draws it: hypervisors with their uplinks, bridges, taps and guests, the segments, the
 * gateway and the client, laid out by ELK (elkjs, layered) on the server so that the page only draws SVG. Big
 * fleets (more than DETAILED_MAX_HOSTS hypervisors) get one card per hypervisor, packed by ELK's rectpacking, so
 * the drawing stays readable at 200 hosts; hops and capture points then land on the card of their hypervisor.
 */

import elkBundled from 'elkjs/lib/elk.bundled.js';
import { formatIpv4 } from '../addr/ipv4.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { IFACE_KINDS, type Iface, type Node } from '../topology/model.ts';
import type { TopoEdge, TopoKind, TopologyView, TopoNode } from './contract.ts';

export const DETAILED_MAX_HOSTS = 12;

type ElkCtor = new () => { layout(graph: unknown): Promise<unknown> };
// elk.bundled.js is CommonJS: Node's ESM loader gives module.exports as the default export, bundlers may wrap it.
const ELK = ((elkBundled as unknown as { default?: ElkCtor }).default ?? elkBundled) as unknown as ElkCtor;

interface ElkNode {
  id: string;
  width?: number;
  height?: number;
  x?: number;
  y?: number;
  labels?: { text: string }[];
  layoutOptions?: Record<string, string>;
  children?: ElkNode[];
  edges?: ElkEdge[];
}

interface ElkEdge {
  id: string;
  sources: string[];
  targets: string[];
  sections?: { startPoint: Pt; endPoint: Pt; bendPoints?: Pt[] }[];
}

interface Pt {
  x: number;
  y: number;
}

interface Meta {
  kind: TopoKind;
  label: string;
  detail?: string;
  role?: string;
  parent?: string;
}

const SIZE: Record<TopoKind, [number, number]> = {
  host: [0, 0],
  bridge: [96, 30],
  tap: [84, 28],
  uplink: [84, 28],
  guest: [170, 46],
  gateway: [170, 46],
  client: [170, 46],
  segment: [220, 28],
  'host-summary': [168, 58],
};

function roleName(n: Node): string {
  if (n.kind === 'gateway') return 'gateway';
  if (n.kind === 'client') return 'client';
  if (n.role === 'director') return 'director';
  if (n.role === 'real-server') return 'real server';
  return 'guest';
}

function addrsOf(n: Node): string {
  const out: string[] = [];
  for (const i of n.interfaces.values())
    if (i.kind !== 'loopback') for (const a of i.addrs) out.push(`${formatIpv4(a.prefix.addr)}/${a.prefix.len}`);
  return out.slice(0, 3).join(' ') + (out.length > 3 ? ' …' : '');
}

function hostIfaceKind(i: Iface): TopoKind | undefined {
  return IFACE_KINDS[i.kind].drawnAs;
}

function elementOf(loaded: LoadedScenario, node: string, iface: string | undefined, summary: boolean): string {
  const n = loaded.scenario.nodes.get(node);
  if (!n) return `n:${node}`;
  if (summary) {
    if (n.kind === 'host') return `n:${node}`;
    if (n.kind === 'guest' && n.host) return `n:${n.host}`;
    return `n:${node}`;
  }
  if (n.kind === 'host' && iface !== undefined) {
    const i = n.interfaces.get(iface);
    if (i && hostIfaceKind(i)) return `if:${node}:${iface}`;
  }
  return `n:${node}`;
}

/** Lays the scenario's topology out; `places` maps `node` and `node:iface` to the element a hop is drawn on. */
export async function topologyView(loaded: LoadedScenario): Promise<TopologyView> {
  const nodes = [...loaded.scenario.nodes.values()];
  const hosts = nodes.filter((n) => n.kind === 'host');
  const summary = hosts.length > DETAILED_MAX_HOSTS;
  const meta = new Map<string, Meta>();
  const places: Record<string, string> = {};
  const place = (node: string, iface?: string) => {
    const el = elementOf(loaded, node, iface, summary);
    places[iface === undefined ? node : `${node}:${iface}`] = el;
    return el;
  };
  const guestsOf = new Map<string, Node[]>();
  for (const n of nodes) if (n.kind === 'guest' && n.host) guestsOf.set(n.host, [...(guestsOf.get(n.host) ?? []), n]);

  const leaf = (id: string, m: Meta): ElkNode => {
    meta.set(id, m);
    const [w, h] = SIZE[m.kind];
    return { id, width: w, height: h };
  };
  const top: ElkNode[] = [];
  const edges: ElkEdge[] = [];
  const edgeKeys = new Set<string>();
  const edge = (a: string, b: string) => {
    if (a === b) return;
    const key = a < b ? `${a}|${b}` : `${b}|${a}`;
    if (edgeKeys.has(key)) return;
    edgeKeys.add(key);
    edges.push({ id: `e${edges.length}`, sources: [a], targets: [b] });
  };

  for (const s of loaded.scenario.segments) top.push(leaf(`seg:${s.name}`, { kind: 'segment', label: s.name }));
  for (const n of nodes) {
    if (n.kind === 'gateway' || n.kind === 'client')
      top.push(leaf(`n:${n.name}`, { kind: n.kind, label: n.name, detail: addrsOf(n), role: n.kind }));
  }
  for (const h of hosts) {
    const guests = guestsOf.get(h.name) ?? [];
    if (summary) {
      const dirs = guests.filter((g) => g.role === 'director').length;
      const rs = guests.filter((g) => g.role === 'real-server').length;
      top.push(
        leaf(`n:${h.name}`, {
          kind: 'host-summary',
          label: h.name,
          detail: `${guests.length} guests${dirs ? ` · ${dirs} director${dirs > 1 ? 's' : ''}` : ''}${rs ? ` · ${rs} RS` : ''}`,
        }),
      );
      continue;
    }
    meta.set(`n:${h.name}`, { kind: 'host', label: h.name, detail: addrsOf(h) });
    const children: ElkNode[] = [];
    for (const i of h.interfaces.values()) {
      const k = hostIfaceKind(i);
      if (!k) continue;
      children.push(leaf(`if:${h.name}:${i.name}`, { kind: k, label: i.name, parent: `n:${h.name}` }));
    }
    for (const g of guests)
      children.push(
        leaf(`n:${g.name}`, {
          kind: 'guest',
          label: g.name,
          detail: `${roleName(g)} · ${addrsOf(g)}`,
          role: roleName(g),
          parent: `n:${h.name}`,
        }),
      );
    top.push({
      id: `n:${h.name}`,
      labels: [{ text: h.name }],
      layoutOptions: { 'elk.padding': '[top=30,left=12,bottom=12,right=12]' },
      children,
    });
  }
  // Edges point downwards: client → gateway → segment → uplink → bridge → tap → guest.
  const kindOf = (node: string) => loaded.scenario.nodes.get(node)?.kind;
  const joinSegment = (node: string, el: string, seg: string) =>
    kindOf(node) === 'host' ? edge(seg, el) : edge(el, seg);
  for (const n of nodes) {
    place(n.name);
    for (const i of n.interfaces.values()) {
      if (i.kind === 'loopback') continue;
      const el = place(n.name, i.name);
      if (summary) continue;
      if (i.master) {
        const bridge = elementOf(loaded, n.name, i.master, false);
        if (i.kind === 'tap') edge(bridge, el);
        else edge(el, bridge);
      }
      if (i.peer) {
        const other = elementOf(loaded, i.peer.node, i.peer.iface, false);
        const peerKind = kindOf(i.peer.node);
        if (n.kind === 'host' || (n.kind === 'client' && peerKind !== 'host')) edge(el, other);
        else edge(other, el);
      }
      if (i.segment) joinSegment(n.name, el, `seg:${i.segment}`);
    }
  }
  if (!summary)
    for (const s of loaded.scenario.segments)
      for (const m of s.members) joinSegment(m.node, elementOf(loaded, m.node, m.iface, false), `seg:${s.name}`);

  const graph: ElkNode = {
    id: 'root',
    layoutOptions: summary
      ? {
          'elk.algorithm': 'rectpacking',
          'elk.aspectRatio': '0.3',
          'elk.spacing.nodeNode': '14',
          'elk.padding': '[top=16,left=16,bottom=16,right=16]',
          'elk.json.shapeCoords': 'ROOT',
        }
      : {
          'elk.algorithm': 'layered',
          'elk.direction': 'DOWN',
          'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
          'elk.layered.spacing.nodeNodeBetweenLayers': '36',
          'elk.spacing.nodeNode': '22',
          'elk.edgeRouting': 'ORTHOGONAL',
          'elk.padding': '[top=16,left=16,bottom=16,right=16]',
          'elk.json.shapeCoords': 'ROOT',
          'elk.json.edgeCoords': 'ROOT',
        },
    children: top,
    edges: summary ? [] : edges,
  };
  const elk = new ELK();
  const out = (await elk.layout(graph)) as unknown as ElkNode & { width: number; height: number };
  const topo: TopoNode[] = [];
  const visit = (n: ElkNode) => {
    const m = meta.get(n.id);
    if (m)
      topo.push({
        id: n.id,
        kind: m.kind,
        label: m.label,
        ...(m.detail ? { detail: m.detail } : {}),
        ...(m.role ? { role: m.role } : {}),
        ...(m.parent ? { parent: m.parent } : {}),
        x: n.x ?? 0,
        y: n.y ?? 0,
        w: n.width ?? 0,
        h: n.height ?? 0,
      });
    for (const c of n.children ?? []) visit(c);
  };
  for (const c of out.children ?? []) visit(c);
  const topoEdges: TopoEdge[] = (out.edges ?? []).map((e) => {
    const s = e.sections?.[0];
    const pts: [number, number][] = s
      ? [
          [s.startPoint.x, s.startPoint.y],
          ...(s.bendPoints ?? []).map((p): [number, number] => [p.x, p.y]),
          [s.endPoint.x, s.endPoint.y],
        ]
      : [];
    return { id: e.id, from: e.sources[0]!, to: e.targets[0]!, points: pts };
  });
  return {
    mode: summary ? 'summary' : 'detailed',
    width: Math.ceil(out.width),
    height: Math.ceil(out.height),
    nodes: topo,
    edges: topoEdges,
    places,
  };
}
