/**
 * One Proxmox node's firewall, hop by hop: the netfilter hook invocations an IPv4 packet meets between two endpoints
 * of the node (the node itself, a port of a bridge, a guest NIC behind its `fwbr` firewall bridge), each evaluated on
 * the compiled iptables rules with the bridge-netfilter interface fields the kernel gives that hop (`-i`/`-o` = the
 * bridge, `--physdev-in/out` = its ports). The path is the one br_netfilter takes through
 * `tap ─ fwbr ─ fwln ═ fwpr ─ vmbr` (fact sheet §2.1, and pve-firewall's own simulator):
 * a guest's OUT chain runs on its fwbr hop, the packet then crosses the vmbr (or is routed by the host), and the
 * destination guest's IN chain runs on that guest's fwbr hop. The netfilter mark is carried from hop to hop, so an
 * OUT accept ("mark and go on") is seen by the later hops. Never throws.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { evaluateIptables, type IptEvalContext, type IptEvalResult } from '../netfilter/iptables-eval.ts';
import type { CtState, IptTable } from '../netfilter/iptables-model.ts';
import { appendAll } from '../source/arrays.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { PveCompiled, PveNodeInput } from './compile.ts';
import { type GuestConfig, type GuestNic, guestIface } from './guest-config.ts';
import { ipsetLookup, pveFilterTable, pveIpsets } from './model.ts';

export type PveEndpoint =
  | { readonly kind: 'host' }
  | { readonly kind: 'port'; readonly bridge: string; readonly port: string }
  | { readonly kind: 'guest'; readonly vmid: string; readonly netid: string };

/** A hook invocation: which built-in chain runs and with which interface fields. */
export interface PveHopSpec {
  readonly hook: 'INPUT' | 'OUTPUT' | 'FORWARD';
  /** Where: `fwbr100i0`, `vmbr0`, `host`. */
  readonly at: string;
  readonly inIface?: string;
  readonly outIface?: string;
  readonly physdevIn?: string;
  readonly physdevOut?: string;
}

export interface PveHop extends PveHopSpec {
  readonly result: IptEvalResult;
}

export interface PveSimResult {
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT';
  readonly hops: readonly PveHop[];
  readonly problems: readonly string[];
}

/** The compiled node, ready to evaluate (built once, used for many packets). */
export interface PveNodeModel {
  readonly input: PveNodeInput;
  readonly compiled: PveCompiled;
  readonly filter4: IptTable;
  readonly ipsetContains: NonNullable<IptEvalContext['ipsetContains']>;
  readonly problems: readonly string[];
}

export function pveNodeModel(input: PveNodeInput, compiled: PveCompiled): PveNodeModel {
  const t = pveFilterTable(compiled.filter4, 'ipv4');
  return {
    input,
    compiled,
    filter4: t.table,
    ipsetContains: ipsetLookup(pveIpsets(compiled.ipsets)),
    problems: t.issues.map((i) => i.message),
  };
}

interface GuestPort {
  readonly guest: GuestConfig;
  readonly nic: GuestNic;
  readonly iface: string;
  readonly bridge: string;
}

/** The guest NIC of an endpoint, or a string saying why there is none. */
export function findGuestNic(input: PveNodeInput, vmid: string, netid: string): GuestPort | string {
  const g = input.guests.find((x) => x.config.vmid === vmid);
  if (!g) return `no guest ${vmid} on node ${input.nodeName}`;
  const nic = g.config.nics.find((n) => n.netid === netid);
  if (!nic) return `guest ${vmid} has no ${netid}`;
  if (nic.bridge === undefined) return `guest ${vmid} ${netid} has no bridge`;
  return { guest: g.config, nic, iface: guestIface(g.config, nic), bridge: nic.bridge };
}

/** The hook invocations between two endpoints of one node, in order. */
export function pveHopPath(input: PveNodeInput, from: PveEndpoint, to: PveEndpoint): PveHopSpec[] | string {
  const guestOf = (e: PveEndpoint & { kind: 'guest' }) => findGuestNic(input, e.vmid, e.netid);
  const hops: PveHopSpec[] = [];
  const fwbrIn = (g: GuestPort): PveHopSpec => ({
    hook: 'FORWARD',
    at: `fwbr${g.guest.vmid}i${g.nic.index}`,
    inIface: `fwbr${g.guest.vmid}i${g.nic.index}`,
    outIface: `fwbr${g.guest.vmid}i${g.nic.index}`,
    physdevIn: `fwln${g.guest.vmid}i${g.nic.index}`,
    physdevOut: g.iface,
  });
  let toGuest: GuestPort | undefined;
  let toBridge: string | undefined;
  let toPort: string | undefined;
  if (to.kind === 'guest') {
    const g = guestOf(to);
    if (typeof g === 'string') return g;
    if (g.nic.firewall) toGuest = g;
    else toPort = g.iface;
    toBridge = g.bridge;
  } else if (to.kind === 'port') {
    toBridge = to.bridge;
    toPort = to.port;
  }
  // where the packet is, once on a bridge
  let bridge: string;
  let physdevIn: string | undefined;
  if (from.kind === 'host') {
    if (to.kind === 'host') return 'from and to are both the host';
    hops.push({ hook: 'OUTPUT', at: 'host', inIface: 'lo', outIface: toBridge! });
    if (toGuest) hops.push(fwbrIn(toGuest));
    return hops;
  }
  if (from.kind === 'port') {
    bridge = from.bridge;
    physdevIn = from.port;
  } else {
    const g = guestOf(from);
    if (typeof g === 'string') return g;
    bridge = g.bridge;
    if (g.nic.firewall) {
      const fwbr = `fwbr${g.guest.vmid}i${g.nic.index}`;
      hops.push({
        hook: 'FORWARD',
        at: fwbr,
        inIface: fwbr,
        outIface: fwbr,
        physdevIn: g.iface,
        physdevOut: `fwln${g.guest.vmid}i${g.nic.index}`,
      });
      physdevIn = `fwpr${g.guest.vmid}p${g.nic.index}`;
    } else physdevIn = g.iface;
  }
  if (to.kind === 'host') {
    hops.push({ hook: 'INPUT', at: 'host', inIface: bridge, outIface: 'lo', physdevIn });
    return hops;
  }
  const same = bridge === toBridge;
  const out = toGuest ? `fwpr${toGuest.guest.vmid}p${toGuest.nic.index}` : toPort;
  hops.push({
    hook: 'FORWARD',
    at: same ? bridge : `${bridge} → ${toBridge} (routed by the host)`,
    inIface: bridge,
    outIface: toBridge!,
    physdevIn,
    ...(same && out !== undefined ? { physdevOut: out } : {}),
  });
  if (toGuest) hops.push(fwbrIn(toGuest));
  return hops;
}

export interface PveSimOptions {
  /** Conntrack state of the packet on every hop (default NEW: the first packet of a flow). */
  readonly ctState?: CtState;
  /** Address types as the node sees them (default: multicast/broadcast by address, else UNICAST). */
  readonly addrType?: IptEvalContext['addrType'];
}

/** Walks the packet through the node's firewall from one endpoint to another. */
export function pveSimulate(
  model: PveNodeModel,
  frame: EthernetFrame,
  from: PveEndpoint,
  to: PveEndpoint,
  opts: PveSimOptions = {},
): PveSimResult {
  const path = pveHopPath(model.input, from, to);
  if (typeof path === 'string') return { verdict: 'DROP', hops: [], problems: [path] };
  const hops: PveHop[] = [];
  const problems: string[] = [...model.problems];
  let mark = 0;
  for (const h of path) {
    const ctx: IptEvalContext = {
      ...(h.inIface !== undefined ? { inIface: h.inIface } : {}),
      ...(h.outIface !== undefined ? { outIface: h.outIface } : {}),
      ...(h.physdevIn !== undefined ? { physdevIn: h.physdevIn } : {}),
      ...(h.physdevOut !== undefined ? { physdevOut: h.physdevOut } : {}),
      physdevIsBridged: h.physdevIn !== undefined && h.physdevOut !== undefined,
      ctState: opts.ctState ?? 'NEW',
      ipsetContains: model.ipsetContains,
      mark,
      ...(opts.addrType ? { addrType: opts.addrType } : {}),
    };
    const result = evaluateIptables(model.filter4, h.hook, frame, ctx);
    appendAll(problems, result.problems);
    hops.push({ ...h, result });
    mark = result.mark;
    if (result.verdict !== 'ACCEPT') return { verdict: result.verdict, hops, problems };
  }
  return { verdict: 'ACCEPT', hops, problems };
}

/** The MAC a packet from this endpoint carries (the guest NIC's; a fixed one otherwise). */
export function endpointMac(input: PveNodeInput, e: PveEndpoint): Mac {
  if (e.kind === 'guest') {
    const g = findGuestNic(input, e.vmid, e.netid);
    if (typeof g !== 'string') return parseMac(g.nic.mac)!;
  }
  return parseMac('02:00:00:00:00:01')!;
}

export function ipv4OrZero(text: string): Ipv4 {
  return parseIpv4(text.split('/')[0]!) ?? (0 as Ipv4);
}
