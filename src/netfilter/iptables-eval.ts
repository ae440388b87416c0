/**
 * Evaluates an IPv4 packet (in its Ethernet frame, for `-m mac`) against an iptables table from a built-in chain and
 * explains the outcome, like `evaluateEbtables`: the deciding rule or policy, every rule visited, jumps, gotos and
 * returns. Used for the br_netfilter path (bridged frames traverse FORWARD/INPUT when bridge-nf-call-iptables=1),
 * with the physdev context of the bridge ports.
 *
 * Semantics: a matching rule's target decides — ACCEPT/DROP/REJECT end the traversal; `-j CHAIN` enters a user chain
 * and comes back after the rule; `-g CHAIN` enters it without a way back (a RETURN there returns to the chain that
 * jumped to the chain holding the goto); RETURN or falling off a user chain goes back; RETURN in or falling off a
 * built-in chain applies its policy. Matches that need state lvsdoctor does not have (ipset contents, connection
 * counts, an unknown conntrack state) do not match and are reported as unsupported.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { ipv4Mask } from '../addr/prefix.ts';
import type { Origin } from '../source/origin.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type {
  CtState,
  IptAddrMatch,
  IptChain,
  IptIfaceMatch,
  IptMatch,
  IptPolicy,
  IptRange,
  IptRule,
  IptTable,
  IptTarget,
} from './iptables-model.ts';

export interface IptEvalContext {
  readonly physdevIn?: string;
  readonly physdevOut?: string;
  readonly physdevIsBridged?: boolean;
  /** `-i`: the bridge device for bridged packets. */
  readonly inIface?: string;
  readonly outIface?: string;
  /** Conntrack state of the packet's connection (undefined = unknown). */
  readonly ctState?: CtState;
  readonly ctDir?: 'ORIGINAL' | 'REPLY';
  /**
   * Whether an ipset holds an address (hash:net semantics, `nomatch` included); undefined when the set is unknown,
   * which makes the match unsupported (it does not match).
   */
  readonly ipsetContains?: (name: string, addr: Ipv4) => boolean | undefined;
  /** The packet's netfilter mark when it enters (`-m mark`, `-j MARK`); 0 when not given. */
  readonly mark?: number;
  /** The routing type of an address as the host sees it (`-m addrtype`): UNICAST, LOCAL, BROADCAST, MULTICAST … */
  readonly addrType?: (addr: Ipv4, which: 'src' | 'dst') => string;
}

export interface IptVisitedRule {
  readonly chain: string;
  /** 0-based index in the chain. */
  readonly index: number;
  readonly rule: IptRule;
  readonly matched: boolean;
  readonly unsupported?: string;
}

export type IptEvalEvent =
  | { readonly kind: 'jump' | 'goto'; readonly from: string; readonly index: number; readonly to: string }
  | { readonly kind: 'return'; readonly from: string; readonly to: string; readonly reason: 'rule' | 'end' }
  /** nft: the base chain accepted and the next base chain on the hook runs. */
  | { readonly kind: 'next-base-chain'; readonly from: string; readonly to: string };

export type IptDecision =
  | { readonly kind: 'rule'; readonly chain: string; readonly index: number; readonly rule: IptRule }
  | {
      readonly kind: 'policy';
      readonly chain: string;
      readonly policy: IptPolicy;
      readonly origin: Origin;
      readonly nft?: { readonly chain: string };
    };

export interface IptEvalResult {
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT';
  /** The packet's mark when it leaves (after `-j MARK` rules). */
  readonly mark: number;
  readonly decidedBy: IptDecision;
  readonly visited: readonly IptVisitedRule[];
  readonly events: readonly IptEvalEvent[];
  readonly problems: readonly string[];
  /** nat: the SNAT, MASQUERADE, DNAT or REDIRECT target that decided (the verdict is then ACCEPT). */
  readonly nat?: Extract<IptTarget, { kind: 'snat' | 'masquerade' | 'dnat' | 'redirect' }>;
}

type Outcome = { readonly ok: boolean; readonly unsupported?: string };
const YES: Outcome = { ok: true };
const NO: Outcome = { ok: false };

function iface(m: IptIfaceMatch | undefined, name: string | undefined): boolean {
  if (m === undefined) return true;
  const hit = name !== undefined && (m.name.endsWith('+') ? name.startsWith(m.name.slice(0, -1)) : name === m.name);
  return hit !== m.negated;
}

function addr(m: IptAddrMatch | undefined, value: Ipv4): boolean {
  if (m === undefined) return true;
  const a = parseIpv4(m.addr);
  if (a === undefined) return false;
  const mask = ipv4Mask(m.prefixLen);
  return ((value & mask) >>> 0 === (a & mask) >>> 0) !== m.negated;
}

function range(r: IptRange | undefined, v: number): boolean {
  return r === undefined || (v >= r.lo && v <= r.hi) !== r.negated;
}

function inRange(from: string, to: string, v: Ipv4): boolean {
  const a = parseIpv4(from);
  const b = parseIpv4(to);
  return a !== undefined && b !== undefined && v >= a && v <= b;
}

const TCP_OPTION_KIND: Readonly<Record<string, number>> = {
  eol: 0,
  nop: 1,
  mss: 2,
  wscale: 3,
  'sack-permitted': 4,
  sack: 5,
  timestamp: 8,
};

function inPorts(ranges: readonly { readonly lo: number; readonly hi: number }[], v: number): boolean {
  return ranges.some((r) => v >= r.lo && v <= r.hi);
}

function evalMatch(m: IptMatch, frame: EthernetFrame, ctx: IptEvalContext, mark: number): Outcome {
  const p = frame.payload;
  if (p.kind !== 'ipv4') return NO;
  const l4 = p.payload;
  switch (m.kind) {
    case 'mac':
      return { ok: (frame.src === (m.source as Mac)) !== m.negated };
    case 'iprange':
      if (m.src && inRange(m.src.from, m.src.to, p.src) === m.src.negated) return NO;
      if (m.dst && inRange(m.dst.from, m.dst.to, p.dst) === m.dst.negated) return NO;
      return YES;
    case 'dscp':
      return { ok: (p.tos >> 2 === m.value) !== m.negated };
    case 'tcp': {
      if (l4.kind !== 'tcp') return NO;
      if (!range(m.sport, l4.srcPort) || !range(m.dport, l4.dstPort)) return NO;
      if (m.flags && ((l4.flags & m.flags.mask) === m.flags.comp) === m.flags.negated) return NO;
      if (m.option) {
        const has = l4.options.some((o) =>
          o.kind === 'unknown' ? o.type === m.option?.value : TCP_OPTION_KIND[o.kind] === m.option?.value,
        );
        if (has === m.option.negated) return NO;
      }
      return YES;
    }
    case 'udp':
      if (l4.kind !== 'udp') return NO;
      return { ok: range(m.sport, l4.srcPort) && range(m.dport, l4.dstPort) };
    case 'sctp': {
      if (p.protocol !== 132 || l4.kind !== 'raw' || l4.bytes.length < 4) return NO;
      const b = l4.bytes;
      return { ok: range(m.sport, (b[0]! << 8) | b[1]!) && range(m.dport, (b[2]! << 8) | b[3]!) };
    }
    case 'icmp': {
      if (l4.kind !== 'icmp') return NO;
      const hit = m.type === 0xff || (l4.type === m.type && l4.code >= m.codeLo && l4.code <= m.codeHi);
      return { ok: hit !== m.negated };
    }
    case 'icmp6':
      return NO;
    case 'conntrack': {
      if (m.state) {
        if (ctx.ctState === undefined) return { ok: false, unsupported: 'conntrack state of the packet is unknown' };
        if (m.state.states.includes(ctx.ctState) === m.state.negated) return NO;
      }
      if (m.dir) {
        if (ctx.ctDir === undefined) return { ok: false, unsupported: 'conntrack direction of the packet is unknown' };
        if (m.dir !== ctx.ctDir) return NO;
      }
      return YES;
    }
    case 'set': {
      if (ctx.ipsetContains === undefined)
        return { ok: false, unsupported: `ipset ${m.name}: set contents are not known` };
      for (const f of m.flags) {
        const hit = ctx.ipsetContains(m.name, f === 'src' ? p.src : p.dst);
        if (hit === undefined) return { ok: false, unsupported: `ipset ${m.name} does not exist` };
        if (hit === m.negated) return NO;
      }
      return YES;
    }
    case 'mark':
      return { ok: ((mark & m.mask) >>> 0 === m.value) !== m.negated };
    case 'addrtype': {
      const typeOf = ctx.addrType ?? defaultAddrType;
      if (m.src && (typeOf(p.src, 'src') === m.src.type) === m.src.negated) return NO;
      if (m.dst && (typeOf(p.dst, 'dst') === m.dst.type) === m.dst.negated) return NO;
      return YES;
    }
    case 'limit':
      return YES;
    case 'multiport': {
      if (l4.kind !== 'tcp' && l4.kind !== 'udp') return NO;
      const hit =
        m.which === 'dports'
          ? inPorts(m.ranges, l4.dstPort)
          : m.which === 'sports'
            ? inPorts(m.ranges, l4.srcPort)
            : inPorts(m.ranges, l4.dstPort) || inPorts(m.ranges, l4.srcPort);
      return { ok: hit !== m.negated };
    }
    case 'connlimit':
      return { ok: false, unsupported: 'connlimit: connection counts are not modelled' };
    case 'comment':
      return YES;
    case 'physdev':
      if (m.in && !iface(m.in, ctx.physdevIn)) return NO;
      if (m.out && !iface(m.out, ctx.physdevOut)) return NO;
      if (m.isIn && (ctx.physdevIn !== undefined) === m.isIn.negated) return NO;
      if (m.isOut && (ctx.physdevOut !== undefined) === m.isOut.negated) return NO;
      if (m.isBridged && (ctx.physdevIsBridged === true) === m.isBridged.negated) return NO;
      return YES;
  }
}

/** Without a host's view: multicast and limited broadcast by their address, everything else UNICAST. */
function defaultAddrType(a: Ipv4): string {
  if (a >>> 28 === 0xe) return 'MULTICAST';
  if (a >>> 0 === 0xffffffff) return 'BROADCAST';
  return 'UNICAST';
}

/** Whether one rule matches (target not considered). */
export function iptRuleMatches(
  rule: IptRule,
  frame: EthernetFrame,
  ctx: IptEvalContext = {},
  mark = ctx.mark ?? 0,
): Outcome {
  const p = frame.payload;
  if (p.kind !== 'ipv4') return { ok: false, unsupported: 'only IPv4 packets are evaluated' };
  if (!addr(rule.src, p.src) || !addr(rule.dst, p.dst)) return NO;
  if (!iface(rule.in, ctx.inIface) || !iface(rule.out, ctx.outIface)) return NO;
  if (rule.proto && rule.proto.value !== 0 && (p.protocol === rule.proto.value) === rule.proto.negated) return NO;
  for (const m of rule.matches) {
    const r = evalMatch(m, frame, ctx, mark);
    if (!r.ok) return r;
  }
  return YES;
}

const CHAIN_INDEX = new WeakMap<IptTable, ReadonlyMap<string, IptChain>>();

/** The table's chains by name, built once per table (tables are immutable). */
function chainsByName(table: IptTable): ReadonlyMap<string, IptChain> {
  let m = CHAIN_INDEX.get(table);
  if (m === undefined) {
    m = new Map(table.chains.map((c) => [c.name, c]));
    CHAIN_INDEX.set(table, m);
  }
  return m;
}

interface Frame {
  readonly chain: IptChain;
  index: number;
  /** Entered with `-g` from a built-in chain: leaving it applies that chain's policy. */
  readonly toPolicy?: boolean;
}

const MAX_DEPTH = 64;

/** Runs the packet through `chain` (a built-in chain such as FORWARD or INPUT) of `table`. Never throws. */
export function evaluateIptables(
  table: IptTable,
  chain: string,
  packetFrame: EthernetFrame,
  ctx: IptEvalContext = {},
): IptEvalResult {
  const visited: IptVisitedRule[] = [];
  const events: IptEvalEvent[] = [];
  const problems: string[] = [];
  let mark = ctx.mark ?? 0;
  const byName = chainsByName(table);
  let hook = byName.get(chain);
  if (hook === undefined) {
    problems.push(`chain ${chain} does not exist in table ${table.name}`);
    return {
      verdict: 'ACCEPT',
      mark,
      decidedBy: {
        kind: 'policy',
        chain,
        policy: 'ACCEPT',
        origin: { kind: 'implicit', label: `missing chain ${chain}: packet passes` },
      },
      visited,
      events,
      problems,
    };
  }
  const policyOf = (): IptEvalResult => {
    const policy = hook!.policy ?? 'ACCEPT';
    return {
      verdict: policy,
      mark,
      decidedBy: {
        kind: 'policy',
        chain: hook!.name,
        policy,
        origin: hook!.policyOrigin ?? { kind: 'implicit', label: `${hook!.name} policy ${policy}` },
        ...(hook!.nft ? { nft: hook!.nft } : {}),
      },
      visited,
      events,
      problems,
    };
  };
  const stack: Frame[] = [{ chain: hook, index: 0 }];
  /**
   * An accept ends the hook unless the base chain has a next one (nft: every base chain of a hook runs, in priority
   * order): then the packet starts over there. Undefined when it goes on.
   */
  const accepted = (r: IptEvalResult): IptEvalResult | undefined => {
    const next = hook!.nextBaseChain === undefined ? undefined : byName.get(hook!.nextBaseChain);
    if (r.verdict !== 'ACCEPT' || next === undefined) return r;
    events.push({ kind: 'next-base-chain', from: hook!.name, to: next.name });
    hook = next;
    stack.length = 0;
    stack.push({ chain: next, index: 0 });
    return undefined;
  };
  const back = (reason: 'rule' | 'end'): boolean => {
    const top = stack.pop()!;
    if (stack.length === 0 || top.toPolicy) return false;
    const caller = stack[stack.length - 1]!;
    events.push({ kind: 'return', from: top.chain.name, to: caller.chain.name, reason });
    caller.index++;
    return true;
  };
  for (let steps = 0; steps < 100_000; steps++) {
    const top = stack[stack.length - 1]!;
    const rule = top.chain.rules[top.index];
    if (rule === undefined) {
      if (top.chain.builtin || !back('end')) {
        const r = accepted(policyOf());
        if (r) return r;
      }
      continue;
    }
    const o = iptRuleMatches(rule, packetFrame, ctx, mark);
    visited.push({
      chain: top.chain.name,
      index: top.index,
      rule,
      matched: o.ok,
      ...(o.unsupported !== undefined ? { unsupported: o.unsupported } : {}),
    });
    const t = rule.target;
    if (!o.ok || t === undefined) {
      top.index++;
      continue;
    }
    switch (t.kind) {
      case 'verdict':
        if (t.verdict === 'RETURN') {
          if (top.chain.builtin || !back('rule')) {
            const r = accepted(policyOf());
            if (r) return r;
          }
          continue;
        }
        {
          const r = accepted({
            verdict: t.verdict,
            mark,
            decidedBy: { kind: 'rule', chain: top.chain.name, index: top.index, rule },
            visited,
            events,
            problems,
          });
          if (r) return r;
        }
        continue;
      case 'reject':
        return {
          verdict: 'REJECT',
          mark,
          decidedBy: { kind: 'rule', chain: top.chain.name, index: top.index, rule },
          visited,
          events,
          problems,
        };
      case 'snat':
      case 'masquerade':
      case 'dnat':
      case 'redirect':
        return {
          verdict: 'ACCEPT',
          mark,
          decidedBy: { kind: 'rule', chain: top.chain.name, index: top.index, rule },
          visited,
          events,
          problems,
          nat: t,
        };
      case 'mark':
        mark = ((mark & ~t.mask) ^ t.value) >>> 0;
        top.index++;
        continue;
      case 'connmark':
      case 'passive':
      case 'nflog':
      case 'notrack':
        top.index++;
        continue;
      case 'nfqueue':
        // With --queue-bypass a queue nobody listens on lets the packet pass; lvsdoctor models no IPS listening.
        if (!t.bypass)
          problems.push(`${top.chain.name} rule ${top.index + 1} queues to NFQUEUE without --queue-bypass`);
        return {
          verdict: t.bypass ? 'ACCEPT' : 'DROP',
          mark,
          decidedBy: { kind: 'rule', chain: top.chain.name, index: top.index, rule },
          visited,
          events,
          problems,
        };
      case 'jump':
      case 'goto': {
        const target = byName.get(t.chain);
        if (target === undefined) {
          problems.push(`${top.chain.name} rule ${top.index + 1} jumps to missing chain ${t.chain}`);
          top.index++;
          continue;
        }
        if (stack.length >= MAX_DEPTH) {
          problems.push(`jump depth exceeds ${MAX_DEPTH} at ${top.chain.name} rule ${top.index + 1} (loop?)`);
          return { ...policyOf(), verdict: 'DROP' };
        }
        events.push({ kind: t.kind, from: top.chain.name, index: top.index, to: t.chain });
        // A goto replaces the current frame; from a built-in chain, leaving the target applies the policy.
        if (t.kind === 'goto') {
          const fromBuiltin = top.chain.builtin || top.toPolicy === true;
          if (!top.chain.builtin) stack.pop();
          stack.push({ chain: target, index: 0, ...(fromBuiltin ? { toPolicy: true } : {}) });
        } else stack.push({ chain: target, index: 0 });
        continue;
      }
    }
  }
  problems.push('evaluation did not terminate');
  return { ...policyOf(), verdict: 'DROP' };
}
