/**
 * How frames enter and leave interfaces, by interface kind: the one table the walker dispatches through.
 *
 * A hop type is a `Device` in a file of its own, registered in `DEVICES` below (the record is keyed by every
 * `IfaceKind`, so a kind added to the model does not compile until it has a device). Its three doors follow the
 * kernel's:
 * - `portReceive` is the rx_handler an upper device registers on the interfaces enslaved to it (`br_handle_frame`
 *   for a bridge; `bond_handle_frame`, OVS's `netdev_frame_hook` would be others): a frame that arrives on a port
 *   whose `master` is of this kind is handed to it, instead of to the port's own stack.
 * - `receive` is what the device does with a frame it receives itself (`__netif_receive_skb` on it); absent, the
 *   IPv4 stack's protocol handlers take it. A device that demultiplexes to devices stacked on it (VLAN
 *   sub-interfaces by tag in `vlan_do_receive`, macvlan/VMAC by destination MAC in `macvlan_handle_frame`) does it
 *   here and hands the frame on with `w.netifReceive(st, upper, hop, frame)`.
 * - `xmit` is `dev_queue_xmit` → `ndo_start_xmit`: the node's own stack sends a frame out of the device. Plain
 *   devices put it on their link (`link.ts`: a point-to-point peer — a tap's guest NIC, either end of a veth pair
 *   such as Proxmox's fwpr/fwln — or an L2 segment); a bridge sends it to its ports (`br_dev_xmit`); a VLAN
 *   sub-interface would tag it and `w.xmit` it on its lower device, a bond pick a slave.
 */
import type { Iface, IfaceKind } from '../topology/model.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { BRIDGE } from './bridge.ts';
import type { NodeState } from './dataplane.ts';
import { stackReceive } from './ipv4-stack.ts';
import { uppersOf } from './node-config.ts';
import { BOND, MACVLAN, NIC, VLAN } from './stacked.ts';
import type { Hop } from './types.ts';
import type { Device, Walking } from './walk.ts';

/** A device that puts what it sends on its link and passes what it receives to the stack (NICs, taps, lo, tunl0). */
const LINKED: Device = {
  xmit: (w, st, iface, frame, parentId, timeNs) =>
    w.enqueue(
      parentId === undefined
        ? { kind: 'tx', node: st.node.name, iface: iface.name, frame, timeNs }
        : { kind: 'tx', node: st.node.name, iface: iface.name, frame, parent: parentId, timeNs },
    ),
};

/** The registry: one device per interface kind. */
export const DEVICES: { readonly [K in IfaceKind]: Device } = {
  ether: NIC,
  veth: NIC,
  tap: LINKED,
  loopback: LINKED,
  tunnel: LINKED,
  bridge: BRIDGE,
  macvlan: MACVLAN,
  vlan: VLAN,
  bond: BOND,
};

/** A frame arrived at `iface` from its link (its capture is on `hop`): a port's upper device or the interface takes it. */
export function deviceArrival(w: Walking, st: NodeState, iface: Iface, hop: Hop): void {
  if (!iface.up) {
    w.end(hop, 'discarded', `${hop.point} is down`, iface.origin);
    return;
  }
  // A tagged frame goes to the VLAN device of its tag first (`vlan_do_receive` runs before the rx_handler): the
  // uplink of a bridge that also carries `eno1.20 master vmbr0v20` (Proxmox's non-VLAN-aware guest VLANs).
  const tag = hop.frame.vlans[0]?.vid;
  if (
    iface.master &&
    tag !== undefined &&
    uppersOf(st.node, iface.name).some((u) => u.kind === 'vlan' && u.vlanId === tag)
  ) {
    deviceReceive(w, st, iface, hop, hop.frame);
    return;
  }
  if (iface.master) {
    const upper = w.iface(st.node, iface.master);
    const take = DEVICES[upper.kind].portReceive;
    if (!take) throw new Error(`internal: ${st.node.name}:${iface.name}'s master ${upper.name} takes no ports`);
    take(w, st, iface, upper, hop);
    return;
  }
  deviceReceive(w, st, iface, hop, hop.frame);
}

/** The device itself receives a frame (`__netif_receive_skb`). */
export function deviceReceive(w: Walking, st: NodeState, iface: Iface, hop: Hop, frame: EthernetFrame): void {
  (DEVICES[iface.kind].receive ?? stackReceive)(w, st, iface, hop, frame);
}

/** The node's own stack sends a frame out of a device (`dev_queue_xmit`). */
export function deviceXmit(
  w: Walking,
  st: NodeState,
  iface: Iface,
  frame: EthernetFrame,
  parentId: number | undefined,
  timeNs: bigint,
): void {
  DEVICES[iface.kind].xmit(w, st, iface, frame, parentId, timeNs);
}
