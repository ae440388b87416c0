/**
 * The one fix list: the fixes a diagnosis proposes (`diagnoseSession`'s proposals, found by its one trace explainer
 * and the static checks), looked up by id as `diagnose` prints them, for the front ends that apply one
 * (`lab --with-fix`).
 */
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { type DiagnosisSession, diagnoseSession } from './diagnose.ts';
import type { FixProposal } from './types.ts';

export interface FoundFix {
  /** The fix; its `apply` first applies the fixes it was verified after (its prerequisites). */
  readonly fix?: FixProposal;
  /** Every proposed fix id, in the diagnosis's order. */
  readonly known: readonly string[];
}

/** The proposal whose id is `id` or starts with `id:` (e.g. `dr-director-filter` for `dr-director-filter:host1:vnet0`). */
export function findProposedFix(d: DiagnosisSession, id: string): FoundFix {
  const all = [...d.proposals.values()];
  const p = all.find((x) => x.fix.id === id) ?? all.find((x) => x.fix.id.startsWith(`${id}:`));
  const known = all.map((x) => x.fix.id);
  if (!p) return { known };
  const { fix, prereqs } = p;
  if (prereqs.length === 0) return { fix, known };
  return {
    fix: { ...fix, apply: (l: LoadedScenario) => fix.apply(prereqs.reduce((cur, f) => f.apply(cur), l)) },
    known,
  };
}

/** `findProposedFix` on the diagnosis of `loaded`. */
export function findFix(loaded: LoadedScenario, id: string): FoundFix {
  return findProposedFix(diagnoseSession(loaded), id);
}
