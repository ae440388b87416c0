/**
 * IPv4 output: the route of a packet the node sends or forwards, IPVS transmit to a real server, and neighbour
 * resolution (the cache, or an ARP exchange walked through the model with arp_announce choosing its source).
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { MAC_BROADCAST, MAC_ZERO, type Mac } from '../addr/mac.ts';
import { ipv4Mask, prefixContains } from '../addr/prefix.ts';
import type { Origin } from '../source/origin.ts';
import type { Iface } from '../topology/model.ts';
import { ipv4PacketLength } from '../wire/ipv4.ts';
import { ARP_REQUEST, ETHERTYPE_ARP, ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet } from '../wire/types.ts';
import { fragNeeded, pathMtu } from './conversation.ts';
import type { NodeState } from './dataplane.ts';
import type { HostHook, HostHookCtx } from './engines.ts';
import { hostMangle, hostMangleOn, hostNatOn, hostNatPost, hostNatPre } from './host-nat.ts';
import { checkWalk } from './invariants.ts';
import { localAddress } from './node-config.ts';
import { nodeLocalOut } from './node-filter.ts';
import { hasNodeTables, type NodeCt } from './node-tables.ts';
import { ruleQuote } from './render-step.ts';
import { arpOwners, type Hop, type NeighbourStep, pickArpEnd } from './types.ts';
import { DELAY_NS, type Walking } from './walk.ts';

/**
 * The host's own iptables filter at INPUT, FORWARD (routed) or OUTPUT, from the rule set it has (a Proxmox node's
 * pve-firewall rules, or its `iptables-save`): false, and the hop ended, when it drops. The conntrack state is the
 * host's conntrack's (nf_conntrack_in at PRE_ROUTING or LOCAL_OUT, once per packet: a packet br_netfilter already
 * tracked on its way through a bridge keeps that state), as for bridged traffic: a host that routes a connection's
 * SYN but never sees its SYN-ACK makes the client's next packet INVALID.
 */
export function hostFilter(
  w: Walking,
  st: NodeState,
  hop: Hop,
  hook: HostHook,
  pkt: Ipv4Packet,
  ctx: HostHookCtx,
): boolean {
  if (!st.firewall?.evaluateHost) return true;
  const frame: EthernetFrame = { dst: MAC_ZERO, src: MAC_ZERO, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
  const ct = w.ask(st, hop, { kind: 'conntrack', packet: pkt });
  if (ct) {
    ctx = { ...ctx, ctState: ct.ctState, ctDir: ct.ctDir };
    if (ct.ctState === 'INVALID')
      hop.steps.push({ kind: 'note', text: `conntrack on ${st.node.name}: ctstate INVALID — ${ct.explanation}` });
  }
  const step = w.ask(st, hop, { kind: 'ip-filter', hook, frame, ctx });
  if (!step) return true;
  hop.steps.push(step);
  if (step.verdict !== 'DROP') return true;
  w.end(
    hop,
    'dropped-by-filter',
    `${step.nft ? 'nft' : 'iptables -t filter'} ${hook}: ${ruleQuote(step)}`,
    step.origin,
  );
  return false;
}

/** `ip_local_out` of a packet the node's stack makes or forwards: route, resolve the next hop, send. */
export function ipOutput(
  w: Walking,
  st: NodeState,
  sent: Ipv4Packet,
  parent: Hop,
  timeNs: bigint,
  iif?: string,
  /** The mark a forwarded packet carries (set by the host's mangle table). */
  forwardedMark = 0,
): void {
  const node = st.node;
  let pkt = sent;
  let mark = forwardedMark;
  // A hypervisor's mangle OUTPUT on what it sends itself (its mark then routes it, as ip_route_me_harder re-routes).
  if (iif === undefined && hostMangleOn(st)) {
    const m = hostMangle(w, st, parent, pkt, 'OUTPUT', {}, 0);
    if (m === undefined) return;
    mark = m;
  }
  // A hypervisor's nat OUTPUT on what it sends itself (DNAT before the route, as the re-route after the hook does).
  if (iif === undefined && hostNatOn(st)) {
    const n = hostNatPre(w, st, parent, pkt, 'OUTPUT', {}, LOOPBACK);
    if (n === undefined) return;
    pkt = n;
  }
  // Policy rules see the packet's source and where it came in (`lo` for the node's own packets).
  const key = { src: pkt.src, iif: iif ?? 'lo', ...(mark ? { mark } : {}) };
  const r = w.ask(st, parent, { kind: 'route', dst: pkt.dst, key });
  if (!r) {
    w.end(parent, 'no-route', `${node.name} has no route to ${formatIpv4(pkt.dst)}`, undefined, {
      node: node.name,
    });
    return;
  }
  if (r.type !== 'unicast' && r.type !== 'local') {
    w.end(parent, 'no-route', `${node.name} routes ${formatIpv4(pkt.dst)} to ${r.type}`, r.origin, {
      node: node.name,
    });
    return;
  }
  const outName = r.dev ?? (r.via !== undefined ? w.ask(st, parent, { kind: 'route', dst: r.via })?.dev : undefined);
  const out = outName ? node.interfaces.get(outName) : undefined;
  if (!out) {
    w.end(parent, 'no-route', `the route to ${formatIpv4(pkt.dst)} on ${node.name} names no usable device`, r.origin, {
      node: node.name,
    });
    return;
  }
  const nextHop = r.via ?? pkt.dst;
  parent.steps.push({ kind: 'route', dst: pkt.dst, nextHop, outIface: out.name, origin: r.origin });
  // A packet the node makes itself passes its filter OUTPUT (a forwarded one passed FORWARD before this).
  const markCtx = mark ? { mark } : {};
  if (iif === undefined && !hostFilter(w, st, parent, 'OUTPUT', pkt, { outIface: out.name, ...markCtx })) return;
  if (iif === undefined && hasNodeTables(node) && !nodeLocalOut(w, st, parent, pkt, out.name)) return;
  const mtu = pathMtu(r, out);
  if (!fitsMtu(w, st, parent, pkt, mtu, out, iif !== undefined ? 'forward' : 'local', r.origin, timeNs)) return;
  // NF_INET_POST_ROUTING: a hypervisor's SNAT/MASQUERADE (MASQUERADE takes the out interface's address for the next
  // hop, `inet_select_addr`), and the de-DNAT of replies.
  if (hostMangleOn(st) && hostMangle(w, st, parent, pkt, 'POSTROUTING', { outIface: out.name }, mark) === undefined)
    return;
  if (hostNatOn(st)) {
    const n = hostNatPost(w, st, parent, pkt, { outIface: out.name }, sourceFor(out, nextHop));
    if (n === undefined) return;
    pkt = n;
  }
  const mac = resolve(w, st, out, nextHop, pkt.src, parent, timeNs);
  if (!mac) return;
  const frame: EthernetFrame = { dst: mac, src: out.mac, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
  w.xmit(st, out, frame, parent.id, timeNs + DELAY_NS.wire);
}

/**
 * IPVS transmit of a scheduled packet (`ip_vs_dr_xmit`, `ip_vs_nat_xmit`, `ip_vs_tunnel_xmit`): route to the real
 * server, resolve the next hop, send the frame the engine builds.
 */
export function ipvsTransmit(
  w: Walking,
  st: NodeState,
  hop: Hop,
  method: 'Route' | 'Masq' | 'Tunnel',
  target: Ipv4,
  build: (src: Mac, dst: Mac) => EthernetFrame,
  /** The ctstate at NF_INET_LOCAL_OUT, for a node with its own raw/filter tables (`node-filter.ts`). */
  ct?: NodeCt,
): void {
  const node = st.node;
  const r = w.ask(st, hop, { kind: 'route', dst: target });
  const usable = r !== undefined && (r.type === 'unicast' || r.type === 'local');
  const outName =
    !r || !usable
      ? undefined
      : (r.dev ?? (r.via !== undefined ? w.ask(st, hop, { kind: 'route', dst: r.via })?.dev : undefined));
  const out = outName ? node.interfaces.get(outName) : undefined;
  if (!r || !out) {
    w.end(
      hop,
      'no-route',
      `${node.name} has no ${r && !usable ? `usable route (${r.type})` : 'route'} to the real server ${formatIpv4(target)}`,
      r?.origin,
    );
    return;
  }
  // Every method follows the route to the real server. DR asks for it with FLOWI_FLAG_KNOWN_NH: on a route
  // without gateway the next hop is the real server itself (not the packet's destination, the VIP); on a route
  // with a gateway (`rt_uses_gateway`) it is that gateway, which receives a frame whose IP destination is the VIP.
  const nextHop = r.via ?? target;
  hop.steps.push({ kind: 'route', dst: target, nextHop, outIface: out.name, origin: r.origin });
  if (method === 'Route' && r.via !== undefined)
    hop.steps.push({
      kind: 'note',
      text: `DR: ${formatIpv4(target)} is reached via ${formatIpv4(r.via)}, so the frame goes to that router's MAC; the router sees only the VIP as destination and routes it by that, not to the real server`,
      origin: r.origin,
    });
  const t = hop.timeNs + DELAY_NS.ipvs;
  // __mtu_check_toobig_v4: the packet as it will leave (TUN: 20 bytes more) against the route's MTU (a source NAT
  // later in POSTROUTING does not change its length).
  const probe = build(out.mac, out.mac).payload;
  const client = hop.frame.payload;
  if (probe.kind === 'ipv4' && client.kind === 'ipv4') {
    const mtu = pathMtu(r, out);
    const len = ipv4PacketLength(probe);
    if (len > mtu && client.dontFragment) {
      const announced = mtu - (ipv4PacketLength(probe) - ipv4PacketLength(client));
      tooBig(w, st, hop, client, len, mtu, out, announced, client.dst, r.origin, t, `IPVS ${method}`);
      return;
    }
  }
  // ip_vs_send_or_cont: NF_INET_LOCAL_OUT (raw and filter OUTPUT, not FORWARD), then POSTROUTING (nat).
  if (ct && probe.kind === 'ipv4') {
    if (!nodeLocalOut(w, st, hop, probe, out.name, ct)) return;
    // With vs.conntrack=1 the tracked entry learns the NATed reply tuple (the real server's answer is its reply).
    if (method === 'Masq' && ct.ctState !== 'UNTRACKED' && client.kind === 'ipv4')
      st.conntrack.alterReply(client, probe);
  }
  const xmitBuild = method === 'Masq' ? sourceNat(w, st, hop, out, nextHop, build) : build;
  if (!xmitBuild) return;
  const mac = resolve(w, st, out, nextHop, undefined, hop, t);
  if (!mac) return;
  w.xmit(st, out, xmitBuild(out.mac, mac), hop.id, t);
}

const LOOPBACK = 0x7f000001 as Ipv4;

/** The address an interface sends from toward a next hop (`inet_select_addr`): one on its subnet, else its first. */
export function sourceFor(out: Iface, nextHop: Ipv4): Ipv4 | undefined {
  return (out.addrs.find((a) => prefixContains(a.prefix, nextHop)) ?? out.addrs[0])?.prefix.addr;
}

/**
 * The director's own nat POSTROUTING on a packet IPVS NAT-forwards (`ip_vs_nat_send_or_cont`). Only with
 * `net.ipv4.vs.conntrack=1` does IPVS keep the packet's conntrack entry; otherwise it marks it untracked
 * (`ip_vs_notrack`) and the nat table never sees it (ipvs-sysctl.rst `conntrack`). A SNAT/MASQUERADE rule then
 * rewrites the source, and conntrack keeps the binding that de-NATs the real server's reply in PRE_ROUTING.
 * Undefined (the hop ended) when a nat rule drops the packet.
 */
function sourceNat(
  w: Walking,
  st: NodeState,
  hop: Hop,
  out: Iface,
  nextHop: Ipv4,
  build: (src: Mac, dst: Mac) => EthernetFrame,
): ((src: Mac, dst: Mac) => EthernetFrame) | undefined {
  if (!st.node.nat) return build;
  const frame = build(out.mac, out.mac);
  const pkt = frame.payload;
  if (pkt.kind !== 'ipv4') return build;
  const masq = sourceFor(out, nextHop);
  const ct = w.ask(st, hop, { kind: 'sysctl', key: 'net.ipv4.vs.conntrack' });
  const step = w.ask(st, hop, { kind: 'nat', frame, outIface: out.name, masqueradeSource: masq });
  if (!ct.on) {
    if (step?.snat)
      hop.steps.push({
        kind: 'note',
        text: `${st.node.name} nat POSTROUTING rule "${step.ruleText}" would rewrite the source to ${formatIpv4(step.snat.to)}, but with net.ipv4.vs.conntrack=0 IPVS marks the packets it NAT-forwards untracked, so the nat table never sees them: the real server receives the client's address`,
        origin: ct.origin,
      });
    return build;
  }
  if (!step) return build;
  hop.steps.push(step);
  if (step.verdict === 'DROP') {
    w.end(hop, 'dropped-by-filter', `${st.node.name} nat POSTROUTING drops the packet: ${step.ruleText}`, step.origin);
    return undefined;
  }
  const snat = step.snat;
  if (!snat) return build;
  const { checksum: _stale, ...rest } = pkt;
  const translated: Ipv4Packet = { ...rest, src: snat.to };
  st.conntrack.bindSnat(translated, pkt.src, step.origin);
  return (src, dst) => ({ ...build(src, dst), payload: translated });
}

/**
 * The MTU check of IPv4 output (`ip_forward`'s `ip_exceeds_mtu`, `ip_fragment`): a packet larger than the MTU with
 * DF set is dropped and answered with ICMP "fragmentation needed"; without DF it would be fragmented (not walked
 * fragment by fragment). False (and the hop ended) when the packet is dropped.
 */
function fitsMtu(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  mtu: number,
  out: Iface,
  how: 'forward' | 'local',
  origin: Origin,
  timeNs: bigint,
): boolean {
  if (mtu >= 1500 && pkt.payload.kind === 'tcp' && pkt.payload.payload.length <= 1448) return true;
  const len = ipv4PacketLength(pkt);
  if (len <= mtu) return true;
  if (!pkt.dontFragment) {
    hop.steps.push({ kind: 'note', text: `${len} bytes > MTU ${mtu} of ${out.name}: fragmented (DF not set)`, origin });
    return true;
  }
  if (how === 'local') {
    w.end(
      hop,
      'dropped-by-kernel',
      `${st.node.name} cannot send ${len} bytes with DF through ${out.name} (MTU ${mtu})`,
      origin,
      undefined,
      'frag-needed',
    );
    return false;
  }
  const src = sourceToward(w, st, hop, pkt.src) ?? pkt.dst;
  tooBig(w, st, hop, pkt, len, mtu, out, mtu, src, origin, timeNs, 'forwarding');
  return false;
}

/** Drops a packet too big for `out` and sends ICMP "fragmentation needed" (announcing `announced`) to its source. */
function tooBig(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  len: number,
  mtu: number,
  out: Iface,
  announced: number,
  icmpSrc: Ipv4,
  origin: Origin,
  timeNs: bigint,
  what: string,
): void {
  w.end(
    hop,
    'dropped-by-kernel',
    `${st.node.name}: ${what} of ${len} bytes with DF set exceeds the MTU ${mtu} of ${out.name}; dropped, ICMP fragmentation needed (mtu ${announced}) sent to ${formatIpv4(pkt.src)}`,
    origin,
    undefined,
    'frag-needed',
  );
  hop.steps.push({
    kind: 'reply',
    what: `ICMP fragmentation needed (mtu ${announced}) from ${formatIpv4(icmpSrc)} to ${formatIpv4(pkt.src)}`,
  });
  ipOutput(w, st, fragNeeded(icmpSrc, pkt, announced, st.node.ttl), hop, timeNs + DELAY_NS.wire);
}

/** The address a node sends from toward `dst`: the route's `src`, else the first address of its device. */
function sourceToward(w: Walking, st: NodeState, hop: Hop, dst: Ipv4): Ipv4 | undefined {
  const node = st.node;
  const r = w.ask(st, hop, { kind: 'route', dst });
  if (r?.src !== undefined) return r.src;
  const dev = r?.dev !== undefined ? node.interfaces.get(r.dev) : undefined;
  return dev?.addrs[0]?.prefix.addr;
}

/** ARP source address per arp_announce (max of all and the interface). */
function arpSource(
  w: Walking,
  st: NodeState,
  hop: Hop,
  iface: Iface,
  target: Ipv4,
  hint: Ipv4 | undefined,
): Ipv4 | undefined {
  const node = st.node;
  const ann = w.ask(st, hop, { kind: 'conf', key: 'arp_announce', iface: iface.name }).value;
  const inSubnet = iface.addrs.find((a) => ((a.prefix.addr ^ target) & ipv4Mask(a.prefix.len)) === 0);
  if (ann === 0 && hint !== undefined && localAddress(node, hint)) return hint;
  // arp_announce=1 (inet_addr_onlink): the packet's source if it is local and some subnet of the outgoing device
  // holds both it and the target — the VIP on lo qualifies when it lies in eth0's subnet.
  if (
    ann === 1 &&
    hint !== undefined &&
    localAddress(node, hint) &&
    iface.addrs.some((a) => prefixContains(a.prefix, target) && prefixContains(a.prefix, hint))
  )
    return hint;
  return (inSubnet ?? iface.addrs[0])?.prefix.addr;
}

/** Neighbour resolution: the cache, or a real ARP exchange walked through the model. */
export function resolve(
  w: Walking,
  st: NodeState,
  out: Iface,
  ip: Ipv4,
  srcHint: Ipv4 | undefined,
  hop: Hop,
  timeNs: bigint,
): Mac | undefined {
  if (out.pointToPoint && out.peer) {
    const peerNode = w.ctx.dp.nodes.get(out.peer.node);
    const mac = peerNode?.node.interfaces.get(out.peer.iface)?.mac ?? MAC_BROADCAST;
    hop.steps.push({ kind: 'neighbour', ip, iface: out.name, mac, source: 'peer' } satisfies NeighbourStep);
    return mac;
  }
  const cached = st.neighbours.get(ip);
  if (cached) {
    hop.steps.push({
      kind: 'neighbour',
      ip,
      iface: out.name,
      mac: cached.mac,
      source: 'cache',
      origin: cached.origin,
    });
    return cached.mac;
  }
  const spa = arpSource(w, st, hop, out, ip, srcHint);
  if (spa === undefined) {
    w.end(hop, 'arp-unresolved', `${st.node.name}:${out.name} has no IPv4 address to send an ARP request from`);
    return undefined;
  }
  const req: EthernetFrame = {
    dst: MAC_BROADCAST,
    src: out.mac,
    vlans: [],
    etherType: ETHERTYPE_ARP,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: ETHERTYPE_IPV4,
      op: ARP_REQUEST,
      sha: out.mac,
      spa,
      tha: MAC_ZERO,
      tpa: ip,
    },
  };
  const asker = st.node.name;
  const sub = w.spawn({ onArpReply: (n, a) => n.name === asker && a.spa === ip });
  sub.runFrom(() => sub.xmit(st, out, req, undefined, timeNs));
  checkWalk(sub.hops, () => `${st.node.name}'s ARP walk for ${formatIpv4(ip)}`);
  const got = st.neighbours.get(ip);
  hop.steps.push({
    kind: 'neighbour',
    ip,
    iface: out.name,
    ...(got ? { mac: got.mac } : {}),
    source: 'arp',
    arp: { hops: sub.hops },
  });
  if (!got) {
    const death = pickArpEnd(sub.hops, arpOwners(w.ctx.dp.scenario, ip))?.end;
    w.end(
      hop,
      'arp-unresolved',
      `${st.node.name} got no ARP reply for ${formatIpv4(ip)}${death ? `: ${death.reason}` : ''}`,
      death?.origin,
    );
    return undefined;
  }
  return got.mac;
}
