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
  else if (m.name.endsWith('+')) hit = hasPrefix(name, m.name, m.name.length - 1);
  else hit = name === m.name;
  return hit !== m.negated;
}

/** `name.startsWith(pattern.slice(0, n))`, without making the slice (this runs for every rule visited). */
function hasPrefix(name: string, pattern: string, n: number): boolean {
  if (name.length < n) return false;
  for (let i = 0; i < n; i++) if (name.charCodeAt(i) !== pattern.charCodeAt(i)) return false;
  return true;
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
/** The two plain outcomes, shared (not made anew per rule visited). */
const MATCH: MatchOutcome = Object.freeze({ ok: true });
const NO_MATCH: MatchOutcome = Object.freeze({ ok: false });

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
  if (frameEthertype(frame) !== ETHERTYPE_IPV4 || p.kind !== 'ipv4') return NO_MATCH;
  if (!ipMatch(m.src, p.src) || !ipMatch(m.dst, p.dst)) return NO_MATCH;
  if (!valueMatch(m.tos, p.tos) || !valueMatch(m.proto, p.protocol)) return NO_MATCH;
  if (m.sport || m.dport) {
    const withPorts = [IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP, 33];
    if (!withPorts.includes(p.protocol)) return NO_MATCH;
    const pp = ports(frame);
    if (pp === undefined) return NO_MATCH;
    if (!rangeMatch(m.sport, pp.sport) || !rangeMatch(m.dport, pp.dport)) return NO_MATCH;
  }
  return MATCH;
}

function evalArp(m: EbArpMatch, frame: EthernetFrame): MatchOutcome {
  const t = frameEthertype(frame);
  const p = frame.payload;
  if ((t !== ETHERTYPE_ARP && t !== ETHERTYPE_RARP) || p.kind !== 'arp') return NO_MATCH;
  if (!valueMatch(m.op, p.op) || !valueMatch(m.htype, p.htype) || !valueMatch(m.ptype, p.ptype)) return NO_MATCH;
  // The IP and MAC fields are only looked at for Ethernet/IPv4 ARP, which is all the frame model carries.
  if (!ipMatch(m.ipSrc, p.spa) || !ipMatch(m.ipDst, p.tpa)) return NO_MATCH;
  if (!macMatch(m.macSrc, p.sha) || !macMatch(m.macDst, p.tha)) return NO_MATCH;
  if (m.gratuitous && (p.spa === p.tpa) === m.gratuitous.negated) return NO_MATCH;
  return MATCH;
}

function evalVlan(m: EbVlanMatch, frame: EthernetFrame): MatchOutcome {
  const tag = frame.vlans[0];
  if (tag === undefined) return NO_MATCH;
  const encap = frame.vlans[1] ? (frame.vlans[1].tpid ?? 0x8100) : frame.etherType;
  return valueMatch(m.id, tag.vid) && valueMatch(m.prio, tag.pcp) && valueMatch(m.encap, encap) ? MATCH : NO_MATCH;
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
      if (frameEthertype(frame) !== ETHERTYPE_IPV6) return NO_MATCH;
      return { ok: false, unsupported: 'ip6 match on an IPv6 frame is not evaluated yet' };
    case 'stp':
      if (frame.dst !== '01:80:c2:00:00:00') return NO_MATCH;
      return { ok: false, unsupported: 'stp match on a BPDU is not evaluated yet' };
  }
}

/** Whether one rule matches a frame (target not considered). */
export function ebRuleMatches(rule: EbRule, frame: EthernetFrame, ctx: EbEvalContext = {}): MatchOutcome {
  if (rule.proto) {
    const t = frameEthertype(frame);
    const hit = rule.proto.kind === 'length' ? t < 0x0600 : t === rule.proto.value;
    if (hit === rule.proto.negated) return NO_MATCH;
  }
  if (!macMatch(rule.src, frame.src) || !macMatch(rule.dst, frame.dst)) return NO_MATCH;
  if (!ifaceMatches(rule.in, ctx.inIface) || !ifaceMatches(rule.out, ctx.outIface)) return NO_MATCH;
  if (!ifaceMatches(rule.logicalIn, ctx.logicalIn) || !ifaceMatches(rule.logicalOut, ctx.logicalOut)) {
    return NO_MATCH;
  }
  for (const m of rule.matches) {
    const r = evalMatch(m, frame);
    if (!r.ok) return r;
  }
  return MATCH;
}

interface Frame {
  readonly chain: EbChain;
  index: number;
  /** The chain's dispatch index when the walk may skip by it (summaries only). */
  readonly dispatch: Dispatch | undefined;
}

/**
 * Runs of dispatch rules in a built-in chain — libvirt's `-i vnetX -j libvirt-J-vnetX` and `-o vnetX -j …`, one per
 * port — and where each interface's rules sit in them. A dispatch rule has exactly one of `-i`/`-o`, an exact name
 * (no `+`), not negated, and no other criterion, so it matches exactly when the frame's port has that name
 * (`ebRuleMatches`): the rules of a run before the first one naming the frame's port are visited and do not match.
 */
interface Dispatch {
  /** For each rule: the end (exclusive) of the run of dispatch rules it belongs to, or -1. */
  readonly runEnd: Int32Array;
  /** Indices of dispatch rules by the `-i` / `-o` name they match, ascending. */
  readonly byIn: ReadonlyMap<string, readonly number[]>;
  readonly byOut: ReadonlyMap<string, readonly number[]>;
}

const DISPATCH = new WeakMap<EbChain, Dispatch | null>();
/** Fewer rules than this: the index would not pay for itself (it changes no outcome either way). */
const DISPATCH_MIN_RULES = 8;

function isDispatchRule(r: EbRule): boolean {
  if (r.proto !== undefined || r.src !== undefined || r.dst !== undefined) return false;
  if (r.logicalIn !== undefined || r.logicalOut !== undefined || r.matches.length > 0) return false;
  const m = r.in ?? r.out;
  if (m === undefined || (r.in !== undefined && r.out !== undefined)) return false;
  return !m.negated && !m.name.endsWith('+');
}

/** The dispatch index of a built-in chain (user chains are not indexed: their rules may be made on first read). */
function chainDispatch(chain: EbChain): Dispatch | undefined {
  if (!chain.builtin) return undefined;
  let d = DISPATCH.get(chain);
  if (d === undefined) {
    d = null;
    const rules = chain.rules;
    if (rules.length >= DISPATCH_MIN_RULES) {
      const runEnd = new Int32Array(rules.length).fill(-1);
      const byIn = new Map<string, number[]>();
      const byOut = new Map<string, number[]>();
      let any = false;
      for (let k = 0; k < rules.length; ) {
        if (!isDispatchRule(rules[k]!)) {
          k++;
          continue;
        }
        let e = k;
        while (e < rules.length && isDispatchRule(rules[e]!)) {
          const r = rules[e]!;
          const [by, name] = r.in !== undefined ? [byIn, r.in.name] : [byOut, r.out!.name];
          const list = by.get(name);
          if (list === undefined) by.set(name, [e]);
          else list.push(e);
          e++;
        }
        for (let j = k; j < e; j++) runEnd[j] = e;
        any ||= e - k > 1;
        k = e;
      }
      if (any) d = { runEnd, byIn, byOut };
    }
    DISPATCH.set(chain, d);
  }
  return d ?? undefined;
}

/** The first index in [from, end) at or after which a rule of `list` sits, or `end`. */
function firstAtOrAfter(list: readonly number[] | undefined, from: number, end: number): number {
  if (list !== undefined) for (const k of list) if (k >= from) return Math.min(k, end);
  return end;
}

/**
 * Where a summary's walk through a chain goes on from `index`: the first rule at or after it that is not a dispatch
 * rule for another port (every rule skipped is visited and does not match).
 */
function skipDispatch(d: Dispatch, index: number, ctx: EbEvalContext): number {
  const end = d.runEnd[index]!;
  if (end < 0) return index;
  const i = ctx.inIface === undefined ? end : firstAtOrAfter(d.byIn.get(ctx.inIface), index, end);
  const o = ctx.outIface === undefined ? end : firstAtOrAfter(d.byOut.get(ctx.outIface), index, end);
  return Math.min(i, o);
}

/**
 * What a trace step needs of an evaluation: the outcome and the jumps, and how many rules were visited and whether
 * any matched — without a record of each rule visited (an ARP broadcast on a large segment evaluates every port's
 * chains; recording each visited rule made most of its garbage).
 */
export interface EbEvalSummary {
  readonly verdict: 'ACCEPT' | 'DROP';
  readonly decidedBy: EbDecision;
  readonly events: readonly EbEvalEvent[];
  readonly problems: readonly string[];
  /** How many rules were visited (`visited.length` of the full evaluation). */
  readonly visitedCount: number;
  /** Whether any visited rule matched. */
  readonly anyMatched: boolean;
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
  const r = run(table, hookChain, frame, ctx, visited);
  return { verdict: r.verdict, decidedBy: r.decidedBy, visited, events: r.events, problems: r.problems };
}

/** `evaluateEbtables` without the record of each visited rule: the same traversal, the same outcome. */
export function summarizeEbtables(
  table: EbTable,
  hookChain: string,
  frame: EthernetFrame,
  ctx: EbEvalContext = {},
): EbEvalSummary {
  return run(table, hookChain, frame, ctx, undefined);
}

/** The one traversal of both: `visited`, when given, receives each rule visited. */
function run(
  table: EbTable,
  hookChain: string,
  frame: EthernetFrame,
  ctx: EbEvalContext,
  visited: EbVisitedRule[] | undefined,
): EbEvalSummary {
  let visitedCount = 0;
  let anyMatched = false;
  const events: EbEvalEvent[] = [];
  const problems: string[] = [];
  const byName = chainIndex(table);
  const hook = byName.get(hookChain);
  const result = (verdict: 'ACCEPT' | 'DROP', decidedBy: EbDecision): EbEvalSummary => ({
    verdict,
    decidedBy,
    events,
    problems,
    visitedCount,
    anyMatched,
  });
  if (hook === undefined) {
    problems.push(`chain ${hookChain} does not exist in table ${table.name}`);
    return result('ACCEPT', {
      kind: 'policy',
      chain: hookChain,
      policy: 'ACCEPT',
      origin: { kind: 'implicit', label: `missing chain ${hookChain}: frame passes` },
    });
  }
  const basePolicy = (verdict: 'ACCEPT' | 'DROP' = hook.policy === 'DROP' ? 'DROP' : 'ACCEPT'): EbEvalSummary =>
    result(verdict, { kind: 'policy', chain: hook.name, policy: hook.policy, origin: hook.policyOrigin });
  // Without a record of each visited rule, runs of dispatch rules for other ports are counted, not evaluated.
  const skip = visited === undefined;
  const stack: Frame[] = [{ chain: hook, index: 0, dispatch: skip ? chainDispatch(hook) : undefined }];
  for (;;) {
    const top = stack[stack.length - 1]!;
    if (top.dispatch !== undefined) {
      const to = skipDispatch(top.dispatch, top.index, ctx);
      visitedCount += to - top.index;
      top.index = to;
    }
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
      return result(policy, { kind: 'policy', chain: top.chain.name, policy, origin: top.chain.policyOrigin });
    }
    const outcome = ebRuleMatches(rule, frame, ctx);
    visitedCount++;
    if (outcome.ok) anyMatched = true;
    if (visited !== undefined)
      visited.push(
        outcome.unsupported === undefined
          ? { chain: top.chain.name, index: top.index, rule, matched: outcome.ok }
          : { chain: top.chain.name, index: top.index, rule, matched: outcome.ok, unsupported: outcome.unsupported },
      );
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
        return basePolicy('DROP');
      }
      events.push({ kind: 'jump', from: top.chain.name, index: top.index, to: t.chain });
      stack.push({ chain: target, index: 0, dispatch: skip ? chainDispatch(target) : undefined });
      continue;
    }
    switch (t.verdict) {
      case 'ACCEPT':
      case 'DROP':
        return result(t.verdict, { kind: 'rule', chain: top.chain.name, index: top.index, rule });
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
