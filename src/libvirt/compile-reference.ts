/**
 * The reference path: one binding compiled step by step as libvirt 9.0 does it (see compile.ts for the steps),
 * with the command list. The bulk path (compile-plan.ts) must give exactly what this gives.
 */
import { defaultUserChainPolicy } from '../netfilter/ebtables-model.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import type { Origin } from '../source/origin.ts';
import { cmd, EB, ebtablesTeardown, iptablesTeardown, jumpMatch, quote } from './compile-commands.ts';
import { dhcpRules, learningRules } from './compile-learning.ts';
import { jumpOriginOf, rootChainOrigin, type SubChainOf, subChainOrigin } from './compile-origins.ts';
import {
  cachedEb,
  cachedTyped,
  ebRule,
  type FlatInstance,
  type FlatNode,
  flattenTree,
  linkHooks,
  materialize,
  ruleInstances,
  stableSort,
  subChainsToCreate,
  TableBuilder,
  type TypedEntry,
  unresolvableMessage,
} from './compile-shared.ts';
import type { CompiledBinding, CompileMode, CompileOptions, RuleInstance } from './compile-types.ts';
import type { TypedAttr } from './ebtables-translate.ts';
import { compileIptablesFamily, emptyIptTable, IptTableBuilder, iptablesBuildError } from './iptables-compile.ts';
import { isEthernetProtocol, type NwFilter, type NwFilterBinding } from './nwfilter-model.ts';
import { missingAccess, ruleCombinations, ruleVarAccesses } from './variables.ts';

/** Compiles one binding against a registry of filters (built-ins overridden by custom ones). */
/** The issue code of equal-priority sub-chains, whose order libvirt does not fix. */
export const SUBCHAIN_ORDER_ISSUE = 'nwfilter-subchain-order-random';

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
  // libvirt collects a direction's sub-chains in a hash table keyed with a per-daemon random seed and sorts them by
  // priority only: of equal priorities, the installed order changes from one libvirtd start to the next (verified).
  for (const dir of ['I', 'O'] as const) {
    const subs = pending.filter((s) => s.dir === dir);
    for (let k = 1; k < subs.length; k++) {
      if (subs[k]!.priority !== subs[k - 1]!.priority) continue;
      issues.push(
        issue(
          SUBCHAIN_ORDER_ISSUE,
          `sub-chains ${subs[k - 1]!.chain} and ${subs[k]!.chain} of ${binding.portdev} have the same priority (${subs[k]!.priority}): libvirt jumps to them in an order that changes with each libvirtd start; the listing shows one of them, the port's traffic may meet them in the other`,
          binding.origin.pos,
          'warning',
        ),
      );
    }
  }
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
  // Every rule is built before any is applied: a rule libvirt cannot build fails ahead of the tools' refusals.
  const buildError = iptablesBuildError(
    ipPrepared.map((p) => ({ rule: p.inst.rule, origin: p.inst.origin, combos: p.combos })),
  );
  if (buildError !== undefined) ebFailure = buildError;
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
    const r = compileIptablesFamily(family, ifn, ipSorted, tb, binding.origin, options.ipsets);
    appendAll(commands, r.commands);
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
    appendAll(
      commands,
      iptablesTeardown('iptables', ifn, false).filter((c) => !c.includes('libvirt-in-post')),
    );
    commands.push(
      `iptables -w -E FP-${ifn} FO-${ifn}`,
      `iptables -w -E FJ-${ifn} FI-${ifn}`,
      `iptables -w -E HJ-${ifn} HI-${ifn}`,
    );
    appendAll(
      commands,
      iptablesTeardown('ip6tables', ifn, false).filter((c) => !c.includes('libvirt-in-post')),
    );
    commands.push(
      `ip6tables -w -E FP-${ifn} FO-${ifn}`,
      `ip6tables -w -E FJ-${ifn} FI-${ifn}`,
      `ip6tables -w -E HJ-${ifn} HI-${ifn}`,
    );
    appendAll(commands, ebtablesTeardown(ifn, false));
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
