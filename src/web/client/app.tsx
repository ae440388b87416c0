/** The app: tabs (diagnosis, fleet, captures), the selected probe and hop, and the what-if state. */
import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  type ProbeView,
  REPORT_ENGINE_GLOBAL,
  type ReportEngine,
  type WebModel,
  type WhatIfRequest,
  type WhatIfResult,
} from '../contract.ts';
import { CapturesPanel } from './captures.tsx';
import { EvidenceOverview, EvidenceTag, evidenceOf, ProbeEvidencePanel } from './evidence.tsx';
import { FindingsPanel, type WhatIfState } from './findings.tsx';
import { FleetPanel } from './fleet.tsx';
import { Inspector } from './inspector.tsx';
import { StepList } from './steps.tsx';
import { Topology } from './topology.tsx';
import { Coverage, VerdictBadge, WhatIfBadge } from './verdict.tsx';

type Tab = 'diagnosis' | 'fleet' | 'captures';

const EMPTY: WhatIfRequest = { fixes: [], params: [] };

/** The first failing probe, else the first; its decisive hop, else its last. */
function initialSelection(probes: readonly ProbeView[]): { probe: number; hop: number } {
  const k = Math.max(
    0,
    probes.findIndex((p) => !p.ok),
  );
  const p = probes[k];
  return { probe: k, hop: p ? (p.decisive ?? p.path.length - 1) : 0 };
}

/** The offline report's what-if engine, when the page is one. */
function reportEngine(): ReportEngine | undefined {
  return (globalThis as Record<string, unknown>)[REPORT_ENGINE_GLOBAL] as ReportEngine | undefined;
}

/**
 * The what-if answer: the server re-traces (POST /api/what-if); in the offline report the what-if engine embedded
 * in it (src/web/report-engine.ts: the server's what-if code, bundled) re-traces in the page.
 */
async function runWhatIf(model: WebModel, req: WhatIfRequest): Promise<WhatIfResult> {
  if (!model.live) {
    const engine = reportEngine();
    if (!engine) throw new Error('this report has no what-if engine: re-trace with `lvsdoctor serve`');
    // Let the page paint "re-tracing…" before the engine holds the thread.
    await new Promise((done) => setTimeout(done, 0));
    const a = engine.whatIf(req, model.topology.places, Object.keys(model.files));
    if (a.kind === 'bad') throw new Error(a.message);
    return a.result;
  }
  const r = await fetch('api/what-if', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(req),
  });
  const body = (await r.json()) as WhatIfResult | { error: string };
  if (!r.ok || 'error' in body) throw new Error('error' in body ? body.error : `server answered ${r.status}`);
  return body;
}

export function App({ model }: { model: WebModel }) {
  const bigFleet = model.fleet.guests.length > 200;
  const [tab, setTab] = useState<Tab>(bigFleet ? 'fleet' : 'diagnosis');
  const init = useMemo(() => initialSelection(model.probes), [model]);
  const [probeIdx, setProbeIdx] = useState(init.probe);
  const [hopIdx, setHopIdx] = useState(init.hop);
  const [whatIf, setWhatIf] = useState<WhatIfState>({ request: EMPTY, pending: false });
  const [flow, setFlow] = useState<number | undefined>(undefined);

  const active = whatIf.result && !whatIf.pending ? whatIf.result : undefined;
  const probes = active ? active.probes : model.probes;
  // The inspector shows the lines of files only the what-if's traces point at (an applied fix's file) too.
  const shown = useMemo(
    () =>
      active && Object.keys(active.files).length > 0 ? { ...model, files: { ...model.files, ...active.files } } : model,
    [model, active],
  );
  const probe = probes[probeIdx];

  const apply = (request: WhatIfRequest) => {
    if (request.fixes.length === 0 && request.params.length === 0) {
      setWhatIf({ request, pending: false });
      return;
    }
    setWhatIf({ request, pending: true, ...(whatIf.result ? { result: whatIf.result } : {}) });
    runWhatIf(model, request).then(
      (result) => setWhatIf({ request, result, pending: false }),
      (e: unknown) => setWhatIf({ request, pending: false, error: (e as Error).message }),
    );
  };

  // The offline report loads and diagnoses its scenario once the page is drawn, so that the first what-if only
  // re-traces; not for big fleets, whose diagnosis would hold the page for seconds (their first what-if does it).
  useEffect(() => {
    if (model.live || bigFleet) return;
    const t = setTimeout(() => reportEngine()?.warm(), 50);
    return () => clearTimeout(t);
  }, [model]);

  useEffect(() => {
    const p = probes[probeIdx];
    if (p) setHopIdx(p.decisive ?? p.path.length - 1);
  }, [probeIdx, active]);

  const tabs: [Tab, string][] = [
    ['diagnosis', 'Diagnosis'],
    ['fleet', `Fleet (${model.fleet.guests.length} guests)`],
    ...(model.captures ? ([['captures', 'Captures']] as [Tab, string][]) : []),
  ];
  return (
    <>
      <header class="top">
        <h1>lvsdoctor · {model.scenario.name}</h1>
        <VerdictBadge model={model} />
        {active && <WhatIfBadge probes={active.probes} />}
        {!model.live && <span class="badge warn">offline report</span>}
        <div class="tabs" aria-label="Views" role="tablist">
          {tabs.map(([t, label]) => (
            <button
              type="button"
              role="tab"
              id={`tab-${t}`}
              aria-selected={tab === t}
              aria-controls={`panel-${t}`}
              tabIndex={tab === t ? 0 : -1}
              onClick={() => setTab(t)}
              onKeyDown={(e) => {
                // The tab pattern: arrows move between tabs, Tab moves into the panel.
                const k = tabs.findIndex(([x]) => x === t);
                const step = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
                if (!step) return;
                e.preventDefault();
                const next = tabs[(k + step + tabs.length) % tabs.length]![0];
                setTab(next);
                document.getElementById(`tab-${next}`)?.focus();
              }}
            >
              {label}
            </button>
          ))}
        </div>
      </header>
      <main>
        {tab === 'diagnosis' && (
          <div class="diag" id="panel-diagnosis" role="tabpanel" aria-labelledby="tab-diagnosis">
            <section aria-label="Probes, findings and fixes">
              <h2>Probes</h2>
              <ul class="plain" aria-label="Probes">
                {probes.map((p, k) => {
                  const before = model.probes[k]!;
                  const ev = evidenceOf(model, p.name);
                  return (
                    <li>
                      <button
                        type="button"
                        class={`probe ${p.ok ? 'ok' : 'bad'}`}
                        aria-pressed={k === probeIdx}
                        data-probe={p.name}
                        data-verdict={p.disposition}
                        onClick={() => setProbeIdx(k)}
                      >
                        <span class={`v ${p.ok ? 'ok' : 'bad'}`}>{p.ok ? '✓ answered' : `✗ ${p.disposition}`}</span>{' '}
                        {p.name}
                        <small>{p.label}</small>
                        {ev && <EvidenceTag ev={ev} />}
                        {active && before.disposition !== p.disposition && (
                          <small class="verdict-change">
                            what-if: {before.disposition} → {p.disposition}
                          </small>
                        )}
                      </button>
                    </li>
                  );
                })}
              </ul>
              {probes.length === 0 && <p class="muted">No probe could run.</p>}
              <Coverage model={model} />
              <EvidenceOverview model={model} />
              <FindingsPanel model={model} whatIf={whatIf} apply={apply} />
            </section>
            <section aria-label="Topology and path">
              {probe && (
                <>
                  <h2>
                    Path of {probe.name}{' '}
                    <span class={`badge ${probe.ok ? 'ok' : 'bad'}`}>{probe.ok ? 'answered' : probe.disposition}</span>
                    {active && <span class="badge warn">what-if applied</span>}
                  </h2>
                  <p class="muted">{probe.summary}</p>
                </>
              )}
              <Topology
                model={model}
                probe={probe}
                hop={hopIdx}
                onHop={setHopIdx}
                flow={undefined}
                {...(probe && !active && evidenceOf(model, probe.name)
                  ? { marks: evidenceOf(model, probe.name)!.marks }
                  : {})}
              />
              {probe && (
                <StepList
                  probe={probe}
                  hop={hopIdx}
                  onHop={setHopIdx}
                  {...(!active && evidenceOf(model, probe.name) ? { evidence: evidenceOf(model, probe.name)! } : {})}
                />
              )}
              {probe && (
                <ProbeEvidencePanel model={model} probe={probe} whatIf={active !== undefined} onHop={setHopIdx} />
              )}
            </section>
            <section aria-label="Hop inspector">
              {probe?.path[hopIdx] ? (
                <Inspector model={shown} probe={probe} hop={probe.path[hopIdx]!} index={hopIdx} />
              ) : (
                <p>{probe ? 'Pick a hop of the path.' : 'No probe ran: there is no path to inspect.'}</p>
              )}
            </section>
          </div>
        )}
        {tab === 'fleet' && <FleetPanel model={model} />}
        {tab === 'captures' && model.captures && (
          <CapturesPanel model={model} captures={model.captures} flow={flow} onFlow={setFlow} />
        )}
      </main>
    </>
  );
}
