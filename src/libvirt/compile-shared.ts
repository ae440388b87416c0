/**
 * What both compile paths share: per-rule caches of typed values and translations, the model rule literal
 * (`ebRule`), the table builder, flattening a filter tree into rule instances, the stable sort and sub-chain
 * creation order of `ebiptablesApplyNewRules`, and the PREROUTING/POSTROUTING hook rules.
 */
import {
  EB_BUILTIN_CHAINS,
  type EbChain,
  type EbPolicy,
  type EbRule,
  type EbStyle,
  type EbTable,
  jump,
} from '../netfilter/ebtables-model.ts';
import { type Issue, issue } from '../source/issue.ts';
import type { Origin } from '../source/origin.ts';
import { EB } from './compile-commands.ts';
import {
  builtinOrigins,
  hookOrigin,
  originVia,
  originViaShape,
  type SubChainOf,
  userPolicyOrigin,
} from './compile-origins.ts';
import type { RuleInstance } from './compile-types.ts';
import { type EbTranslation, type TypedAttr, translateEbtablesRule, typeAttrs } from './ebtables-translate.ts';
import type { EthernetProtocol, NwFilter, NwFilterBinding, NwRule } from './nwfilter-model.ts';
import type { VarScope } from './variables.ts';

/** Per-rule caches: literal attributes convert and translate the same way for every binding. */
/**
 * Entries per rule: values shared by many ports (literals, common parameters) are met first and stay; once full,
 * port-specific values (each port's MAC and IP) are translated without being kept, so memory stays bounded.
 */
const CACHE_LIMIT = 256;

/** One value combination of a rule: its typed attributes and (lazily) its two ebtables translations. */
export interface TypedEntry {
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

export function cachedTyped(rule: NwRule, combo: ReadonlyMap<string, string>): TypedEntry {
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

export function cachedEb(rule: NwRule, entry: TypedEntry, reverse: boolean) {
  if (reverse) {
    entry.reverse ??= translateEbtablesRule(rule.protocol as EthernetProtocol | 'none', entry.attrs, rule.action, true);
    return entry.reverse;
  }
  entry.forward ??= translateEbtablesRule(rule.protocol as EthernetProtocol | 'none', entry.attrs, rule.action, false);
  return entry.forward;
}

/**
 * The model rule of a translation (or of a planned rule, as plain data): keys proto, src, dst (when set), matches,
 * target, origin, as object literals (performance: each shape gets exactly its properties in the object, no separate
 * property store).
 */
export function ebRule(t: Pick<EbRule, 'proto' | 'src' | 'dst' | 'matches' | 'target'>, origin: Origin): EbRule {
  const { proto, src, dst, matches, target } = t;
  if (proto) {
    if (src) return dst ? { proto, src, dst, matches, target, origin } : { proto, src, matches, target, origin };
    return dst ? { proto, dst, matches, target, origin } : { proto, matches, target, origin };
  }
  if (src) return dst ? { src, dst, matches, target, origin } : { src, matches, target, origin };
  return dst ? { dst, matches, target, origin } : { matches, target, origin };
}

export class TableBuilder {
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
export interface FlatNode {
  readonly base: Origin;
  readonly parent: number;
}

export interface FlatInstance {
  readonly rule: NwRule;
  readonly filter: NwFilter;
  readonly chain: string;
  readonly chainPriority: number;
  readonly priority: number;
  readonly scope: VarScope;
  readonly node: number;
  readonly filterNode: number;
}

export function flattenTree(
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
export function materialize(nodes: readonly FlatNode[], via: Origin, shapes?: readonly number[]): Origin[] {
  const out: Origin[] = new Array(nodes.length);
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!;
    const v = n.parent < 0 ? via : out[n.parent]!;
    out[i] = shapes ? originViaShape(n.base, shapes[i]!, v) : originVia(n.base, v);
  }
  return out;
}

export function ruleInstances(flat: readonly FlatInstance[], origins: readonly Origin[]): RuleInstance[] {
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
export function unresolvableMessage(missing: readonly string[], scope: VarScope): string {
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

export function stableSort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
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
export function subChainsToCreate<
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

export function linkHooks(
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
