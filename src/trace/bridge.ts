/**
 * The Linux bridge: a frame received on a port (`br_handle_frame`) passes ebtables nat PREROUTING, is learned into
 * the FDB and is forwarded, flooded or passed up to the bridge device (`br_handle_frame_finish`, then filter INPUT
 * before `br_pass_frame_up`); each port it leaves by passes filter FORWARD, iptables FORWARD when br_netfilter hands
 * bridged IPv4 to it (`br_nf_forward_ip`), then nat POSTROUTING (`br_forward_finish`). The host's own frames sent
 * through the bridge device (`br_dev_xmit`) pass nat and filter OUTPUT, then POSTROUTING per port.
 */
import { isMulticastMac } from '../addr/mac.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { Iface, Node } from '../topology/model.ts';
import { ipv4PacketLength } from '../wire/ipv4.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { ifaceMtu } from './conversation.ts';
import type { NodeState } from './dataplane.ts';
import type { BridgedCtx, BridgeHook } from './engines.ts';
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
      `ebtables -t ${table} ${hookName}: ${step.chain}${step.ruleNumber !== undefined ? ` rule ${step.ruleNumber}` : ''} "${step.ruleText}"`,
      step.origin,
    );
    return false;
  }
  return true;
}

function bridgeIngress(w: Walking, st: NodeState, port: Iface, br: Iface, hop: Hop): void {
  const frame = hop.frame;
  const brName = br.name;
  if (!ebtables(w, st, hop, 'nat', 'PREROUTING', frame, port.name)) return;
  // tcpdump on the bridge device (promiscuous) sees what passed PREROUTING.
  const brPoint = `${st.node.name}:${brName}`;
  w.capture(hop, brPoint, 'in', frame, hop.timeNs + DELAY_NS.bridge / 2n);
  const fdb = st.fdb.get(brName)!;
  let learned: string | undefined;
  if (!isMulticastMac(frame.src)) {
    const prev = fdb.get(frame.src);
    if (!prev || prev.port !== port.name) {
      fdb.set(frame.src, { port: port.name, origin: learnedOn(brName, port) });
      learned = `${frame.src} on ${port.name}`;
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
  if (frame.dst === br.mac) {
    hop.steps.push(bstep('local', [], implicit(`${frame.dst} is the bridge's own address`)));
    if (!ebtables(w, st, hop, 'filter', 'INPUT', frame, port.name)) return;
    w.netifReceive(st, br, hop, frame);
    return;
  }
  const ports = bridgePorts(st.node, brName).filter((i) => i.name !== port.name);
  if (isMulticastMac(frame.dst)) {
    hop.steps.push(
      bstep(
        'flood',
        ports.map((p) => p.name),
        FLOODED,
      ),
    );
    for (const p of ports) bridgeEgress(w, st, p, frame, hop, t);
    // The bridge device itself gets a copy too, on a hop of its own.
    if (ebtables(w, st, hop, 'filter', 'INPUT', frame, port.name)) {
      const copy = w.newHop({ kind: 'rx', node: st.node.name, iface: br.name, frame, parent: hop.id, timeNs: t }, 'in');
      w.netifReceive(st, br, copy, frame);
    }
    return;
  }
  const entry = fdb.get(frame.dst);
  if (!entry) {
    hop.steps.push(
      bstep(
        'flood',
        ports.map((p) => p.name),
        implicit(`${frame.dst} is not in the FDB of ${brName}`),
      ),
    );
    for (const p of ports) bridgeEgress(w, st, p, frame, hop, t);
    return;
  }
  if (entry.port === port.name) {
    hop.steps.push(bstep('same-port', [], entry.origin));
    w.end(hop, 'discarded', `${brName} knows ${frame.dst} on the port it came from (${port.name})`);
    return;
  }
  hop.steps.push(bstep('forward', [entry.port], entry.origin));
  bridgeEgress(w, st, w.iface(st.node, entry.port), frame, hop, t);
}

function bridgeEgress(w: Walking, st: NodeState, port: Iface, frame: EthernetFrame, parent: Hop, timeNs: bigint): void {
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
  if (!ebtables(w, st, hop, 'filter', 'FORWARD', frame, parent.place.iface, port.name)) return;
  // br_netfilter: bridged IPv4 passes through iptables FORWARD (with physdev) after ebtables' FORWARD.
  let bctx: BridgedCtx = { bridge: port.master ?? '', inPort: parent.place.iface ?? '', outPort: port.name };
  // br_netfilter: conntrack saw the packet at PRE_ROUTING; its state is what `--ctstate` rules match.
  const fw = st.firewall;
  if (fw?.tracksBridged && frame.payload.kind === 'ipv4') {
    const ct = w.ask(st, hop, { kind: 'conntrack', packet: frame.payload })!;
    bctx = { ...bctx, ctState: ct.ctState, ctDir: ct.ctDir };
    if (ct.ctState === 'INVALID')
      hop.steps.push({ kind: 'note', text: `conntrack on ${st.node.name}: ctstate INVALID — ${ct.explanation}` });
  }
  const ipStep = w.ask(st, hop, { kind: 'br-netfilter', frame, ctx: bctx });
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
  if (!ebtables(w, st, hop, 'nat', 'POSTROUTING', frame, undefined, port.name)) return;
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
  const ports = bridgePorts(st.node, br.name);
  const entry = isMulticastMac(frame.dst) ? undefined : st.fdb.get(br.name)?.get(frame.dst);
  const out = entry ? ports.filter((p) => p.name === entry.port) : ports;
  hop.steps.push({
    kind: 'bridge',
    bridge: br.name,
    decision: entry ? 'forward' : 'flood',
    ports: out.map((p) => p.name),
    origin: entry?.origin ?? implicit('flooded'),
  });
  for (const p of out) {
    if (!ebtables(w, st, hop, 'nat', 'POSTROUTING', frame, undefined, p.name)) continue;
    portXmit(w, st, p, frame, hop.id, timeNs);
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
