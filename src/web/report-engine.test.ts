// The offline report's engine loads the scenario from what the CLI's load read (JSON round-trip, as embedded) and
// answers every what-if as the server's session does: the same fixes, the same re-traced paths and verdicts.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createContext, runInContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFleetBundles } from '../../bench/fleet-bundles.ts';
import { importedSource, importToMemory } from '../collect/import.ts';
import { loadScenarioFrom } from '../topology/load-scenario.ts';
import { diskSource, recordingSource, replayedSource, type ScenarioSource } from '../topology/scenario-source.ts';
import {
  REPORT_ENGINE_GLOBAL,
  REPORT_INPUTS_ID,
  type ReportEngine,
  type ReportInputs,
  type WhatIfAnswer,
  type WhatIfRequest,
} from './contract.ts';
import { webScript } from './page.ts';
import { openReportSession } from './report-engine.ts';
import { openWebSession, type WebSession, whatIf } from './what-if.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'kvm-lvs-dr');
/** The page's view of the founding case, with no file known yet: every origin file is answered. */
const VIEW = { places: {}, known: () => false };

/** The answer without its timing. */
const strip = (a: WhatIfAnswer) => (a.kind === 'ok' ? { ...a, result: { ...a.result, ms: 0 } } : a);

/** The server's session over `src`, and the page's over what its load read (as embedded: through JSON). */
function sessions(src: ScenarioSource) {
  const recorded = recordingSource(src);
  const server = openWebSession(loadScenarioFrom(recorded).value!, recorded);
  const inputs = JSON.parse(JSON.stringify(recorded.reads())) as ReportInputs;
  return { server, inputs, page: openReportSession(inputs) as WebSession };
}

describe('the offline report what-if engine', () => {
  const { server, inputs, page } = sessions(diskSource(EXAMPLE));

  it('loads the scenario from the recorded reads alone', () => {
    expect(typeof page).toBe('object');
    expect(inputs.read['scenario.yaml']).toBeTypeOf('string');
    expect(page.diagnosis.report.fixes.map((f) => f.id)).toEqual(server.diagnosis.report.fixes.map((f) => f.id));
    expect(page.diagnosis.report.traces.map((t) => t.disposition)).toEqual(
      server.diagnosis.report.traces.map((t) => t.disposition),
    );
  });

  it('answers each fix, every pair of fixes, and parameter edits as the server does', () => {
    const ids = server.diagnosis.report.fixes.map((f) => f.id);
    expect(ids.length).toBeGreaterThan(1);
    const requests: WhatIfRequest[] = [
      ...ids.map((id) => ({ fixes: [id], params: [] })),
      ...ids.flatMap((a, k) => ids.slice(k + 1).map((b) => ({ fixes: [a, b], params: [] }))),
      { fixes: [], params: [{ host: 'host1', port: 'vnet0', name: 'IP', values: ['192.0.2.200', '192.0.2.208'] }] },
      { fixes: [ids[0]!], params: [{ host: 'host1', port: 'vnet0', name: 'IP', values: [] }] },
      { fixes: ['no-such-fix'], params: [] },
    ];
    for (const req of requests)
      expect(strip(whatIf(page, VIEW, req)), JSON.stringify(req)).toEqual(strip(whatIf(server, VIEW, req)));
    // The lines of the files only the what-if's traces name: an applied fix's own file, a scenario file.
    const safer = whatIf(page, VIEW, { fixes: [ids[0]!], params: [] });
    expect(safer.kind === 'ok' && Object.keys(safer.result.files)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^dr-director-filter-host1-vnet0\/nwfilter-.*\.xml$/)]),
    );
    const known = whatIf(page, { places: {}, known: () => true }, { fixes: [ids[0]!], params: [] });
    expect(known.kind === 'ok' && known.result.files).toEqual({});
  });

  it('says why when the embedded scenario does not load', () => {
    const broken: ReportInputs = { ...inputs, read: { ...inputs.read, 'scenario.yaml': 'nodes: [' } };
    expect(openReportSession(broken)).toMatch(/^the scenario embedded in the report did not load: /);
    expect(replayedSource(inputs).read('not/asked.xml')).toBeUndefined();
  });
});

describe('the offline report what-if engine on imported bundles', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-engine-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('replays the import (files held in memory, parsed beforehand) and answers as the server does', () => {
    const imported = importToMemory(writeFleetBundles(tmp, { hosts: 2, guests: 4, clusters: 1 }));
    const { server, page } = sessions(importedSource(imported)!);
    expect(typeof page).toBe('object');
    const ids = server.diagnosis.report.fixes.map((f) => f.id);
    expect(ids.length).toBeGreaterThan(0);
    expect(page.diagnosis.report.fixes.map((f) => f.id)).toEqual(ids);
    const b = server.loaded.scenario.bindings[0]!;
    const requests: WhatIfRequest[] = [
      { fixes: ids, params: [] },
      { fixes: [], params: [{ host: b.host, port: b.binding.portdev, name: 'IP', values: [] }] },
    ];
    for (const req of requests) expect(strip(whatIf(page, VIEW, req))).toEqual(strip(whatIf(server, VIEW, req)));
  });
});

describe('the engine script as the report inlines it', () => {
  it('runs with what a page has, no Node globals (Buffer, process, require), and answers as the server does', async () => {
    const { server, inputs } = sessions(diskSource(EXAMPLE));
    const text = JSON.stringify(inputs);
    // A realm with the page's globals the engine may use, and nothing of Node's.
    const page: Record<string, unknown> = {
      document: { getElementById: (id: string) => (id === REPORT_INPUTS_ID ? { textContent: text } : null) },
      TextEncoder,
      TextDecoder,
      performance,
    };
    createContext(page);
    runInContext(await webScript('engine'), page);
    const engine = page[REPORT_ENGINE_GLOBAL] as ReportEngine;
    engine.warm();
    const ids = server.diagnosis.report.fixes.map((f) => f.id);
    const requests: WhatIfRequest[] = [
      ...ids.map((id) => ({ fixes: [id], params: [] })),
      { fixes: ids, params: [{ host: 'host1', port: 'vnet0', name: 'IP', values: ['192.0.2.200', '192.0.2.208'] }] },
    ];
    for (const req of requests) {
      const got = JSON.parse(JSON.stringify(engine.whatIf(req, {}, []))) as WhatIfAnswer;
      expect(strip(got), JSON.stringify(req)).toEqual(strip(JSON.parse(JSON.stringify(whatIf(server, VIEW, req)))));
    }
  });
});
