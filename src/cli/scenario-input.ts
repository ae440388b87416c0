import type { LoadedScenario } from '../topology/load-scenario.ts';
import { loadScenario, loadScenarioFrom } from '../topology/load-scenario.ts';
import type { ScenarioSource } from '../topology/scenario-source.ts';
import { type Io, reportIssues } from './io.ts';

/**
 * Loads a scenario for a command — a directory, or a source (the files an import built in memory); prints issues;
 * undefined means "exit 2".
 */
export function loadForCommand(io: Io, input: string | ScenarioSource): LoadedScenario | undefined {
  const r = typeof input === 'string' ? loadScenario(input) : loadScenarioFrom(input);
  const bad = reportIssues(io, r.issues);
  if (bad || !r.value) {
    const where = typeof input === 'string' ? input : input.label || 'the imported bundles';
    if (!bad) io.stderr(`lvsdoctor: could not load the scenario in ${where}\n`);
    return undefined;
  }
  return r.value;
}
