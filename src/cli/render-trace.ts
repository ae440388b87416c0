/** Text rendering of traces: hop by hop, with tcpdump lines at capture points and each decision's origin. */
import { formatIpv4 } from '../addr/ipv4.ts';
import { renderStep } from '../trace/render-step.ts';
import { frameText } from '../trace/tcpdump-lines.ts';
import type { Hop, Trace } from '../trace/types.ts';

function hopTitle(h: Hop): string {
  const at = h.place.iface ? `${h.place.node}:${h.place.iface}` : h.place.node;
  return `${h.direction === 'in' ? '→' : '←'} ${at}`;
}

/** The hops on the decisive path, then the end. */
export function renderTrace(t: Trace): string {
  const out: string[] = [];
  out.push(
    `probe ${t.probe.name} (${t.probe.kind === 'arp' ? `ARP who-has ${formatIpv4(t.probe.target)} from ${t.probe.from}` : `${t.probe.kind === 'tcp' ? 'TCP SYN' : 'UDP datagram'} ${t.probe.from} → ${formatIpv4(t.probe.to)}:${t.probe.dport}`})`,
  );
  for (const id of t.path) {
    const h = t.hops[id]!;
    const steps = h.steps.map(renderStep).filter((x): x is string => x !== undefined);
    if (!h.point && steps.length === 0 && !h.end) continue;
    out.push(`  ${hopTitle(h)}`);
    if (h.point) for (const l of frameText(h.frame, h.timeNs).split('\n')) out.push(`      ${l}`);
    for (const s of steps) out.push(`    · ${s}`);
    if (h.end && id === t.path[t.path.length - 1]) out.push(`    ✖ ${h.end.disposition}: ${h.end.reason}`);
  }
  out.push(`  result: ${t.summary}`);
  return out.join('\n');
}
