/** Text rendering of a diagnosis report, in the order an engineer would work through it. */
import type { Report } from '../diagnose/types.ts';
import { renderOriginChain } from '../source/origin.ts';

const MARK = { pass: '✓', fail: '✗', 'not-reached': '·' } as const;

export function renderReport(r: Report): string {
  const out: string[] = [];
  out.push(`lvsdoctor diagnose: ${r.scenario}`);
  out.push('');
  const byProbe = new Map<string, typeof r.checks>();
  for (const c of r.checks) byProbe.set(c.probe, [...(byProbe.get(c.probe) ?? []), c]);
  for (const t of r.traces) {
    out.push(`probe ${t.probe.name}: ${t.disposition === 'replied' ? 'OK' : 'FAILS'} — ${t.summary}`);
    for (const c of byProbe.get(t.probe.name) ?? []) {
      out.push(`  ${MARK[c.status]} ${c.title}`);
      for (const l of c.lines) for (const part of l.split('\n')) out.push(`      ${part}`);
    }
    out.push('');
  }
  if (r.findings.length > 0) {
    out.push('findings:');
    r.findings.forEach((f, k) => {
      out.push(`  ${k + 1}. [${f.severity}] ${f.code}: ${f.title}`);
      out.push(`     probes: ${f.probes.join(', ')}`);
      out.push(`     why: ${f.explanation}`);
      if (f.culprit) out.push(`     culprit: ${renderOriginChain(f.culprit, '\n              ← ')}`);
    });
    out.push('');
  }
  if (r.fixes.length > 0) {
    out.push('fixes (verified by re-tracing the model with the fix applied):');
    r.fixes.forEach((f, k) => {
      out.push(`  ${k + 1}. ${f.verified ? '✓ verified' : '✗ not sufficient'}: ${f.title}`);
      out.push(`     keeps: ${f.keeps}`);
      out.push(`     re-traced: ${f.retraced.map((x) => `${x.probe} ${x.before} → ${x.after}`).join('; ')}`);
      out.push(`     unblocks: ${f.unblocks.length ? f.unblocks.join(', ') : 'no probe'}`);
      out.push(`     files: ${f.artifacts.map((a) => a.path).join(', ')}`);
      for (const c of f.commands) out.push(`       ${c}`);
    });
    out.push('');
  }
  if (r.assumptions.length > 0) {
    out.push('assumptions:');
    for (const a of r.assumptions) out.push(`  - ${a}`);
    out.push('');
  }
  const failing = r.traces.filter((t) => t.disposition !== 'replied').length;
  out.push(
    r.healthy
      ? `summary: healthy — ${r.traces.length} probe${r.traces.length === 1 ? '' : 's'} answered`
      : `summary: ${failing} of ${r.traces.length} probes fail; ${r.findings.length} finding${r.findings.length === 1 ? '' : 's'}; ${r.fixes.filter((f) => f.verified).length} verified fix${r.fixes.filter((f) => f.verified).length === 1 ? '' : 'es'}`,
  );
  return `${out.join('\n')}\n`;
}
