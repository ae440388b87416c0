/** Adapts the ebtables evaluator to the walker: one NetfilterStep per hook that had something to say. */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { summarizeEbtables } from '../netfilter/ebtables-eval.ts';
import type { EbRule, EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import { type IpsetSet, ipsetContains } from '../netfilter/ipset.ts';
import { evaluateIptables } from '../netfilter/iptables-eval.ts';
import type { CtState, IptRule, IptTable } from '../netfilter/iptables-model.ts';
import { renderIptablesRule } from '../netfilter/iptables-render.ts';
import { type EthernetFrame, TCP_ACK, TCP_SYN } from '../wire/types.ts';
import type { BridgeFirewall, BridgeHook, HostHook, HostHookCtx } from './engines.ts';
import type { NetfilterStep } from './types.ts';

export interface BridgeTables {
  readonly nat?: EbTable;
  readonly filter?: EbTable;
  /** The iptables filter table bridged IPv4 passes through (br_netfilter on). */
  readonly ip4?: IptTable;
  /** The ipsets `ip4`'s `--match-set` matches read (e.g. pve-firewall's `PVEFW-…` sets). */
  readonly ipsets?: ReadonlyMap<string, IpsetSet>;
  /** The iptables raw table bridged IPv4 passes through before conntrack (br_netfilter on). */
  readonly raw?: IptTable;
  /** The host's own iptables filter table for its routed and local IPv4 (INPUT, FORWARD, OUTPUT). */
  readonly host4?: IptTable;
  /**
   * A bridge-family nftables table in the model's form (proxmox-firewall's guest table): PREROUTING is its base chain
   * on bridge prerouting (priority 0, after ebtables nat PREROUTING at -300), POSTROUTING its base chain on bridge
   * postrouting (priority 0, before ebtables nat POSTROUTING at 300); `iifname`/`oifname` are bridge ports.
   */
  readonly nftBridge?: IptTable;
  /** `nftBridge` as ARP frames meet it (sender/target protocol address as source/destination). */
  readonly nftBridgeArp?: IptTable;
}

/** The rule that names an evaluation's step (the deciding one, or a non-terminal rule such as NOTRACK or MARK). */
export interface NamingRule {
  readonly chain: string;
  readonly index: number;
  readonly rule: IptRule;
}

/**
 * The step of an iptables evaluation at `hook`, named by `naming` (else by the deciding chain's policy, quoted as
 * `policyText`; its nft chain is kept when `policyNft`). Callers add what only their table has (marks, NOTRACK, NAT).
 */
export function evaluationStep(
  table: NetfilterStep['table'],
  hook: string,
  r: ReturnType<typeof evaluateIptables>,
  naming: NamingRule | undefined,
  policy: { readonly text: string; readonly nft: boolean },
  verdict: 'ACCEPT' | 'DROP' = r.verdict === 'ACCEPT' ? 'ACCEPT' : 'DROP',
): NetfilterStep {
  const d = r.decidedBy;
  return {
    kind: 'netfilter',
    family: 'ipv4',
    table,
    hook,
    verdict,
    chain: naming?.chain ?? d.chain,
    ...(naming ? { ruleNumber: naming.index + 1 } : {}),
    // A rule read from `nft list ruleset` is quoted in nft's words, with its chain there.
    ruleText: naming ? (naming.rule.nft?.text ?? renderIptablesRule(naming.chain, naming.rule, 'ipv4')) : policy.text,
    ...(naming?.rule.nft
      ? { nft: { chain: naming.rule.nft.chain } }
      : !naming && policy.nft && d.kind === 'policy' && d.nft
        ? { nft: d.nft }
        : {}),
    origin: naming ? naming.rule.origin : d.kind === 'policy' ? d.origin : d.rule.origin,
    path: [hook, ...r.events.filter((e) => e.kind === 'jump' || e.kind === 'goto').map((e) => ('to' in e ? e.to : ''))],
    rulesVisited: r.visited.length,
  };
}

/** The step of an iptables evaluation at `hook` (undefined: nothing matched and the policy accepts). */
function iptStep(hook: string, r: ReturnType<typeof evaluateIptables>): NetfilterStep | undefined {
  if (!r.visited.some((v) => v.matched) && r.verdict === 'ACCEPT') return undefined;
  const d = r.decidedBy;
  return evaluationStep('filter', hook, r, d.kind === 'rule' ? d : undefined, {
    text: d.kind === 'rule' ? '' : d.nft ? `policy ${d.policy.toLowerCase()}` : `policy ${d.policy}`,
    nft: true,
  });
}

/** Conntrack as the first packets of a probe see it: a lone SYN opens, anything else belongs to it. */
function ctOf(frame: EthernetFrame): { ctState: CtState; ctDir: 'ORIGINAL' | 'REPLY' } {
  const p = frame.payload;
  if (p.kind === 'ipv4' && p.payload.kind === 'tcp') {
    const f = p.payload.flags;
    if ((f & TCP_SYN) !== 0 && (f & TCP_ACK) === 0) return { ctState: 'NEW', ctDir: 'ORIGINAL' };
    if ((f & TCP_SYN) !== 0) return { ctState: 'ESTABLISHED', ctDir: 'REPLY' };
  }
  return { ctState: 'NEW', ctDir: 'ORIGINAL' };
}

/**
 * Bridge-family conntrack (nf_conntrack_bridge, before the nft bridge chains) as a probe's packets meet it: a lone
 * SYN opens a flow, every later TCP packet of it (SYN-ACK, ACK, data, from either side) is ESTABLISHED; other
 * protocols are a flow's first packet.
 */
function bridgeCtOf(frame: EthernetFrame): { ctState: CtState; ctDir: 'ORIGINAL' | 'REPLY' } {
  const p = frame.payload;
  if (p.kind === 'ipv4' && p.payload.kind === 'tcp') {
    const f = p.payload.flags;
    if ((f & TCP_SYN) !== 0 && (f & TCP_ACK) === 0) return { ctState: 'NEW', ctDir: 'ORIGINAL' };
    return { ctState: 'ESTABLISHED', ctDir: (f & TCP_SYN) !== 0 ? 'REPLY' : 'ORIGINAL' };
  }
  return { ctState: 'NEW', ctDir: 'ORIGINAL' };
}

const RULE_TEXT = { nft: new WeakMap<EbRule, string>(), legacy: new WeakMap<EbRule, string>() };

/** A rule as `ebtables -L` prints it, rendered once per rule. */
function ruleText(rule: EbRule, style: EbStyle): string {
  let t = RULE_TEXT[style].get(rule);
  if (t === undefined) {
    t = renderEbtablesRule(rule, { style });
    RULE_TEXT[style].set(rule, t);
  }
  return t;
}

function liveHooks(t: EbTable | undefined): Set<string> {
  const out = new Set<string>();
  for (const c of t?.chains ?? []) if (c.builtin && (c.rules.length > 0 || c.policy !== 'ACCEPT')) out.add(c.name);
  return out;
}

export function makeBridgeFirewall(tables: BridgeTables, style: EbStyle): BridgeFirewall {
  // Hooks that hold no rule and accept by policy cannot change anything: skip them without evaluating.
  const live = { nat: liveHooks(tables.nat), filter: liveHooks(tables.filter) };
  const ip4 = tables.ip4;
  const sets = tables.ipsets;
  const inSet = sets
    ? (name: string, addr: Parameters<typeof ipsetContains>[1]) => {
        const set = sets.get(name);
        return set === undefined ? undefined : ipsetContains(set, addr);
      }
    : undefined;
  const ip4Live =
    ip4 !== undefined && ip4.chains.some((c) => c.name === 'FORWARD' && (c.rules.length > 0 || c.policy !== 'ACCEPT'));
  const raw = tables.raw;
  const host4 = tables.host4;
  const nftBridge = tables.nftBridge;
  const hostLive = new Set(
    (host4?.chains ?? [])
      .filter((c) => c.builtin && (c.rules.length > 0 || (c.policy !== undefined && c.policy !== 'ACCEPT')))
      .map((c) => c.name),
  );
  return {
    tracksBridged: ip4Live,
    ...(raw
      ? {
          evaluateRaw(frame: EthernetFrame, ctx: { readonly bridge: string; readonly inPort: string }) {
            if (frame.payload.kind !== 'ipv4') return undefined;
            const r = evaluateIptables(raw, 'PREROUTING', frame, {
              physdevIn: ctx.inPort,
              physdevIsBridged: true,
              inIface: ctx.bridge,
              ...(inSet ? { ipsetContains: inSet } : {}),
            });
            const marker = r.visited.find((v) => v.matched && v.rule.target?.kind === 'notrack');
            if (!marker && r.verdict === 'ACCEPT') return undefined;
            const d = r.decidedBy;
            // A DROP decides; otherwise the step names the NOTRACK rule.
            const deciding =
              r.verdict !== 'ACCEPT' && d.kind === 'rule'
                ? { chain: d.chain, index: d.index, rule: d.rule }
                : marker
                  ? { chain: marker.chain, index: marker.index, rule: marker.rule }
                  : undefined;
            const step: NetfilterStep = {
              ...evaluationStep('raw', 'PREROUTING', r, deciding, { text: `policy ${r.verdict}`, nft: false }),
              ...(marker ? { notrack: true } : {}),
            };
            return step;
          },
        }
      : {}),
    evaluateBridged(frame, ctx): NetfilterStep | undefined {
      if (!ip4 || !ip4Live || frame.payload.kind !== 'ipv4') return undefined;
      const r = evaluateIptables(ip4, 'FORWARD', frame, {
        physdevIn: ctx.inPort,
        physdevOut: ctx.outPort,
        physdevIsBridged: true,
        inIface: ctx.bridge,
        outIface: ctx.bridge,
        ...(inSet ? { ipsetContains: inSet } : {}),
        ...(ctx.ctState !== undefined ? { ctState: ctx.ctState, ctDir: ctx.ctDir ?? 'ORIGINAL' } : ctOf(frame)),
        ...(ctx.mark ? { mark: ctx.mark } : {}),
      });
      return iptStep('FORWARD', r);
    },
    ...(host4
      ? {
          evaluateHost(hook: HostHook, frame: EthernetFrame, ctx: HostHookCtx): NetfilterStep | undefined {
            if (!hostLive.has(hook) || frame.payload.kind !== 'ipv4') return undefined;
            const r = evaluateIptables(host4, hook, frame, {
              ...(ctx.inIface !== undefined ? { inIface: ctx.inIface } : {}),
              ...(ctx.outIface !== undefined ? { outIface: ctx.outIface } : {}),
              ...(inSet ? { ipsetContains: inSet } : {}),
              ...(ctx.mark ? { mark: ctx.mark } : {}),
              ...(ctx.ctState !== undefined ? { ctState: ctx.ctState, ctDir: ctx.ctDir ?? 'ORIGINAL' } : ctOf(frame)),
            });
            return iptStep(hook, r);
          },
        }
      : {}),
    evaluate(table: 'nat' | 'filter', hook: BridgeHook, frame: EthernetFrame, ctx): NetfilterStep | undefined {
      if (nftBridge && table === 'nat' && (hook === 'PREROUTING' || hook === 'POSTROUTING')) {
        // ebtables nat and the nft bridge chain share these hooks: PREROUTING ebtables first, POSTROUTING nft first
        const eb = ebtables(table, hook, frame, ctx);
        if (hook === 'PREROUTING' && eb?.verdict === 'DROP') return eb;
        const nft = nftBridgeStep(nftBridge, tables.nftBridgeArp, hook, frame, ctx, inSet);
        if (nft?.verdict === 'DROP' || (hook === 'PREROUTING' && nft)) return nft;
        return eb ?? nft;
      }
      return ebtables(table, hook, frame, ctx);
    },
  };
  function ebtables(
    table: 'nat' | 'filter',
    hook: BridgeHook,
    frame: EthernetFrame,
    ctx: { readonly inIface?: string; readonly outIface?: string },
  ): NetfilterStep | undefined {
    {
      const t = tables[table];
      if (!t || !live[table].has(hook)) return undefined;
      // The summary, not the full evaluation: a step needs only how many rules were visited, not each of them.
      const r = summarizeEbtables(t, hook, frame, ctx);
      if (r.verdict === 'ACCEPT' && !r.anyMatched) return undefined;
      // Loops rather than some/filter/map: this runs for every frame at every port with rules.
      const path: string[] = [hook];
      for (const e of r.events) if (e.kind === 'jump') path.push(e.to);
      const d = r.decidedBy;
      if (d.kind === 'rule')
        return {
          kind: 'netfilter',
          family: 'bridge',
          table,
          hook,
          verdict: r.verdict,
          chain: d.chain,
          ruleNumber: d.index + 1,
          ruleText: ruleText(d.rule, style),
          origin: d.rule.origin,
          path,
          rulesVisited: r.visitedCount,
        };
      return {
        kind: 'netfilter',
        family: 'bridge',
        table,
        hook,
        verdict: r.verdict,
        chain: d.chain,
        ruleText: `policy: ${d.policy}`,
        origin: d.origin,
        path,
        rulesVisited: r.visitedCount,
      };
    }
  }
}

/**
 * The nft bridge table's base chain at `hook` on an IPv4 frame, or on an ARP frame through the table's ARP view (the
 * frame seen as an IPv4 header from the sender to the target protocol address, no transport, no conntrack).
 */
function nftBridgeStep(
  t: IptTable,
  arp: IptTable | undefined,
  hook: 'PREROUTING' | 'POSTROUTING',
  frame: EthernetFrame,
  ctx: { readonly inIface?: string; readonly outIface?: string },
  inSet: ((name: string, addr: Ipv4) => boolean | undefined) | undefined,
): NetfilterStep | undefined {
  const p = frame.payload;
  let view: EthernetFrame;
  let table: IptTable;
  if (p.kind === 'ipv4') {
    view = frame;
    table = t;
  } else if (p.kind === 'arp' && arp) {
    view = {
      ...frame,
      payload: {
        kind: 'ipv4',
        tos: 0,
        id: 0,
        dontFragment: false,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: 64,
        protocol: 0,
        src: p.spa,
        dst: p.tpa,
        payload: { kind: 'raw', bytes: new Uint8Array(0) },
      },
    };
    table = arp;
  } else return undefined;
  const r = evaluateIptables(table, hook, view, {
    ...(ctx.inIface !== undefined ? { inIface: ctx.inIface } : {}),
    ...(ctx.outIface !== undefined ? { outIface: ctx.outIface } : {}),
    ...(inSet ? { ipsetContains: inSet } : {}),
    ...(p.kind === 'ipv4' ? bridgeCtOf(frame) : {}),
  });
  // a frame no guest chain took (an uplink's, the node's own) leaves by the base chain's policy: nothing to say
  if (r.verdict === 'ACCEPT' && r.decidedBy.kind === 'policy') return undefined;
  const step = iptStep(hook, r);
  return step ? { ...step, family: 'bridge', table: 'filter' } : undefined;
}

/**
 * A node's own iptables mangle PREROUTING on a packet it receives: the step says which rule set the mark (undefined
 * when no rule matched and the chain's policy accepts). A mangle DROP ends the packet as a filter drop would.
 */
export function manglePrerouting(mangle: IptTable, frame: EthernetFrame, inIface: string): NetfilterStep | undefined {
  return mangleChain(mangle, 'PREROUTING', frame, { inIface }, 0);
}

/** What a mangle chain sees of a packet besides the packet. */
export interface MangleHookCtx {
  readonly inIface?: string;
  readonly outIface?: string;
  readonly physdevIn?: string;
  readonly physdevOut?: string;
  readonly ctState?: CtState;
  readonly ctDir?: 'ORIGINAL' | 'REPLY';
}

/**
 * A node's iptables mangle chain on a packet that carries `mark`: the step names the rule that set the mark last (or
 * dropped it); undefined when no rule matched and the policy accepts. `mark.after` is the packet's mark as it goes on.
 */
export function mangleChain(
  mangle: IptTable,
  hook: 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING',
  frame: EthernetFrame,
  ctx: MangleHookCtx,
  mark: number,
): NetfilterStep | undefined {
  if (frame.payload.kind !== 'ipv4') return undefined;
  const { ctState, ctDir, ...ifaces } = ctx;
  const r = evaluateIptables(mangle, hook, frame, {
    ...ifaces,
    ...(ctx.physdevIn !== undefined || ctx.physdevOut !== undefined ? { physdevIsBridged: true } : {}),
    mark,
    ...(ctState !== undefined ? { ctState, ctDir: ctDir ?? 'ORIGINAL' } : ctOf(frame)),
  });
  if (!r.visited.some((v) => v.matched) && r.verdict === 'ACCEPT') return undefined;
  // The step names the rule that set the mark last, unless another rule decided the verdict.
  const marker = [...r.visited].reverse().find((v) => v.matched && v.rule.target?.kind === 'mark');
  const d = r.decidedBy;
  const deciding =
    r.verdict === 'ACCEPT' && d.kind === 'policy' && marker
      ? { chain: marker.chain, index: marker.index, rule: marker.rule }
      : d.kind === 'rule'
        ? { chain: d.chain, index: d.index, rule: d.rule }
        : undefined;
  return {
    ...evaluationStep('mangle', hook, r, deciding, {
      text: d.kind === 'policy' && d.nft ? `policy ${d.policy.toLowerCase()}` : `policy ${r.verdict}`,
      nft: true,
    }),
    ...(r.mark !== mark || marker ? { mark: { before: mark, after: r.mark } } : {}),
  };
}

/** What a nat chain sees of a packet besides the packet: its interfaces, bridge ports, the host's address types. */
export interface NatHookCtx {
  readonly inIface?: string;
  readonly outIface?: string;
  /** br_netfilter: the bridge ports (`--physdev-in`/`--physdev-out`). */
  readonly physdevIn?: string;
  readonly physdevOut?: string;
  /** `-m addrtype`: LOCAL for the node's own addresses. */
  readonly addrType?: (addr: Ipv4, which: 'src' | 'dst') => string;
}

/**
 * A node's iptables nat chain on a connection's first packet (`nf_nat_inet_fn` → `nf_nat_rule_find`, ctstate NEW):
 * the step names the DNAT/REDIRECT (PREROUTING, OUTPUT) or SNAT/MASQUERADE (POSTROUTING) rule that rewrote it, with
 * `dnat`/`snat` saying how. `local` is what REDIRECT takes as destination (the primary address of the interface the
 * packet came in on, 127.0.0.1 in OUTPUT) or MASQUERADE as source (the out interface's address for the next hop);
 * without one the kernel drops the packet. Undefined when no rule matched and the policy accepts.
 */
export function natChain(
  nat: IptTable,
  hook: 'PREROUTING' | 'OUTPUT' | 'POSTROUTING',
  frame: EthernetFrame,
  ctx: NatHookCtx,
  local: Ipv4 | undefined,
): NetfilterStep | undefined {
  const p = frame.payload;
  if (p.kind !== 'ipv4') return undefined;
  const r = evaluateIptables(nat, hook, frame, {
    ...ctx,
    ...(ctx.physdevIn !== undefined || ctx.physdevOut !== undefined ? { physdevIsBridged: true } : {}),
    ctState: 'NEW',
    ctDir: 'ORIGINAL',
  });
  const d = r.decidedBy;
  if (d.kind === 'policy' && r.verdict === 'ACCEPT') return undefined;
  const t = r.nat;
  const l4 = p.payload;
  const port = l4.kind === 'tcp' || l4.kind === 'udp' ? l4.dstPort : undefined;
  const sport = l4.kind === 'tcp' || l4.kind === 'udp' ? l4.srcPort : undefined;
  // SNAT/MASQUERADE with a port range keep the source port when it is in the range (and the tuple is free, as a
  // probe's is: `nf_nat_l4proto_unique_tuple`); otherwise the kernel picks a free one of the range: the first here.
  const range = t?.kind === 'snat' || t?.kind === 'masquerade' ? t.toPorts : undefined;
  const newSport =
    range === undefined || sport === undefined ? undefined : sport >= range.lo && sport <= range.hi ? sport : range.lo;
  const to = t?.kind === 'snat' ? parseIpv4(t.toSource) : t?.kind === 'dnat' ? parseIpv4(t.toDest) : local;
  // REDIRECT without an address on the in interface, MASQUERADE without one on the out interface: NF_DROP.
  const dropped = r.verdict !== 'ACCEPT' || (t !== undefined && to === undefined);
  const rewrite: Partial<Pick<NetfilterStep, 'snat' | 'dnat'>> =
    t === undefined || to === undefined
      ? {}
      : t.kind === 'snat' || t.kind === 'masquerade'
        ? {
            snat: {
              from: p.src,
              to,
              ...(newSport !== undefined && sport !== undefined ? { fromPort: sport, toPort: newSport } : {}),
            },
          }
        : {
            dnat: {
              from: p.dst,
              to,
              ...(port !== undefined ? { fromPort: port, toPort: t.toPort ?? port } : {}),
            },
          };
  return {
    ...evaluationStep(
      'nat',
      hook,
      r,
      d.kind === 'rule' ? d : undefined,
      { text: d.kind === 'policy' && d.nft ? `policy ${d.policy.toLowerCase()}` : `policy ${r.verdict}`, nft: false },
      dropped ? 'DROP' : 'ACCEPT',
    ),
    ...rewrite,
  };
}

/**
 * A director's own iptables nat POSTROUTING on a packet IPVS NAT-forwards (seen only with `net.ipv4.vs.conntrack=1`):
 * the step names the SNAT or MASQUERADE rule that rewrites the source, and `snat.to` the new source — MASQUERADE takes
 * `masqueradeSource`, the out interface's address for the next hop. Undefined when no rule matched and the policy
 * accepts. The nat table sees a connection's first packet only (ctstate NEW); conntrack applies its binding to the rest.
 */
export function natPostrouting(
  nat: IptTable,
  frame: EthernetFrame,
  outIface: string,
  masqueradeSource: Ipv4 | undefined,
): NetfilterStep | undefined {
  return natChain(nat, 'POSTROUTING', frame, { outIface }, masqueradeSource);
}
