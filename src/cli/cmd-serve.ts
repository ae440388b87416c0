/**
 * `lvsdoctor serve DIR|BUNDLE… [--port N] [--capture FILE@POINT…]`: the web app on 127.0.0.1, and
 * `lvsdoctor diagnose … --html FILE`: the same views as one file. Both load the input as `diagnose` does (bundles
 * are imported in memory) and hand the diagnosis to src/web/.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { CorrelationReport } from '../capture/correlate.ts';
import { correlateCaptureFiles } from '../capture/correlate-files.ts';
import { readBundle } from '../collect/bundle.ts';
import { importedSource, importToMemory, isBundlePath, renderImportReport } from '../collect/import.ts';
import { checkNoneExist, FileError, writeNewFile } from '../source/files.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { diskSource, type RecordedReads, recordingSource, type ScenarioSource } from '../topology/scenario-source.ts';
import { reportHtml } from '../web/report.ts';
import { listen, type Running, webApp } from '../web/server.ts';
import { buildWebModel, type ModelOptions } from '../web/view-model.ts';
import { openWebSession, type WebSession } from '../web/what-if.ts';
import { parseCaptureSpec } from './cmd-captures.ts';
import {
  bundleLiveInputs,
  type DiagnoseOptions,
  type JoinedLive,
  joinLive,
  type LiveInputs,
  latestBundles,
  outputReport,
} from './cmd-diagnose.ts';
import { type Io, reportIssues, UsageError } from './io.ts';
import { progress } from './progress.ts';
import { loadForCommand } from './scenario-input.ts';
import { evidenceView } from './web-evidence.ts';

export interface Loaded {
  readonly loaded: LoadedScenario;
  /** The input, with what the load asked of it (the offline report embeds that to re-trace in the page). */
  readonly source: ScenarioSource & { reads(): RecordedReads };
  /** What bundles carried of the live system (counter windows, kernel traces). */
  readonly live?: LiveInputs;
}

/** A scenario directory, or collector bundles imported in memory; undefined means "exit 2" (issues printed). */
export function loadInputs(io: Io, inputs: readonly string[], quiet = false): Loaded | undefined {
  let source: ScenarioSource | undefined;
  let live: LiveInputs | undefined;
  if (inputs.length === 1 && !isBundlePath(inputs[0]!)) {
    const dir = inputs[0]!;
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      io.stderr(`lvsdoctor: scenario directory "${dir}" does not exist\n`);
      return undefined;
    }
    // As `loadScenario` names files, so that origins point into this source.
    source = diskSource(dir);
  } else {
    const p = progress(io, `importing ${inputs.length} bundle${inputs.length === 1 ? '' : 's'}`);
    // As `diagnose`: two bundles of one machine make a counter window; the later one is the model.
    const bundles = new Map(inputs.map((i) => [i, readBundle(i)] as const));
    const imported = importToMemory(latestBundles(inputs, bundles), { read: bundles });
    p.done();
    source = importedSource(imported);
    if (reportIssues(io, imported.issues) || source === undefined) return undefined;
    if (!quiet) io.stderr(renderImportReport(imported));
    live = bundleLiveInputs(io, imported, bundles);
    if (!live) return undefined;
  }
  const recorded = recordingSource(source);
  const loaded = loadForCommand(io, recorded);
  if (!loaded) return undefined;
  if (reportIssues(io, compileAllHostRules(loaded).issues)) return undefined;
  return { loaded, source: recorded, ...(live ? { live } : {}) };
}

/**
 * The live evidence of the input (bundles' counter windows and kernel traces, `--trace NODE=FILE` files) joined to
 * the session's diagnosis, as the page shows it; false when a trace file holds errors (printed: exit 2).
 */
function liveEvidence(
  io: Io,
  l: Loaded,
  session: WebSession,
  traces: readonly string[],
): { joined: JoinedLive; view?: ModelOptions['evidence'] } | false {
  const joined = joinLive(io, l.loaded, session.diagnosis.report, l.live?.windows, l.live?.kernel, traces);
  if (!joined) return false;
  if (!joined.evidence && !joined.kernel) return { joined };
  return {
    joined,
    view: (probes, places) => evidenceView(probes, places, joined.evidence, joined.kernel),
  };
}

function readCaptures(io: Io, specs: readonly string[]): CorrelationReport | undefined | false {
  if (specs.length === 0) return undefined;
  const inputs = [];
  for (const s of specs) {
    const p = parseCaptureSpec(s);
    if (!p) throw new UsageError(`--capture "${s}" is not FILE@POINT`);
    inputs.push(p);
  }
  const r = correlateCaptureFiles(inputs);
  reportIssues(io, r.issues);
  if (!r.report) {
    io.stderr('lvsdoctor: nothing usable in the captures\n');
    return false;
  }
  return r.report;
}

function diagnoseWithProgress(io: Io, l: Loaded): WebSession {
  const p = progress(io, 'diagnosing');
  const s = openWebSession(l.loaded, l.source);
  p.done();
  return s;
}

export interface ServeOptions {
  readonly port: number;
  readonly captures: readonly string[];
  /** `--trace NODE=FILE`, as `diagnose`. */
  readonly traces?: readonly string[];
}

/** Starts the server; undefined on bad input (exit 2). The caller keeps the process alive or closes it. */
export async function startServe(io: Io, inputs: readonly string[], o: ServeOptions): Promise<Running | undefined> {
  const l = loadInputs(io, inputs, false);
  if (!l) return undefined;
  const captures = readCaptures(io, o.captures);
  if (captures === false) return undefined;
  const session = diagnoseWithProgress(io, l);
  const ev = liveEvidence(io, l, session, o.traces ?? []);
  if (ev === false) return undefined;
  const p = progress(io, 'laying out the topology');
  const model = await buildWebModel(session, {
    live: true,
    ...(captures ? { captures } : {}),
    ...(ev.view ? { evidence: ev.view } : {}),
  });
  p.done();
  try {
    const running = await listen(webApp(session, model), o.port);
    io.stdout(`lvsdoctor serve: ${running.url}  (127.0.0.1 only; Ctrl-C stops it)\n`);
    return running;
  } catch (e) {
    io.stderr(`lvsdoctor serve: cannot listen on 127.0.0.1:${o.port}: ${(e as Error).message}\n`);
    return undefined;
  }
}

/**
 * `diagnose … --html FILE`: prints the report as `diagnose` does (text or --json, --fix-dir too) and writes the
 * one-file web report; returns the exit code `diagnose` gives (0 healthy, 1 a problem, 2 bad input).
 */
export async function runDiagnoseHtml(
  io: Io,
  inputs: readonly string[],
  file: string,
  o: DiagnoseOptions,
  captureSpecs: readonly string[] = [],
): Promise<number> {
  // Like --fix-dir and --pcap-dir: a new file only, never one that exists (nor a link planted at the name), and
  // refused before anything is read or written, so a refused run leaves nothing behind.
  const dir = dirname(file);
  const name = basename(file);
  try {
    checkNoneExist(dir, [name]);
  } catch (e) {
    if (!(e instanceof FileError)) throw e;
    io.stderr(`lvsdoctor: --html: ${e.message}\n`);
    return 2;
  }
  const l = loadInputs(io, inputs, o.json);
  if (!l) return 2;
  const captures = readCaptures(io, captureSpecs);
  if (captures === false) return 2;
  const session = diagnoseWithProgress(io, l);
  const ev = liveEvidence(io, l, session, o.traces ?? []);
  if (ev === false) return 2;
  outputReport(io, session.diagnosis.report, o, ev.joined.evidence, ev.joined.kernel);
  const p = progress(io, 'writing the report');
  const html = await reportHtml(session, l.source.reads(), captures, ev.view);
  p.done();
  try {
    writeNewFile(dir, name, html);
  } catch (e) {
    if (!(e instanceof FileError)) throw e;
    io.stderr(`lvsdoctor: --html: ${e.message}\n`);
    return 2;
  }
  io.stderr(`wrote ${file} (${Math.round(html.length / 1024)} KiB; opens from disk, no network needed)\n`);
  // As `diagnose` without --html: no verdict (nothing could be checked) is 2, never a pass nor "broken".
  const r = session.diagnosis.report;
  return r.noVerdict ? 2 : r.healthy ? 0 : 1;
}
