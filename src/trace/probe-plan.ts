/**
 * The one list of probes diagnose and lab run: the scenario's own, then the ones lvsdoctor adds, each saying what
 * it is, why it was added, and whether its failure is an error. Added probes: every TCP virtual service from the
 * client (the scheduler's own choice), a connection to every real server each service can send to, ARP for every
 * VIP from the gateway, and each real server on its own address (information: real servers need not be reachable
 * directly — in two-armed NAT they are private by design).
 */

import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { prefixContains } from '../addr/prefix.ts';
import { formatServiceKey, type IpvsService } from '../ipvs/model.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec, ProbeSpec, TcpProbeSpec, UdpProbeSpec } from '../topology/model.ts';
import { fwmarkTargets } from './fwmark-targets.ts';
import { defaultProbes } from './session.ts';

export type ProbePurpose = 'asked' | 'service' | 'real-server' | 'vip-arp' | 'rs-direct';

export interface PlannedProbe<S extends AnyProbeSpec = ProbeSpec> {
  readonly spec: S;
  readonly purpose: ProbePurpose;
  /** The virtual service it exercises (`formatServiceKey`), for service and real-server probes. */
  readonly service?: string;
  /** What the probe is and why it runs, in words. */
  readonly why: string;
  /** False for checks whose failure is information, not a fault of the design. */
  readonly decisive: boolean;
}

function same(a: AnyProbeSpec, b: AnyProbeSpec): boolean {
  if (a.kind !== b.kind || a.from !== b.from) return false;
  if ((a.kind === 'tcp' && b.kind === 'tcp') || (a.kind === 'udp' && b.kind === 'udp'))
    return (
      a.to === b.to &&
      a.dport === b.dport &&
      a.realServer?.addr === b.realServer?.addr &&
      a.realServer?.port === b.realServer?.port
    );
  return a.kind === 'arp' && b.kind === 'arp' && a.target === b.target;
}

/** Which client flows the scheduler sends to `d` (words for the report). */
export function flowFor(svc: IpvsService, index: number): string {
  const usable = svc.destinations.filter((d) => (d.weight ?? 1) > 0);
  const d = svc.destinations[index]!;
  const w = d.weight ?? 1;
  const total = usable.reduce((n, x) => n + (x.weight ?? 1), 0);
  const sched = svc.scheduler ?? 'wlc';
  const persist = svc.persistence ? `; persistence then keeps each client there for ${svc.persistence.timeout} s` : '';
  switch (sched) {
    case 'rr':
      return `${sched}: one new connection in ${usable.length} (position ${usable.indexOf(d) + 1} of the cycle)${persist}`;
    case 'wrr':
      return `${sched}: ${w} new connection${w === 1 ? '' : 's'} in ${total} (weight ${w})${persist}`;
    case 'sh':
    case 'dh':
    case 'mh':
      return `${sched}: the clients whose ${sched === 'dh' ? 'destination' : 'source'} address hashes to its slots (weight ${w} of ${total})${persist}`;
    default:
      return `${sched}: new connections while it has the fewest connections for its weight (${w})${persist}`;
  }
}

/** A real server's address is reachable from the LAN side: in a subnet of the gateway's. */
function publicAddress(loaded: LoadedScenario, a: Ipv4): boolean {
  for (const n of loaded.scenario.nodes.values()) {
    if (n.kind !== 'gateway') continue;
    for (const i of n.interfaces.values()) for (const x of i.addrs) if (prefixContains(x.prefix, a)) return true;
  }
  return false;
}

export function probePlan(loaded: LoadedScenario): PlannedProbe[] {
  const out: PlannedProbe[] = loaded.scenario.probes.map((spec) => ({
    spec,
    purpose: 'asked' as const,
    why: 'listed in scenario.yaml',
    decisive: true,
  }));
  const add = (p: PlannedProbe) => {
    if (!out.some((o) => same(o.spec, p.spec))) out.push(p);
  };
  const services = new Map<string, IpvsService>();
  for (const [director, table] of loaded.ipvs)
    for (const svc of table.services) {
      if (svc.key.kind === 'addr' && svc.key.address.family === 'ipv4' && svc.key.protocol === 'TCP')
        services.set(`${svc.key.address.addr} ${svc.key.port}`, svc);
      // An fwmark service is reached at every address and TCP port the director's mangle rules mark for it.
      if (svc.key.kind === 'fwmark' && svc.key.family === 'ipv4')
        for (const t of fwmarkTargets(loaded.scenario.nodes.get(director)?.mangle, svc.key.fwmark))
          if (!services.has(`${t.vip} ${t.port}`)) services.set(`${t.vip} ${t.port}`, svc);
    }
  const defaults = defaultProbes(loaded);
  let k = defaults.length;
  for (const spec of defaults) {
    if (spec.kind === 'arp') {
      add({
        spec,
        purpose: 'vip-arp',
        why: `the gateway must learn a MAC for VIP ${formatIpv4(spec.target)} (who answers its ARP)`,
        decisive: true,
      });
      continue;
    }
    const svc = services.get(`${spec.to} ${spec.dport}`);
    if (svc) {
      add({
        spec,
        purpose: 'service',
        service: formatServiceKey(svc.key),
        why: `the virtual service ${formatIpv4(spec.to)}:${spec.dport} from the client, to the real server the scheduler picks first`,
        decisive: true,
      });
      for (const p of pinnedProbes(
        svc,
        (n, rs, origin) => ({
          ...spec,
          name: `${spec.name}-to-${formatIpv4(rs.addr)}-${rs.port}`,
          sport: 40000 + n,
          seq: 1000 + n * 7919,
          ipId: 1 + n,
          tsval: 1 + n,
          timeNs: spec.timeNs + BigInt(n) * 1_000_000_000n,
          realServer: rs,
          origin,
        }),
        () => k++,
      ))
        add({
          ...p,
          why: `a connection to ${formatIpv4(spec.to)}:${spec.dport} that the director sends to real server ${formatIpv4(p.spec.realServer!.addr)}:${p.spec.realServer!.port} (${p.spec.realServer!.flow})`,
        });
      continue;
    }
    const isPublic = publicAddress(loaded, spec.to);
    add({
      spec,
      purpose: 'rs-direct',
      why: isPublic
        ? `real server ${formatIpv4(spec.to)}:${spec.dport} on its own address, to tell its faults from the director's (information: clients use the VIP)`
        : `real server ${formatIpv4(spec.to)}:${spec.dport} on its own address (information: it is in no subnet of the gateway, private by design as in two-armed NAT)`,
      decisive: false,
    });
  }
  return out;
}

/**
 * One probe pinned to each real server the scheduler can choose (weight > 0, IPv4), when there are at least two:
 * IPVS state is fresh for every probe, so the scheduler's own choice alone would exercise only its first pick.
 */
function pinnedProbes<S extends TcpProbeSpec | UdpProbeSpec>(
  svc: IpvsService,
  make: (n: number, rs: { addr: Ipv4; port: number; flow: string }, origin: IpvsService['origin']) => S,
  next: () => number,
): PlannedProbe<S>[] {
  const usable = svc.destinations.filter((d) => (d.weight ?? 1) > 0 && d.address.family === 'ipv4');
  if (usable.length < 2) return [];
  const out: PlannedProbe<S>[] = [];
  svc.destinations.forEach((d, index) => {
    if ((d.weight ?? 1) <= 0 || d.address.family !== 'ipv4') return;
    const rs = { addr: d.address.addr as Ipv4, port: d.port, flow: flowFor(svc, index) };
    out.push({
      spec: make(next(), rs, d.origin),
      purpose: 'real-server',
      service: formatServiceKey(svc.key),
      why: '',
      decisive: true,
    });
  });
  return out;
}

/**
 * What diagnose runs: the plan above and, for every IPv4 UDP virtual service, one datagram from the client (the
 * scheduler's own choice) and one pinned to each real server it can choose. `lab` runs it too, less the pinned
 * probes.
 */
export function diagnosisPlan(loaded: LoadedScenario): PlannedProbe<AnyProbeSpec>[] {
  const out: PlannedProbe<AnyProbeSpec>[] = [...probePlan(loaded)];
  const client = [...loaded.scenario.nodes.values()].find((n) => n.kind === 'client');
  if (!client) return out;
  const seen = new Set<string>();
  const t0 = 1_700_000_500_000_000_000n;
  let k = 0;
  for (const table of loaded.ipvs.values())
    for (const svc of table.services) {
      const key = svc.key;
      if (key.kind !== 'addr' || key.protocol !== 'UDP' || key.address.family !== 'ipv4') continue;
      const vip = key.address.addr as Ipv4;
      if (seen.has(`${vip} ${key.port}`)) continue;
      seen.add(`${vip} ${key.port}`);
      const n0 = k++;
      const spec: UdpProbeSpec = {
        kind: 'udp',
        name: `udp-${formatIpv4(vip)}-${key.port}`,
        from: client.name,
        to: vip,
        dport: key.port,
        sport: 50000 + n0,
        ipId: 30000 + n0,
        timeNs: t0 + BigInt(n0) * 1_000_000_000n,
        origin: svc.origin,
      };
      out.push({
        spec,
        purpose: 'service',
        service: formatServiceKey(key),
        why: `the UDP virtual service ${formatIpv4(vip)}:${key.port}: a datagram from the client, to the real server the scheduler picks first, and its answer`,
        decisive: true,
      });
      for (const p of pinnedProbes(
        svc,
        (n, rs, origin): UdpProbeSpec => ({
          ...spec,
          name: `${spec.name}-to-${formatIpv4(rs.addr)}-${rs.port}`,
          sport: 50000 + n,
          ipId: 30000 + n,
          timeNs: t0 + BigInt(n) * 1_000_000_000n,
          realServer: rs,
          origin,
        }),
        () => k++,
      ))
        out.push({
          ...p,
          why: `a datagram to ${formatIpv4(vip)}:${key.port}/udp that the director sends to real server ${formatIpv4(p.spec.realServer!.addr)}:${p.spec.realServer!.port} (${p.spec.realServer!.flow})`,
        });
    }
  return out;
}

/** A virtual service no probe of the plan exercises, and why: a healthy verdict does not vouch for it. */
export interface UncheckedService {
  /** `FWM 1 on lb1`, `TCP [2001:db8::10]:80 on lb1`. */
  readonly what: string;
  readonly why: string;
}

export function uncheckedServices(
  loaded: LoadedScenario,
  plan: readonly PlannedProbe<AnyProbeSpec>[],
): UncheckedService[] {
  const probed = new Set<string>();
  for (const p of plan) {
    if (!p.decisive) continue;
    if (p.service !== undefined) probed.add(p.service);
    // A probe the scenario lists exercises the service at its address too.
    if (p.spec.kind !== 'arp')
      probed.add(
        formatServiceKey({
          kind: 'addr',
          protocol: p.spec.kind === 'udp' ? 'UDP' : 'TCP',
          address: { family: 'ipv4', addr: p.spec.to },
          port: p.spec.dport,
        }),
      );
  }
  const hasClient = [...loaded.scenario.nodes.values()].some((n) => n.kind === 'client');
  const out: UncheckedService[] = [];
  const seen = new Set<string>();
  for (const [director, table] of loaded.ipvs)
    for (const svc of table.services) {
      const name = formatServiceKey(svc.key);
      if (probed.has(name) || seen.has(name)) continue;
      seen.add(name);
      const key = svc.key;
      const why =
        key.kind === 'fwmark'
          ? loaded.scenario.nodes.get(director)?.mangle === undefined
            ? `a fwmark service takes the packets that iptables mangle rules mark; the scenario gives no iptables-save of ${director}, so which packets reach it is unknown and it is not probed`
            : `no mangle PREROUTING rule of ${director} marks ${key.fwmark} for a single destination address and TCP port, so no probe reaches it`
          : key.address.family === 'ipv6'
            ? 'IPv6 traffic is not traced (its filters are checked statically)'
            : key.protocol === 'SCTP'
              ? 'SCTP is not traced'
              : !hasClient
                ? 'the scenario has no client to send from'
                : 'no probe of the plan reaches it';
      out.push({ what: `${name} on ${director}`, why });
    }
  return out;
}

/** The specs of the plan, in order (what lab runs). */
export function plannedSpecs(loaded: LoadedScenario): ProbeSpec[] {
  return probePlan(loaded).map((p) => p.spec);
}
