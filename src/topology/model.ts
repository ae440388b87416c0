/**
 * The scenario model: nodes (hypervisor hosts, guests, the gateway, the client), their interfaces, bridges,
 * addresses, routes, neighbours, sysctls, IPVS tables and the ebtables rules on each host, and the L2 segments
 * and links joining them. Built by `loadScenario` from raw artifacts plus the scenario YAML.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { Ipv4Prefix } from '../addr/prefix.ts';
import type { NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import type { Origin } from '../source/origin.ts';
import type { RouteType, RuleEntry } from './ip-route.ts';

export type NodeKind = 'host' | 'guest' | 'gateway' | 'client';
export type GuestRole = 'director' | 'real-server' | 'other';
/**
 * `macvlan`: a device with a MAC of its own on a lower device's wire (keepalived's `use_vmac`); `vlan`: tags its
 * frames with `vlanId` on the lower device; `bond`: sends through one of its slaves (ports whose `master` it is) and
 * receives what they receive; `veth`: one end of a pair (a container's NIC).
 */
/**
 * Every interface kind, with what the front ends need to know of it: how a host's interface of that kind appears
 * in a topology drawing (undefined: not drawn). How frames enter and leave it is the simulator's device of the kind
 * (`trace/devices.ts`); the reader names it after `ip -d link`'s kind where they agree (`topology/ip-addr.ts`).
 */
export const IFACE_KINDS = {
  ether: { drawnAs: 'uplink' },
  loopback: { drawnAs: undefined },
  bridge: { drawnAs: 'bridge' },
  tap: { drawnAs: 'tap' },
  tunnel: { drawnAs: 'uplink' },
  macvlan: { drawnAs: 'uplink' },
  vlan: { drawnAs: 'uplink' },
  bond: { drawnAs: 'uplink' },
  veth: { drawnAs: 'uplink' },
} as const satisfies Readonly<Record<string, { readonly drawnAs: 'bridge' | 'tap' | 'uplink' | undefined }>>;

export type IfaceKind = keyof typeof IFACE_KINDS;

export function isIfaceKind(k: string): k is IfaceKind {
  return Object.hasOwn(IFACE_KINDS, k);
}

export interface AddressAssignment {
  readonly prefix: Ipv4Prefix;
  readonly label: string;
  readonly origin: Origin;
}

/** Where the other end of a point-to-point attachment is (a tap and the guest NIC behind it). */
export interface Peer {
  readonly node: string;
  readonly iface: string;
}

export interface Iface {
  readonly name: string;
  readonly kind: IfaceKind;
  readonly mac: Mac;
  readonly addrs: readonly AddressAssignment[];
  readonly up: boolean;
  /** Name of the bridge (or bond) this interface is a port (slave) of. */
  readonly master?: string;
  /** For `macvlan` and `vlan`: the device whose wire it uses (`vrrp.51@eth0` → eth0). */
  readonly lower?: string;
  readonly vlanId?: number;
  /** macvlan or bond mode as `ip -d` prints it. */
  readonly mode?: string;
  /** The device MTU (absent: 1500). */
  readonly mtu?: number;
  /** For taps and guest NICs: the other end. */
  readonly peer?: Peer;
  /** For uplinks and the gateway: the L2 segment it is plugged into. */
  readonly segment?: string;
  /** A point-to-point link without ARP (the client's path through the internet). */
  readonly pointToPoint?: boolean;
  /** For a bridge: VLAN filtering on (`ip link set BR type bridge vlan_filtering 1`, Proxmox `bridge-vlan-aware yes`). */
  readonly vlanFiltering?: boolean;
  /**
   * On a VLAN-filtering bridge: this port's VLANs (`bridge vlan`), or for the bridge itself those of its own
   * `self` port. Absent: the kernel's default, VLAN 1 as PVID and egress untagged.
   */
  readonly bridgeVlans?: BridgeVlans;
  readonly origin: Origin;
}

/** A bridge port's VLAN membership (`bridge vlan add dev PORT vid V [pvid] [untagged]`). */
export interface BridgeVlans {
  /** Untagged frames arriving on the port belong to this VLAN; without one they are dropped. */
  readonly pvid?: number;
  /** VLANs that leave the port untagged (each is also a member). */
  readonly untagged: readonly number[];
  /** Tagged member VLANs, as ranges [first, last]. */
  readonly tagged: readonly (readonly [number, number])[];
  readonly origin: Origin;
}

/** The kernel's default VLANs of a port of a VLAN-filtering bridge: `vid 1 pvid untagged`. */
export const DEFAULT_BRIDGE_VLANS: BridgeVlans = {
  pvid: 1,
  untagged: [1],
  tagged: [],
  origin: { kind: 'implicit', label: 'bridge default_pvid 1: VLAN 1 PVID, egress untagged' },
};

/** Whether `vid` is a member VLAN of the port (untagged or tagged). */
export function vlanMember(v: BridgeVlans, vid: number): boolean {
  return v.untagged.includes(vid) || v.tagged.some(([a, b]) => vid >= a && vid <= b);
}

export interface Route {
  readonly dst: Ipv4Prefix;
  readonly via?: Ipv4;
  readonly dev?: string;
  readonly src?: Ipv4;
  readonly metric: number;
  readonly type: RouteType;
  /** The routing table (`main` when absent), as `ip route show table all` names it. */
  readonly table?: string;
  /** `onlink`: the gateway is on the device's link whatever its subnet. */
  readonly onlink?: boolean;
  /** `mtu N` on the route: the path MTU towards its destinations. */
  readonly mtu?: number;
  /** `advmss N` on the route: the MSS TCP advertises to its destinations. */
  readonly advmss?: number;
  readonly origin: Origin;
}

/** A policy routing rule (`ip rule`): which table a lookup consults, in priority order. */
export interface RoutingRule {
  readonly priority: number;
  readonly not: boolean;
  readonly from?: Ipv4Prefix;
  readonly to?: Ipv4Prefix;
  readonly iif?: string;
  readonly oif?: string;
  readonly fwmark?: { readonly value: number; readonly mask: number };
  readonly action: RuleEntry['action'];
  readonly origin: Origin;
}

export interface NeighbourEntry {
  readonly mac: Mac;
  readonly iface?: string;
  readonly origin: Origin;
}

export interface Listener {
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
  readonly origin: Origin;
}

export interface SysctlValue {
  readonly value: string;
  readonly origin: Origin;
}

/** A filter binding on a host port, as libvirt creates it from a domain interface. */
export interface PortBinding {
  readonly host: string;
  readonly domain: string;
  readonly binding: NwFilterBinding;
}

export interface Node {
  readonly name: string;
  readonly kind: NodeKind;
  readonly role: GuestRole;
  readonly interfaces: ReadonlyMap<string, Iface>;
  readonly routes: readonly Route[];
  /** `ip rule` as the scenario gives it; absent: the kernel's three default rules (local, main, default). */
  readonly rules?: readonly RoutingRule[];
  readonly neighbours: ReadonlyMap<Ipv4, NeighbourEntry>;
  readonly sysctl: ReadonlyMap<string, SysctlValue>;
  readonly listeners: readonly Listener[];
  /** For guests: the hypervisor they run on. */
  readonly host?: string;
  /** The initial TTL of packets this node originates. */
  readonly ttl: number;
  readonly origin: Origin;
  /**
   * The node's own iptables mangle table (a guest's `iptables-save`): PREROUTING runs on every IPv4 packet it
   * receives, and the mark it sets selects an IPVS fwmark virtual service (`ipvsadm -A -f N`).
   */
  readonly mangle?: IptTable;
  /**
   * The node's own iptables nat table. A guest's (`iptables-save`): its POSTROUTING rewrites the source of packets a
   * NAT director forwards to real servers when `net.ipv4.vs.conntrack=1` (full NAT). A hypervisor's (`hosts.*.
   * iptables-save`): the whole table applies to what it routes, bridges through br_netfilter and sends (`host-nat.ts`).
   */
  readonly nat?: IptTable;
  /**
   * The node's own iptables filter table (a guest's `iptables-save`, or the filter chains of its `nft list ruleset`):
   * INPUT, FORWARD and OUTPUT judge the packets its own stack receives, forwards and sends (IPVS's transmit included).
   */
  readonly filter?: IptTable;
  /** The node's own iptables raw table: PREROUTING and OUTPUT, before conntrack (NOTRACK, DROP). */
  readonly raw?: IptTable;
  /**
   * keepalived's own nft table for strict instances without `accept` (`keepalived-strict.ts`): INPUT drops packets to
   * their VIPs, OUTPUT packets from them, at priority -1 — before the node's filter table and IPVS.
   */
  readonly keepalivedDrops?: IptTable;
  /**
   * Multicast groups a program of the node joined, per interface (keepalived's VRRP group 224.0.0.18 on an
   * instance's interface): packets to them are delivered locally (`ip_route_input_mc`), through LOCAL_IN.
   */
  readonly joinedGroups?: readonly { readonly iface: string; readonly group: Ipv4; readonly origin: Origin }[];
}

export interface Segment {
  readonly name: string;
  readonly members: readonly Peer[];
  readonly origin: Origin;
}

export type ProbeSpec = TcpProbeSpec | ArpProbeSpec;

export interface TcpProbeSpec {
  readonly kind: 'tcp';
  readonly name: string;
  readonly from: string;
  readonly to: Ipv4;
  readonly dport: number;
  readonly sport: number;
  readonly seq: number;
  readonly ipId: number;
  readonly window: number;
  readonly tsval: number;
  /** Start time, nanoseconds since the epoch. */
  readonly timeNs: bigint;
  readonly origin: Origin;
  /**
   * A connection to one chosen real server of the virtual service: the director's IPVS picks this destination (as
   * its scheduler does for `flow`), so every real server is traced, not only the scheduler's first choice.
   */
  readonly realServer?: { readonly addr: Ipv4; readonly port: number; readonly flow: string };
}

/**
 * A UDP exchange with a virtual service: one datagram (a DNS-sized query) from the client to VIP:port, answered by
 * the real server from VIP:port (DR/TUN) or through the director (NAT). diagnose adds one for every UDP virtual
 * service, and `lab` sends them for real (a datagram; its servers answer from the address it was sent to). They are
 * not part of `ProbeSpec`, the scenario's own probe kinds.
 */
export interface UdpProbeSpec {
  readonly kind: 'udp';
  readonly name: string;
  readonly from: string;
  readonly to: Ipv4;
  readonly dport: number;
  readonly sport: number;
  readonly ipId: number;
  /** Start time, nanoseconds since the epoch. */
  readonly timeNs: bigint;
  readonly origin: Origin;
  /** As for TCP: the director's IPVS sends this datagram to this destination. */
  readonly realServer?: { readonly addr: Ipv4; readonly port: number; readonly flow: string };
}

/** Every probe the simulator traces: the scenario's kinds and the UDP exchanges diagnose adds. */
export type AnyProbeSpec = ProbeSpec | UdpProbeSpec;

export interface ArpProbeSpec {
  readonly kind: 'arp';
  readonly name: string;
  /** Node that asks (it must have an interface in the target's subnet). */
  readonly from: string;
  readonly target: Ipv4;
  readonly timeNs: bigint;
  readonly origin: Origin;
}

export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** Directory the scenario was loaded from (as the user named it). */
  readonly dir: string;
  readonly nodes: ReadonlyMap<string, Node>;
  readonly segments: readonly Segment[];
  readonly bindings: readonly PortBinding[];
  readonly probes: readonly ProbeSpec[];
  /** Things lvsdoctor assumed because no artifact said otherwise. */
  readonly assumptions: readonly string[];
}
