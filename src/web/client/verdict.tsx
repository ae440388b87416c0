/**
 * The verdict as `diagnose` gives it — healthy, broken, or no verdict (nothing could be checked: never a pass) — and
 * the virtual services no probe exercised, with the reason. Words carry the meaning; colour only repeats it.
 */
import type { ProbeView, WebModel } from '../contract.ts';

export function VerdictBadge({ model }: { model: WebModel }) {
  const failing = model.probes.filter((p) => !p.ok).length;
  const n = model.unchecked.length;
  switch (model.verdict) {
    case 'healthy':
      return (
        <span class="badge ok" data-verdict-state="healthy">
          ✓ healthy{n > 0 ? ` · ${n} service${n === 1 ? '' : 's'} not checked` : ''}
        </span>
      );
    case 'broken':
      return (
        <span class="badge bad" data-verdict-state="broken">
          ✗ {failing > 0 ? `${failing} of ${model.probes.length} probes fail` : 'broken: an error in the configuration'}
        </span>
      );
    case 'no-verdict':
      return (
        <span class="badge warn" data-verdict-state="no-verdict">
          no verdict: nothing could be checked
        </span>
      );
    default: {
      const never: never = model.verdict;
      return never;
    }
  }
}

/**
 * With a what-if applied, the probes' verdict after it (the diagnosis' verdict stays beside it: findings that only
 * the configuration shows are not re-judged by a re-trace).
 */
export function WhatIfBadge({ probes }: { probes: readonly ProbeView[] }) {
  const failing = probes.filter((p) => !p.ok).length;
  return failing === 0 ? (
    <span class="badge ok" data-what-if-verdict="answered">
      what-if: ✓ all {probes.length} probes answered
    </span>
  ) : (
    <span class="badge bad" data-what-if-verdict="failing">
      what-if: ✗ {failing} of {probes.length} probes fail
    </span>
  );
}

/**
 * Beside the probes: with no verdict, what was missing (as `diagnose` prints it, the unchecked services among
 * them); otherwise the services the verdict does not vouch for.
 */
export function Coverage({ model }: { model: WebModel }) {
  if (model.noVerdict)
    return (
      <section class="card warning coverage" aria-labelledby="no-verdict-title" data-no-verdict>
        <h3 id="no-verdict-title">No verdict</h3>
        <p>
          No virtual service could be checked (no TCP or UDP conversation could run), so this is not a pass. Missing:
        </p>
        <ul>
          {model.noVerdict.map((m) => (
            <li>{m}</li>
          ))}
        </ul>
      </section>
    );
  if (model.unchecked.length === 0) return null;
  return (
    <section class="card warning coverage" aria-labelledby="unchecked-title" data-unchecked-list>
      <h3 id="unchecked-title">Not checked ({model.unchecked.length})</h3>
      <p>No probe exercised these services: the verdict does not vouch for them.</p>
      <ul>
        {model.unchecked.map((u) => (
          <li data-unchecked={u.what}>
            <strong>{u.what}</strong>: {u.why}
          </li>
        ))}
      </ul>
    </section>
  );
}
