/**
 * A probe is a conversation, not a SYN: after the handshake the client sends a full-size request and the server a
 * full-size response. This file holds what sizes them — MTUs of devices and routes, the MSS each end advertises
 * (`advmss` of the route, else the path MTU minus 40) — and the packets of the data exchange, including the ICMP
 * "fragmentation needed" a router or director sends back when a packet with DF set is larger than the next link.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Iface, Node, Route } from '../topology/model.ts';
import { emitIpv4Packet } from '../wire/ipv4.ts';
import { type IcmpMessage, type Ipv4Packet, TCP_ACK, TCP_PSH, type TcpSegment } from '../wire/types.ts';
import { lookupRoute } from './node-config.ts';

/** IPv4 + TCP headers with the timestamp option, as Linux sends data segments. */
export const TCP_IP_OVERHEAD = 52;
export const IPIP_OVERHEAD = 20;

/** The device MTU (`ip link` prints it; loopback 65536, tunl0 1480, else 1500 when unknown). */
export function ifaceMtu(i: Iface): number {
  if (i.mtu !== undefined) return i.mtu;
  if (i.kind === 'loopback') return 65536;
  if (i.kind === 'tunnel') return 1480;
  return 1500;
}

/** The MTU a packet meets leaving through `out` by route `r` (`dst_mtu`: the route's `mtu` wins). */
export function pathMtu(r: Route | undefined, out: Iface): number {
  const dev = ifaceMtu(out);
  return r?.mtu !== undefined ? Math.min(r.mtu, dev) : dev;
}

/**
 * The MSS a node advertises to `peer` (`tcp_mss_clamp`/`tcp_advertise_mss`): the route's `advmss`, else the MTU of
 * the route's device minus 40.
 */
export function advertisedMss(node: Node, peer: Ipv4, src?: Ipv4): number {
  const r = lookupRoute(node, peer, src !== undefined ? { src } : undefined);
  if (r?.advmss !== undefined) return r.advmss;
  return pathMss(node, peer, src);
}

/** The largest segment a node sends toward `peer` by its own path MTU (`advmss` only changes what it advertises). */
export function pathMss(node: Node, peer: Ipv4, src?: Ipv4): number {
  const r = lookupRoute(node, peer, src !== undefined ? { src } : undefined);
  const dev = r ? (r.dev ?? (r.via !== undefined ? lookupRoute(node, r.via)?.dev : undefined)) : undefined;
  const out = dev !== undefined ? node.interfaces.get(dev) : undefined;
  return (out ? pathMtu(r, out) : 1500) - 40;
}

const PAYLOADS = new Map<number, Uint8Array>();

/** A payload of `n` bytes (shared: payloads are never written). */
export function payloadOf(n: number): Uint8Array {
  let p = PAYLOADS.get(n);
  if (p === undefined) {
    p = new Uint8Array(Math.max(0, n));
    PAYLOADS.set(n, p);
  }
  return p;
}

/** A full-size data segment (ACK|PSH) of `bytes` bytes from `src:sport` to `dst:dport`. */
export function dataSegment(init: {
  readonly src: Ipv4;
  readonly dst: Ipv4;
  readonly sport: number;
  readonly dport: number;
  readonly seq: number;
  readonly ack: number;
  readonly bytes: number;
  readonly ttl: number;
  readonly id: number;
  readonly tsval: number;
  readonly tsecr: number;
}): Ipv4Packet {
  const seg: TcpSegment = {
    kind: 'tcp',
    srcPort: init.sport,
    dstPort: init.dport,
    seq: init.seq >>> 0,
    ack: init.ack >>> 0,
    flags: TCP_ACK | TCP_PSH,
    window: 502,
    urgent: 0,
    options: [{ kind: 'nop' }, { kind: 'nop' }, { kind: 'timestamp', val: init.tsval, ecr: init.tsecr }],
    payload: payloadOf(init.bytes),
  };
  return {
    kind: 'ipv4',
    tos: 0,
    id: init.id,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: init.ttl,
    protocol: 6,
    src: init.src,
    dst: init.dst,
    payload: seg,
  };
}

/** Bytes of TCP payload a data segment carries. */
export function tcpPayloadBytes(pkt: Ipv4Packet): number {
  return pkt.payload.kind === 'tcp' ? pkt.payload.payload.length : 0;
}

export const ICMP_DEST_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4;

/** ICMP "fragmentation needed" (RFC 1191) from `src` to the sender of `orig`, announcing `mtu`. */
export function fragNeeded(src: Ipv4, orig: Ipv4Packet, mtu: number, ttl: number): Ipv4Packet {
  const icmp: IcmpMessage = {
    kind: 'icmp',
    type: ICMP_DEST_UNREACH,
    code: ICMP_FRAG_NEEDED,
    rest: mtu & 0xffff,
    // The original IP header and the first 8 bytes of its payload (its ports), as RFC 792 asks.
    payload: emitIpv4Packet(orig).slice(0, 28),
  };
  return {
    kind: 'ipv4',
    tos: 0xc0,
    id: 0,
    dontFragment: false,
    moreFragments: false,
    fragmentOffset: 0,
    ttl,
    protocol: 1,
    src,
    dst: orig.src,
    payload: icmp,
  };
}

/** The MTU an ICMP "fragmentation needed" announces, or undefined for other packets. */
export function fragNeededMtu(pkt: Ipv4Packet): number | undefined {
  const p = pkt.payload;
  return p.kind === 'icmp' && p.type === ICMP_DEST_UNREACH && p.code === ICMP_FRAG_NEEDED ? p.rest & 0xffff : undefined;
}
