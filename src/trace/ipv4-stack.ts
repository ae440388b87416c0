/**
 * The IPv4 stack of a node: ARP (arp_ignore, learning), source validation (martians, accept_local, rp_filter),
 * local delivery (IPIP decapsulation, IPVS in LOCAL_IN, sockets that answer) and forwarding (ip_forward, TTL, IPVS
 * rewriting NAT replies in FORWARD). What it sends goes out through `ipv4-output.ts`.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { isMulticastMac } from '../addr/mac.ts';
import { prefixContains } from '../addr/prefix.ts';
import { renderIptablesRule } from '../netfilter/iptables-render.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { Iface, Node } from '../topology/model.ts';
import {
  ARP_REPLY,
  ARP_REQUEST,
  type ArpPacket,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetFrame,
  IPPROTO_IPIP,
  type Ipv4Packet,
  TCP_ACK,
  TCP_RST,
  TCP_SYN,
  type UdpDatagram,
} from '../wire/types.ts';
import { advertisedMss, dataSegment, fragNeededMtu, pathMss } from './conversation.ts';
import type { NodeState } from './dataplane.ts';
import { markRulesFor } from './fwmark-targets.ts';
import { hostMangle, hostMangleOn, hostNatOn, hostNatPre } from './host-nat.ts';
import { hostFilter, ipOutput, ipvsTransmit } from './ipv4-output.ts';
import { localAddress } from './node-config.ts';
import { ipvsXmitCt, nodeFilter, nodePrerouting } from './node-filter.ts';
import { hasNodeTables, type NodeCt } from './node-tables.ts';
import type { EndCause, Hop, Step } from './types.ts';
import { DELAY_NS, type Walking } from './walk.ts';

/**
 * A frame the device itself receives, handed to the protocol handlers (`__netif_receive_skb` → `arp_rcv`,
 * `ip_rcv`): only frames addressed to it (or multicast, or on a point-to-point link) are taken.
 */
export function stackReceive(w: Walking, st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
  const forUs = frame.dst === iface.mac || isMulticastMac(frame.dst) || iface.pointToPoint === true;
  if (!forUs) {
    hop.steps.push({ kind: 'l2', accepted: false, reason: `destination ${frame.dst} is not ${iface.mac}` });
    w.end(hop, 'discarded', `${st.node.name}:${iface.name} is not addressed (${frame.dst}) and not promiscuous`);
    return;
  }
  const p = frame.payload;
  if (frame.etherType === ETHERTYPE_ARP && p.kind === 'arp') {
    arpReceive(w, st, iface, hop, p);
    return;
  }
  if (frame.etherType === ETHERTYPE_IPV4 && p.kind === 'ipv4') {
    ipReceive(w, st, iface, hop, p, frame);
    return;
  }
  w.end(
    hop,
    'discarded',
    `ethertype 0x${frame.etherType.toString(16).padStart(4, '0')} is not modelled by the stack of ${st.node.name}`,
  );
}

/** `arp_process`: replies are learned; requests for a local address are answered per arp_ignore. */
function arpReceive(w: Walking, st: NodeState, iface: Iface, hop: Hop, arp: ArpPacket): void {
  const node = st.node;
  if (arp.op === ARP_REPLY) {
    if (arp.tha !== iface.mac && !isMulticastMac(hop.frame.dst) && hop.frame.dst !== iface.mac) {
      w.end(hop, 'discarded', 'ARP reply not addressed to this interface');
      return;
    }
    st.neighbours.set(arp.spa, {
      mac: arp.sha,
      iface: iface.name,
      origin: implicit(`learned from an ARP reply at ${hop.timeNs}`),
    });
    hop.steps.push({ kind: 'arp', action: 'learn', reason: `${formatIpv4(arp.spa)} is-at ${arp.sha}` });
    if (w.goal.onArpReply?.(node, arp)) {
      w.reached = hop;
      w.end(hop, 'replied', `${node.name} learned ${formatIpv4(arp.spa)} is-at ${arp.sha}`);
      return;
    }
    w.end(hop, 'delivered', `ARP reply consumed by ${node.name}`);
    return;
  }
  if (arp.op !== ARP_REQUEST) {
    w.end(hop, 'discarded', `ARP opcode ${arp.op} is not modelled`);
    return;
  }
  const local = localAddress(node, arp.tpa);
  if (!local) {
    hop.steps.push({
      kind: 'arp',
      action: 'not-for-us',
      reason: `${formatIpv4(arp.tpa)} is not an address of ${node.name}`,
    });
    w.end(hop, 'discarded', `${node.name} does not own ${formatIpv4(arp.tpa)}`);
    return;
  }
  // arp_process answers only if ip_route_input(target, sender) succeeds: fib_validate_source rejects a sender
  // address that is local to this node (a martian) unless accept_local, and applies rp_filter to the sender.
  const bad = sourceCheck(w, st, hop, iface, arp.spa, 'sender');
  if (bad && !bad.ok) {
    hop.steps.push(bad.step);
    w.end(hop, 'dropped-by-kernel', `${node.name} does not answer: ${bad.why}`, bad.origin, undefined, bad.cause);
    return;
  }
  const ig = w.ask(st, hop, { kind: 'conf', key: 'arp_ignore', iface: iface.name });
  let reply = true;
  let why = `arp_ignore=${ig.value}: reply for any local address`;
  if (ig.value === 1 || ig.value === 2) {
    const onIface = iface.addrs.find((a) => a.prefix.addr === arp.tpa);
    if (!onIface) {
      reply = false;
      why = `arp_ignore=${ig.value}: ${formatIpv4(arp.tpa)} is configured on ${local.iface.name}, not on ${iface.name}`;
    } else if (ig.value === 2 && !prefixContains(onIface.prefix, arp.spa)) {
      reply = false;
      why = `arp_ignore=2: sender ${formatIpv4(arp.spa)} is not in ${formatIpv4(arp.tpa)}/${onIface.prefix.len}`;
    } else why = `arp_ignore=${ig.value}: ${formatIpv4(arp.tpa)} is configured on ${iface.name}`;
  } else if (ig.value >= 8) {
    reply = false;
    why = `arp_ignore=${ig.value}: never reply`;
  } else if (ig.value === 3 && local.iface.kind === 'loopback') {
    reply = false;
    why = 'arp_ignore=3: do not reply for addresses of host scope';
  }
  hop.steps.push({ kind: 'arp', action: reply ? 'reply' : 'ignore', reason: why, origin: ig.origin });
  if (!reply) {
    w.end(hop, 'discarded', `${node.name} ignores the ARP request (${why})`, ig.origin);
    return;
  }
  st.neighbours.set(arp.spa, { mac: arp.sha, iface: iface.name, origin: implicit('learned from an ARP request') });
  const out: EthernetFrame = {
    dst: hop.frame.src,
    src: iface.mac,
    vlans: [],
    etherType: ETHERTYPE_ARP,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: ETHERTYPE_IPV4,
      op: ARP_REPLY,
      sha: iface.mac,
      spa: arp.tpa,
      tha: arp.sha,
      tpa: arp.spa,
    },
  };
  w.xmit(st, iface, out, hop.id, hop.timeNs + DELAY_NS.wire * 5n);
}

/**
 * `fib_validate_source`, which the input route of every received IPv4 packet (to deliver or to forward) and of every
 * ARP request answered (`ip_route_input_noref(skb, tip, sip, 0, dev)` in arp_process) passes: an address of this
 * node as source is a martian unless accept_local (all or the interface) is 1, and with rp_filter the route back to
 * the source must exist (2) or use the receiving interface (1). `passed` is the rp_filter step of a source that
 * passes a filter that is on.
 */
function sourceCheck(
  w: Walking,
  st: NodeState,
  hop: Hop,
  iface: Iface,
  src: Ipv4,
  what: 'sender' | 'source',
): { ok: false; step: Step; why: string; origin: Origin; cause: EndCause } | { ok: true; passed?: Step } | undefined {
  if (src === 0) return undefined; // an ARP probe (RFC 5227) has no sender address to validate
  const node = st.node;
  const al = w.ask(st, hop, { kind: 'conf', key: 'accept_local', iface: iface.name });
  const own = al.value === 1 ? undefined : localAddress(node, src);
  if (own) {
    const why = `the ${what} ${formatIpv4(src)} is an address of ${node.name} (${own.iface.name}): a martian source (accept_local=${al.value})`;
    return {
      ok: false,
      step:
        what === 'sender'
          ? { kind: 'arp', action: 'ignore', reason: why, origin: al.origin }
          : { kind: 'note', text: why, origin: al.origin },
      why,
      origin: al.origin,
      cause: 'martian-source',
    };
  }
  const rp = w.ask(st, hop, { kind: 'conf', key: 'rp_filter', iface: iface.name });
  if (rp.value !== 1 && rp.value !== 2) return undefined;
  const back = w.ask(st, hop, { kind: 'route', dst: src });
  if (rp.value === 2 ? back !== undefined : back?.dev === iface.name) {
    const reason = `the route back to ${formatIpv4(src)} leaves through ${back?.dev ?? '?'}`;
    return { ok: true, passed: { kind: 'rp-filter', mode: rp.value, passed: true, reason, origin: rp.origin } };
  }
  const reason = `the route back to the ${what} ${formatIpv4(src)} ${back ? `leaves through ${back.dev}` : 'does not exist'}, not ${iface.name}`;
  return {
    ok: false,
    step: { kind: 'rp-filter', mode: rp.value, passed: false, reason, origin: rp.origin },
    why: `rp_filter=${rp.value} on ${iface.name}: ${reason}`,
    origin: rp.origin,
    cause: 'rp-filter',
  };
}

/** `sourceCheck` on a received IPv4 packet: false (and the hop ended) when the kernel drops it. */
function ipSourceValid(w: Walking, st: NodeState, iface: Iface, hop: Hop, src: Ipv4): boolean {
  const node = st.node;
  const c = sourceCheck(w, st, hop, iface, src, 'source');
  if (c === undefined) return true;
  if (c.ok) {
    if (c.passed) hop.steps.push(c.passed);
    return true;
  }
  hop.steps.push(c.step);
  w.end(
    hop,
    'dropped-by-kernel',
    `${node.name}:${iface.name} drops the packet from ${formatIpv4(src)}: ${c.why}`,
    c.origin,
    undefined,
    c.cause,
  );
  return false;
}

/**
 * `ip_rcv_finish`: the input route decides local delivery (IPIP, IPVS LOCAL_IN, sockets) or forwarding. `frame` is
 * the frame as `iface` received it — after a VLAN device took its tag off (the hop's frame is the one on the wire,
 * still tagged): IPVS rewrites and retransmits that one, so a DR director on `eth0.100` does not send its tag twice.
 */
function ipReceive(
  w: Walking,
  st: NodeState,
  iface: Iface,
  hop: Hop,
  received: Ipv4Packet,
  frame: EthernetFrame = hop.frame,
): void {
  let pkt = received;
  const node = st.node;
  // NF_INET_PRE_ROUTING: the node's own raw table and conntrack (a guest with its own iptables-save) come first.
  let ct: NodeCt | undefined;
  if (hasNodeTables(node)) {
    ct = nodePrerouting(w, st, hop, pkt, iface.name);
    if (!ct) return;
  }
  // NF_INET_PRE_ROUTING before the input route: the node's own mangle table may mark (fwmark services) or drop.
  let fwmark = 0;
  if (st.conntrack.wasPrerouted(pkt)) fwmark = st.conntrack.markOf(pkt);
  else if (hostMangleOn(st)) {
    // A hypervisor's mangle PREROUTING: its marks follow the packet (filter -m mark, ip rule fwmark).
    const m = hostMangle(w, st, hop, pkt, 'PREROUTING', { inIface: iface.name }, 0);
    if (m === undefined) return;
    fwmark = m;
  } else if (node.mangle) {
    const m = w.ask(st, hop, { kind: 'mangle', frame, inIface: iface.name });
    if (m) {
      hop.steps.push(m);
      if (m.verdict === 'DROP') {
        w.end(hop, 'dropped-by-filter', `${node.name} mangle PREROUTING drops the packet: ${m.ruleText}`, m.origin);
        return;
      }
      fwmark = m.mark?.after ?? 0;
    }
  }
  // A hypervisor's nat PREROUTING (DNAT/REDIRECT, the de-SNAT of replies), unless br_netfilter already ran the packet
  // through PRE_ROUTING on the bridge it came up from (`ip_sabotage_in`).
  if (hostNatOn(st) && !st.conntrack.wasPrerouted(pkt)) {
    const n = hostNatPre(w, st, hop, pkt, 'PREROUTING', { inIface: iface.name }, iface.addrs[0]?.prefix.addr);
    if (n === undefined) return;
    if (n !== pkt) {
      pkt = n;
      frame = { ...frame, payload: pkt };
    }
  }
  // nf_nat in PRE_ROUTING: a reply to a connection this node source-NATed (full NAT of IPVS traffic) gets its
  // original source back as destination, before the input route.
  const unSnat = node.nat ? st.conntrack.unSnat(pkt) : undefined;
  if (unSnat) {
    hop.steps.push({
      kind: 'note',
      text: `${node.name} conntrack de-NATs the reply of its source NAT: destination ${formatIpv4(pkt.dst)} → ${formatIpv4(unSnat.addr)}`,
      origin: unSnat.origin,
    });
    const { checksum: _stale, ...rest } = pkt;
    pkt = { ...rest, dst: unSnat.addr };
    frame = { ...frame, payload: pkt };
  }
  const local = localAddress(node, pkt.dst) ?? joinedGroup(node, iface, pkt.dst);
  if (local) {
    // The input route: martian source and reverse-path filter on the incoming interface.
    if (!ipSourceValid(w, st, iface, hop, pkt.src)) return;
    // NF_INET_LOCAL_IN: the host's filter INPUT (priority 0) before IPVS (ip_vs_in, after it).
    if (hostMangleOn(st)) {
      const m = hostMangle(w, st, hop, pkt, 'INPUT', { inIface: iface.name }, fwmark);
      if (m === undefined) return;
      fwmark = m;
    }
    if (!hostFilter(w, st, hop, 'INPUT', pkt, { inIface: iface.name, ...(fwmark ? { mark: fwmark } : {}) })) return;
    if (ct && !nodeFilter(w, st, hop, 'INPUT', pkt, { inIface: iface.name, ct })) return;
    // IPIP to a local address: the ipip module hands the inner packet to tunl0, which receives it anew.
    if (pkt.protocol === IPPROTO_IPIP && pkt.payload.kind === 'ipv4') {
      decapsulate(w, st, hop, pkt.payload);
      return;
    }
    if (st.ipvs) {
      const d = w.ask(st, hop, {
        kind: 'ipvs-in',
        frame,
        nowNs: hop.timeNs,
        directorIp: iface.addrs[0]?.prefix.addr,
        fwmark,
      });
      if (d.kind === 'no-destination') {
        hop.steps.push(d.step);
        w.end(hop, 'no-real-server', d.step.explanation, d.step.serviceOrigin);
        return;
      }
      if (d.kind === 'forward') {
        hop.steps.push(d.step);
        // ip_vs_send_or_cont: the packet leaves through NF_INET_LOCAL_OUT, untracked unless vs.conntrack=1.
        ipvsTransmit(w, st, hop, d.method, d.nextHop, d.build, ct && ipvsXmitCt(w, st, hop, pkt, ct));
        return;
      }
    }
    // An unmarked packet that a marking rule names by address and port: say which rule did not mark it (IPVS
    // fwmark services see only marked packets).
    if (st.ipvs && node.mangle && fwmark === 0 && pkt.payload.kind === 'tcp') {
      for (const m of markRulesFor(node.mangle, pkt.dst, pkt.payload.dstPort))
        hop.steps.push({
          kind: 'note',
          text: `${node.name} received it without a mark: mangle ${m.chain} rule "${renderIptablesRule(m.chain, m.rule, 'ipv4')}" would set mark ${m.mark} (an IPVS fwmark service) but does not match it here (in on ${iface.name})`,
          origin: m.rule.origin,
        });
    }
    socketDeliver(w, st, iface, hop, pkt, local.origin);
    return;
  }
  const fwd = w.ask(st, hop, { kind: 'sysctl', key: 'net.ipv4.ip_forward' });
  if (!fwd.on) {
    w.end(
      hop,
      'discarded',
      `${formatIpv4(pkt.dst)} is not local to ${node.name} and net.ipv4.ip_forward=0`,
      fwd.origin,
      undefined,
      'ip-forward-off',
    );
    return;
  }
  // The forwarding route validates the source as the local one does (`__mkroute_input`), after ip_forward.
  if (!ipSourceValid(w, st, iface, hop, pkt.src)) return;
  if (pkt.ttl <= 1) {
    w.end(hop, 'ttl-exceeded', `ttl ${pkt.ttl} expires at ${node.name}`);
    return;
  }
  hop.steps.push({ kind: 'forward', ttlBefore: pkt.ttl, ttlAfter: pkt.ttl - 1, origin: fwd.origin });
  // NF_INET_FORWARD: the host's filter FORWARD (priority 0) before IPVS's (ip_vs_out), `-o` the route's device.
  if (st.firewall?.evaluateHost || node.filter || hostMangleOn(st)) {
    const key = { src: pkt.src, iif: iface.name, ...(fwmark ? { mark: fwmark } : {}) };
    const r = w.ask(st, hop, { kind: 'route', dst: pkt.dst, key });
    const out = r?.dev ?? (r?.via !== undefined ? w.ask(st, hop, { kind: 'route', dst: r.via })?.dev : undefined);
    const ctx = { inIface: iface.name, ...(out ? { outIface: out } : {}) };
    // NF_INET_FORWARD: a hypervisor's mangle FORWARD (priority -150) first.
    if (hostMangleOn(st)) {
      const m = hostMangle(w, st, hop, pkt, 'FORWARD', ctx, fwmark);
      if (m === undefined) return;
      fwmark = m;
    }
    if (!hostFilter(w, st, hop, 'FORWARD', pkt, { ...ctx, ...(fwmark ? { mark: fwmark } : {}) })) return;
    if (node.filter && !nodeFilter(w, st, hop, 'FORWARD', pkt, { ...ctx, ...(ct ? { ct } : {}) })) return;
  }
  // FORWARD: IPVS rewrites NAT replies of real servers to come from the virtual service.
  if (st.ipvs) {
    const r = w.ask(st, hop, { kind: 'ipvs-out', frame, nowNs: hop.timeNs });
    if (r.kind === 'snat' && r.frame.payload.kind === 'ipv4') {
      hop.steps.push(r.step);
      pkt = r.frame.payload;
    }
  }
  const { checksum: _stale, ...rest } = pkt;
  const fwdPkt: Ipv4Packet = { ...rest, ttl: pkt.ttl - 1 };
  ipOutput(w, st, fwdPkt, hop, hop.timeNs + DELAY_NS.wire * 10n, iface.name, fwmark);
}

/** A multicast group a program of the node joined on `iface`: delivered locally as an address of it would be. */
function joinedGroup(node: Node, iface: Iface, dst: Ipv4): { readonly origin: Origin } | undefined {
  return node.joinedGroups?.find((j) => j.group === dst && j.iface === iface.name);
}

/** IPIP decapsulation: the inner packet arrives on the fallback tunnel device (tunl0) and is received again. */
function decapsulate(w: Walking, st: NodeState, hop: Hop, inner: Ipv4Packet): void {
  const tun = [...st.node.interfaces.values()].find((i) => i.kind === 'tunnel' && i.name.startsWith('tunl'));
  if (!tun) {
    w.end(
      hop,
      'discarded',
      `${st.node.name} has no tunl0: the ipip module is not loaded, so IPIP packets are dropped`,
      undefined,
      undefined,
      'no-ipip',
    );
    return;
  }
  if (!tun.up) {
    w.end(
      hop,
      'discarded',
      `${st.node.name}:${tun.name} is down: IPIP packets are dropped`,
      tun.origin,
      undefined,
      'tunnel-down',
    );
    return;
  }
  hop.steps.push({
    kind: 'note',
    text: `IPIP decapsulated: the inner packet ${formatIpv4(inner.src)} → ${formatIpv4(inner.dst)} arrives on ${tun.name}`,
    origin: tun.origin,
  });
  ipReceive(w, st, tun, hop, inner);
}

/**
 * A datagram for a local address: the probe's answer, or a request a UDP socket answers with one datagram from the
 * address it was sent to (a server bound to that address or replying with IP_PKTINFO, as DNS servers do — one bound
 * to 0.0.0.0 that lets routing pick the source would answer from its own address instead). No socket: the kernel
 * answers ICMP port unreachable.
 */
function udpDeliver(
  w: Walking,
  st: NodeState,
  iface: Iface,
  hop: Hop,
  pkt: Ipv4Packet,
  l4: UdpDatagram,
  addrOrigin: Origin,
): void {
  const node = st.node;
  if (w.goal.onUdp?.(node, pkt, l4)) {
    w.reached = hop;
    hop.steps.push({ kind: 'deliver', socket: `${formatIpv4(pkt.dst)}:${l4.dstPort}/udp`, origin: addrOrigin });
    w.end(hop, 'replied', `${node.name} received the reply from ${formatIpv4(pkt.src)}:${l4.srcPort}/udp`);
    return;
  }
  if (w.goal.onStrayUdp?.(node, pkt, l4)) {
    // The client's socket is connected to the address it queried: a datagram from another source is not its answer.
    hop.steps.push({
      kind: 'note',
      text: `a datagram from ${formatIpv4(pkt.src)}:${l4.srcPort}, not from the address ${node.name} sent to: its socket does not take it (ICMP port unreachable)`,
    });
    w.end(
      hop,
      'discarded',
      `${node.name} got an answer from ${formatIpv4(pkt.src)}:${l4.srcPort}, which it never sent to`,
      undefined,
      undefined,
      'unexpected-reply',
    );
    return;
  }
  const listener = node.listeners.find((l) => l.protocol === 'udp' && l.port === l4.dstPort);
  if (!listener) {
    hop.steps.push({
      kind: 'note',
      text: `no socket listens on udp/${l4.dstPort}: the kernel answers with ICMP port unreachable`,
    });
    w.end(hop, 'refused', `nothing listens on ${formatIpv4(pkt.dst)}:${l4.dstPort}/udp at ${node.name}`);
    return;
  }
  hop.steps.push({
    kind: 'deliver',
    socket: `udp/${l4.dstPort} on ${node.name} (${formatIpv4(pkt.dst)} is local, ${iface.name})`,
    origin: listener.origin,
  });
  const answer: Ipv4Packet = {
    kind: 'ipv4',
    tos: 0,
    id: 0,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: node.ttl,
    protocol: 17,
    src: pkt.dst,
    dst: pkt.src,
    payload: { kind: 'udp', srcPort: l4.dstPort, dstPort: l4.srcPort, payload: new Uint8Array(UDP_ANSWER_BYTES) },
  };
  hop.steps.push({
    kind: 'reply',
    what: `the answer: ${UDP_ANSWER_BYTES} bytes from ${formatIpv4(pkt.dst)}:${l4.dstPort}/udp to ${formatIpv4(pkt.src)}:${l4.srcPort}`,
  });
  ipOutput(w, st, answer, hop, hop.timeNs + DELAY_NS.socket);
}

/** A UDP answer's payload: a DNS response of a few records. */
const UDP_ANSWER_BYTES = 120;

function socketDeliver(w: Walking, st: NodeState, iface: Iface, hop: Hop, pkt: Ipv4Packet, addrOrigin: Origin): void {
  const node = st.node;
  const l4 = pkt.payload;
  if (l4.kind === 'icmp') {
    const mtu = fragNeededMtu(pkt);
    if (w.goal.onIcmp?.(node, pkt, hop)) {
      hop.steps.push({
        kind: 'deliver',
        socket: `ICMP ${mtu !== undefined ? `fragmentation needed (mtu ${mtu})` : `type ${l4.type} code ${l4.code}`} for the connection of ${node.name}`,
        origin: addrOrigin,
      });
      w.end(
        hop,
        'delivered',
        mtu !== undefined
          ? `${node.name} learns the path MTU ${mtu} towards ${formatIpv4(pkt.src)} and sends smaller segments`
          : `${node.name} took the ICMP message`,
      );
      return;
    }
  }
  if (l4.kind === 'udp') {
    udpDeliver(w, st, iface, hop, pkt, l4, addrOrigin);
    return;
  }
  if (l4.kind !== 'tcp') {
    w.end(hop, 'delivered', `${node.name} accepted the packet (protocol ${pkt.protocol})`, addrOrigin);
    return;
  }
  if (w.goal.onTcp?.(node, pkt, l4)) {
    w.reached = hop;
    hop.steps.push({ kind: 'deliver', socket: `${formatIpv4(pkt.dst)}:${l4.dstPort}`, origin: addrOrigin });
    w.end(hop, 'replied', `${node.name} received the reply from ${formatIpv4(pkt.src)}:${l4.srcPort}`);
    return;
  }
  const listener = node.listeners.find((l) => l.protocol === 'tcp' && l.port === l4.dstPort);
  if (!listener && (l4.flags & (TCP_SYN | TCP_ACK)) === (TCP_SYN | TCP_ACK)) {
    hop.steps.push({ kind: 'note', text: `a SYN-ACK for no connection of ${node.name}: the kernel answers RST` });
    w.end(
      hop,
      'discarded',
      `${node.name} got a SYN-ACK from ${formatIpv4(pkt.src)}:${l4.srcPort}, which it never connected to`,
      undefined,
      undefined,
      'unexpected-reply',
    );
    return;
  }
  if (!listener) {
    hop.steps.push({ kind: 'note', text: `no socket listens on tcp/${l4.dstPort}: the kernel answers with RST` });
    w.end(hop, 'refused', `nothing listens on ${formatIpv4(pkt.dst)}:${l4.dstPort} at ${node.name}`);
    return;
  }
  hop.steps.push({
    kind: 'deliver',
    socket: `tcp/${l4.dstPort} on ${node.name} (${formatIpv4(pkt.dst)} is local, ${iface.name})`,
    origin: listener.origin,
  });
  if ((l4.flags & (TCP_SYN | TCP_RST)) === 0 && l4.payload.length > 0) {
    // A request: the server answers with a full-size segment of its response (sized by its own path MTU).
    const tsOpt = l4.options.find((o) => o.kind === 'timestamp');
    // Its own path MTU and the client's advertised MSS (1460: probes advertise it) bound the response's segments.
    const mss = Math.min(pathMss(node, pkt.src, pkt.dst), 1460);
    const response = dataSegment({
      src: pkt.dst,
      dst: pkt.src,
      sport: l4.dstPort,
      dport: l4.srcPort,
      seq: l4.ack,
      ack: l4.seq + l4.payload.length,
      bytes: mss - 12,
      ttl: node.ttl,
      id: 1,
      tsval: 1001,
      tsecr: tsOpt && tsOpt.kind === 'timestamp' ? tsOpt.val : 0,
    });
    hop.steps.push({
      kind: 'reply',
      what: `the response: ${mss - 12} bytes from ${formatIpv4(pkt.dst)}:${l4.dstPort} (IP length ${mss + 40})`,
    });
    ipOutput(w, st, response, hop, hop.timeNs + DELAY_NS.socket);
    return;
  }
  if ((l4.flags & (TCP_SYN | TCP_ACK | TCP_RST)) !== TCP_SYN) {
    w.end(hop, 'delivered', `${node.name} accepted the segment`);
    return;
  }
  // A listening socket answers a SYN with a SYN-ACK from the address the SYN was sent to.
  const tsOpt = l4.options.find((o) => o.kind === 'timestamp');
  const isn = (Math.imul(pkt.src ^ (l4.srcPort << 16) ^ l4.seq, 2654435761) >>> 0) as number;
  const synAck: Ipv4Packet = {
    kind: 'ipv4',
    tos: 0,
    id: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: node.ttl,
    protocol: 6,
    src: pkt.dst,
    dst: pkt.src,
    payload: {
      kind: 'tcp',
      srcPort: l4.dstPort,
      dstPort: l4.srcPort,
      seq: isn,
      ack: (l4.seq + 1) >>> 0,
      flags: TCP_SYN | TCP_ACK,
      window: 28960,
      urgent: 0,
      options: [
        { kind: 'mss', value: advertisedMss(node, pkt.src, pkt.dst) },
        { kind: 'sack-permitted' },
        { kind: 'timestamp', val: 1000, ecr: tsOpt && tsOpt.kind === 'timestamp' ? tsOpt.val : 0 },
        { kind: 'nop' },
        { kind: 'wscale', shift: 7 },
      ],
      payload: new Uint8Array(0),
    },
  };
  // The SYN arrived; what happens to the SYN-ACK decides the probe, so this hop has no end of its own.
  hop.steps.push({ kind: 'reply', what: `SYN-ACK from ${formatIpv4(pkt.dst)}:${l4.dstPort}` });
  ipOutput(w, st, synAck, hop, hop.timeNs + DELAY_NS.socket);
}
