/**
 * Devices stacked on others, as operators have them: macvlan (keepalived's `use_vmac` VMAC `vrrp.51@eth0`), VLAN
 * sub-interfaces (`eth0.100@eth0`), bonds (`bond0` over its slaves) and veths.
 *
 * Receive: a device with uppers stacked on it demultiplexes what it receives, as the kernel does in
 * `__netif_receive_skb_core` — a tagged frame goes to the VLAN device of its tag (`vlan_do_receive`; none: dropped),
 * then the macvlan rx_handler (`macvlan_handle_frame`) hands a unicast frame addressed to a macvlan's MAC to that
 * macvlan, and a broadcast or multicast to every macvlan and to the lower device itself. A bond slave's frames go to
 * the bond (`bond_handle_frame`); in active-backup only the active slave's.
 *
 * Transmit: a macvlan sends through its lower device with its own MAC as source; a VLAN device tags the frame and
 * sends it through its lower device; a bond sends through its active slave (the first slave that is up).
 */
import { isMulticastMac } from '../addr/mac.ts';
import type { Iface, Node } from '../topology/model.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { BRIDGE } from './bridge.ts';
import type { NodeState } from './dataplane.ts';
import { stackReceive } from './ipv4-stack.ts';
import { uppersOf } from './node-config.ts';
import type { Hop } from './types.ts';
import type { Device, Walking } from './walk.ts';

const SLAVES = new WeakMap<Node, Map<string, Iface[]>>();

/** A bond's slaves in interface order. */
function slavesOf(node: Node, bond: string): readonly Iface[] {
  let m = SLAVES.get(node);
  if (m === undefined) {
    m = new Map();
    for (const i of node.interfaces.values())
      if (i.master !== undefined) m.set(i.master, [...(m.get(i.master) ?? []), i]);
    SLAVES.set(node, m);
  }
  return m.get(bond) ?? [];
}

/** The slave a bond sends through and accepts from (active-backup: the first slave that is up). */
export function activeSlave(node: Node, bond: string): Iface | undefined {
  return slavesOf(node, bond).find((s) => s.up);
}

/** A copy of the frame received by another device of the node: a hop of its own, so each has its own end. */
function copyTo(w: Walking, st: NodeState, upper: Iface, hop: Hop, frame: EthernetFrame): void {
  const copy = w.newHop(
    { kind: 'rx', node: st.node.name, iface: upper.name, frame, parent: hop.id, timeNs: hop.timeNs },
    'in',
    `${st.node.name}:${upper.name}`,
  );
  w.capture(copy, `${st.node.name}:${upper.name}`, 'in', frame);
  receiveOn(w, st, upper, copy, frame);
}

function receiveOn(w: Walking, st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
  if (!iface.up) {
    w.end(hop, 'discarded', `${st.node.name}:${iface.name} is down`, iface.origin);
    return;
  }
  if (iface.master !== undefined) {
    // A VLAN device (or macvlan) enslaved to a bridge — the host layout `eno1.100 master br100`: after
    // `vlan_do_receive` the frame goes round `__netif_receive_skb_core` again as the upper device's, whose
    // rx_handler is the bridge's (`br_handle_frame`), so the bridge takes the untagged frame, not the host's stack.
    const master = w.iface(st.node, iface.master);
    if (master.kind === 'bridge' && BRIDGE.portReceive) {
      const port = w.newHop(
        { kind: 'rx', node: st.node.name, iface: iface.name, frame, parent: hop.id, timeNs: hop.timeNs },
        'in',
        `${st.node.name}:${iface.name}`,
      );
      BRIDGE.portReceive(w, st, iface, master, port);
      return;
    }
  }
  w.netifReceive(st, iface, hop, frame);
}

/** `__netif_receive_skb_core` on a device that may have VLANs and macvlans stacked on it. */
export function lowerReceive(w: Walking, st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
  const uppers = uppersOf(st.node, iface.name);
  if (uppers.length === 0) {
    if (frame.vlans.length > 0) {
      w.end(
        hop,
        'discarded',
        `${st.node.name}:${iface.name} has no VLAN ${frame.vlans[0]!.vid} device: tagged frame dropped`,
      );
      return;
    }
    stackReceive(w, st, iface, hop, frame);
    return;
  }
  if (frame.vlans.length > 0) {
    const vid = frame.vlans[0]!.vid;
    const vlan = uppers.find((u) => u.kind === 'vlan' && u.vlanId === vid);
    if (!vlan) {
      const others = uppers.filter((u) => u.kind === 'vlan');
      const has = others.length > 0 ? ` (it has ${others.map((u) => `${u.name}, VLAN ${u.vlanId}`).join('; ')})` : '';
      w.end(
        hop,
        'discarded',
        `${st.node.name}:${iface.name} has no VLAN ${vid} device${has}: tagged frame dropped`,
        others[0]?.origin,
      );
      return;
    }
    hop.steps.push({ kind: 'note', text: `VLAN ${vid}: untagged and received by ${vlan.name}`, origin: vlan.origin });
    const untagged = { ...frame, vlans: frame.vlans.slice(1) };
    w.capture(hop, `${st.node.name}:${vlan.name}`, 'in', untagged);
    receiveOn(w, st, vlan, hop, untagged);
    return;
  }
  let macvlans = 0;
  for (const u of uppers) if (u.kind === 'macvlan') macvlans++;
  if (macvlans === 0) {
    stackReceive(w, st, iface, hop, frame);
    return;
  }
  if (!isMulticastMac(frame.dst)) {
    const m = uppers.find((u) => u.kind === 'macvlan' && u.mac === frame.dst);
    if (m) {
      hop.steps.push({ kind: 'note', text: `macvlan: ${frame.dst} is ${m.name}'s MAC`, origin: m.origin });
      w.capture(hop, `${st.node.name}:${m.name}`, 'in');
      receiveOn(w, st, m, hop, frame);
      return;
    }
    stackReceive(w, st, iface, hop, frame);
    return;
  }
  // Broadcast and multicast: every macvlan gets a copy (macvlan_broadcast), and the lower device keeps the frame.
  for (const u of uppers) if (u.kind === 'macvlan') copyTo(w, st, u, hop, frame);
  stackReceive(w, st, iface, hop, frame);
}

/** A plain NIC (or veth) that VLANs and macvlans may be stacked on. */
export const NIC: Device = {
  receive: lowerReceive,
  xmit: (w, st, iface, frame, parentId, timeNs) =>
    w.enqueue(
      parentId === undefined
        ? { kind: 'tx', node: st.node.name, iface: iface.name, frame, timeNs }
        : { kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parentId, timeNs },
    ),
};

function lowerOf(st: NodeState, iface: Iface): Iface | undefined {
  return iface.lower !== undefined ? st.node.interfaces.get(iface.lower) : undefined;
}

function orphan(
  w: Walking,
  st: NodeState,
  iface: Iface,
  frame: EthernetFrame,
  parentId: number | undefined,
  t: bigint,
) {
  const hop = w.newHop(
    parentId === undefined
      ? { kind: 'tx', node: st.node.name, iface: iface.name, frame, timeNs: t }
      : { kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parentId, timeNs: t },
    'out',
  );
  w.end(hop, 'blackholed', `${st.node.name}:${iface.name} has no lower device ${iface.lower ?? ''} in the scenario`);
}

/** The device's own transmit hop, where a tcpdump on it sees the frame (untagged, with the device's source MAC). */
function upperOut(
  w: Walking,
  st: NodeState,
  iface: Iface,
  frame: EthernetFrame,
  parentId: number | undefined,
  t: bigint,
) {
  const point = `${st.node.name}:${iface.name}`;
  const hop = w.newHop(
    parentId === undefined
      ? { kind: 'tx', node: st.node.name, iface: iface.name, frame, timeNs: t }
      : { kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parentId, timeNs: t },
    'out',
    point,
  );
  w.capture(hop, point, 'out');
  return hop;
}

export const MACVLAN: Device = {
  receive: lowerReceive,
  xmit(w, st, iface, frame, parentId, timeNs) {
    const lower = lowerOf(st, iface);
    if (!lower) {
      orphan(w, st, iface, frame, parentId, timeNs);
      return;
    }
    w.xmit(st, lower, frame, upperOut(w, st, iface, frame, parentId, timeNs).id, timeNs);
  },
};

export const VLAN: Device = {
  receive: lowerReceive,
  xmit(w, st, iface, frame, parentId, timeNs) {
    const lower = lowerOf(st, iface);
    if (!lower || iface.vlanId === undefined) {
      orphan(w, st, iface, frame, parentId, timeNs);
      return;
    }
    const tagged: EthernetFrame = { ...frame, vlans: [{ pcp: 0, dei: false, vid: iface.vlanId }, ...frame.vlans] };
    w.xmit(st, lower, tagged, upperOut(w, st, iface, frame, parentId, timeNs).id, timeNs);
  },
};

export const BOND: Device = {
  portReceive(w, st, port, bond, hop) {
    const active = activeSlave(st.node, bond.name);
    if (active && active.name !== port.name) {
      w.end(
        hop,
        'discarded',
        `${st.node.name}:${port.name} is a backup slave of ${bond.name} (active: ${active.name}): its frames are dropped`,
        bond.origin,
      );
      return;
    }
    receiveOn(w, st, bond, hop, hop.frame);
  },
  receive: lowerReceive,
  xmit(w, st, iface, frame, parentId, timeNs) {
    const slave = activeSlave(st.node, iface.name);
    if (!slave) {
      const hop = w.newHop(
        parentId === undefined
          ? { kind: 'tx', node: st.node.name, iface: iface.name, frame, timeNs }
          : { kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parentId, timeNs },
        'out',
      );
      w.end(hop, 'blackholed', `${st.node.name}:${iface.name} has no slave that is up`, iface.origin);
      return;
    }
    w.xmit(st, slave, frame, parentId, timeNs);
  },
};
