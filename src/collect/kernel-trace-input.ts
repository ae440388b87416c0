/**
 * Where kernel traces come from: a file the operator saved (`nft monitor trace > f`, `xtables-monitor --trace`,
 * `perf script` of skb:kfree_skb, tracefs, dropwatch, pwru) given to `diagnose --trace NODE=FILE`, or the same file
 * carried in a bundle (`sh collect.sh --trace FILE` copies it, read-only, as `kernel-trace-N`). The format is told
 * from the text. A bundle also gives the node's listings that place a traced rule: `nft -a list ruleset` (handles),
 * `ebtables -t nat/filter -L --Lc`, `iptables-save -c`, `ip6tables-save -c`.
 */
import { type RuleCount, readEbtablesCounters, readNftRules, readSaveCounters } from '../netfilter/counter-read.ts';
import { netfilterTraceTool, readNftMonitorTrace, readXtablesMonitorTrace } from '../netfilter/trace-read.ts';
import { appendAll } from '../source/arrays.ts';
import type { Issue } from '../source/issue.ts';
import { type Bundle, bundleFile, outputOf } from './bundle.ts';
import { readKernelDrops } from './kernel-drops.ts';
import type { KernelTraceInput, NodeListings } from './trace-join.ts';

/**
 * A listing that places traced rules, told from its text: `nft (-a) list ruleset`, `ebtables -t T -L --Lc`,
 * `iptables-save -c` / `ip6tables-save -c` (which of the two: by the addresses it holds); undefined for anything else.
 */
export function readListing(
  text: string,
  file: string,
): { readonly value: NodeListings; readonly issues: readonly Issue[] } | undefined {
  const head = text.split('\n', 40).map((l) => l.trim());
  if (head.some((l) => /^table\s+\S+\s+\S+\s*\{/.test(l))) {
    const r = readNftRules(text, file);
    return { value: { xtables: [], nft: r.value ?? [] }, issues: r.issues };
  }
  const eb = head.find((l) => /^Bridge table: \S+/.test(l));
  if (eb) {
    const r = readEbtablesCounters(text, file, eb.slice(14).trim());
    return { value: { xtables: r.value ?? [], nft: [] }, issues: r.issues };
  }
  if (head.some((l) => /^\*(filter|nat|raw|mangle|security)$/.test(l))) {
    const r = readSaveCounters(text, file, /\s-[sd] [0-9a-f]*:[0-9a-f:]*[/\s]/.test(text) ? 'ip6tables' : 'iptables');
    return { value: { xtables: r.value ?? [], nft: [] }, issues: r.issues };
  }
  return undefined;
}

/** Reads one trace file of any supported kind, for `node`. */
export function readKernelTrace(
  node: string,
  text: string,
  file: string,
): { readonly value: KernelTraceInput; readonly issues: readonly Issue[] } {
  const tool = netfilterTraceTool(text);
  if (tool !== undefined) {
    const r = tool === 'nft-monitor' ? readNftMonitorTrace(text, file) : readXtablesMonitorTrace(text, file);
    return { value: { node, file, events: r.value ?? [], drops: [] }, issues: r.issues };
  }
  const r = readKernelDrops(text, file);
  return { value: { node, file, events: [], drops: r.value ?? [] }, issues: r.issues };
}

/** The trace files a bundle carries (`kernel-trace-N`), read for `node`. */
export function bundleKernelTraces(
  b: Bundle,
  node: string,
): { readonly value: KernelTraceInput[]; readonly issues: readonly Issue[] } {
  const value: KernelTraceInput[] = [];
  const issues: Issue[] = [];
  for (const id of [...b.commands.keys()].filter((k) => k.startsWith('kernel-trace-')).sort()) {
    const text = outputOf(b, id);
    if (text === undefined) continue;
    const r = readKernelTrace(node, text, bundleFile(b, b.commands.get(id)!.out));
    value.push(r.value);
    appendAll(issues, r.issues);
  }
  return { value, issues };
}

/** The listings of a bundle that place traced rules (what is missing is simply absent). */
export function bundleListings(b: Bundle): { readonly value: NodeListings; readonly issues: readonly Issue[] } {
  const issues: Issue[] = [];
  const file = (id: string) => bundleFile(b, b.commands.get(id)!.out);
  const xtables: RuleCount[] = [];
  for (const [id, table] of [
    ['ebtables-nat', 'nat'],
    ['ebtables-filter', 'filter'],
  ] as const) {
    const t = outputOf(b, id);
    if (t === undefined) continue;
    const r = readEbtablesCounters(t, file(id), table);
    appendAll(issues, r.issues);
    appendAll(xtables, r.value ?? []);
  }
  for (const [id, source] of [
    ['iptables-save', 'iptables'],
    ['ip6tables-save', 'ip6tables'],
  ] as const) {
    const t = outputOf(b, id);
    if (t === undefined) continue;
    const r = readSaveCounters(t, file(id), source);
    appendAll(issues, r.issues);
    appendAll(xtables, r.value ?? []);
  }
  const nftId = outputOf(b, 'nft-ruleset-handles') !== undefined ? 'nft-ruleset-handles' : 'nft-ruleset';
  const nftText = outputOf(b, nftId);
  const nft = nftText !== undefined ? readNftRules(nftText, file(nftId)) : undefined;
  if (nft) appendAll(issues, nft.issues);
  return { value: { xtables, nft: nft?.value ?? [] }, issues };
}
