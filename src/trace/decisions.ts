/**
 * The one door for engine decisions: every question a hop asks an engine — ebtables, iptables through
 * br_netfilter, conntrack, IPVS, the routing table, a sysctl — is a `Question`, answered by `ask`, which records it (with the
 * hop and the place its step takes) when the walk is recorded for the re-trace shortcut (`retrace.ts`). A new
 * engine is a new member of `Question` and of `Answers`; `answer` and the re-trace's classification of decisions
 * switch over every member, so it cannot be asked without being answered and recorded.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { assertNever } from '../source/assert-never.ts';
import type { Origin } from '../source/origin.ts';
import type { Node, Route } from '../topology/model.ts';
import type { FlowKey } from '../topology/routing.ts';
import type { EthernetFrame, Ipv4Packet } from '../wire/types.ts';
import type { Conntrack, CtResult } from './conntrack.ts';
import type {
  BridgedCtx,
  BridgeFirewall,
  BridgeHook,
  HostHook,
  HostHookCtx,
  IpvsDecision,
  IpvsEngine,
  IpvsReplyDecision,
} from './engines.ts';
import {
  type MangleHookCtx,
  mangleChain,
  manglePrerouting,
  type NatHookCtx,
  natChain,
  natPostrouting,
} from './firewall.ts';
import { addrTypeOf, lookupRoute, sysctlFlag, sysctlMax } from './node-config.ts';
import { type NodeHook, type NodeHookCtx, type NodeTable, nodeTableStep } from './node-tables.ts';
import type { Hop, NetfilterStep } from './types.ts';

export type Question =
  /** An ebtables hook (`ebt_do_table`) on a bridged or locally sent frame. */
  | {
      readonly kind: 'ebtables';
      readonly table: 'nat' | 'filter';
      readonly hook: BridgeHook;
      readonly frame: EthernetFrame;
      readonly ctx: { readonly inIface?: string; readonly outIface?: string };
    }
  /** iptables filter FORWARD on a bridged IPv4 frame (`br_nf_forward_ip`), physdev ports known. */
  | {
      readonly kind: 'br-netfilter';
      readonly frame: EthernetFrame;
      readonly ctx: BridgedCtx;
    }
  /** iptables mangle PREROUTING of the node itself (`ip_rcv` → NF_INET_PRE_ROUTING): the mark it sets. */
  | {
      readonly kind: 'mangle';
      readonly frame: EthernetFrame;
      readonly inIface: string;
    }
  /**
   * iptables nat POSTROUTING of the node itself on a packet IPVS NAT-forwards (`ip_vs_nat_xmit` with
   * `net.ipv4.vs.conntrack=1`): SNAT/MASQUERADE of the source; `masqueradeSource` is what MASQUERADE would take.
   */
  | {
      readonly kind: 'nat';
      readonly frame: EthernetFrame;
      readonly outIface: string;
      readonly masqueradeSource: Ipv4 | undefined;
    }
  /**
   * A hypervisor's iptables nat chain on a connection's first packet: DNAT/REDIRECT in PREROUTING (routed, or bridged
   * through br_netfilter with the bridge ports in `ctx`) and OUTPUT, SNAT/MASQUERADE in POSTROUTING. `local` is what
   * REDIRECT (the in interface's address) or MASQUERADE (the out interface's) would take.
   */
  | {
      readonly kind: 'host-nat';
      readonly hook: 'PREROUTING' | 'OUTPUT' | 'POSTROUTING';
      readonly frame: EthernetFrame;
      readonly ctx: Omit<NatHookCtx, 'addrType'>;
      readonly local: Ipv4 | undefined;
    }
  /**
   * A hypervisor's iptables mangle chain (PREROUTING, INPUT, FORWARD, OUTPUT, POSTROUTING) on a routed, bridged
   * (br_netfilter, bridge ports in `ctx`) or local packet carrying `mark`: the mark it leaves with, or its drop.
   */
  | {
      readonly kind: 'host-mangle';
      readonly hook: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';
      readonly frame: EthernetFrame;
      readonly ctx: MangleHookCtx;
      readonly mark: number;
    }
  /** iptables filter INPUT, FORWARD or OUTPUT of a host's own stack (local and routed IPv4). */
  | {
      readonly kind: 'ip-filter';
      readonly hook: HostHook;
      readonly frame: EthernetFrame;
      readonly ctx: HostHookCtx;
    }
  /**
   * The node's own iptables filter or raw table (a guest's `iptables-save`) at a hook of its own stack: raw
   * PREROUTING/OUTPUT before conntrack, filter INPUT/FORWARD/OUTPUT with the packet's ctstate (`node-filter.ts`).
   */
  | {
      readonly kind: 'node-table';
      readonly table: NodeTable;
      readonly hook: NodeHook;
      readonly frame: EthernetFrame;
      readonly ctx: NodeHookCtx;
    }
  /** IPVS in LOCAL_IN (`ip_vs_in`): a packet to a local address, maybe to a virtual service. */
  | {
      readonly kind: 'ipvs-in';
      readonly frame: EthernetFrame;
      readonly nowNs: bigint;
      readonly directorIp: Ipv4 | undefined;
      /** The packet's netfilter mark (set by mangle PREROUTING): selects an fwmark virtual service. */
      readonly fwmark: number;
    }
  /** IPVS in FORWARD (`ip_vs_out`): a forwarded packet, maybe a NAT reply of a real server. */
  | { readonly kind: 'ipvs-out'; readonly frame: EthernetFrame; readonly nowNs: bigint }
  /** iptables raw PREROUTING on a bridged IPv4 frame (br_netfilter, before conntrack): NOTRACK or DROP. */
  | {
      readonly kind: 'raw';
      readonly frame: EthernetFrame;
      readonly ctx: { readonly bridge: string; readonly inPort: string };
    }
  /** br_netfilter's conntrack (`nf_conntrack_in`) on a bridged IPv4 packet: its ctstate, once per packet. */
  | { readonly kind: 'conntrack'; readonly packet: Ipv4Packet }
  /** The routing table (`fib_lookup`): policy rules see the flow `key` (source address, input interface). */
  | { readonly kind: 'route'; readonly dst: Ipv4; readonly key?: FlowKey }
  /** A per-interface IPv4 sysctl as the kernel combines it (`IN_DEV_MAXCONF` / `IN_DEV_CONF_GET`). */
  | { readonly kind: 'conf'; readonly key: string; readonly iface: string }
  /** A boolean sysctl of the node (e.g. `net.ipv4.ip_forward`). */
  | { readonly kind: 'sysctl'; readonly key: string };

export type QuestionKind = Question['kind'];

/** What each kind of question is answered with. */
export interface Answers {
  readonly ebtables: NetfilterStep | undefined;
  readonly 'br-netfilter': NetfilterStep | undefined;
  readonly 'ip-filter': NetfilterStep | undefined;
  readonly mangle: NetfilterStep | undefined;
  readonly nat: NetfilterStep | undefined;
  readonly 'node-table': NetfilterStep | undefined;
  readonly 'host-nat': NetfilterStep | undefined;
  readonly 'host-mangle': NetfilterStep | undefined;
  readonly raw: NetfilterStep | undefined;
  readonly 'ipvs-in': IpvsDecision;
  readonly 'ipvs-out': IpvsReplyDecision;
  readonly conntrack: CtResult | undefined;
  readonly route: Route | undefined;
  readonly conf: { readonly value: number; readonly origin: Origin };
  readonly sysctl: { readonly on: boolean; readonly origin: Origin };
}

/** The engines of one host that answer: its kernel configuration, its ebtables/iptables, its IPVS. */
export interface HostEngines {
  readonly node: Node;
  readonly firewall?: BridgeFirewall | undefined;
  readonly ipvs?: IpvsEngine | undefined;
  readonly conntrack?: Conntrack | undefined;
}

/** A question asked on a hop, where its step went (or would have gone), and its answer. */
export type Decision = {
  readonly [K in QuestionKind]: {
    readonly host: string;
    readonly hop: Hop;
    /** Index in `hop.steps` the answer's step took, or would have taken. */
    readonly pos: number;
    readonly question: Extract<Question, { kind: K }>;
    readonly answer: Answers[K];
  };
}[QuestionKind];

/** Where a recorded walk keeps its decisions. */
export interface DecisionLog {
  readonly decisions: Decision[];
}

const NOT_IPVS = { kind: 'not-ipvs' } as const;

/** Asks a host's engine a question on a hop, and records the decision when the walk is recorded. */
export function ask<Q extends Question>(
  log: DecisionLog | undefined,
  host: HostEngines,
  hop: Hop,
  q: Q,
): Answers[Q['kind']] {
  const a = answer(host, q);
  if (log !== undefined)
    log.decisions.push({ host: host.node.name, hop, pos: hop.steps.length, question: q, answer: a } as Decision);
  return a;
}

/** What a host's engines answer to a question (nothing recorded: the re-trace asks again here). */
export function answer<Q extends Question>(host: HostEngines, q: Q): Answers[Q['kind']] {
  return answerAny(host, q) as Answers[Q['kind']];
}

function answerAny(host: HostEngines, q: Question): Answers[QuestionKind] {
  switch (q.kind) {
    case 'ebtables':
      return host.firewall?.evaluate(q.table, q.hook, q.frame, q.ctx);
    case 'br-netfilter':
      return host.firewall?.evaluateBridged(q.frame, q.ctx);
    case 'raw':
      return host.firewall?.evaluateRaw?.(q.frame, q.ctx);
    case 'ip-filter':
      return host.firewall?.evaluateHost?.(q.hook, q.frame, q.ctx);
    case 'mangle':
      return host.node.mangle ? manglePrerouting(host.node.mangle, q.frame, q.inIface) : undefined;
    case 'nat':
      return host.node.nat ? natPostrouting(host.node.nat, q.frame, q.outIface, q.masqueradeSource) : undefined;
    case 'node-table':
      return nodeTableStep(host.node, q.table, q.hook, q.frame, q.ctx);
    case 'host-mangle':
      return host.node.mangle ? mangleChain(host.node.mangle, q.hook, q.frame, q.ctx, q.mark) : undefined;
    case 'host-nat':
      return host.node.nat
        ? natChain(host.node.nat, q.hook, q.frame, { ...q.ctx, addrType: addrTypeOf(host.node) }, q.local)
        : undefined;
    case 'ipvs-in':
      return host.ipvs ? host.ipvs.input(q.frame, q.nowNs, q.directorIp, q.fwmark) : NOT_IPVS;
    case 'ipvs-out':
      return host.ipvs ? host.ipvs.output(q.frame, q.nowNs) : NOT_IPVS;
    case 'conntrack':
      return host.conntrack?.trackOnce(q.packet);
    case 'route':
      return lookupRoute(host.node, q.dst, q.key);
    case 'conf':
      return sysctlMax(host.node, q.key, q.iface);
    case 'sysctl':
      return sysctlFlag(host.node, q.key);
    default:
      return assertNever(q, 'question');
  }
}
