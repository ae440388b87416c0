/**
 * Diagnosis: run the probes, walk each trace the way the engineers did by hand (does the director see the real
 * server? does it rewrite the MACs? does the host forward the frame? …), name the findings, and prove each fix
 * by re-tracing the model with the fix applied.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import { serviceLine } from '../ipvs/ipvsadm-list-writer.ts';
import { formatAddrPort, type IpvsService } from '../ipvs/model.ts';
import { renderOriginChain } from '../source/origin.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec } from '../topology/model.ts';
import { diagnosisPlan, type UncheckedService, uncheckedServices } from '../trace/probe-plan.ts';
import { type RecordedTrace, rerunProbe, runProbeRecorded } from '../trace/retrace.ts';
import { openSession } from '../trace/session.ts';
import { frameText } from '../trace/tcpdump-lines.ts';
import type { Hop, Trace } from '../trace/types.ts';
import { dropStep, ipvsStep, ownsAddress, pathHops } from './facts.ts';
import { FINDING_KINDS } from './findings/catalogue.ts';
import { ipLearningDhcpStatic, isDhcpLearningDrop } from './findings/ip-learning-dhcp.ts';
import type { Detected } from './findings/kind.ts';
import { rsDirectUnreachable } from './findings/rs-direct.ts';
import type { Check, Finding, FixProposal, Report, VerifiedFix } from './types.ts';

function lines(h: Hop): string[] {
  return frameText(h.frame, h.timeNs).split('\n');
}

/** `node:iface` followed by the frame's tcpdump lines, indented. */
function at(h: Hop): string[] {
  return [`${where(h)}:`, ...lines(h).map((l) => `  ${l}`)];
}

function where(h: Hop): string {
  return h.place.iface ? `${h.place.node}:${h.place.iface}` : h.place.node;
}

/** The stepwise checks for one trace. */
export function checksFor(loaded: LoadedScenario, t: Trace): Check[] {
  const probe = t.probe;
  const out: Check[] = [];
  const path = pathHops(t);
  const add = (id: string, title: string, status: Check['status'], ls: string[]) =>
    out.push({ id, probe: probe.name, title, status, lines: ls });
  if (probe.kind === 'arp') {
    const asked = `${probe.from} asks who-has ${formatIpv4(probe.target)}`;
    const answer = path.find((h) => h.steps.some((s) => s.kind === 'arp' && s.action === 'reply'));
    const ignored = t.hops.filter((h) => h.steps.some((s) => s.kind === 'arp' && s.action === 'ignore'));
    add('arp-asked', asked, 'pass', lines(t.hops[0]!));
    if (!answer) {
      add('arp-answered', `someone answers for ${formatIpv4(probe.target)}`, 'fail', [
        t.end.reason,
        ...ignored.map((h) => `${h.place.node} ignores it`),
      ]);
      return out;
    }
    add(
      'arp-answered',
      `${answer.place.node} answers for ${formatIpv4(probe.target)}`,
      'pass',
      ignored.map((h) => `${h.place.node} stays silent (arp_ignore)`),
    );
    const replyHops = path.slice(path.indexOf(answer) + 1);
    const drop = replyHops.find((h) => dropStep(h));
    if (drop) {
      const d = dropStep(drop)!;
      add('arp-reply-forwarded', `the ARP reply leaves ${drop.place.node}`, 'fail', [
        ...lines(drop),
        `dropped at ${where(drop)}: ${d.family === 'bridge' ? 'ebtables' : 'iptables'} -t ${d.table} ${d.hook} → ${d.path.join(' → ')}: rule ${d.ruleNumber ?? '-'} "${d.ruleText}"`,
        `origin: ${renderOriginChain(d.origin, '\n        ← ')}`,
      ]);
      return out;
    }
    add(
      'arp-reply-received',
      `${probe.from} learns ${formatIpv4(probe.target)}`,
      t.disposition === 'replied' ? 'pass' : 'fail',
      [t.summary],
    );
    return out;
  }
  // A TCP or UDP probe.
  const ipvsHopIdx = path.findIndex((h) => ipvsStep(h) !== undefined);
  const protocol = probe.kind === 'udp' ? 'UDP' : 'TCP';
  const isProbed = (s: IpvsService) =>
    s.key.kind === 'addr' &&
    s.key.protocol === protocol &&
    s.key.address.family === 'ipv4' &&
    s.key.address.addr === probe.to &&
    s.key.port === probe.dport;
  const serving = [...loaded.ipvs.keys()].filter((d) => loaded.ipvs.get(d)!.services.some(isProbed));
  // With a VRRP pair both directors have the service; the one holding the VIP now is the one the probe meets.
  const holder = serving.find((d) => {
    const n = loaded.scenario.nodes.get(d);
    return n !== undefined && ownsAddress(n, probe.to);
  });
  const director = holder ?? serving[0];
  if (director) {
    const svc = loaded.ipvs.get(director)!.services.find(isProbed)!;
    const usable = svc.destinations.filter((d) => (d.weight ?? 1) > 0);
    add(
      'director-sees-rs',
      `director ${director} sees the real server${svc.destinations.length === 1 ? '' : 's'}`,
      usable.length > 0 ? 'pass' : 'fail',
      [
        serviceLine(svc),
        ...svc.destinations.map(
          (d) => `  -> ${formatAddrPort(d.address, d.port)}  ${d.forwarding?.kind ?? '?'} weight ${d.weight ?? '?'}`,
        ),
      ],
    );
  }
  const arrive = path.find((h) => director && h.place.node === director && h.direction === 'in');
  if (director && !arrive) {
    add('reaches-director', `the ${probe.name} request reaches director ${director}`, 'fail', [t.summary]);
    return out;
  }
  if (ipvsHopIdx >= 0) {
    const h = path[ipvsHopIdx]!;
    const st = ipvsStep(h)!;
    const sent = path.slice(ipvsHopIdx + 1).find((x) => x.place.node === h.place.node && x.direction === 'out');
    add(
      'director-rewrites',
      `director ${h.place.node} rewrites the MACs (${st.method ?? 'no destination'})`,
      st.outcome === 'forwarded' && sent ? 'pass' : 'fail',
      [
        `${st.service}: ${st.explanation}`,
        `${where(h)} in:`,
        ...lines(h).map((l) => `  ${l}`),
        ...(sent ? [`${where(sent)} out:`, ...lines(sent).map((l) => `  ${l}`)] : []),
      ],
    );
    // The director's host must pass the rewritten frame on.
    const hostName = loaded.scenario.nodes.get(h.place.node)?.host;
    const after = path.slice(ipvsHopIdx + 1);
    const drop = after.find((x) => dropStep(x) !== undefined);
    if (hostName) {
      if (drop && drop.place.node === hostName) {
        const d = dropStep(drop)!;
        const bridge = loaded.scenario.nodes.get(hostName)?.interfaces.get(drop.place.iface ?? '')?.master;
        const seenOn = after.filter((x) => x.point && x.place.node === hostName).map((x) => x.point!);
        add('host-forwards', `${hostName} forwards the rewritten frame`, 'fail', [
          `captured on ${[...new Set(seenOn)].join(', ') || '(nowhere)'}; never on ${hostName}:${bridge ?? '?'} or the uplink`,
          `${hostName}, bridge ${bridge ?? '?'}, port ${drop.place.iface}: ${d.family === 'bridge' ? 'ebtables' : 'iptables'} -t ${d.table} ${d.hook} → ${d.path.join(' → ')}`,
          `rule ${d.ruleNumber ?? '-'} of ${d.chain}: ${d.ruleText}`,
          `origin: ${renderOriginChain(d.origin, '\n        ← ')}`,
        ]);
        return out;
      }
      const leftHost = after.find(
        (x) => x.place.node === hostName && x.direction === 'out' && x.point && !x.place.iface?.startsWith('vnet'),
      );
      add(
        'host-forwards',
        `${hostName} forwards the rewritten frame`,
        leftHost ? 'pass' : 'not-reached',
        leftHost ? at(leftHost) : [t.summary],
      );
    }
  }
  const delivered = path.find((h) => h.steps.some((s) => s.kind === 'deliver') && h.place.node !== probe.from);
  if (!delivered) {
    add('server-answers', 'a real server receives the request', t.stage === 'request' ? 'fail' : 'not-reached', [
      t.summary,
    ]);
    return out;
  }
  if (probe.kind === 'udp') {
    add('server-answers', `${delivered.place.node} receives the datagram and answers`, 'pass', at(delivered));
    const last = path[path.length - 1]!;
    add(
      'reply-reaches-client',
      `the answer reaches ${probe.from}`,
      t.disposition === 'replied' ? 'pass' : 'fail',
      t.disposition === 'replied' ? at(last) : [t.summary],
    );
    return out;
  }
  add('server-answers', `${delivered.place.node} receives the SYN and answers`, 'pass', at(delivered));
  // The conversation: the SYN-ACK, then the client's full-size request and the server's full-size response.
  const isSynAck = (h: (typeof path)[number]) => {
    const p = h.frame.payload;
    return p.kind === 'ipv4' && p.payload.kind === 'tcp' && (p.payload.flags & 0x12) === 0x12;
  };
  const synAck = path.find((h) => h.place.node === probe.from && h.direction === 'in' && isSynAck(h));
  const last = path[path.length - 1]!;
  add(
    'reply-reaches-client',
    `the SYN-ACK reaches ${probe.from}`,
    synAck ? 'pass' : 'fail',
    synAck ? at(synAck) : [t.summary],
  );
  if (!synAck) return out;
  const after = path.slice(path.indexOf(synAck) + 1);
  const served = after.find((h) => h.place.node !== probe.from && h.steps.some((s) => s.kind === 'deliver'));
  add(
    'request-reaches-server',
    `the full-size request reaches ${served?.place.node ?? 'a real server'} and it answers`,
    served ? 'pass' : 'fail',
    served ? at(served) : [t.summary],
  );
  if (!served) return out;
  add(
    'response-reaches-client',
    `the full-size response reaches ${probe.from}`,
    t.disposition === 'replied' ? 'pass' : 'fail',
    t.disposition === 'replied' ? at(last) : [t.summary],
  );
  return out;
}

function traceAll(loaded: LoadedScenario, probes: readonly AnyProbeSpec[]): RecordedTrace[] {
  const session = openSession(loaded);
  return probes.map((p) => runProbeRecorded(session, p));
}

/**
 * The traces of the probes on `fixed`, as a fresh session would give them. Performance: a fix changes a binding,
 * a filter or a sysctl; probes whose walks cannot meet the change are derived from the recorded traces of the
 * unfixed scenario (see `retrace.ts`), the others are walked again.
 */
function retraceAll(fixed: LoadedScenario, recorded: readonly RecordedTrace[]): Trace[] {
  const session = openSession(fixed);
  return recorded.map((r) => rerunProbe(r, session));
}

function findingKey(f: { code: string; where: string }): string {
  return `${f.code}@${f.where}`;
}

/**
 * A static finding's own key: one kind may stand several times on one node (a persistent service per port, a
 * weight-0 table per service), and each is a finding of its own.
 */
function staticKey(f: { code: string; where: string; title: string }): string {
  return `${findingKey(f)}#${f.title}`;
}

/** The first finding kind that explains a failed trace. */
function explainTrace(loaded: LoadedScenario, t: Trace): Detected | undefined {
  for (const kind of FINDING_KINDS) {
    const d = kind.detect?.({ loaded }, t);
    if (d) return d;
  }
  return undefined;
}

/** Static findings of every kind that has a configuration check. */
export function staticFindings(loaded: LoadedScenario): Detected[] {
  return FINDING_KINDS.flatMap((k) => (k.check ? [...k.check({ loaded, explain: explainTrace })] : [])).filter(
    // A port still waiting for a DHCP lease drops everything: that is its one finding, not anti-spoofing.
    (d) => d.finding.code === ipLearningDhcpStatic.code || !isDhcpLearningDrop(d.finding.culprit),
  );
}

interface ChainLink {
  readonly detected: Detected;
  /** Best fixes of the earlier links, applied before this fault shows. */
  readonly prereqs: readonly FixProposal[];
}

/**
 * The faults one probe meets, in the order its packets meet them: explain the failure, apply the fix that keeps
 * the most protection, trace again, and so on while the probe still fails for a new reason.
 */
function faultChain(loaded: LoadedScenario, first: RecordedTrace): ChainLink[] {
  const out: ChainLink[] = [];
  const prereqs: FixProposal[] = [];
  let cur = loaded;
  let t = first.trace;
  const seen = new Set<string>();
  for (let k = 0; k < 5 && t.disposition !== 'replied'; k++) {
    const d = explainTrace(cur, t);
    if (!d || seen.has(findingKey(d.finding))) break;
    seen.add(findingKey(d.finding));
    out.push({ detected: d, prereqs: [...prereqs] });
    const best = [...d.fixes].sort((a, b) => b.protectionRank - a.protectionRank)[0];
    if (!best) break;
    prereqs.push(best);
    cur = best.apply(cur);
    t = rerunProbe(first, openSession(cur));
  }
  return out;
}

interface Proposal {
  readonly fix: FixProposal;
  readonly targets: Set<string>;
  /** Keys of the trace findings it addresses. */
  readonly addresses: Set<string>;
  readonly prereqs: readonly FixProposal[];
  readonly clears: Set<string>;
}

function verify(
  loaded: LoadedScenario,
  probes: readonly AnyProbeSpec[],
  recorded: readonly RecordedTrace[],
  p: Proposal,
): VerifiedFix {
  const before = recorded.map((r) => r.trace);
  let base = loaded;
  for (const f of p.prereqs) base = f.apply(base);
  const fixed = p.fix.apply(base);
  const after = retraceAll(fixed, recorded);
  const retraced = probes.map((pr, k) => ({
    probe: pr.name,
    before: before[k]!.disposition,
    after: after[k]!.disposition,
  }));
  const unblocks = retraced.filter((r) => r.before !== 'replied' && r.after === 'replied').map((r) => r.probe);
  const regress = retraced.some((r) => r.before === 'replied' && r.after !== 'replied');
  // The fault is gone when no target probe ends on it any more (it may then meet the next fault, or be answered).
  const stillThere = probes.some((pr, k) => {
    if (!p.targets.has(pr.name) || after[k]!.disposition === 'replied') return false;
    const d = explainTrace(fixed, after[k]!);
    return d !== undefined && p.addresses.has(findingKey(d.finding));
  });
  const remaining = new Set(staticFindings(fixed).map((d) => staticKey(d.finding)));
  const cleared = [...p.clears].filter((k) => !remaining.has(k));
  const clears = [...new Set(cleared.map((k) => k.slice(0, k.indexOf('#'))))];
  const { apply: _apply, ...rest } = p.fix;
  const verified = !regress && !stillThere && cleared.length === p.clears.size;
  return {
    ...rest,
    verified,
    proof: !verified ? 'none' : unblocks.length > 0 ? 'probe' : 'finding-only',
    retraced,
    unblocks,
    requires: p.prereqs.map((f) => f.id),
    clears,
  };
}

/** A diagnosis with what the web app's what-if needs: the recorded traces and each proposed fix with its `apply`. */
export interface DiagnosisSession {
  readonly report: Report;
  readonly probes: readonly AnyProbeSpec[];
  readonly recorded: readonly RecordedTrace[];
  /** By fix id: the fix and the fixes applied before it when it was verified. */
  readonly proposals: ReadonlyMap<string, { readonly fix: FixProposal; readonly prereqs: readonly FixProposal[] }>;
}

export function diagnose(loaded: LoadedScenario): Report {
  return diagnoseSession(loaded).report;
}

/** The traces of `probes` on `changed` (a scenario edited from the one `recorded` was traced on), as fresh walks give them. */
export function retraceChanged(changed: LoadedScenario, recorded: readonly RecordedTrace[]): Trace[] {
  return retraceAll(changed, recorded);
}

/** The finding that explains a failed trace, as diagnosis names it (undefined for answered probes). */
export function explainFailure(loaded: LoadedScenario, t: Trace): Finding | undefined {
  if (t.disposition === 'replied') return undefined;
  const d = explainTrace(loaded, t);
  return d
    ? { ...d.finding, probes: [t.probe.name], fixes: d.fixes.map((f) => f.id), source: 'trace', after: [] }
    : undefined;
}

export function diagnoseSession(loaded: LoadedScenario): DiagnosisSession {
  const plan = diagnosisPlan(loaded);
  const probes = plan.map((p) => p.spec);
  const recorded = traceAll(loaded, probes);
  const traces = recorded.map((r) => r.trace);
  const decisive = new Set(plan.filter((p) => p.decisive).map((p) => p.spec.name));
  const unchecked = uncheckedServices(loaded, plan);
  // Evidence is a conversation with a service: ARP for a VIP alone says nothing about what answers behind it.
  const evidence = plan.some((p) => p.decisive && p.spec.kind !== 'arp');
  const noVerdict = evidence ? undefined : uncheckable(loaded, unchecked);
  const checks = traces.flatMap((t) => checksFor(loaded, t));
  const findings = new Map<string, Finding>();
  const proposals = new Map<string, Proposal>();
  const propose = (f: FixProposal, prereqs: readonly FixProposal[]): Proposal => {
    let p = proposals.get(f.id);
    if (!p) {
      p = { fix: f, targets: new Set(), addresses: new Set(), prereqs, clears: new Set() };
      proposals.set(f.id, p);
    }
    return p;
  };
  for (const r of recorded) {
    const t = r.trace;
    if (t.disposition === 'replied') continue;
    if (!decisive.has(t.probe.name)) {
      // A check nobody's design depends on: one piece of information, never an error, no fault chain.
      const d = rsDirectUnreachable(
        loaded,
        t,
        plan.find((p) => p.spec.name === t.probe.name)!,
        explainTrace(loaded, t),
      );
      const prev = findings.get(findingKey(d.finding));
      findings.set(findingKey(d.finding), {
        ...d.finding,
        ...(prev ? { title: `${prev.title}; ${d.finding.title}` } : {}),
        probes: [...(prev?.probes ?? []), t.probe.name],
        fixes: [],
        source: 'trace',
        after: [],
      });
      continue;
    }
    const chain = faultChain(loaded, r);
    chain.forEach((link, k) => {
      const key = findingKey(link.detected.finding);
      const prev = findings.get(key);
      const after = chain.slice(0, k).map((l) => findingKey(l.detected.finding));
      if (prev) findings.set(key, { ...prev, probes: [...new Set([...prev.probes, t.probe.name])] });
      else
        findings.set(key, {
          ...link.detected.finding,
          probes: [t.probe.name],
          fixes: link.detected.fixes.map((f) => f.id),
          source: 'trace',
          after,
        });
      for (const f of link.detected.fixes) {
        const p = propose(f, link.prereqs);
        p.targets.add(t.probe.name);
        p.addresses.add(key);
      }
    });
  }
  for (const d of staticFindings(loaded)) {
    // The trace found it too (same kind, same place): one finding, found both ways.
    const traced = findings.get(findingKey(d.finding));
    const key = traced && traced.source === 'trace' ? findingKey(d.finding) : staticKey(d.finding);
    const prev = findings.get(key);
    if (prev) findings.set(key, { ...prev, source: prev.source === 'static' ? 'static' : 'both' });
    else findings.set(key, { ...d.finding, probes: [], fixes: d.fixes.map((f) => f.id), source: 'static', after: [] });
    for (const f of d.fixes) propose(f, []).clears.add(staticKey(d.finding));
  }
  const fixes = [...proposals.values()]
    .map((p) => verify(loaded, probes, recorded, p))
    .sort(
      (a, b) =>
        Number(b.verified) - Number(a.verified) ||
        Number(b.proof === 'probe') - Number(a.proof === 'probe') ||
        a.requires.length - b.requires.length ||
        b.unblocks.length - a.unblocks.length ||
        b.protectionRank - a.protectionRank,
    );
  const severity = { error: 0, warning: 1, info: 2 } as const;
  const ordered = [...findings.values()].sort(
    (a, b) =>
      Number(a.source === 'static') - Number(b.source === 'static') ||
      a.after.length - b.after.length ||
      severity[a.severity] - severity[b.severity],
  );
  const report: Report = {
    scenario: loaded.scenario.name,
    healthy:
      noVerdict === undefined &&
      traces.every((t) => t.disposition === 'replied' || !decisive.has(t.probe.name)) &&
      !ordered.some((f) => f.severity === 'error'),
    ...(noVerdict ? { noVerdict } : {}),
    unchecked,
    plan: plan.map((p) => ({ probe: p.spec.name, purpose: p.purpose, why: p.why, decisive: p.decisive })),
    traces,
    checks,
    findings: ordered,
    fixes,
    assumptions: loaded.scenario.assumptions,
  };
  return {
    report,
    probes,
    recorded,
    proposals: new Map([...proposals].map(([id, p]) => [id, { fix: p.fix, prereqs: p.prereqs }])),
  };
}

/** Why no probe that decides the verdict could run: what the scenario lacks, and what its author could not collect. */
export function uncheckable(loaded: LoadedScenario, unchecked: readonly UncheckedService[] = []): string[] {
  const s = loaded.scenario;
  const nodes = [...s.nodes.values()];
  const out: string[] = [];
  if (loaded.ipvs.size === 0)
    out.push(
      'no director: no guest has an ipvsadm listing or a keepalived.conf with virtual servers, so there is no virtual service to probe',
    );
  else for (const u of unchecked) out.push(`${u.what} is not checked: ${u.why}`);
  if (!nodes.some((n) => n.kind === 'client')) out.push('no client: no TCP probe can start');
  if (!nodes.some((n) => n.kind === 'gateway')) out.push('no gateway: no ARP probe can start');
  if (!nodes.some((n) => n.kind === 'guest')) out.push('no guest was described (no domain XML or guest outputs)');
  if (s.probes.length === 0 && loaded.ipvs.size === 0) out.push('scenario.yaml lists no probes');
  for (const a of loaded.declaredAssumptions) out.push(`${a.assumed} [evidence: ${a.evidence}]`);
  return out;
}

/** Static checks only: the findings of the configuration, without tracing. */
export function check(loaded: LoadedScenario): Finding[] {
  return staticFindings(loaded).map((d) => ({
    ...d.finding,
    probes: [],
    fixes: d.fixes.map((f) => f.id),
    source: 'static' as const,
    after: [],
  }));
}
