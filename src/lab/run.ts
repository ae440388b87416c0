/**
 * `lab run`: bring the scenario up, send every probe for real, read the captures back, compare each probe with the
 * simulation (same outcome, same last-seen point), take the lab down.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import { appendAll } from '../source/arrays.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec } from '../topology/model.ts';
import { openSession, runProbe } from '../trace/session.ts';
import type { Disposition } from '../trace/types.ts';
import { describeProbe, type LastSeen, l2View, lastSeen, probeKey, type SeenFrame } from './correlate.ts';
import { type DirectorMode, serviceKey } from './kernel-rules.ts';
import {
  freshDirectors,
  type Lab,
  type LabOptions,
  labDown,
  labUp,
  type RuleCheck,
  resetLearnedState,
  stopCaptures,
} from './lab.ts';
import { labProbes, readCaptures, runRealProbe } from './probes.ts';

export interface ProbeComparison {
  readonly probe: string;
  readonly description: string;
  readonly real: {
    readonly ok: boolean;
    readonly detail: string;
    readonly lastSeen: LastSeen;
    readonly servedBy?: string;
  };
  readonly sim: {
    readonly ok: boolean;
    readonly disposition: Disposition;
    readonly summary: string;
    readonly lastSeen: LastSeen;
  };
  readonly agree: boolean;
  /** Why kernel and simulator disagree. */
  readonly difference?: string;
  /** Set when the lab cannot reproduce this probe faithfully (then it is not compared). */
  readonly unsupported?: string;
}

export interface LabReport {
  readonly scenario: string;
  readonly prefix: string;
  readonly filterSource: string;
  /** Who played the directors: real IPVS (`ipvsadm`) or the nftables emulation. */
  readonly directorEngine: string;
  readonly probes: readonly ProbeComparison[];
  readonly ruleChecks: readonly RuleCheck[];
  readonly warnings: readonly string[];
  readonly captureIssues: readonly string[];
  /** Milliseconds per phase. */
  readonly timings: Readonly<Record<string, number>>;
  /** 0 all succeed and agree; 1 a probe fails (agreeing); 3 kernel and simulator disagree. */
  readonly exitCode: 0 | 1 | 3;
}

export interface LabRunOptions extends LabOptions {
  readonly timeoutMs?: number;
  /** Keep the lab's directory (pcaps, logs) after the run. */
  readonly keepWorkDir?: boolean;
  /**
   * Stop a failing probe once nothing has moved for this long after its packets were last seen where the simulator
   * says they end (ms; default 300; 0 waits out every timeout). See `ProbeRunOptions.expect`.
   */
  readonly quietMs?: number;
  /** Send all probes at once (faster; they then share learned state, unlike the simulator's probes). */
  readonly parallel?: boolean;
  /** Called with the lab once it is up, before the first probe (tests start kernel traces, snapshot counters). */
  readonly afterUp?: (lab: Lab) => Promise<void> | void;
  /** Called with the lab after the probes, before it is taken down (tests inspect the kernel state here). */
  readonly beforeDown?: (lab: Lab) => Promise<void> | void;
}

function compare(real: ProbeComparison['real'], sim: ProbeComparison['sim']): string | undefined {
  if (real.ok !== sim.ok)
    return `kernel: ${real.ok ? 'succeeds' : `fails (${real.detail}; last seen ${real.lastSeen.point ?? 'nowhere'})`}; simulator: ${sim.ok ? 'succeeds' : `${sim.summary} (last seen ${sim.lastSeen.point ?? 'nowhere'})`}`;
  if (real.lastSeen.point !== sim.lastSeen.point || real.lastSeen.stage !== sim.lastSeen.stage)
    return `both fail, but the kernel last saw the ${real.lastSeen.stage ?? '?'} at ${real.lastSeen.point ?? 'nowhere'} and the simulator at ${sim.lastSeen.point ?? 'nowhere'} (${sim.lastSeen.stage ?? '?'}): ${sim.summary}`;
  return undefined;
}

/** Frames captured in [fromNs, toNs). */
function inWindow(frames: readonly SeenFrame[], fromNs: bigint, toNs: bigint): SeenFrame[] {
  return frames.filter((f) => f.timeNs >= fromNs && f.timeNs < toNs);
}

/**
 * Where each probe's frames are looked for. Probes one at a time: from its start (less a clock tick) until the next
 * probe starts — frames that come late, after a prober was stopped early or timed out, still count for their probe
 * — and the last until the captures stop. Probes at once: around each one's own run.
 */
function windows(reals: readonly { startNs: bigint; endNs: bigint }[], parallel: boolean): [bigint, bigint][] {
  const tick = 5_000_000n;
  const margin = 200_000_000n;
  const forever = 1n << 62n;
  return reals.map((r, k) =>
    parallel
      ? [r.startNs - margin, r.endNs + margin]
      : [r.startNs - tick, k + 1 < reals.length ? reals[k + 1]!.startNs - tick : forever],
  );
}

/** How directors must schedule for this probe: a probe pinned to a real server has its service send new flows there. */
function pinnedMode(p: AnyProbeSpec): DirectorMode {
  if (p.kind === 'arp' || !p.realServer) return { kind: 'fresh' };
  return {
    kind: 'pinned',
    service: serviceKey({ vip: formatIpv4(p.to), port: p.dport, protocol: p.kind }),
    dest: { ip: formatIpv4(p.realServer.addr), port: p.realServer.port },
  };
}

export async function runLabScenario(loaded: LoadedScenario, o: LabRunOptions = {}): Promise<LabReport> {
  // Probes at once share the directors: pinned ones need directors of their own, so they run only one at a time.
  const probes: AnyProbeSpec[] = labProbes(loaded).filter((p) => !o.parallel || pinnedMode(p).kind !== 'pinned');
  const view = l2View(loaded.scenario);
  const session = openSession(loaded);
  // The simulation first: where it says a probe ends lets the kernel's probe stop early once it ends there.
  const ts = performance.now();
  const traces = probes.map((p) => runProbe(session, p));
  const simSeen = probes.map((p, k) => lastSeen(view, probeKey(loaded, p), traces[k]!.captures));
  const simulateMs = performance.now() - ts;
  const lab = await labUp(loaded, { ...o, directorMode: o.directorMode ?? { kind: 'fresh' } });
  lab.timings.simulate = simulateMs;
  const reals: Awaited<ReturnType<typeof runRealProbe>>[] = [];
  let captureIssues: string[] = [];
  let frames: SeenFrame[] = [];
  try {
    if (o.afterUp) await o.afterUp(lab);
    const t0 = performance.now();
    const po = (k: number) => ({
      ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
      ...(o.quietMs !== undefined ? { quietMs: o.quietMs } : {}),
      ...(traces[k]!.disposition !== 'replied' ? { expect: { view, lastSeen: simSeen[k]! } } : {}),
    });
    // The simulator runs every probe from the scenario's initial state; so does the kernel: one probe at a time,
    // with learned ARP entries and bridge FDBs flushed in between (otherwise one probe's traffic changes the next
    // one's path — e.g. a real server whose ARP request carries the VIP teaches the gateway the wrong MAC).
    if (o.parallel) appendAll(reals, await Promise.all(probes.map((p, k) => runRealProbe(lab, p, po(k)))));
    else
      for (const [k, p] of probes.entries()) {
        const mode = pinnedMode(p);
        const wasPinned = k > 0 && pinnedMode(probes[k - 1]!).kind === 'pinned';
        if (k > 0) await Promise.all([resetLearnedState(lab), freshDirectors(lab, mode, wasPinned)]);
        else if (mode.kind === 'pinned') await freshDirectors(lab, mode);
        reals.push(await runRealProbe(lab, p, po(k)));
      }
    lab.timings.probes = performance.now() - t0;
    const t1 = performance.now();
    await stopCaptures(lab);
    const c = readCaptures(lab);
    frames = c.frames;
    captureIssues = c.issues;
    lab.timings.captures = (lab.timings.captures ?? 0) + (performance.now() - t1);
    if (o.beforeDown) await o.beforeDown(lab);
  } finally {
    const t2 = performance.now();
    await labDown(lab, o.keepWorkDir ? { keepWorkDir: true } : {});
    lab.timings.down = performance.now() - t2;
  }
  const t3 = performance.now();
  const win = windows(reals, o.parallel === true);
  const out: ProbeComparison[] = probes.map((p, k) => {
    const r = reals[k]!;
    const key = probeKey(loaded, p);
    const real = {
      ok: r.ok,
      detail: r.detail,
      lastSeen: lastSeen(view, key, inWindow(frames, ...win[k]!)),
      ...(r.servedBy ? { servedBy: r.servedBy } : {}),
    };
    const t = traces[k]!;
    const sim = {
      ok: t.disposition === 'replied',
      disposition: t.disposition,
      summary: t.summary,
      lastSeen: simSeen[k]!,
    };
    const unsupported =
      p.kind !== 'arp' && lab.plan.unsupportedServices.some((s) => s === `${formatIpv4(p.to)}:${p.dport}`)
        ? 'the service uses tunnel (or mixed) forwarding, which the lab does not emulate'
        : undefined;
    const difference = unsupported ? undefined : compare(real, sim);
    return {
      probe: p.name,
      description: describeProbe(p),
      real,
      sim,
      agree: difference === undefined,
      ...(difference ? { difference } : {}),
      ...(unsupported ? { unsupported } : {}),
    };
  });
  lab.timings.compare = performance.now() - t3;
  const exitCode = out.some((p) => !p.agree) ? 3 : out.every((p) => p.real.ok) ? 0 : 1;
  return {
    scenario: loaded.scenario.name,
    prefix: lab.prefix,
    filterSource: lab.filterSource,
    directorEngine: lab.directorEngine,
    probes: out,
    ruleChecks: lab.ruleChecks,
    warnings: lab.warnings,
    captureIssues,
    timings: lab.timings,
    exitCode,
  };
}
