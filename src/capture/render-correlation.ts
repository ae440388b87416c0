/** Text rendering of a correlation report (the JSON form is the report object itself). */
import { appendAll as append, maxOf } from '../source/arrays.ts';
import type { CorrelationReport, FlowReport, PacketReport, PointReport, Sighting } from './correlate.ts';

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

/** `HH:MM:SS.uuuuuu` (UTC), with nanoseconds when the capture had them. */
export function timeOfDay(ns: bigint): string {
  const day = 86_400_000_000_000n;
  const t = ((ns % day) + day) % day;
  const sec = t / 1_000_000_000n;
  const frac = t % 1_000_000_000n;
  const h = sec / 3600n;
  const m = (sec / 60n) % 60n;
  const s = sec % 60n;
  const two = (x: bigint): string => x.toString().padStart(2, '0');
  const f = frac % 1000n === 0n ? (frac / 1000n).toString().padStart(6, '0') : frac.toString().padStart(9, '0');
  return `${two(h)}:${two(m)}:${two(s)}.${f}`;
}

export function formatOffset(ns: number): string {
  const ms = ns / 1e6;
  return `${ms >= 0 ? '+' : '-'}${Math.abs(ms).toFixed(3)} ms`;
}

function pointLine(p: PointReport, w: number, fw: number): string {
  let clock: string;
  switch (p.offsetMethod) {
    case 'reference':
      clock = 'reference clock';
      break;
    case 'two-way':
      clock = `clock ${formatOffset(p.offsetNs)} vs ${p.offsetAgainst} (from traffic both ways)`;
      break;
    case 'one-way':
      clock = `clock ${formatOffset(p.offsetNs)} vs ${p.offsetAgainst} (one-way traffic: order within a leg from rewrites, else the command line)`;
      break;
    case 'none':
      clock = `same clock as ${p.offsetAgainst} (differences taken as latency)`;
      break;
    case 'unrelated':
      clock = 'no packet in common with other points';
      break;
  }
  return `  ${pad(p.name, w)}  ${pad(p.file, fw)}  ${pad(`${p.packets} packet${p.packets === 1 ? '' : 's'}`, 12)}  ${clock}`;
}

function sightingLines(s: Sighting, w: number): string[] {
  if (s.duplicate) return [`       ${pad(s.point, w)}  ${timeOfDay(BigInt(s.timeNs))}  (duplicate)`];
  const mac = s.srcMac !== undefined ? `${s.srcMac} > ${s.dstMac ?? '?'}` : '';
  const extra = [s.vlan, s.ttl !== undefined ? `ttl ${s.ttl}` : undefined, s.tunnel ? `in ${s.tunnel}` : undefined]
    .filter((x) => x)
    .join(', ');
  const out = [
    `       ${pad(s.point, w)}  ${timeOfDay(BigInt(s.timeNs))}  ${mac}${extra ? `  ${extra}` : ''}`.trimEnd(),
  ];
  for (const r of s.rewrites) out.push(`       ${pad('', w)}  rewrite: ${r}`);
  return out;
}

function packetLines(p: PacketReport, w: number): string[] {
  const arrow = p.direction === 'forward' ? '→' : '←';
  const out = [`  #${p.index} ${arrow} ${p.summary}${p.retransmissionNote ? ` — ${p.retransmissionNote}` : ''}`];
  for (const s of p.path) append(out, sightingLines(s, w));
  if (p.missing) out.push(`       ✖ vanished: ${p.missing.explanation}`);
  if (p.notCapturedAt)
    out.push(
      `       ! not captured at ${p.notCapturedAt}, which packets like it passed before ${p.path[0]?.point ?? '?'}`,
    );
  return out;
}

function flowLines(f: FlowReport, w: number): string[] {
  const out = [
    `flow ${f.id}: ${f.protocol} ${f.endpoints} — first seen at ${f.firstPoint}, ${f.packets} packet${f.packets === 1 ? '' : 's'}`,
  ];
  if (f.aliases.length > 0) out.push(`  also seen as (NAT): ${f.aliases.join(', ')}`);
  if (f.handshakeNote) out.push(`  ✖ ${f.handshakeNote}`);
  else if (f.handshake === 'complete') out.push('  handshake complete');
  if (f.retransmissions > 0) out.push(`  ${f.retransmissions} retransmission${f.retransmissions === 1 ? '' : 's'}`);
  if (f.model) {
    if (f.model.departure) out.push(`  ✖ model: ${f.model.departure}`);
    else out.push('  model: the captures follow the simulated path');
    out.push(`    the simulation ends: ${f.model.end}`);
  }
  for (const p of f.details) append(out, packetLines(p, w));
  if (!f.detailsComplete)
    out.push(`  (${f.packets - f.details.length} more packet(s) accounted for at every expected point)`);
  return out;
}

export function renderCorrelation(r: CorrelationReport): string {
  const w = Math.max(5, maxOf(r.points.map((p) => p.name.length)));
  const fw = Math.max(4, maxOf(r.points.map((p) => p.file.length)));
  const lines: string[] = ['capture points:'];
  for (const p of r.points) lines.push(pointLine(p, w, fw));
  lines.push(
    `${r.sightings} sightings are ${r.packets} distinct packet${r.packets === 1 ? '' : 's'} in ${r.flows} flow${r.flows === 1 ? '' : 's'} (matched on ${r.keyFields.join(', ')})`,
  );
  for (const f of r.flowReports) {
    lines.push('');
    append(lines, flowLines(f, w));
  }
  if (r.flowsOmitted > 0) lines.push('', `(${r.flowsOmitted} more flow(s) with problems; use --json for all)`);
  lines.push('');
  if (r.points.length === 1) {
    const n = (k: number, w: string): string => `${k} ${w}${k === 1 ? '' : 's'}`;
    lines.push(
      `one capture point: ${n(r.answeredFlows, 'IP flow')} answered (packets both ways), ${r.unansweredFlows} seen one way only; where packets went next needs a second point`,
    );
  } else if (r.missing === 0) lines.push(`every packet is accounted for at every point it should have reached`);
  else {
    lines.push(`✖ ${r.missing} of ${r.packets} packets vanished:`);
    for (const v of r.vanished) lines.push(`  ${v.packets} seen last at ${v.after}, never at ${v.expected}`);
  }
  if (r.notCaptured > 0)
    lines.push(`${r.notCaptured} packet(s) were seen downstream but not captured at an earlier point (capture gaps)`);
  if (r.retransmissions > 0) lines.push(`${r.retransmissions} retransmission(s)`);
  if (r.incompleteHandshakes > 0) lines.push(`${r.incompleteHandshakes} TCP handshake(s) never complete`);
  return `${lines.join('\n')}\n`;
}
