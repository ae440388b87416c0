/**
 * Drift: where what a host runs differs from what its domains' XML says it should run. Three comparisons:
 * - filter bindings: the live `virsh nwfilter-binding-dumpxml` against the bindings the domain XML implies;
 * - ebtables: the installed `ebtables -t nat -L --Lc`, read into the netfilter model, against our compilation of the
 *   bindings, through the netfilter ruleset comparison (`compareRulesets`: structural, counters ignored);
 * - iptables/ip6tables: libvirt's chains in `iptables-save`/`ip6tables-save`, read likewise, against the compiled
 *   filter tables.
 */
import { bindingForInterface, type Domain } from '../libvirt/domain-xml.ts';
import type { NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import { compareRulesets, type DriftItem } from '../netfilter/drift.ts';
import type { EbChain, EbRule, EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { readEbtablesList, stripEbCounters } from '../netfilter/ebtables-read.ts';
import { renderEbtablesList, renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { appendAll } from '../source/arrays.ts';
import type { Issue } from '../source/issue.ts';
import { implicit, type Origin } from '../source/origin.ts';

export interface DriftEntry {
  readonly host: string;
  /** `binding`, `ebtables`, `iptables`/`ip6tables` or (Proxmox) `ipset`. */
  readonly area: 'binding' | 'ebtables' | 'iptables' | 'ip6tables' | 'ipset';
  /** Port or chain concerned. */
  readonly subject: string;
  readonly message: string;
  /** Lines installed but not compiled (`+`) and compiled but not installed (`-`). */
  readonly lines: readonly string[];
  /**
   * The same differences with their origins (Proxmox nodes): `live` the listing's line, `config` the compiled rule's
   * or set member's origin (the `.fw`/config line that makes it).
   */
  readonly differences?: readonly {
    readonly sign: '+' | '-' | '~';
    readonly text: string;
    readonly live?: Origin;
    readonly config?: Origin;
  }[];
}

/** The style of an `ebtables --version` line: `ebtables 1.8.9 (nf_tables)` is nft, `v2.0.x (legacy)` legacy. */
export function ebtablesStyle(versionText: string | undefined): EbStyle {
  if (versionText === undefined) return 'nft';
  return /nf_tables/.test(versionText) || !/legacy|v2\.0/.test(versionText) ? 'nft' : 'legacy';
}

const LIBVIRT_EB_CHAIN = /^(libvirt-[IOPJ]-|[IOPJ]-)/;
const LIBVIRT_IPT_CHAIN = /^(libvirt-(in|out|in-post|host-in)$|[FH][IOJP]-)/;

/** Per chain of an ebtables listing: its policy and rules as text, counters stripped (for an identity check). */
function chainBlocks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let name: string | undefined;
  let body: string[] = [];
  const flush = () => {
    if (name !== undefined) out.set(name, body.join('\n'));
  };
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const head = /^Bridge chain: ([^,\s]+), entries: \d+, policy: (\S+)$/.exec(line);
    if (head) {
      flush();
      name = head[1]!;
      body = [`policy ${head[2]}`];
    } else if (name !== undefined && line !== '') body.push(stripEbCounters(line));
  }
  flush();
  return out;
}

/** One entry per chain from the ruleset comparison's items (`+` installed only, `-` compiled only, `~` moved). */
function entriesOf(
  host: string,
  area: DriftEntry['area'],
  items: readonly DriftItem[],
  label: string,
  ignoreMoves: (chain: string) => boolean,
): DriftEntry[] {
  const byChain = new Map<string, DriftItem[]>();
  for (const it of items) {
    if (it.kind === 'rule-moved' && ignoreMoves(it.chain)) continue;
    const list = byChain.get(it.chain);
    if (list) list.push(it);
    else byChain.set(it.chain, [it]);
  }
  const out: DriftEntry[] = [];
  for (const [chain, list] of [...byChain].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const lines: string[] = [];
    for (const it of list)
      if (it.kind === 'rule-extra') lines.push(`+ ${it.rule}`);
      else if (it.kind === 'rule-missing') lines.push(`- ${it.rule}`);
      else if (it.kind === 'rule-moved')
        lines.push(`~ ${it.rule} (rule ${it.expectedIndex} is installed at ${it.installedIndex})`);
      else if (it.kind === 'policy')
        lines.push(`policy ${it.installedPolicy ?? '-'} (compiled: ${it.expectedPolicy ?? '-'})`);
    const kinds = new Set(list.map((i) => i.kind));
    const message = kinds.has('chain-missing')
      ? `${label} ${chain} is missing: the domains' filters compile to it but it is not installed`
      : kinds.has('chain-extra')
        ? `${label} ${chain} is installed but no filter binding of the domains makes it (stale, or a binding not in the XML)`
        : [...kinds].every((k) => k === 'rule-moved')
          ? `${label} ${chain}: the same rules in another order`
          : `${label} ${chain} differs from what the filters compile to`;
    out.push({ host, area, subject: chain, message, lines });
  }
  return out;
}

/**
 * Compares the installed nat table (`ebtables -t nat -L --Lc` text, read by the netfilter reader) with the compiled
 * one through the netfilter ruleset comparison. Only libvirt's chains and the jumps into them are compared; other
 * rules in the built-in chains are reported as not made by libvirt. The order of the jumps in built-in chains
 * follows the order the guests started in: not drift. Reader problems (rules the model cannot hold) go to `issues`.
 */
export function compareEbtables(
  host: string,
  installedText: string,
  compiled: EbTable,
  style: EbStyle,
  file = `${host}/ebtables-nat.txt`,
  issues: Issue[] = [],
): DriftEntry[] {
  // Chains whose listing is identical, rule for rule, to the compiled one's need no structural comparison: only the
  // others are read into the model and compared (on a fleet, almost every chain is identical).
  const mineBlocks = chainBlocks(renderEbtablesList(compiled, { style }));
  const textLines = installedText.split('\n');
  const same = new Set<string>();
  let cur: string | undefined;
  let start = 0;
  const closeBlock = (end: number) => {
    if (cur === undefined) return;
    const mine = mineBlocks.get(cur);
    const theirs = chainBlocks(textLines.slice(start, end).join('\n')).get(cur);
    // In built-in chains the order of the jumps follows the guests' start order: the same lines in any order match.
    const sorted = (b: string) => b.split('\n').sort().join('\n');
    const builtin = !LIBVIRT_EB_CHAIN.test(cur);
    if (
      mine !== undefined &&
      theirs !== undefined &&
      (mine === theirs || (builtin && mine.length === theirs.length && sorted(mine) === sorted(theirs)))
    ) {
      same.add(cur);
      for (let k = start; k < end; k++) textLines[k] = '';
    }
  };
  for (let k = 0; k < textLines.length; k++) {
    const head = /^Bridge chain: ([^,\s]+),/.exec(textLines[k]!);
    if (!head) continue;
    closeBlock(k);
    cur = head[1]!;
    start = k;
  }
  closeBlock(textLines.length);
  const read = readEbtablesList(textLines.join('\n'), file, { style });
  appendAll(
    issues,
    read.issues.filter((i) => i.code !== 'ebtables-empty'),
  );
  const installed: EbTable = read.value ?? { name: compiled.name, chains: [] };
  const expected: EbTable = { ...compiled, chains: compiled.chains.filter((c) => !same.has(c.name)) };
  const intoLibvirt = (r: EbRule) => r.target.kind === 'jump' && LIBVIRT_EB_CHAIN.test(r.target.chain);
  const out: DriftEntry[] = [];
  const builtins = new Set<string>();
  for (const c of [...installed.chains, ...expected.chains]) if (!LIBVIRT_EB_CHAIN.test(c.name)) builtins.add(c.name);
  // Built-in chains keep only the jumps into libvirt's chains; both sides get every built-in chain.
  const only = (t: EbTable, policyFrom?: EbTable): EbTable => ({
    name: t.name,
    chains: [
      ...t.chains.filter((c) => LIBVIRT_EB_CHAIN.test(c.name)),
      ...[...builtins].map((name): EbChain => {
        const c = t.chains.find((x) => x.name === name);
        const ref = policyFrom?.chains.find((x) => x.name === name) ?? c;
        const policy = ref?.policy ?? 'ACCEPT';
        const origin = c?.origin ?? implicit(`built-in chain ${name}`);
        return {
          name,
          builtin: true,
          policy,
          policyOrigin: c?.policyOrigin ?? origin,
          rules: (c?.rules ?? []).filter(intoLibvirt),
          origin,
        };
      }),
    ],
  });
  // Lines the reader could not put into the model, by chain (they cannot be compared; they are still shown).
  const unread = new Map<string, string[]>();
  // The chain of every line, found once (not by walking back from each unreadable line: quadratic).
  let chainOf: string[] | undefined;
  for (const i of read.issues) {
    if (i.severity !== 'error' || !i.pos || i.pos.line <= 0) continue;
    if (chainOf === undefined) {
      chainOf = [];
      let chain = '';
      for (const l of textLines) {
        chain = /^Bridge chain: ([^,\s]+),/.exec(l)?.[1] ?? chain;
        chainOf.push(chain);
      }
    }
    const chain = chainOf[i.pos.line - 1] ?? '';
    const raw = stripEbCounters((textLines[i.pos.line - 1] ?? '').trim());
    const list = unread.get(chain);
    if (list) list.push(raw);
    else unread.set(chain, [raw]);
  }
  for (const name of [...builtins].sort()) {
    const others = (installed.chains.find((c) => c.name === name)?.rules ?? [])
      .filter((r) => !intoLibvirt(r))
      .map((r) => renderEbtablesRule(r, { style }));
    appendAll(others, unread.get(name) ?? []);
    unread.delete(name);
    if (others.length > 0)
      out.push({
        host,
        area: 'ebtables',
        subject: name,
        message: `${name} has ${others.length} rule(s) not made by libvirt (they are not modelled)`,
        lines: others.map((r) => `+ ${r}`),
      });
  }
  for (const [chain, lines] of unread)
    out.push({
      host,
      area: 'ebtables',
      subject: chain || '?',
      message: `${chain || 'the listing'} has ${lines.length} rule(s) lvsdoctor cannot read: not compared`,
      lines: lines.map((r) => `? ${r}`),
    });
  const items = compareRulesets(only(expected), only(installed, expected), { style, chainRules: true });
  appendAll(
    out,
    entriesOf(host, 'ebtables', items, 'chain', (chain) => builtins.has(chain)),
  );
  return out;
}

/** Compares libvirt's chains of an installed `iptables-save -c` with the compiled filter table. */
export function compareIptables(
  host: string,
  area: 'iptables' | 'ip6tables',
  installedText: string,
  compiled: IptTable,
  file = `${host}/${area}-save.txt`,
  issues: Issue[] = [],
): DriftEntry[] {
  const read = readIptablesSave(installedText, file, area === 'iptables' ? 'ipv4' : 'ipv6');
  appendAll(issues, read.issues);
  const installed: IptTable = read.value?.find((t) => t.name === 'filter') ?? {
    family: compiled.family,
    name: 'filter',
    chains: [],
  };
  // The global chains exist once any binding ever had iptables rules; empty ones carry no meaning.
  const nonEmpty = (t: IptTable): IptTable => ({
    ...t,
    chains: t.chains.filter((c) => !LIBVIRT_IPT_CHAIN.test(c.name) || c.rules.length > 0),
  });
  const items = compareRulesets(nonEmpty(compiled), nonEmpty(installed), {
    chains: (name) => LIBVIRT_IPT_CHAIN.test(name),
    ignorePolicies: true,
    chainRules: true,
  });
  return entriesOf(host, area, items, `${area} chain`, () => false);
}

function paramsText(b: NwFilterBinding): string {
  return [...b.params.entries()]
    .filter(([k, v]) => !(k === 'MAC' && v.length === 1 && v[0] === b.mac))
    .map(([k, v]) => `${k}=${v.join(',')}`)
    .sort()
    .join(' ');
}

/** The bindings the domains' XML implies on a host, by port. */
export function impliedBindings(domains: readonly Domain[]): Map<string, NwFilterBinding> {
  const out = new Map<string, NwFilterBinding>();
  for (const d of domains)
    for (const ifc of d.interfaces) {
      if (!ifc.filterref || !ifc.targetDev || !ifc.mac) continue;
      const b = bindingForInterface(d, ifc);
      if (b.value) out.set(ifc.targetDev, b.value);
    }
  return out;
}

/** Compares live filter bindings with those implied by the domain XML. */
export function compareBindings(
  host: string,
  live: readonly NwFilterBinding[],
  implied: ReadonlyMap<string, NwFilterBinding>,
): DriftEntry[] {
  const out: DriftEntry[] = [];
  const liveBy = new Map(live.map((b) => [b.portdev, b]));
  const ports = new Set([...liveBy.keys(), ...implied.keys()]);
  for (const port of [...ports].sort()) {
    const l = liveBy.get(port);
    const x = implied.get(port);
    const show = (b: NwFilterBinding) => `${b.filter}${paramsText(b) ? ` ${paramsText(b)}` : ''} mac ${b.mac}`;
    if (l && !x)
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `binding on ${port} (${show(l)}) is live but no domain interface has this filterref (nwfilter-binding-create by hand?)`,
        lines: [`+ ${show(l)}`],
      });
    else if (x && !l)
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `no live binding on ${port}, but the domain XML binds ${show(x)} (deleted with nwfilter-binding-delete?)`,
        lines: [`- ${show(x)}`],
      });
    else if (l && x && (l.filter !== x.filter || paramsText(l) !== paramsText(x) || l.mac !== x.mac))
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `binding on ${port} differs from the domain XML`,
        lines: [`+ ${show(l)}`, `- ${show(x)}`],
      });
  }
  return out;
}
