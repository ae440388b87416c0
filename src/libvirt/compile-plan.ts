/**
 * The bulk plan path: bindings of the same shape (top filter, variable lengths and repeats) share one plan, made
 * once by flattening and sorting as the reference path does; each port then only fills in its values. Bindings a
 * plan cannot do (failures, IP learning, values that do not convert) fall back to `compileBinding`.
 */
import {
  defaultUserChainPolicy,
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
import type { IptTable } from '../netfilter/iptables-model.ts';
import type { Issue } from '../source/issue.ts';
import type { Origin } from '../source/origin.ts';
import { jumpMatch } from './compile-commands.ts';
import {
  builtinOrigins,
  hookOrigin,
  jumpOriginOf,
  originShapeOf,
  rootChainOrigin,
  subChainOrigin,
  userPolicyOrigin,
} from './compile-origins.ts';
import { compileBinding } from './compile-reference.ts';
import {
  cachedEb,
  cachedTyped,
  ebRule,
  type FlatInstance,
  type FlatNode,
  flattenTree,
  materialize,
  stableSort,
  subChainsToCreate,
  type TypedEntry,
} from './compile-shared.ts';
import type { CompiledBinding, CompileOptions, RuleInstance } from './compile-types.ts';
import { type EbTranslation, type TypedAttr, translateEbtablesRule } from './ebtables-translate.ts';
import { compileIptablesFamily, emptyIptTable, IptTableBuilder } from './iptables-compile.ts';
import { attributeDatatype, convertValue, type NwDatatype, type NwValue } from './nwfilter-attrs.ts';
import { type EthernetProtocol, isEthernetProtocol, type NwFilter, type NwFilterBinding } from './nwfilter-model.ts';
import { missingAccess, ruleCombinationSources, ruleVarAccesses, type VarScope } from './variables.ts';

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
  // Equal-priority sub-chains get the reference path's warning (libvirt's order of them is not fixed): no plan.
  for (const dir of ['I', 'O'] as const) {
    const subs = pending.filter((x) => x.dir === dir);
    for (let k = 1; k < subs.length; k++) if (subs[k]!.priority === subs[k - 1]!.priority) return undefined;
  }
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
export function builtinChain(name: string, rules: EbRule[]): EbChain {
  const o = builtinOrigins(name);
  return { name, builtin: true, policy: 'ACCEPT', policyOrigin: o.policyOrigin, origin: o.origin, rules };
}

/**
 * A binding compiled by its plan: the model is made; the per-binding nat table view, the command list and the rule
 * instances are made on demand (by `compileBinding`, which gives the same result).
 */
export class PlannedBinding implements CompiledBinding {
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
export function compileWithPlans(
  bindings: readonly NwFilterBinding[],
  registry: ReadonlyMap<string, NwFilter>,
  options: CompileOptions,
): CompiledBinding[] {
  // Plans assume every ipset exists: with the host's ipsets given, the reference compiler checks them.
  if ((options.commands ?? true) || options.ipsets !== undefined)
    return bindings.map((b) => compileBinding(b, registry, options));
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
