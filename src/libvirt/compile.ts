/**
 * The nwfilter compiler: a binding (port, MAC, filter, parameters) and a filter registry → the ebtables `nat` rules
 * libvirt 9.0 installs for that port, following `ebiptablesApplyNewRules` (see the fact sheet §3.3):
 *
 * 1. flatten the filter tree depth-first in document order (inner `<filterref>` parameters are overridden by the
 *    caller's variables; `MAC` is added from the binding when not given);
 * 2. stable-sort the rule instances: `root`-chain rules first, then by priority (non-root rules are bumped up to
 *    their chain priority);
 * 3. walk them, creating each sub-chain (and the jump to it from the root chain) just before the first rule whose
 *    priority is ≥ the chain priority, emitting each rule per variable combination (I copy, then O copy; the I copy
 *    of an `inout` rule has source and destination swapped);
 * 4. link the root chains from PREROUTING/POSTROUTING.
 *
 * When `IP` is the only unresolvable variable, libvirt starts IP-address learning instead and installs its basic
 * rules. Rules for iptables/ip6tables protocols are reported as unsupported for now.
 */
import { IPV4_ANY, parseIpv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import {
  defaultUserChainPolicy,
  EB_BUILTIN_CHAINS,
  type EbChain,
  type EbIfaceMatch,
  type EbMacMatch,
  type EbMatch,
  type EbPolicy,
  type EbProtoMatch,
  type EbRule,
  type EbStyle,
  type EbTable,
  type EbTarget,
  jump,
  RULES_ONCE,
  SHARED_BODY,
} from '../netfilter/ebtables-model.ts';
import type { IptFamily, IptTable } from '../netfilter/iptables-model.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit, type Origin } from '../source/origin.ts';
import { type EbTranslation, type TypedAttr, translateEbtablesRule, typeAttrs } from './ebtables-translate.ts';
import { compileIptablesFamily, emptyIptTable, IptTableBuilder } from './iptables-compile.ts';
import { attributeDatatype, convertValue, type NwDatatype, type NwValue } from './nwfilter-attrs.ts';
import {
  type EthernetProtocol,
  isEthernetProtocol,
  type NwFilter,
  type NwFilterBinding,
  type NwRule,
} from './nwfilter-model.ts';
import {
  missingAccess,
  ruleCombinationSources,
  ruleCombinations,
  ruleVarAccesses,
  type VarScope,
} from './variables.ts';

export interface CompileOptions {
  /**
   * Listing/semantics convention for the user chains libvirt creates with a plain `-N`: `nft` (default) gives them
   * policy RETURN, `legacy` ACCEPT.
   */
  readonly style?: EbStyle;
  /** IPv4 addresses libvirt has already learned for this port (used for `IP` when the binding gives none). */
  readonly learnedIps?: readonly string[];
  /**
   * Whether the iptables/ip6tables tables include libvirt's global chains (`libvirt-in`, `libvirt-out`,
   * `libvirt-in-post`, `libvirt-host-in` and their FORWARD/INPUT hooks) even when this binding has no rule of that
   * family. libvirt creates them with the first iptables rule of any binding and never removes them, so a host that
   * ever instantiated such a filter has them (default true). With false they appear only when this binding needs them.
   */
  readonly libvirtBaseChains?: boolean;
  /** Whether to produce libvirt's command list (`commands`); default true. Off is faster for bulk compiles. */
  readonly commands?: boolean;
}

/** Per-rule caches: literal attributes convert and translate the same way for every binding. */
/**
 * Entries per rule: values shared by many ports (literals, common parameters) are met first and stay; once full,
 * port-specific values (each port's MAC and IP) are translated without being kept, so memory stays bounded.
 */
const CACHE_LIMIT = 256;

/** One value combination of a rule: its typed attributes and (lazily) its two ebtables translations. */
interface TypedEntry {
  readonly attrs: Map<string, TypedAttr>;
  readonly errors: readonly string[];
  forward?: EbTranslation | undefined;
  reverse?: EbTranslation | undefined;
}
const typedCache = new WeakMap<NwRule, Map<string, TypedEntry>>();

function comboKey(combo: ReadonlyMap<string, string>): string {
  let k = '';
  for (const [a, v] of combo) k += `${a}\u0000${v}\u0001`;
  return k;
}

function cachedTyped(rule: NwRule, combo: ReadonlyMap<string, string>): TypedEntry {
  let m = typedCache.get(rule);
  if (m === undefined) {
    m = new Map();
    typedCache.set(rule, m);
  }
  const key = comboKey(combo);
  let t = m.get(key);
  if (t === undefined) {
    const negation = new Map([...rule.attrs].map(([k, v]) => [k, v.negated]));
    const typed = typeAttrs(rule.protocol, combo, negation);
    t = { attrs: typed.attrs, errors: typed.errors };
    if (m.size < CACHE_LIMIT) m.set(key, t);
  }
  return t;
}

function cachedEb(rule: NwRule, entry: TypedEntry, reverse: boolean) {
  if (reverse) {
    entry.reverse ??= translateEbtablesRule(rule.protocol as EthernetProtocol | 'none', entry.attrs, rule.action, true);
    return entry.reverse;
  }
  entry.forward ??= translateEbtablesRule(rule.protocol as EthernetProtocol | 'none', entry.attrs, rule.action, false);
  return entry.forward;
}

/**
 * `{ ...o, via }` with the same keys in the same order, built as a literal (performance: V8 gives each spread copy
 * its own hidden class, which costs time and memory when a compile makes thousands of them).
 */
const originShape = new WeakMap<Origin, number>();
const SHAPES = [
  'kind,label',
  'kind,label,pos',
  'kind,label,data',
  'kind,label,pos,data',
  'kind,label,data,pos',
  'kind,label,via,data',
  'kind,label,pos,via,data',
];
export function originVia(o: Origin, via: Origin): Origin {
  return originViaShape(o, originShapeOf(o), via);
}

function originShapeOf(o: Origin): number {
  let shape = originShape.get(o);
  if (shape === undefined) {
    shape = SHAPES.indexOf(Object.keys(o).join(','));
    originShape.set(o, shape);
  }
  return shape;
}

function originViaShape(o: Origin, shape: number, via: Origin): Origin {
  switch (shape) {
    case 0:
      return { kind: o.kind, label: o.label, via };
    case 1:
      return { kind: o.kind, label: o.label, pos: o.pos!, via };
    case 2:
      return { kind: o.kind, label: o.label, data: o.data!, via };
    case 3:
      return { kind: o.kind, label: o.label, pos: o.pos!, data: o.data!, via };
    case 4:
      return { kind: o.kind, label: o.label, data: o.data!, pos: o.pos!, via };
    // nwfilter rules and filterrefs: `via` is the definition, replaced in place.
    case 5:
      return { kind: o.kind, label: o.label, via, data: o.data! };
    case 6:
      return { kind: o.kind, label: o.label, pos: o.pos!, via, data: o.data! };
    default:
      return { ...o, via };
  }
}

/**
 * The model rule of a translation (or of a planned rule, as plain data): keys proto, src, dst (when set), matches,
 * target, origin, as object literals (performance: each shape gets exactly its properties in the object, no separate
 * property store).
 */
function ebRule(t: Pick<EbRule, 'proto' | 'src' | 'dst' | 'matches' | 'target'>, origin: Origin): EbRule {
  const { proto, src, dst, matches, target } = t;
  if (proto) {
    if (src) return dst ? { proto, src, dst, matches, target, origin } : { proto, src, matches, target, origin };
    return dst ? { proto, dst, matches, target, origin } : { proto, matches, target, origin };
  }
  if (src) return dst ? { src, dst, matches, target, origin } : { src, matches, target, origin };
  return dst ? { dst, matches, target, origin } : { matches, target, origin };
}

/** `{ ...implicit(label, data), via }` as a literal. */
function implicitVia(label: string, data: Origin['data'] | undefined, via: Origin): Origin {
  return data === undefined ? { kind: 'implicit', label, via } : { kind: 'implicit', label, data, via };
}

/** A rule instance after flattening: the rule, its filter, the variables in scope and its origin chain. */
export interface RuleInstance {
  readonly rule: NwRule;
  readonly filter: NwFilter;
  readonly chain: string;
  readonly chainPriority: number;
  /**
   * The rule's priority bumped to its chain priority for non-root rules: used to decide when a sub-chain is created
   * (instances are sorted by their own priority, root-chain rules first — verified against libvirt 9.0).
   */
  readonly priority: number;
  readonly scope: VarScope;
  /** rule ← filter ← filterref ← … ← binding/interface. */
  readonly origin: Origin;
  /** The filter's origin with its `via` chain (for sub-chain jumps). */
  readonly filterOrigin: Origin;
}

export type CompileMode =
  /** The filter was instantiated. */
  | 'filter'
  /** `IP` is missing and CTRL_IP_LEARNING=any: libvirt's basic learning rules are installed. */
  | 'ip-learning'
  /** `IP` is missing and CTRL_IP_LEARNING=dhcp: DHCP-only rules are installed. */
  | 'dhcp-learning'
  /** libvirt refuses the binding; nothing is installed. */
  | 'failed';

export interface CompiledBinding {
  readonly binding: NwFilterBinding;
  readonly mode: CompileMode;
  /** The nat table with only this binding's chains (and the built-in chains with its hook rules). */
  readonly nat: EbTable;
  /** The commands libvirt runs for this binding (ebtables in full; iptables/ip6tables only where fixed). */
  readonly commands: readonly string[];
  readonly instances: readonly RuleInstance[];
  /** Rule instances of layer-3/4 protocols (compiled into `filter4`/`filter6`). */
  readonly ipInstances: readonly RuleInstance[];
  /** The iptables filter table: libvirt's global chains and this binding's FI-/FO-/HI- chains. */
  readonly filter4: IptTable;
  /** The ip6tables filter table. */
  readonly filter6: IptTable;
  /** libvirt's reason when it refuses the binding (mode `failed`). */
  readonly failure?: string;
  readonly issues: readonly Issue[];
}

const EB = 'ebtables --concurrent -t nat';

function quote(arg: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function cmd(prefix: string, args: readonly string[]): string {
  return `${prefix} ${args.map(quote).join(' ')}`;
}

/** The ethertype match of the jump into a sub-chain, by chain-name prefix. */
function jumpMatch(chain: string): { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> } {
  // Performance: the same (readonly) match for every port.
  let m = jumpMatchCache.get(chain);
  if (m === undefined) {
    m = computeJumpMatch(chain);
    jumpMatchCache.set(chain, m);
  }
  return m;
}
const jumpMatchCache = new Map<string, { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> }>();

function computeJumpMatch(chain: string): { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> } {
  const et = (n: number) => ({
    argv: ['-p', `0x${n.toString(16).padStart(4, '0')}`],
    rule: { proto: { kind: 'ethertype' as const, value: n, negated: false } },
  });
  if (chain.startsWith('mac')) return { argv: [], rule: {} };
  if (chain.startsWith('stp')) {
    return { argv: ['-d', '01:80:c2:00:00:00'], rule: { dst: { addr: '01:80:c2:00:00:00' as Mac, negated: false } } };
  }
  if (chain.startsWith('vlan')) return et(0x8100);
  if (chain.startsWith('ipv4')) return et(0x0800);
  if (chain.startsWith('ipv6')) return et(0x86dd);
  if (chain.startsWith('rarp')) return et(0x8035);
  return et(0x0806);
}

function iptablesTeardown(tool: string, ifn: string, temp: boolean): string[] {
  const [fo, fi, hi] = temp ? ['FP', 'FJ', 'HJ'] : ['FO', 'FI', 'HI'];
  const p = `${tool} -w`;
  const out = [
    `${p} -D libvirt-out -m physdev --physdev-is-bridged --physdev-out ${ifn} -g ${fo}-${ifn}`,
    `${p} -D libvirt-out -m physdev --physdev-out ${ifn} -g ${fo}-${ifn}`,
    `${p} -D libvirt-in -m physdev --physdev-in ${ifn} -g ${fi}-${ifn}`,
    `${p} -D libvirt-host-in -m physdev --physdev-in ${ifn} -g ${hi}-${ifn}`,
  ];
  if (!temp) out.push(`${p} -D libvirt-in-post -m physdev --physdev-in ${ifn} -j ACCEPT`);
  for (const c of [fo, fi, hi]) out.push(`${p} -F ${c}-${ifn}`, `${p} -X ${c}-${ifn}`);
  return out;
}

function ebtablesTeardown(ifn: string, temp: boolean): string[] {
  const [i, o] = temp ? ['J', 'P'] : ['I', 'O'];
  return [
    `${EB} -D PREROUTING -i ${ifn} -j libvirt-${i}-${ifn}`,
    `${EB} -D POSTROUTING -o ${ifn} -j libvirt-${o}-${ifn}`,
    `${EB} -L libvirt-${i}-${ifn}`,
    `${EB} -L libvirt-${o}-${ifn}`,
    `${EB} -F libvirt-${i}-${ifn}`,
    `${EB} -X libvirt-${i}-${ifn}`,
    `${EB} -F libvirt-${o}-${ifn}`,
    `${EB} -X libvirt-${o}-${ifn}`,
  ];
}

/** `allTeardown`: what libvirt runs before installing learning-phase rules. */
function allTeardown(ifn: string): string[] {
  return [
    ...iptablesTeardown('iptables', ifn, true),
    ...iptablesTeardown('ip6tables', ifn, true),
    ...ebtablesTeardown(ifn, true),
    ...iptablesTeardown('iptables', ifn, false),
    ...iptablesTeardown('ip6tables', ifn, false),
    ...ebtablesTeardown(ifn, false),
  ];
}

/** The built-in chains' origins, the same for every port (performance: made once, shared as readonly data). */
const builtinOriginCache = new Map<string, { policyOrigin: Origin; origin: Origin }>();
function builtinOrigins(name: string): { policyOrigin: Origin; origin: Origin } {
  let o = builtinOriginCache.get(name);
  if (o === undefined) {
    o = {
      policyOrigin: implicit(`ebtables nat ${name} default policy ACCEPT`),
      origin: implicit(`ebtables nat built-in chain ${name}`, { table: 'nat', chain: name }),
    };
    builtinOriginCache.set(name, o);
  }
  return o;
}

/**
 * Why a user chain libvirt creates has its policy. The same for every chain of a style (performance: one shared,
 * readonly origin instead of one per chain; the chain is the one it is found on).
 */
function userPolicyOrigin(policy: EbPolicy, style: EbStyle): Origin {
  const key = `${style}${policy}`;
  let o = policyOrigins.get(key);
  if (o === undefined) {
    o = implicit(
      style === 'nft'
        ? `user chain created with plain -N: ebtables-nft policy ${policy}`
        : `user chain created with plain -N: ebtables-legacy default policy ${policy}`,
      { policy },
    );
    policyOrigins.set(key, o);
  }
  return o;
}
const policyOrigins = new Map<string, Origin>();

class TableBuilder {
  readonly chains: { name: string; rules: EbRule[]; chain: Omit<EbChain, 'rules'> }[] = [];
  /** The first chain of each name (as a search of `chains` would find). */
  private readonly byName = new Map<string, { name: string; rules: EbRule[]; chain: Omit<EbChain, 'rules'> }>();
  private push(c: { name: string; rules: EbRule[]; chain: Omit<EbChain, 'rules'> }): void {
    this.chains.push(c);
    if (!this.byName.has(c.name)) this.byName.set(c.name, c);
  }
  constructor() {
    for (const name of EB_BUILTIN_CHAINS.nat) {
      const o = builtinOrigins(name);
      this.push({
        name,
        rules: [],
        chain: { name, builtin: true, policy: 'ACCEPT', policyOrigin: o.policyOrigin, origin: o.origin },
      });
    }
  }
  addChain(name: string, policy: EbPolicy, style: EbStyle, origin: Origin): void {
    this.push({
      name,
      rules: [],
      chain: { name, builtin: false, policy, policyOrigin: userPolicyOrigin(policy, style), origin },
    });
  }
  append(chain: string, rule: EbRule): void {
    const c = this.byName.get(chain);
    if (c === undefined) throw new Error(`internal: chain ${chain} not created`);
    c.rules.push(rule);
  }
  build(): EbTable {
    return {
      name: 'nat',
      chains: this.chains.map(({ chain: c, rules }) =>
        // Same keys in the same order as `{ ...c.chain, rules }` (see `originVia` for why).
        ({ name: c.name, builtin: c.builtin, policy: c.policy, policyOrigin: c.policyOrigin, origin: c.origin, rules }),
      ),
    };
  }
}

/**
 * The filter tree flattened once, independent of the binding's origin: one node per origin link (filter visit,
 * `<filterref>`, rule) with its parent link (−1: the binding), so the origin chains are made per binding by
 * `materialize`.
 */
interface FlatNode {
  readonly base: Origin;
  readonly parent: number;
}
interface FlatInstance {
  readonly rule: NwRule;
  readonly filter: NwFilter;
  readonly chain: string;
  readonly chainPriority: number;
  readonly priority: number;
  readonly scope: VarScope;
  readonly node: number;
  readonly filterNode: number;
}

function flattenTree(
  filter: NwFilter,
  scope: VarScope,
  parent: number,
  registry: ReadonlyMap<string, NwFilter>,
  stack: readonly string[],
  nodes: FlatNode[],
  out: FlatInstance[],
  issues: Issue[],
): void {
  const filterNode = nodes.push({ base: filter.origin, parent }) - 1;
  for (const e of filter.entries) {
    const node = nodes.push({ base: e.origin, parent: filterNode }) - 1;
    if (e.kind === 'rule') {
      const bumped = filter.chain !== 'root' && filter.priority > e.priority ? filter.priority : e.priority;
      out.push({
        rule: e,
        filter,
        chain: filter.chain,
        chainPriority: filter.priority,
        priority: bumped,
        scope,
        node,
        filterNode,
      });
      continue;
    }
    if (stack.includes(e.filter)) {
      issues.push(
        issue(
          'nwfilter-loop',
          `filter '${e.filter}' would introduce a loop (${[...stack, e.filter].join(' → ')})`,
          e.origin.pos,
        ),
      );
      continue;
    }
    const target = registry.get(e.filter);
    if (target === undefined) {
      issues.push(issue('nwfilter-missing', `referenced filter '${e.filter}' is missing`, e.origin.pos));
      continue;
    }
    // The caller's variables override the parameters written on the inner <filterref>.
    const inner = new Map<string, readonly string[]>(e.params);
    for (const [k, v] of scope) inner.set(k, v);
    flattenTree(target, inner, node, registry, [...stack, e.filter], nodes, out, issues);
  }
}

/** The origin chains of a flattened tree for one binding (rule ← filter ← filterref ← … ← `via`). */
function materialize(nodes: readonly FlatNode[], via: Origin, shapes?: readonly number[]): Origin[] {
  const out: Origin[] = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const v = n.parent < 0 ? via : out[n.parent]!;
    out[i] = shapes ? originViaShape(n.base, shapes[i]!, v) : originVia(n.base, v);
  }
  return out;
}

function ruleInstances(flat: readonly FlatInstance[], origins: readonly Origin[]): RuleInstance[] {
  return flat.map((f) => ({
    rule: f.rule,
    filter: f.filter,
    chain: f.chain,
    chainPriority: f.chainPriority,
    priority: f.priority,
    scope: f.scope,
    origin: origins[f.node]!,
    filterOrigin: origins[f.filterNode]!,
  }));
}

/**
 * libvirt's `virNWFilterPrintVars`: the missing names joined by `, ` (a separator only after something was printed,
 * so the empty name of a lone `$` shows only as a stray separator), `IP` left out unless it is the only one missing
 * with `CTRL_IP_LEARNING=none`. libvirt lists them in its hash table's order, which is seeded at random per daemon
 * (verified: `V5, V4` and `V4, V5` from two daemons); lvsdoctor lists them in the order they are first referenced.
 */
function unresolvableMessage(missing: readonly string[], scope: VarScope): string {
  const learning = (scope.get('CTRL_IP_LEARNING')?.[0] ?? 'any').toLowerCase();
  const reportIP = missing.length === 1 && missing[0] === 'IP' && learning === 'none';
  let names = '';
  for (const m of missing) {
    if (m === 'IP' && !reportIP) continue;
    if (names.length > 0) names += ', ';
    names += m;
  }
  return `Cannot instantiate filter due to unresolvable variables or unavailable list elements: ${names}`;
}

function stableSort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  return items
    .map((item, i) => ({ item, i }))
    .sort((a, b) => cmp(a.item, b.item) || a.i - b.i)
    .map((x) => x.item);
}

/**
 * The sub-chains libvirt creates for a port, in creation order: one per chain name and direction set (`I` for rules
 * `out`/`inout`, `O` for `in`/`inout`), in the order their first rules were flattened; filters sharing a chain name
 * with different chain priorities give it the priority of the last rule in sorted order (libvirt's chain table is
 * updated per rule; found by the differential test, case-928895060-47; rules reaching the sub-chain before it is
 * created make ebtables fail); then stably sorted by priority, `I` set before `O` set on ties. `make` builds a sub-chain of each compile path.
 */
function subChainsToCreate<
  R extends { readonly chain: string; readonly chainPriority: number; readonly rule: NwRule },
  S extends SubChainOf,
>(flattened: readonly R[], sorted: readonly R[], make: (dir: 'I' | 'O', r: R) => S): S[] {
  const inSet: S[] = [];
  const outSet: S[] = [];
  for (const r of flattened) {
    if (r.chain === 'root') continue;
    const d = r.rule.direction;
    if ((d === 'out' || d === 'inout') && !inSet.some((s) => s.chain === r.chain)) inSet.push(make('I', r));
    if ((d === 'in' || d === 'inout') && !outSet.some((s) => s.chain === r.chain)) outSet.push(make('O', r));
  }
  for (const r of sorted) {
    if (r.chain === 'root') continue;
    const d = r.rule.direction;
    const set = (subs: S[]) => {
      const i = subs.findIndex((x) => x.chain === r.chain);
      if (i >= 0 && subs[i]!.priority !== r.chainPriority) subs[i] = { ...subs[i]!, priority: r.chainPriority };
    };
    if (d === 'out' || d === 'inout') set(inSet);
    if (d === 'in' || d === 'inout') set(outSet);
  }
  const byPriority = (a: S, b: S) => a.priority - b.priority;
  return stableSort([...stableSort(inSet, byPriority), ...stableSort(outSet, byPriority)], byPriority);
}

/** Compiles one binding against a registry of filters (built-ins overridden by custom ones). */
export function compileBinding(
  binding: NwFilterBinding,
  registry: ReadonlyMap<string, NwFilter>,
  options: CompileOptions = {},
): CompiledBinding {
  const style = options.style ?? 'nft';
  const userPolicy = defaultUserChainPolicy(style);
  const ifn = binding.portdev;
  const issues: Issue[] = [];
  const at = binding.origin.pos;
  const table = new TableBuilder();
  const base = options.libvirtBaseChains ?? true;
  const failureOf = () => issues.find((i) => i.severity === 'error')?.message;
  const empty = (mode: CompileMode, instances: RuleInstance[] = []): CompiledBinding => {
    const f = mode === 'failed' ? failureOf() : undefined;
    return {
      binding,
      mode,
      nat: table.build(),
      commands: [],
      instances,
      ipInstances: [],
      filter4: emptyIptTable('ipv4', base),
      filter6: emptyIptTable('ipv6', base),
      ...(f !== undefined ? { failure: f } : {}),
      issues,
    };
  };

  const top = registry.get(binding.filter);
  if (top === undefined) {
    issues.push(issue('nwfilter-missing', `referenced filter '${binding.filter}' is missing`, at));
    return empty('failed');
  }
  const scope = new Map<string, readonly string[]>(binding.params);
  if (!scope.has('MAC')) scope.set('MAC', [binding.mac]);
  if (!scope.has('IP') && options.learnedIps && options.learnedIps.length > 0) scope.set('IP', options.learnedIps);

  const nodes: FlatNode[] = [];
  const flat: FlatInstance[] = [];
  flattenTree(top, scope, -1, registry, [top.name], nodes, flat, issues);
  const instances = ruleInstances(flat, materialize(nodes, binding.origin));
  if (issues.some((i) => i.severity === 'error')) return empty('failed', instances);

  // Missing variables (per scope).
  const missing: string[] = [];
  for (const inst of instances) {
    for (const { access } of ruleVarAccesses(inst.rule)) {
      const m = missingAccess(access, inst.scope);
      if (m !== undefined && !missing.includes(m)) missing.push(m);
    }
  }
  if (missing.length === 1 && missing[0] === 'IP') {
    const value = scope.get('CTRL_IP_LEARNING')?.[0] ?? 'any';
    const learning = value.toLowerCase();
    const ipt = { filter4: emptyIptTable('ipv4', base), filter6: emptyIptTable('ipv6', base) };
    if (learning === 'any') return { ...learningRules(binding, instances, issues, table, userPolicy, style), ...ipt };
    if (learning === 'dhcp') return { ...dhcpRules(binding, instances, issues, table, userPolicy, style), ...ipt };
    // Checked only when the address is to be learned (verified with libvirt 9.0: with IP given, any value passes).
    if (learning !== 'none') {
      issues.push(
        issue(
          'nwfilter-learning-value',
          `failed to parse configuration file filter '${binding.filter}' learning value '${value}' invalid.`,
          at,
        ),
      );
      return empty('failed', instances);
    }
  }
  if (missing.length > 0) {
    issues.push(issue('nwfilter-unresolvable', unresolvableMessage(missing, scope), at));
    return empty('failed', instances);
  }

  // Value combinations and typed attributes per instance.
  interface Prepared {
    readonly inst: RuleInstance;
    readonly combos: ReadonlyMap<string, TypedAttr>[];
    readonly entries: TypedEntry[];
  }
  const prepared: Prepared[] = [];
  const ipPrepared: Prepared[] = [];
  const ipInstances: RuleInstance[] = [];
  for (const inst of instances) {
    const c = ruleCombinations(inst.rule, inst.scope);
    if (!c.ok) {
      issues.push(issue('nwfilter-cardinality', c.error, inst.rule.origin.pos ?? at));
      return empty('failed', instances);
    }
    const typed = [];
    const entries: TypedEntry[] = [];
    for (const combo of c.combos) {
      const t = cachedTyped(inst.rule, combo);
      entries.push(t);
      for (const e of t.errors) issues.push(issue('nwfilter-bad-value', e, inst.rule.origin.pos ?? at));
      if (t.errors.length > 0) return empty('failed', instances);
      typed.push(t.attrs);
    }
    if (inst.rule.protocol === 'stp' && inst.rule.direction === 'inout' && inst.rule.attrs.has('srcmacaddr')) {
      issues.push(
        issue(
          'nwfilter-stp-inout',
          'STP filtering in inout direction with source MAC address set is not supported',
          inst.rule.origin.pos ?? at,
        ),
      );
      return empty('failed', instances);
    }
    if (isEthernetProtocol(inst.rule.protocol)) prepared.push({ inst, combos: typed, entries });
    else {
      ipInstances.push(inst);
      ipPrepared.push({ inst, combos: typed, entries });
    }
  }

  const sorted = stableSort(prepared, (a, b) => {
    const ra = a.inst.chain === 'root' ? 0 : 1;
    const rb = b.inst.chain === 'root' ? 0 : 1;
    return ra - rb || a.inst.rule.priority - b.inst.rule.priority;
  });

  // Sub-chains per direction set.
  interface Sub extends SubChainOf {
    readonly origin: Origin;
  }
  const pending = subChainsToCreate<RuleInstance, Sub>(
    prepared.map((p) => p.inst),
    sorted.map((p) => p.inst),
    (dir, inst) => ({ dir, chain: inst.chain, priority: inst.chainPriority, origin: inst.filterOrigin }),
  );
  const hasI = prepared.some((p) => p.inst.rule.direction !== 'in');
  const hasO = prepared.some((p) => p.inst.rule.direction !== 'out');

  const rootName = (d: 'I' | 'O') => `libvirt-${d}-${ifn}`;
  const tempRoot = (d: 'I' | 'O') => `libvirt-${d === 'I' ? 'J' : 'P'}-${ifn}`;
  const subName = (d: 'I' | 'O', c: string) => `${d}-${ifn}-${c}`;
  const tempSub = (d: 'I' | 'O', c: string) => `${d === 'I' ? 'J' : 'P'}-${ifn}-${c}`;

  const wantCommands = options.commands ?? true;
  let ebFailure: string | undefined;
  const commands: string[] = wantCommands ? [...ebtablesTeardown(ifn, true)] : [];
  const rootOrigin = (d: 'I' | 'O'): Origin => rootChainOrigin(binding, d);
  if (hasI) {
    table.addChain(rootName('I'), userPolicy, style, rootOrigin('I'));
    commands.push(`${EB} -N ${tempRoot('I')}`);
  }
  if (hasO) {
    table.addChain(rootName('O'), userPolicy, style, rootOrigin('O'));
    commands.push(`${EB} -N ${tempRoot('O')}`);
  }
  const created: Sub[] = [];
  const createSub = (s: Sub) => {
    const name = subName(s.dir, s.chain);
    const temp = tempSub(s.dir, s.chain);
    const origin = subChainOrigin(ifn, s, s.origin);
    table.addChain(name, userPolicy, style, origin);
    if (wantCommands) commands.push(`${EB} -F ${temp}`, `${EB} -X ${temp}`, `${EB} -N ${temp}`);
    const jm = jumpMatch(s.chain);
    if (wantCommands) commands.push(cmd(`${EB} -A ${tempRoot(s.dir)}`, [...jm.argv, '-j', temp]));
    const target = { kind: 'jump' as const, chain: name };
    const jumpOrigin = jumpOriginOf(ifn, s, s.origin);
    // Same keys in the same order as `{ ...jm.rule, matches, target, origin }`.
    table.append(
      rootName(s.dir),
      jm.rule.proto
        ? { proto: jm.rule.proto, matches: [], target, origin: jumpOrigin }
        : jm.rule.dst
          ? { dst: jm.rule.dst, matches: [], target, origin: jumpOrigin }
          : { matches: [], target, origin: jumpOrigin },
    );
    created.push(s);
  };

  // Performance: chain names per (direction, chain) computed once per binding.
  const chainNames = new Map<string, string>();
  const chainName = (dir: 'I' | 'O', c: string): string => {
    const k = `${dir}${c}`;
    let n = chainNames.get(k);
    if (n === undefined) {
      n = c === 'root' ? rootName(dir) : subName(dir, c);
      chainNames.set(k, n);
    }
    return n;
  };
  const emit = (inst: RuleInstance, entry: TypedEntry, dir: 'I' | 'O', reverse: boolean) => {
    const t = cachedEb(inst.rule, entry, reverse);
    if (ebFailure !== undefined) return;
    if (t.refused) {
      // ebtables refuses the rule; libvirt reports the failing command and refuses the binding.
      const temp = inst.chain === 'root' ? tempRoot(dir) : tempSub(dir, inst.chain);
      const why =
        t.refused.kind === 'parse'
          ? t.refused.message
          : `ebtables v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain ${temp}`;
      ebFailure = `internal error: Failed to apply firewall rules /usr/sbin/ebtables --concurrent -t nat -A ${temp} ${t.argv.map(quote).join(' ')}: ${why}`;
      return;
    }
    if (inst.chain !== 'root' && !created.some((x) => x.dir === dir && x.chain === inst.chain)) {
      const temp = tempSub(dir, inst.chain);
      ebFailure = `internal error: Failed to apply firewall rules /usr/sbin/ebtables --concurrent -t nat -A ${temp} ${t.argv.map(quote).join(' ')}: ebtables: No chain/target/match by that name`;
      return;
    }
    const chain = chainName(dir, inst.chain);
    if (wantCommands) {
      const temp = inst.chain === 'root' ? tempRoot(dir) : tempSub(dir, inst.chain);
      commands.push(cmd(`${EB} -A ${temp}`, t.argv));
    }
    table.append(chain, ebRule(t, inst.origin));
  };
  for (const p of sorted) {
    const { inst } = p;
    while (pending.length > 0 && pending[0]!.priority <= inst.priority) createSub(pending.shift()!);
    const d = inst.rule.direction;
    for (let k = 0; k < p.combos.length; k++) {
      const entry = p.entries[k]!;
      if (d === 'out' || d === 'inout') emit(inst, entry, 'I', d === 'inout');
      if (d === 'in' || d === 'inout') emit(inst, entry, 'O', false);
    }
  }
  while (pending.length > 0) createSub(pending.shift()!);
  if (ebFailure !== undefined) {
    issues.push(issue('nwfilter-ebtables-failed', ebFailure, binding.origin.pos));
    return {
      binding,
      mode: 'failed',
      nat: new TableBuilder().build(),
      commands,
      instances,
      ipInstances,
      filter4: emptyIptTable('ipv4', base),
      filter6: emptyIptTable('ipv6', base),
      failure: ebFailure,
      issues,
    };
  }

  // iptables, then ip6tables, in the same sorted instance order.
  const ipSorted = stableSort(ipPrepared, (a, b) => {
    const ra = a.inst.chain === 'root' ? 0 : 1;
    const rb = b.inst.chain === 'root' ? 0 : 1;
    return ra - rb || a.inst.rule.priority - b.inst.rule.priority;
  }).map((p) => ({ rule: p.inst.rule, origin: p.inst.origin, combos: p.combos }));
  const t4 = new IptTableBuilder('ipv4');
  const t6 = new IptTableBuilder('ipv6');
  // Performance: without layer-3/4 rules both tables are the (shared) empty ones and there is nothing to compile.
  const noIp = ipSorted.length === 0;
  if (base && !noIp) {
    t4.addBaseChains();
    t6.addBaseChains();
  }
  for (const [family, tb] of noIp
    ? []
    : ([
        ['ipv4', t4],
        ['ipv6', t6],
      ] as const)) {
    const r = compileIptablesFamily(family, ifn, ipSorted, tb, binding.origin);
    commands.push(...r.commands);
    if (r.failure !== undefined) {
      issues.push(issue('nwfilter-iptables-failed', r.failure, binding.origin.pos));
      const failedTable = new TableBuilder();
      return {
        binding,
        mode: 'failed',
        nat: failedTable.build(),
        commands,
        instances,
        ipInstances,
        filter4: emptyIptTable('ipv4', true),
        filter6: emptyIptTable('ipv6', family === 'ipv6' || base),
        failure: r.failure,
        issues,
      };
    }
  }

  linkHooks(table, binding, hasI, hasO, commands, true);

  // Switch-over phase (tear old, rename temporaries).
  if (wantCommands) {
    commands.push(...iptablesTeardown('iptables', ifn, false).filter((c) => !c.includes('libvirt-in-post')));
    commands.push(
      `iptables -w -E FP-${ifn} FO-${ifn}`,
      `iptables -w -E FJ-${ifn} FI-${ifn}`,
      `iptables -w -E HJ-${ifn} HI-${ifn}`,
    );
    commands.push(...iptablesTeardown('ip6tables', ifn, false).filter((c) => !c.includes('libvirt-in-post')));
    commands.push(
      `ip6tables -w -E FP-${ifn} FO-${ifn}`,
      `ip6tables -w -E FJ-${ifn} FI-${ifn}`,
      `ip6tables -w -E HJ-${ifn} HI-${ifn}`,
    );
    commands.push(...ebtablesTeardown(ifn, false));
    commands.push(`${EB} -L ${tempRoot('I')}`, `${EB} -L ${tempRoot('O')}`);
    commands.push(`${EB} -E ${tempRoot('I')} ${rootName('I')}`, `${EB} -E ${tempRoot('O')} ${rootName('O')}`);
    for (const dir of ['I', 'O'] as const) {
      for (const s of created.filter((x) => x.dir === dir)) {
        const name = subName(dir, s.chain);
        const temp = tempSub(dir, s.chain);
        commands.push(`${EB} -L ${temp}`, `${EB} -F ${name}`, `${EB} -X ${name}`, `${EB} -E ${temp} ${name}`);
      }
    }
  }
  return {
    binding,
    mode: 'filter',
    nat: table.build(),
    commands,
    instances,
    ipInstances,
    filter4: noIp ? emptyIptTable('ipv4', base) : t4.build(),
    filter6: noIp ? emptyIptTable('ipv6', base) : t6.build(),
    issues,
  };
}

/** The PREROUTING rule sending what the guest sends (frames entering the bridge from its port) to `chain`. */
function hookIn(binding: NwFilterBinding, chain: string): EbRule {
  return {
    in: { name: binding.portdev, negated: false },
    matches: [],
    target: jump(chain),
    origin: hookOrigin(binding, 'in'),
  };
}

/** The POSTROUTING rule sending what is delivered to the guest (frames leaving the bridge to its port) to `chain`. */
function hookOut(binding: NwFilterBinding, chain: string): EbRule {
  return {
    out: { name: binding.portdev, negated: false },
    matches: [],
    target: jump(chain),
    origin: hookOrigin(binding, 'out'),
  };
}

// The origins of what libvirt adds around the filter's rules, the same from both compile paths.

/** The origin of the PREROUTING (`in`) or POSTROUTING (`out`) hook rule of a port. */
function hookOrigin(binding: NwFilterBinding, dir: 'in' | 'out'): Origin {
  const ifn = binding.portdev;
  const label =
    dir === 'in'
      ? `libvirt hook: frames entering the bridge from ${ifn} (sent by the guest)`
      : `libvirt hook: frames leaving the bridge to ${ifn} (delivered to the guest)`;
  return implicitVia(label, undefined, binding.origin);
}

function rootChainOrigin(binding: NwFilterBinding, d: 'I' | 'O'): Origin {
  const ifn = binding.portdev;
  const name = `libvirt-${d}-${ifn}`;
  return implicitVia(
    `libvirt root chain ${name} for ${d === 'I' ? 'frames from' : 'frames to'} the guest on ${ifn}`,
    { chain: name, port: ifn },
    binding.origin,
  );
}

/** A sub-chain of a port: its direction, nwfilter chain name and priority. */
type SubChainOf = { readonly dir: 'I' | 'O'; readonly chain: string; readonly priority: number };

/** `via`: the origin of the filter that made the sub-chain. */
function subChainOrigin(ifn: string, s: SubChainOf, via: Origin): Origin {
  const label = `libvirt sub-chain ${s.dir}-${ifn}-${s.chain} for chain '${s.chain}' (priority ${s.priority})`;
  return implicitVia(label, { chain: s.chain, priority: s.priority }, via);
}

function jumpOriginOf(ifn: string, s: SubChainOf, via: Origin): Origin {
  const label = `libvirt jump from libvirt-${s.dir}-${ifn} to ${s.dir}-${ifn}-${s.chain} (chain priority ${s.priority})`;
  return implicitVia(label, undefined, via);
}

function linkHooks(
  table: TableBuilder,
  binding: NwFilterBinding,
  hasI: boolean,
  hasO: boolean,
  commands: string[],
  temp: boolean,
): void {
  const ifn = binding.portdev;
  if (hasI) {
    commands.push(`${EB} -A PREROUTING -i ${ifn} -j libvirt-${temp ? 'J' : 'I'}-${ifn}`);
    table.append('PREROUTING', hookIn(binding, `libvirt-I-${ifn}`));
  }
  if (hasO) {
    commands.push(`${EB} -A POSTROUTING -o ${ifn} -j libvirt-${temp ? 'P' : 'O'}-${ifn}`);
    table.append('POSTROUTING', hookOut(binding, `libvirt-O-${ifn}`));
  }
}

/** `applyBasicRules`: what the port gets while libvirt learns the guest's IP (CTRL_IP_LEARNING=any). */
function learningRules(
  binding: NwFilterBinding,
  instances: RuleInstance[],
  issues: Issue[],
  table: TableBuilder,
  userPolicy: EbPolicy,
  style: EbStyle,
): CompiledBinding {
  const ifn = binding.portdev;
  const root = `libvirt-I-${ifn}`;
  const why = {
    ...implicit(
      `libvirt IP-address learning on ${ifn} (IP not given, CTRL_IP_LEARNING=any): basic rules until the guest's first IPv4 source address is seen`,
      { port: ifn, mac: binding.mac },
    ),
    via: binding.origin,
  };
  issues.push(
    issue(
      'nwfilter-ip-learning',
      `IP is referenced but not given: libvirt learns it from the first IPv4 packet ${binding.mac} sends (a director forwarding client traffic first would learn a client address)`,
      binding.origin.pos,
      'warning',
    ),
  );
  table.addChain(root, userPolicy, style, why);
  const mac = binding.mac;
  const rules: EbRule[] = [
    { src: { addr: mac, negated: true }, matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why },
    {
      proto: { kind: 'ethertype', value: 0x0800, negated: false },
      matches: [],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
      origin: why,
    },
    {
      proto: { kind: 'ethertype', value: 0x0806, negated: false },
      matches: [],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
      origin: why,
    },
    { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why },
  ];
  for (const r of rules) table.append(root, r);
  const commands = [
    ...allTeardown(ifn),
    `${EB} -N libvirt-J-${ifn}`,
    `${EB} -A libvirt-J-${ifn} -s '!' ${mac} -j DROP`,
    `${EB} -A libvirt-J-${ifn} -p IPv4 -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -p ARP -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -j DROP`,
  ];
  linkHooks(table, binding, true, false, commands, true);
  commands.push(`${EB} -E libvirt-J-${ifn} libvirt-I-${ifn}`);
  return {
    binding,
    mode: 'ip-learning',
    nat: table.build(),
    commands,
    instances,
    ipInstances: [],
    filter4: emptyIptTable('ipv4', true),
    filter6: emptyIptTable('ipv6', true),
    issues,
  };
}

/** `applyDHCPOnlyRules`: CTRL_IP_LEARNING=dhcp while no lease has been seen. */
function dhcpRules(
  binding: NwFilterBinding,
  instances: RuleInstance[],
  issues: Issue[],
  table: TableBuilder,
  userPolicy: EbPolicy,
  style: EbStyle,
): CompiledBinding {
  const ifn = binding.portdev;
  const mac = binding.mac;
  const why = {
    ...implicit(`libvirt DHCP snooping on ${ifn} (IP not given, CTRL_IP_LEARNING=dhcp)`, { port: ifn, mac }),
    via: binding.origin,
  };
  const I = `libvirt-I-${ifn}`;
  const O = `libvirt-O-${ifn}`;
  table.addChain(I, userPolicy, style, why);
  table.addChain(O, userPolicy, style, why);
  const commands = [...allTeardown(ifn), `${EB} -N libvirt-J-${ifn}`, `${EB} -N libvirt-P-${ifn}`];
  const udp = (sport: number, dport: number, src?: string) => ({
    kind: 'ip' as const,
    proto: { value: 17, negated: false },
    sport: { lo: sport, hi: sport, negated: false },
    dport: { lo: dport, hi: dport, negated: false },
    ...(src ? { src: { addr: parseIpv4(src) ?? IPV4_ANY, mask: 0xffffffff, negated: false } } : {}),
  });
  const ipv4 = { kind: 'ethertype' as const, value: 0x0800, negated: false };
  table.append(I, {
    src: { addr: mac, negated: false },
    proto: ipv4,
    matches: [udp(68, 67)],
    target: { kind: 'verdict', verdict: 'ACCEPT' },
    origin: why,
  });
  table.append(I, { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why });
  commands.push(
    `${EB} -A libvirt-J-${ifn} -s ${mac} -p ipv4 --ip-protocol udp --ip-sport 68 --ip-dport 67 -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -j DROP`,
  );
  const servers = binding.params.get('DHCPSERVER') ?? [undefined];
  for (const server of servers) {
    for (const dst of [mac, 'ff:ff:ff:ff:ff:ff' as Mac]) {
      table.append(O, {
        dst: { addr: dst, negated: false },
        proto: ipv4,
        matches: [udp(67, 68, server)],
        target: { kind: 'verdict', verdict: 'ACCEPT' },
        origin: why,
      });
      commands.push(
        `${EB} -A libvirt-P-${ifn} -d ${dst} -p ipv4 --ip-protocol udp${server ? ` --ip-src ${server}` : ''} --ip-sport 67 --ip-dport 68 -j ACCEPT`,
      );
    }
  }
  table.append(O, { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why });
  commands.push(`${EB} -A libvirt-P-${ifn} -j DROP`);
  linkHooks(table, binding, true, true, commands, true);
  commands.push(`${EB} -E libvirt-J-${ifn} libvirt-I-${ifn}`, `${EB} -E libvirt-P-${ifn} libvirt-O-${ifn}`);
  return {
    binding,
    mode: 'dhcp-learning',
    nat: table.build(),
    commands,
    instances,
    ipInstances: [],
    filter4: emptyIptTable('ipv4', true),
    filter6: emptyIptTable('ipv6', true),
    issues,
  };
}

/*
 * Bulk compiles (`compileBindings` with `commands: false`): every binding of the same shape — same top filter, same
 * variable names, list lengths and repeated positions — flattens, sorts, iterates and creates sub-chains the same
 * way, so that work is done once per shape into a `Plan`; per binding only the origins, the values taken from the
 * binding's variables (converted and translated) and the model objects are made. Anything the plan cannot decide
 * without the values (bad values, failing commands) falls back to `compileBinding` for that binding, and shapes
 * that fail or learn IP addresses use `compileBinding` throughout.
 */

/** A typed attribute of a combination: a constant, or element `index` of the binding's variable `name`. */
type PlanPart =
  | { readonly attr: string; readonly typed: TypedAttr; readonly name?: undefined }
  | {
      readonly attr: string;
      readonly typed?: undefined;
      readonly name: string;
      /** The binding value (`Plan.values`) this attribute takes. */
      readonly vslot: number;
      readonly negated: boolean;
    };

interface PlanCombo {
  /** Set when every value is constant (shared by every binding). */
  readonly entry?: TypedEntry;
  /** Otherwise: the typed attributes in order, and the slot of the per-binding entry. */
  readonly parts?: readonly PlanPart[];
  readonly slot: number;
  readonly cache?: Map<string, TypedEntry>;
  /** The entry reused for values no longer cached (see `typedFromBinding`). */
  readonly scratch: TypedEntry;
}

interface PlanInst {
  readonly flat: FlatInstance;
  readonly combos: readonly PlanCombo[];
}

interface PlanSub {
  readonly dir: 'I' | 'O';
  readonly chain: string;
  readonly priority: number;
  /** The sub-chain origin's data, the same for every port. */
  readonly data: { readonly chain: string; readonly priority: number };
  readonly filterNode: number;
  /** Index of the sub-chain in the port's chain list, and of its root chain. */
  readonly index: number;
  readonly root: number;
  /** `PlannedPort` origin references of the sub-chain's origin and of the jump to it. */
  readonly chainOrigin: number;
  /** The jump's origin reference (`PlannedRule`). */
  readonly jump: RuleTemplate;
}

/** What a planned rule shares with the same rule of every port: its origin reference and, if shared, its translation. */
interface RuleTemplate {
  /** A `PlannedPort` origin reference. */
  readonly ref: number;
  /** The translation of a combination without values from the binding (set on first use); see `SHARED_BODY`. */
  shared: EbTranslation | undefined;
}

type PlanOp =
  | { readonly kind: 'sub'; readonly sub: PlanSub }
  | {
      readonly kind: 'emit';
      readonly inst: PlanInst;
      readonly combo: PlanCombo;
      readonly reverse: boolean;
      /** Index of the target chain in the port's chain list. */
      readonly chain: number;
      readonly tpl: RuleTemplate;
      /** Where the port keeps this op's translation (values from the binding), or −1 (shared, in `tpl`). */
      readonly tslot: number;
    };

interface Plan {
  readonly nodes: readonly FlatNode[];
  /** The values taken from the binding's variables, each converted once per binding. */
  readonly values: readonly { readonly name: string; readonly index: number; readonly dt: NwDatatype }[];
  /** `originVia` shapes of the nodes' origins. */
  readonly shapes: readonly number[];
  /** The combinations with values from the binding, typed per binding. */
  readonly varying: readonly PlanCombo[];
  readonly slots: number;
  readonly ops: readonly PlanOp[];
  readonly hasI: boolean;
  readonly hasO: boolean;
  /** Per chain of the port (root chains, then sub-chains in creation order): its rules' `ops`, in order. */
  readonly chainOps: readonly (readonly number[])[];
  /** How many emit ops translate values from the binding (each has its `tslot` below this). */
  readonly tslots: number;
  /** Those ops (the others' translations are in their `tpl`). */
  readonly varyingOps: readonly (PlanOp & { kind: 'emit' })[];
  /** Layer-3/4 instances in sorted order. */
  readonly ipSorted: readonly PlanInst[];
  /**
   * The origins that are not nodes of the filter tree — root chains, hooks, sub-chains and the jumps to them — each
   * made from the port's origins when first asked for (`PlannedPort.get`, reference `~index`).
   */
  readonly extras: readonly ExtraOrigin[];
}

type ExtraOrigin = (port: PlannedPort) => Origin;

/** The `extras` made for every plan, in this order. */
const ROOT_I = 0;
const ROOT_O = 1;
const HOOK_IN = 2;
const HOOK_OUT = 3;
const PORT_EXTRAS: readonly ExtraOrigin[] = [
  (p) => rootChainOrigin(p.binding, 'I'),
  (p) => rootChainOrigin(p.binding, 'O'),
  (p) => hookOrigin(p.binding, 'in'),
  (p) => hookOrigin(p.binding, 'out'),
];

/** Cache entries per combination for values taken from the bindings (see CACHE_LIMIT). */
const PLAN_CACHE_LIMIT = 64;

/** The plan cache key: the top filter and, per variable, its length and which positions repeat earlier ones. */
function shapeKey(filter: string, scope: VarScope): string {
  let k = filter;
  for (const [name, values] of scope) {
    k += `\u0000${name}\u0001${values.length}`;
    if (values.length > 1) for (let i = 0; i < values.length; i++) k += `,${values.indexOf(values[i]!)}`;
  }
  return k;
}

/** The plan for bindings shaped like `scope`, or undefined when `compileBinding` must do it (failures, learning). */
function buildPlan(top: NwFilter, scope: VarScope, registry: ReadonlyMap<string, NwFilter>): Plan | undefined {
  const issues: Issue[] = [];
  const nodes: FlatNode[] = [];
  const flat: FlatInstance[] = [];
  flattenTree(top, scope, -1, registry, [top.name], nodes, flat, issues);
  if (issues.length > 0) return undefined;
  for (const inst of flat)
    for (const { access } of ruleVarAccesses(inst.rule)) if (missingAccess(access, inst.scope)) return undefined;

  let slots = 0;
  const values: { name: string; index: number; dt: NwDatatype }[] = [];
  const valueSlot = new Map<string, number>();
  const vslotOf = (name: string, index: number, dt: NwDatatype) => {
    const k = `${name}\u0000${index}\u0000${dt}`;
    let v = valueSlot.get(k);
    if (v === undefined) {
      v = values.push({ name, index, dt }) - 1;
      valueSlot.set(k, v);
    }
    return v;
  };
  const eth: PlanInst[] = [];
  const ip: PlanInst[] = [];
  const typedInsts: PlanInst[] = [];
  for (const inst of flat) {
    const c = ruleCombinationSources(inst.rule, inst.scope);
    if (!c.ok) return undefined;
    const { rule } = inst;
    const combos: PlanCombo[] = [];
    for (const sources of c.combos) {
      const varying = sources.some((x) => x.name !== undefined && scope.has(x.name));
      if (!varying) {
        const values = new Map<string, string>();
        for (const x of sources) values.set(x.attr, x.name === undefined ? x.raw : inst.scope.get(x.name)![x.index]!);
        const entry = cachedTyped(rule, values);
        if (entry.errors.length > 0) return undefined;
        combos.push({ entry, slot: -1, scratch: { attrs: new Map(), errors: NO_ERRORS } });
        continue;
      }
      const parts: PlanPart[] = [];
      for (const x of sources) {
        const dt = attributeDatatype(rule.protocol, x.attr);
        if (dt === undefined) continue;
        const negated = rule.attrs.get(x.attr)?.negated ?? false;
        if (x.name !== undefined && scope.has(x.name)) {
          parts.push({ attr: x.attr, name: x.name, vslot: vslotOf(x.name, x.index, dt), negated });
          continue;
        }
        const text = x.name === undefined ? x.raw : inst.scope.get(x.name)![x.index]!;
        const v = convertValue(dt, text);
        if ('error' in v) return undefined;
        parts.push({ attr: x.attr, typed: { value: v.value, negated } });
      }
      combos.push({ parts, slot: slots++, cache: new Map(), scratch: { attrs: new Map(), errors: NO_ERRORS } });
    }
    if (rule.protocol === 'stp' && rule.direction === 'inout' && rule.attrs.has('srcmacaddr')) return undefined;
    const pi = { flat: inst, combos };
    typedInsts.push(pi);
    (isEthernetProtocol(rule.protocol) ? eth : ip).push(pi);
  }

  const byPriority = (a: PlanInst, b: PlanInst) =>
    (a.flat.chain === 'root' ? 0 : 1) - (b.flat.chain === 'root' ? 0 : 1) ||
    a.flat.rule.priority - b.flat.rule.priority;
  const sorted = stableSort(eth, byPriority);
  const hasI = eth.some((p) => p.flat.rule.direction !== 'in');
  const hasO = eth.some((p) => p.flat.rule.direction !== 'out');
  type Pending = Omit<PlanSub, 'index' | 'root' | 'data' | 'chainOrigin' | 'jump'>;
  const pending = subChainsToCreate<FlatInstance, Pending>(
    eth.map((p) => p.flat),
    sorted.map((p) => p.flat),
    (dir, f) => ({ dir, chain: f.chain, priority: f.chainPriority, filterNode: f.filterNode }),
  );
  // The port's chains: the root chains, then the sub-chains in creation order.
  const rootIndex = { I: hasI ? 0 : -1, O: hasO ? (hasI ? 1 : 0) : -1 };
  let chains = (hasI ? 1 : 0) + (hasO ? 1 : 0);
  const subIndex = new Map<string, number>();
  const ops: PlanOp[] = [];
  const extras = [...PORT_EXTRAS];
  const createSub = (s: Pending) => {
    const index = chains++;
    subIndex.set(`${s.dir}${s.chain}`, index);
    const data = { chain: s.chain, priority: s.priority };
    const chainOrigin = ~extras.length;
    const jump: RuleTemplate = { ref: ~(extras.length + 1), shared: undefined };
    const sub: PlanSub = { ...s, data, index, root: rootIndex[s.dir], chainOrigin, jump };
    extras.push((p) => subChainOrigin(p.binding.portdev, sub, p.get(sub.filterNode)));
    extras.push((p) => jumpOriginOf(p.binding.portdev, sub, p.get(sub.filterNode)));
    ops.push({ kind: 'sub', sub });
  };
  // -1: a rule for a sub-chain not created yet (ebtables fails; `compileBinding` reports it).
  const target = (dir: 'I' | 'O', chain: string) =>
    chain === 'root' ? rootIndex[dir] : (subIndex.get(`${dir}${chain}`) ?? -1);
  let tslots = 0;
  for (const inst of sorted) {
    while (pending.length > 0 && pending[0]!.priority <= inst.flat.priority) createSub(pending.shift()!);
    const d = inst.flat.rule.direction;
    for (const combo of inst.combos) {
      if (d === 'out' || d === 'inout')
        ops.push({
          kind: 'emit',
          inst,
          combo,
          reverse: d === 'inout',
          chain: target('I', inst.flat.chain),
          tpl: { ref: inst.flat.node, shared: undefined },
          tslot: combo.entry === undefined ? tslots++ : -1,
        });
      if (d === 'in' || d === 'inout')
        ops.push({
          kind: 'emit',
          inst,
          combo,
          reverse: false,
          chain: target('O', inst.flat.chain),
          tpl: { ref: inst.flat.node, shared: undefined },
          tslot: combo.entry === undefined ? tslots++ : -1,
        });
    }
  }
  while (pending.length > 0) createSub(pending.shift()!);
  if (ops.some((op) => op.kind === 'emit' && op.chain < 0)) return undefined;
  // Rules without values from the binding translate once for every port (one ebtables refuses: `compileBinding`).
  const varyingOps: (PlanOp & { kind: 'emit' })[] = [];
  for (const op of ops) {
    if (op.kind !== 'emit') continue;
    if (op.combo.entry === undefined) {
      varyingOps.push(op);
      continue;
    }
    op.tpl.shared = cachedEb(op.inst.flat.rule, op.combo.entry, op.reverse);
    if (op.tpl.shared.refused) return undefined;
  }
  const shapes = nodes.map((n) => originShapeOf(n.base));
  const chainOps: number[][] = Array.from({ length: chains }, () => []);
  for (const [i, op] of ops.entries()) chainOps[op.kind === 'sub' ? op.sub.root : op.chain]!.push(i);
  return {
    nodes,
    values,
    shapes,
    varying: typedInsts.flatMap((pi) => pi.combos.filter((c) => c.slot >= 0)),
    slots,
    ops,
    hasI,
    hasO,
    chainOps,
    tslots,
    varyingOps,
    ipSorted: stableSort(ip, byPriority),
    extras,
  };
}

const NO_ERRORS: readonly string[] = Object.freeze([]);

/**
 * The typed entry of a combination with values from the binding. The first `PLAN_CACHE_LIMIT` distinct values are
 * kept; after that the entry and its attributes are the combination's scratch objects, refilled per binding
 * (performance: no map per port; `runPlan` uses an entry only while compiling that port).
 */
function typedFromBinding(combo: PlanCombo, texts: readonly string[], values: readonly NwValue[]): TypedEntry {
  const parts = combo.parts!;
  let key: string | undefined;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (p.name === undefined) continue;
    key = key === undefined ? texts[p.vslot]! : `${key}\u0000${texts[p.vslot]!}`;
  }
  const hit = combo.cache!.get(key!);
  if (hit !== undefined) return hit;
  const keep = combo.cache!.size < PLAN_CACHE_LIMIT;
  const attrs = keep ? new Map<string, TypedAttr>() : combo.scratch.attrs;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    attrs.set(p.attr, p.name === undefined ? p.typed : { value: values[p.vslot]!, negated: p.negated });
  }
  if (!keep) {
    const entry = combo.scratch;
    entry.forward = undefined;
    entry.reverse = undefined;
    return entry;
  }
  const entry: TypedEntry = { attrs, errors: NO_ERRORS };
  combo.cache!.set(key!, entry);
  return entry;
}

const NO_MATCHES: readonly EbMatch[] = Object.freeze([]) as readonly EbMatch[];

/**
 * One bulk-compiled port: its plan, binding, chains and the translations of its own values; its rules and origins
 * are made from these when first read. Origins: the filter-tree nodes (`materialize`, references ≥ 0) and the plan's
 * `extras` (references `~i`), each made once and the same object on every read. Performance: a bulk compile of
 * thousands of ports keeps per port only what differs between ports; rule objects and origin chains are made for
 * the chains someone reads.
 */
class PlannedPort {
  #nodes: Origin[] | undefined;
  #extras: (Origin | undefined)[] | undefined;
  /** The chains, in the plan's chain order (set once made). */
  chains: readonly PlannedChain[] = [];
  constructor(
    readonly plan: Plan,
    readonly binding: NwFilterBinding,
    /** Per `tslot`: the translation of an op with values from the binding. */
    readonly translations: readonly EbTranslation[],
  ) {}
  get(ref: number): Origin {
    if (ref >= 0) {
      this.#nodes ??= materialize(this.plan.nodes, this.binding.origin, this.plan.shapes);
      return this.#nodes[ref]!;
    }
    this.#extras ??= new Array(this.plan.extras.length);
    let o = this.#extras[~ref];
    if (o === undefined) {
      o = this.plan.extras[~ref]!(this);
      this.#extras[~ref] = o;
    }
    return o;
  }
  /** The rules of chain `k`, made now (as `compileBinding` makes them, origins aside). */
  rules(k: number): EbRule[] {
    const ids = this.plan.chainOps[k]!;
    const out: EbRule[] = new Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const op = this.plan.ops[ids[i]!]!;
      if (op.kind === 'sub') {
        const s = op.sub;
        const jm = jumpMatch(s.chain).rule;
        const target = jump(this.chains[s.index]!.name);
        out[i] = new PlannedRule(jm.proto, undefined, jm.dst, NO_MATCHES, target, this, s.jump);
        continue;
      }
      const t = op.tslot < 0 ? op.tpl.shared! : this.translations[op.tslot]!;
      out[i] = new PlannedRule(t.proto, t.src, t.dst, t.matches, t.target, this, op.tpl);
    }
    return out;
  }
}

/**
 * A rule of a bulk-compiled port: an `EbRule` whose `origin` is made on first read. Readers see the same properties
 * as on any other rule (`toJSON` included); copies must name `origin` (a spread does not copy a getter).
 */
class PlannedRule implements EbRule {
  readonly #origins: PlannedPort;
  readonly #tpl: RuleTemplate;
  declare readonly proto?: EbProtoMatch;
  declare readonly src?: EbMacMatch;
  declare readonly dst?: EbMacMatch;
  readonly matches: readonly EbMatch[];
  readonly target: EbTarget;
  constructor(
    proto: EbProtoMatch | undefined,
    src: EbMacMatch | undefined,
    dst: EbMacMatch | undefined,
    matches: readonly EbMatch[],
    target: EbTarget,
    origins: PlannedPort,
    tpl: RuleTemplate,
  ) {
    this.#origins = origins;
    this.#tpl = tpl;
    // Always set, `undefined` when the rule has no such match — which every reader takes as absent (`if (rule.src)`).
    // Performance: every planned rule then has the same hidden class, so renderers and evaluators read them at one
    // place without a lookup per shape (the type says optional: the cast only hides the undefined).
    this.proto = proto as EbProtoMatch;
    this.src = src as EbMacMatch;
    this.dst = dst as EbMacMatch;
    this.matches = matches;
    this.target = target;
  }
  get origin(): Origin {
    return this.#origins.get(this.#tpl.ref);
  }
  get [SHARED_BODY](): object | undefined {
    return this.#tpl.shared;
  }
  toJSON(): EbRule {
    return ebRule(this, this.origin);
  }
}

/** The PREROUTING (`in`) or POSTROUTING (`out`) rule of a bulk-compiled port, as `hookIn`/`hookOut` make it. */
class PlannedHook implements EbRule {
  readonly #origins: PlannedPort;
  readonly #ref: number;
  declare readonly in?: EbIfaceMatch;
  declare readonly out?: EbIfaceMatch;
  readonly matches: readonly EbMatch[];
  readonly target: EbTarget;
  constructor(dir: 'in' | 'out', ifn: string, chain: string, origins: PlannedPort, ref: number) {
    this.#origins = origins;
    this.#ref = ref;
    // Both set (one is undefined), for one hidden class (see `PlannedRule`).
    const m = { name: ifn, negated: false };
    this.in = (dir === 'in' ? m : undefined) as EbIfaceMatch;
    this.out = (dir === 'out' ? m : undefined) as EbIfaceMatch;
    this.matches = NO_MATCHES;
    this.target = jump(chain);
  }
  get origin(): Origin {
    return this.#origins.get(this.#ref);
  }
  toJSON(): EbRule {
    const { matches, target, origin } = this;
    return this.in ? { in: this.in, matches, target, origin } : { out: this.out!, matches, target, origin };
  }
}

/**
 * A user chain of a bulk-compiled port: its `rules` and `origin` are made on first read (see `PlannedPort`), and kept.
 * `[RULES_ONCE]` gives the rules for one pass without keeping them.
 */
class PlannedChain implements EbChain {
  readonly builtin = false;
  readonly #port: PlannedPort;
  readonly #index: number;
  readonly #ref: number;
  #rules: readonly EbRule[] | undefined;
  constructor(
    readonly name: string,
    readonly policy: EbPolicy,
    readonly policyOrigin: Origin,
    port: PlannedPort,
    index: number,
    ref: number,
  ) {
    this.#port = port;
    this.#index = index;
    this.#ref = ref;
  }
  get rules(): readonly EbRule[] {
    this.#rules ??= this.#port.rules(this.#index);
    return this.#rules;
  }
  get [RULES_ONCE](): readonly EbRule[] {
    return this.#rules ?? this.#port.rules(this.#index);
  }
  get origin(): Origin {
    return this.#port.get(this.#ref);
  }
  toJSON(): EbChain {
    const { name, builtin, policy, policyOrigin, rules } = this;
    return { name, builtin, policy, policyOrigin, origin: this.origin, rules };
  }
}

interface PortChains {
  readonly user: EbChain[];
  readonly pre?: EbRule;
  readonly post?: EbRule;
}

/**
 * One binding by its plan; undefined when a value from the binding is illegal or a command would fail (then
 * `compileBinding` reports it).
 */
function runPlan(
  plan: Plan,
  binding: NwFilterBinding,
  learnedIps: readonly string[],
  style: EbStyle,
  base: boolean,
): { chains: PortChains; filter4: IptTable; filter6: IptTable } | undefined {
  const ifn = binding.portdev;
  const texts: string[] = new Array(plan.values.length);
  const values: NwValue[] = new Array(plan.values.length);
  for (let i = 0; i < plan.values.length; i++) {
    const v = plan.values[i]!;
    const text = scopeValue(binding, learnedIps, v.name, v.index);
    const c = convertValue(v.dt, text);
    if ('error' in c) return undefined;
    texts[i] = text;
    values[i] = c.value;
  }
  const entries: TypedEntry[] = new Array(plan.slots);
  for (let i = 0; i < plan.varying.length; i++) {
    const c = plan.varying[i]!;
    entries[c.slot] = typedFromBinding(c, texts, values);
  }
  // This port's translations (a rule ebtables would refuse falls back to `compileBinding`).
  const translations: EbTranslation[] = new Array(plan.tslots);
  for (let i = 0; i < plan.varyingOps.length; i++) {
    const op = plan.varyingOps[i]!;
    const { rule } = op.inst.flat;
    const e = entries[op.combo.slot]!;
    const p = rule.protocol as EthernetProtocol | 'none';
    let t: EbTranslation;
    if (op.reverse) t = e.reverse ??= translateEbtablesRule(p, e.attrs, rule.action, true, false);
    else t = e.forward ??= translateEbtablesRule(p, e.attrs, rule.action, false, false);
    if (t.refused) return undefined;
    translations[op.tslot] = t;
  }
  const origins = new PlannedPort(plan, binding, translations);
  const userPolicy = defaultUserChainPolicy(style);
  const policyOrigin = userPolicyOrigin(userPolicy, style);
  const rootI = `libvirt-I-${ifn}`;
  const rootO = `libvirt-O-${ifn}`;
  // The port's chains in the plan's order: root chains, then sub-chains in creation order.
  const user: PlannedChain[] = new Array(plan.chainOps.length);
  let k = 0;
  if (plan.hasI) user[k] = new PlannedChain(rootI, userPolicy, policyOrigin, origins, k++, ~ROOT_I);
  if (plan.hasO) user[k] = new PlannedChain(rootO, userPolicy, policyOrigin, origins, k++, ~ROOT_O);
  for (let i = 0; i < plan.ops.length; i++) {
    const op = plan.ops[i]!;
    if (op.kind !== 'sub') continue;
    const s = op.sub;
    user[k] = new PlannedChain(`${s.dir}-${ifn}-${s.chain}`, userPolicy, policyOrigin, origins, k++, s.chainOrigin);
  }
  origins.chains = user;

  let filter4 = emptyIptTable('ipv4', base);
  let filter6 = emptyIptTable('ipv6', base);
  if (plan.ipSorted.length > 0) {
    const ipSorted = plan.ipSorted.map((pi) => ({
      rule: pi.flat.rule,
      origin: origins.get(pi.flat.node),
      combos: pi.combos.map((c) => (c.entry ?? entries[c.slot]!).attrs),
    }));
    const t4 = new IptTableBuilder('ipv4');
    const t6 = new IptTableBuilder('ipv6');
    if (base) {
      t4.addBaseChains();
      t6.addBaseChains();
    }
    for (const [family, tb] of [
      ['ipv4', t4],
      ['ipv6', t6],
    ] as const) {
      if (compileIptablesFamily(family, ifn, ipSorted, tb, binding.origin).failure !== undefined) return undefined;
    }
    filter4 = t4.build();
    filter6 = t6.build();
  }
  const pre = plan.hasI ? new PlannedHook('in', ifn, rootI, origins, ~HOOK_IN) : undefined;
  const post = plan.hasO ? new PlannedHook('out', ifn, rootO, origins, ~HOOK_OUT) : undefined;
  const port: PortChains = pre ? (post ? { user, pre, post } : { user, pre }) : post ? { user, post } : { user };
  return { chains: port, filter4, filter6 };
}

/** The built-in nat chains with no rules, as `TableBuilder` makes them. */
function builtinChain(name: string, rules: EbRule[]): EbChain {
  const o = builtinOrigins(name);
  return { name, builtin: true, policy: 'ACCEPT', policyOrigin: o.policyOrigin, origin: o.origin, rules };
}

/**
 * A binding compiled by its plan: the model is made; the per-binding nat table view, the command list and the rule
 * instances are made on demand (by `compileBinding`, which gives the same result).
 */
class PlannedBinding implements CompiledBinding {
  readonly mode = 'filter' as const;
  readonly issues: readonly Issue[] = [];
  #nat: EbTable | undefined;
  #full: CompiledBinding | undefined;
  constructor(
    readonly binding: NwFilterBinding,
    readonly port: PortChains,
    readonly filter4: IptTable,
    readonly filter6: IptTable,
    private readonly registry: ReadonlyMap<string, NwFilter>,
    private readonly options: CompileOptions,
  ) {}
  get nat(): EbTable {
    this.#nat ??= {
      name: 'nat',
      chains: [
        builtinChain('PREROUTING', this.port.pre ? [this.port.pre] : []),
        builtinChain('OUTPUT', []),
        builtinChain('POSTROUTING', this.port.post ? [this.port.post] : []),
        ...this.port.user,
      ],
    };
    return this.#nat;
  }
  private full(): CompiledBinding {
    this.#full ??= compileBinding(this.binding, this.registry, this.options);
    return this.#full;
  }
  get commands(): readonly string[] {
    return this.full().commands;
  }
  get instances(): readonly RuleInstance[] {
    return this.full().instances;
  }
  get ipInstances(): readonly RuleInstance[] {
    return this.full().ipInstances;
  }
}

/** The binding's variables as `compileBinding` sees them (MAC from the binding, learned addresses). */
function bindingScope(binding: NwFilterBinding, options: CompileOptions): Map<string, readonly string[]> {
  const scope = new Map<string, readonly string[]>(binding.params);
  if (!scope.has('MAC')) scope.set('MAC', [binding.mac]);
  if (!scope.has('IP') && options.learnedIps && options.learnedIps.length > 0) scope.set('IP', options.learnedIps);
  return scope;
}

/** `bindingScope(binding, …).get(name)[index]` without making the scope (performance: one per binding otherwise). */
function scopeValue(binding: NwFilterBinding, learnedIps: readonly string[], name: string, index: number): string {
  const list = binding.params.get(name);
  if (list !== undefined) return list[index]!;
  if (name === 'MAC') return binding.mac;
  return learnedIps[index]!;
}

/** `compileBinding`, by plans shared between bindings of the same shape when no command list is wanted. */
function compileWithPlans(
  bindings: readonly NwFilterBinding[],
  registry: ReadonlyMap<string, NwFilter>,
  options: CompileOptions,
): CompiledBinding[] {
  if (options.commands ?? true) return bindings.map((b) => compileBinding(b, registry, options));
  const style = options.style ?? 'nft';
  const base = options.libvirtBaseChains ?? true;
  const learned = options.learnedIps ?? [];
  const plans = new Map<string, Plan | undefined>();
  const out: CompiledBinding[] = [];
  // Performance: consecutive bindings usually have the same shape; with single values it is checked without a key
  // (and without making the binding's scope): the same variable names in the same order, one value each.
  let last: { filter: string; names: string[]; plan: Plan | undefined } | undefined;
  const sameAsLast = (b: NwFilterBinding): boolean => {
    if (last === undefined || last.filter !== b.filter) return false;
    const names = last.names;
    let i = 0;
    for (const name of b.params.keys()) if (name !== names[i++] || b.params.get(name)!.length !== 1) return false;
    if (!b.params.has('MAC') && names[i++] !== 'MAC') return false;
    if (!b.params.has('IP') && learned.length > 0 && (learned.length !== 1 || names[i++] !== 'IP')) return false;
    return i === names.length;
  };
  for (const b of bindings) {
    const top = registry.get(b.filter);
    let plan: Plan | undefined;
    if (top !== undefined && sameAsLast(b)) plan = last!.plan;
    else if (top !== undefined) {
      const scope = bindingScope(b, options);
      const key = shapeKey(b.filter, scope);
      if (plans.has(key)) plan = plans.get(key);
      else {
        plan = buildPlan(top, scope, registry);
        plans.set(key, plan);
      }
      last = [...scope.values()].every((v) => v.length === 1)
        ? { filter: b.filter, names: [...scope.keys()], plan }
        : undefined;
    }
    const r = plan && runPlan(plan, b, learned, style, base);
    out.push(
      r === undefined
        ? compileBinding(b, registry, options)
        : new PlannedBinding(b, r.chains, r.filter4, r.filter6, registry, options),
    );
  }
  return out;
}

/**
 * Compiles several bindings into one nat table (as on a host with several filtered guests): hook rules in binding
 * order, user chains in creation order.
 */
export function compileBindings(
  bindings: readonly NwFilterBinding[],
  registry: ReadonlyMap<string, NwFilter>,
  options: CompileOptions = {},
): {
  nat: EbTable;
  filter4: IptTable;
  filter6: IptTable;
  results: readonly CompiledBinding[];
  issues: readonly Issue[];
} {
  const results = compileWithPlans(bindings, registry, options);
  const base = options.libvirtBaseChains ?? true;
  const filter4 = mergeIptTables(
    'ipv4',
    results.map((r) => r.filter4),
    base,
  );
  const filter6 = mergeIptTables(
    'ipv6',
    results.map((r) => r.filter6),
    base,
  );
  const merged = mergePlannedNat(results);
  if (merged !== undefined) return { nat: merged, filter4, filter6, results, issues: results.flatMap((r) => r.issues) };
  const chains = new Map<string, EbChain>();
  const builtinRules = new Map<string, EbRule[]>();
  for (const r of results) {
    if (r instanceof PlannedBinding) {
      // The same as merging `r.nat`, without making it.
      for (const name of EB_BUILTIN_CHAINS.nat) {
        if (!chains.has(name)) chains.set(name, builtinChain(name, []));
        let list = builtinRules.get(name);
        if (list === undefined) {
          list = [];
          builtinRules.set(name, list);
        }
        const hook = name === 'PREROUTING' ? r.port.pre : name === 'POSTROUTING' ? r.port.post : undefined;
        if (hook) list.push(hook);
      }
      for (const c of r.port.user) chains.set(c.name, c);
      continue;
    }
    for (const c of r.nat.chains) {
      if (c.builtin) {
        if (!chains.has(c.name)) chains.set(c.name, c);
        let list = builtinRules.get(c.name);
        if (list === undefined) {
          list = [];
          builtinRules.set(c.name, list);
        }
        for (const x of c.rules) list.push(x);
      } else chains.set(c.name, c);
    }
  }
  for (const [name, rules] of builtinRules) chains.set(name, { ...chains.get(name)!, rules });
  if (results.length === 0) {
    const t = new TableBuilder().build();
    return { nat: t, filter4, filter6, results, issues: [] };
  }
  return {
    nat: { name: 'nat', chains: [...chains.values()] },
    filter4,
    filter6,
    results,
    issues: results.flatMap((r) => r.issues),
  };
}

/**
 * The nat table of bindings that were all compiled by plans, on distinct ports whose names have no `-` — the usual
 * case of a bulk compile; undefined otherwise. Performance: such ports' chain names cannot collide (`libvirt-I-PORT`,
 * `I-PORT-CHAIN`…: the port name is the text between the first dashes), so the chains are concatenated instead of
 * being merged by name; the result is what the merge by name gives.
 */
function mergePlannedNat(results: readonly CompiledBinding[]): EbTable | undefined {
  if (results.length === 0) return undefined;
  const ports = new Set<string>();
  for (const r of results) {
    if (!(r instanceof PlannedBinding) || r.binding.portdev.includes('-') || ports.has(r.binding.portdev))
      return undefined;
    ports.add(r.binding.portdev);
  }
  // Arrays made at their final size and filled by indexed loops (performance: this runs once per compile, mostly
  // before it is optimized, when `for…of` allocates; growing arrays copy themselves).
  let pres = 0;
  let posts = 0;
  let users = 0;
  for (let i = 0; i < results.length; i++) {
    const { port } = results[i] as PlannedBinding;
    if (port.pre) pres++;
    if (port.post) posts++;
    users += port.user.length;
  }
  const pre: EbRule[] = new Array(pres);
  const post: EbRule[] = new Array(posts);
  const chains: EbChain[] = new Array(3 + users);
  let p = 0;
  let q = 0;
  let c = 3;
  for (let i = 0; i < results.length; i++) {
    const { port } = results[i] as PlannedBinding;
    if (port.pre) pre[p++] = port.pre;
    if (port.post) post[q++] = port.post;
    for (let k = 0; k < port.user.length; k++) chains[c++] = port.user[k]!;
  }
  chains[0] = builtinChain('PREROUTING', pre);
  chains[1] = builtinChain('OUTPUT', []);
  chains[2] = builtinChain('POSTROUTING', post);
  return { name: 'nat', chains };
}

/**
 * Several bindings' filter tables as one host table: built-in chain hooks and libvirt's global chains once, each
 * port's links appended in binding order, per-port chains as they are.
 */
export function mergeIptTables(family: IptFamily, tables: readonly IptTable[], base: boolean): IptTable {
  const b = new IptTableBuilder(family);
  const seen = new Set<string>();
  // Performance: ports without layer-3/4 rules share the empty table; merging it again changes nothing (its only
  // rules are the hooks into libvirt's global chains, kept once; its chains are those global chains, without rules).
  const empties = new Set([emptyIptTable(family, true), emptyIptTable(family, false)]);
  const mergedEmpty = new Set<IptTable>();
  for (const t of tables) {
    if (empties.has(t)) {
      if (mergedEmpty.has(t)) continue;
      mergedEmpty.add(t);
    }
    for (const c of t.chains) {
      if (c.builtin) {
        // Hooks into libvirt's global chains exist once.
        for (const r of c.rules) {
          const key = `${c.name}>${r.target?.kind === 'jump' ? r.target.chain : ''}`;
          if (r.target?.kind === 'jump' && r.target.chain.startsWith('libvirt-')) {
            if (seen.has(key)) continue;
            seen.add(key);
            if (!b.has(r.target.chain)) b.addBaseChains();
            continue;
          }
          b.append(c.name, r);
        }
        continue;
      }
      b.addChain(c.name, c.origin);
      for (const r of c.rules) b.append(c.name, r);
    }
  }
  if (base) b.addBaseChains();
  return b.build();
}
