/**
 * A guest's own iptables filter and raw tables (its `iptables-save`, or the filter chains of its `nft list ruleset`)
 * at the hooks of its own IPv4 stack, in the order of the kernel's hook priorities (netfilter_ipv4.h):
 *
 * - receive (`ip_rcv` → NF_INET_PRE_ROUTING): raw PREROUTING (-300), then conntrack (-200) gives the packet its
 *   ctstate (NOTRACK in raw: UNTRACKED), before mangle (-150);
 * - local delivery (NF_INET_LOCAL_IN): filter INPUT (0) before IPVS (`ip_vs_in`, NF_IP_PRI_NAT_SRC - 1 = 99), so
 *   a director's INPUT sees the client's packets to the VIP before IPVS takes them;
 * - forwarding (NF_INET_FORWARD): filter FORWARD (0) before IPVS's `ip_vs_out` (100), which NATs replies;
 * - the node's own packets (`__ip_local_out` → NF_INET_LOCAL_OUT): raw OUTPUT, conntrack, filter OUTPUT.
 *
 * IPVS transmits a scheduled packet (`ip_vs_send_or_cont`, `ip_vs_nat_send_or_cont`) through NF_INET_LOCAL_OUT too,
 * not FORWARD: the director's raw and filter OUTPUT see the packet as it leaves for the real server (DR: unchanged,
 * TUN: the outer IPIP packet, NAT: the new destination), with the `-o` of the route to the real server. Unless
 * `net.ipv4.vs.conntrack=1`, IPVS first marks it untracked (`ip_vs_notrack`): ctstate UNTRACKED, and the entry
 * conntrack made for it at PRE_ROUTING, never confirmed, is freed — so the client's next packet is picked up anew
 * (NEW, `nf_conntrack_tcp_loose`) and a NAT real server's reply belongs to no connection (INVALID).
 */
import { MAC_ZERO } from '../addr/mac.ts';
import { ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet } from '../wire/types.ts';
import type { NodeState } from './dataplane.ts';
import { type NodeCt, type NodeHook, type NodeHookCtx, type NodeTable, UNTRACKED } from './node-tables.ts';
import { ruleQuote } from './render-step.ts';
import type { Hop, NetfilterStep } from './types.ts';
import type { Walking } from './walk.ts';

function frameOf(pkt: Ipv4Packet): EthernetFrame {
  return { dst: MAC_ZERO, src: MAC_ZERO, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
}

/** Asks one table at one hook; false (the hop ended) when it drops. `step` receives the answer. */
function hookPasses(
  w: Walking,
  st: NodeState,
  hop: Hop,
  table: NodeTable,
  hook: NodeHook,
  pkt: Ipv4Packet,
  ctx: NodeHookCtx,
): { readonly pass: boolean; readonly step?: NetfilterStep } {
  if (!(table === 'keepalived' ? st.node.keepalivedDrops : st.node[table])) return { pass: true };
  const step = w.ask(st, hop, { kind: 'node-table', table, hook, frame: frameOf(pkt), ctx });
  if (!step) return { pass: true };
  hop.steps.push(step);
  if (step.verdict !== 'DROP') return { pass: true, step };
  w.end(
    hop,
    'dropped-by-filter',
    table === 'keepalived'
      ? `keepalived on ${st.node.name} (strict mode, no accept) ${hook}: ${ruleQuote(step)}`
      : `${st.node.name}'s own ${step.nft ? 'nft' : `iptables -t ${table}`} ${hook}: ${ruleQuote(step)}`,
    step.origin,
  );
  return { pass: false, step };
}

/** conntrack (`nf_conntrack_in`) on a packet of the node, with a note when it is INVALID. */
function track(w: Walking, st: NodeState, hop: Hop, pkt: Ipv4Packet): NodeCt {
  const ct = w.ask(st, hop, { kind: 'conntrack', packet: pkt });
  if (!ct) return { ctState: 'NEW', ctDir: 'ORIGINAL' };
  if (ct.ctState === 'INVALID')
    hop.steps.push({ kind: 'note', text: `conntrack on ${st.node.name}: ctstate INVALID — ${ct.explanation}` });
  return { ctState: ct.ctState, ctDir: ct.ctDir };
}

/**
 * NF_INET_PRE_ROUTING of a packet the node receives: raw PREROUTING, then conntrack. The packet's ctstate, or
 * `undefined` (the hop ended) when raw drops it. Nodes without tables of their own: `NEW` untouched, nothing asked.
 */
export function nodePrerouting(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  inIface: string,
): NodeCt | undefined {
  const raw = hookPasses(w, st, hop, 'raw', 'PREROUTING', pkt, { inIface });
  if (!raw.pass) return undefined;
  if (raw.step?.notrack) return UNTRACKED;
  return track(w, st, hop, pkt);
}

/** filter INPUT or FORWARD of the node: false (the hop ended) when it drops. */
export function nodeFilter(
  w: Walking,
  st: NodeState,
  hop: Hop,
  hook: 'INPUT' | 'FORWARD',
  pkt: Ipv4Packet,
  ctx: NodeHookCtx,
): boolean {
  // keepalived's strict-mode chains (priority -1) come before the filter table; only INPUT has one of these two.
  if (hook === 'INPUT' && !hookPasses(w, st, hop, 'keepalived', hook, pkt, ctx).pass) return false;
  return hookPasses(w, st, hop, 'filter', hook, pkt, ctx).pass;
}

/**
 * NF_INET_LOCAL_OUT of a packet the node sends (its own, or one IPVS transmits with the conntrack state `ct` IPVS
 * gave it): raw OUTPUT, conntrack for the node's own packets, filter OUTPUT. False (the hop ended) when it drops.
 */
export function nodeLocalOut(
  w: Walking,
  st: NodeState,
  hop: Hop,
  pkt: Ipv4Packet,
  outIface: string,
  ct?: NodeCt,
): boolean {
  const raw = hookPasses(w, st, hop, 'raw', 'OUTPUT', pkt, { outIface });
  if (!raw.pass) return false;
  const state = ct ?? (raw.step?.notrack ? UNTRACKED : track(w, st, hop, pkt));
  if (!hookPasses(w, st, hop, 'keepalived', 'OUTPUT', pkt, { outIface, ct: state }).pass) return false;
  return hookPasses(w, st, hop, 'filter', 'OUTPUT', pkt, { outIface, ct: state }).pass;
}

/**
 * The ctstate a packet IPVS transmits has at NF_INET_LOCAL_OUT: its own with `net.ipv4.vs.conntrack=1`, else
 * UNTRACKED (`ip_vs_notrack`), and the entry conntrack made for it at PRE_ROUTING goes away unconfirmed.
 */
export function ipvsXmitCt(w: Walking, st: NodeState, hop: Hop, pkt: Ipv4Packet, ct: NodeCt): NodeCt {
  const on = w.ask(st, hop, { kind: 'sysctl', key: 'net.ipv4.vs.conntrack' }).on;
  if (on) return ct;
  st.conntrack.forget(pkt);
  return UNTRACKED;
}
