import { check } from '../diagnose/diagnose.ts';
import { FINDING_KINDS } from '../diagnose/findings/catalogue.ts';
import { renderOriginChain } from '../source/origin.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import { type Io, reportIssues } from './io.ts';
import { originJson, toJsonText } from './json.ts';
import { renderTable } from './render-report.ts';
import { loadForCommand } from './scenario-input.ts';

/** `lvsdoctor check DIR`: the static checks only (design-time lint). Exit 1 when any finding is an error. */
export function runCheck(io: Io, dir: string, o: { readonly json: boolean }): number {
  const loaded = loadForCommand(io, dir);
  if (!loaded) return 2;
  if (reportIssues(io, compileAllHostRules(loaded).issues)) return 2;
  const findings = check(loaded);
  if (o.json)
    io.stdout(
      toJsonText({
        scenario: loaded.scenario.name,
        findings: findings.map((f) => ({ ...f, culprit: originJson(f.culprit) })),
      }),
    );
  else {
    const out = [`lvsdoctor check: ${loaded.scenario.name}`, ''];
    if (findings.length === 0) out.push('no finding in the configuration');
    findings.forEach((f, k) => {
      out.push(`${k + 1}. [${f.severity}] ${f.code}: ${f.title}`);
      out.push(`   why: ${f.explanation}`);
      if (f.culprit) out.push(`   culprit: ${renderOriginChain(f.culprit, '\n            ← ')}`);
    });
    io.stdout(`${out.join('\n')}\n`);
  }
  return findings.some((f) => f.severity === 'error') ? 1 : 0;
}

/** `lvsdoctor findings`: the catalogue. */
export function runFindings(io: Io, o: { readonly json: boolean }): number {
  const rows = FINDING_KINDS.map((k) => ({
    code: k.code,
    severity: k.severity,
    title: k.title,
    found: k.check ? (k.detect ? 'trace + static' : 'static') : 'trace',
    needs: k.needs,
  }));
  if (o.json) io.stdout(toJsonText(rows));
  else
    io.stdout(
      `${renderTable(
        ['code', 'severity', 'found by', 'title'],
        rows.map((r) => [r.code, r.severity, r.found, r.title]),
      )}\n`,
    );
  return 0;
}
