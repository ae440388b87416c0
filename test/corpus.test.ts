/**
 * The scenario corpus (fixtures/scenarios/*): clusters written the way operators run them, healthy and broken, each
 * with its raw artifacts and an `expect.yaml` saying what `lvsdoctor diagnose` must answer:
 *
 *   exit: 0 | 1 | 2          the exit code
 *   errors: [kind, …]        exactly the finding kinds reported as errors (healthy: [])
 *   warnings: [kind, …]      kinds that must be among the warnings
 *   absent: [kind, …]        kinds that must not be reported at all
 *   culprit: TEXT            text that must appear in an error's culprit chain, title or explanation
 *   mentions: [TEXT, …]      texts that must each appear in some finding's title (any severity)
 *   unchecked: [TEXT, …]     texts that must each appear in the report's list of what was not checked
 *   lab: TEXT                whether the expectation was checked on the real kernel with `lab`, and if not why
 *   pending: TEXT            a model feature the scenario needs that has not landed (the case is skipped, saying so)
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { runCli } from './run-cli.ts';

const ROOT = 'fixtures/scenarios';

interface Expect {
  readonly exit: number;
  readonly errors: readonly string[];
  readonly warnings?: readonly string[];
  readonly absent?: readonly string[];
  readonly culprit?: string;
  readonly mentions?: readonly string[];
  readonly unchecked?: readonly string[];
  readonly lab: string;
  readonly pending?: string;
}

interface JsonFinding {
  readonly code: string;
  readonly severity: string;
  readonly title: string;
  readonly explanation: string;
  readonly culprit?: readonly { readonly label: string }[];
}

const dirs = existsSync(ROOT)
  ? readdirSync(ROOT, { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => d.name)
      .sort()
  : [];

function expectationOf(name: string): Expect {
  return parse(readFileSync(join(ROOT, name, 'expect.yaml'), 'utf8')) as Expect;
}

describe('the scenario corpus', () => {
  it('has at least 40 scenarios, at least 12 of them healthy controls that run', () => {
    expect(dirs.length).toBeGreaterThanOrEqual(40);
    const healthy = dirs.map(expectationOf).filter((e) => e.exit === 0 && e.pending === undefined);
    expect(healthy.length).toBeGreaterThanOrEqual(12);
  });

  for (const name of dirs) {
    const e = expectationOf(name);
    const title = `${name}: exit ${e.exit}${e.errors.length ? `, ${e.errors.join(', ')}` : ', no error'}`;
    if (e.pending) {
      it.skip(`${title} (pending: ${e.pending})`, () => {});
      continue;
    }
    it(title, async () => {
      const r = await runCli('diagnose', '--json', join(ROOT, name));
      expect(r.stderr.replace(/wrote[^\n]*\n/, '')).not.toMatch(/error:/);
      const report = JSON.parse(r.stdout) as {
        findings: JsonFinding[];
        unchecked?: { what: string; why: string }[];
      };
      const errors = [...new Set(report.findings.filter((f) => f.severity === 'error').map((f) => f.code))].sort();
      expect({ exit: r.code, errors }).toEqual({ exit: e.exit, errors: [...e.errors].sort() });
      const codes = new Set(report.findings.map((f) => f.code));
      for (const w of e.warnings ?? []) expect(codes, `warning ${w}`).toContain(w);
      for (const a of e.absent ?? []) expect(codes, `absent ${a}`).not.toContain(a);
      const titles = report.findings.map((f) => f.title).join('\n');
      for (const m of e.mentions ?? []) expect(titles, `a finding mentioning ${m}`).toContain(m);
      const unchecked = (report.unchecked ?? []).map((u) => `${u.what}: ${u.why}`).join('\n');
      for (const u of e.unchecked ?? []) expect(unchecked, `not checked: ${u}`).toContain(u);
      if (e.culprit !== undefined) {
        const texts = report.findings
          .filter((f) => f.severity === 'error')
          .map((f) => [f.title, f.explanation, ...(f.culprit ?? []).map((c) => c.label)].join('\n'));
        expect(texts.join('\n---\n')).toContain(e.culprit);
      }
    });
  }
});
