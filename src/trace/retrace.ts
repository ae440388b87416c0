/**
 * Re-tracing a probe on a changed scenario without walking it again, when the change cannot alter the walk.
 *
 * A walk is a function of what it reads: the nodes it enters (their interfaces, neighbours, listeners), the
 * topology (links, segments, warm FDBs) and the decisions it asks engines for — every one of them through the one
 * door of `decisions.ts`, which logs it with the hop and the place its step took. A recorded trace keeps the names
 * of the nodes it entered and that log. Each kind of decision says below what it depends on: routes, sysctls and
 * IPVS are answered from the entered node's configuration and IPVS tables, so they answer the same when those
 * objects are the same; ebtables and iptables answer from the host's rules, which a fix changes without touching
 * the node. On another session, when the topology and every entered node are the same objects, only the firewalls
 * of hosts whose rules changed can answer differently; their logged decisions are asked again. As long as none of
 * them drops (a drop ends a branch, so the walk itself would change), the walk goes exactly as before and the new
 * trace is the old one with those steps replaced, added or removed. Otherwise the probe is walked anew.
 */

import { assertNever } from '../source/assert-never.ts';
import type { AnyProbeSpec } from '../topology/model.ts';
import { resetDataplane, sameTopology } from './dataplane.ts';
import { answer, type Decision, type DecisionLog } from './decisions.ts';
import { traceProbe } from './probe.ts';
import type { Session } from './session.ts';
import { enginesFor } from './session.ts';
import type { Hop, NetfilterStep, Step, Trace } from './types.ts';

/** A trace with what its walk read. */
export interface RecordedTrace {
  readonly session: Session;
  readonly probe: AnyProbeSpec;
  readonly trace: Trace;
  /** Names of the nodes whose state the walk looked up. */
  readonly nodes: ReadonlySet<string>;
  /** Every engine decision the walk asked for, in order. */
  readonly decisions: readonly Decision[];
  /** The ebtables and iptables decisions by host, in the order they were asked. */
  readonly firewallByHost: ReadonlyMap<string, readonly FirewallDecision[]>;
}

/** Runs one probe from the scenario's initial state and records what the walk read. */
export function runProbeRecorded(session: Session, probe: AnyProbeSpec): RecordedTrace {
  const dp = resetDataplane(session.pristine, enginesFor(session, probe));
  const nodes = new Set<string>();
  const reads: DecisionLog = { decisions: [] };
  const watched = {
    ...dp,
    nodes: {
      get(name: string) {
        nodes.add(name);
        return dp.nodes.get(name);
      },
    },
  };
  const trace = traceProbe(watched, probe, reads);
  const firewallByHost = new Map<string, FirewallDecision[]>();
  for (const d of reads.decisions) {
    if (!dependsOnRules(d)) continue;
    const list = firewallByHost.get(d.host);
    if (list === undefined) firewallByHost.set(d.host, [d]);
    else list.push(d);
  }
  return { session, probe, trace, nodes, decisions: reads.decisions, firewallByHost };
}

/**
 * The trace `runProbe(next, rec.probe)` would give, derived from `rec` when the differences between the sessions
 * cannot change the walk; undefined when the probe must be walked again.
 */
export function retraceFrom(rec: RecordedTrace, next: Session): Trace | undefined {
  const base = rec.session;
  if (base === next) return rec.trace;
  if (!sameTopology(base.pristine, next.pristine)) return undefined;
  const b = next.loaded;
  // Walked anew when a node the walk entered is another object, or its IPVS tables or kernel differ.
  for (const name of changedNodes(base, next)) if (rec.nodes.has(name)) return undefined;
  const patches = new Map<Hop, { read: FirewallDecision; step: NetfilterStep | undefined }[]>();
  for (const [host, reads] of rec.firewallByHost) {
    const fw = next.engines.firewalls.get(host);
    if (base.engines.firewalls.get(host) === fw) continue;
    if (fw === undefined) return undefined;
    // Whether br_netfilter's conntrack classifies bridged packets (and `--ctstate` sees it) follows the rules: when
    // that changes, the recorded br-netfilter questions lack (or carry) a ctstate a fresh walk would not.
    if (base.engines.firewalls.get(host)?.tracksBridged !== fw.tracksBridged) return undefined;
    for (const read of reads) {
      const step = answer({ node: b.scenario.nodes.get(host)!, firewall: fw }, read.question);
      if (read.answer?.verdict === 'DROP' || step?.verdict === 'DROP') return undefined;
      // NOTRACK changes what conntrack and every --ctstate rule after it see: walk anew.
      if ((read.answer?.notrack ?? false) !== (step?.notrack ?? false)) return undefined;
      let list = patches.get(read.hop);
      if (list === undefined) {
        list = [];
        patches.set(read.hop, list);
      }
      list.push({ read, step });
    }
  }
  if (patches.size === 0) return rec.trace;
  const hops = rebuildHops(rec.trace.hops, patches);
  return hops === rec.trace.hops ? rec.trace : { ...rec.trace, hops: hops as Hop[] };
}

/** By the later session, by the earlier: the names of nodes whose node object, IPVS tables or kernel differ. */
const CHANGED = new WeakMap<Session, WeakMap<Session, readonly string[]>>();

/**
 * The nodes that differ between two sessions' scenarios: the node object, its IPVS tables or its kernel (every
 * name either scenario knows in any of the three). Performance: computed once per pair of sessions, not once per
 * probe (a walk that floods an ARP request enters every guest of the segment).
 */
export function changedNodes(base: Session, next: Session): readonly string[] {
  let byBase = CHANGED.get(next);
  if (byBase === undefined) {
    byBase = new WeakMap();
    CHANGED.set(next, byBase);
  }
  let out = byBase.get(base);
  if (out === undefined) {
    const a = base.loaded;
    const b = next.loaded;
    const names = new Set<string>();
    for (const m of [a.scenario.nodes, b.scenario.nodes, a.ipvs, b.ipvs, a.kernels, b.kernels])
      for (const name of m.keys()) names.add(name);
    out = [...names].filter(
      (name) =>
        a.scenario.nodes.get(name) !== b.scenario.nodes.get(name) ||
        a.ipvs.get(name) !== b.ipvs.get(name) ||
        a.kernels.get(name) !== b.kernels.get(name),
    );
    byBase.set(base, out);
  }
  return out;
}

/** Runs a probe on `next`, from a recorded trace of it when possible. */
export function rerunProbe(rec: RecordedTrace, next: Session): Trace {
  return retraceFrom(rec, next) ?? traceProbe(resetDataplane(next.pristine, enginesFor(next, rec.probe)), rec.probe);
}

type FirewallDecision = Extract<Decision, { question: { kind: 'ebtables' | 'br-netfilter' | 'raw' | 'ip-filter' } }>;

/**
 * Whether a decision is answered from the host's ebtables/iptables rules (which a fix may change while the node
 * stays the same object), rather than from what `retraceFrom` requires to be unchanged.
 */
function dependsOnRules(d: Decision): d is FirewallDecision {
  const q = d.question;
  switch (q.kind) {
    case 'ebtables':
    case 'br-netfilter':
    case 'raw':
    case 'ip-filter':
      return true;
    // Answered from the node's routes and sysctls, or from its IPVS tables: `retraceFrom` walks anew when the
    // entered node, its IPVS state or its kernel differ.
    // What the walk's own earlier packets made of the connection: the same while the walk is.
    case 'conntrack':
    // The node's own mangle table is part of the node.
    case 'mangle':
    // So is its nat table (SNAT of IPVS NAT traffic; a hypervisor's DNAT/REDIRECT and SNAT/MASQUERADE): a fix that
    // changes it changes the node, and the probe is walked anew.
    case 'nat':
    // And its own filter and raw tables (a guest's iptables-save).
    case 'node-table':
    case 'host-nat':
    case 'host-mangle':
    case 'ipvs-in':
    case 'ipvs-out':
    case 'route':
    case 'conf':
    case 'sysctl':
      return false;
    default:
      return assertNever(q, 'question');
  }
}

type Patches = ReadonlyMap<Hop, readonly { read: FirewallDecision; step: NetfilterStep | undefined }[]>;

/** For each hop of an ARP walk: the hop whose neighbour step holds that walk. */
type Holders = ReadonlyMap<Hop, Hop>;

const HOLDERS = new WeakMap<readonly Hop[], Holders>();

/** The holder of every hop of every ARP walk inside `hops` (at any depth), found once per recorded trace. */
function holdersOf(hops: readonly Hop[]): Holders {
  let m = HOLDERS.get(hops) as Map<Hop, Hop> | undefined;
  if (m === undefined) {
    const found = new Map<Hop, Hop>();
    const visit = (list: readonly Hop[]) => {
      for (const h of list)
        for (const s of h.steps) {
          if (s.kind !== 'neighbour' || !s.arp) continue;
          for (const sub of s.arp.hops) found.set(sub, h);
          visit(s.arp.hops);
        }
    };
    visit(hops);
    HOLDERS.set(hops, found);
    m = found;
  }
  return m;
}

/** The index of the step of `holder` whose ARP walk holds `h`. */
function arpStepOf(holder: Hop, h: Hop): number {
  for (let k = 0; k < holder.steps.length; k++) {
    const s = holder.steps[k]!;
    if (s.kind === 'neighbour' && s.arp && (s.arp.hops[h.id] === h || s.arp.hops.includes(h))) return k;
  }
  throw new Error(`internal: hop ${holder.id} holds no ARP walk with hop ${h.id}`);
}

/**
 * The hops with their patched decisions. Performance: only the hops that hold a patched decision, and the hops
 * whose ARP walks hold one, are rebuilt — found through `holdersOf`, not by visiting every hop of every ARP walk
 * (a broadcast on a large segment makes thousands of hops in every trace re-traced).
 */
function rebuildHops(hops: readonly Hop[], patches: Patches): readonly Hop[] {
  const holders = holdersOf(hops);
  // For each hop to rebuild: the hops to rebuild in each of its ARP walks (by step index).
  const below = new Map<Hop, Map<number, Set<Hop>>>();
  const top = new Set<Hop>();
  for (const h of patches.keys()) {
    let cur = h;
    for (;;) {
      const up = holders.get(cur);
      if (up === undefined) {
        top.add(cur);
        break;
      }
      let bySteps = below.get(up);
      const fresh = bySteps === undefined;
      if (bySteps === undefined) {
        bySteps = new Map();
        below.set(up, bySteps);
      }
      const k = arpStepOf(up, cur);
      let set = bySteps.get(k);
      if (set === undefined) {
        set = new Set();
        bySteps.set(k, set);
      }
      set.add(cur);
      // Its holder's own path upwards is recorded already.
      if (!fresh) break;
      cur = up;
    }
  }
  const build = (h: Hop): Hop => {
    const bySteps = below.get(h);
    let rebuilt: Map<number, readonly Hop[]> | undefined;
    if (bySteps !== undefined)
      for (const [k, subs] of bySteps) {
        const step = h.steps[k]!;
        if (step.kind !== 'neighbour' || !step.arp)
          throw new Error(`internal: hop ${h.id} step ${k} holds no ARP walk`);
        const sub = replaceIn(step.arp.hops, subs, build);
        if (sub === step.arp.hops) continue;
        rebuilt ??= new Map();
        rebuilt.set(k, sub);
      }
    return patchHop(h, patches.get(h) ?? [], rebuilt);
  };
  return replaceIn(hops, top, build);
}

/** `list` with each of `which` (hops of it) replaced by `build` of it; `list` itself when none changed. */
function replaceIn(list: readonly Hop[], which: ReadonlySet<Hop>, build: (h: Hop) => Hop): readonly Hop[] {
  let out: Hop[] | undefined;
  for (const h of which) {
    const r = build(h);
    if (r === h) continue;
    // A walk's hop ids are their indices in it.
    const k = list[h.id] === h ? h.id : list.indexOf(h);
    if (k < 0) throw new Error(`internal: hop ${h.id} is not in the walk that holds it`);
    out ??= list.slice();
    out[k] = r;
  }
  return out ?? list;
}

/** `h` with the patched decisions' new steps; `rebuilt` holds its ARP walks (by step index) that changed. */
function patchHop(
  h: Hop,
  ps: readonly { read: FirewallDecision; step: NetfilterStep | undefined }[],
  rebuilt: ReadonlyMap<number, readonly Hop[]> | undefined,
): Hop {
  if (ps.length === 0 && rebuilt === undefined) return h;
  const steps: Step[] = [];
  let pi = 0;
  for (let i = 0; i <= h.steps.length; i++) {
    // Decisions that had nothing to say at this point: their new step (if any) goes here.
    while (pi < ps.length && ps[pi]!.read.pos === i && ps[pi]!.read.answer === undefined) {
      const s = ps[pi++]!.step;
      if (s) steps.push(s);
    }
    if (i === h.steps.length) break;
    if (pi < ps.length && ps[pi]!.read.pos === i) {
      // The old step of this decision sits here.
      if (h.steps[i] !== ps[pi]!.read.answer) throw new Error(`internal: hop ${h.id} step ${i} is not the logged one`);
      const s = ps[pi++]!.step;
      if (s) steps.push(s);
      continue;
    }
    const s = h.steps[i]!;
    const sub = rebuilt?.get(i);
    if (sub !== undefined && s.kind === 'neighbour' && s.arp) {
      steps.push({ ...s, arp: { ...s.arp, hops: sub as Hop[] } });
      continue;
    }
    steps.push(s);
  }
  return { ...h, steps };
}
