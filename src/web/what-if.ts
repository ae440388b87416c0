/**
 * The what-if: a diagnosed scenario (the session), fixes and parameter edits applied to it, every probe re-traced
 * with the diagnosis's own re-trace, and the paths as the page draws them. The server runs it for `serve`; the
 * offline report runs this same module in the page (report-engine.ts), so nothing here may need more than
 * the loaded scenario: no file system, no layout.
 */
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { type DiagnosisSession, diagnoseSession, explainFailure, retraceChanged } from '../diagnose/diagnose.ts';
import { withBinding } from '../diagnose/facts.ts';
import { fixesToApply } from '../diagnose/fix-list.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { ScenarioSource } from '../topology/scenario-source.ts';
import { renderStep } from '../trace/render-step.ts';
import { originJson, traceJson } from '../trace/trace-json.ts';
import type { Hop, Step, Trace } from '../trace/types.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type {
  FindingView,
  FrameField,
  HopJson,
  OriginLink,
  PathHop,
  ProbeView,
  WhatIfAnswer,
  WhatIfRequest,
} from './contract.ts';

/** A diagnosed scenario: held by the server, or by the offline report's engine in the page (report-engine.ts). */
export interface WebSession {
  readonly loaded: LoadedScenario;
  readonly diagnosis: DiagnosisSession;
  readonly source?: ScenarioSource;
}

export function openWebSession(loaded: LoadedScenario, source?: ScenarioSource): WebSession {
  return { loaded, diagnosis: diagnoseSession(loaded), ...(source ? { source } : {}) };
}

const hex2 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;

/** The frame's fields, layer by layer, for the hop inspector. */
export function frameFields(f: EthernetFrame): FrameField[] {
  const out: FrameField[] = [];
  const add = (layer: string, name: string, value: string | number) => out.push({ layer, name, value: String(value) });
  add('ethernet', 'src', f.src);
  add('ethernet', 'dst', f.dst);
  for (const v of f.vlans) add('ethernet', 'vlan', `${v.vid} (pcp ${v.pcp})`);
  add('ethernet', 'ethertype', hex2(f.etherType));
  const p = f.payload;
  if (p.kind === 'arp') {
    add('arp', 'op', p.op === 1 ? 'request' : p.op === 2 ? 'reply' : p.op);
    add('arp', 'sender MAC', p.sha);
    add('arp', 'sender IP', formatIpv4(p.spa));
    add('arp', 'target MAC', p.tha);
    add('arp', 'target IP', formatIpv4(p.tpa));
    return out;
  }
  let ip = p;
  while (ip.kind === 'ipv4') {
    add('ipv4', 'src', formatIpv4(ip.src));
    add('ipv4', 'dst', formatIpv4(ip.dst));
    add('ipv4', 'ttl', ip.ttl);
    add('ipv4', 'id', ip.id);
    add('ipv4', 'protocol', ip.protocol);
    if (ip.dontFragment) add('ipv4', 'flags', 'DF');
    const l4 = ip.payload;
    if (l4.kind === 'ipv4') {
      add('ipv4', 'encapsulates', 'IPv4 (IPIP)');
      ip = l4;
      continue;
    }
    if (l4.kind === 'tcp') {
      const flags = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG', 'ECE', 'CWR'].filter((_, k) => l4.flags & (1 << k));
      add('tcp', 'sport', l4.srcPort);
      add('tcp', 'dport', l4.dstPort);
      add('tcp', 'flags', flags.join(' '));
      add('tcp', 'seq', l4.seq >>> 0);
      if (l4.flags & 0x10) add('tcp', 'ack', l4.ack >>> 0);
      add('tcp', 'window', l4.window);
    } else if (l4.kind === 'udp') {
      add('udp', 'sport', l4.srcPort);
      add('udp', 'dport', l4.dstPort);
    } else if (l4.kind === 'icmp') {
      add('icmp', 'type', l4.type);
      add('icmp', 'code', l4.code);
    }
    break;
  }
  return out;
}

function isReplyStart(s: Step): boolean {
  return s.kind === 'reply' || (s.kind === 'arp' && s.action === 'reply');
}

/** The decisive path of a trace as the page draws it. */
export function probeView(t: Trace, places: Readonly<Record<string, string>>, finding?: string): ProbeView {
  const json = traceJson(t) as { path: HopJson[] };
  let leg: 'request' | 'reply' = 'request';
  const path: PathHop[] = t.path.map((id, k) => {
    const h: Hop = t.hops[id]!;
    const thisLeg = leg;
    if (h.steps.some(isReplyStart)) leg = 'reply';
    const key = h.place.iface ? `${h.place.node}:${h.place.iface}` : h.place.node;
    return {
      ...json.path[k]!,
      leg: thisLeg,
      element: places[key] ?? places[h.place.node] ?? `n:${h.place.node}`,
      text: h.steps.map(renderStep).filter((x): x is string => x !== undefined),
      fields: frameFields(h.frame),
    };
  });
  let decisive: number | undefined;
  for (let k = path.length - 1; k >= 0 && t.disposition !== 'replied'; k--)
    if (path[k]!.end) {
      decisive = k;
      break;
    }
  const p = t.probe;
  return {
    name: p.name,
    kind: p.kind,
    label:
      p.kind === 'arp'
        ? `${p.from}: who-has ${formatIpv4(p.target)}`
        : `${p.from} → ${formatIpv4(p.to)}:${p.dport}${p.kind === 'udp' ? '/udp' : ''}`,
    disposition: t.disposition,
    ok: t.disposition === 'replied',
    stage: t.stage,
    summary: t.summary,
    end: {
      disposition: t.end.disposition,
      node: t.end.place.node,
      ...(t.end.place.iface ? { iface: t.end.place.iface } : {}),
      reason: t.end.reason,
      ...(t.end.origin ? { origin: originJson(t.end.origin) as OriginLink[] } : {}),
    },
    path,
    ...(decisive !== undefined ? { decisive } : {}),
    ...(finding ? { finding } : {}),
  };
}

/**
 * File name as origins name it → its lines, for every file the origins point at that `skip` does not already have:
 * the scenario's files (through the session's source), and files of applied fixes (`artifacts`, by path).
 */
export function originFiles(
  s: WebSession,
  origins: readonly (readonly OriginLink[] | undefined)[],
  skip: (file: string) => boolean = () => false,
  artifacts: ReadonlyMap<string, string> = new Map(),
): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  const src = s.source;
  const label = src?.label && src.label !== '.' ? `${src.label}/` : '';
  for (const chain of origins)
    for (const o of chain ?? []) {
      if (!o.file || o.file in out || skip(o.file)) continue;
      const rel = label && o.file.startsWith(label) ? o.file.slice(label.length) : o.file;
      const text = artifacts.get(o.file) ?? src?.read(rel);
      if (text !== undefined) out[o.file] = text.split('\n');
    }
  return out;
}

/** Every origin chain of probes' paths and ends, and of findings' culprits. */
export function collectOrigins(
  probes: readonly ProbeView[],
  findings: readonly FindingView[],
): (readonly OriginLink[] | undefined)[] {
  const out: (readonly OriginLink[] | undefined)[] = findings.map((f) => f.culprit);
  for (const p of probes) {
    out.push(p.end.origin);
    for (const h of p.path) {
      out.push(h.end?.origin);
      for (const st of h.steps) out.push(st.origin);
    }
  }
  return out;
}

/** What the page already has: where hops are drawn, and the files whose lines it holds (the model's `files`). */
export interface WhatIfView {
  readonly places: Readonly<Record<string, string>>;
  readonly known: (file: string) => boolean;
}

/**
 * Applies fixes (with the fixes each was verified after) and parameter edits, re-traces every probe with the
 * diagnosis's own re-trace, and says per probe what changed.
 */
export function whatIf(s: WebSession, view: WhatIfView, req: WhatIfRequest): WhatIfAnswer {
  const { places } = view;
  const t0 = performance.now();
  const d = s.diagnosis;
  const chosen = fixesToApply(d, req.fixes);
  if ('unknown' in chosen) return { kind: 'bad', message: `no proposed fix has the id "${chosen.unknown}"` };
  let changed = s.loaded;
  for (const f of chosen.fixes) changed = f.apply(changed);
  for (const e of req.params) {
    const b = changed.scenario.bindings.find((x) => x.host === e.host && x.binding.portdev === e.port);
    if (!b) return { kind: 'bad', message: `no filter binding on ${e.host}:${e.port}` };
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.name))
      return { kind: 'bad', message: `"${e.name}" is not a filter parameter name` };
    if (e.name === 'IP' || e.name.startsWith('IP_'))
      for (const v of e.values)
        if (parseIpv4(v) === undefined) return { kind: 'bad', message: `${e.name}: "${v}" is not an IPv4 address` };
    const params = new Map(b.binding.params);
    if (e.values.length === 0) params.delete(e.name);
    else params.set(e.name, [...e.values]);
    changed = withBinding(changed, b, { ...b, binding: { ...b.binding, params } });
  }
  const after = retraceChanged(changed, d.recorded);
  const probes = after.map((t) => {
    const f = explainFailure(changed, t);
    return probeView(t, places, f ? `${f.code}@${f.where}` : undefined);
  });
  const before = d.report.traces;
  const artifacts = new Map(chosen.fixes.flatMap((f) => f.artifacts.map((a) => [a.path, a.content] as const)));
  return {
    kind: 'ok',
    result: {
      request: req,
      applied: chosen.fixes.map((f) => f.id),
      probes,
      verdicts: after.map((t, k) => ({
        probe: t.probe.name,
        before: before[k]!.disposition,
        after: t.disposition,
      })),
      files: originFiles(s, collectOrigins(probes, []), view.known, artifacts),
      ms: Math.round((performance.now() - t0) * 10) / 10,
    },
  };
}
