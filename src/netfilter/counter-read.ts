/**
 * Readers for rule counters as the tools list them, line by line and without modelling the rules: every counted
 * rule is kept with its table, chain, 1-based position and text (counters removed), so that a rule the model cannot
 * read still has its counts. Forms read:
 * - `ebtables -t TABLE -L --Lc` (ebtables-nft 1.8 and legacy 2.0): `RULE , pcnt = N -- bcnt = M`, optionally with
 *   `--Ln` numbers (`1. RULE …`);
 * - `ebtables-save -c` / `iptables-save -c` / `ip6tables-save -c`: `[N:M] -A CHAIN RULE`, chain policies
 *   `:CHAIN POLICY [N:M]`;
 * - the legacy `ebtables-save` form `-A CHAIN RULE -c N M`;
 * - `nft list ruleset`: `… counter packets N bytes M …` in `table FAMILY NAME { chain NAME { … } }`.
 */
import { issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { ebCountersOf } from './ebtables-read.ts';

export type CounterSource = 'ebtables' | 'iptables' | 'ip6tables' | 'nft';

export interface RuleCount {
  readonly source: CounterSource;
  /** `nat`/`filter` (ebtables, iptables), or `FAMILY NAME` for nft (`bridge filter`). */
  readonly table: string;
  readonly chain: string;
  /** 1-based position in the chain; undefined for the chain's policy. */
  readonly ruleNumber?: number;
  /** The rule as listed, counters removed (`-A CHAIN …` for save formats, `policy: DROP` for a policy). */
  readonly text: string;
  readonly packets: number;
  readonly bytes: number;
  readonly pos: Position;
}

/** Key of a counted rule in a listing: source, table, chain and position (or `policy`). */
export function ruleCountKey(c: Pick<RuleCount, 'source' | 'table' | 'chain' | 'ruleNumber'>): string {
  return `${c.source}\t${c.table}\t${c.chain}\t${c.ruleNumber ?? 'policy'}`;
}

const EB_CHAIN = /^Bridge chain: (\S+?),? entries: \d+, policy: (\S+)\s*$/;
const EB_TABLE = /^Bridge table: (\S+)\s*$/;

/**
 * Which lines of a listing to keep as counts (0-based line indexes): a window keeps only the lines its two ends
 * list differently; every line is still read, so that what cannot be read is an issue either way.
 */
export type KeepLine = (index: number) => boolean;

/** `ebtables -t TABLE -L --Lc` output: one count per listed rule. A rule line without counters is an issue. */
export function readEbtablesCounters(text: string, file: string, tableHint?: string): ReadResult<RuleCount[]> {
  return readEbtablesCounterLines(text.split('\n'), file, tableHint);
}

/** {@link readEbtablesCounters} on the listing's lines, keeping the counts of the lines `keep` says. */
export function readEbtablesCounterLines(
  lines: readonly string[],
  file: string,
  tableHint?: string,
  keep?: KeepLine,
): ReadResult<RuleCount[]> {
  const out: RuleCount[] = [];
  const issues = [];
  let table = tableHint ?? 'filter';
  let chain: string | undefined;
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trimEnd();
    if (line === '') continue;
    // Both headers start with 'Bridge ' (a rule line never does): the rest skip the two patterns.
    const header = line.startsWith('Bridge ');
    const t = header ? EB_TABLE.exec(line) : null;
    if (t) {
      table = t[1]!;
      chain = undefined;
      continue;
    }
    const c = header ? EB_CHAIN.exec(line) : null;
    if (c) {
      chain = c[1]!;
      n = 0;
      continue;
    }
    if (chain === undefined) {
      issues.push(
        issue('counters-bad-line', `expected 'Bridge table:' or 'Bridge chain:', got '${line}'`, filePos(file, i + 1)),
      );
      continue;
    }
    n++;
    // `--Ln` numbers (`1. `): only a line that starts with a digit can have one.
    const c0 = line.charCodeAt(0);
    const body = c0 >= 48 && c0 <= 57 ? line.replace(/^\d+\.\s+/, '') : line;
    const cm = ebCountersOf(body);
    if (cm === undefined) {
      issues.push(
        issue(
          'counters-missing',
          `rule ${n} of ${chain}: no ', pcnt = N -- bcnt = M' (was it listed with --Lc?)`,
          filePos(file, i + 1),
          'warning',
        ),
      );
      continue;
    }
    if (keep && !keep(i)) continue;
    out.push({
      source: 'ebtables',
      table,
      chain,
      ruleNumber: n,
      text: body.slice(0, cm.index),
      packets: cm.packets,
      bytes: cm.bytes,
      pos: filePos(file, i + 1),
    });
  }
  return { value: out, issues };
}

const SAVE_RULE = /^\[(\d+):(\d+)\]\s+(-A\s+(\S+)(?:\s.*)?)$/;
const SAVE_POLICY = /^:(\S+)\s+(\S+)(?:\s+\[(\d+):(\d+)\])?\s*$/;
const LEGACY_C = /^(-A\s+(\S+)(?:\s.*?)?)\s+-c\s+(\d+)\s+(\d+)\s*$/;

/**
 * `iptables-save -c`, `ip6tables-save -c` or `ebtables-save -c` text: the counts of every rule and of every built-in
 * chain's policy. Rules saved without counters are an issue (the listing was not made with `-c`).
 */
export function readSaveCounters(text: string, file: string, source: CounterSource): ReadResult<RuleCount[]> {
  return readSaveCounterLines(text.split('\n'), file, source);
}

/** {@link readSaveCounters} on the listing's lines, keeping the counts of the lines `keep` says. */
export function readSaveCounterLines(
  lines: readonly string[],
  file: string,
  source: CounterSource,
  keep?: KeepLine,
): ReadResult<RuleCount[]> {
  const out: RuleCount[] = [];
  const issues = [];
  let table: string | undefined;
  const numbers = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
    const pos = filePos(file, i + 1);
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      numbers.clear();
      continue;
    }
    if (table === undefined) {
      issues.push(issue('counters-bad-line', `expected '*TABLE' before '${line}'`, pos));
      continue;
    }
    const p = SAVE_POLICY.exec(line);
    if (p) {
      if (p[3] !== undefined && p[2] !== '-' && (!keep || keep(i)))
        out.push({
          source,
          table,
          chain: p[1]!,
          text: `policy: ${p[2]}`,
          packets: Number(p[3]),
          bytes: Number(p[4]),
          pos,
        });
      continue;
    }
    const r = SAVE_RULE.exec(line);
    const l = r ? undefined : LEGACY_C.exec(line);
    if (!r && !l) {
      if (line.startsWith('-A'))
        issues.push(
          issue('counters-missing', `no [packets:bytes] before the rule (was it saved with -c?)`, pos, 'warning'),
        );
      else issues.push(issue('counters-bad-line', `expected '[packets:bytes] -A CHAIN …', got '${line}'`, pos));
      continue;
    }
    const chain = r ? r[4]! : l![2]!;
    const n = (numbers.get(chain) ?? 0) + 1;
    numbers.set(chain, n);
    if (keep && !keep(i)) continue;
    out.push({
      source,
      table,
      chain,
      ruleNumber: n,
      text: r ? r[3]! : l![1]!,
      packets: Number(r ? r[1] : l![3]),
      bytes: Number(r ? r[2] : l![4]),
      pos,
    });
  }
  return { value: out, issues };
}

const NFT_COUNTER = /\bcounter packets (\d+) bytes (\d+)/;
const NFT_HANDLE = /\s*# handle (\d+)\s*$/;
const NFT_TABLE = /^table\s+(\S+)\s+(\S+)\s*\{$/;
const NFT_CHAIN = /^chain\s+(\S+)\s*\{$/;
/** Lines of a chain that are not rules. */
const NFT_STATEMENT = /^(type\s|policy\s|comment\s|devices?\s)/;

/** A rule of `nft list ruleset` (or `nft -a list ruleset`): its table, chain, position, text and handle. */
export interface NftListedRule {
  /** `FAMILY NAME` (`bridge nat`). */
  readonly table: string;
  readonly chain: string;
  /** 1-based position among the rules of its chain. */
  readonly ruleNumber: number;
  /** The rule as listed, `# handle N` removed. */
  readonly text: string;
  /** With `nft -a`: the rule's handle (what `nft monitor trace` and `xtables-monitor` name). */
  readonly handle?: number;
  readonly pos: Position;
}

/** An nft rule's text for comparison: counters' values and handles removed, spaces collapsed. */
export function nftRuleKey(text: string): string {
  return text
    .replace(/\s*# handle \d+\s*$/, '')
    .replace(/\bcounter packets \d+ bytes \d+/, 'counter')
    .replace(/\s+/g, ' ')
    .trim();
}

/**
 * Every rule of `nft list ruleset` / `nft -a list ruleset`, numbered by its position in its chain (statements such
 * as `type … hook …` and `policy` are not rules).
 */
export function readNftRules(text: string, file: string): ReadResult<NftListedRule[]> {
  return readNftRuleLines(text.split('\n'), file);
}

function readNftRuleLines(lines: readonly string[], file: string, keep?: KeepLine): ReadResult<NftListedRule[]> {
  const out: NftListedRule[] = [];
  const issues = [];
  let table: string | undefined;
  let chain: string | undefined;
  let depth = 0;
  let n = 0;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    const h = NFT_HANDLE.exec(raw);
    const line = h ? raw.slice(0, h.index).trim() : raw;
    if (line === '' || line.startsWith('#')) continue;
    const t = NFT_TABLE.exec(line);
    if (t && depth === 0) {
      table = `${t[1]} ${t[2]}`;
      depth = 1;
      continue;
    }
    const c = NFT_CHAIN.exec(line);
    if (c && depth === 1) {
      chain = c[1]!;
      n = 0;
      depth = 2;
      continue;
    }
    if (line.endsWith('{')) {
      depth++;
      continue;
    }
    if (line === '}') {
      if (depth === 2) chain = undefined;
      if (depth === 1) table = undefined;
      depth = Math.max(0, depth - 1);
      continue;
    }
    if (depth !== 2 || chain === undefined || table === undefined) continue;
    if (NFT_STATEMENT.test(line)) continue;
    n++;
    if (keep && !keep(i)) continue;
    out.push({
      table,
      chain,
      ruleNumber: n,
      text: line,
      ...(h ? { handle: Number(h[1]) } : {}),
      pos: filePos(file, i + 1),
    });
  }
  if (depth !== 0)
    issues.push(
      issue('counters-unbalanced', 'unbalanced braces: the ruleset listing is cut', filePos(file, lines.length)),
    );
  return { value: out, issues };
}

/**
 * `nft list ruleset`: every rule with a `counter` statement, numbered by its position among the rules of its chain
 * (statements such as `type … hook …` and `policy` are not rules). Named counter objects are not read.
 */
export function readNftCounters(text: string, file: string): ReadResult<RuleCount[]> {
  return readNftCounterLines(text.split('\n'), file);
}

/** {@link readNftCounters} on the listing's lines, keeping the counts of the lines `keep` says. */
export function readNftCounterLines(lines: readonly string[], file: string, keep?: KeepLine): ReadResult<RuleCount[]> {
  const r = readNftRuleLines(lines, file, keep);
  const out: RuleCount[] = [];
  for (const x of r.value ?? []) {
    const m = NFT_COUNTER.exec(x.text);
    if (!m) continue;
    out.push({
      source: 'nft',
      table: x.table,
      chain: x.chain,
      ruleNumber: x.ruleNumber,
      text: x.text.replace(/\s*counter packets \d+ bytes \d+/, ' counter').trim(),
      packets: Number(m[1]),
      bytes: Number(m[2]),
      pos: x.pos,
    });
  }
  return { value: out, issues: r.issues };
}

/** A listing of rule counters: its text and the file it was read from. */
export interface CounterListing {
  readonly text: string;
  readonly file: string;
}

function readCounterLines(
  source: CounterSource,
  lines: readonly string[],
  file: string,
  table: string | undefined,
  keep?: KeepLine,
): ReadResult<RuleCount[]> {
  switch (source) {
    case 'ebtables':
      return readEbtablesCounterLines(lines, file, table, keep);
    case 'iptables':
    case 'ip6tables':
      return readSaveCounterLines(lines, file, source, keep);
    case 'nft':
      return readNftCounterLines(lines, file, keep);
  }
}

/**
 * What a listing line is to the numbering of the rules after it: a table or chain header with its name, a rule (of
 * which chain, when the line says it), a policy, or a line that numbers nothing. Two listings whose lines differ
 * only where these agree number every rule alike, line by line.
 */
function lineShape(source: CounterSource, line: string): string {
  switch (source) {
    case 'ebtables': {
      const l = line.trimEnd();
      if (l === '') return '';
      const t = l.startsWith('Bridge ') ? (EB_TABLE.exec(l) ?? EB_CHAIN.exec(l)) : null;
      return t ? `${t[0]!.slice(7, 12)} ${t[1]}` : 'rule';
    }
    case 'iptables':
    case 'ip6tables': {
      const l = line.trim();
      if (l === '' || l.startsWith('#') || l === 'COMMIT') return '';
      if (l.startsWith('*')) return l;
      const p = SAVE_POLICY.exec(l);
      if (p) return `:${p[1]}${p[3] !== undefined && p[2] !== '-' ? ' counted' : ''}`;
      const r = SAVE_RULE.exec(l);
      const c = r ? r[4] : LEGACY_C.exec(l)?.[2];
      return c === undefined ? 'not a rule' : `-A ${c}`;
    }
    case 'nft': {
      const raw = line.trim();
      const h = NFT_HANDLE.exec(raw);
      const l = h ? raw.slice(0, h.index).trim() : raw;
      if (l === '' || l.startsWith('#')) return '';
      const t = NFT_TABLE.exec(l);
      if (t) return `table ${t[1]} ${t[2]}`;
      const c = NFT_CHAIN.exec(l);
      if (c) return `chain ${c[1]}`;
      if (l.endsWith('{') || l === '}') return l.slice(-1);
      if (NFT_STATEMENT.test(l)) return 'statement';
      return NFT_COUNTER.test(l) ? 'rule counter' : 'rule';
    }
  }
}

/**
 * The counts of a window's two listings of one source. When both list the same number of lines and their lines
 * differ only where a rule's counters (or text) differ, the rules at the lines listed alike are the same rules with
 * the same counts, not moved: only the lines that differ are kept as counts (a fleet's window lists ~230,000 rules
 * of which a few thousand move). Every line is still read, so what cannot be read is an issue either way; and
 * {@link countDeltas} pairs the kept counts as it would pair all of them.
 */
export function readCounterPair(
  source: CounterSource,
  start: CounterListing,
  end: CounterListing,
  table?: string,
): { readonly start: ReadResult<RuleCount[]>; readonly end: ReadResult<RuleCount[]> } {
  const a = start.text.split('\n');
  const b = end.text.split('\n');
  let keep: KeepLine | undefined;
  if (a.length === b.length) {
    const differs = new Uint8Array(a.length);
    let alike = true;
    for (let i = 0; i < a.length && alike; i++)
      if (a[i] !== b[i]) {
        differs[i] = 1;
        if (lineShape(source, a[i]!) !== lineShape(source, b[i]!)) alike = false;
      }
    if (alike) keep = (i) => differs[i] === 1;
  }
  return {
    start: readCounterLines(source, a, start.file, table, keep),
    end: readCounterLines(source, b, end.file, table, keep),
  };
}

export interface CountDelta extends RuleCount {
  /** Counts at the start of the window. */
  readonly before: { readonly packets: number; readonly bytes: number };
}

/**
 * The rules whose counters moved between two listings of the same host (matched by source, table, chain and
 * position, with the same text). A rule present only at the end, or listed with other text at that position (the
 * ruleset changed in the window), counts from zero and is said in `changed`.
 */
export function countDeltas(
  start: readonly RuleCount[],
  end: readonly RuleCount[],
): { readonly moved: readonly CountDelta[]; readonly changed: readonly RuleCount[] } {
  // Both ends list the same rules in the same order (the usual window): paired by index, no key built per rule;
  // otherwise by key (a rule listed only at one end has no pair).
  let before: Map<string, RuleCount> | undefined;
  if (!sameRulesInOrder(start, end)) {
    before = new Map();
    for (const c of start) before.set(ruleCountKey(c), c);
  }
  const moved: CountDelta[] = [];
  const changed: RuleCount[] = [];
  for (let i = 0; i < end.length; i++) {
    const c = end[i]!;
    const b = before ? before.get(ruleCountKey(c)) : start[i];
    const same = b !== undefined && b.text === c.text && b.packets <= c.packets && b.bytes <= c.bytes;
    if (!same) changed.push(c);
    const bp = same ? b.packets : 0;
    const bb = same ? b.bytes : 0;
    if (c.packets > bp || c.bytes > bb) moved.push(deltaOf(c, bp, bb));
  }
  return { moved, changed };
}

/** A rule's counts less those at the start, written out rather than spread (a fleet's window moves ~33,000). */
function deltaOf(c: RuleCount, bp: number, bb: number): CountDelta {
  const before = { packets: bp, bytes: bb };
  const { source, table, chain, ruleNumber, text, pos } = c;
  const packets = c.packets - bp;
  const bytes = c.bytes - bb;
  return ruleNumber === undefined
    ? { source, table, chain, text, packets, bytes, pos, before }
    : { source, table, chain, ruleNumber, text, packets, bytes, pos, before };
}

/**
 * Whether `end[i]` has the key of `start[i]` for every i: then the two ends list the same rules in the same order,
 * paired by index (a chain listed twice pairs its rules in the order listed, not all with its last listing).
 */
function sameRulesInOrder(start: readonly RuleCount[], end: readonly RuleCount[]): boolean {
  if (start.length !== end.length) return false;
  for (let i = 0; i < start.length; i++) {
    const a = start[i]!;
    const b = end[i]!;
    if (a.source !== b.source || a.table !== b.table || a.chain !== b.chain || a.ruleNumber !== b.ruleNumber)
      return false;
  }
  return true;
}
