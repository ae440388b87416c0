/** Diagnosis results: findings, checks and fixes are data; the CLI renders them. */
import type { Origin } from '../source/origin.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { UncheckedService } from '../trace/probe-plan.ts';
import type { Disposition, Trace } from '../trace/types.ts';

export type Severity = 'error' | 'warning' | 'info';

/** One step of the stepwise report, in the spirit of the engineers' manual method. */
export interface Check {
  readonly id: string;
  readonly probe: string;
  readonly title: string;
  readonly status: 'pass' | 'fail' | 'not-reached';
  /** Evidence: listing lines, tcpdump lines, rule text, origin chains. */
  readonly lines: readonly string[];
}

export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  readonly title: string;
  /** Plain explanation of why it happens. */
  readonly explanation: string;
  /** Probes whose traces show it. */
  readonly probes: readonly string[];
  /** Where it happens: node and interface. */
  readonly where: string;
  /** The decisive rule or setting, with its origin chain. */
  readonly culprit?: Origin;
  /** Ids of fixes that address it, best first. */
  readonly fixes: readonly string[];
  /** `trace`: seen on a probe's path; `static`: found in the configuration; `both`. */
  readonly source: 'trace' | 'static' | 'both';
  /** Findings a packet meets before this one (this one shows once those are fixed). */
  readonly after: readonly string[];
}

export interface FixArtifact {
  /** Relative path inside the fix output directory. */
  readonly path: string;
  readonly content: string;
}

/** A concrete change: artifacts to apply, commands to run, and its effect on the model. */
export interface FixProposal {
  readonly id: string;
  readonly title: string;
  /** What protection remains after the fix, in words. */
  readonly keeps: string;
  /** Higher keeps more protection. */
  readonly protectionRank: number;
  readonly artifacts: readonly FixArtifact[];
  readonly commands: readonly string[];
  /** The scenario with the fix applied, for verification by re-tracing. */
  readonly apply: (s: LoadedScenario) => LoadedScenario;
}

export interface ProbeOutcome {
  readonly probe: string;
  readonly disposition: Disposition;
  readonly summary: string;
}

export interface VerifiedFix extends Omit<FixProposal, 'apply'> {
  readonly verified: boolean;
  /**
   * What the re-trace proves: `probe` — at least one failing probe succeeds with the fix ("✓ verified");
   * `finding-only` — it clears its findings but no probe changed (nothing failing to unblock, or a static finding);
   * `none` — not sufficient.
   */
  readonly proof: 'probe' | 'finding-only' | 'none';
  /** Every probe re-traced with the fix applied. */
  readonly retraced: readonly { readonly probe: string; readonly before: Disposition; readonly after: Disposition }[];
  /** Probes that failed before and succeed with the fix. */
  readonly unblocks: readonly string[];
  /** Fixes applied first when this one was verified (it addresses a fault that shows only after them). */
  readonly requires: readonly string[];
  /** Static findings this fix makes disappear. */
  readonly clears: readonly string[];
}

/** A probe of the run: what it is, why it runs, and whether its failure is an error. */
export interface PlannedProbeInfo {
  readonly probe: string;
  readonly purpose: 'asked' | 'service' | 'real-server' | 'vip-arp' | 'rs-direct';
  readonly why: string;
  readonly decisive: boolean;
}

export interface Report {
  readonly scenario: string;
  readonly healthy: boolean;
  /**
   * Set when nothing could be checked (no probe could run): what was missing. Zero evidence is never a pass: the
   * report is then not healthy and `diagnose` exits 2 (no verdict).
   */
  readonly noVerdict?: readonly string[];
  /** Virtual services no probe exercised, and why: the verdict does not vouch for them. */
  readonly unchecked: readonly UncheckedService[];
  readonly plan: readonly PlannedProbeInfo[];
  readonly traces: readonly Trace[];
  readonly checks: readonly Check[];
  readonly findings: readonly Finding[];
  readonly fixes: readonly VerifiedFix[];
  readonly assumptions: readonly string[];
}
