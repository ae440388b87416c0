/** Probes: the first frame of a conversation, what counts as success, and the resulting Trace. */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { MAC_BROADCAST, MAC_ZERO } from '../addr/mac.ts';
import { prefixContains } from '../addr/prefix.ts';
import type { AnyProbeSpec, ArpProbeSpec, Iface, Node, TcpProbeSpec, UdpProbeSpec } from '../topology/model.ts';
import {
  ARP_REPLY,
  ARP_REQUEST,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetFrame,
  type Ipv4Packet,
  TCP_ACK,
  TCP_SYN,
} from '../wire/types.ts';
import { dataSegment, fragNeededMtu, pathMss } from './conversation.ts';
import type { Dataplane, NodeState } from './dataplane.ts';
import type { DecisionLog } from './decisions.ts';
import { checkTrace } from './invariants.ts';
import { ipOutput } from './ipv4-output.ts';
import { arpOwners, type Capture, type End, type Hop, pickArpEnd, pickEnd, type Trace } from './types.ts';
import type { WalkContext, WalkGoal } from './walk.ts';
import { Walker } from './walker.ts';

export function tcpSyn(probe: TcpProbeSpec, src: Ipv4, ttl: number): Ipv4Packet {
  return {
    kind: 'ipv4',
    tos: 0,
    id: probe.ipId,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl,
    protocol: 6,
    src,
    dst: probe.to,
    payload: {
      kind: 'tcp',
      srcPort: probe.sport,
      dstPort: probe.dport,
      seq: probe.seq,
      ack: 0,
      flags: TCP_SYN,
      window: probe.window,
      urgent: 0,
      options: [
        { kind: 'mss', value: 1460 },
        { kind: 'sack-permitted' },
        { kind: 'timestamp', val: probe.tsval, ecr: 0 },
        { kind: 'nop' },
        { kind: 'wscale', shift: 7 },
      ],
      payload: new Uint8Array(0),
    },
  };
}

/** A UDP probe's datagram: a DNS-sized query, DF clear (as resolvers send it). */
export function udpQuery(probe: UdpProbeSpec, src: Ipv4, ttl: number): Ipv4Packet {
  return {
    kind: 'ipv4',
    tos: 0,
    id: probe.ipId,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl,
    protocol: 17,
    src,
    dst: probe.to,
    payload: { kind: 'udp', srcPort: probe.sport, dstPort: probe.dport, payload: new Uint8Array(UDP_QUERY_BYTES) },
  };
}

export const UDP_QUERY_BYTES = 40;

/** Runs one probe on a dataplane whose mutable state is fresh. */
export function traceProbe(dp: Dataplane, probe: AnyProbeSpec, reads?: DecisionLog): Trace {
  const captures: Capture[] = [];
  const ctx: WalkContext = reads ? { dp, captures, reads } : { dp, captures };
  const st = dp.nodes.get(probe.from);
  if (!st) throw new Error(`internal: probe ${probe.name} starts at unknown node ${probe.from}`);
  const node = st.node;
  let walker: Walker;
  let root: Hop;
  /** Hops from this id on belong to the data exchange (the request and its response). */
  let dataFrom: number | undefined;
  if (probe.kind === 'tcp') {
    let stage: 'handshake' | 'data' = 'handshake';
    let icmp: { hop: Hop; mtu: number } | undefined;
    const goal: WalkGoal = {
      onTcp: (n, pkt, seg) => {
        if (n.name !== probe.from || pkt.src !== probe.to || seg.srcPort !== probe.dport || seg.dstPort !== probe.sport)
          return false;
        if (stage === 'handshake') return (seg.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK);
        return (seg.flags & TCP_SYN) === 0 && seg.payload.length > 0;
      },
      onIcmp: (n, pkt, hop) => {
        const mtu = fragNeededMtu(pkt);
        if (stage !== 'data' || n.name !== probe.from || mtu === undefined) return false;
        icmp = { hop, mtu };
        return true;
      },
    };
    walker = new Walker(ctx, goal);
    const srcAddr = firstAddress(node) ?? (0 as Ipv4);
    root = sendFirst(walker, st, probe, tcpSyn(probe, srcAddr, node.ttl));
    const synAckHop = walker.reached;
    const synAck = synAckHop?.frame.payload;
    if (synAckHop && synAck?.kind === 'ipv4' && synAck.payload.kind === 'tcp') {
      // The handshake is done: the client acknowledges and sends a full-size request; the server answers.
      const sa = synAck.payload;
      synAckHop.end = {
        disposition: 'delivered',
        place: synAckHop.place,
        reason: `${probe.from} completed the handshake and sends its request`,
      };
      walker.reached = undefined;
      stage = 'data';
      dataFrom = walker.hops.length;
      const peerMss = sa.options.find((o) => o.kind === 'mss');
      let mss = Math.min(peerMss?.kind === 'mss' ? peerMss.value : 536, pathMss(node, probe.to, srcAddr));
      const send = (parent: Hop, bytes: number, k: number) => {
        const tsOpt = sa.options.find((o) => o.kind === 'timestamp');
        const data = dataSegment({
          src: srcAddr,
          dst: probe.to,
          sport: probe.sport,
          dport: probe.dport,
          seq: probe.seq + 1,
          ack: sa.seq + 1,
          bytes,
          ttl: node.ttl,
          id: probe.ipId + k,
          tsval: probe.tsval + k,
          tsecr: tsOpt?.kind === 'timestamp' ? tsOpt.val : 0,
        });
        parent.steps.push({
          kind: 'reply',
          what: `the request: ${bytes} bytes (IP length ${bytes + 52}, DF) from ${formatIpv4(srcAddr)}:${probe.sport}`,
        });
        walker.runFrom(() => ipOutput(walker, st, data, parent, parent.timeNs + 100_000n));
      };
      send(synAckHop, mss - 12, 1);
      const learnt = icmp as { hop: Hop; mtu: number } | undefined;
      if (!walker.reached && learnt && learnt.mtu - 40 < mss) {
        // PMTU discovery worked: the client retransmits in segments that fit.
        mss = learnt.mtu - 40;
        dataFrom = walker.hops.length;
        send(learnt.hop, mss - 12, 2);
      }
    }
  } else if (probe.kind === 'udp') {
    // One datagram and its answer: UDP has no handshake; IPVS schedules the first datagram of the flow.
    walker = new Walker(ctx, {
      onUdp: (n, pkt, d) =>
        n.name === probe.from && pkt.src === probe.to && d.srcPort === probe.dport && d.dstPort === probe.sport,
      onStrayUdp: (n, _pkt, d) => n.name === probe.from && d.dstPort === probe.sport,
    });
    root = sendFirst(walker, st, probe, udpQuery(probe, firstAddress(node) ?? (0 as Ipv4), node.ttl));
  } else {
    walker = new Walker(ctx, {
      onArpReply: (n, a) => n.name === probe.from && a.spa === probe.target && a.op === ARP_REPLY,
    });
    const out = arpInterface(node, probe);
    const spa = out?.addrs[0]?.prefix.addr ?? (0 as Ipv4);
    const frame: EthernetFrame = {
      dst: MAC_BROADCAST,
      src: out?.mac ?? MAC_ZERO,
      vlans: [],
      etherType: ETHERTYPE_ARP,
      payload: {
        kind: 'arp',
        htype: 1,
        ptype: ETHERTYPE_IPV4,
        op: ARP_REQUEST,
        sha: out?.mac ?? MAC_ZERO,
        spa,
        tha: MAC_ZERO,
        tpa: probe.target,
      },
    };
    root = rootHop(probe.from, probe.timeNs, frame);
    walker.hops.push(root);
    if (!out) {
      root.end = {
        disposition: 'no-route',
        place: { node: probe.from },
        reason: `${probe.from} has no interface in the subnet of ${formatIpv4(probe.target)}`,
      };
    } else walker.runFrom(() => walker.xmit(st, out, frame, root.id, probe.timeNs));
  }
  return finish(probe, walker, captures, dataFrom);
}

/** The probe's first packet, sent by its node's stack (routing, neighbour resolution, …). */
function sendFirst(walker: Walker, st: NodeState, probe: AnyProbeSpec, pkt: Ipv4Packet): Hop {
  const root = rootHop(probe.from, probe.timeNs, {
    dst: MAC_ZERO,
    src: MAC_ZERO,
    vlans: [],
    etherType: ETHERTYPE_IPV4,
    payload: pkt,
  });
  walker.hops.push(root);
  walker.runFrom(() => ipOutput(walker, st, pkt, root, probe.timeNs));
  return root;
}

function rootHop(node: string, timeNs: bigint, frame: EthernetFrame): Hop {
  return { id: 0, place: { node }, direction: 'out', timeNs, frame, steps: [] };
}

function firstAddress(node: Node): Ipv4 | undefined {
  for (const i of node.interfaces.values()) if (i.kind !== 'loopback' && i.addrs[0]) return i.addrs[0].prefix.addr;
  return undefined;
}

function arpInterface(node: Node, probe: ArpProbeSpec): Iface | undefined {
  for (const i of node.interfaces.values())
    for (const a of i.addrs) if (i.kind !== 'loopback' && prefixContains(a.prefix, probe.target)) return i;
  return undefined;
}

function finish(probe: AnyProbeSpec, walker: Walker, captures: Capture[], dataFrom?: number): Trace {
  const hops = walker.hops;
  let endHop: Hop | undefined = walker.reached;
  if (!endHop) {
    // A conversation that failed after its handshake failed in its data exchange: its ends decide.
    const candidates = dataFrom !== undefined ? hops.slice(dataFrom) : hops;
    // A packet too big whose ICMP never made it back is the story (a PMTU black hole), not where the ICMP died.
    const tooBig = candidates.find((h) => h.end?.cause === 'frag-needed');
    if (probe.kind === 'arp') endHop = pickArpEnd(candidates, arpOwners(walker.ctx.dp.scenario, probe.target));
    else {
      const best = tooBig?.end ?? pickEnd(candidates);
      endHop = best ? candidates.find((h) => h.end === best) : undefined;
    }
  }
  const end: End = endHop?.end ?? {
    disposition: 'blackholed',
    place: { node: probe.from },
    reason: 'the probe went nowhere',
  };
  const path: number[] = [];
  for (let h: Hop | undefined = endHop; h; h = h.parent !== undefined ? hops[h.parent] : undefined) path.unshift(h.id);
  const stage = endHop && isReply(probe, endHop.frame) ? 'reply' : 'request';
  captures.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
  const where = end.place.iface ? `${end.place.node}:${end.place.iface}` : end.place.node;
  const summary =
    end.disposition === 'replied'
      ? `replied: ${end.reason}`
      : `${end.disposition} at ${where} (${stage}): ${end.reason}`;
  const trace: Trace = { probe, hops, disposition: end.disposition, stage, end, path, captures, summary };
  checkTrace(trace);
  return trace;
}

function isReply(probe: AnyProbeSpec, frame: EthernetFrame): boolean {
  const p = frame.payload;
  if (probe.kind === 'arp') return p.kind === 'arp' && p.op === ARP_REPLY;
  if (p.kind !== 'ipv4') return false;
  if (probe.kind === 'udp')
    return p.payload.kind === 'udp' && p.payload.dstPort === probe.sport && p.payload.srcPort !== probe.sport;
  // Toward the probe's source port: the reply, whatever NAT did to its source.
  return p.payload.kind === 'tcp' && p.payload.dstPort === probe.sport && p.payload.srcPort !== probe.sport;
}

/** True when the trace shows success. */
export function traceOk(t: Trace): boolean {
  return t.disposition === 'replied';
}
