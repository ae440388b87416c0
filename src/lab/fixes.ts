/** The diagnosis' fix proposals, so the lab can rehearse one on the real kernel (`--with-fix ID`). */
import { FINDING_KINDS } from '../diagnose/findings/catalogue.ts';
import type { FixProposal } from '../diagnose/types.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { openSession, runProbe } from '../trace/session.ts';
import { labProbes } from './probes.ts';

/** Every fix the diagnosis proposes for the scenario's failing probes (deduplicated by id). */
export function fixProposals(loaded: LoadedScenario): FixProposal[] {
  const session = openSession(loaded);
  const out = new Map<string, FixProposal>();
  for (const p of labProbes(loaded)) {
    const t = runProbe(session, p);
    if (t.disposition === 'replied') continue;
    for (const kind of FINDING_KINDS) {
      const d = kind.detect?.({ loaded }, t);
      if (!d) continue;
      for (const f of d.fixes) if (!out.has(f.id)) out.set(f.id, f);
      break;
    }
  }
  return [...out.values()];
}

/** The proposal whose id is `id` or starts with `id:` (e.g. `dr-director-filter` for `dr-director-filter:host1:vnet0`). */
export function findFix(loaded: LoadedScenario, id: string): { fix?: FixProposal; known: string[] } {
  const all = fixProposals(loaded);
  const fix = all.find((f) => f.id === id) ?? all.find((f) => f.id.startsWith(`${id}:`));
  return { ...(fix ? { fix } : {}), known: all.map((f) => f.id) };
}
