/**
 * nwfilter variables: which accesses a rule makes, whether they are available in a scope, and the value
 * combinations libvirt instantiates a rule with (`nwfilter_params.c` `virNWFilterVarCombIter*`).
 */
import { type NwVarAccess, parseVarAccess } from './nwfilter-attrs.ts';
import type { NwRule } from './nwfilter-model.ts';

export type VarScope = ReadonlyMap<string, readonly string[]>;

/** Variable accesses of a rule, in attribute-table order, with the attribute each one belongs to. */
export function ruleVarAccesses(rule: NwRule): { attr: string; access: NwVarAccess }[] {
  const out: { attr: string; access: NwVarAccess }[] = [];
  for (const { attr, access } of parsedAttrs(rule)) if (access !== undefined) out.push({ attr, access });
  return out;
}

/** Performance: each rule's attributes parsed once (rules are immutable). */
interface ParsedAttr {
  readonly attr: string;
  readonly raw: string;
  /** The variable access, or undefined for a literal (or an invalid access, used as written). */
  readonly access: NwVarAccess | undefined;
}
const parsedCache = new WeakMap<NwRule, readonly ParsedAttr[]>();
function parsedAttrs(rule: NwRule): readonly ParsedAttr[] {
  let p = parsedCache.get(rule);
  if (p === undefined) {
    const list: ParsedAttr[] = [];
    for (const [attr, v] of rule.attrs) {
      const a = parseVarAccess(v.raw);
      list.push({ attr, raw: v.raw, access: a === undefined || a === 'invalid' ? undefined : a });
    }
    p = list;
    parsedCache.set(rule, p);
  }
  return p;
}

export function accessText(a: NwVarAccess): string {
  return a.kind === 'element' ? `${a.name}[${a.index}]` : a.iterator === 0 ? a.name : `${a.name}[@${a.iterator}]`;
}

/** Undefined when available, else the name libvirt reports as missing. */
export function missingAccess(a: NwVarAccess, scope: VarScope): string | undefined {
  const values = scope.get(a.name);
  if (values === undefined || values.length === 0) return a.name;
  if (a.kind === 'element' && a.index >= values.length) return accessText(a);
  return undefined;
}

export type Combinations = { ok: true; combos: ReadonlyMap<string, string>[] } | { ok: false; error: string };

/** Where one attribute value of a combination comes from: the text as written, or element `index` of variable `name`. */
export type ValueSource =
  | { readonly attr: string; readonly raw: string; readonly name?: undefined; readonly index?: undefined }
  | { readonly attr: string; readonly raw?: undefined; readonly name: string; readonly index: number };

export type CombinationSources = { ok: true; combos: ValueSource[][] } | { ok: false; error: string };

/**
 * Every combination of values for the rule's attributes: variables sharing an iterator are walked in parallel
 * (same cardinality required), different iterators form a cartesian product with the first-met iterator varying
 * fastest, and an iterator position whose values repeat an earlier position is skipped.
 */
export function ruleCombinations(rule: NwRule, scope: VarScope): Combinations {
  const s = ruleCombinationSources(rule, scope);
  if (!s.ok) return s;
  return {
    ok: true,
    combos: s.combos.map((c) => {
      const values = new Map<string, string>();
      for (const x of c) values.set(x.attr, x.name === undefined ? x.raw : scope.get(x.name)![x.index]!);
      return values;
    }),
  };
}

/**
 * `ruleCombinations` as sources (which variable element each value is): the combinations depend only on the lists'
 * lengths and on which positions repeat earlier ones, so the result holds for every scope of the same shape.
 */
export function ruleCombinationSources(rule: NwRule, scope: VarScope): CombinationSources {
  const parsed = parsedAttrs(rule);
  interface Iter {
    readonly id: number;
    readonly names: string[];
    count: number;
    positions: number[];
  }
  const iters: Iter[] = [];
  for (const { access } of parsed) {
    if (access === undefined || access.kind !== 'iterator') continue;
    const values = scope.get(access.name) ?? [];
    let it = iters.find((i) => i.id === access.iterator);
    if (it === undefined) {
      it = { id: access.iterator, names: [], count: values.length, positions: [] };
      iters.push(it);
    }
    if (it.names.includes(access.name)) continue;
    if (it.names.length > 0 && values.length !== it.count) {
      return { ok: false, error: 'Cardinality of list items must be the same for processing them in parallel' };
    }
    it.names.push(access.name);
  }
  for (const it of iters) {
    if (it.count === 1) {
      it.positions.push(0);
      continue;
    }
    const seen = new Set<string>();
    for (let i = 0; i < it.count; i++) {
      const key = JSON.stringify(it.names.map((n) => scope.get(n)?.[i]));
      if (seen.has(key)) continue;
      seen.add(key);
      it.positions.push(i);
    }
  }
  const combos: ValueSource[][] = [];
  const cur = iters.map(() => 0);
  if (iters.some((it) => it.positions.length === 0)) return { ok: true, combos };
  for (;;) {
    const sources: ValueSource[] = [];
    for (const { attr, raw, access: a } of parsed) {
      if (a === undefined) {
        sources.push({ attr, raw });
        continue;
      }
      const list = scope.get(a.name) ?? [];
      let idx: number;
      if (a.kind === 'element') idx = a.index;
      else {
        const k = iters.findIndex((i) => i.id === a.iterator);
        idx = iters[k]!.positions[cur[k]!]!;
      }
      if (list[idx] !== undefined) sources.push({ attr, name: a.name, index: idx });
    }
    combos.push(sources);
    let k = 0;
    for (; k < iters.length; k++) {
      cur[k] = cur[k]! + 1;
      if (cur[k]! < iters[k]!.positions.length) break;
      cur[k] = 0;
    }
    if (k === iters.length) break;
  }
  return { ok: true, combos };
}
