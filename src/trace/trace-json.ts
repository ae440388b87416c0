/** JSON output: stable field names, bigints as strings, frames as tcpdump text plus fields. Schema: docs/json.md. */

import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { assertNever } from '../source/assert-never.ts';
import type { Origin } from '../source/origin.ts';
import { originChain } from '../source/origin.ts';
import { frameText } from './tcpdump-lines.ts';
import type { Hop, Step, Trace } from './types.ts';

export function originJson(o: Origin | undefined): unknown {
  if (!o) return undefined;
  return originChain(o).map((x) => ({
    kind: x.kind,
    label: x.label,
    ...(x.pos ? { file: x.pos.file, line: x.pos.line } : {}),
    ...(x.data ? { data: x.data } : {}),
  }));
}

function ip(a: Ipv4 | undefined): string | undefined {
  return a === undefined ? undefined : formatIpv4(a);
}

function stepJson(s: Step): unknown {
  switch (s.kind) {
    case 'netfilter':
      return {
        ...s,
        ...(s.snat ? { snat: { ...s.snat, from: ip(s.snat.from), to: ip(s.snat.to) } } : {}),
        ...(s.dnat ? { dnat: { ...s.dnat, from: ip(s.dnat.from), to: ip(s.dnat.to) } } : {}),
        origin: originJson(s.origin),
      };
    case 'neighbour':
      return {
        kind: s.kind,
        ip: ip(s.ip),
        iface: s.iface,
        mac: s.mac,
        source: s.source,
        origin: originJson(s.origin),
        arpHops: s.arp?.hops.length,
      };
    case 'route':
      return {
        kind: s.kind,
        dst: ip(s.dst),
        nextHop: ip(s.nextHop),
        outIface: s.outIface,
        origin: originJson(s.origin),
      };
    case 'ipvs':
      return { ...s, serviceOrigin: originJson(s.serviceOrigin), destinationOrigin: originJson(s.destinationOrigin) };
    case 'bridge':
    case 'arp':
    case 'rp-filter':
    case 'forward':
    case 'deliver':
    case 'note':
      return { ...s, origin: originJson('origin' in s ? s.origin : undefined) };
    case 'capture':
    case 'segment':
    case 'l2':
    case 'reply':
      return s;
    default:
      return assertNever(s, 'step');
  }
}

function hopJson(h: Hop): unknown {
  return {
    id: h.id,
    parent: h.parent,
    node: h.place.node,
    iface: h.place.iface,
    point: h.point,
    direction: h.direction,
    timeNs: h.timeNs.toString(),
    tcpdump: frameText(h.frame, h.timeNs),
    steps: h.steps.map(stepJson),
    end: h.end ? { ...h.end, origin: originJson(h.end.origin) } : undefined,
  };
}

export function traceJson(t: Trace, allHops = false): unknown {
  const p = t.probe;
  return {
    probe:
      p.kind === 'arp'
        ? { kind: 'arp', name: p.name, from: p.from, target: formatIpv4(p.target) }
        : { kind: p.kind, name: p.name, from: p.from, to: `${formatIpv4(p.to)}:${p.dport}` },
    disposition: t.disposition,
    stage: t.stage,
    summary: t.summary,
    end: { ...t.end, origin: originJson(t.end.origin) },
    path: t.path.map((id) => hopJson(t.hops[id]!)),
    ...(allHops ? { hops: t.hops.map(hopJson) } : {}),
    capturePoints: [...new Set(t.captures.map((c) => c.point))],
  };
}

export function toJsonText(v: unknown): string {
  return `${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Map ? Object.fromEntries(x) : x), 2)}\n`;
}
