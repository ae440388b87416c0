import type { LoadedScenario } from '../topology/load-scenario.ts';
import { loadScenario } from '../topology/load-scenario.ts';
import { type Io, reportIssues } from './io.ts';

/** Loads a scenario for a command; prints issues; undefined means "exit 2". */
export function loadForCommand(io: Io, dir: string): LoadedScenario | undefined {
  const r = loadScenario(dir);
  const bad = reportIssues(io, r.issues);
  if (bad || !r.value) {
    if (!bad) io.stderr(`lvsdoctor: could not load the scenario in ${dir}\n`);
    return undefined;
  }
  return r.value;
}
