/**
 * `lvsdoctor diagnose … --html FILE`: the web app as one self-contained file — the model embedded with the what-if
 * of every proposed fix computed beforehand (there is no server to re-trace), the client bundle and style inline.
 */
import type { CorrelationReport } from '../capture/correlate.ts';
import { clientBundle, pageHtml } from './page.ts';
import { buildWebModel, type WebSession } from './view-model.ts';

export async function reportHtml(session: WebSession, captures?: CorrelationReport): Promise<string> {
  const model = await buildWebModel(session, { live: false, precompute: true, ...(captures ? { captures } : {}) });
  return pageHtml({ title: `lvsdoctor — ${model.scenario.name}`, script: await clientBundle(), model });
}
