/**
 * `lvsdoctor lab up|run|down SCENARIO`: the scenario on the real kernel (network namespaces, bridges, veths, real
 * libvirt nwfilter bindings or the compiled rules, an nftables DR director, real servers and clients, tcpdump at
 * every capture point), and the simulator held to it. Exit codes: 0 every probe succeeds and agrees, 1 a probe fails
 * (kernel and simulator agree), 3 kernel and simulator disagree, 2 bad input, not root, or packages missing, 4 this
 * kernel cannot show the scenario (e.g. LVS-TUN without ipip; each reason named).
 */

import { readdirSync } from 'node:fs';
import { uncheckable } from '../diagnose/diagnose.ts';
import { findFix } from '../diagnose/fix-list.ts';
import type { LastSeen } from '../lab/correlate.ts';
import { keepalivedUnavailable, runVrrpLab, type VrrpLabReport } from '../lab/keepalived.ts';
import { type Lab, labUp, releaseLab, removeLeftovers } from '../lab/lab.ts';
import { LabLimitError } from '../lab/limits.ts';
import { labUnavailable, preflight } from '../lab/preflight.ts';
import { labProbes } from '../lab/probes.ts';
import { type LabReport, type ProbeComparison, runLabScenario } from '../lab/run.ts';
import { appendAll } from '../source/arrays.ts';
import { prepareOutputDir } from '../source/files.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { type Io, reportIssues } from './io.ts';
import { progress } from './progress.ts';
import { loadForCommand } from './scenario-input.ts';

export type LabAction = 'up' | 'run' | 'vrrp' | 'down';

export interface LabCliOptions {
  /** auto (default): a real libvirt when installed, else the compiled rules. */
  readonly filters?: 'auto' | 'libvirt' | 'compiled';
  /** Apply this fix proposal (an id from `diagnose`, or its prefix such as `dr-director-filter`) first. */
  readonly withFix?: string;
  /** Milliseconds a failing request is given (default 1500). */
  readonly timeoutMs?: number;
  /** Where tcpdump writes its pcaps (kept after the run). */
  readonly pcapDir?: string;
  readonly json?: boolean;
}

function seen(l: LastSeen): string {
  return l.point ? `${l.stage ?? ''} last seen at ${l.point}`.trim() : 'seen nowhere';
}

export function renderLabReport(r: LabReport): string {
  const directors = r.directorEngine === 'ipvs' ? 'real IPVS (ipvsadm)' : 'the nftables emulation';
  const out: string[] = [
    `lab run: ${r.scenario} (filters by ${r.filterSource}; directors by ${directors}; namespaces ${r.prefix}*)`,
  ];
  for (const p of r.probes) appendAll(out, renderProbe(p));
  for (const c of r.ruleChecks)
    out.push(
      c.same
        ? `rules on ${c.host}: the kernel's ebtables -t nat -L equals lvsdoctor's compiled rules`
        : `rules on ${c.host}: the kernel's ebtables -t nat -L DIFFERS from lvsdoctor's compiled rules`,
    );
  for (const w of r.warnings) out.push(`warning: ${w}`);
  for (const w of r.captureIssues) out.push(`capture: ${w}`);
  out.push(
    `timings: ${Object.entries(r.timings)
      .map(([k, v]) => `${k} ${Math.round(v)} ms`)
      .join(', ')}`,
  );
  const failing = r.probes.filter((p) => !p.real.ok).length;
  const disagree = r.probes.filter((p) => !p.agree).length;
  out.push(
    disagree > 0
      ? `result: kernel and simulator disagree on ${disagree} of ${r.probes.length} probes (exit 3)`
      : failing > 0
        ? `result: ${failing} of ${r.probes.length} probes fail on the kernel; the simulator agrees (exit 1)`
        : `result: all ${r.probes.length} probes succeed on the kernel; the simulator agrees (exit 0)`,
  );
  return `${out.join('\n')}\n`;
}

function renderProbe(p: ProbeComparison): string[] {
  return [
    `probe ${p.probe}: ${p.description}`,
    `  kernel:    ${p.real.ok ? 'succeeds' : 'FAILS'} — ${p.real.detail}; ${seen(p.real.lastSeen)}`,
    `  simulator: ${p.sim.ok ? 'succeeds' : 'FAILS'} — ${p.sim.summary}; ${seen(p.sim.lastSeen)}`,
    p.unsupported
      ? `  ? not compared: ${p.unsupported}`
      : p.agree
        ? '  ✓ kernel and simulator agree'
        : `  ✗ DISAGREE: ${p.difference}`,
  ];
}

function reportJson(r: LabReport): string {
  return `${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`;
}

function withFix(io: Io, loaded: LoadedScenario, id: string | undefined): LoadedScenario | undefined {
  if (id === undefined) return loaded;
  const f = findFix(loaded, id);
  if (!f.fix) {
    io.stderr(
      `lvsdoctor lab: no fix "${id}" is proposed for this scenario (proposed: ${f.known.join(', ') || 'none'})\n`,
    );
    return undefined;
  }
  io.stderr(`applying fix ${f.fix.id}: ${f.fix.title}\n`);
  return f.fix.apply(loaded);
}

/** Exit 4: the kernel here cannot show the scenario — no verdict either way, each reason named. */
export const EXIT_CANNOT_SHOW = 4;

function cannotShow(io: Io, loaded: LoadedScenario, e: LabLimitError): number {
  io.stderr(
    `lvsdoctor lab: no verdict: this kernel cannot show ${loaded.scenario.name} (exit ${EXIT_CANNOT_SHOW}):\n${e.reasons.map((r) => `  - ${r}\n`).join('')}`,
  );
  return EXIT_CANNOT_SHOW;
}

export function renderVrrpReport(r: VrrpLabReport): string {
  const out = [`lab vrrp: ${r.scenario} (real keepalived on the directors)`];
  for (const [guest, lines] of Object.entries(r.states))
    for (const l of lines) out.push(`  ${guest}: ${l.replace(/^.*?: \(/, '(')}`);
  for (const a of r.adverts)
    out.push(
      `advert ${a.from} → ${a.to} (${a.dst}): kernel ${a.kernelSeen ? 'arrived' : 'did not arrive'}; simulator ${a.simReached ? 'arrives' : `dropped${a.simDrop ? ` at ${a.simDrop}` : ''}`} ${a.agree ? '✓' : '✗ DISAGREE'}`,
    );
  for (const g of r.groups)
    out.push(
      `VRID ${g.vrid} (${g.vips.join(', ')}): held on the kernel by ${g.kernelHolders.join(', ') || 'nobody'}; the simulator says ${g.simHolders.join(', ') || 'nobody'} ${g.agree ? '✓' : '✗ DISAGREE'}`,
    );
  for (const f of r.failovers ?? []) {
    out.push(
      `VRID ${f.vrid} after stopping keepalived on ${f.stopped.join(', ') || 'nobody'}: held on the kernel by ${f.kernelHolders.join(', ') || 'nobody'}; the simulator says ${f.simHolders.join(', ') || 'nobody'}; gratuitous ARP from ${f.kernelGarpMacs.join(', ') || 'no MAC'} (simulator: ${f.simGarpMac ?? 'none'}) ${f.agree ? '✓' : '✗ DISAGREE'}`,
    );
    for (const g of f.garp)
      out.push(
        `  gratuitous ARP for ${g.vip} at ${g.node}: kernel ${g.kernelSeen ? 'arrived' : 'did not arrive'}; simulator ${g.simReached ? 'arrives' : 'does not arrive'} ${g.agree ? '✓' : '✗ DISAGREE'}`,
      );
    for (const a of f.adverts)
      out.push(
        `  advert ${a.from} → ${a.to} (${a.dst}): kernel ${a.kernelSeen ? 'arrived' : 'did not arrive'}; simulator ${a.simReached ? 'arrives' : `dropped${a.simDrop ? ` at ${a.simDrop}` : ''}`} ${a.agree ? '✓' : '✗ DISAGREE'}`,
      );
  }
  out.push(
    r.agree
      ? 'result: keepalived on the kernel and the simulator agree (exit 0)'
      : 'result: keepalived on the kernel and the simulator disagree (exit 3)',
  );
  return `${out.join('\n')}\n`;
}

async function runVrrp(
  io: Io,
  loaded: LoadedScenario,
  common: { filters?: 'auto' | 'libvirt' | 'compiled'; pcapDir?: string },
  json: boolean,
): Promise<number> {
  const why = keepalivedUnavailable(loaded);
  if (why) {
    io.stderr(
      `lvsdoctor lab: no verdict: real keepalived cannot run for ${loaded.scenario.name} (exit ${EXIT_CANNOT_SHOW}): ${why}\n`,
    );
    return EXIT_CANNOT_SHOW;
  }
  const p = progress(io, 'lab: building the scenario and running keepalived');
  let r: VrrpLabReport;
  try {
    r = await runVrrpLab(loaded, { ...common, failover: true }).finally(() => p.done());
  } catch (e) {
    if (e instanceof LabLimitError) return cannotShow(io, loaded, e);
    throw e;
  }
  io.stdout(json ? `${JSON.stringify(r, null, 2)}\n` : renderVrrpReport(r));
  return r.agree ? 0 : 3;
}

export async function runLab(io: Io, action: LabAction, dir: string, o: LabCliOptions = {}): Promise<number> {
  const pf = preflight();
  const why = labUnavailable(pf);
  if (why) {
    io.stderr(`lvsdoctor lab: ${why}\n`);
    if (pf.missing.length > 0)
      io.stderr(
        `install them with: apt-get install ${[...new Set(pf.missing.map((m) => /\((.*)\)/.exec(m)?.[1] ?? m))].join(' ')}\n`,
      );
    return 2;
  }
  if (action === 'down') {
    const gone = removeLeftovers();
    io.stdout(
      gone.length ? `removed ${gone.length} namespaces: ${gone.join(', ')}\n` : 'no lab namespaces to remove\n',
    );
    return 0;
  }
  if (o.filters === 'libvirt' && !pf.libvirt) {
    io.stderr(`lvsdoctor lab: --filters libvirt, but missing: ${pf.libvirtMissing.join(', ')}\n`);
    return 2;
  }
  if (o.pcapDir !== undefined) {
    // tcpdump writes there as root and follows links: only a new or empty directory is used.
    prepareOutputDir(o.pcapDir, '--pcap-dir');
    if (readdirSync(o.pcapDir).length > 0) {
      io.stderr(`lvsdoctor lab: --pcap-dir ${o.pcapDir} is not empty: name a new or empty directory\n`);
      return 2;
    }
  }
  const base = loadForCommand(io, dir);
  if (!base) return 2;
  if (reportIssues(io, compileAllHostRules(base).issues)) return 2;
  const loaded = withFix(io, base, o.withFix);
  if (!loaded) return 2;
  const common = {
    ...(o.filters ? { filters: o.filters } : {}),
    ...(o.pcapDir !== undefined ? { pcapDir: o.pcapDir } : {}),
  };
  if (action === 'up') {
    const p = progress(io, 'lab: building the scenario on the kernel');
    let lab: Lab;
    try {
      lab = await labUp(loaded, { ...common, detach: true, directorMode: { kind: 'spread' } }).finally(() => p.done());
    } catch (e) {
      if (e instanceof LabLimitError) return cannotShow(io, loaded, e);
      throw e;
    }
    releaseLab(lab);
    const lines = [
      `lab up: ${loaded.scenario.name} (filters by ${lab.filterSource}; directors by ${lab.directorEngine === 'ipvs' ? 'real IPVS (ipvsadm)' : 'the nftables emulation'})`,
      ...lab.plan.namespaces.map((n) => `  ${n.ns}  ${n.kind} ${n.node}`),
      `captures: ${lab.pcapDir}`,
      ...lab.warnings.map((w) => `warning: ${w}`),
      `enter a node with: ip netns exec ${lab.plan.namespaces[0]?.ns ?? 'NS'} bash`,
      `remove it with: lvsdoctor lab down ${dir}`,
    ];
    io.stdout(`${lines.join('\n')}\n`);
    return 0;
  }
  if (action === 'vrrp') return runVrrp(io, loaded, common, o.json === true);
  if (labProbes(loaded).length === 0) {
    // Zero evidence is never a pass: without a probe the kernel would "agree" on nothing.
    io.stderr(
      `lvsdoctor lab: no verdict: no probe can run on this scenario. Missing:\n${uncheckable(loaded)
        .map((m) => `  - ${m}\n`)
        .join('')}`,
    );
    return 2;
  }
  const p = progress(io, 'lab: building, probing and removing the scenario');
  let report: LabReport;
  try {
    report = await runLabScenario(loaded, {
      ...common,
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    }).finally(() => p.done());
  } catch (e) {
    if (e instanceof LabLimitError) return cannotShow(io, loaded, e);
    throw e;
  }
  io.stdout(o.json ? reportJson(report) : renderLabReport(report));
  return report.exitCode;
}
