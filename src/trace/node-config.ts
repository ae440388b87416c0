/**
 * What a node's kernel configuration answers: the routing table (longest-prefix match), per-interface IPv4
 * sysctls as the kernel combines them, and which interface owns an address.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { ipv4Mask } from '../addr/prefix.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { Iface, Node, Route } from '../topology/model.ts';
import { type FlowKey, lookupRoute as lookupRouteIn } from '../topology/routing.ts';

/**
 * The route the kernel uses for `dst` (policy rules, tables, longest prefix, lowest metric; see
 * `topology/routing.ts`). `key` carries what rules can match: the source address, the input interface.
 */
export function lookupRoute(node: Node, dst: Ipv4, key?: FlowKey): Route | undefined {
  return lookupRouteIn(node, dst, key);
}

/** Effective value of a per-interface sysctl: the kernel takes max(all, interface) for arp_* and rp_filter. */
export function effectiveSysctl(node: Node, key: string, ifname: string): { value: number; origin: Origin } {
  const all = node.sysctl.get(`net.ipv4.conf.all.${key}`);
  const dev = node.sysctl.get(`net.ipv4.conf.${ifname}.${key}`);
  const a = all ? Number(all.value) : 0;
  const d = dev ? Number(dev.value) : 0;
  if (!all && !dev)
    return { value: 0, origin: implicit(`net.ipv4.conf.{all,${ifname}}.${key} unknown: kernel default 0`) };
  if (dev && d >= a) return { value: d, origin: dev.origin };
  return { value: a, origin: all!.origin };
}

const SYSCTL_CACHE = new WeakMap<Node, Map<string, { value: number; origin: Origin }>>();

/** `effectiveSysctl`, computed once per node, key and interface. */
export function sysctlMax(node: Node, key: string, ifname: string): { value: number; origin: Origin } {
  let cache = SYSCTL_CACHE.get(node);
  if (!cache) {
    cache = new Map();
    SYSCTL_CACHE.set(node, cache);
  }
  const k = `${key} ${ifname}`;
  let v = cache.get(k);
  if (!v) {
    v = effectiveSysctl(node, key, ifname);
    cache.set(k, v);
  }
  return v;
}

/** A boolean sysctl (e.g. `net.ipv4.ip_forward`); unknown is the kernel default 0. */
export function sysctlFlag(node: Node, key: string): { on: boolean; origin: Origin } {
  const v = node.sysctl.get(key);
  if (!v) return { on: false, origin: implicit(`${key} unknown: kernel default 0`) };
  return { on: v.value.trim() === '1', origin: v.origin };
}

/** The interface of the node that holds address `a`, if any (the first in interface order). */
export function localAddress(node: Node, a: Ipv4): { iface: Iface; prefixLen: number; origin: Origin } | undefined {
  for (const i of node.interfaces.values())
    for (const ad of i.addrs)
      if (ad.prefix.addr === a) return { iface: i, prefixLen: ad.prefix.len, origin: ad.origin };
  return undefined;
}

const ADDR_TYPES = new WeakMap<Node, (a: Ipv4) => string>();

/**
 * The routing type of an address as the node's local table says (`-m addrtype`, `inet_addr_type`): LOCAL for its own
 * addresses and 127.0.0.0/8, BROADCAST for 255.255.255.255 and its subnets' broadcast addresses, MULTICAST, else
 * UNICAST.
 */
export function addrTypeOf(node: Node): (a: Ipv4) => string {
  let f = ADDR_TYPES.get(node);
  if (f === undefined) {
    const local = new Set<number>();
    const bcast = new Set<number>([0xffffffff]);
    for (const i of node.interfaces.values())
      for (const ad of i.addrs) {
        local.add(ad.prefix.addr);
        if (ad.prefix.len < 31) bcast.add((ad.prefix.addr | ~ipv4Mask(ad.prefix.len)) >>> 0);
      }
    f = (a: Ipv4) =>
      local.has(a) || a >>> 24 === 127
        ? 'LOCAL'
        : bcast.has(a >>> 0)
          ? 'BROADCAST'
          : a >>> 28 === 0xe
            ? 'MULTICAST'
            : 'UNICAST';
    ADDR_TYPES.set(node, f);
  }
  return f;
}

const UPPERS = new WeakMap<Node, Map<string, Iface[]>>();

/** Devices whose lower device is `lower` (macvlans and VLANs stacked on it), computed once per node. */
export function uppersOf(node: Node, lower: string): readonly Iface[] {
  let m = UPPERS.get(node);
  if (m === undefined) {
    m = new Map();
    for (const i of node.interfaces.values()) if (i.lower !== undefined) m.set(i.lower, [...(m.get(i.lower) ?? []), i]);
    UPPERS.set(node, m);
  }
  return m.get(lower) ?? [];
}
