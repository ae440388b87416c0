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
 *
 * Files: this one holds the entry points (`compileBinding`, `compileBindings`, merging a host's tables);
 * compile-reference.ts the reference path that follows libvirt step by step (with the command list);
 * compile-plan.ts the bulk plan path (bindings of one shape share a plan); compile-shared.ts what both share
 * (caches, flattening, sort, table builder, hooks); compile-origins.ts the origins; compile-learning.ts the IP
 * learning rules; compile-commands.ts the command text; compile-types.ts the options and results.
 */
import { EB_BUILTIN_CHAINS, type EbChain, type EbRule, type EbTable } from '../netfilter/ebtables-model.ts';
import type { IptFamily, IptTable } from '../netfilter/iptables-model.ts';
import type { Issue } from '../source/issue.ts';
import { builtinChain, compileWithPlans, PlannedBinding } from './compile-plan.ts';
import { TableBuilder } from './compile-shared.ts';
import type { CompiledBinding, CompileOptions } from './compile-types.ts';
import { emptyIptTable, IptTableBuilder } from './iptables-compile.ts';
import type { NwFilter, NwFilterBinding } from './nwfilter-model.ts';

export { compileBinding } from './compile-reference.ts';
export type { CompiledBinding, CompileMode, CompileOptions, RuleInstance } from './compile-types.ts';

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
