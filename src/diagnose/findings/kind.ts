/** The shape every finding kind has: one file per kind in this folder, listed in catalogue.ts. */
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Trace } from '../../trace/types.ts';
import type { Finding, FixProposal, Severity } from '../types.ts';

export interface DiagnoseContext {
  readonly loaded: LoadedScenario;
  /** The first finding that explains a failed trace (checks that trace a changed cluster, e.g. after failover). */
  readonly explain?: (loaded: LoadedScenario, trace: Trace) => Detected | undefined;
}

export interface Detected {
  readonly finding: Omit<Finding, 'fixes' | 'probes' | 'source' | 'after'>;
  readonly fixes: readonly FixProposal[];
}

export interface FindingKind {
  readonly code: string;
  readonly severity: Severity;
  readonly title: string;
  /** What the finding needs to see (for `lvsdoctor findings` and docs/findings.md). */
  readonly needs: string;
  /** `trace`: found by looking at a failed probe; `static`: found in the configuration alone. */
  readonly source: 'trace' | 'static';
  /** Looks at a failed trace's decisive end; undefined when this kind does not explain it. */
  readonly detect?: (ctx: DiagnoseContext, trace: Trace) => Detected | undefined;
  /** Looks at the model without tracing (design-time lint). */
  readonly check?: (ctx: DiagnoseContext) => readonly Detected[];
}
