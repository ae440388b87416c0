/**
 * `lvsdoctor diagnose … --html FILE`: the web app as one self-contained file — the model embedded, the client
 * bundle and style inline, and the what-if engine (report-engine.ts) with the scenario's files as the load read
 * them, so that any what-if (fixes combined, a filter parameter edited) re-traces in the page with the server's code.
 */
import type { CorrelationReport } from '../capture/correlate.ts';
import type { ReportInputs } from './contract.ts';
import { pageHtml, webScript } from './page.ts';
import { buildWebModel, type ModelOptions } from './view-model.ts';
import type { WebSession } from './what-if.ts';

export async function reportHtml(
  session: WebSession,
  inputs: ReportInputs,
  captures?: CorrelationReport,
  evidence?: ModelOptions['evidence'],
): Promise<string> {
  const model = await buildWebModel(session, {
    live: false,
    ...(captures ? { captures } : {}),
    ...(evidence ? { evidence } : {}),
  });
  return pageHtml({
    title: `lvsdoctor — ${model.scenario.name}`,
    script: await webScript('app'),
    model,
    engine: { inputs, script: await webScript('engine') },
  });
}
