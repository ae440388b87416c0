/**
 * Drift on a Proxmox VE node: its live firewall (`iptables-save -c`, `ip6tables-save -c`, `ebtables -t filter -L
 * --Lc`, `ipset save` of its bundle) against what its /etc/pve compiles to (`src/proxmox` compiler, as pve-firewall
 * would generate it now). Only pve-firewall's own chains, the jumps into them and its `PVEFW-…` sets are compared:
 * Docker's or anyone else's rules are not drift. Each difference keeps both origins — the listing's line and the
 * `.fw`/config line the compiled rule or set member comes from.
 *
 * What the trace uses: the live rules, when the bundle has them (`import` names them in scenario.yaml), because the
 * kernel filters with those — as for libvirt, where the live filter bindings win over the domain XML and a host's
 * `iptables-save` is evaluated as given. The compiled rules are what the node will have once pve-firewall applies
 * /etc/pve (it does every 10 s while it runs; it rewrites a chain only when its generated content changes, so a rule
 * added by hand to a chain whose configuration did not change stays).
 */

import { compareRulesets, type DriftItem } from '../netfilter/drift.ts';
import type { EbChain, EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { readEbtablesList } from '../netfilter/ebtables-read.ts';
import { ipsetFromEntries, readIpsetSave } from '../netfilter/ipset.ts';
import type { IptChain, IptFamily, IptTable } from '../netfilter/iptables-model.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { isPveSet, pveEbPart, pveIptPart } from '../proxmox/live.ts';
import { pveFilterTable } from '../proxmox/model.ts';
import { appendAll } from '../source/arrays.ts';
import type { Issue } from '../source/issue.ts';
import { filePos, implicit, type Origin, renderOriginChain } from '../source/origin.ts';
import type { PveHost } from '../topology/proxmox-host.ts';
import { type Bundle, outputOf, whyUnavailable } from './bundle.ts';
import { type DriftEntry, ebtablesStyle } from './drift.ts';

/** The live listings of a node's bundle this comparison reads, by command id, and their file in the scenario. */
export const PVE_LIVE = {
  iptables: 'iptables-save',
  ip6tables: 'ip6tables-save',
  ebtables: 'ebtables-filter',
  ipset: 'ipset-save',
} as const;

/** What the trace uses, said once per entry. */
const TRACED = 'the trace follows the live rule (the kernel filters with it)';

function where(o: Origin | undefined): string {
  return o ? renderOriginChain(o) : '?';
}

/** One entry per chain from the ruleset comparison, each line with its origin (`+` live only, `-` compiled only). */
function entriesOf(
  host: string,
  area: DriftEntry['area'],
  items: readonly DriftItem[],
  running: boolean,
): DriftEntry[] {
  const byChain = new Map<string, DriftItem[]>();
  for (const it of items) {
    const list = byChain.get(it.chain);
    if (list) list.push(it);
    else byChain.set(it.chain, [it]);
  }
  const out: DriftEntry[] = [];
  for (const [chain, list] of [...byChain].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    const lines: string[] = [];
    const differences: NonNullable<DriftEntry['differences']>[number][] = [];
    for (const it of list) {
      if (it.kind === 'rule-extra') {
        lines.push(`+ ${it.rule}  [live: ${where(it.installed)}]`);
        differences.push({ sign: '+', text: it.rule ?? '', ...(it.installed ? { live: it.installed } : {}) });
      } else if (it.kind === 'rule-missing') {
        lines.push(`- ${it.rule}  [compiled from: ${where(it.expected)}]`);
        differences.push({ sign: '-', text: it.rule ?? '', ...(it.expected ? { config: it.expected } : {}) });
      } else if (it.kind === 'rule-moved') {
        lines.push(
          `~ ${it.rule} (rule ${it.expectedIndex} is installed at ${it.installedIndex})  [live: ${where(it.installed)}; compiled from: ${where(it.expected)}]`,
        );
        differences.push({
          sign: '~',
          text: it.rule ?? '',
          ...(it.installed ? { live: it.installed } : {}),
          ...(it.expected ? { config: it.expected } : {}),
        });
      }
    }
    const kinds = new Set(list.map((i) => i.kind));
    const onlyExtra = [...kinds].every((k) => k === 'rule-extra' || k === 'chain-extra');
    // iptables chains end with pve-firewall's digest of what it generated (PVESIG): another digest live means the
    // chain was generated from another configuration; the same digest with other rules means a hand-made change,
    // which pve-firewall does not undo (it rewrites a chain only when the digest of what it generates changes).
    const sig = list.some((i) => i.kind === 'rule-missing' && i.rule?.includes('PVESIG:'));
    const sameSig = area !== 'ebtables' && !sig && kinds.size > 0;
    const what = kinds.has('chain-missing')
      ? `${chain} is not installed, but /etc/pve compiles to it${running ? ' (pve-firewall has not applied the configuration yet)' : ''}`
      : kinds.has('chain-extra')
        ? `${chain} is installed, but /etc/pve no longer compiles to it (stale: pve-firewall has not applied the configuration yet)`
        : sig
          ? `${chain} was generated from another configuration (its PVESIG digest differs: /etc/pve edited, pve-firewall has not applied it yet)`
          : sameSig
            ? `${chain} was changed by hand (its PVESIG digest is what /etc/pve compiles to, so pve-firewall will not rewrite it)`
            : onlyExtra
              ? `${chain} holds rules /etc/pve does not compile to (pve-firewall not reloaded since an edit, or added by hand)`
              : `${chain} differs from what /etc/pve compiles to (pve-firewall not reloaded since an edit, or changed by hand)`;
    out.push({ host, area, subject: chain, message: `${what}; ${TRACED}`, lines, differences });
  }
  return out;
}

/** Both tables with the built-in chains INPUT/FORWARD/OUTPUT present (empty when a side lacks them). */
function withBuiltins(t: IptTable, names: readonly string[]): IptTable {
  const have = new Set(t.chains.map((c) => c.name));
  const extra: IptChain[] = names
    .filter((n) => !have.has(n))
    .map((name) => ({ name, builtin: true, rules: [], origin: implicit(`built-in chain ${name}`) }));
  return { ...t, chains: [...extra, ...t.chains] };
}

function compareIpt(
  host: string,
  area: 'iptables' | 'ip6tables',
  text: string,
  file: string,
  compiled: IptTable | undefined,
  running: boolean,
  issues: Issue[],
): DriftEntry[] {
  const family: IptFamily = area === 'iptables' ? 'ipv4' : 'ipv6';
  const read = readIptablesSave(text, file, family);
  appendAll(issues, read.issues);
  const live = read.value?.find((t) => t.name === 'filter') ?? { family, name: 'filter', chains: [] };
  const expected = compiled ?? { family, name: 'filter', chains: [] };
  const builtins = ['INPUT', 'FORWARD', 'OUTPUT'];
  const items = compareRulesets(
    withBuiltins(pveIptPart(expected), builtins),
    withBuiltins(pveIptPart(live), builtins),
    {
      ignorePolicies: true,
      chainRules: true,
    },
  );
  return entriesOf(host, area, items, running);
}

function compareEb(
  host: string,
  text: string,
  file: string,
  compiled: EbTable | undefined,
  style: ReturnType<typeof ebtablesStyle>,
  running: boolean,
  issues: Issue[],
): DriftEntry[] {
  const read = readEbtablesList(text, file, { style });
  appendAll(
    issues,
    read.issues.filter((i) => i.code !== 'ebtables-empty'),
  );
  const live = pveEbPart(read.value ?? { name: 'filter', chains: [] });
  const expected = pveEbPart(compiled ?? { name: 'filter', chains: [] });
  // Both sides get the built-in chains (pve-firewall leaves their policies alone: not compared).
  const names = new Set([...live.chains, ...expected.chains].filter((c) => c.builtin).map((c) => c.name));
  const fill = (t: EbTable): EbTable => ({
    name: t.name,
    chains: [
      ...[...names]
        .filter((n) => !t.chains.some((c) => c.name === n))
        .map(
          (name): EbChain => ({
            name,
            builtin: true,
            policy: 'ACCEPT',
            policyOrigin: implicit(`built-in chain ${name}`),
            rules: [],
            origin: implicit(`built-in chain ${name}`),
          }),
        ),
      ...t.chains,
    ],
  });
  // Policies are not compared: pve-firewall leaves the built-in ones alone, and ebtables-nft lists the user chains it
  // restores with `:NAME ACCEPT` as `policy: RETURN`.
  const items = compareRulesets(fill(expected), fill(live), { style, chainRules: true, ignorePolicies: true });
  return entriesOf(host, 'ebtables', items, running);
}

/** `cidr` or `cidr nomatch`, canonical (what `ipset save` prints for the entry). */
function entryKey(name: string, family: 'inet' | 'inet6', cidr: string, nomatch: boolean): string | undefined {
  const e = ipsetFromEntries(name, family, [{ cidr, nomatch }]).entries[0];
  if (!e) return undefined;
  const max = family === 'inet' ? 32 : 128;
  return `${e.addr}${e.prefixLen === max ? '' : `/${e.prefixLen}`}${e.nomatch ? ' nomatch' : ''}`;
}

function compareIpsets(host: string, text: string, file: string, pve: PveHost, issues: Issue[]): DriftEntry[] {
  const read = readIpsetSave(text, file);
  appendAll(issues, read.issues);
  const live = read.value ?? new Map();
  // The line of each live set and member (the reader keeps entries, not lines).
  const lineOf = new Map<string, number>();
  for (const [k, raw] of text.split('\n').entries()) {
    const w = raw.trim().split(/\s+/);
    if (w[0] === 'create' && w[1]) lineOf.set(w[1], k + 1);
    else if (w[0] === 'add' && w[1] && w[2]) {
      const s = live.get(w[1]);
      const key = s ? entryKey(w[1], s.family, w[2], w.includes('nomatch')) : undefined;
      if (key) lineOf.set(`${w[1]} ${key}`, k + 1);
    }
  }
  const liveOrigin = (key: string): Origin => ({
    kind: 'file',
    label: 'ipset save',
    pos: filePos(file, lineOf.get(key) ?? 0),
  });
  const compiled = pve.compiled.enabled ? pve.compiled.ipsets : new Map();
  const names = new Set([...compiled.keys(), ...[...live.keys()].filter(isPveSet)]);
  const out: DriftEntry[] = [];
  for (const name of [...names].sort()) {
    const want = compiled.get(name);
    const have = live.get(name);
    const wantKeys = new Map<string, Origin>();
    for (const e of want?.entries ?? []) {
      const k = entryKey(name, want!.family, e.cidr, e.nomatch);
      if (k) wantKeys.set(k, e.origin);
    }
    const haveKeys = new Set<string>();
    for (const e of have?.entries ?? []) {
      const k = entryKey(name, have!.family, `${e.addr}/${e.prefixLen}`, e.nomatch);
      if (k) haveKeys.add(k);
    }
    const lines: string[] = [];
    const differences: NonNullable<DriftEntry['differences']>[number][] = [];
    for (const [k, o] of wantKeys)
      if (!haveKeys.has(k)) {
        lines.push(`- add ${name} ${k}  [compiled from: ${where(o)}]`);
        differences.push({ sign: '-', text: `add ${name} ${k}`, config: o });
      }
    for (const k of haveKeys)
      if (!wantKeys.has(k)) {
        const o = liveOrigin(`${name} ${k}`);
        lines.push(`+ add ${name} ${k}  [live: ${where(o)}]`);
        differences.push({ sign: '+', text: `add ${name} ${k}`, live: o });
      }
    if (want && !have) {
      out.push({
        host,
        area: 'ipset',
        subject: name,
        message: `set ${name} is not installed, but /etc/pve compiles to it (from ${where(want.origin)}); ${TRACED}: rules matching it match nothing`,
        lines,
        differences,
      });
      continue;
    }
    if (have && !want) {
      const o = liveOrigin(name);
      out.push({
        host,
        area: 'ipset',
        subject: name,
        message: `set ${name} is installed (${where(o)}), but /etc/pve no longer compiles to it (stale); ${TRACED}`,
        lines,
        differences: [{ sign: '+', text: `create ${name}`, live: o }, ...differences],
      });
      continue;
    }
    if (lines.length > 0)
      out.push({
        host,
        area: 'ipset',
        subject: name,
        message: `set ${name} holds other members than /etc/pve gives it (from ${where(want!.origin)}): configuration edited, pve-firewall not reloaded yet, or members changed by hand; ${TRACED}`,
        lines,
        differences,
      });
  }
  return out;
}

export interface PveDriftResult {
  readonly drift: DriftEntry[];
  /** What could not be compared, and what the trace follows. */
  readonly notes: string[];
  /** Which live listings the trace can follow (command id → collected). */
  readonly live: ReadonlySet<string>;
}

/** A node's live listings (any may be missing), each with the file name its origins name. */
export interface PveLiveListings {
  readonly iptables?: { readonly text: string; readonly file: string };
  readonly ip6tables?: { readonly text: string; readonly file: string };
  readonly ebtables?: { readonly text: string; readonly file: string; readonly style: EbStyle };
  readonly ipset?: { readonly text: string; readonly file: string };
  /** `pve-firewall status`, when known. */
  readonly status?: string;
}

/** Compares a Proxmox node's live listings with what its /etc/pve compiles to (`pve`). */
export function comparePveListings(host: string, pve: PveHost, l: PveLiveListings, issues: Issue[] = []): DriftEntry[] {
  const drift: DriftEntry[] = [];
  if (pve.nft) return drift;
  const running = l.status === undefined || /running/.test(l.status);
  if (l.iptables)
    appendAll(drift, compareIpt(host, 'iptables', l.iptables.text, l.iptables.file, pve.filter4, running, issues));
  if (l.ip6tables) {
    const compiled6 = pve.compiled.enabled ? pveFilterTable(pve.compiled.filter6, 'ipv6').table : undefined;
    appendAll(drift, compareIpt(host, 'ip6tables', l.ip6tables.text, l.ip6tables.file, compiled6, running, issues));
  }
  if (l.ebtables)
    appendAll(
      drift,
      compareEb(host, l.ebtables.text, l.ebtables.file, pve.ebFilter, l.ebtables.style, running, issues),
    );
  if (l.ipset) appendAll(drift, compareIpsets(host, l.ipset.text, l.ipset.file, pve, issues));
  // pve-firewall stopped (or never started): the kernel has none of its chains.
  if (pve.compiled.enabled && l.iptables && !/^:PVEFW-FORWARD /m.test(l.iptables.text))
    drift.unshift({
      host,
      area: 'iptables',
      subject: 'pve-firewall',
      message: `no PVEFW chain is installed although cluster.fw enables the firewall: pve-firewall is not running${l.status ? ` (pve-firewall status: ${l.status})` : ''}; ${TRACED}: nothing of /etc/pve's firewall filters`,
      lines: [],
    });
  return drift;
}

/**
 * Compares a Proxmox node's bundle (its live listings) with what its /etc/pve compiles to. `fileOf` names a listing
 * as the scenario will (its copy's path), so origins point at the copied file.
 */
export function comparePveNode(
  host: string,
  b: Bundle,
  pve: PveHost,
  fileOf: (id: string) => string,
  issues: Issue[] = [],
): PveDriftResult {
  const notes: string[] = [];
  const live = new Set<string>();
  // host.fw nftables: 1: proxmox-firewall filters with its nftables tables and pve-firewall removes its own rules;
  // the node's iptables/ebtables/ipset listings are not its firewall (and `nft list ruleset` is not compared yet).
  if (pve.nft) {
    notes.push(
      `${host}: nftables: 1 (proxmox-firewall): its live nft ruleset is not compared with what /etc/pve compiles to; the trace uses the compiled tables`,
    );
    return { drift: [], notes, live };
  }
  const got = (id: string, what: string) => {
    const text = outputOf(b, id);
    if (text !== undefined && b.commands.get(id)?.status === 'ok') {
      live.add(id);
      return { text, file: fileOf(id) };
    }
    notes.push(
      `${host}: ${what} not compared (${whyUnavailable(b, id) ?? 'not collected'}): the trace uses what /etc/pve compiles to`,
    );
    return undefined;
  };
  const iptables = got(PVE_LIVE.iptables, 'iptables');
  const ip6tables = got(PVE_LIVE.ip6tables, 'ip6tables');
  const eb = got(PVE_LIVE.ebtables, 'ebtables');
  const ipset = got(PVE_LIVE.ipset, 'ipsets');
  const status = outputOf(b, 'pve-firewall-status')?.trim();
  const drift = comparePveListings(
    host,
    pve,
    {
      ...(iptables ? { iptables } : {}),
      ...(ip6tables ? { ip6tables } : {}),
      ...(eb ? { ebtables: { ...eb, style: ebtablesStyle(outputOf(b, 'version-ebtables')) } } : {}),
      ...(ipset ? { ipset } : {}),
      ...(status ? { status } : {}),
    },
    issues,
  );
  if (live.size > 0)
    notes.push(
      `${host}: the trace follows the node's live ${[...live].join(', ')} (what the kernel filters with), not what /etc/pve compiles to${drift.length > 0 ? ` — they differ in ${drift.length} place(s), listed under drift` : ' (they are the same)'}`,
    );
  return { drift, notes, live };
}
