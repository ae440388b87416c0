/**
 * A session: a loaded scenario turned into a runnable dataplane — nwfilter bindings compiled into each host's
 * ebtables, IPVS engines for directors — plus helpers to run probes from a fresh state.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import type { EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import type { Issue } from '../source/issue.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { ProbeSpec } from '../topology/model.ts';
import { buildDataplane, type Dataplane, type DataplaneEngines, resetDataplane } from './dataplane.ts';
import type { BridgeFirewall, IpvsEngine } from './engines.ts';
import { makeBridgeFirewall } from './firewall.ts';
import { compileHostRules } from './host-rules.ts';
import { makeIpvsEngine } from './ipvs-engine.ts';
import { traceProbe } from './probe.ts';
import type { Trace } from './types.ts';

export interface HostRules {
  readonly nat: EbTable;
  readonly issues: readonly Issue[];
}

export interface Session {
  readonly loaded: LoadedScenario;
  readonly hostRules: ReadonlyMap<string, HostRules>;
  readonly engines: DataplaneEngines;
  readonly pristine: Dataplane;
  /** Problems met while compiling filters or building engines (e.g. an unknown filter). */
  readonly issues: readonly Issue[];
}

export interface SessionOptions {
  /** Listing conventions of the hosts' ebtables (default nft, as on Debian 12). */
  readonly style?: EbStyle;
}

export function openSession(loaded: LoadedScenario, options: SessionOptions = {}): Session {
  const style = options.style ?? 'nft';
  const issues: Issue[] = [];
  const hostRules = new Map<string, HostRules>();
  const firewalls = new Map<string, BridgeFirewall>();
  for (const node of loaded.scenario.nodes.values()) {
    if (node.kind !== 'host') continue;
    const r = compileHostRules(loaded, node.name, style);
    issues.push(...r.issues);
    hostRules.set(node.name, r);
    firewalls.set(node.name, makeBridgeFirewall({ nat: r.nat }, style));
  }
  const ipvs = new Map<string, () => IpvsEngine>();
  for (const [director, table] of loaded.ipvs) {
    const kernel = loaded.kernels.get(director);
    ipvs.set(director, () => makeIpvsEngine(table, { ...(kernel ? { kernel } : {}) }));
  }
  const engines: DataplaneEngines = { firewalls, ipvs };
  return { loaded, hostRules, engines, pristine: buildDataplane(loaded.scenario, engines), issues };
}

/** Runs one probe from the scenario's initial state. */
export function runProbe(session: Session, probe: ProbeSpec): Trace {
  return traceProbe(resetDataplane(session.pristine, session.engines), probe);
}

/**
 * The probes to run: the scenario's own, or when it names none, a TCP probe from the client to every IPVS service
 * and an ARP probe from the gateway for every VIP.
 */
export function probesOf(loaded: LoadedScenario): ProbeSpec[] {
  const s = loaded.scenario;
  if (s.probes.length > 0) return [...s.probes];
  const out: ProbeSpec[] = [];
  const client = [...s.nodes.values()].find((n) => n.kind === 'client');
  const gateway = [...s.nodes.values()].find((n) => n.kind === 'gateway');
  const t0 = 1_700_000_000_000_000_000n;
  let k = 0;
  for (const [director, table] of loaded.ipvs)
    for (const svc of table.services) {
      if (svc.key.kind !== 'addr' || svc.key.address.family !== 'ipv4') continue;
      const vip = svc.key.address.addr;
      const origin = svc.origin;
      if (client && svc.key.protocol === 'TCP')
        out.push({
          kind: 'tcp',
          name: `tcp-${formatIpv4(vip)}-${svc.key.port}`,
          from: client.name,
          to: vip,
          dport: svc.key.port,
          sport: 40000 + k,
          seq: 1000,
          ipId: 1 + k,
          window: 64240,
          tsval: 1,
          timeNs: t0 + BigInt(k++) * 1_000_000_000n,
          origin,
        });
      if (gateway && !out.some((p) => p.kind === 'arp' && p.target === vip))
        out.push({
          kind: 'arp',
          name: `arp-${formatIpv4(vip)}`,
          from: gateway.name,
          target: vip,
          timeNs: t0 + BigInt(k++) * 1_000_000_000n,
          origin,
        });
      void director;
    }
  return out;
}
