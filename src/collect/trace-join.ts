/**
 * Kernel traces against the model. Every event of a netfilter trace (`nft monitor trace`, `xtables-monitor --trace`)
 * is placed on the model's topology — the node the trace was taken on, the interface the packet came in by or went
 * out of, that port's bridge — and joined to the model's rule with its origin (rule ← filter ← filterref ← domain
 * interface): the event names the rule by handle or nft text, the host's `nft -a list ruleset` gives its position in
 * its chain, the host's ebtables/iptables listing gives the rule at that position as the model renders it, and the
 * model's rule is the one of that chain and position with that text (or the one rule of the chain with that text).
 * Events that cannot be joined are listed with the reason; events of the operator's own tracing rules
 * (`meta nftrace set 1`, `-j TRACE`) are counted apart.
 *
 * Then per probe: every traced packet that is the probe's (its addresses, protocol and ports, or for ARP its
 * operation and Ethernet addresses, at the same node and port as a hop of the probe's model trace) is set against
 * the model's decision at that hop: **confirmed** when the kernel decided where the model decides (same chain and
 * rule, or passed where the model passes), **contradicted** when they disagree (the kernel dropped where the model
 * forwards, passed where it drops, decided at another rule, or traversed a rule the model does not have), **no
 * evidence** when no traced packet is the probe's. Kernel drop reasons (kfree_skb, dropwatch, pwru) are set against
 * the ends of the model's traces at that node by kind (NETFILTER_DROP ↔ dropped by a filter, IP_RPFILTER ↔ rp_filter…).
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import type { Report } from '../diagnose/types.ts';
import { type NftListedRule, nftRuleKey, type RuleCount } from '../netfilter/counter-read.ts';
import type { TraceEvent, TracePacket } from '../netfilter/trace-read.ts';
import { maxOf } from '../source/arrays.ts';
import { renderOriginChain } from '../source/origin.ts';
import type { HostRules } from '../topology/host-rules.ts';
import type { Scenario } from '../topology/model.ts';
import type { Hop, NetfilterStep, Trace } from '../trace/types.ts';
import type { EthernetFrame } from '../wire/types.ts';
import {
  type EvidenceVerdict,
  type ListedRule,
  ModelIndex,
  type ModelRule,
  modelRuleFor,
  NFT_MANAGED,
  NFT_SOURCE,
  type NftHook,
  type ProbeEvidence,
} from './counter-join.ts';
import { type DropKind, dropKindOf, type KernelPacketEvent } from './kernel-drops.ts';

/** What a host lists of its rules, to place a traced rule: xtables listings and the nft ruleset (with handles). */
export interface NodeListings {
  readonly xtables: readonly RuleCount[];
  readonly nft: readonly NftListedRule[];
}

/** One trace file of one node, read. */
export interface KernelTraceInput {
  readonly node: string;
  readonly file: string;
  readonly events: readonly TraceEvent[];
  readonly drops: readonly KernelPacketEvent[];
}

/** A traced event placed on the model. */
export interface PlacedEvent {
  readonly node: string;
  /** The interface the packet came in by (input side hooks) or leaves by (output side hooks). */
  readonly iface?: string;
  /** `port vnet0 of bridge br0`, when the model has the interface. */
  readonly where?: string;
  readonly event: TraceEvent;
  /** The rule as the host lists it (xtables syntax), when located. */
  readonly listed?: ListedRule;
  /** The model's rule with its origin, when joined. */
  readonly rule?: ModelRule;
  readonly by?: 'position' | 'text' | 'chain-end';
  /** Why it is not joined (absent when joined or when it is the operator's tracing rule). */
  readonly why?: string;
  /** The operator's tracing rule (`meta nftrace set 1`, `-j TRACE`), not a rule of the model. */
  readonly setup?: boolean;
  /**
   * A native nft base chain's pass (the host's own rule set the model read): the model's table and hook it is one
   * base chain of, and whether it is the hook's last base chain in the model's order (an accept before the last ends
   * only that base chain).
   */
  readonly modelHook?: NftHook;
  /**
   * Not joined because the model holds no such table at all (the host's iptables nat table, an nft table of its
   * own): said, and a verdict against the model only where the kernel decides there.
   */
  readonly outsideModel?: boolean;
}

export interface PlacedDrop {
  readonly node: string;
  readonly event: KernelPacketEvent;
  readonly kind?: DropKind;
  /** The model's ends at that node of that kind (probe names). */
  readonly probes: readonly string[];
  readonly why?: string;
  /** A pwru event on the packet's way (not a drop): where the kernel saw it. */
  readonly seen?: boolean;
}

/**
 * A traced packet (or a kernel drop) of one probe placed on the model's trace: the node and port, the model's hops
 * there whose frame it is (hop ids), and whether the kernel decided as the model does — the page draws it as a step.
 */
export interface TraceMark {
  readonly node: string;
  readonly iface?: string;
  /** Ids of the model trace's hops at that node and port whose frame the traced packet is. */
  readonly hops: readonly number[];
  readonly agree: boolean;
  /** The sentence of the probe's facts it stands for (without its citation). */
  readonly text: string;
  /** Where the kernel said it (`file:line`). */
  readonly at: string;
  /** The model's rule the kernel decided at, with its origin, when joined. */
  readonly rule?: ModelRule;
}

export interface KernelTraceReport {
  readonly files: readonly {
    readonly node: string;
    readonly file: string;
    readonly events: number;
    readonly drops: number;
  }[];
  readonly joined: readonly PlacedEvent[];
  readonly setup: number;
  readonly unmapped: readonly PlacedEvent[];
  readonly drops: readonly PlacedDrop[];
  readonly probes: readonly ProbeEvidence[];
  /** Per probe (the order of `probes`): its traced packets and drops placed on its model trace. */
  readonly marks: readonly (readonly TraceMark[])[];
}

const OUTPUT_SIDE = new Set(['POSTROUTING', 'OUTPUT']);
const space = (s: string) => s.trim().replace(/\s+/g, ' ');
const isSetupText = (t: string | undefined) => t !== undefined && /\bnftrace set 1\b|(^|\s)-j TRACE\b/.test(t);

/** The listed rule (xtables syntax, position) a traced rule event stands for, or why it cannot be placed. */
function locate(
  e: TraceEvent,
  L: NodeListings | undefined,
): { listed: ListedRule } | { why: string; setup?: boolean; outside?: boolean } {
  const source = NFT_SOURCE[e.family];
  const managed = source !== undefined && NFT_MANAGED[e.family]!.includes(e.table);
  const nftTable = `${e.family} ${e.table}`;
  if (e.what === 'policy' || e.what === 'return') {
    if (!managed) return { why: `the model has no nft table ${nftTable} (not made by libvirt)`, outside: true };
    return {
      listed: {
        source,
        table: e.table,
        chain: e.chain,
        text: e.what === 'policy' ? `policy: ${e.verdict.toUpperCase()}` : 'end of chain (return)',
      },
    };
  }
  // The nft rule: by handle, else by text (unique in its chain).
  const inChain = (L?.nft ?? []).filter((r) => r.table === nftTable && r.chain === e.chain);
  let nft: NftListedRule | undefined;
  if (e.handle !== undefined) nft = inChain.find((r) => r.handle === e.handle);
  if (!nft && e.handle !== undefined && e.family === 'bridge' && managed) {
    // ebtables-nft (1.8.9) deletes and re-adds every user chain's policy rule (`counter accept`, last in the chain)
    // at each `ebtables -L`: listed after the trace, it has a later handle. A handle no longer listed, in a chain whose
    // last rule is such a policy rule with a later handle and the same verdict, is that rule.
    const last = inChain.reduce<NftListedRule | undefined>(
      (a, r) => (a && a.ruleNumber > r.ruleNumber ? a : r),
      undefined,
    );
    const policy = last && /^(?:counter(?: packets \d+ bytes \d+)? )?(accept|drop|return)$/.exec(last.text.trim());
    if (last?.handle !== undefined && last.handle > e.handle && policy?.[1] === e.verdict) nft = last;
  }
  if (!nft && e.tool === 'nft-monitor' && e.ruleText !== undefined) {
    const key = nftRuleKey(e.ruleText);
    // Of rules that read the same and decide, the kernel always stops at the first: the later ones are shadowed.
    // Rules that do not decide (`continue`) all match: which one this was cannot be told without its handle.
    const same = inChain.filter((r) => nftRuleKey(r.text) === key);
    if (same.length === 1 || e.verdict !== 'continue') nft = same[0];
  }
  if (isSetupText(e.ruleText) || isSetupText(nft?.text)) return { why: 'the operator’s tracing rule', setup: true };
  if (!managed) return { why: `the model has no nft table ${nftTable} (not made by libvirt)`, outside: true };
  // xtables-monitor prints ip/ip6 rules in save syntax: that is the listing's text.
  if (e.tool === 'xtables-monitor' && e.ruleText !== undefined && source !== 'ebtables') {
    const text = space(e.ruleText);
    const at = (L?.xtables ?? []).find(
      (r) => r.source === source && r.table === e.table && r.chain === e.chain && space(r.text) === text,
    );
    return { listed: { source, table: e.table, chain: e.chain, ruleNumber: at?.ruleNumber ?? 0, text: e.ruleText } };
  }
  if (!nft)
    return {
      why:
        L === undefined || L.nft.length === 0
          ? `no nft listing of the host to find rule ${e.handle !== undefined ? `handle ${e.handle}` : `'${e.ruleText ?? ''}'`} of ${nftTable} ${e.chain} (collect 'nft -a list ruleset')`
          : `no rule ${e.handle !== undefined ? `with handle ${e.handle}` : `reading '${e.ruleText ?? ''}'`} in ${nftTable} ${e.chain} of the host's nft listing${e.handle !== undefined && !inChain.some((r) => r.handle !== undefined) ? ' (listed without -a: no handles)' : ''}`,
    };
  const listed = (L?.xtables ?? []).find(
    (r) => r.source === source && r.table === e.table && r.chain === e.chain && r.ruleNumber === nft!.ruleNumber,
  );
  if (!listed && source === 'ebtables') {
    // ebtables-nft keeps a chain's policy as a last rule (`counter accept`) that `ebtables -L` does not list.
    const listedInChain = (L?.xtables ?? []).filter(
      (r) => r.source === source && r.table === e.table && r.chain === e.chain && r.ruleNumber !== undefined,
    ).length;
    const lastInChain = maxOf(inChain.map((r) => r.ruleNumber));
    if (
      nft.ruleNumber === lastInChain &&
      nft.ruleNumber === listedInChain + 1 &&
      /^(counter( packets \d+ bytes \d+)? )?(accept|drop|return)$/.test(nft.text)
    )
      return {
        listed: { source, table: e.table, chain: e.chain, text: `policy: ${e.verdict.toUpperCase()}` },
      };
  }
  if (!listed)
    return {
      why: `rule ${nft.ruleNumber} of ${nftTable} ${e.chain} (${nft.pos.file}:${nft.pos.line}) is not in the host's ${source} ${e.table} listing`,
    };
  return { listed };
}

/** The interface a base chain's packet is placed at. */
function ifaceOf(e: TraceEvent, hook: string): string | undefined {
  const p = e.packet;
  if (!p) return undefined;
  return OUTPUT_SIDE.has(hook) ? (p.oif ?? p.iif) : (p.iif ?? p.oif);
}

function whereOf(scenario: Scenario | undefined, node: string, iface: string | undefined): string | undefined {
  const n = scenario?.nodes.get(node);
  const i = iface !== undefined ? n?.interfaces.get(iface) : undefined;
  if (!i) return undefined;
  return i.master !== undefined ? `port ${iface} of bridge ${i.master}` : `interface ${iface}`;
}

/** Places and joins every event of the files. */
export function placeTraceEvents(
  inputs: readonly KernelTraceInput[],
  hostRules: ReadonlyMap<string, HostRules>,
  listings: ReadonlyMap<string, NodeListings>,
  scenario: Scenario | undefined,
  style: 'nft' | 'legacy' = 'nft',
): PlacedEvent[] {
  const out: PlacedEvent[] = [];
  for (const f of inputs) {
    const rules = hostRules.get(f.node);
    const idx = rules ? new ModelIndex(rules, style) : undefined;
    const L = listings.get(f.node);
    // The base chain of each event: the chain whose packet line it follows.
    let hook = '';
    let lastPacket: TracePacket | undefined;
    const setupTables = new Set<string>();
    for (const e of f.events) {
      if (e.packet !== lastPacket) {
        lastPacket = e.packet;
        hook = e.chain;
      }
      const iface = ifaceOf(e, hook);
      const where = whereOf(scenario, f.node, iface);
      const base = { node: f.node, ...(iface !== undefined ? { iface } : {}), ...(where ? { where } : {}), event: e };
      // A rule of the host's own native nft rule set the model read: by its nft text (or, from xtables-monitor, by
      // its handle in the host's nft listing), or the chain's policy.
      if (idx && (e.family === 'ip' || e.family === 'inet')) {
        const byHandle =
          e.handle !== undefined
            ? L?.nft.find((r) => r.table === `${e.family} ${e.table}` && r.chain === e.chain && r.handle === e.handle)
            : undefined;
        const text = e.tool === 'nft-monitor' ? e.ruleText : byHandle?.text;
        const end = e.what === 'return' ? idx.nftChain(`${e.family} ${e.table}`, e.chain) : undefined;
        const modelHook = idx.nftHook(`${e.family} ${e.table}`, hook);
        const hooked = modelHook ? { ...base, modelHook } : base;
        if (end) {
          out.push({
            ...hooked,
            listed: { source: 'nft', table: `${e.family} ${e.table}`, chain: e.chain, text: 'end of chain (return)' },
            rule: { chain: end.name, text: 'end of chain (return)', origin: end.origin },
            by: 'chain-end',
          });
          continue;
        }
        const native =
          e.what === 'rule' && text !== undefined
            ? idx.nftRule(`${e.family} ${e.table}`, e.chain, text)
            : e.what === 'policy'
              ? idx.nftRule(`${e.family} ${e.table}`, e.chain, undefined)
              : 'no-chain';
        if (typeof native !== 'string') {
          const listed = {
            source: 'nft' as const,
            table: `${e.family} ${e.table}`,
            chain: e.chain,
            ...(native.ruleNumber !== undefined ? { ruleNumber: native.ruleNumber } : {}),
            text: native.text,
          };
          if (e.what === 'policy' && native.text !== `policy: ${e.verdict.toUpperCase()}`)
            out.push({
              ...hooked,
              listed,
              why: `the kernel's ${e.chain} policy is ${e.verdict.toUpperCase()}, the model's ${native.text}`,
            });
          else out.push({ ...hooked, listed, rule: native, by: 'text' });
          continue;
        }
      }
      const loc = locate(e, L);
      if ('why' in loc) {
        if (loc.setup) setupTables.add(`${e.family} ${e.table}`);
        const setup = loc.setup === true || (e.what !== 'rule' && setupTables.has(`${e.family} ${e.table}`));
        out.push(
          setup ? { ...base, setup: true } : { ...base, why: loc.why, ...(loc.outside ? { outsideModel: true } : {}) },
        );
        continue;
      }
      if (!scenario?.nodes.has(f.node)) {
        out.push({ ...base, listed: loc.listed, why: `the scenario has no node ${f.node}` });
        continue;
      }
      if (!idx) {
        out.push({
          ...base,
          listed: loc.listed,
          why: `the model has no rules for ${f.node} (not a hypervisor of the scenario)`,
        });
        continue;
      }
      if (e.what === 'return') {
        const c = idx.chain(loc.listed);
        if (c)
          out.push({
            ...base,
            listed: loc.listed,
            rule: { chain: c.name, text: 'end of chain (return)', origin: c.origin },
            by: 'chain-end',
          });
        else
          out.push({
            ...base,
            listed: loc.listed,
            why: `the model has no chain ${e.chain} in ${loc.listed.source} ${e.table}`,
          });
        continue;
      }
      const m = modelRuleFor(idx, loc.listed);
      if ('why' in m) {
        // The policy of a table that holds the operator's tracing rule (iptables raw) and no rule of the model.
        if (e.what !== 'rule' && setupTables.has(`${e.family} ${e.table}`)) out.push({ ...base, setup: true });
        else
          out.push({
            ...base,
            listed: loc.listed,
            why: m.why,
            ...(idx.at(loc.listed, loc.listed.ruleNumber) === 'no-table' ? { outsideModel: true } : {}),
          });
        continue;
      }
      if (e.what === 'policy' && space(m.rule.text) !== space(loc.listed.text)) {
        out.push({
          ...base,
          listed: loc.listed,
          why: `the kernel's ${e.chain} policy is ${e.verdict.toUpperCase()}, the model's ${m.rule.text}`,
        });
        continue;
      }
      out.push({ ...base, listed: loc.listed, rule: m.rule, by: m.by });
    }
  }
  return out;
}

const protoNames: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 132: 'sctp' };

/** Whether a traced packet is this frame of the model (addresses, protocol, ports; ARP: operation and MACs). */
export function packetIsFrame(p: TracePacket, f: EthernetFrame): boolean {
  const l3 = f.payload;
  if (p.etherSrc !== undefined && p.etherSrc !== f.src) return false;
  if (p.etherDst !== undefined && p.etherDst !== f.dst) return false;
  if (l3.kind === 'arp') {
    if (p.etherType !== 'arp') return false;
    return p.arpOp === undefined || (p.arpOp === 'request' ? 1 : 2) === l3.op;
  }
  if (l3.kind !== 'ipv4') return false;
  if (p.ipSrc !== formatIpv4(l3.src) || p.ipDst !== formatIpv4(l3.dst)) return false;
  const proto = protoNames[l3.protocol] ?? String(l3.protocol);
  if (p.protocol !== undefined && p.protocol !== proto) return false;
  const l4 = l3.payload;
  if (l4.kind === 'tcp' || l4.kind === 'udp') {
    if (p.sport !== undefined && p.sport !== l4.srcPort) return false;
    if (p.dport !== undefined && p.dport !== l4.dstPort) return false;
  }
  // The model's SYN is not the connection's later segments (conntrack rules tell them apart).
  if (l4.kind === 'tcp' && p.tcpFlags !== undefined && p.tcpFlags !== l4.flags) return false;
  return true;
}

/**
 * Whether a traced packet is the frame of a hop, or, where the model's nat table DNATed it there (a DNAT/REDIRECT step
 * of nat PREROUTING or OUTPUT), that frame with its new destination and port — the hooks after the nat one (filter
 * FORWARD/INPUT, mangle POSTROUTING, nat POSTROUTING) trace the rewritten packet. Only the first packet of a
 * connection is seen by the nat table; conntrack rewrites the rest of it, and no nat event is traced for them.
 */
export function packetIsHop(p: TracePacket, h: Pick<Hop, 'frame' | 'steps'>): boolean {
  if (packetIsFrame(p, h.frame)) return true;
  const l3 = h.frame.payload;
  if (l3.kind !== 'ipv4') return false;
  for (const s of h.steps) {
    if (s.kind !== 'netfilter' || !s.dnat) continue;
    const l4 = l3.payload;
    const port = s.dnat.toPort;
    const payload =
      port !== undefined && (l4.kind === 'tcp' || l4.kind === 'udp') ? { ...l4, dstPort: port } : l3.payload;
    if (packetIsFrame(p, { ...h.frame, payload: { ...l3, dst: s.dnat.to, payload } })) return true;
  }
  return false;
}

/** One base-chain pass of one packet on one node: its events in order. */
interface Pass {
  readonly node: string;
  readonly hook: string;
  readonly family: string;
  readonly table: string;
  readonly packet: TracePacket;
  readonly events: PlacedEvent[];
  /** Only the operator's tracing rule, and no other chain of its hook under the same trace id. */
  alone?: boolean;
}

/** Marks the passes of only the operator's tracing rule that no other chain of the same hook (trace id) shares. */
function markAlone(passes: readonly Pass[]): void {
  const key = (p: Pass) => `${p.node}\t${p.events[0]!.event.pos.file}\t${p.events[0]!.event.id}`;
  const decided = new Set(passes.filter((p) => !p.events.every((e) => e.setup)).map(key));
  for (const p of passes) if (p.events.every((e) => e.setup) && !decided.has(key(p))) p.alone = true;
}

function passesOf(placed: readonly PlacedEvent[]): Pass[] {
  const out: Pass[] = [];
  let cur: Pass | undefined;
  for (const p of placed) {
    const e = p.event;
    if (!e.packet) continue;
    if (!cur || cur.packet !== e.packet || cur.node !== p.node) {
      cur = { node: p.node, hook: e.chain, family: e.family, table: e.table, packet: e.packet, events: [] };
      out.push(cur);
    }
    cur.events.push(p);
  }
  return out;
}

const FAMILY: Readonly<Record<string, NetfilterStep['family']>> = { bridge: 'bridge', ip: 'ipv4' };

function at(p: PlacedEvent): string {
  const e = p.event;
  return `${e.tool === 'nft-monitor' ? 'nft monitor trace' : 'xtables-monitor'} id ${e.id}, ${e.pos.file}:${e.pos.line}`;
}

function ruleName(chain: string, n: number | undefined): string {
  return `${chain} ${n !== undefined ? `rule ${n}` : 'policy'}`;
}

function describe(p: PlacedEvent): string {
  if (p.rule) return `${ruleName(p.rule.chain, p.rule.ruleNumber)} (${p.rule.text})`;
  const l = p.listed;
  if (l) return `${ruleName(l.chain, l.ruleNumber || undefined)} (${l.text})`;
  return `${p.event.family} ${p.event.table} ${p.event.chain} ${p.event.ruleText ?? p.event.what}`;
}

/** The per-probe verdicts of the traced packets (and of kernel drops) against the model's traces. */
export function traceProbeEvidence(
  report: Pick<Report, 'traces'>,
  placed: readonly PlacedEvent[],
  drops: readonly PlacedDrop[],
  traced: ReadonlySet<string>,
): { evidence: ProbeEvidence; marks: TraceMark[] }[] {
  const passes = passesOf(placed);
  markAlone(passes);
  return report.traces.map((t) => oneProbe(t, passes, drops, traced));
}

/** The ports of `bridge` on `node` that a probe's hops cross (empty when `bridge` is not a bridge of the walk). */
function bridgePorts(t: Trace, node: string, bridge: string): ReadonlySet<string> {
  const out = new Set<string>();
  for (const h of t.hops)
    for (const s of h.steps)
      if (s.kind === 'bridge' && s.bridge === bridge && h.place.node === node) {
        if (h.place.iface !== undefined) out.add(h.place.iface);
        for (const p of s.ports) out.add(p);
      }
  return out;
}

function oneProbe(
  t: Trace,
  passes: readonly Pass[],
  drops: readonly PlacedDrop[],
  traced: ReadonlySet<string>,
): { evidence: ProbeEvidence; marks: TraceMark[] } {
  const probe = t.probe.name;
  // Facts by what they say; the first traced packet is cited, the others counted.
  type Fact = { at: string; n: number; tail: string };
  const confirms = new Map<string, Fact>();
  const contradicts = new Map<string, Fact>();
  const notes: string[] = [];
  const outside = new Map<string, Fact>();
  const marks = new Map<string, TraceMark>();
  const add = (
    m: Map<string, Fact>,
    s: string,
    where: string,
    tail = '',
    place?: Omit<TraceMark, 'agree' | 'text' | 'at'>,
  ) => {
    const x = m.get(s);
    if (x) x.n++;
    else m.set(s, { at: where, n: 1, tail });
    if (place && !marks.has(s)) marks.set(s, { ...place, agree: m === confirms, text: s, at: where });
  };
  const byId = new Map(t.hops.map((h) => [h.id, h]));
  const path = t.path.map((id) => byId.get(id)).filter((h): h is Hop => h !== undefined);
  const nodes = new Set(t.hops.map((h) => h.place.node));
  let matchedAny = false;
  for (const pass of passes) {
    if (!nodes.has(pass.node)) continue;
    // A native nft base chain stands for the model's hook it is a base chain of (`inet firewalld filter_FORWARD`:
    // the model's filter FORWARD).
    const mh = pass.events[0]!.modelHook;
    const fam = mh ? 'ipv4' : FAMILY[pass.family];
    const table = mh?.table ?? pass.table;
    const hook = mh?.hook ?? pass.hook;
    const iface = ifaceOf(pass.events[0]!.event, pass.hook);
    // The probe's hops at that node and port whose frame is this packet (the whole walk: flooded copies too). A
    // bridged frame br_netfilter hands to the IPv4 hooks is traced with the bridge as its interfaces (`iif "br0"
    // oif "br0"`): the hops at a port of that bridge.
    const ports = iface !== undefined ? bridgePorts(t, pass.node, iface) : undefined;
    const hops = t.hops.filter(
      (h) =>
        h.place.node === pass.node &&
        (h.place.iface === iface || (h.place.iface !== undefined && ports?.has(h.place.iface) === true)) &&
        packetIsHop(pass.packet, h),
    );
    if (hops.length === 0) continue;
    matchedAny = true;
    const step = hops
      .flatMap((h) => h.steps)
      .find(
        (s): s is NetfilterStep => s.kind === 'netfilter' && s.family === fam && s.table === table && s.hook === hook,
      );
    const last = pass.events[pass.events.length - 1]!;
    const kernelDrops = last.event.verdict === 'drop';
    const decided = last.event.verdict === 'drop' || last.event.verdict === 'accept' || last.event.what === 'policy';
    const place = `${pass.node} ${iface ?? ''}`.trim();
    const on = { node: pass.node, ...(iface !== undefined ? { iface } : {}), hops: hops.map((h) => h.id) };
    const hookName = `${pass.family} ${pass.table} ${pass.hook}`;
    if (pass.events.every((p) => p.setup)) {
      // Only the operator's tracing rule saw the packet at this hook: no other chain of the host decided on it
      // (another chain of the hook prints its events under the same trace id).
      if (pass.family !== 'bridge' || !pass.alone) continue;
      const mine = hops
        .flatMap((h) => h.steps)
        .find((s): s is NetfilterStep => s.kind === 'netfilter' && s.family === 'bridge' && s.hook === 'PREROUTING');
      const seen = pass.events[0]!;
      if (mine && (mine.verdict === 'DROP' || mine.ruleNumber !== undefined))
        add(
          contradicts,
          `the kernel and the model disagree at ${place}: no chain of the host but the operator's tracing rule saw ${probe} at bridge prerouting (it passed), the model ${mine.verdict === 'DROP' ? 'drops' : 'decides on'} it at ${ruleName(mine.chain, mine.ruleNumber)} (${mine.ruleText})`,
          at(seen),
          '',
          on,
        );
      else
        add(
          confirms,
          `the kernel passes ${probe} at ${place}: no chain of the host but the operator's tracing rule saw it at bridge prerouting, and no rule of the model decides there`,
          at(seen),
          '',
          on,
        );
      continue;
    }
    for (const p of pass.events)
      if (!p.rule && p.why !== undefined && p.outsideModel && p.event.verdict !== 'drop')
        add(
          outside,
          `the kernel traversed ${describe(p)} at ${place} for ${probe}, outside the model (${p.why})`,
          at(p),
        );
      else if (!p.rule && p.why !== undefined)
        add(
          contradicts,
          `the kernel and the model disagree at ${place}: the kernel traversed ${describe(p)} for ${probe}, which the model does not have — ${p.why}`,
          at(p),
          '',
          on,
        );
    if (!decided) continue;
    // An accept ends only its base chain: before the hook's last base chain, the model's drop may be in a later one
    // (that pass is set against it) — unless the model decided in this very base chain.
    if (mh && !mh.last && !kernelDrops && step?.nft?.chain !== mh.chain) continue;
    const model = step
      ? { drops: step.verdict === 'DROP', where: ruleName(step.chain, step.ruleNumber) }
      : { drops: false, where: undefined };
    const kernelWhere = last.rule ? ruleName(last.rule.chain, last.rule.ruleNumber) : undefined;
    const origin = last.rule ? ` — ${renderOriginChain(last.rule.origin)}` : '';
    if (kernelDrops !== model.drops)
      add(
        contradicts,
        `the kernel and the model disagree at ${place} (${hookName}): the kernel ${kernelDrops ? 'dropped' : 'passed'} ${probe} at ${describe(last)}, the model ${model.drops ? `drops it at ${model.where}` : model.where ? `passes it at ${model.where}` : 'passes it (no rule of that hook decides)'}`,
        at(last),
        '',
        { ...on, ...(last.rule ? { rule: last.rule } : {}) },
      );
    else if (
      model.where !== undefined &&
      kernelWhere !== undefined &&
      kernelWhere !== model.where &&
      // Both pass: only two different rules disagree (a policy — ebtables-nft keeps a user chain's RETURN policy as
      // a last accepting rule — and the chain's end the model walks on to are the same pass).
      (kernelDrops || (last.rule?.ruleNumber !== undefined && step?.ruleNumber !== undefined))
    )
      add(
        contradicts,
        `the kernel and the model disagree at ${place} (${hookName}): the kernel decided ${probe} at ${describe(last)}, the model at ${model.where}`,
        at(last),
        '',
        { ...on, ...(last.rule ? { rule: last.rule } : {}) },
      );
    else
      add(
        confirms,
        `the kernel ${kernelDrops ? 'drops' : 'passes'} ${probe} at ${place} ${kernelWhere ?? describe(last)} as the model does`,
        at(last),
        origin,
        { ...on, ...(last.rule ? { rule: last.rule } : {}) },
      );
  }
  // Kernel drops by reason at the nodes this probe's model trace ends on.
  for (const d of drops) {
    const tuple = d.event.tuple;
    if (d.seen && tuple && nodes.has(d.node)) {
      // pwru saw a packet of this probe (its addresses) on its way: where the model takes it, or not.
      const here = t.hops.filter((h) => {
        const l3 = h.frame.payload;
        return (
          h.place.node === d.node &&
          l3.kind === 'ipv4' &&
          formatIpv4(l3.src) === tuple.src &&
          formatIpv4(l3.dst) === tuple.dst
        );
      });
      const iface = d.event.iface;
      if (here.length === 0 || iface === undefined) continue;
      const where = `${d.event.pos.file}:${d.event.pos.line}`;
      if (here.some((h) => h.place.iface === iface))
        add(
          confirms,
          `the kernel saw ${probe} at ${d.node} ${iface}, where the model takes it`,
          where,
          ` (${d.event.location ?? 'pwru'})`,
          { node: d.node, iface, hops: here.filter((h) => h.place.iface === iface).map((h) => h.id) },
        );
      else
        add(
          contradicts,
          `the kernel and the model disagree at ${d.node}: the kernel saw ${probe} at ${iface} (${d.event.location ?? 'pwru'}), where the model never takes it (it does at ${[...new Set(here.map((h) => h.place.iface ?? h.place.node))].join(', ')})`,
          where,
          '',
          { node: d.node, iface, hops: [] },
        );
      continue;
    }
    if (!d.kind || !nodes.has(d.node)) continue;
    const mine = tuple
      ? t.hops.some((h) => {
          const l3 = h.frame.payload;
          return l3.kind === 'ipv4' && formatIpv4(l3.src) === tuple.src && formatIpv4(l3.dst) === tuple.dst;
        })
      : d.event.protocol === undefined ||
        t.hops.some((h) => h.place.node === d.node && h.frame.etherType === d.event.protocol);
    if (!mine) continue;
    const reason = `${d.event.reason ?? 'a drop'}${d.event.location ? ` at ${d.event.location}` : ''}`;
    const where = `${d.event.pos.file}:${d.event.pos.line}`;
    // Where the model's trace ends at that node (the hop the kernel's drop stands beside).
    const ends = t.hops.filter((h) => h.place.node === d.node && h.end !== undefined);
    const on = {
      node: d.node,
      ...(d.event.iface !== undefined ? { iface: d.event.iface } : {}),
      hops: ends.map((h) => h.id),
    };
    if (d.probes.includes(probe))
      add(
        confirms,
        `the kernel of ${d.node} dropped ${tuple ? probe : `a packet of ${probe}'s protocol`} with ${reason}, where the model's ${probe} ends (${d.kind.kind})`,
        where,
        '',
        on,
      );
    else if (tuple)
      add(
        contradicts,
        `the kernel and the model disagree at ${d.node}: the kernel dropped ${probe} with ${reason} (${d.kind.kind}), the model's ${probe} does not end so there`,
        where,
        '',
        { ...on, hops: [] },
      );
    else if (d.probes.length === 0)
      // perf/tracefs name no addresses and no network namespace: such a drop may be any packet of the machine.
      add(
        outside,
        `the kernel of ${d.node} dropped a packet of ${probe}'s protocol with ${reason} (${d.kind.kind}), where the model's ${probe} does not end so; the event names no addresses, so it may be another packet (not held against the model)`,
        where,
      );
  }
  const touched = path.some((h) => traced.has(h.place.node));
  if (!matchedAny && touched)
    notes.push(
      `a kernel trace covers ${[...new Set(path.filter((h) => traced.has(h.place.node)).map((h) => h.place.node))].join(', ')}, but no traced packet is ${probe}'s (was the request reproduced while tracing?)`,
    );
  const fmt = (m: Map<string, Fact>) =>
    [...m].map(([s, x]) => `${s} (${x.at}${x.n > 1 ? `; ${x.n} events in all` : ''})${x.tail}`);
  const verdict: EvidenceVerdict =
    contradicts.size > 0 ? 'contradicted' : confirms.size > 0 ? 'confirmed' : 'no-evidence';
  const facts = [...fmt(confirms), ...fmt(contradicts), ...fmt(outside), ...notes];
  if (facts.length === 0) facts.push(`no kernel trace covers the nodes ${probe} crosses`);
  return { evidence: { probe, verdict, facts }, marks: [...marks.values()] };
}

/** Kernel drop events placed: their kind in the model and the probes whose model trace ends so at that node. */
export function placeDrops(report: Pick<Report, 'traces'>, inputs: readonly KernelTraceInput[]): PlacedDrop[] {
  const out: PlacedDrop[] = [];
  for (const f of inputs)
    for (const event of f.drops) {
      if (!event.drop) {
        out.push({ node: f.node, event, probes: [], seen: true });
        continue;
      }
      const kind = dropKindOf(event);
      if (!kind) {
        out.push({
          node: f.node,
          event,
          probes: [],
          why: `the model has no counterpart of the kernel's drop reason ${event.reason ?? `at ${event.location ?? 'an unknown place'}`}`,
        });
        continue;
      }
      const probes = report.traces
        .filter((t) =>
          t.hops.some(
            (h) =>
              h.place.node === f.node &&
              h.end !== undefined &&
              kind.dispositions.includes(h.end.disposition) &&
              (kind.causes === undefined || (h.end.cause !== undefined && kind.causes.includes(h.end.cause))),
          ),
        )
        .map((t) => t.probe.name);
      out.push({ node: f.node, event, kind, probes });
    }
  return out;
}

/** The whole join of kernel traces for a report. */
export function joinKernelTraces(
  report: Pick<Report, 'traces'>,
  inputs: readonly KernelTraceInput[],
  hostRules: ReadonlyMap<string, HostRules>,
  listings: ReadonlyMap<string, NodeListings>,
  scenario: Scenario | undefined,
  style: 'nft' | 'legacy' = 'nft',
): KernelTraceReport {
  const placed = placeTraceEvents(inputs, hostRules, listings, scenario, style);
  const drops = placeDrops(report, inputs);
  const traced = new Set(inputs.filter((f) => f.events.length > 0 || f.drops.length > 0).map((f) => f.node));
  const perProbe = traceProbeEvidence(report, placed, drops, traced);
  return {
    files: inputs.map((f) => ({ node: f.node, file: f.file, events: f.events.length, drops: f.drops.length })),
    joined: placed.filter((p) => p.rule !== undefined),
    setup: placed.filter((p) => p.setup).length,
    unmapped: placed.filter((p) => !p.rule && !p.setup),
    drops,
    probes: perProbe.map((p) => p.evidence),
    marks: perProbe.map((p) => p.marks),
  };
}

/** The kernel trace section of `diagnose` (text). */
export function renderKernelTraces(k: KernelTraceReport): string {
  const L: string[] = ['', 'Live evidence (kernel traces):'];
  for (const f of k.files) L.push(`  ${f.node}: ${f.file}: ${f.events} netfilter trace events, ${f.drops} drop events`);
  for (const p of k.probes) {
    L.push(`  ${p.probe}: ${p.verdict === 'no-evidence' ? 'no evidence' : p.verdict}`);
    for (const f of p.facts) L.push(`    - ${f}`);
  }
  L.push(
    `  trace events joined to the model: ${k.joined.length}${k.setup > 0 ? ` (and ${k.setup} of the operator's tracing rules)` : ''}`,
  );
  const seen = new Map<string, number>();
  for (const j of k.joined) {
    const line = `    ${j.node}${j.where ? ` ${j.where}` : j.iface ? ` ${j.iface}` : ''}: ${j.event.family} ${j.event.table} ${ruleName(j.rule!.chain, j.rule!.ruleNumber)} (verdict ${j.event.verdict}) — ${renderOriginChain(j.rule!.origin)}`;
    seen.set(line, (seen.get(line) ?? 0) + 1);
  }
  for (const [line, n] of seen) L.push(n > 1 ? `${line} ×${n}` : line);
  if (k.unmapped.length > 0) {
    L.push(`  trace events the model cannot map: ${k.unmapped.length}`);
    for (const u of k.unmapped)
      L.push(`    ${u.node}${u.iface ? ` ${u.iface}` : ''}: ${describe(u)} (${at(u)}) — ${u.why}`);
  }
  const onTheWay = k.drops.filter((d) => d.seen);
  if (onTheWay.length > 0) L.push(`  packets seen on their way (pwru): ${onTheWay.length}`);
  const drops = k.drops.filter((d) => !d.seen);
  if (drops.length > 0) {
    L.push(`  kernel drops: ${drops.length}`);
    for (const d of drops)
      L.push(
        `    ${d.node}: ${d.event.reason ?? '(no reason)'}${d.event.location ? ` at ${d.event.location}` : ''} (${d.event.pos.file}:${d.event.pos.line}) — ${d.kind ? `${d.kind.kind}${d.probes.length > 0 ? `; the model ends ${d.probes.join(', ')} so there` : '; no probe of the model ends so there'}` : d.why}`,
      );
  }
  return `${L.join('\n')}\n`;
}
