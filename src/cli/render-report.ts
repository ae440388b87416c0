/** Text rendering of a diagnosis report, in the order an engineer would work through it. */

import type { Report } from '../diagnose/types.ts';
import { maxOf } from '../source/arrays.ts';
import { renderOriginChain } from '../source/origin.ts';

const MARK = { pass: '✓', fail: '✗', 'not-reached': '·' } as const;

export function renderReport(r: Report): string {
  const out: string[] = [];
  out.push(`lvsdoctor diagnose: ${r.scenario}`);
  out.push('');
  const byProbe = new Map<string, typeof r.checks>();
  for (const c of r.checks) byProbe.set(c.probe, [...(byProbe.get(c.probe) ?? []), c]);
  const plan = new Map(r.plan.map((p) => [p.probe, p]));
  for (const t of r.traces) {
    const p = plan.get(t.probe.name);
    const verdict = t.disposition === 'replied' ? 'OK' : p?.decisive === false ? 'FAILS (information only)' : 'FAILS';
    out.push(`probe ${t.probe.name}: ${verdict} — ${t.summary}`);
    if (p && p.purpose !== 'asked') out.push(`  added by lvsdoctor: ${p.why}`);
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
      const seen =
        f.source === 'static'
          ? 'configuration only (no probe shows it)'
          : `${f.probes.join(', ')}${f.source === 'both' ? ' and the configuration' : ''}`;
      out.push(`     seen in: ${seen}`);
      if (f.after.length > 0) out.push(`     shows once fixed: ${f.after.join(', ')}`);
      out.push(`     why: ${f.explanation}`);
      if (f.culprit) out.push(`     culprit: ${renderOriginChain(f.culprit, '\n              ← ')}`);
    });
    out.push('');
  }
  if (r.fixes.length > 0) {
    out.push('fixes (re-traced with the fix applied: "verified" when a failing probe then succeeds):');
    r.fixes.forEach((f, k) => {
      const proof = {
        probe: '✓ verified',
        'finding-only': '✓ clears the finding; no probe changed',
        none: '✗ not sufficient',
      };
      out.push(`  ${k + 1}. ${proof[f.proof]}: ${f.title}`);
      out.push(`     keeps: ${f.keeps}`);
      out.push(`     re-traced: ${f.retraced.map((x) => `${x.probe} ${x.before} → ${x.after}`).join('; ')}`);
      out.push(
        `     unblocks: ${f.unblocks.length ? f.unblocks.join(', ') : 'no probe'}${f.requires.length ? ` (with ${f.requires.join(', ')} applied first)` : ''}`,
      );
      if (f.clears.length > 0) out.push(`     clears: ${f.clears.join(', ')}`);
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
  if (r.unchecked.length > 0 && !r.noVerdict) {
    out.push('not checked (the verdict does not vouch for these):');
    for (const u of r.unchecked) out.push(`  - ${u.what}: ${u.why}`);
    out.push('');
  }
  if (r.noVerdict) {
    out.push(
      'no verdict: no virtual service could be checked (no TCP or UDP conversation could run), so this is not a pass. Missing:',
    );
    for (const m of r.noVerdict) out.push(`  - ${m}`);
    return `${out.join('\n')}\n`;
  }
  out.push('summary:');
  out.push(
    renderTable(
      ['probe', 'result', 'where', 'finding'],
      r.traces.map((t) => {
        const where = t.end.place.iface ? `${t.end.place.node}:${t.end.place.iface}` : t.end.place.node;
        const f = r.findings.find((x) => x.probes.includes(t.probe.name) && x.after.length === 0);
        return [
          t.probe.name,
          t.disposition === 'replied' ? 'ok' : t.disposition,
          t.disposition === 'replied' ? '' : where,
          f?.code ?? '',
        ];
      }),
    ),
  );
  const failing = r.traces.filter(
    (t) => t.disposition !== 'replied' && plan.get(t.probe.name)?.decisive !== false,
  ).length;
  const verified = r.fixes.filter((f) => f.proof === 'probe').length;
  out.push(
    r.healthy
      ? `healthy: ${r.traces.length} probe${r.traces.length === 1 ? '' : 's'} answered, no error in the configuration${r.unchecked.length > 0 ? `; ${r.unchecked.length} service${r.unchecked.length === 1 ? '' : 's'} not checked` : ''}`
      : `${failing} of ${r.traces.length} probes fail; ${r.findings.length} finding${r.findings.length === 1 ? '' : 's'}; ${verified} verified fix${verified === 1 ? '' : 'es'}`,
  );
  return `${out.join('\n')}\n`;
}

/** A plain aligned table. */
export function renderTable(head: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = head.map((h, k) => Math.max(h.length, maxOf(rows.map((r) => (r[k] ?? '').length))));
  const line = (cells: readonly string[]) => `  ${cells.map((c, k) => c.padEnd(widths[k]!)).join('  ')}`.trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
