/**
 * VRRP as keepalived runs it, modelled from keepalived.conf and `ip addr`: the instances of each virtual router
 * (VRID), who holds each VIP now, the path of a master's adverts (IP protocol 112 to 224.0.0.18, or unicast to its
 * `unicast_peer`s) through the model, and the cluster as it would be after a failover (the best backup takes the
 * VIPs and sends gratuitous ARP).
 */
import { formatIpv4, type Ipv4, ipv4ToBytes, parseIpv4 } from '../addr/ipv4.ts';
import { MAC_BROADCAST, type Mac, parseMac } from '../addr/mac.ts';
import type { KeepalivedVrrpInstance } from '../ipvs/keepalived.ts';
import { implicit } from '../source/origin.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AddressAssignment, Iface, NeighbourEntry, Node } from '../topology/model.ts';
import { type FrameWalk, walkFrame } from '../trace/frame-walk.ts';
import { openSession, type Session } from '../trace/session.ts';
import { internetChecksum } from '../wire/checksum.ts';
import { ARP_REPLY, ETHERTYPE_ARP, ETHERTYPE_IPV4, type EthernetFrame } from '../wire/types.ts';
import { nicOwning, ownsAddress, tapOf } from './facts.ts';

export const VRRP_PROTOCOL = 112;
export const VRRP_GROUP = 0xe0000012 as Ipv4; // 224.0.0.18
const VRRP_GROUP_MAC = '01:00:5e:00:00:12' as Mac;

export interface VrrpMember {
  readonly guest: string;
  readonly node: Node;
  readonly instance: KeepalivedVrrpInstance;
  /** The instance's interface (`interface eth0`) as the guest has it. */
  readonly nic?: Iface;
  /** The instance's IPv4 VIPs this guest holds now (from its `ip addr`). */
  readonly holds: readonly Ipv4[];
}

export interface VrrpGroup {
  readonly vrid: number;
  readonly vips: readonly Ipv4[];
  readonly members: readonly VrrpMember[];
}

function v4Vips(i: KeepalivedVrrpInstance): Ipv4[] {
  return i.virtualIpaddresses.flatMap((v) => (v.address.family === 'ipv4' ? [v.address.addr as Ipv4] : []));
}

const GROUPS = new WeakMap<LoadedScenario, VrrpGroup[]>();

/** The virtual routers of the scenario: instances with the same VRID and a VIP in common form one group. */
export function vrrpGroups(loaded: LoadedScenario): VrrpGroup[] {
  const cached = GROUPS.get(loaded);
  if (cached) return cached;
  const byVrid = new Map<number, VrrpMember[]>();
  for (const [guest, conf] of loaded.keepalived) {
    const node = loaded.scenario.nodes.get(guest);
    if (!node) continue;
    for (const instance of conf.vrrpInstances) {
      if (instance.virtualRouterId === undefined) continue;
      const nic = instance.interface !== undefined ? node.interfaces.get(instance.interface) : undefined;
      const holds = v4Vips(instance).filter((v) => ownsAddress(node, v));
      const m: VrrpMember = { guest, node, instance, ...(nic ? { nic } : {}), holds };
      byVrid.set(instance.virtualRouterId, [...(byVrid.get(instance.virtualRouterId) ?? []), m]);
    }
  }
  const out: VrrpGroup[] = [];
  for (const [vrid, members] of byVrid) {
    const vips = [...new Set(members.flatMap((m) => v4Vips(m.instance)))];
    out.push({ vrid, vips, members });
  }
  GROUPS.set(loaded, out);
  return out;
}

/** Members holding a VIP now. */
export function holdersOf(g: VrrpGroup, vip: Ipv4): VrrpMember[] {
  return g.members.filter((m) => m.holds.includes(vip));
}

/**
 * True when `director` is a VRRP standby for `vip`: one of its vrrp_instances lists the VIP and another member of
 * that virtual router holds it now. A standby must not hold the VIP (that would be an address conflict).
 */
export function isStandbyFor(loaded: LoadedScenario, director: string, vip: Ipv4): boolean {
  for (const g of vrrpGroups(loaded)) {
    if (!g.vips.includes(vip) || !g.members.some((m) => m.guest === director)) continue;
    if (holdersOf(g, vip).some((m) => m.guest !== director)) return true;
  }
  return false;
}

/** The member that takes over when `failed` goes away: highest priority, then highest primary address (RFC 3768). */
export function successor(g: VrrpGroup, failed: readonly string[]): VrrpMember | undefined {
  const cands = g.members.filter((m) => !failed.includes(m.guest) && m.nic);
  const addr = (m: VrrpMember) => m.nic?.addrs[0]?.prefix.addr ?? 0;
  return cands.sort((a, b) => b.instance.priority - a.instance.priority || addr(b) - addr(a))[0];
}

/** The source MAC of the member's gratuitous ARPs: its VMAC with use_vmac, else its interface's MAC. */
function srcMac(m: VrrpMember): Mac {
  return (m.instance.useVmac && m.instance.vmac ? parseMac(m.instance.vmac) : undefined) ?? m.nic!.mac;
}

/** The source MAC of the member's adverts: as its GARPs, except that `vmac_xmit_base` sends them from the base NIC. */
function advertMac(m: VrrpMember): Mac {
  return m.instance.vmacXmitBase ? m.nic!.mac : srcMac(m);
}

/** A VRRPv2 advertisement as keepalived sends it (RFC 3768 §5.1; no authentication). */
export function advertFrame(m: VrrpMember, dst: Ipv4, dstMac: Mac): EthernetFrame | undefined {
  const src = m.nic?.addrs[0]?.prefix.addr;
  if (!m.nic || src === undefined) return undefined;
  const vips = v4Vips(m.instance);
  const bytes = new Uint8Array(16 + 4 * vips.length);
  bytes[0] = 0x21;
  bytes[1] = m.instance.virtualRouterId ?? 0;
  bytes[2] = m.instance.priority;
  bytes[3] = vips.length;
  bytes[5] = Math.max(1, Math.round(m.instance.advertInt));
  for (const [k, v] of vips.entries()) bytes.set(ipv4ToBytes(v), 8 + 4 * k);
  const sum = internetChecksum(bytes);
  bytes[6] = sum >> 8;
  bytes[7] = sum & 0xff;
  return {
    dst: dstMac,
    src: advertMac(m),
    vlans: [],
    etherType: ETHERTYPE_IPV4,
    payload: {
      kind: 'ipv4',
      tos: 0xc0,
      id: 0,
      dontFragment: false,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 255,
      protocol: VRRP_PROTOCOL,
      src,
      dst,
      payload: { kind: 'raw', bytes },
    },
  };
}

export interface AdvertResult {
  readonly from: VrrpMember;
  readonly to: VrrpMember;
  /** How it was sent: `224.0.0.18` or the unicast peer's address. */
  readonly dst: string;
  /** keepalived on the peer receives it: it reached the peer's NIC and nothing in the peer's stack dropped it. */
  readonly reached: boolean;
  /** It reached the peer's NIC (what a capture there shows), whatever the peer's own firewall then does. */
  readonly atNic: boolean;
  /** The drop that kept it from the peer, when a firewall did. */
  readonly drop?: FrameWalk['drops'][number];
  readonly walk?: FrameWalk;
}

/** Walks `from`'s adverts to every other member of its group: multicast, or unicast to each `unicast_peer`. */
export function advertsOf(session: Session, g: VrrpGroup, from: VrrpMember): AdvertResult[] {
  const peers = g.members.filter((m) => m.guest !== from.guest);
  if (!from.nic || peers.length === 0) return [];
  const walks = new Map<string, FrameWalk | undefined>();
  const walkTo = (dst: Ipv4, mac: Mac): FrameWalk | undefined => {
    const key = `${dst} ${mac}`;
    if (!walks.has(key)) {
      const f = advertFrame(from, dst, mac);
      walks.set(key, f && walkFrame(session, from.guest, from.nic!.name, f, 1_700_000_000_000_000_000n));
    }
    return walks.get(key);
  };
  const loaded = session.loaded;
  return peers.map((to) => {
    let dst = VRRP_GROUP;
    let mac = VRRP_GROUP_MAC;
    if (from.instance.unicastPeers.length > 0) {
      const mine = from.instance.unicastPeers
        .map((p) => parseIpv4(p))
        .find((a) => a !== undefined && ownsAddress(to.node, a));
      if (mine === undefined) return { from, to, dst: 'no unicast_peer of this node', reached: false, atNic: false };
      dst = mine;
      mac = nicOwning(loaded, mine)?.iface.mac ?? MAC_BROADCAST;
    }
    const walk = walkTo(dst, mac);
    const atNic = walk?.reached.has(to.guest) ?? false;
    // The peer's own stack (its INPUT, keepalived's raw socket behind it) may still drop it.
    const inPeer = walk?.drops.find((d) => d.hop.place.node === to.guest);
    const reached = atNic && inPeer === undefined;
    const drop = reached ? undefined : (inPeer ?? pickDrop(loaded, walk, from, to));
    return {
      from,
      to,
      dst: formatIpv4(dst),
      reached,
      atNic,
      ...(drop ? { drop } : {}),
      ...(walk ? { walk } : {}),
    };
  });
}

/** The drop on the way from `from` to `to`: at either one's port first, else the first met. */
function pickDrop(
  loaded: LoadedScenario,
  walk: FrameWalk | undefined,
  from: VrrpMember,
  to: VrrpMember,
): FrameWalk['drops'][number] | undefined {
  if (!walk || walk.drops.length === 0) return undefined;
  const ports = [tapOf(loaded, from.node), tapOf(loaded, to.node)].filter((p) => p !== undefined);
  return (
    walk.drops.find((d) => ports.some((p) => p.host === d.hop.place.node && p.tap === d.hop.place.iface)) ??
    walk.drops[0]
  );
}

/** A gratuitous ARP for `vip` from the member (from its VMAC with use_vmac), as keepalived sends on takeover. */
export function garpFrame(m: VrrpMember, vip: Ipv4): EthernetFrame {
  const mac = srcMac(m);
  return {
    dst: MAC_BROADCAST,
    src: mac,
    vlans: [],
    etherType: ETHERTYPE_ARP,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: ETHERTYPE_IPV4,
      op: ARP_REPLY,
      sha: mac,
      spa: vip,
      tha: MAC_BROADCAST,
      tpa: vip,
    },
  };
}

export interface Failover {
  readonly group: VrrpGroup;
  readonly failed: readonly VrrpMember[];
  readonly takeover: VrrpMember;
  /** The cluster after failover. */
  readonly loaded: LoadedScenario;
  /** The gratuitous ARP walks, per VIP. */
  readonly garp: readonly { readonly vip: Ipv4; readonly walk?: FrameWalk; readonly missed: readonly string[] }[];
}

/**
 * The cluster as it is once the current holders of the group's VIPs are gone: the successor holds the VIPs on its
 * instance's interface and sends a gratuitous ARP for each; nodes it reaches update their cache entry for the VIP
 * (Linux updates an existing entry on a gratuitous ARP), the others keep pointing at the failed master.
 */
export function failover(
  loaded: LoadedScenario,
  g: VrrpGroup,
  /** Who goes away (default: the members holding a VIP now). */
  gone: readonly string[] = g.members.filter((m) => m.holds.length > 0).map((m) => m.guest),
): Failover | undefined {
  const failed = g.members.filter((m) => gone.includes(m.guest));
  if (failed.length === 0) return undefined;
  const takeover = successor(
    g,
    failed.map((m) => m.guest),
  );
  if (!takeover?.nic) return undefined;
  const nodes = new Map(loaded.scenario.nodes);
  const strip = (n: Node): Node => {
    const interfaces = new Map<string, Iface>();
    for (const [k, i] of n.interfaces)
      interfaces.set(k, { ...i, addrs: i.addrs.filter((a) => !g.vips.includes(a.prefix.addr)) });
    return { ...n, interfaces };
  };
  for (const m of failed) nodes.set(m.guest, strip(nodes.get(m.guest)!));
  const t = nodes.get(takeover.guest)!;
  const interfaces = new Map(t.interfaces);
  // With use_vmac the VIPs live on the macvlan interface carrying the VMAC (`vrrp.51@eth0`) when the guest has one.
  const vmac = srcMac(takeover);
  const nic =
    [...interfaces.values()].find((i) => i.mac === vmac && i.kind !== 'loopback') ?? interfaces.get(takeover.nic.name)!;
  const added: AddressAssignment[] = takeover.instance.virtualIpaddresses.flatMap((v) =>
    v.address.family === 'ipv4' && !ownsAddress(t, v.address.addr as Ipv4)
      ? [
          {
            prefix: { addr: v.address.addr as Ipv4, len: v.prefixLength ?? 32 },
            label: v.dev ?? nic.name,
            origin: implicit(`${takeover.guest} takes ${v.text} over (vrrp_instance ${takeover.instance.name})`),
          },
        ]
      : [],
  );
  interfaces.set(nic.name, { ...nic, addrs: [...nic.addrs, ...added] });
  nodes.set(takeover.guest, { ...t, interfaces });
  let next: LoadedScenario = { ...loaded, scenario: { ...loaded.scenario, nodes } };
  // Gratuitous ARP from the new master, walked through the cluster after the addresses moved.
  const session = openSession(next);
  const garp = g.vips.map((vip) => {
    const walk = walkFrame(
      session,
      takeover.guest,
      takeover.nic!.name,
      garpFrame(takeover, vip),
      1_700_000_000_000_000_000n,
    );
    const caching = [...nodes.values()].filter((n) => n.neighbours.has(vip) && n.name !== takeover.guest);
    const missed = caching.filter((n) => !walk?.reached.has(n.name)).map((n) => n.name);
    return { vip, ...(walk ? { walk } : {}), missed, reachedNodes: walk?.reached ?? new Set<string>() };
  });
  const mac = nic.mac;
  const updated = new Map(nodes);
  for (const { vip, reachedNodes } of garp)
    for (const n of updated.values()) {
      if (!n.neighbours.has(vip) || !reachedNodes.has(n.name)) continue;
      const neighbours = new Map<Ipv4, NeighbourEntry>(n.neighbours);
      neighbours.set(vip, {
        ...n.neighbours.get(vip)!,
        mac,
        origin: implicit(`gratuitous ARP from ${takeover.guest} for ${formatIpv4(vip)}`),
      });
      updated.set(n.name, { ...n, neighbours });
    }
  next = { ...next, scenario: { ...next.scenario, nodes: updated } };
  return {
    group: g,
    failed,
    takeover,
    loaded: next,
    garp: garp.map(({ vip, walk, missed }) => ({ vip, ...(walk ? { walk } : {}), missed })),
  };
}
