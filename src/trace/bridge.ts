/**
 * The Linux bridge: a frame received on a port (`br_handle_frame`) passes ebtables nat PREROUTING, is learned into
 * the FDB and is forwarded, flooded or passed up to the bridge device (`br_handle_frame_finish`, then filter INPUT
 * before `br_pass_frame_up`); each port it leaves by passes filter FORWARD, iptables FORWARD when br_netfilter hands
 * bridged IPv4 to it (`br_nf_forward_ip`), then nat POSTROUTING (`br_forward_finish`). The host's own frames sent
 * through the bridge device (`br_dev_xmit`) pass nat and filter OUTPUT, then POSTROUTING per port.
 *
 * A VLAN-filtering bridge (`vlan_filtering 1`, Proxmox `bridge-vlan-aware yes`) classifies each frame after nat
 * PREROUTING (`br_allowed_ingress`): a tagged frame belongs to its VLAN if the port is a member of it, an untagged one
 * to the port's PVID; otherwise it is dropped. It is forwarded and flooded only to member ports, and leaves each
 * untagged or tagged as that port's VLAN says (`br_handle_vlan`, before the FORWARD hook). br_netfilter hands a frame
 * to iptables only when no VLAN tag is on it (`IS_IP`: it arrived untagged and leaves untagged), unless
 * `net.bridge.bridge-nf-filter-vlan-tagged=1`. The FDB (the model's warm one plus what the probe learns) is keyed by
 * (VLAN, MAC) on a VLAN-filtering bridge, as the kernel's (`br_fdb_find(br, addr, vid)`): the same MAC in two VLANs —
 * a VM cloned onto another tag, a keepalived VMAC of the same VRID in two VLANs — is two entries; without VLAN
 * filtering the key is the MAC (vid 0).
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import { isMulticastMac } from '../addr/mac.ts';
import { implicit, type Origin } from '../source/origin.ts';
import { type BridgeVlans, DEFAULT_BRIDGE_VLANS, type Iface, type Node, vlanMember } from '../topology/model.ts';
import { ipv4PacketLength } from '../wire/ipv4.ts';
import type { EthernetFrame, Ipv4Packet } from '../wire/types.ts';
import { ifaceMtu } from './conversation.ts';
import type { NodeState } from './dataplane.ts';
import type { BridgedCtx, BridgeHook } from './engines.ts';
import { hostMangle, hostMangleOn, hostNatOn, hostNatPost, hostNatPre } from './host-nat.ts';
import { resolve, sourceFor } from './ipv4-output.ts';
import { localAddress } from './node-config.ts';
import { ruleQuote } from './render-step.ts';
import type { Hop, Step } from './types.ts';
import { DELAY_NS, type Device, type WalkEvent, type Walking } from './walk.ts';

const FLOODED = implicit('broadcast and multicast frames are flooded');

/** The bridge as a device: it takes ports, and sends the host's own frames to them; what it passes up goes to the stack. */
export const BRIDGE: Device = { portReceive: bridgeIngress, xmit: bridgeLocalOut };

/** An ebtables hook on a frame: false (and the hop ended) when it drops. */
function ebtables(
  w: Walking,
  st: NodeState,
  hop: Hop,
  table: 'nat' | 'filter',
  hookName: BridgeHook,
  frame: EthernetFrame,
  inIface?: string,
  outIface?: string,
): boolean {
  // Plain object, no conditional spreads: this runs several times per hop.
  const ctx = { inIface, outIface } as { readonly inIface?: string; readonly outIface?: string };
  const step = w.ask(st, hop, { kind: 'ebtables', table, hook: hookName, frame, ctx });
  if (!step) return true;
  hop.steps.push(step);
  if (step.verdict === 'DROP') {
    w.end(
      hop,
      'dropped-by-filter',
      step.nft
        ? `nft ${hookName}: ${ruleQuote(step)}`
        : `ebtables -t ${table} ${hookName}: ${step.chain}${step.ruleNumber !== undefined ? ` rule ${step.ruleNumber}` : ''} "${step.ruleText}"`,
      step.origin,
    );
    return false;
  }
  return true;
}

/** The VLAN a frame belongs to inside a VLAN-filtering bridge, and whether br_netfilter saw it untagged. */
interface VlanCtx {
  readonly vid: number;
  /** It arrived untagged (br_netfilter's PRE_ROUTING took it as IPv4). */
  readonly arrivedUntagged: boolean;
}

const vlansOf = (i: Iface): BridgeVlans => i.bridgeVlans ?? DEFAULT_BRIDGE_VLANS;

/** `net.bridge.bridge-nf-filter-vlan-tagged`: br_netfilter also filters VLAN-tagged IPv4. */
function filterVlanTagged(st: NodeState): boolean {
  return st.node.sysctl.get('net.bridge.bridge-nf-filter-vlan-tagged')?.value === '1';
}

/** The frame as it leaves `port` of a VLAN-filtering bridge: untagged or tagged with its VLAN. */
function egressFrame(port: Iface, frame: EthernetFrame, vlan: VlanCtx | undefined): EthernetFrame {
  if (!vlan || vlansOf(port).untagged.includes(vlan.vid)) return frame;
  return { ...frame, vlans: [{ pcp: 0, dei: false, vid: vlan.vid }, ...frame.vlans] };
}

function bridgeIngress(w: Walking, st: NodeState, port: Iface, br: Iface, hop: Hop): void {
  let frame = hop.frame;
  const brName = br.name;
  if (!ebtables(w, st, hop, 'nat', 'PREROUTING', frame, port.name)) return;
  let vlan: VlanCtx | undefined;
  if (br.vlanFiltering) {
    const pv = vlansOf(port);
    const tag = frame.vlans[0]?.vid;
    const vid = tag ?? pv.pvid;
    if (vid === undefined || !vlanMember(pv, vid)) {
      w.end(
        hop,
        'dropped-by-kernel',
        vid === undefined
          ? `${brName} filters VLANs and port ${port.name} has no PVID: an untagged frame is dropped`
          : `${brName} filters VLANs and port ${port.name} is not a member of VLAN ${vid}: the ${tag === undefined ? 'untagged frame (PVID)' : 'tagged frame'} is dropped`,
        pv.origin,
        undefined,
        'vlan-filtered',
      );
      return;
    }
    vlan = { vid, arrivedUntagged: tag === undefined };
    if (tag !== undefined) frame = { ...frame, vlans: frame.vlans.slice(1) };
    hop.steps.push({
      kind: 'note',
      text: `${brName} (VLAN filtering): ${tag === undefined ? `untagged on ${port.name}, PVID` : `tagged on ${port.name},`} VLAN ${vid}`,
    });
  }
  // br_netfilter's PRE_ROUTING (`br_nf_pre_routing`): a hypervisor's mangle, then nat PREROUTING on bridged IPv4.
  if (frame.payload.kind === 'ipv4' && (hostNatOn(st) || hostMangleOn(st)) && callsIptables(st)) {
    const untagged = vlan ? vlan.arrivedUntagged : frame.vlans.length === 0;
    if (untagged || filterVlanTagged(st)) {
      const pre = frame.payload;
      const mark = hostMangle(w, st, hop, pre, 'PREROUTING', { inIface: brName, physdevIn: port.name }, 0);
      if (mark === undefined) return;
      const f = brNatPrerouting(w, st, hop, br, port, frame, pre, mark);
      if (f === undefined) return;
      frame = f;
    }
  }
  // tcpdump on the bridge device (promiscuous) sees what passed PREROUTING.
  const brPoint = `${st.node.name}:${brName}`;
  w.capture(hop, brPoint, 'in', frame, hop.timeNs + DELAY_NS.bridge / 2n);
  const fdb = st.fdb.get(brName)!;
  let learned: string | undefined;
  if (!isMulticastMac(frame.src)) {
    // br_fdb_update: learned in the frame's VLAN (vid 0 without VLAN filtering).
    const prev = fdb.get(frame.src, vlan?.vid);
    if (!prev || prev.port !== port.name) {
      fdb.set(frame.src, vlan?.vid, { port: port.name, origin: learnedOn(brName, port) });
      learned = `${frame.src} on ${port.name}${vlan ? ` (VLAN ${vlan.vid})` : ''}`;
    }
  }
  const t = hop.timeNs + DELAY_NS.bridge;
  const bstep = (
    decision: 'forward' | 'flood' | 'local' | 'same-port',
    ports: readonly string[],
    origin: Origin,
  ): Step => {
    const out = { kind: 'bridge' as const, bridge: brName, decision, ports, origin } as Extract<
      Step,
      { kind: 'bridge' }
    >;
    if (learned) (out as { learned?: string }).learned = learned;
    return out;
  };
  const toSelf = !vlan || vlanMember(vlansOf(br), vlan.vid);
  if (frame.dst === br.mac) {
    if (!toSelf) {
      w.end(
        hop,
        'dropped-by-kernel',
        `${brName} itself is not a member of VLAN ${vlan!.vid}: a frame for its address in that VLAN is dropped`,
        vlansOf(br).origin,
        undefined,
        'vlan-filtered',
      );
      return;
    }
    hop.steps.push(bstep('local', [], implicit(`${frame.dst} is the bridge's own address`)));
    if (!ebtables(w, st, hop, 'filter', 'INPUT', frame, port.name)) return;
    w.netifReceive(st, br, hop, egressFrame(br, frame, vlan));
    return;
  }
  const ports = bridgePorts(st.node, brName).filter(
    (i) => i.name !== port.name && (!vlan || vlanMember(vlansOf(i), vlan.vid)),
  );
  if (isMulticastMac(frame.dst)) {
    hop.steps.push(
      bstep(
        'flood',
        ports.map((p) => p.name),
        FLOODED,
      ),
    );
    for (const p of ports) bridgeEgress(w, st, p, frame, hop, t, vlan);
    // The bridge device itself gets a copy too, on a hop of its own.
    if (toSelf && ebtables(w, st, hop, 'filter', 'INPUT', frame, port.name)) {
      const up = egressFrame(br, frame, vlan);
      const copy = w.newHop(
        { kind: 'rx', node: st.node.name, iface: br.name, frame: up, parent: hop.id, timeNs: t },
        'in',
      );
      w.netifReceive(st, br, copy, up);
    }
    return;
  }
  // br_fdb_find_rcu(br, dst, vid): the entry of the destination in the frame's VLAN.
  const found = fdb.get(frame.dst, vlan?.vid);
  const entry =
    found && (!vlan || ports.some((p) => p.name === found.port) || found.port === port.name) ? found : undefined;
  if (!entry) {
    hop.steps.push(
      bstep(
        'flood',
        ports.map((p) => p.name),
        implicit(`${frame.dst} is not in the FDB of ${brName}${vlan ? ` for VLAN ${vlan.vid}` : ''}`),
      ),
    );
    for (const p of ports) bridgeEgress(w, st, p, frame, hop, t, vlan);
    return;
  }
  if (entry.port === port.name) {
    hop.steps.push(bstep('same-port', [], entry.origin));
    w.end(hop, 'discarded', `${brName} knows ${frame.dst} on the port it came from (${port.name})`);
    return;
  }
  hop.steps.push(bstep('forward', [entry.port], entry.origin));
  bridgeEgress(w, st, w.iface(st.node, entry.port), frame, hop, t, vlan);
}

/** `net.bridge.bridge-nf-call-iptables=1`: br_netfilter hands bridged IPv4 to the iptables hooks. */
function callsIptables(st: NodeState): boolean {
  return st.node.sysctl.get('net.bridge.bridge-nf-call-iptables')?.value.trim() === '1';
}

/**
 * nat PREROUTING of a bridged IPv4 packet (`-i` the bridge, `--physdev-in` the port), then `br_nf_pre_routing_finish`:
 * when the destination changed (DNAT, or the de-SNAT of a reply) the kernel routes the new one — reached through
 * another device or local, the frame is addressed to the bridge's own MAC and goes up to the host's stack, which
 * forwards or delivers it; reached through the bridge itself, it stays bridged, addressed to the neighbour's MAC
 * (`br_nf_pre_routing_finish_bridge`). The frame as it goes on, or undefined when it was dropped (the hop ended).
 */
function brNatPrerouting(
  w: Walking,
  st: NodeState,
  hop: Hop,
  br: Iface,
  port: Iface,
  frame: EthernetFrame,
  pkt: Ipv4Packet,
  mark: number,
): EthernetFrame | undefined {
  const n = hostNatPre(
    w,
    st,
    hop,
    pkt,
    'PREROUTING',
    { inIface: br.name, physdevIn: port.name },
    br.addrs[0]?.prefix.addr,
  );
  if (n === undefined) return undefined;
  // ip_sabotage_in: the stack does not run the PRE_ROUTING hooks again on what the bridge passes up.
  st.conntrack.markPrerouted(n);
  st.conntrack.setMark(n, mark);
  if (n === pkt) return frame;
  const out: EthernetFrame = { ...frame, payload: n };
  if (n.dst === pkt.dst) return out;
  const node = st.node;
  const r = w.ask(st, hop, { kind: 'route', dst: n.dst, key: { src: n.src, iif: br.name, mark } });
  if (!r || (r.type !== 'unicast' && r.type !== 'local')) {
    w.end(
      hop,
      'no-route',
      `br_netfilter on ${node.name}: after nat PREROUTING the destination is ${formatIpv4(n.dst)}, which ${r ? `routes to ${r.type}` : 'has no route'}: the frame is dropped`,
      r?.origin,
      { node: node.name },
    );
    return undefined;
  }
  const dev =
    r.type === 'local' || localAddress(node, n.dst)
      ? undefined
      : (r.dev ?? (r.via !== undefined ? w.ask(st, hop, { kind: 'route', dst: r.via })?.dev : undefined));
  if (dev === br.name) {
    const nextHop = r.via ?? n.dst;
    hop.steps.push({
      kind: 'note',
      text: `br_netfilter: the new destination ${formatIpv4(n.dst)} is reached through ${br.name} itself, so the frame stays bridged, addressed to ${formatIpv4(nextHop)}'s MAC (br_nf_pre_routing_finish_bridge)`,
      origin: r.origin,
    });
    const mac = resolve(w, st, br, nextHop, undefined, hop, hop.timeNs);
    return mac === undefined ? undefined : { ...out, dst: mac };
  }
  hop.steps.push({
    kind: 'note',
    text: `br_netfilter: the new destination ${formatIpv4(n.dst)} is ${dev === undefined ? `local to ${node.name}` : `routed through ${dev}`}, not bridged: the frame is addressed to ${br.name}'s own MAC and goes up to the host's stack (br_nf_pre_routing_finish)`,
    origin: r.origin,
  });
  return { ...out, dst: br.mac };
}

function bridgeEgress(
  w: Walking,
  st: NodeState,
  port: Iface,
  inner: EthernetFrame,
  parent: Hop,
  timeNs: bigint,
  vlan?: VlanCtx,
): void {
  // What the port sends (tagged when its VLAN is not egress-untagged there); the hooks see the frame inside.
  let frame = egressFrame(port, inner, vlan);
  // Per-port egress decisions are recorded on a hop of their own so that flooded copies are told apart.
  const hop = w.newHop({ kind: 'tx', node: st.node.name, iface: port.name, frame, parent: parent.id, timeNs }, 'out');
  // br_dev_queue_push_xmit: a frame larger than the port's MTU is not forwardable and is dropped, without ICMP.
  const p = frame.payload;
  if (p.kind === 'ipv4' && (port.mtu !== undefined || (p.payload.kind === 'tcp' && p.payload.payload.length > 1448))) {
    const len = ipv4PacketLength(p);
    const mtu = ifaceMtu(port);
    if (len > mtu) {
      w.end(
        hop,
        'dropped-by-kernel',
        `${st.node.name}: a frame of ${len} bytes (IP) is larger than the MTU ${mtu} of bridge port ${port.name}: dropped silently (a bridge sends no ICMP)`,
        port.origin,
        undefined,
        'too-big-for-port',
      );
      return;
    }
  }
  if (!ebtables(w, st, hop, 'filter', 'FORWARD', inner, parent.place.iface, port.name)) return;
  // IS_IP: no VLAN tag on the frame, neither when it arrived nor as it leaves (or filter-vlan-tagged).
  const untagged = vlan ? vlan.arrivedUntagged && frame.vlans.length === 0 : inner.vlans.length === 0;
  if (!untagged && !filterVlanTagged(st)) {
    if (!ebtables(w, st, hop, 'nat', 'POSTROUTING', inner, undefined, port.name)) return;
    if (inner.payload.kind === 'ipv4' && st.firewall?.tracksBridged)
      hop.steps.push({
        kind: 'note',
        text: `br_netfilter: the frame ${vlan && !vlan.arrivedUntagged ? 'arrived' : 'leaves'} VLAN-tagged, so iptables FORWARD is not called (net.bridge.bridge-nf-filter-vlan-tagged=0)`,
      });
    portXmit(w, st, port, frame, hop.id, timeNs);
    return;
  }
  // br_netfilter: bridged IPv4 passes through iptables FORWARD (with physdev) after ebtables' FORWARD.
  let bctx: BridgedCtx = { bridge: port.master ?? '', inPort: parent.place.iface ?? '', outPort: port.name };
  // br_netfilter: conntrack saw the packet at PRE_ROUTING; its state is what `--ctstate` rules match.
  const fw = st.firewall;
  if (fw?.tracksBridged && inner.payload.kind === 'ipv4') {
    // raw PREROUTING comes before conntrack: NOTRACK leaves the packet UNTRACKED, DROP ends it.
    const raw = fw.evaluateRaw
      ? w.ask(st, hop, { kind: 'raw', frame: inner, ctx: { bridge: bctx.bridge, inPort: bctx.inPort } })
      : undefined;
    if (raw) {
      hop.steps.push(raw);
      if (raw.verdict === 'DROP') {
        w.end(hop, 'dropped-by-filter', `iptables -t raw PREROUTING (br_netfilter): ${ruleQuote(raw)}`, raw.origin);
        return;
      }
    }
    if (raw?.notrack) bctx = { ...bctx, ctState: 'UNTRACKED', ctDir: 'ORIGINAL' };
    else {
      const ct = w.ask(st, hop, { kind: 'conntrack', packet: inner.payload })!;
      bctx = { ...bctx, ctState: ct.ctState, ctDir: ct.ctDir };
      if (ct.ctState === 'INVALID')
        hop.steps.push({ kind: 'note', text: `conntrack on ${st.node.name}: ctstate INVALID — ${ct.explanation}` });
    }
  }
  // br_nf_forward_ip → NF_INET_FORWARD: a hypervisor's mangle FORWARD (priority -150) before filter FORWARD (0).
  let mark = inner.payload.kind === 'ipv4' ? st.conntrack.markOf(inner.payload) : 0;
  if (inner.payload.kind === 'ipv4' && hostMangleOn(st) && callsIptables(st)) {
    const m = hostMangle(
      w,
      st,
      hop,
      inner.payload,
      'FORWARD',
      {
        inIface: bctx.bridge,
        outIface: bctx.bridge,
        physdevIn: bctx.inPort,
        physdevOut: port.name,
        ...(bctx.ctState !== undefined ? { ctState: bctx.ctState, ctDir: bctx.ctDir ?? 'ORIGINAL' } : {}),
      },
      mark,
    );
    if (m === undefined) return;
    mark = m;
  }
  if (mark !== 0) bctx = { ...bctx, mark };
  const ipStep = w.ask(st, hop, { kind: 'br-netfilter', frame: inner, ctx: bctx });
  if (ipStep) {
    hop.steps.push(ipStep);
    if (ipStep.verdict === 'DROP') {
      w.end(
        hop,
        'dropped-by-filter',
        `${ipStep.nft ? 'nft' : 'iptables -t filter'} FORWARD (br_netfilter): ${ruleQuote(ipStep)}`,
        ipStep.origin,
      );
      return;
    }
  }
  if (!ebtables(w, st, hop, 'nat', 'POSTROUTING', inner, undefined, port.name)) return;
  // br_nf_post_routing (after ebtables nat POSTROUTING): a hypervisor's mangle, then nat POSTROUTING, `-o` the bridge.
  if (inner.payload.kind === 'ipv4' && hostMangleOn(st) && callsIptables(st)) {
    const ctx = { outIface: bctx.bridge, physdevIn: bctx.inPort, physdevOut: port.name };
    if (hostMangle(w, st, hop, inner.payload, 'POSTROUTING', ctx, mark) === undefined) return;
  }
  if (inner.payload.kind === 'ipv4' && hostNatOn(st) && callsIptables(st)) {
    const br = w.iface(st.node, bctx.bridge);
    const n = hostNatPost(
      w,
      st,
      hop,
      inner.payload,
      { outIface: bctx.bridge, physdevIn: bctx.inPort, physdevOut: port.name },
      sourceFor(br, inner.payload.dst),
    );
    if (n === undefined) return;
    if (n !== inner.payload) frame = egressFrame(port, { ...inner, payload: n }, vlan);
  }
  portXmit(w, st, port, frame, hop.id, timeNs);
}

/**
 * The bridge hands a frame to a port (`br_dev_queue_push_xmit` → `dev_queue_xmit(port)`): a plain port puts it on
 * its wire; a stacked port — a VLAN device (`eno1.100 master br100`: tagged on eno1), a bond (through its active
 * slave), a macvlan — transmits it as that device does.
 */
function portXmit(
  w: Walking,
  st: NodeState,
  port: Iface,
  frame: EthernetFrame,
  parentId: number,
  timeNs: bigint,
): void {
  if (port.kind === 'vlan' || port.kind === 'bond' || port.kind === 'macvlan')
    w.xmit(st, port, frame, parentId, timeNs);
  else w.enqueue({ kind: 'tx', node: st.node.name, iface: port.name, frame, parent: parentId, timeNs });
}

/** The host's own stack sends through its bridge device. */
function bridgeLocalOut(
  w: Walking,
  st: NodeState,
  br: Iface,
  frame: EthernetFrame,
  parentId: number | undefined,
  timeNs: bigint,
): void {
  const ev: WalkEvent = {
    kind: 'tx',
    node: st.node.name,
    iface: br.name,
    frame,
    timeNs,
    ...(parentId !== undefined ? { parent: parentId } : {}),
  };
  const hop = w.newHop(ev, 'out', `${st.node.name}:${br.name}`);
  w.capture(hop, `${st.node.name}:${br.name}`, 'out');
  if (!ebtables(w, st, hop, 'nat', 'OUTPUT', frame)) return;
  if (!ebtables(w, st, hop, 'filter', 'OUTPUT', frame)) return;
  // A VLAN-filtering bridge: the host's own frames belong to the bridge's PVID (a VLAN device on it tags them).
  let vlan: VlanCtx | undefined;
  let inner = frame;
  if (br.vlanFiltering) {
    const vid = frame.vlans[0]?.vid ?? vlansOf(br).pvid;
    if (vid === undefined) {
      w.end(
        hop,
        'dropped-by-kernel',
        `${br.name} itself has no PVID: its untagged frames are dropped`,
        vlansOf(br).origin,
        undefined,
        'vlan-filtered',
      );
      return;
    }
    vlan = { vid, arrivedUntagged: frame.vlans.length === 0 };
    if (frame.vlans.length > 0) inner = { ...frame, vlans: frame.vlans.slice(1) };
  }
  const ports = bridgePorts(st.node, br.name).filter((p) => !vlan || vlanMember(vlansOf(p), vlan.vid));
  const found = isMulticastMac(frame.dst) ? undefined : st.fdb.get(br.name)?.get(frame.dst, vlan?.vid);
  const entry = found && ports.some((p) => p.name === found.port) ? found : undefined;
  const out = entry ? ports.filter((p) => p.name === entry.port) : ports;
  hop.steps.push({
    kind: 'bridge',
    bridge: br.name,
    decision: entry ? 'forward' : 'flood',
    ports: out.map((p) => p.name),
    origin: entry?.origin ?? implicit('flooded'),
  });
  for (const p of out) {
    if (!ebtables(w, st, hop, 'nat', 'POSTROUTING', inner, undefined, p.name)) continue;
    portXmit(w, st, p, egressFrame(p, inner, vlan), hop.id, timeNs);
  }
}

const LEARNED = new WeakMap<Iface, Origin>();

/** The origin of FDB entries learned on a port, made once per port. */
function learnedOn(bridge: string, port: Iface): Origin {
  let o = LEARNED.get(port);
  if (!o) {
    o = implicit(`learned on ${bridge} port ${port.name}`);
    LEARNED.set(port, o);
  }
  return o;
}

const PORTS = new WeakMap<Node, Map<string, Iface[]>>();

/** The ports of a bridge, computed once per node. */
function bridgePorts(node: Node, bridge: string): readonly Iface[] {
  let byBridge = PORTS.get(node);
  if (!byBridge) {
    byBridge = new Map();
    for (const i of node.interfaces.values())
      if (i.master) byBridge.set(i.master, [...(byBridge.get(i.master) ?? []), i]);
    PORTS.set(node, byBridge);
  }
  return byBridge.get(bridge) ?? [];
}
