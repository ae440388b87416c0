/**
 * Live evidence of a lab layout, recorded and joined: what the hypervisors of a scenario print while its real probes
 * run (`nft monitor trace` and `xtables-monitor --trace` with the operator's tracing rule in every hypervisor's
 * namespace; the collector's counter listings — the same commands as `collect-script --watch` — before and after),
 * stored as files (fixtures/kernel-traces/<scenario>/) and joined to a model of the scenario: every trace event and
 * every moved counter to a model rule with its origin, every probe's verdict set against them. Shared by
 * test/trace-real-layouts.test.ts (root, real kernel) and its fixture half (no root).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { COUNTER_COMMANDS } from '../../src/collect/collector-script.ts';
import { type EvidenceReport, joinEvidence } from '../../src/collect/counter-join.ts';
import { counterWindow } from '../../src/collect/counter-window.ts';
import {
  joinKernelTraces,
  type KernelTraceInput,
  type KernelTraceReport,
  type NodeListings,
} from '../../src/collect/trace-join.ts';
import { diagnose } from '../../src/diagnose/diagnose.ts';
import { readEbtablesCounters, readNftRules, readSaveCounters } from '../../src/netfilter/counter-read.ts';
import { readNftMonitorTrace, readXtablesMonitorTrace } from '../../src/netfilter/trace-read.ts';
import { modelHostRules } from '../../src/topology/host-rules.ts';
import type { LoadedScenario } from '../../src/topology/load-scenario.ts';
import { LAB_SKIP_REASON } from '../lab-helpers.ts';

export function has(tool: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Why the real-kernel trace tests are skipped here, or undefined when they run. */
export const TRACE_SKIP_REASON =
  LAB_SKIP_REASON ?? (has('xtables-monitor') ? undefined : 'xtables-monitor (iptables) not installed');

export function sh(argv: readonly string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();
}

/** The counter listings of a window: id (as the collector names its output) and command. */
export const WINDOW_LISTINGS: readonly (readonly [string, string])[] = COUNTER_COMMANDS.hypervisor
  .filter(([id]) => id !== 'ip-s-link' && id !== 'ip6tables-save')
  .map(([id, , cmd]) => [id!, cmd!] as const);

/**
 * The operator's tracing rule: every bridged frame traced from before libvirt's chains (br_netfilter hands the traced
 * frame on to the iptables hooks with its trace flag). Routed packets of the host itself would need an ip table too;
 * the lab's hypervisors only bridge.
 */
export const TRACING_RULESET = [
  'table bridge lvsdoctor_trace {',
  '  chain pre {',
  '    type filter hook prerouting priority -400; policy accept;',
  '    meta nftrace set 1',
  '  }',
  '}',
  '',
].join('\n');

/** What one hypervisor printed. File names are those of the fixture folder `<host>/`. */
export interface HostRecording {
  readonly node: string;
  /** file name → text: nft-monitor-trace.txt, xtables-monitor-trace.txt, nft-ruleset-handles.txt, start/<id>.txt, end/<id>.txt. */
  readonly files: ReadonlyMap<string, string>;
}

export interface LayoutRecording {
  readonly scenario: string;
  readonly hosts: readonly HostRecording[];
  /** The real probes' outcomes: `name ok|fails detail`, one a line. */
  readonly outcomes: string;
}

export function writeRecording(dir: string, r: LayoutRecording, recorded: string): void {
  mkdirSync(dir, { recursive: true });
  for (const h of r.hosts)
    for (const [name, text] of h.files) {
      const p = join(dir, h.node, name);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, text);
    }
  writeFileSync(join(dir, 'outcomes.txt'), r.outcomes);
  writeFileSync(join(dir, 'RECORDED.md'), recorded);
}

export function readRecording(dir: string, scenario: string): LayoutRecording {
  const hosts: HostRecording[] = [];
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    if (!d.isDirectory()) continue;
    const files = new Map<string, string>();
    const walk = (sub: string) => {
      for (const f of readdirSync(join(dir, d.name, sub), { withFileTypes: true })) {
        const rel = sub ? `${sub}/${f.name}` : f.name;
        if (f.isDirectory()) walk(rel);
        else files.set(rel, readFileSync(join(dir, d.name, rel), 'utf8'));
      }
    };
    walk('');
    hosts.push({ node: d.name, files });
  }
  hosts.sort((a, b) => a.node.localeCompare(b.node));
  return { scenario, hosts, outcomes: readFileSync(join(dir, 'outcomes.txt'), 'utf8') };
}

export interface LayoutJoin {
  readonly traces: KernelTraceReport;
  readonly counters: EvidenceReport;
  /** Reader issues of any recorded file (`code file:line message`; none expected). */
  readonly issues: readonly string[];
  /** Trace events of rules (not of the operator's tracing rules), and how many are joined. */
  readonly events: number;
}

/** Joins a recording to a model of its scenario (the right one, or a deliberately wrong one). */
export function joinLayout(model: LoadedScenario, r: LayoutRecording): LayoutJoin {
  const issues: string[] = [];
  const inputs: KernelTraceInput[] = [];
  const listings = new Map<string, NodeListings>();
  const windows = new Map<string, ReturnType<typeof counterWindow>['value']>();
  for (const h of r.hosts) {
    const f = (name: string) => h.files.get(name);
    const file = (name: string) => `${h.node}/${name}`;
    for (const [name, read] of [
      ['nft-monitor-trace.txt', readNftMonitorTrace],
      ['xtables-monitor-trace.txt', readXtablesMonitorTrace],
    ] as const) {
      const text = f(name);
      if (text === undefined) continue;
      const t = read(text, file(name));
      for (const i of t.issues)
        issues.push(`${i.code} ${i.pos?.file ?? file(name)}:${i.pos?.line ?? '?'} ${i.message}`);
      inputs.push({ node: h.node, file: file(name), events: t.value ?? [], drops: [] });
    }
    const xtables = [];
    const eb = (table: string) => {
      const text = f(`end/ebtables-${table}.txt`);
      return text === undefined
        ? []
        : (readEbtablesCounters(text, file(`end/ebtables-${table}.txt`), table).value ?? []);
    };
    xtables.push(...eb('nat'), ...eb('filter'));
    const save = f('end/iptables-save.txt');
    if (save !== undefined)
      xtables.push(...(readSaveCounters(save, file('end/iptables-save.txt'), 'iptables').value ?? []));
    const handles = f('nft-ruleset-handles.txt');
    listings.set(h.node, {
      xtables,
      nft: handles === undefined ? [] : (readNftRules(handles, file('nft-ruleset-handles.txt')).value ?? []),
    });
    const at = (end: 'start' | 'end') => (id: string) => {
      const text = f(`${end}/${id}.txt`);
      return text === undefined ? undefined : { text, file: file(`${end}/${id}.txt`) };
    };
    const w = counterWindow(h.node, `lab-${r.scenario}`, 'watch', at('start'), at('end'), undefined);
    for (const i of w.issues) issues.push(`${i.code} ${i.pos?.file ?? h.node}:${i.pos?.line ?? '?'} ${i.message}`);
    windows.set(h.node, w.value);
  }
  const report = diagnose(model);
  const hostRules = modelHostRules(model);
  const traces = joinKernelTraces(report, inputs, hostRules, listings, model.scenario);
  const counters = joinEvidence(report, windows, hostRules);
  return { traces, counters, issues, events: traces.joined.length + traces.unmapped.length };
}

/** `joined/total (pct %)`. */
export function share(joined: number, total: number): string {
  return `${joined}/${total} (${total === 0 ? 100 : Math.floor((1000 * joined) / total) / 10} %)`;
}

/**
 * A deliberately wrong model: a copy of the scenario in which every director's interfaces carry clean-traffic with a
 * stale IP parameter (an address the director does not have) — as a bundle collected before the filter was changed;
 * the model then drops the director's traffic where the kernel passes it. Without `staleIp`, the directors' filters
 * are removed instead (as a bundle taken where the filter was already gone): the model passes what the kernel drops.
 * Returns the copy's folder.
 */
export function staleDirectorFilter(scenarioDir: string, into: string, staleIp: string | undefined): string {
  cpSync(scenarioDir, into, { recursive: true });
  const y = parse(readFileSync(join(into, 'scenario.yaml'), 'utf8')) as {
    hosts: Record<string, { domains?: string[] }>;
    guests: Record<string, { ipvsadm?: unknown; keepalived?: unknown }>;
  };
  if (staleIp !== undefined && readFileSync(join(scenarioDir, 'scenario.yaml'), 'utf8').includes(staleIp))
    throw new Error(`${scenarioDir}: the stale address ${staleIp} is one of the scenario's`);
  const directors = new Set(
    Object.entries(y.guests ?? {})
      .filter(([, g]) => g.ipvsadm !== undefined || g.keepalived !== undefined)
      .map(([n]) => n),
  );
  let edited = 0;
  for (const h of Object.values(y.hosts ?? {}))
    for (const d of h.domains ?? []) {
      const p = join(into, d);
      const xml = readFileSync(p, 'utf8');
      const name = /<name>([^<]+)<\/name>/.exec(xml)?.[1];
      if (name === undefined || !directors.has(name)) continue;
      const ref =
        staleIp === undefined
          ? '</interface>'
          : `<filterref filter='clean-traffic'>\n        <parameter name='IP' value='${staleIp}'/>\n      </filterref>\n    </interface>`;
      const out = xml
        .replace(/<filterref\b[^>]*\/>|<filterref\b[\s\S]*?<\/filterref>/g, '')
        .replace(/<\/interface>/g, ref);
      writeFileSync(p, out);
      edited++;
    }
  if (edited === 0) throw new Error(`${scenarioDir}: no director domain to give a stale filter`);
  return into;
}

export function hasRecording(dir: string): boolean {
  return existsSync(join(dir, 'outcomes.txt'));
}
