/**
 * Finding a probe's packets in captures, and the last point they were seen. The same function reads the real
 * captures (pcaps written by tcpdump) and the simulator's captures, so that both are judged alike.
 *
 * A probe's frames are ranked by how far they got: for TCP the client's SYN (1), the SYN as a director forwarded it
 * (2, sent from a director's MAC; with NAT addressed to a real server), a NAT real server's SYN-ACK before the
 * director rewrote its source (3), the SYN-ACK from the probed address (4); for ARP the request (1) and the reply (2). The last-seen point
 * is, among the frames of the highest rank, per sender (source MAC) the point where its frames were first seen
 * latest, and of those the latest — counting only points on the frame's own L2 path (a copy a bridge floods towards a NIC that does not want it is not progress). When the
 * highest rank is a broadcast nobody answered, every point it reached is equally far: the set is reported.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { isMulticastMac, type Mac } from '../addr/mac.ts';
import { prefixContains } from '../addr/prefix.ts';
import { appendAll, maxOf } from '../source/arrays.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec, Node, Scenario } from '../topology/model.ts';
import { ARP_REPLY, ARP_REQUEST, type EthernetFrame, TCP_ACK, TCP_RST, TCP_SYN } from '../wire/types.ts';

export interface SeenFrame {
  readonly point: string;
  readonly timeNs: bigint;
  readonly frame: EthernetFrame;
}

type PointKind =
  | { readonly kind: 'nic'; readonly mac: Mac }
  | { readonly kind: 'p2p' }
  | { readonly kind: 'port'; readonly behind: ReadonlySet<Mac> }
  | { readonly kind: 'bridge'; readonly mac: Mac; readonly ports: readonly ReadonlySet<Mac>[] };

/** The L2 layout of capture points: which MACs lie behind each bridge port. */
export interface L2View {
  readonly points: ReadonlyMap<string, PointKind>;
  /** `node:port` → the bridge (or bond) it is a port of. */
  readonly masterOf?: ReadonlyMap<string, string>;
}

export function l2View(s: Scenario): L2View {
  const key = (n: string, i: string) => `${n}:${i}`;
  const segOf = new Map<string, string[]>();
  for (const seg of s.segments) {
    const ms = seg.members.map((m) => key(m.node, m.iface));
    for (const m of ms) segOf.set(m, ms);
  }
  const beyond = (node: string, iface: string, excludeBridge: string): Set<Mac> => {
    const macs = new Set<Mac>();
    const seen = new Set<string>([key(node, iface)]);
    const far = (n: string, i: string): string[] => {
      const ifc = s.nodes.get(n)?.interfaces.get(i);
      const out: string[] = [];
      if (ifc?.peer) out.push(key(ifc.peer.node, ifc.peer.iface));
      for (const m of segOf.get(key(n, i)) ?? []) if (m !== key(n, i)) out.push(m);
      return out;
    };
    const queue = far(node, iface);
    while (queue.length > 0) {
      const k = queue.shift()!;
      if (seen.has(k)) continue;
      seen.add(k);
      const [n, i] = k.split(':') as [string, string];
      const nd = s.nodes.get(n);
      const ifc = nd?.interfaces.get(i);
      if (!nd || !ifc) continue;
      macs.add(ifc.mac);
      if (ifc.master && key(n, ifc.master) !== excludeBridge) {
        const br = nd.interfaces.get(ifc.master);
        if (br) macs.add(br.mac);
        seen.add(key(n, ifc.master));
        for (const p of nd.interfaces.values())
          if (p.master === ifc.master && p.name !== i && !seen.has(key(n, p.name))) {
            seen.add(key(n, p.name));
            macs.add(p.mac);
            appendAll(queue, far(n, p.name));
          }
      }
    }
    return macs;
  };
  const points = new Map<string, PointKind>();
  for (const n of s.nodes.values())
    for (const i of n.interfaces.values()) {
      if (i.kind === 'loopback') continue;
      const k = key(n.name, i.name);
      if (i.kind === 'bridge') {
        const ports = [...n.interfaces.values()]
          .filter((p) => p.master === i.name)
          .map((p) => beyond(n.name, p.name, k));
        points.set(k, { kind: 'bridge', mac: i.mac, ports });
      } else if (i.master) points.set(k, { kind: 'port', behind: beyond(n.name, i.name, key(n.name, i.master)) });
      else if (i.pointToPoint) points.set(k, { kind: 'p2p' });
      else points.set(k, { kind: 'nic', mac: i.mac });
    }
  const masterOf = new Map<string, string>();
  for (const n of s.nodes.values())
    for (const i of n.interfaces.values()) if (i.master) masterOf.set(key(n.name, i.name), i.master);
  return { points, masterOf };
}

/** True when a frame seen at `point` is on its own way (not a flooded copy heading nowhere). */
export function onPath(view: L2View, point: string, f: EthernetFrame): boolean {
  if (isMulticastMac(f.dst)) return true;
  const p = view.points.get(point);
  if (!p) return true;
  switch (p.kind) {
    case 'p2p':
      return true;
    case 'nic':
      return f.src === p.mac || f.dst === p.mac;
    case 'port':
      return p.behind.has(f.src) !== p.behind.has(f.dst);
    case 'bridge': {
      if (f.dst === p.mac || f.src === p.mac) return true;
      const from = p.ports.findIndex((m) => m.has(f.src));
      const to = p.ports.findIndex((m) => m.has(f.dst));
      return to >= 0 && from !== to;
    }
  }
}

/** What identifies a probe's packets. */
export interface ProbeKey {
  readonly probe: AnyProbeSpec;
  /** TCP, UDP: the source address of the probing node. ARP: the asking interface's address. */
  readonly src: Ipv4;
  /** MACs of directors' NICs (a request sent from one was forwarded by a director). */
  readonly directorMacs: ReadonlySet<Mac>;
  /** NAT: the real servers (`ip:port`) of the probed service, where the director sends the rewritten request. */
  readonly natDests: ReadonlySet<string>;
}

function firstAddress(node: Node | undefined): Ipv4 | undefined {
  if (!node) return undefined;
  for (const i of node.interfaces.values()) if (i.kind !== 'loopback' && i.addrs[0]) return i.addrs[0].prefix.addr;
  return undefined;
}

export function probeKey(loaded: LoadedScenario, probe: AnyProbeSpec): ProbeKey {
  const node = loaded.scenario.nodes.get(probe.from);
  let src = firstAddress(node) ?? (0 as Ipv4);
  if (probe.kind === 'arp' && node)
    for (const i of node.interfaces.values())
      for (const a of i.addrs)
        if (i.kind !== 'loopback' && prefixContains(a.prefix, probe.target)) {
          src = a.prefix.addr;
        }
  const directorMacs = new Set<Mac>();
  for (const d of loaded.ipvs.keys())
    for (const i of loaded.scenario.nodes.get(d)?.interfaces.values() ?? [])
      if (i.kind !== 'loopback') directorMacs.add(i.mac);
  const natDests = new Set<string>();
  if (probe.kind !== 'arp')
    for (const t of loaded.ipvs.values())
      for (const svc of t.services) {
        const k = svc.key;
        if (k.kind !== 'addr' || k.protocol !== (probe.kind === 'udp' ? 'UDP' : 'TCP') || k.address.family !== 'ipv4')
          continue;
        if (k.address.addr !== probe.to || k.port !== probe.dport) continue;
        for (const d of svc.destinations)
          if (d.forwarding?.kind === 'masq' && d.address.family === 'ipv4')
            natDests.add(`${formatIpv4(d.address.addr as Ipv4)}:${d.port}`);
      }
  return { probe, src, directorMacs, natDests };
}

/** The rank of a frame for this probe, or 0 when it is not one of the probe's frames. */
export function frameRank(k: ProbeKey, f: EthernetFrame): number {
  const p = f.payload;
  const probe = k.probe;
  if (probe.kind === 'arp') {
    if (p.kind !== 'arp') return 0;
    if (p.op === ARP_REQUEST && p.tpa === probe.target && p.spa === k.src) return 1;
    if (p.op === ARP_REPLY && p.spa === probe.target && p.tpa === k.src) return 2;
    return 0;
  }
  if (p.kind !== 'ipv4') return 0;
  if (probe.kind === 'udp') {
    // The query (1), as a director forwarded it (2, with NAT to a real server), a NAT real server's answer before the
    // director gave it the service's address back (3), the answer from the probed address (4).
    const u = p.payload;
    if (u.kind !== 'udp') return 0;
    if (p.src === k.src && u.srcPort === probe.sport) {
      if (p.dst === probe.to && u.dstPort === probe.dport) return k.directorMacs.has(f.src) ? 2 : 1;
      if (k.natDests.has(`${formatIpv4(p.dst)}:${u.dstPort}`) && k.directorMacs.has(f.src)) return 2;
      return 0;
    }
    if (p.dst === k.src && u.dstPort === probe.sport) {
      if (p.src === probe.to && u.srcPort === probe.dport) return 4;
      if (k.natDests.has(`${formatIpv4(p.src)}:${u.srcPort}`)) return 3;
    }
    return 0;
  }
  if (p.payload.kind !== 'tcp') return 0;
  const t = p.payload;
  const syn = (t.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN;
  const synAck = (t.flags & (TCP_SYN | TCP_ACK | TCP_RST)) === (TCP_SYN | TCP_ACK);
  if (syn && p.src === k.src && t.srcPort === probe.sport) {
    if (p.dst === probe.to && t.dstPort === probe.dport) return k.directorMacs.has(f.src) ? 2 : 1;
    // NAT: the SYN as the director rewrote it, towards a real server.
    if (k.natDests.has(`${formatIpv4(p.dst)}:${t.dstPort}`) && k.directorMacs.has(f.src)) return 2;
    return 0;
  }
  if (synAck && p.dst === k.src && t.dstPort === probe.sport) {
    if (p.src === probe.to && t.srcPort === probe.dport) return 4;
    // NAT: the real server's answer before the director gives it the virtual service's address back.
    if (k.natDests.has(`${formatIpv4(p.src)}:${t.srcPort}`)) return 3;
  }
  return 0;
}

const STAGE_OF_RANK: Readonly<Record<string, 'request' | 'reply'>> = {
  'tcp:1': 'request',
  'tcp:2': 'request',
  'tcp:3': 'reply',
  'tcp:4': 'reply',
  'udp:1': 'request',
  'udp:2': 'request',
  'udp:3': 'reply',
  'udp:4': 'reply',
  'arp:1': 'request',
  'arp:2': 'reply',
};

export interface LastSeen {
  /** 0 when the probe's packets were seen nowhere. */
  readonly rank: number;
  readonly stage?: 'request' | 'reply';
  /** The last point, or for an unanswered broadcast every point it reached (sorted, comma separated). */
  readonly point?: string;
  /** Every point where any of the probe's frames was seen (sorted). */
  readonly seenAt: readonly string[];
}

export function lastSeen(view: L2View, k: ProbeKey, frames: readonly SeenFrame[]): LastSeen {
  const mine = frames
    .map((f) => ({ f, rank: frameRank(k, f.frame) }))
    .filter((x) => x.rank > 0)
    .sort((a, b) => (a.f.timeNs < b.f.timeNs ? -1 : a.f.timeNs > b.f.timeNs ? 1 : 0));
  const seenAt = [...new Set(mine.map((x) => x.f.point))].sort();
  if (mine.length === 0) return { rank: 0, seenAt };
  const rank = maxOf(mine.map((x) => x.rank));
  const top = mine.filter((x) => x.rank === rank && onPath(view, x.f.point, x.f.frame));
  const stage = STAGE_OF_RANK[`${k.probe.kind}:${rank}`];
  const first = new Map<string, bigint>();
  for (const x of top) if (!first.has(x.f.point)) first.set(x.f.point, x.f.timeNs);
  if (first.size === 0) return { rank, ...(stage ? { stage } : {}), seenAt };
  const broadcast = top.every((x) => isMulticastMac(x.f.frame.dst));
  if (broadcast) return { rank, ...(stage ? { stage } : {}), point: [...first.keys()].sort().join(','), seenAt };
  // Per sender (source MAC): the point its frames were first seen latest — a retransmission seen again at the start
  // is not progress. Then the latest of those: two senders answering one request (an ARP request answered by eth0
  // and by a VMAC macvlan stacked on it, the kernel delivering the broadcast to both) each get as far as they get,
  // and the one that got there last does not make the other's earlier arrival look like the end.
  const bySender = new Map<string, Map<string, bigint>>();
  for (const x of top) {
    const m = bySender.get(x.f.frame.src) ?? new Map<string, bigint>();
    bySender.set(x.f.frame.src, m);
    if (!m.has(x.f.point)) m.set(x.f.point, x.f.timeNs);
  }
  let best: string | undefined;
  let bestT = -1n;
  for (const m of bySender.values()) {
    let pt: string | undefined;
    let t = -1n;
    // Captures a microsecond apart print the same time: a bridge device (in promiscuous mode it gets its copy after
    // the port that received the frame, `br_pass_frame_up`) then counts as later than a port of its own.
    for (const [p, tp] of m)
      if (tp > t || (tp === t && pt !== undefined && laterAtSameTime(view, p, pt))) {
        pt = p;
        t = tp;
      }
    if (pt !== undefined && t > bestT) {
      best = pt;
      bestT = t;
    }
  }
  return { rank, ...(stage ? { stage } : {}), ...(best ? { point: best } : {}), seenAt };
}

/** Whether point `a` (a bridge) comes after point `b` (one of its ports) for frames captured at the same time. */
function laterAtSameTime(view: L2View, a: string, b: string): boolean {
  const [na, ia] = a.split(':');
  const [nb] = b.split(':');
  return view.points.get(a)?.kind === 'bridge' && na === nb && view.masterOf?.get(b) === ia;
}

export function describeProbe(p: AnyProbeSpec): string {
  return p.kind === 'arp'
    ? `ARP who-has ${formatIpv4(p.target)} from ${p.from}`
    : `${p.kind.toUpperCase()} ${p.from} → ${formatIpv4(p.to)}:${p.dport} (sport ${p.sport})`;
}
