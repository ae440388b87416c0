/** `lvsdoctor collect-script [--guest]` and `lvsdoctor import BUNDLE... -o DIR`. */
import { collectorScript } from '../collect/collector-script.ts';
import { importBundles, renderImportReport } from '../collect/import.ts';
import { type Io, reportIssues } from './io.ts';

export interface CollectScriptOptions {
  readonly guest: boolean;
  /** `--watch SECONDS` as given (a whole number of seconds). */
  readonly watch?: string;
}

/** Prints the collector script (POSIX sh) for a hypervisor, or with `guest` for a guest/router. */
export function runCollectScript(io: Io, o: CollectScriptOptions): number {
  let watch: number | undefined;
  if (o.watch !== undefined) {
    if (!/^\d{1,5}$/.test(o.watch) || Number(o.watch) < 1) {
      io.stderr(`lvsdoctor collect-script: --watch wants whole seconds (1 to 99999), got '${o.watch}'\n`);
      return 2;
    }
    watch = Number(o.watch);
  }
  io.stdout(collectorScript({ guest: o.guest, ...(watch !== undefined ? { watch } : {}) }));
  return 0;
}

export interface ImportCmdOptions {
  readonly out: string;
}

/** Builds a scenario directory from bundles; prints the import report. Exit 2 when nothing could be built. */
export function runImport(io: Io, bundles: readonly string[], o: ImportCmdOptions): number {
  if (bundles.length === 0) {
    io.stderr('lvsdoctor import: give at least one bundle (.tar.gz or directory)\n');
    return 2;
  }
  const r = importBundles(bundles, { out: o.out });
  const bad = reportIssues(io, r.issues);
  if (r.dir === undefined || (bad && !r.cluster)) return 2;
  io.stdout(renderImportReport(r));
  io.stdout(`\nwrote ${r.dir}/scenario.yaml — next: lvsdoctor diagnose ${r.dir}\n`);
  // A bundle that could not be read (while others could) is bad input too: the scenario lacks what it held.
  return bad ? 2 : 0;
}
