/**
 * A hypervisor's iptables nat table on the traffic it routes or bridges (br_netfilter): DNAT/REDIRECT in PREROUTING
 * (and OUTPUT for what it sends itself), SNAT/MASQUERADE in POSTROUTING. As nf_nat does, the table is consulted for a
 * connection's first packet only (`nf_nat_inet_fn` on an uninitialized manip); conntrack binds the result
 * (`nf_nat_setup_info`) and applies it to the rest of the conversation, and reverses it on the replies: their
 * destination is de-SNATed in PREROUTING, their source de-DNATed in POSTROUTING. Its mangle table too: DROP, and the
 * MARK it sets (`skb->mark`), which later `-m mark` rules and `ip rule … fwmark` routing see.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { MAC_ZERO } from '../addr/mac.ts';
import { ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet, TCP_ACK, TCP_RST, TCP_SYN } from '../wire/types.ts';
import type { NatBinding, NatManip } from './conntrack.ts';
import type { NodeState } from './dataplane.ts';
import type { MangleHookCtx } from './firewall.ts';
import { ruleQuote } from './render-step.ts';
import type { Hop } from './types.ts';
import type { Walking } from './walk.ts';

/** Whether the node's own nat table applies to what it routes and bridges (a hypervisor with its iptables-save). */
export function hostNatOn(st: NodeState): boolean {
  return st.node.kind === 'host' && st.node.nat !== undefined;
}

/**
 * Whether a packet with no conntrack entry starts one the nat table sees (ctstate NEW): a TCP SYN-ACK or RST that
 * belongs to no connection is INVALID (`tcp_new`), and nf_nat does not consult the table for it.
 */
function startsConnection(pkt: Ipv4Packet): boolean {
  const l4 = pkt.payload;
  // An ICMP error is RELATED to the connection it quotes: nf_nat translates it by that binding, never by a rule.
  if (l4.kind === 'icmp') return l4.type !== 3 && l4.type !== 11 && l4.type !== 12;
  if (l4.kind !== 'tcp') return true;
  if ((l4.flags & TCP_RST) !== 0) return false;
  return !((l4.flags & TCP_SYN) !== 0 && (l4.flags & TCP_ACK) !== 0);
}

function ports(pkt: Ipv4Packet): { sport?: number; dport?: number } {
  const l4 = pkt.payload;
  return l4.kind === 'tcp' || l4.kind === 'udp' ? { sport: l4.srcPort, dport: l4.dstPort } : {};
}

/** The packet with its destination or source (and port) rewritten; checksums are left to be recomputed. */
function rewrite(pkt: Ipv4Packet, side: 'dst' | 'src', addr: Ipv4, port: number | undefined): Ipv4Packet {
  const { checksum: _stale, ...rest } = pkt;
  const l4 = pkt.payload;
  if (port === undefined || (l4.kind !== 'tcp' && l4.kind !== 'udp')) return { ...rest, [side]: addr };
  const { checksum: _c, ...l4rest } = l4;
  const l4out = side === 'dst' ? { ...l4rest, dstPort: port } : { ...l4rest, srcPort: port };
  return { ...rest, [side]: addr, payload: l4out } as Ipv4Packet;
}

const withDst = (pkt: Ipv4Packet, addr: Ipv4, port: number | undefined) => rewrite(pkt, 'dst', addr, port);
const withSrc = (pkt: Ipv4Packet, addr: Ipv4, port: number | undefined) => rewrite(pkt, 'src', addr, port);

const endpoint = (a: Ipv4, port: number | undefined) => `${formatIpv4(a)}${port !== undefined ? `:${port}` : ''}`;

function frameOf(pkt: Ipv4Packet): EthernetFrame {
  return { dst: MAC_ZERO, src: MAC_ZERO, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
}

/**
 * nat PREROUTING (a received packet, routed or bridged) or OUTPUT (one the host sends) on a hypervisor: the packet as
 * it goes on — DNATed, de-SNATed as the reply of a source-NATed connection, or unchanged — or undefined when a rule
 * drops it (the hop is ended).
 */
export function hostNatPre(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  hook: 'PREROUTING' | 'OUTPUT',
  ctx: { readonly inIface?: string; readonly physdevIn?: string },
  local: Ipv4 | undefined,
): Ipv4Packet | undefined {
  if (!hostNatOn(st)) return pkt;
  const ct = st.conntrack;
  const found = ct.natLookup(pkt, 'pre');
  const node = st.node.name;
  if (found) {
    const b = found.binding;
    if (found.dir === 'original') {
      if (!b.dnat) return pkt;
      hop.steps.push({
        kind: 'note',
        text: `${node} conntrack applies the connection's DNAT binding: destination ${endpoint(pkt.dst, ports(pkt).dport)} → ${endpoint(b.dnat.addr, b.dnat.port ?? ports(pkt).dport)}`,
        origin: b.dnat.origin,
      });
      return withDst(pkt, b.dnat.addr, b.dnat.port);
    }
    if (!b.snat) return pkt;
    hop.steps.push({
      kind: 'note',
      text: `${node} conntrack de-NATs the reply of its source NAT: destination ${endpoint(pkt.dst, ports(pkt).dport)} → ${endpoint(b.src, b.sport)}`,
      origin: b.snat.origin,
    });
    return withDst(pkt, b.src, b.snat.port !== undefined ? b.sport : undefined);
  }
  if (!startsConnection(pkt)) return pkt;
  const step = w.ask(st, hop, { kind: 'host-nat', hook, frame: frameOf(pkt), ctx, local });
  if (step) {
    hop.steps.push(step);
    if (step.verdict === 'DROP') {
      w.end(
        hop,
        'dropped-by-filter',
        `${step.nft ? 'nft' : 'iptables -t nat'} ${hook}: ${ruleQuote(step)}${step.ruleText.includes('REDIRECT') || step.ruleText.includes('redirect') ? ' (no address on the interface it came in on)' : ''}`,
        step.origin,
      );
      return undefined;
    }
  }
  const d = step?.dnat;
  const dnat: NatManip | undefined = d
    ? { addr: d.to, ...(d.toPort !== undefined ? { port: d.toPort } : {}), origin: step.origin }
    : undefined;
  ct.natBegin(pkt, dnat);
  return dnat ? withDst(pkt, dnat.addr, dnat.port) : pkt;
}

/**
 * nat POSTROUTING on a hypervisor, for a packet it forwards, bridges (br_netfilter, `-o` the bridge) or sends: the
 * packet as it leaves — SNATed/MASQUERADEd, de-DNATed as the reply of a destination-NATed connection, or unchanged —
 * or undefined when a rule drops it (the hop is ended). `masquerade` is the address MASQUERADE would take.
 */
export function hostNatPost(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  ctx: {
    readonly inIface?: string;
    readonly outIface: string;
    readonly physdevIn?: string;
    readonly physdevOut?: string;
  },
  masquerade: Ipv4 | undefined,
): Ipv4Packet | undefined {
  if (!hostNatOn(st)) return pkt;
  const ct = st.conntrack;
  const found = ct.natLookup(pkt, 'post');
  const node = st.node.name;
  let b: NatBinding;
  if (found) {
    b = found.binding;
    if (found.dir === 'reply') {
      if (!b.dnat) return pkt;
      hop.steps.push({
        kind: 'note',
        text: `${node} conntrack de-NATs the reply of its destination NAT: source ${endpoint(pkt.src, ports(pkt).sport)} → ${endpoint(b.dst, b.dport)}`,
        origin: b.dnat.origin,
      });
      return withSrc(pkt, b.dst, b.dnat.port !== undefined ? b.dport : undefined);
    }
    if (b.postDone) {
      if (!b.snat) return pkt;
      hop.steps.push({
        kind: 'note',
        text: `${node} conntrack applies the connection's SNAT binding: source ${formatIpv4(pkt.src)} → ${formatIpv4(b.snat.addr)}`,
        origin: b.snat.origin,
      });
      return withSrc(pkt, b.snat.addr, b.snat.port);
    }
  } else {
    if (!startsConnection(pkt)) return pkt;
    b = ct.natBegin(pkt, undefined);
  }
  const { outIface, ...rest } = ctx;
  const step = w.ask(st, hop, {
    kind: 'host-nat',
    hook: 'POSTROUTING',
    frame: frameOf(pkt),
    ctx: { ...rest, outIface },
    local: masquerade,
  });
  if (step) {
    hop.steps.push(step);
    if (step.verdict === 'DROP') {
      w.end(
        hop,
        'dropped-by-filter',
        `${step.nft ? 'nft' : 'iptables -t nat'} POSTROUTING: ${ruleQuote(step)}${step.ruleText.includes('MASQUERADE') || step.ruleText.includes('masquerade') ? ` (${outIface} has no address to masquerade with)` : ''}`,
        step.origin,
      );
      return undefined;
    }
  }
  const s = step?.snat;
  ct.natComplete(
    b,
    s ? { addr: s.to, ...(s.toPort !== undefined ? { port: s.toPort } : {}), origin: step.origin } : undefined,
  );
  return s ? withSrc(pkt, s.to, s.toPort) : pkt;
}

/** Whether the node's own mangle table applies to what it routes and bridges (a hypervisor with its iptables-save). */
export function hostMangleOn(st: NodeState): boolean {
  return st.node.kind === 'host' && st.node.mangle !== undefined;
}

/**
 * A hypervisor's mangle chain at `hook` on a packet carrying `mark` (`skb->mark`): the mark it goes on with, or
 * undefined when a rule drops it (the hop is ended). The step is shown only when a rule set a mark or dropped.
 */
export function hostMangle(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  hook: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING',
  ctx: MangleHookCtx,
  mark: number,
): number | undefined {
  if (!hostMangleOn(st)) return mark;
  const step = w.ask(st, hop, { kind: 'host-mangle', hook, frame: frameOf(pkt), ctx, mark });
  if (!step) return mark;
  if (step.verdict === 'DROP') {
    hop.steps.push(step);
    w.end(
      hop,
      'dropped-by-filter',
      `${step.nft ? 'nft' : 'iptables -t mangle'} ${hook}: ${ruleQuote(step)}`,
      step.origin,
    );
    return undefined;
  }
  if (step.mark === undefined || step.mark.after === step.mark.before) return mark;
  hop.steps.push(step);
  return step.mark.after;
}
