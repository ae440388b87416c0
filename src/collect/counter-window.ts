/**
 * A counter window: what moved on one host between two listings of its counters — the start and the end of a
 * collector watch (`--watch SECONDS`: `counters-start-ID` / `counters-end-ID`), or two plain bundles of the same
 * host taken minutes apart (their `ebtables-nat`, `iptables-save`… outputs). Rule counters (ebtables, iptables,
 * ip6tables, nft), interface statistics (`ip -s -s link`), the kernel's SNMP/netstat counters and IPVS per-service
 * and per-real-server statistics (`ipvsadm -Ln --stats`). Every reader tolerates bad input: what cannot be read is
 * an issue naming the file and line, and the rest of the window is still read.
 */
import { readIpvsadmList } from '../ipvs/ipvsadm-list-reader.ts';
import { formatAddrPort, formatServiceKey } from '../ipvs/model.ts';
import {
  type CountDelta,
  type CounterListing,
  type CounterSource,
  countDeltas,
  type RuleCount,
  readCounterPair,
} from '../netfilter/counter-read.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { type Bundle, bundleFile, outputOf } from './bundle.ts';

export interface StatDelta {
  /** `IpInAddrErrors`, `TcpExtIPReversePathFilter` (nstat's names), or `vnet0 rx_dropped`. */
  readonly name: string;
  readonly delta: number;
  readonly pos: Position;
}

export interface IpvsDelta {
  /** `TCP 192.0.2.100:80`. */
  readonly service: string;
  /** `192.0.2.11:80`, or undefined for the service's own counters. */
  readonly destination?: string;
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly pos: Position;
}

export interface CounterWindow {
  readonly host: string;
  /** The bundle of the window's end (its name). */
  readonly bundle: string;
  /** `watch`: one bundle's start and end snapshots; `bundles`: two bundles of the same host. */
  readonly from: 'watch' | 'bundles';
  /** The window's length in seconds, when both ends are dated. */
  readonly seconds?: number;
  /** Rule counters that moved (packets or bytes). */
  readonly rules: readonly CountDelta[];
  /** Rules listed at the end with other text at that position or counters lower than at the start. */
  readonly changed: readonly RuleCount[];
  readonly links: readonly StatDelta[];
  readonly stack: readonly StatDelta[];
  readonly ipvs: readonly IpvsDelta[];
  /** True when `/proc/net/ip_vs_stats` was listed at both ends (its totals are in `stack` as `IpVsConns`…). */
  readonly ipvsTotals?: boolean;
  /** Listings missing at one end (`ebtables -t nat: not collected at the end`). */
  readonly gaps: readonly string[];
}

type Listing = CounterListing;

type Get = (id: string) => Listing | undefined;

const RULE_LISTINGS: readonly (readonly [string, CounterSource, string?])[] = [
  ['ebtables-nat', 'ebtables', 'nat'],
  ['ebtables-filter', 'ebtables', 'filter'],
  ['iptables-save', 'iptables'],
  ['ip6tables-save', 'ip6tables'],
  ['nft-ruleset', 'nft'],
];

/** `/proc/net/snmp` and `/proc/net/netstat`: header/value line pairs, named as nstat names them. */
export function readSnmp(
  text: string,
  file: string,
): { value: Map<string, { v: number; pos: Position }>; issues: Issue[] } {
  const value = new Map<string, { v: number; pos: Position }>();
  const issues: Issue[] = [];
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    const h = lines[i]!.trim();
    if (h === '') continue;
    const v = lines[i + 1]!.trim();
    const hw = h.split(/\s+/);
    const vw = v.split(/\s+/);
    if (hw[0] !== vw[0] || !hw[0]!.endsWith(':') || hw.length !== vw.length) {
      issues.push(
        issue(
          'snmp-bad-pair',
          `expected a 'Proto: names' line followed by its 'Proto: values' line`,
          filePos(file, i + 1),
        ),
      );
      continue;
    }
    const proto = hw[0]!.slice(0, -1);
    for (let k = 1; k < hw.length; k++) {
      const n = Number(vw[k]);
      if (Number.isFinite(n)) value.set(`${proto}${hw[k]}`, { v: n, pos: filePos(file, i + 2) });
    }
    i++;
  }
  return { value, issues };
}

/** `nstat -asz`: `Name  value  rate` lines. */
function readNstat(text: string, file: string): Map<string, { v: number; pos: Position }> {
  const out = new Map<string, { v: number; pos: Position }>();
  text.split('\n').forEach((line, i) => {
    const m = /^([A-Za-z][A-Za-z0-9_]*)\s+(\d+)\s/.exec(`${line} `);
    if (m) out.set(m[1]!, { v: Number(m[2]), pos: filePos(file, i + 1) });
  });
  return out;
}

/**
 * `/proc/net/ip_vs_stats`: the IPVS totals of the namespace (hexadecimal, as ip_vs_stats_show prints them), named
 * `IpVsConns`, `IpVsInPkts`, `IpVsOutPkts`, `IpVsInBytes`, `IpVsOutBytes`. The rates below them are not read.
 */
export function readIpVsStats(
  text: string,
  file: string,
): { value: Map<string, { v: number; pos: Position }>; issues: Issue[] } {
  const value = new Map<string, { v: number; pos: Position }>();
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^\s*Conns\s+Packets\s+Packets\s+Bytes\s+Bytes\s*$/.test(l));
  const row = at >= 0 ? lines[at + 1]?.trim().split(/\s+/) : undefined;
  if (!row || row.length !== 5 || !row.every((x) => /^[0-9A-Fa-f]+$/.test(x)))
    return {
      value,
      issues: [
        issue(
          'ipvs-stats-bad',
          "expected the 'Conns Packets Packets Bytes Bytes' header followed by five hexadecimal totals",
          filePos(file, at >= 0 ? at + 2 : 1),
        ),
      ],
    };
  const pos = filePos(file, at + 2);
  const names = ['IpVsConns', 'IpVsInPkts', 'IpVsOutPkts', 'IpVsInBytes', 'IpVsOutBytes'];
  for (const [k, n] of names.entries()) value.set(n, { v: Number.parseInt(row[k]!, 16), pos });
  return { value, issues: [] };
}

/** `ip -s -s link show`: per interface RX/TX packets, errors, dropped. */
export function readIpStatsLink(text: string, file: string): Map<string, { v: number; pos: Position }> {
  const out = new Map<string, { v: number; pos: Position }>();
  const lines = text.split('\n');
  let dev: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const d = /^\d+:\s+([^:@\s]+)[@:]/.exec(line);
    if (d) {
      dev = d[1]!;
      continue;
    }
    const h = /^\s+(RX|TX):\s+(.*)$/.exec(line);
    if (h && dev !== undefined && i + 1 < lines.length) {
      const names = h[2]!.trim().split(/\s+/);
      const vals = lines[i + 1]!.trim().split(/\s+/);
      names.forEach((n, k) => {
        const v = Number(vals[k]);
        if (Number.isFinite(v)) out.set(`${dev} ${h[1]!.toLowerCase()}_${n}`, { v, pos: filePos(file, i + 2) });
      });
      i++;
    }
  }
  return out;
}

function statDeltas(
  a: Map<string, { v: number; pos: Position }>,
  b: Map<string, { v: number; pos: Position }>,
): StatDelta[] {
  const out: StatDelta[] = [];
  for (const [name, e] of b) {
    const s = a.get(name);
    if (s !== undefined && e.v > s.v) out.push({ name, delta: e.v - s.v, pos: e.pos });
  }
  return out;
}

function ipvsStats(l: Listing, issues: Issue[]): Map<string, IpvsDelta> {
  const r = readIpvsadmList(l.text, l.file);
  appendAll(issues, r.issues);
  const out = new Map<string, IpvsDelta>();
  for (const s of r.value?.table.services ?? []) {
    const service = formatServiceKey(s.key);
    if (s.stats) out.set(service, { service, ...pick(s.stats), pos: s.origin.pos ?? filePos(l.file, 1) });
    for (const d of s.destinations)
      if (d.stats) {
        const destination = formatAddrPort(d.address, d.port);
        out.set(`${service} ${destination}`, {
          service,
          destination,
          ...pick(d.stats),
          pos: d.origin.pos ?? filePos(l.file, 1),
        });
      }
  }
  return out;
}

function pick(s: { conns: number; inPkts: number; outPkts: number }) {
  return { conns: s.conns, inPkts: s.inPkts, outPkts: s.outPkts };
}

/** The window between two sets of listings of one host. */
export function counterWindow(
  host: string,
  bundle: string,
  from: CounterWindow['from'],
  start: Get,
  end: Get,
  seconds: number | undefined,
): { readonly value: CounterWindow; readonly issues: readonly Issue[] } {
  const issues: Issue[] = [];
  const gaps: string[] = [];
  const rules: CountDelta[] = [];
  const changed: RuleCount[] = [];
  for (const [id, source, table] of RULE_LISTINGS) {
    const a = start(id);
    const b = end(id);
    if (a === undefined && b === undefined) continue;
    if (a === undefined || b === undefined) {
      gaps.push(`${id}: listed only at the ${a === undefined ? 'end' : 'start'} of the window`);
      continue;
    }
    const { start: ra, end: rb } = readCounterPair(source, a, b, table);
    appendAll(issues, ra.issues);
    appendAll(issues, rb.issues);
    const d = countDeltas(ra.value ?? [], rb.value ?? []);
    appendAll(rules, d.moved);
    appendAll(changed, d.changed);
  }
  const stat = (id: string, read: (l: Listing) => Map<string, { v: number; pos: Position }>) => {
    const a = start(id);
    const b = end(id);
    return a && b ? statDeltas(read(a), read(b)) : [];
  };
  const links = stat('ip-s-link', (l) => readIpStatsLink(l.text, l.file));
  const snmp = (l: Listing) => {
    const r = readSnmp(l.text, l.file);
    appendAll(issues, r.issues);
    return r.value;
  };
  let stack = [...stat('proc-snmp', snmp), ...stat('proc-netstat', snmp)];
  if (stack.length === 0) stack = stat('nstat', (l) => readNstat(l.text, l.file));
  stack = [
    ...stack,
    ...stat('proc-ip-vs-stats', (l) => {
      const r = readIpVsStats(l.text, l.file);
      appendAll(issues, r.issues);
      return r.value;
    }),
  ];
  const ipvs: IpvsDelta[] = [];
  const ia = start('ipvsadm-stats');
  const ib = end('ipvsadm-stats');
  if (ia && ib) {
    const sa = ipvsStats(ia, issues);
    for (const [k, e] of ipvsStats(ib, issues)) {
      const s = sa.get(k);
      if (s === undefined) continue;
      const d = { ...e, conns: e.conns - s.conns, inPkts: e.inPkts - s.inPkts, outPkts: e.outPkts - s.outPkts };
      if (d.conns > 0 || d.inPkts > 0 || d.outPkts > 0) ipvs.push(d);
    }
  }
  return {
    value: {
      host,
      bundle,
      from,
      ...(seconds !== undefined ? { seconds } : {}),
      rules,
      changed,
      links,
      stack,
      ipvs,
      ...(start('proc-ip-vs-stats') && end('proc-ip-vs-stats') ? { ipvsTotals: true } : {}),
      gaps,
    },
    issues,
  };
}

function listingOf(b: Bundle, id: string): Listing | undefined {
  const text = outputOf(b, id);
  return text === undefined ? undefined : { text, file: bundleFile(b, b.commands.get(id)!.out) };
}

function epoch(v: string | undefined): number | undefined {
  const m = v === undefined ? undefined : /\s(\d+)$/.exec(v);
  return m ? Number(m[1]) : undefined;
}

/** Whether a bundle was collected with `--watch` (it has a counter window of its own). */
function hasWatchWindow(b: Bundle): boolean {
  return b.meta.has('watch-start') || [...b.commands.keys()].some((k) => k.startsWith('counters-start-'));
}

/** The watch window of one bundle, or undefined when it was collected without `--watch`. */
export function watchWindow(
  b: Bundle,
): { readonly value: CounterWindow; readonly issues: readonly Issue[] } | undefined {
  if (!hasWatchWindow(b)) return undefined;
  const s = epoch(b.meta.get('watch-start'));
  const e = epoch(b.meta.get('watch-end'));
  return counterWindow(
    b.hostname,
    b.name,
    'watch',
    (id) => listingOf(b, `counters-start-${id}`),
    (id) => listingOf(b, `counters-end-${id}`),
    s !== undefined && e !== undefined ? e - s : undefined,
  );
}

const PLAIN: Readonly<Record<string, string>> = {
  'proc-snmp': '',
  'proc-netstat': '',
  nstat: '',
  'ip-s-link': '',
};

/** Two plain bundles of the same host, `a` taken before `b`: the rule counters of their listings. */
export function bundlesWindow(
  a: Bundle,
  b: Bundle,
): { readonly value: CounterWindow; readonly issues: readonly Issue[] } {
  const date = (x: Bundle) => {
    const t = Date.parse(x.meta.get('date') ?? '');
    return Number.isNaN(t) ? undefined : t / 1000;
  };
  const ta = date(a);
  const tb = date(b);
  const get = (x: Bundle) => (id: string) => (id in PLAIN ? undefined : listingOf(x, id));
  return counterWindow(
    a.hostname,
    b.name,
    'bundles',
    get(a),
    get(b),
    ta !== undefined && tb !== undefined ? tb - ta : undefined,
  );
}

/**
 * The windows of a set of bundles: every bundle with a watch, and every pair of bundles of one host and kind (in
 * the order of their `date`, consecutive pairs).
 */
export function counterWindows(bundles: readonly Bundle[]): {
  readonly windows: readonly CounterWindow[];
  readonly issues: readonly Issue[];
} {
  const windows: CounterWindow[] = [];
  const issues: Issue[] = [];
  const byHost = new Map<string, Bundle[]>();
  for (const b of bundles) {
    const w = watchWindow(b);
    if (w) {
      windows.push(w.value);
      appendAll(issues, w.issues);
    }
    const k = `${b.kind}\t${b.hostname}`;
    const list = byHost.get(k);
    if (list) list.push(b);
    else byHost.set(k, [b]);
  }
  for (const list of byHost.values()) {
    if (list.length < 2) continue;
    const sorted = [...list].sort((x, y) => (x.meta.get('date') ?? '').localeCompare(y.meta.get('date') ?? ''));
    for (let i = 0; i + 1 < sorted.length; i++) {
      const w = bundlesWindow(sorted[i]!, sorted[i + 1]!);
      windows.push(w.value);
      appendAll(issues, w.issues);
    }
  }
  return { windows, issues };
}
