/**
 * Drift between two rulesets in the model — typically what a binding's XML should install (`expected`, from the
 * compiler) and what a host shows (`installed`, from a reader): chains missing or extra, rules missing, extra or
 * reordered within a chain, and policy differences. Rules are compared structurally, ignoring origins and counters.
 */
import type { Origin } from '../source/origin.ts';
import type { EbChain, EbMacMatch, EbRule, EbStyle, EbTable } from './ebtables-model.ts';
import { renderEbtablesRule } from './ebtables-render.ts';
import { CT_STATE_ORDER, type IptChain, type IptRule, type IptTable } from './iptables-model.ts';
import { renderIptablesRuleBody } from './iptables-render.ts';

export type DriftKind =
  /** The tables are not the same table (name or family). */
  | 'table-mismatch'
  /** A chain of `expected` is not installed. */
  | 'chain-missing'
  /** An installed chain that `expected` does not have. */
  | 'chain-extra'
  /** A rule of `expected` is not installed in its chain. */
  | 'rule-missing'
  /** An installed rule that `expected` does not have in that chain. */
  | 'rule-extra'
  /** A rule is installed in its chain, but at another position relative to the others. */
  | 'rule-moved'
  /** The chain policies differ. */
  | 'policy';

export interface DriftItem {
  readonly kind: DriftKind;
  readonly chain: string;
  /** One line for people, e.g. `rule 3 of I-vnet0-mac is missing: -s 02:00:73:b6:53:c8 -j RETURN`. */
  readonly message: string;
  /** The rule as the listing prints it (rule items). */
  readonly rule?: string;
  /** 1-based position in the expected chain. */
  readonly expectedIndex?: number;
  /** 1-based position in the installed chain. */
  readonly installedIndex?: number;
  readonly expectedPolicy?: string;
  readonly installedPolicy?: string;
  /** Origin of the expected object (chain or rule). */
  readonly expected?: Origin;
  /** Origin of the installed object (chain or rule): for a read listing, its line. */
  readonly installed?: Origin;
}

export interface DriftOptions {
  /** Compare only the chains for which this is true (default: all). */
  readonly chains?: (name: string) => boolean;
  /** Leave policy differences out. */
  readonly ignorePolicies?: boolean;
  /** Report each missing/extra chain's rules too (default: one item per chain). */
  readonly chainRules?: boolean;
  /**
   * ebtables: the listing style the installed table was read from (default `nft`): decides which rules are
   * indistinguishable in the listing and how rule texts are printed.
   */
  readonly style?: EbStyle;
}

interface RuleView {
  readonly key: string;
  readonly text: string;
  readonly origin: Origin;
}

interface ChainView {
  readonly name: string;
  readonly policy: string | undefined;
  readonly origin: Origin;
  readonly policyOrigin: Origin | undefined;
  readonly rules: readonly RuleView[];
}

/** JSON with sorted keys and without undefined members, for structural keys. */
function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  const entries = Object.entries(v as Record<string, unknown>)
    .filter(([, x]) => x !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${stableJson(x)}`).join(',')}}`;
}

function normMac(m: EbMacMatch | undefined): EbMacMatch | undefined {
  if (m === undefined || m.mask !== 'ff:ff:ff:ff:ff:ff') return m;
  return { addr: m.addr, negated: m.negated };
}

/**
 * The structural identity of an ebtables rule: everything but origin and counters (an all-ones mask = none). With
 * style `nft` (default), `-p 0x600` and `-p ! 0x600` equal `-p Length`, as ebtables-nft lists all three alike.
 */
export function ebRuleKey(rule: EbRule, style: EbStyle = 'nft'): string {
  const { origin: _o, counters: _c, ...rest } = rule;
  if (style === 'nft' && rest.proto?.kind === 'ethertype' && rest.proto.value === 0x0600)
    rest.proto = { kind: 'length', negated: false };
  const matches = rest.matches.map((m) => {
    if (m.kind === 'arp') return { ...m, macSrc: normMac(m.macSrc), macDst: normMac(m.macDst) };
    if (m.kind === 'stp') return { ...m, rootAddr: normMac(m.rootAddr), senderAddr: normMac(m.senderAddr) };
    return m;
  });
  return stableJson({ ...rest, src: normMac(rest.src), dst: normMac(rest.dst), matches });
}

/**
 * The structural identity of an iptables rule: everything but origin and counters (conntrack states as a set, the
 * code of ICMP type `any` ignored).
 */
export function iptRuleKey(rule: IptRule): string {
  const { origin: _o, counters: _c, ...rest } = rule;
  const matches = rest.matches.map((m) => {
    if (m.kind === 'conntrack' && m.state)
      return { ...m, state: { ...m.state, states: CT_STATE_ORDER.filter((s) => m.state?.states.includes(s)) } };
    // Type 255 is `any`: iptables ignores (and does not print) the code.
    if (m.kind === 'icmp' && m.type === 0xff) return { ...m, codeLo: 0, codeHi: 0xff };
    return m;
  });
  return stableJson({ ...rest, matches });
}

function ebView(c: EbChain, style: EbStyle): ChainView {
  return {
    name: c.name,
    policy: c.policy,
    origin: c.origin,
    policyOrigin: c.policyOrigin,
    rules: c.rules.map((r) => ({ key: ebRuleKey(r, style), text: renderEbtablesRule(r, { style }), origin: r.origin })),
  };
}

function iptView(c: IptChain, family: IptTable['family']): ChainView {
  return {
    name: c.name,
    policy: c.policy,
    origin: c.origin,
    policyOrigin: c.policyOrigin,
    rules: c.rules.map((r) => ({
      key: iptRuleKey(r),
      text: `-A ${c.name}${renderIptablesRuleBody(r, family)}`,
      origin: r.origin,
    })),
  };
}

/** Pairs of indexes (expected, installed) of a longest common subsequence of the two key lists. */
export function lcsPairs(a: readonly string[], b: readonly string[]): [number, number][] {
  const n = a.length;
  const m = b.length;
  const w = m + 1;
  const len = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      len[i * w + j] =
        a[i] === b[j] ? len[(i + 1) * w + j + 1]! + 1 : Math.max(len[(i + 1) * w + j]!, len[i * w + j + 1]!);
  const pairs: [number, number][] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      pairs.push([i, j]);
      i++;
      j++;
    } else if (len[(i + 1) * w + j]! >= len[i * w + j + 1]!) i++;
    else j++;
  }
  return pairs;
}

function compareChain(e: ChainView, inst: ChainView, options: DriftOptions, out: DriftItem[]): void {
  if (!options.ignorePolicies && e.policy !== inst.policy) {
    out.push({
      kind: 'policy',
      chain: e.name,
      message: `chain ${e.name} has policy ${inst.policy ?? '-'} instead of ${e.policy ?? '-'}`,
      ...(e.policy ? { expectedPolicy: e.policy } : {}),
      ...(inst.policy ? { installedPolicy: inst.policy } : {}),
      expected: e.policyOrigin ?? e.origin,
      installed: inst.policyOrigin ?? inst.origin,
    });
  }
  const pairs = lcsPairs(
    e.rules.map((r) => r.key),
    inst.rules.map((r) => r.key),
  );
  const matchedE = new Set(pairs.map(([i]) => i));
  const matchedI = new Set(pairs.map(([, j]) => j));
  const items: { order: number; item: DriftItem }[] = [];
  const freeInstalled = inst.rules.map((_, j) => j).filter((j) => !matchedI.has(j));
  e.rules.forEach((r, i) => {
    if (matchedE.has(i)) return;
    const k = freeInstalled.findIndex((j) => inst.rules[j]!.key === r.key);
    if (k >= 0) {
      const j = freeInstalled[k]!;
      freeInstalled.splice(k, 1);
      items.push({
        order: i,
        item: {
          kind: 'rule-moved',
          chain: e.name,
          message: `rule ${i + 1} of ${e.name} is installed at position ${j + 1}: ${r.text}`,
          rule: r.text,
          expectedIndex: i + 1,
          installedIndex: j + 1,
          expected: r.origin,
          installed: inst.rules[j]!.origin,
        },
      });
      return;
    }
    items.push({
      order: i,
      item: {
        kind: 'rule-missing',
        chain: e.name,
        message: `rule ${i + 1} of ${e.name} is missing: ${r.text}`,
        rule: r.text,
        expectedIndex: i + 1,
        expected: r.origin,
      },
    });
  });
  for (const j of freeInstalled) {
    const r = inst.rules[j]!;
    // Place an extra rule after the expected rules before it.
    const before = pairs.filter(([, pj]) => pj < j).length;
    const order = before === 0 ? -0.5 : pairs[before - 1]![0] + 0.5;
    items.push({
      order,
      item: {
        kind: 'rule-extra',
        chain: e.name,
        message: `rule ${j + 1} of ${e.name} is not expected: ${r.text}`,
        rule: r.text,
        installedIndex: j + 1,
        installed: r.origin,
      },
    });
  }
  items.sort((x, y) => x.order - y.order);
  for (const x of items) out.push(x.item);
}

function compareViews(
  expected: readonly ChainView[],
  installed: readonly ChainView[],
  options: DriftOptions,
  out: DriftItem[],
): DriftItem[] {
  const want = options.chains ?? (() => true);
  const inst = new Map(installed.map((c) => [c.name, c]));
  const exp = new Map(expected.map((c) => [c.name, c]));
  for (const e of expected) {
    if (!want(e.name)) continue;
    const i = inst.get(e.name);
    if (i === undefined) {
      out.push({
        kind: 'chain-missing',
        chain: e.name,
        message: `chain ${e.name} (${e.rules.length} rules) is not installed`,
        expected: e.origin,
      });
      if (options.chainRules)
        for (const [k, r] of e.rules.entries())
          out.push({
            kind: 'rule-missing',
            chain: e.name,
            message: `rule ${k + 1} of ${e.name} is missing: ${r.text}`,
            rule: r.text,
            expectedIndex: k + 1,
            expected: r.origin,
          });
      continue;
    }
    compareChain(e, i, options, out);
  }
  for (const i of installed) {
    if (!want(i.name) || exp.has(i.name)) continue;
    out.push({
      kind: 'chain-extra',
      chain: i.name,
      message: `chain ${i.name} (${i.rules.length} rules) is installed but not expected`,
      installed: i.origin,
    });
    if (options.chainRules)
      for (const [k, r] of i.rules.entries())
        out.push({
          kind: 'rule-extra',
          chain: i.name,
          message: `rule ${k + 1} of ${i.name} is not expected: ${r.text}`,
          rule: r.text,
          installedIndex: k + 1,
          installed: r.origin,
        });
  }
  return out;
}

/** Drift between two ebtables tables (rules compared structurally; counters and origins ignored). */
export function compareEbRulesets(expected: EbTable, installed: EbTable, options: DriftOptions = {}): DriftItem[] {
  const out: DriftItem[] = [];
  if (expected.name !== installed.name)
    out.push({
      kind: 'table-mismatch',
      chain: '',
      message: `comparing table ${expected.name} with table ${installed.name}`,
    });
  const style = options.style ?? 'nft';
  return compareViews(
    expected.chains.map((c) => ebView(c, style)),
    installed.chains.map((c) => ebView(c, style)),
    options,
    out,
  );
}

/** Drift between two iptables/ip6tables filter tables. */
export function compareIptRulesets(expected: IptTable, installed: IptTable, options: DriftOptions = {}): DriftItem[] {
  const out: DriftItem[] = [];
  if (expected.family !== installed.family || expected.name !== installed.name)
    out.push({
      kind: 'table-mismatch',
      chain: '',
      message: `comparing ${expected.family} ${expected.name} with ${installed.family} ${installed.name}`,
    });
  return compareViews(
    expected.chains.map((c) => iptView(c, expected.family)),
    installed.chains.map((c) => iptView(c, installed.family)),
    options,
    out,
  );
}

/** Drift between two tables of the same kind (ebtables or iptables). */
export function compareRulesets(expected: EbTable, installed: EbTable, options?: DriftOptions): DriftItem[];
export function compareRulesets(expected: IptTable, installed: IptTable, options?: DriftOptions): DriftItem[];
export function compareRulesets(
  expected: EbTable | IptTable,
  installed: EbTable | IptTable,
  options: DriftOptions = {},
): DriftItem[] {
  const isIpt = (t: EbTable | IptTable): t is IptTable => 'family' in t;
  if (isIpt(expected) && isIpt(installed)) return compareIptRulesets(expected, installed, options);
  if (!isIpt(expected) && !isIpt(installed)) return compareEbRulesets(expected, installed, options);
  return [{ kind: 'table-mismatch', chain: '', message: 'comparing an ebtables table with an iptables table' }];
}
