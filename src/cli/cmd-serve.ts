/**
 * `lvsdoctor serve DIR|BUNDLE… [--port N] [--capture FILE@POINT…]`: the web app on 127.0.0.1, and
 * `lvsdoctor diagnose … --html FILE`: the same views as one file. Both load the input as `diagnose` does (bundles
 * are imported in memory) and hand the diagnosis to src/web/.
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { CorrelationReport } from '../capture/correlate.ts';
import { correlateCaptureFiles } from '../capture/correlate-files.ts';
import { type Bundle, readBundle } from '../collect/bundle.ts';
import { hasWatchWindow } from '../collect/counter-window.ts';
import { importedSource, importToMemory, isBundlePath, renderImportReport } from '../collect/import.ts';
import { checkNoneExist, FileError, writeNewFile } from '../source/files.ts';
import type { ReadResult } from '../source/issue.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { diskSource, type RecordedReads, recordingSource, type ScenarioSource } from '../topology/scenario-source.ts';
import { reportHtml } from '../web/report.ts';
import { listen, type Running, webApp } from '../web/server.ts';
import { buildWebModel } from '../web/view-model.ts';
import { openWebSession, type WebSession } from '../web/what-if.ts';
import { parseCaptureSpec } from './cmd-captures.ts';
import { type DiagnoseOptions, outputReport } from './cmd-diagnose.ts';
import { type Io, reportIssues, UsageError } from './io.ts';
import { progress } from './progress.ts';
import { loadForCommand } from './scenario-input.ts';

export interface Loaded {
  readonly loaded: LoadedScenario;
  /** The input, with what the load asked of it (the offline report embeds that to re-trace in the page). */
  readonly source: ScenarioSource & { reads(): RecordedReads };
}

/** A scenario directory, or collector bundles imported in memory; undefined means "exit 2" (issues printed). */
export function loadInputs(
  io: Io,
  inputs: readonly string[],
  quiet = false,
  read?: ReadonlyMap<string, ReadResult<Bundle>>,
): Loaded | undefined {
  let source: ScenarioSource | undefined;
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
    const imported = importToMemory(inputs, read ? { read } : {});
    p.done();
    source = importedSource(imported);
    if (reportIssues(io, imported.issues) || source === undefined) return undefined;
    if (!quiet) io.stderr(renderImportReport(imported));
  }
  const recorded = recordingSource(source);
  const loaded = loadForCommand(io, recorded);
  if (!loaded) return undefined;
  if (reportIssues(io, compileAllHostRules(loaded).issues)) return undefined;
  return { loaded, source: recorded };
}

/**
 * What in these bundles `diagnose` joins as live evidence (a counter window, kernel traces), which the HTML report
 * has no place for yet — said, not dropped; undefined when there is none.
 */
function evidenceIn(bundles: readonly Bundle[]): string | undefined {
  const seen = new Map<string, Bundle>();
  for (const b of bundles) {
    if (hasWatchWindow(b)) return `${b.path} has a counter window (collected with --watch)`;
    if ([...b.commands.keys()].some((k) => k.startsWith('kernel-trace-')))
      return `${b.path} carries kernel traces (collected with --trace)`;
    const k = `${b.kind}\t${b.hostname}`;
    const other = seen.get(k);
    if (other) return `${other.path} and ${b.path} are two bundles of ${b.hostname} (a counter window between them)`;
    seen.set(k, b);
  }
  return undefined;
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
}

/** Starts the server; undefined on bad input (exit 2). The caller keeps the process alive or closes it. */
export async function startServe(io: Io, inputs: readonly string[], o: ServeOptions): Promise<Running | undefined> {
  let read: Map<string, ReadResult<Bundle>> | undefined;
  if (!(inputs.length === 1 && !isBundlePath(inputs[0]!))) {
    read = new Map(inputs.map((i) => [i, readBundle(i)] as const));
    // The page has no view of live evidence yet: say so rather than drop it in silence (`--html` refuses instead).
    const why = evidenceIn([...read.values()].flatMap((r) => (r.value ? [r.value] : [])));
    if (why !== undefined)
      io.stderr(
        `lvsdoctor serve: the page does not show live evidence yet: ${why}; run diagnose (text or --json) to see it\n`,
      );
  }
  const l = loadInputs(io, inputs, false, read);
  if (!l) return undefined;
  const captures = readCaptures(io, o.captures);
  if (captures === false) return undefined;
  const session = diagnoseWithProgress(io, l);
  const p = progress(io, 'laying out the topology');
  const model = await buildWebModel(session, { live: true, ...(captures ? { captures } : {}) });
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
  let read: Map<string, ReadResult<Bundle>> | undefined;
  if (!(inputs.length === 1 && !isBundlePath(inputs[0]!))) {
    read = new Map(inputs.map((i) => [i, readBundle(i)] as const));
    const why = evidenceIn([...read.values()].flatMap((r) => (r.value ? [r.value] : [])));
    if (why !== undefined) {
      io.stderr(
        `lvsdoctor: --html does not show live evidence yet: ${why}; run diagnose without --html (text or --json) to see it\n`,
      );
      return 2;
    }
  }
  const l = loadInputs(io, inputs, o.json, read);
  if (!l) return 2;
  const captures = readCaptures(io, captureSpecs);
  if (captures === false) return 2;
  const session = diagnoseWithProgress(io, l);
  outputReport(io, session.diagnosis.report, o);
  const p = progress(io, 'writing the report');
  const html = await reportHtml(session, l.source.reads(), captures);
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
