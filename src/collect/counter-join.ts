/**
 * Live evidence against the model: every rule counter that moved in a counter window is joined to the model's
 * compiled rule (same chain, same position, same text — or, when the live chain lists it elsewhere, the one rule of
 * that chain with the same text) and so to its origin (rule ← filter ← filterref ← domain interface). Then, per
 * probe, the model's verdict is set against the counters: **confirmed** (the deciding rule counted), **contradicted**
 * (the model's drop rule stood still while another rule of the chains it walks counted, or a drop rule the model
 * never reaches counted) or **no evidence**. Counters that moved on rules the model cannot map are listed, never
 * dropped. IPVS per-real-server counters are set against the real server the model schedules, kernel SNMP counters
 * against the stack drops the model names.
 */
import type { Report } from '../diagnose/types.ts';
import { type CountDelta, nftRuleKey } from '../netfilter/counter-read.ts';
import type { EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import { renderIptablesRule } from '../netfilter/iptables-render.ts';
import { appendAll } from '../source/arrays.ts';
import { type Origin, renderOriginChain } from '../source/origin.ts';
import type { HostRules } from '../topology/host-rules.ts';
import type { EndCause, NetfilterStep, Trace } from '../trace/types.ts';
import type { CounterWindow, StatDelta } from './counter-window.ts';

export interface JoinedCount {
  readonly node: string;
  readonly delta: CountDelta;
  /** The model's rule: its chain, 1-based number, text and origin. */
  readonly rule: {
    readonly chain: string;
    readonly ruleNumber?: number;
    readonly text: string;
    readonly origin: Origin;
  };
  /**
   * `position`: same chain and number; `text`: same chain, another number (the live order differs); `nft`: an nft
   * counter of a table ebtables-nft/iptables-nft keep (the same counter as the xtables listing's rule at that
   * position, or the chain's policy kept as its last rule).
   */
  readonly by: 'position' | 'text' | 'nft';
  /**
   * The model's table of the rule (filter, raw, nat, mangle) — the table of the model's steps it stands beside: for a
   * native nft rule, the table the model read its chain into; otherwise the listing's table.
   */
  readonly table: string;
}

export interface UnmappedCount {
  readonly node: string;
  readonly delta: CountDelta;
  readonly why: string;
}

export type EvidenceVerdict = 'confirmed' | 'contradicted' | 'no-evidence';

export interface ProbeEvidence {
  readonly probe: string;
  readonly verdict: EvidenceVerdict;
  /** One sentence per fact, counters and rules named. */
  readonly facts: readonly string[];
}

export interface EvidenceReport {
  readonly windows: readonly {
    readonly node: string;
    readonly from: CounterWindow['from'];
    readonly seconds?: number;
    readonly moved: number;
  }[];
  readonly joined: readonly JoinedCount[];
  readonly unmapped: readonly UnmappedCount[];
  readonly probes: readonly ProbeEvidence[];
  /** Kernel counters that moved (per node), and IPVS deltas, as read. */
  readonly stack: readonly { readonly node: string; readonly name: string; readonly delta: number }[];
  /** IPVS counters that moved (per service and real server, `ipvsadm -Ln --stats`), per node. */
  readonly ipvs: readonly (CounterWindow['ipvs'][number] & { readonly node: string })[];
}

/** A text with its blanks as single spaces, untouched (no copy) when it already is. */
const space = (s: string) => (/\s\s|[^\S ]|^\s|\s$/.test(s) ? s.trim().replace(/\s+/g, ' ') : s);

export interface ModelRule {
  readonly chain: string;
  readonly ruleNumber?: number;
  readonly text: string;
  readonly origin: Origin;
}

/** The model's rules of one listing, by chain, rendered only when asked (a fleet has ~290,000 rules). */
export class ModelIndex {
  // Chains by name, per table, and each rule's text once rendered: a window asks per moved counter.
  private readonly natChains: ReadonlyMap<string, EbTable['chains'][number]>;
  private filterChains: ReadonlyMap<string, IptTable['chains'][number]> | undefined;
  private rawChains: ReadonlyMap<string, IptTable['chains'][number]> | undefined;
  private ipNatChains: ReadonlyMap<string, IptTable['chains'][number]> | undefined;
  private mangleChains: ReadonlyMap<string, IptTable['chains'][number]> | undefined;
  private ebFilterChains: ReadonlyMap<string, EbTable['chains'][number]> | undefined;
  private nftChains: ReadonlyMap<string, IptTable['chains'][number]> | undefined;
  private nftTables: ReadonlyMap<object, 'filter' | 'raw' | 'nat' | 'mangle'> | undefined;
  private readonly hooks = new Map<string, NftHook | undefined>();
  private readonly texts = new Map<object, string>();
  constructor(
    private readonly rules: HostRules,
    private readonly style: 'nft' | 'legacy',
  ) {
    this.natChains = byName(rules.nat.chains);
  }
  private filter(): ReadonlyMap<string, IptTable['chains'][number]> | undefined {
    if (!this.rules.filter4) return undefined;
    this.filterChains ??= byName(this.rules.filter4.chains);
    return this.filterChains;
  }
  private text(r: object, render: () => string): string {
    let t = this.texts.get(r);
    if (t === undefined) {
      t = render();
      this.texts.set(r, t);
    }
    return t;
  }
  /** The ebtables table of a listed rule the model evaluates: libvirt's nat, pve-firewall's filter. */
  private ebChains(table: string): ReadonlyMap<string, EbTable['chains'][number]> | undefined {
    if (table === 'nat') return this.natChains;
    if (table !== 'filter' || !this.rules.ebFilter) return undefined;
    this.ebFilterChains ??= byName(this.rules.ebFilter.chains);
    return this.ebFilterChains;
  }
  private eb(
    chains: ReadonlyMap<string, EbTable['chains'][number]>,
    chain: string,
    n: number | undefined,
  ): ModelRule | 'no-chain' | 'no-rule' {
    const c = chains.get(chain);
    if (!c) return 'no-chain';
    if (n === undefined) return { chain, text: `policy: ${c.policy}`, origin: c.policyOrigin };
    const r = c.rules[n - 1];
    if (!r) return 'no-rule';
    return {
      chain,
      ruleNumber: n,
      text: this.text(r, () => renderEbtablesRule(r, { style: this.style })),
      origin: r.origin,
    };
  }
  private ipt(chains: ReadonlyMap<string, IptTable['chains'][number]>, chain: string, n: number | undefined) {
    const c = chains.get(chain);
    if (!c) return 'no-chain';
    if (n === undefined)
      return c.policy && c.policyOrigin ? { chain, text: `policy: ${c.policy}`, origin: c.policyOrigin } : 'no-rule';
    const r = c.rules[n - 1];
    if (!r) return 'no-rule';
    return { chain, ruleNumber: n, text: this.text(r, () => renderIptablesRule(chain, r, 'ipv4')), origin: r.origin };
  }
  /** The host's own iptables raw table (only when its iptables-save was given). */
  private raw(): ReadonlyMap<string, IptTable['chains'][number]> | undefined {
    if (!this.rules.raw4) return undefined;
    this.rawChains ??= byName(this.rules.raw4.chains);
    return this.rawChains;
  }
  /** The host's own iptables nat and mangle tables (its iptables-save, or the nat base chains of its nft ruleset). */
  private ipNat(): ReadonlyMap<string, IptTable['chains'][number]> | undefined {
    if (!this.rules.nat4) return undefined;
    this.ipNatChains ??= byName(this.rules.nat4.chains);
    return this.ipNatChains;
  }
  private mangle(): ReadonlyMap<string, IptTable['chains'][number]> | undefined {
    if (!this.rules.mangle4) return undefined;
    this.mangleChains ??= byName(this.rules.mangle4.chains);
    return this.mangleChains;
  }
  private iptTable(d: ListedRule) {
    if (d.source !== 'iptables') return undefined;
    switch (d.table) {
      case 'filter':
        return this.filter();
      case 'raw':
        return this.raw();
      case 'nat':
        return this.ipNat();
      case 'mangle':
        return this.mangle();
      default:
        return undefined;
    }
  }
  at(d: ListedRule, n: number | undefined): ModelRule | 'no-chain' | 'no-rule' | 'no-table' {
    if (d.source === 'ebtables') {
      const e = this.ebChains(d.table);
      return e ? this.eb(e, d.chain, n) : 'no-table';
    }
    const f = this.iptTable(d);
    if (f) return this.ipt(f, d.chain, n);
    return 'no-table';
  }
  length(d: ListedRule): number {
    if (d.source === 'ebtables') return this.ebChains(d.table)?.get(d.chain)?.rules.length ?? 0;
    return this.iptTable(d)?.get(d.chain)?.rules.length ?? 0;
  }
  /** A chain of the model (for the end of a user chain a trace saw), with its origin. */
  chain(d: ListedRule): { readonly name: string; readonly origin: Origin } | undefined {
    if (d.source === 'ebtables') return this.ebChains(d.table)?.get(d.chain);
    return this.iptTable(d)?.get(d.chain);
  }
  /**
   * A rule of a host's own native nftables table (`ip filter`, `ip libvirt_network`), when the model read the host's
   * rule set from `nft list ruleset`: the chain `TABLE/CHAIN`, the rule by its nft text (counters ignored; of rules
   * that read the same, the first, where the kernel stops), or the chain's policy (`text` undefined).
   */
  nftRule(table: string, chain: string, text: string | undefined): ModelRule | 'no-chain' | 'no-rule' {
    const c = this.nftChain(table, chain);
    if (!c) return 'no-chain';
    if (text === undefined)
      return c.policy && c.policyOrigin
        ? { chain: c.name, text: `policy: ${c.policy}`, origin: c.policyOrigin }
        : 'no-rule';
    const key = nftRuleKey(text);
    const i = c.rules.findIndex((r) => r.nft !== undefined && nftRuleKey(r.nft.text) === key);
    if (i < 0) return 'no-rule';
    const r = c.rules[i]!;
    return { chain: c.name, ruleNumber: i + 1, text: r.nft!.text, origin: r.origin };
  }
  /**
   * The model's chain of a native nft table of the host (`ip filter`, `DOCKER-USER`; `ip nat`, `ip libvirt_network`
   * guest_nat), when it read one.
   */
  nftChain(table: string, chain: string): IptTable['chains'][number] | undefined {
    if (!this.nftChains) {
      const tables = new Map<object, 'filter' | 'raw' | 'nat' | 'mangle'>();
      const chains = new Map<string, IptTable['chains'][number]>();
      for (const [name, t] of [
        ['filter', this.rules.filter4],
        ['raw', this.rules.raw4],
        ['nat', this.rules.nat4],
        ['mangle', this.rules.mangle4],
      ] as const)
        for (const c of t?.chains ?? [])
          if (c.nft !== undefined && !chains.has(c.nft.chain)) {
            chains.set(c.nft.chain, c);
            tables.set(c, name);
          }
      this.nftChains = chains;
      this.nftTables = tables;
    }
    return this.nftChains.get(`${table.split(' ')[1] ?? table}/${chain}`);
  }
  /**
   * The model's table and hook a native nft base chain of the host is one of (`inet firewalld filter_FORWARD`: filter
   * FORWARD), and whether it is that hook's last base chain; undefined for a chain that is no base chain the model read.
   */
  nftHook(table: string, chain: string): NftHook | undefined {
    const key = `${table}\t${chain}`;
    if (this.hooks.has(key)) return this.hooks.get(key);
    const h = this.findNftHook(table, chain);
    this.hooks.set(key, h);
    return h;
  }
  private findNftHook(table: string, chain: string): NftHook | undefined {
    const c = this.nftChain(table, chain);
    const t = c ? this.nftTables?.get(c) : undefined;
    if (!c || !t) return undefined;
    const all = { filter: this.rules.filter4, raw: this.rules.raw4, nat: this.rules.nat4, mangle: this.rules.mangle4 }[
      t
    ];
    const byName = new Map((all?.chains ?? []).map((x) => [x.name, x] as const));
    for (const b of all?.chains ?? []) {
      if (!b.builtin) continue;
      // The hook's base chains in the model's order: the built-in chain and its next base chains.
      let x: typeof b | undefined = b;
      for (let n = 0; x && n < 64; n++, x = x.nextBaseChain !== undefined ? byName.get(x.nextBaseChain) : undefined)
        if (x === c) return { table: t, hook: b.name, chain: c.nft!.chain, last: x.nextBaseChain === undefined };
    }
    return undefined;
  }
  /** The model's table (filter, raw, nat, mangle) that holds a native nft chain of the host. */
  nftModelTable(table: string, chain: string): 'filter' | 'raw' | 'nat' | 'mangle' | undefined {
    const c = this.nftChain(table, chain);
    return c ? this.nftTables?.get(c) : undefined;
  }
  /** What the model holds of a host's tables, for the reason a listed rule has no counterpart. */
  get holds(): string {
    const eb = this.rules.ebFilter ? "libvirt's ebtables nat rules, pve-firewall's ebtables filter table" : '';
    const own = [
      ...(this.rules.installed ? ['filter'] : []),
      ...(this.rules.raw4 ? ['raw'] : []),
      ...(this.rules.nat4 ? ['nat'] : []),
      ...(this.rules.mangle4 ? ['mangle'] : []),
    ];
    const tables = own.length > 1 ? `${own.slice(0, -1).join(', ')} and ${own[own.length - 1]}` : own[0];
    if (this.rules.installed)
      return `${eb || "libvirt's ebtables nat rules"} and the host's own iptables ${tables} tables`;
    return `libvirt's ebtables nat and iptables filter rules${tables ? ` and the host's own iptables ${tables} table${own.length > 1 ? 's' : ''}` : ''}`;
  }
}

/** The model's hook of a native nft base chain (see `ModelIndex.nftHook`). */
export interface NftHook {
  readonly table: 'filter' | 'raw' | 'nat' | 'mangle';
  readonly hook: string;
  /** The base chain (`table/chain`, as the model's steps name it). */
  readonly chain: string;
  readonly last: boolean;
}

/** The first chain of each name, as `find` would give it. */
function byName<C extends { readonly name: string }>(chains: readonly C[]): ReadonlyMap<string, C> {
  const m = new Map<string, C>();
  for (const c of chains) if (!m.has(c.name)) m.set(c.name, c);
  return m;
}

/** Why the model has no table for a listed rule, said as what the walk does not evaluate. */
function noTable(listed: ListedRule, idx: ModelIndex): string {
  if (listed.source === 'ip6tables')
    return `the model walks IPv4 only: ip6tables rules are not evaluated (it holds ${idx.holds})`;
  if (listed.source === 'ebtables' && listed.table === 'filter')
    return `the model has no ebtables filter rules: libvirt installs none there and the walk does not evaluate a libvirt host's own (it holds ${idx.holds})`;
  return `the model has no ${listed.source} ${listed.table} rules (it holds ${idx.holds})`;
}

/** A rule as a host lists it: where (source, table, chain, 1-based number or the policy) and its text. */
export type ListedRule = Pick<CountDelta, 'source' | 'table' | 'chain' | 'ruleNumber' | 'text'>;

/**
 * The model's rule for a listed one: same chain and number with the same text, or else the one rule of that chain
 * with the same text; or why there is none.
 */
export function modelRuleFor(
  idx: ModelIndex,
  listed: ListedRule,
): { readonly rule: ModelRule; readonly by: 'position' | 'text' } | { readonly why: string } {
  const at = idx.at(listed, listed.ruleNumber);
  if (at === 'no-table') return { why: noTable(listed, idx) };
  if (at === 'no-chain') return { why: `the model has no chain ${listed.chain} in ${listed.source} ${listed.table}` };
  const text = space(listed.text);
  if (at !== 'no-rule' && (listed.ruleNumber === undefined || space(at.text) === text))
    return { rule: at, by: 'position' };
  // The live chain lists the rule elsewhere (e.g. PREROUTING jumps in the guests' start order): the one rule of
  // the chain with the same text.
  const n = idx.length(listed);
  const same: ModelRule[] = [];
  for (let i = 1; i <= n && same.length < 2; i++) {
    const r = idx.at(listed, i);
    if (typeof r !== 'string' && space(r.text) === text) same.push(r);
  }
  if (same.length === 1) return { rule: same[0]!, by: 'text' };
  return {
    why:
      same.length === 0
        ? `no rule of the model's ${listed.chain} reads '${text}' (installed rules drift from the model)`
        : `several rules of the model's ${listed.chain} read '${text}'`,
  };
}

/** Joins the moved rule counters of a window to the model's rules of that node. */
export function joinWindow(
  node: string,
  w: CounterWindow,
  rules: HostRules | undefined,
  style: 'nft' | 'legacy' = 'nft',
): { joined: JoinedCount[]; unmapped: UnmappedCount[] } {
  const joined: JoinedCount[] = [];
  const unmapped: UnmappedCount[] = [];
  if (!rules) {
    for (const delta of w.rules)
      unmapped.push({ node, delta, why: `the model has no rules for ${node} (not a hypervisor of the scenario)` });
    return { joined, unmapped };
  }
  const idx = new ModelIndex(rules, style);
  // The xtables counters by position, only when nft counters need them (a fleet joins ~33,000 counters).
  const xt = w.rules.some((d) => d.source === 'nft') ? new Map<string, JoinedCount>() : undefined;
  for (const delta of w.rules) {
    if (delta.source === 'nft') continue;
    const m = modelRuleFor(idx, delta);
    if ('why' in m) unmapped.push({ node, delta, why: m.why });
    else {
      const j: JoinedCount = { node, delta, rule: m.rule, by: m.by, table: delta.table };
      joined.push(j);
      xt?.set(`${delta.source}\t${delta.table}\t${delta.chain}\t${delta.ruleNumber}`, j);
    }
  }
  for (const delta of w.rules) {
    if (delta.source !== 'nft') continue;
    // A table of the host's own nft rule set the model read (not kept by ebtables-nft / iptables-nft).
    const native = idx.nftRule(delta.table, delta.chain, delta.ruleNumber === undefined ? undefined : delta.text);
    if (typeof native !== 'string') {
      joined.push({ node, delta, rule: native, by: 'text', table: idx.nftModelTable(delta.table, delta.chain)! });
      continue;
    }
    const [family = '', table = ''] = delta.table.split(' ');
    const source = NFT_MANAGED[family]?.includes(table) ? NFT_SOURCE[family] : undefined;
    if (source === undefined) {
      unmapped.push({ node, delta, why: `the model has no nft table ${delta.table} (not made by libvirt)` });
      continue;
    }
    const same = xt?.get(`${source}\t${table}\t${delta.chain}\t${delta.ruleNumber}`);
    if (same) {
      joined.push({ node, delta, rule: same.rule, by: 'nft', table: same.table });
      continue;
    }
    // ebtables-nft keeps a chain's policy as a last rule (`counter accept`, printed so even for a user chain whose
    // policy ebtables -L lists as RETURN) that ebtables -L does not list as a rule.
    const listed = { source, table, chain: delta.chain, text: '' };
    if (
      source === 'ebtables' &&
      /^(?:counter )?(accept|drop|return)$/.test(delta.text.trim()) &&
      delta.ruleNumber === idx.length(listed) + 1
    ) {
      const m = modelRuleFor(idx, listed);
      if (!('why' in m)) {
        joined.push({ node, delta, rule: m.rule, by: 'nft', table });
        continue;
      }
    }
    unmapped.push({
      node,
      delta,
      why: `${delta.table} is kept by ${source}-nft, but no ${source} ${table} rule of the window at ${delta.chain} position ${delta.ruleNumber} moved with it to tell which rule it is`,
    });
  }
  return { joined, unmapped };
}

/** nft tables that ebtables-nft / iptables-nft keep, by family: their counters are the xtables listing's. */
export const NFT_MANAGED: Readonly<Record<string, readonly string[]>> = {
  bridge: ['nat', 'filter', 'broute'],
  ip: ['filter', 'nat', 'raw', 'mangle', 'security'],
  ip6: ['filter', 'nat', 'raw', 'mangle', 'security'],
};
export const NFT_SOURCE: Readonly<Record<string, CountDelta['source']>> = {
  bridge: 'ebtables',
  ip: 'iptables',
  ip6: 'ip6tables',
};

const counts = (d: CountDelta) => `${grouped(d.packets)} packets / ${grouped(d.bytes)} bytes`;

/** `n.toLocaleString('en-US')` (57,000) without its cost for whole counts; anything else goes to it. */
function grouped(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) return n.toLocaleString('en-US');
  const d = String(n);
  let out = d.slice(0, d.length % 3 || 3);
  for (let i = out.length; i < d.length; i += 3) out += `,${d.slice(i, i + 3)}`;
  return out;
}
const within = (w: CounterWindow | undefined) =>
  w?.seconds !== undefined ? ` in the ${w.seconds} s window` : ' in the window';

/** A moved counter as the step that would decide on it words it (an ebtables rule a bridge step, any other ipv4). */
interface MovedCell {
  readonly family: 'ebtables' | 'iptables';
  readonly table: string;
  /** The last joined counter of that rule. */
  j: JoinedCount;
  /** A probe of the model decides on that rule. */
  decided: boolean;
}

/**
 * The joined counters by node, chain, rule number (0 for the policy), step family and table — looked up per step of
 * every probe (a fleet's probes take ~130,000 steps) without building a key — and in the order first joined.
 */
/** The table a step names for a joined counter. */
const tableOf = (j: JoinedCount) => j.table;

class MovedIndex {
  private readonly byNode = new Map<string, Map<string, Map<number, MovedCell[]>>>();
  readonly cells: MovedCell[] = [];
  private numbers(node: string, chain: string, create: boolean): Map<number, MovedCell[]> | undefined {
    let chains = this.byNode.get(node);
    if (!chains) {
      if (!create) return undefined;
      chains = new Map();
      this.byNode.set(node, chains);
    }
    let numbers = chains.get(chain);
    if (!numbers && create) {
      numbers = new Map();
      chains.set(chain, numbers);
    }
    return numbers;
  }
  set(j: JoinedCount): void {
    const family = j.delta.source === 'ebtables' ? 'ebtables' : 'iptables';
    const table = tableOf(j);
    const numbers = this.numbers(j.node, j.rule.chain, true)!;
    const n = j.rule.ruleNumber ?? 0;
    const cells = numbers.get(n);
    const cell = cells?.find((c) => c.family === family && c.table === table);
    if (cell) cell.j = j;
    else {
      const c: MovedCell = { family, table, j, decided: false };
      if (cells) cells.push(c);
      else numbers.set(n, [c]);
      this.cells.push(c);
    }
  }
  /** The cell of a joined counter. */
  of(j: JoinedCount): MovedCell | undefined {
    const cells = this.numbers(j.node, j.rule.chain, false)?.get(j.rule.ruleNumber ?? 0);
    const family = j.delta.source === 'ebtables' ? 'ebtables' : 'iptables';
    const table = tableOf(j);
    return cells?.find((c) => c.family === family && c.table === table);
  }
  /** The moved counter of the rule a step decided on. */
  get(node: string, s: Pick<NetfilterStep, 'family' | 'table' | 'chain' | 'ruleNumber'>): MovedCell | undefined {
    const cells = this.numbers(node, s.chain, false)?.get(s.ruleNumber ?? 0);
    if (!cells) return undefined;
    const family = s.family === 'bridge' ? 'ebtables' : 'iptables';
    for (const c of cells) if (c.family === family && c.table === s.table) return c;
    return undefined;
  }
}

/** Kernel counters that count the stack drops the model names (nstat names). */
export const STACK_COUNTERS: Partial<Record<EndCause, readonly string[]>> = {
  'rp-filter': ['TcpExtIPReversePathFilter'],
  'ip-forward-off': ['IpInAddrErrors'],
  'not-local': ['IpInAddrErrors'],
  'martian-source': ['TcpExtIPReversePathFilter', 'IpInAddrErrors'],
};

/**
 * Sets every probe's verdict against the joined counters of the windows. `windows` maps a node of the scenario to
 * its window.
 */
export function probeEvidence(
  report: Pick<Report, 'traces'>,
  windows: ReadonlyMap<string, CounterWindow>,
  allJoined: readonly JoinedCount[],
): ProbeEvidence[] {
  // nft counters of xtables tables are the same counters as the listing's: counted once.
  const joined = allJoined.filter((j) => j.by !== 'nft');
  const moved = new MovedIndex();
  for (const j of joined) moved.set(j);
  const ipvsMoved = [...windows.values()].flatMap((w) => w.ipvs);
  // Drop rules that counted but on which no probe of the model decides: a drop the model never predicts.
  for (const t of report.traces)
    for (const h of t.hops)
      for (const s of h.steps) {
        if (s.kind !== 'netfilter') continue;
        const c = moved.get(h.place.node, s);
        if (c) c.decided = true;
      }
  // Indexed by node and the port their chain is about: each probe looks up only the ports it crosses.
  const unexplained = new Map<string, Map<string, JoinedCount[]>>();
  for (const { j, decided } of moved.cells) {
    if (decided || !isDrop(j.rule.text)) continue;
    const port = chainPort(j.rule.chain);
    if (port === undefined) continue;
    let ports = unexplained.get(j.node);
    if (!ports) {
      ports = new Map();
      unexplained.set(j.node, ports);
    }
    const list = ports.get(port);
    if (list) list.push(j);
    else ports.set(port, [j]);
  }
  // By node and chain, in the order joined, with what each rule's text says (tested once, not per probe step).
  const byNode = new Map<string, Map<string, Moved[]>>();
  joined.forEach((j, order) => {
    let chains = byNode.get(j.node);
    if (!chains) {
      chains = new Map();
      byNode.set(j.node, chains);
    }
    const m: Moved = {
      j,
      order,
      drop: /(^|\s)-j DROP\b|policy: DROP/.test(j.rule.text),
      decides: /(^|\s)-j (DROP|ACCEPT)\s*$|^policy: /.test(j.rule.text),
      decided: moved.of(j)?.decided === true,
    };
    const list = chains.get(j.rule.chain);
    if (list) list.push(m);
    else chains.set(j.rule.chain, [m]);
  });
  // A counted drop the model does not reach, said for every probe that walks past it: its words built once, and
  // a number for the words around the probe's name (what tells two such sentences of one probe apart).
  const said = new Map<JoinedCount, Unreached>();
  const ids = new Map<string, number>();
  const unreached = (o: JoinedCount): Unreached => {
    let s = said.get(o);
    if (!s) {
      const head = `${o.rule.chain} rule ${o.rule.ruleNumber ?? 'policy'} on ${o.node} (${o.rule.text}) counted ${counts(o.delta)}${within(windows.get(o.node))}, a drop the model does not reach for `;
      const tail = ` — ${renderOriginChain(o.rule.origin)}`;
      const words = `${head}\u0000${tail}`;
      let id = ids.get(words);
      if (id === undefined) {
        id = ids.size;
        ids.set(words, id);
      }
      s = { head, tail, id };
      said.set(o, s);
    }
    return s;
  };
  return report.traces.map((t) => oneProbe(t, windows, moved, byNode, ipvsMoved, unexplained, unreached));
}

/** Counted drop rules on which no probe decides, by node and the port their chain is about. */
type Unexplained = ReadonlyMap<string, ReadonlyMap<string, readonly JoinedCount[]>>;

/** The sentence of a counted drop the model does not reach, around a probe's name; `id` tells two apart. */
interface Unreached {
  readonly head: string;
  readonly tail: string;
  readonly id: number;
}

/** A joined counter of a node, its place in the joined order and what its rule's text says. */
interface Moved {
  readonly j: JoinedCount;
  readonly order: number;
  /** `-j DROP` or a DROP policy. */
  readonly drop: boolean;
  /** A verdict that decides (DROP, ACCEPT, a policy), not a jump. */
  readonly decides: boolean;
  /** Some probe of the model decides on this rule (a window's counts are every probe's: that one's traffic counted). */
  readonly decided: boolean;
}

/** The moved counters of `chains` on a node that pass `keep`, in the joined order. */
function movedIn(
  chains: ReadonlySet<string>,
  here: ReadonlyMap<string, readonly Moved[]> | undefined,
  keep: (m: Moved) => boolean,
): JoinedCount[] {
  if (!here) return [];
  const out: Moved[] = [];
  for (const c of chains) for (const m of here.get(c) ?? []) if (keep(m)) out.push(m);
  return out.sort((a, b) => a.order - b.order).map((m) => m.j);
}

const isDrop = (text: string) => /(^|\s)-j DROP\s*$|^policy: DROP$/.test(text);

/** The port a libvirt chain is about (`I-vnet0-ipv4-ip`, `libvirt-O-vnet0`, `FI-vnet0` → vnet0). */
function chainPort(chain: string): string | undefined {
  return /^(?:libvirt-)?[IOPJ]-([^-]+)|^[FH][IOJP]-(.+)$/
    .exec(chain)
    ?.slice(1)
    .find((x) => x !== undefined);
}

function oneProbe(
  t: Trace,
  windows: ReadonlyMap<string, CounterWindow>,
  moved: MovedIndex,
  byNode: ReadonlyMap<string, ReadonlyMap<string, readonly Moved[]>>,
  ipvsMoved: readonly CounterWindow['ipvs'][number][],
  unexplained: Unexplained,
  unreached: (o: JoinedCount) => Unreached,
): ProbeEvidence {
  const probe = t.probe.name;
  const confirms: string[] = [];
  const contradicts: string[] = [];
  const notes: string[] = [];
  // The unreached drops said so far (by their words around the probe's name).
  const said = new Set<number>();
  const byId = new Map<number, Trace['hops'][number]>();
  for (const h of t.hops) byId.set(h.id, h);
  const hops = t.path.map((id) => byId.get(id)!).filter((h) => h !== undefined);
  for (const h of hops) {
    const node = h.place.node;
    const w = windows.get(node);
    for (const s of h.steps) {
      if (s.kind !== 'netfilter') continue;
      if (!w) continue;
      const j = moved.get(node, s)?.j;
      const drops = s.verdict === 'DROP';
      // Worded only when said (a fleet's probes take ~130,000 steps, most of them on rules that did not count).
      const what = j || drops ? stepWords(probe, h.place, s) : '';
      if (j)
        confirms.push(
          `${what}; that rule counted ${counts(j.delta)}${within(w)} (${j.delta.pos.file}:${j.delta.pos.line})`,
        );
      // Other rules of the chains this decision walked that counted: a drop the model does not take there (nor for
      // any other probe — a window counts the traffic of every probe reproduced in it).
      const here = byNode.get(node);
      if (!here && !(drops && !j)) continue;
      const chains = new Set(s.path);
      const others = movedIn(
        chains,
        here,
        (m) => m.drop && !m.decided && (m.j.rule.chain !== s.chain || m.j.rule.ruleNumber !== s.ruleNumber),
      );
      for (const o of others) {
        const u = unreached(o);
        said.add(u.id);
        contradicts.push(`${u.head}${probe}${u.tail}`);
      }
      if (!j && drops) {
        // Another rule that decides (a verdict, not a jump) in the chains this decision walked.
        const movedHere = movedIn(chains, here, (m) => m.decides);
        if (movedHere.length > 0)
          contradicts.push(
            `${what}, but that rule did not count${within(w)} while ${movedHere
              .map((o) => `${o.rule.chain} rule ${o.rule.ruleNumber ?? 'policy'} counted ${counts(o.delta)}`)
              .join(', ')}`,
          );
        else
          notes.push(
            `${what}; no rule of ${[...chains].join(' → ')} counted${within(w)} (was the request reproduced?)`,
          );
      }
    }
    for (const s of h.steps) {
      if (s.kind !== 'ipvs' || s.destination === undefined) continue;
      const here = ipvsMoved.filter((d) => d.service === s.service && d.destination !== undefined);
      if (here.length === 0) {
        // No per-real-server counters (ipvsadm --stats not listed): the namespace's totals (/proc/net/ip_vs_stats).
        const dw = windows.get(node);
        const tot = dw?.stack.filter((d) => d.name === 'IpVsConns' || d.name === 'IpVsInPkts') ?? [];
        if (dw && s.outcome === 'forwarded') {
          if (tot.length > 0)
            confirms.push(
              `the model has ${node} schedule ${probe} on ${s.service}; its IPVS totals moved: ${tot.map((d) => `${d.name} +${d.delta}`).join(', ')}${within(dw)} (${tot[0]!.pos.file}:${tot[0]!.pos.line})`,
            );
          else if (hasIpvsTotals(dw))
            notes.push(
              `the model has ${node} schedule ${probe} on ${s.service}; its IPVS totals did not move${within(dw)}`,
            );
        }
        continue;
      }
      const mine = here.find((d) => d.destination === s.destination);
      const rest = here.filter((d) => d.destination !== s.destination);
      if (mine)
        confirms.push(
          `the model schedules ${probe} on ${s.service} to ${s.destination}; its counters moved by ${mine.conns} connections / ${mine.inPkts} packets in (${mine.pos.file}:${mine.pos.line})`,
        );
      else
        contradicts.push(
          `the model schedules ${probe} on ${s.service} to ${s.destination}, which did not count, while ${rest.map((d) => `${d.destination} counted ${d.conns} connections`).join(', ')}`,
        );
    }
  }
  // A drop rule of a port this probe crosses counted, and the model decides on it for no probe (each port once,
  // in the order first crossed).
  const crossed = new Map<string, Set<string>>();
  for (const h of t.hops) {
    const { node, iface } = h.place;
    if (!iface) continue;
    const ports = unexplained.get(node);
    const list = ports?.get(iface);
    if (!list) continue;
    let seen = crossed.get(node);
    if (!seen) {
      seen = new Set();
      crossed.set(node, seen);
    }
    if (seen.has(iface)) continue;
    seen.add(iface);
    for (const o of list) {
      const u = unreached(o);
      if (said.has(u.id)) continue;
      said.add(u.id);
      contradicts.push(`${u.head}${probe}${u.tail}`);
    }
  }
  const cause = t.end.cause;
  const names = cause ? STACK_COUNTERS[cause] : undefined;
  const w = windows.get(t.end.place.node);
  if (names && w) {
    const hit = w.stack.filter((d: StatDelta) => names.includes(d.name));
    if (hit.length > 0)
      confirms.push(
        `the model says the kernel of ${t.end.place.node} drops ${probe} (${cause}); ${hit.map((d) => `${d.name} +${d.delta}`).join(', ')}${within(w)}`,
      );
    else
      notes.push(
        `the model says the kernel of ${t.end.place.node} drops ${probe} (${cause}); ${names.join(' / ')} did not move${within(w)}`,
      );
  }
  const verdict: EvidenceVerdict =
    contradicts.length > 0 ? 'contradicted' : confirms.length > 0 ? 'confirmed' : 'no-evidence';
  const facts = [...confirms, ...contradicts, ...notes];
  if (facts.length === 0) facts.push(`no counter window covers the nodes ${probe} crosses`);
  return { probe, verdict, facts };
}

/** "the model drops PROBE at NODE IFACE CHAIN rule N" (or passes, or the policy). */
function stepWords(probe: string, place: Trace['hops'][number]['place'], s: NetfilterStep): string {
  const where = `${place.node}${place.iface ? ` ${place.iface}` : ''} ${s.chain}${s.ruleNumber !== undefined ? ` rule ${s.ruleNumber}` : ' policy'}`;
  return s.verdict === 'DROP' ? `the model drops ${probe} at ${where}` : `the model passes ${probe} at ${where}`;
}

/** Whether the window read IPVS totals (a listing of /proc/net/ip_vs_stats at both ends). */
function hasIpvsTotals(w: CounterWindow): boolean {
  return w.ipvsTotals === true;
}

/** The whole join for a report: windows keyed by scenario node, the model's rules per host. */
export function joinEvidence(
  report: Pick<Report, 'traces'>,
  windows: ReadonlyMap<string, CounterWindow>,
  hostRules: ReadonlyMap<string, HostRules>,
  style: 'nft' | 'legacy' = 'nft',
): EvidenceReport {
  const joined: JoinedCount[] = [];
  const unmapped: UnmappedCount[] = [];
  for (const [node, w] of windows) {
    const r = joinWindow(node, w, hostRules.get(node), style);
    appendAll(joined, r.joined);
    appendAll(unmapped, r.unmapped);
  }
  return {
    windows: [...windows].map(([node, w]) => ({
      node,
      from: w.from,
      ...(w.seconds !== undefined ? { seconds: w.seconds } : {}),
      moved: w.rules.length,
    })),
    joined,
    unmapped,
    probes: probeEvidence(report, windows, joined),
    stack: [...windows].flatMap(([node, w]) => w.stack.map((d) => ({ node, name: d.name, delta: d.delta }))),
    ipvs: [...windows].flatMap(([node, w]) => w.ipvs.map((d) => ({ ...d, node }))),
  };
}

/** The evidence section of `diagnose` (text). */
export function renderEvidence(e: EvidenceReport): string {
  const L: string[] = ['', 'Live evidence (counter windows):'];
  for (const w of e.windows)
    L.push(
      `  ${w.node}: ${w.from === 'watch' ? 'watch' : 'two bundles'}${w.seconds !== undefined ? `, ${w.seconds} s` : ''}, ${w.moved} rule counters moved`,
    );
  for (const p of e.probes) {
    L.push(`  ${p.probe}: ${p.verdict === 'no-evidence' ? 'no evidence' : p.verdict}`);
    for (const f of p.facts) L.push(`    - ${f}`);
  }
  L.push(`  moved counters joined to the model: ${e.joined.length}`);
  for (const j of e.joined)
    L.push(
      `    ${j.node} ${j.delta.source} ${j.delta.table} ${j.rule.chain} ${j.rule.ruleNumber !== undefined ? `rule ${j.rule.ruleNumber}` : 'policy'}${j.by === 'text' ? ` (listed as rule ${j.delta.ruleNumber})` : j.by === 'nft' ? ` (nft ${j.delta.table} ${j.delta.chain} rule ${j.delta.ruleNumber})` : ''}: +${counts(j.delta)} — ${renderOriginChain(j.rule.origin)}`,
    );
  if (e.unmapped.length > 0) {
    L.push(`  moved counters the model cannot map: ${e.unmapped.length}`);
    for (const u of e.unmapped)
      L.push(
        `    ${u.node} ${u.delta.source} ${u.delta.table} ${u.delta.chain} ${u.delta.ruleNumber !== undefined ? `rule ${u.delta.ruleNumber}` : 'policy'} '${u.delta.text}': +${counts(u.delta)} (${u.delta.pos.file}:${u.delta.pos.line}) — ${u.why}`,
      );
  }
  return `${L.join('\n')}\n`;
}
