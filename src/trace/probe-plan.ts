/**
 * The one list of probes diagnose and lab run: the scenario's own, then the ones lvsdoctor adds, each saying what
 * it is, why it was added, and whether its failure is an error. Added probes: every TCP virtual service from the
 * client (the scheduler's own choice), a connection to every real server each service can send to, ARP for every
 * VIP from the gateway, and each real server on its own address (information: real servers need not be reachable
 * directly — in two-armed NAT they are private by design).
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { prefixContains } from '../addr/prefix.ts';
import type { IpvsService } from '../ipvs/model.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { ProbeSpec, TcpProbeSpec } from '../topology/model.ts';
import { defaultProbes } from './session.ts';

export type ProbePurpose = 'asked' | 'service' | 'real-server' | 'vip-arp' | 'rs-direct';

export interface PlannedProbe {
  readonly spec: ProbeSpec;
  readonly purpose: ProbePurpose;
  /** What the probe is and why it runs, in words. */
  readonly why: string;
  /** False for checks whose failure is information, not a fault of the design. */
  readonly decisive: boolean;
}

function same(a: ProbeSpec, b: ProbeSpec): boolean {
  if (a.kind !== b.kind || a.from !== b.from) return false;
  if (a.kind === 'tcp' && b.kind === 'tcp')
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
  for (const table of loaded.ipvs.values())
    for (const svc of table.services)
      if (svc.key.kind === 'addr' && svc.key.address.family === 'ipv4' && svc.key.protocol === 'TCP')
        services.set(`${svc.key.address.addr} ${svc.key.port}`, svc);
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
        why: `the virtual service ${formatIpv4(spec.to)}:${spec.dport} from the client, to the real server the scheduler picks first`,
        decisive: true,
      });
      // Every real server the scheduler can choose, pinned one at a time.
      const usable = svc.destinations.filter((d) => (d.weight ?? 1) > 0 && d.address.family === 'ipv4');
      if (usable.length < 2) continue;
      svc.destinations.forEach((d, index) => {
        if ((d.weight ?? 1) <= 0 || d.address.family !== 'ipv4') return;
        const addr = d.address.addr as Ipv4;
        const n = k++;
        const pinned: TcpProbeSpec = {
          ...spec,
          name: `${spec.name}-to-${formatIpv4(addr)}-${d.port}`,
          sport: 40000 + n,
          seq: 1000 + n * 7919,
          ipId: 1 + n,
          tsval: 1 + n,
          timeNs: spec.timeNs + BigInt(n) * 1_000_000_000n,
          realServer: { addr, port: d.port, flow: flowFor(svc, index) },
          origin: d.origin,
        };
        add({
          spec: pinned,
          purpose: 'real-server',
          why: `a connection to ${formatIpv4(spec.to)}:${spec.dport} that the director sends to real server ${formatIpv4(addr)}:${d.port} (${flowFor(svc, index)})`,
          decisive: true,
        });
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

/** The specs of the plan, in order (what lab runs). */
export function plannedSpecs(loaded: LoadedScenario): ProbeSpec[] {
  return probePlan(loaded).map((p) => p.spec);
}
