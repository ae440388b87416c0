/**
 * Evaluates a frame against an ebtables table from a hook chain and explains the outcome: the deciding rule or
 * policy, every rule visited (matched or not), and the jumps and returns taken.
 *
 * Semantics (ebtables): a matching rule's target decides — ACCEPT/DROP end the traversal, CONTINUE goes on, a jump
 * enters a user chain, RETURN leaves a user chain and resumes in the caller after the jump. Falling off a user chain
 * applies its policy (RETURN = back to the caller, ACCEPT/DROP = final); falling off (or RETURN in) a built-in chain
 * applies the built-in chain's policy.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { type Mac, macMatches } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  ETHERTYPE_IPV6,
  ETHERTYPE_RARP,
  type EthernetFrame,
  IPPROTO_SCTP,
  IPPROTO_TCP,
  IPPROTO_UDP,
} from '../wire/types.ts';
import type {
  EbArpMatch,
  EbChain,
  EbIfaceMatch,
  EbIpMatch,
  EbIpv4Match,
  EbMacMatch,
  EbMatch,
  EbPolicy,
  EbRangeMatch,
  EbRule,
  EbTable,
  EbValueMatch,
  EbVlanMatch,
} from './ebtables-model.ts';

export interface EbEvalContext {
  /** The bridge port the frame came in on (`-i`). */
  readonly inIface?: string;
  /** The bridge port the frame goes out on (`-o`). */
  readonly outIface?: string;
  /** The bridge the input port belongs to (`--logical-in`). */
  readonly logicalIn?: string;
  /** The bridge the output port belongs to (`--logical-out`). */
  readonly logicalOut?: string;
}

export interface EbVisitedRule {
  readonly chain: string;
  /** 0-based index in the chain. */
  readonly index: number;
  readonly rule: EbRule;
  readonly matched: boolean;
  /** Set when a match could not be evaluated on this frame (treated as not matching). */
  readonly unsupported?: string;
}

export type EbEvalEvent =
  | { readonly kind: 'jump'; readonly from: string; readonly index: number; readonly to: string }
  | {
      readonly kind: 'return';
      readonly from: string;
      readonly to: string;
      /** Index of the jump rule in the caller; evaluation resumes after it. */
      readonly toIndex: number;
      /** `rule`: a RETURN target; `policy`: fell off a user chain whose policy is RETURN. */
      readonly reason: 'rule' | 'policy';
    };

export type EbDecision =
  | { readonly kind: 'rule'; readonly chain: string; readonly index: number; readonly rule: EbRule }
  | { readonly kind: 'policy'; readonly chain: string; readonly policy: EbPolicy; readonly origin: Origin };

export interface EbEvalResult {
  readonly verdict: 'ACCEPT' | 'DROP';
  readonly decidedBy: EbDecision;
  readonly visited: readonly EbVisitedRule[];
  readonly events: readonly EbEvalEvent[];
  /** Problems of the ruleset met on the way (jump to a missing chain, loops). */
  readonly problems: readonly string[];
}

const MAX_DEPTH = 64;

const CHAIN_INDEX = new WeakMap<EbTable, ReadonlyMap<string, EbChain>>();

/** Chains by name, built once per (immutable) table: traces evaluate the same tables many times. */
function chainIndex(table: EbTable): ReadonlyMap<string, EbChain> {
  let m = CHAIN_INDEX.get(table);
  if (!m) {
    m = new Map(table.chains.map((c) => [c.name, c]));
    CHAIN_INDEX.set(table, m);
  }
  return m;
}

function ifaceMatches(m: EbIfaceMatch | undefined, name: string | undefined): boolean {
  if (m === undefined) return true;
  let hit: boolean;
  if (name === undefined) hit = false;
  else if (m.name.endsWith('+')) hit = name.startsWith(m.name.slice(0, -1));
  else hit = name === m.name;
  return hit !== m.negated;
}

function macMatch(m: EbMacMatch | undefined, value: Mac): boolean {
  if (m === undefined) return true;
  return macMatches(value, m.addr, m.mask) !== m.negated;
}

function ipMatch(m: EbIpv4Match | undefined, value: Ipv4): boolean {
  if (m === undefined) return true;
  return ((value & m.mask) >>> 0 === (m.addr & m.mask) >>> 0) !== m.negated;
}

function valueMatch(m: EbValueMatch | undefined, value: number): boolean {
  if (m === undefined) return true;
  return (value === m.value) !== m.negated;
}

function rangeMatch(m: EbRangeMatch | undefined, value: number): boolean {
  if (m === undefined) return true;
  return (value >= m.lo && value <= m.hi) !== m.negated;
}

/** The type field ebtables' `-p` sees: the outer TPID for tagged frames. */
export function frameEthertype(frame: EthernetFrame): number {
  const tag = frame.vlans[0];
  return tag === undefined ? frame.etherType : (tag.tpid ?? 0x8100);
}

type MatchOutcome = { readonly ok: boolean; readonly unsupported?: string };

function ports(frame: EthernetFrame): { sport: number; dport: number } | undefined {
  const p = frame.payload;
  if (p.kind !== 'ipv4' || p.fragmentOffset !== 0) return undefined;
  const l4 = p.payload;
  if (l4.kind === 'tcp' || l4.kind === 'udp') return { sport: l4.srcPort, dport: l4.dstPort };
  if (l4.kind === 'raw' && l4.bytes.length >= 4 && (p.protocol === IPPROTO_SCTP || p.protocol === 33)) {
    const b = l4.bytes;
    return { sport: (b[0]! << 8) | b[1]!, dport: (b[2]! << 8) | b[3]! };
  }
  return undefined;
}

function evalIp(m: EbIpMatch, frame: EthernetFrame): MatchOutcome {
  const p = frame.payload;
  if (frameEthertype(frame) !== ETHERTYPE_IPV4 || p.kind !== 'ipv4') return { ok: false };
  if (!ipMatch(m.src, p.src) || !ipMatch(m.dst, p.dst)) return { ok: false };
  if (!valueMatch(m.tos, p.tos) || !valueMatch(m.proto, p.protocol)) return { ok: false };
  if (m.sport || m.dport) {
    const withPorts = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 33];
    if (!withPorts.includes(p.protocol)) return { ok: false };
    const pp = ports(frame);
    if (pp === undefined) return { ok: false };
    if (!rangeMatch(m.sport, pp.sport) || !rangeMatch(m.dport, pp.dport)) return { ok: false };
  }
  return { ok: true };
}

function evalArp(m: EbArpMatch, frame: EthernetFrame): MatchOutcome {
  const t = frameEthertype(frame);
  const p = frame.payload;
  if ((t !== ETHERTYPE_ARP && t !== ETHERTYPE_RARP) || p.kind !== 'arp') return { ok: false };
  if (!valueMatch(m.op, p.op) || !valueMatch(m.htype, p.htype) || !valueMatch(m.ptype, p.ptype)) return { ok: false };
  // The IP and MAC fields are only looked at for Ethernet/IPv4 ARP, which is all the frame model carries.
  if (!ipMatch(m.ipSrc, p.spa) || !ipMatch(m.ipDst, p.tpa)) return { ok: false };
  if (!macMatch(m.macSrc, p.sha) || !macMatch(m.macDst, p.tha)) return { ok: false };
  if (m.gratuitous && (p.spa === p.tpa) === m.gratuitous.negated) return { ok: false };
  return { ok: true };
}

function evalVlan(m: EbVlanMatch, frame: EthernetFrame): MatchOutcome {
  const tag = frame.vlans[0];
  if (tag === undefined) return { ok: false };
  const encap = frame.vlans[1] ? (frame.vlans[1].tpid ?? 0x8100) : frame.etherType;
  return { ok: valueMatch(m.id, tag.vid) && valueMatch(m.prio, tag.pcp) && valueMatch(m.encap, encap) };
}

function evalMatch(m: EbMatch, frame: EthernetFrame): MatchOutcome {
  switch (m.kind) {
    case 'ip':
      return evalIp(m, frame);
    case 'arp':
      return evalArp(m, frame);
    case 'vlan':
      return evalVlan(m, frame);
    case 'ip6':
      if (frameEthertype(frame) !== ETHERTYPE_IPV6) return { ok: false };
      return { ok: false, unsupported: 'ip6 match on an IPv6 frame is not evaluated yet' };
    case 'stp':
      if (frame.dst !== '01:80:c2:00:00:00') return { ok: false };
      return { ok: false, unsupported: 'stp match on a BPDU is not evaluated yet' };
  }
}

/** Whether one rule matches a frame (target not considered). */
export function ebRuleMatches(rule: EbRule, frame: EthernetFrame, ctx: EbEvalContext = {}): MatchOutcome {
  if (rule.proto) {
    const t = frameEthertype(frame);
    const hit = rule.proto.kind === 'length' ? t < 0x0600 : t === rule.proto.value;
    if (hit === rule.proto.negated) return { ok: false };
  }
  if (!macMatch(rule.src, frame.src) || !macMatch(rule.dst, frame.dst)) return { ok: false };
  if (!ifaceMatches(rule.in, ctx.inIface) || !ifaceMatches(rule.out, ctx.outIface)) return { ok: false };
  if (!ifaceMatches(rule.logicalIn, ctx.logicalIn) || !ifaceMatches(rule.logicalOut, ctx.logicalOut)) {
    return { ok: false };
  }
  for (const m of rule.matches) {
    const r = evalMatch(m, frame);
    if (!r.ok) return r;
  }
  return { ok: true };
}

interface Frame {
  readonly chain: EbChain;
  index: number;
}

/**
 * Runs `frame` through `hookChain` of `table`. Never throws: a jump to a missing chain is reported in `problems`
 * and treated as not taken; a recursion deeper than 64 chains ends with DROP decided by the hook's policy.
 */
export function evaluateEbtables(
  table: EbTable,
  hookChain: string,
  frame: EthernetFrame,
  ctx: EbEvalContext = {},
): EbEvalResult {
  const visited: EbVisitedRule[] = [];
  const events: EbEvalEvent[] = [];
  const problems: string[] = [];
  const byName = chainIndex(table);
  const hook = byName.get(hookChain);
  if (hook === undefined) {
    problems.push(`chain ${hookChain} does not exist in table ${table.name}`);
    return {
      verdict: 'ACCEPT',
      decidedBy: {
        kind: 'policy',
        chain: hookChain,
        policy: 'ACCEPT',
        origin: { kind: 'implicit', label: `missing chain ${hookChain}: frame passes` },
      },
      visited,
      events,
      problems,
    };
  }
  const basePolicy = (): EbEvalResult => {
    const verdict = hook.policy === 'DROP' ? 'DROP' : 'ACCEPT';
    return {
      verdict,
      decidedBy: { kind: 'policy', chain: hook.name, policy: hook.policy, origin: hook.policyOrigin },
      visited,
      events,
      problems,
    };
  };
  const stack: Frame[] = [{ chain: hook, index: 0 }];
  for (;;) {
    const top = stack[stack.length - 1]!;
    const rule = top.chain.rules[top.index];
    if (rule === undefined) {
      // Fell off the end of the chain.
      if (stack.length === 1) return basePolicy();
      const policy = top.chain.policy;
      if (policy === 'RETURN') {
        stack.pop();
        const caller = stack[stack.length - 1]!;
        events.push({
          kind: 'return',
          from: top.chain.name,
          to: caller.chain.name,
          toIndex: caller.index,
          reason: 'policy',
        });
        caller.index++;
        continue;
      }
      return {
        verdict: policy,
        decidedBy: { kind: 'policy', chain: top.chain.name, policy, origin: top.chain.policyOrigin },
        visited,
        events,
        problems,
      };
    }
    const outcome = ebRuleMatches(rule, frame, ctx);
    const step: EbVisitedRule =
      outcome.unsupported === undefined
        ? { chain: top.chain.name, index: top.index, rule, matched: outcome.ok }
        : { chain: top.chain.name, index: top.index, rule, matched: outcome.ok, unsupported: outcome.unsupported };
    visited.push(step);
    if (!outcome.ok) {
      top.index++;
      continue;
    }
    const t = rule.target;
    if (t.kind === 'jump') {
      const target = byName.get(t.chain);
      if (target === undefined) {
        problems.push(`${top.chain.name} rule ${top.index + 1} jumps to missing chain ${t.chain}`);
        top.index++;
        continue;
      }
      if (stack.length >= MAX_DEPTH) {
        problems.push(`jump depth exceeds ${MAX_DEPTH} at ${top.chain.name} rule ${top.index + 1} (loop?)`);
        return { ...basePolicy(), verdict: 'DROP' };
      }
      events.push({ kind: 'jump', from: top.chain.name, index: top.index, to: t.chain });
      stack.push({ chain: target, index: 0 });
      continue;
    }
    switch (t.verdict) {
      case 'ACCEPT':
      case 'DROP':
        return {
          verdict: t.verdict,
          decidedBy: { kind: 'rule', chain: top.chain.name, index: top.index, rule },
          visited,
          events,
          problems,
        };
      case 'CONTINUE':
        top.index++;
        continue;
      case 'RETURN': {
        if (stack.length === 1) return basePolicy();
        stack.pop();
        const caller = stack[stack.length - 1]!;
        events.push({
          kind: 'return',
          from: top.chain.name,
          to: caller.chain.name,
          toIndex: caller.index,
          reason: 'rule',
        });
        caller.index++;
        continue;
      }
    }
  }
}
