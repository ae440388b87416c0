/**
 * The offline report's what-if engine, bundled apart from the page (its own script in the report, see page.ts):
 * the report embeds what the CLI's load read of the scenario's files (`ReportInputs`); on the first what-if this
 * loads them again with the CLI's loader (`loadScenarioFrom` over `replayedSource`), diagnoses with
 * `openWebSession` and answers with `whatIf` — the functions behind `serve`'s POST /api/what-if, not a copy of
 * them. The page (src/web/client/) only calls `globalThis[REPORT_ENGINE_GLOBAL]`.
 */
import { loadScenarioFrom } from '../topology/load-scenario.ts';
import { replayedSource } from '../topology/scenario-source.ts';
import { REPORT_ENGINE_GLOBAL, REPORT_INPUTS_ID, type ReportEngine, type ReportInputs } from './contract.ts';
import { openWebSession, type WebSession, whatIf } from './what-if.ts';

/** Loads and diagnoses the embedded scenario; a string says why it cannot be. */
export function openReportSession(inputs: ReportInputs): WebSession | string {
  const source = replayedSource(inputs);
  const r = loadScenarioFrom(source);
  const errors = r.issues.filter((i) => i.severity === 'error');
  if (!r.value || errors.length > 0)
    return `the scenario embedded in the report did not load: ${errors.map((i) => i.message).join('; ') || 'no scenario'}`;
  // The replayed files also give the inspector the lines of files only what-if traces point at.
  return openWebSession(r.value, source);
}

let session: WebSession | string | undefined;

function embedded(): WebSession | string {
  const el = typeof document === 'undefined' ? null : document.getElementById(REPORT_INPUTS_ID);
  if (!el?.textContent) return 'this report holds no scenario to re-trace';
  try {
    return openReportSession(JSON.parse(el.textContent) as ReportInputs);
  } catch (e) {
    return `the what-if engine failed: ${(e as Error).message}`;
  }
}

function opened(): WebSession | string {
  session ??= embedded();
  return session;
}

export const reportEngine: ReportEngine = {
  whatIf(req, places, known) {
    const s = opened();
    if (typeof s === 'string') return { kind: 'bad', message: s };
    const have = new Set(known);
    return whatIf(s, { places, known: (f) => have.has(f) }, req);
  },
  warm() {
    opened();
  },
};

(globalThis as Record<string, unknown>)[REPORT_ENGINE_GLOBAL] = reportEngine;
