/**
 * The one fix list: the fixes a diagnosis proposes (`diagnoseSession`'s proposals, found by its one trace explainer
 * and the static checks), looked up by id as `diagnose` prints them, for the front ends that apply them
 * (`lab --with-fix`, the web app's what-if).
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
  const chosen = fixesToApply(d, [fix.id]) as { readonly fixes: readonly FixProposal[] };
  return { fix: { ...fix, apply: (l: LoadedScenario) => chosen.fixes.reduce((cur, f) => f.apply(cur), l) }, known };
}

/**
 * The fixes to apply for the chosen ids, in order: each after the fixes it was verified after, each once; or the
 * first id no proposal has.
 */
export function fixesToApply(
  d: DiagnosisSession,
  ids: readonly string[],
): { readonly fixes: readonly FixProposal[] } | { readonly unknown: string } {
  const order: FixProposal[] = [];
  for (const id of ids) {
    const p = d.proposals.get(id);
    if (!p) return { unknown: id };
    for (const f of [...p.prereqs, p.fix]) if (!order.includes(f)) order.push(f);
  }
  return { fixes: order };
}

/** `findProposedFix` on the diagnosis of `loaded`. */
export function findFix(loaded: LoadedScenario, id: string): FoundFix {
  return findProposedFix(diagnoseSession(loaded), id);
}
