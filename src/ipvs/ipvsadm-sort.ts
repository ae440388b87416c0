/**
 * The order ipvsadm prints services and destinations in (libipvs `ipvs_cmp_services` / `ipvs_cmp_dests`), including
 * its quirk: addresses are compared as `int r = ntohl(a) - ntohl(b)`, so two IPv4 addresses that differ by 2^31 or
 * more compare the wrong way round (192.168.0.1 sorts before 10.0.0.1).
 */
import { ipv6ToGroups } from '../addr/ipv6.ts';
import {
  IPVS_PROTOCOL_NUMBER,
  type IpAddress,
  type IpvsDestination,
  type IpvsService,
  type IpvsTable,
} from './model.ts';

const AF_INET = 2;
const AF_INET6 = 10;

/** C `int` result of subtracting two unsigned 32-bit values. */
function cdiff(a: number, b: number): number {
  return (a - b) | 0;
}

function words(a: IpAddress): readonly [number, number, number, number] {
  if (a.family === 'ipv4') return [a.addr, 0, 0, 0];
  const g = ipv6ToGroups(a.addr);
  return [
    ((g[0]! << 16) | g[1]!) >>> 0,
    ((g[2]! << 16) | g[3]!) >>> 0,
    ((g[4]! << 16) | g[5]!) >>> 0,
    ((g[6]! << 16) | g[7]!) >>> 0,
  ];
}

function compareAddr(family: 'ipv4' | 'ipv6', a: IpAddress, b: IpAddress): number {
  const wa = words(a);
  const wb = words(b);
  if (family === 'ipv4') return cdiff(wa[0], wb[0]);
  let r = 0;
  for (let i = 0; !r && i < 4; i++) r = cdiff(wa[i]!, wb[i]!);
  return r;
}

export function compareServicesLikeIpvsadm(s1: IpvsService, s2: IpvsService): number {
  const k1 = s1.key;
  const k2 = s2.key;
  const fw1 = k1.kind === 'fwmark' ? k1.fwmark : 0;
  const fw2 = k2.kind === 'fwmark' ? k2.fwmark : 0;
  let r = cdiff(fw1, fw2);
  if (r) return r;
  const af1 = (k1.kind === 'fwmark' ? k1.family : k1.address.family) === 'ipv4' ? AF_INET : AF_INET6;
  const af2 = (k2.kind === 'fwmark' ? k2.family : k2.address.family) === 'ipv4' ? AF_INET : AF_INET6;
  r = af1 - af2;
  if (r) return r;
  if (k1.kind === 'fwmark' || k2.kind === 'fwmark') return 0;
  r = IPVS_PROTOCOL_NUMBER[k1.protocol] - IPVS_PROTOCOL_NUMBER[k2.protocol];
  if (r) return r;
  r = compareAddr(k1.address.family, k1.address, k2.address);
  if (r) return r;
  return k1.port - k2.port;
}

export function compareDestinationsLikeIpvsadm(d1: IpvsDestination, d2: IpvsDestination): number {
  const r = compareAddr(d1.address.family, d1.address, d2.address);
  if (r) return r;
  return d1.port - d2.port;
}

/** The table as `ipvsadm -L` (without `--nosort`) orders it. The result has `order: 'sorted'`. */
export function sortLikeIpvsadm(table: IpvsTable): IpvsTable {
  if (table.order === 'sorted') return table;
  const services = [...table.services]
    .map((s) => ({ ...s, destinations: [...s.destinations].sort(compareDestinationsLikeIpvsadm) }))
    .sort(compareServicesLikeIpvsadm);
  return { order: 'sorted', services };
}
