/**
 * A session: a loaded scenario turned into a runnable dataplane — nwfilter bindings compiled into each host's
 * ebtables, IPVS engines for directors — plus helpers to run probes from a fresh state.
 */

import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { EbStyle } from '../netfilter/ebtables-model.ts';
import type { Issue } from '../source/issue.ts';
import type { Origin } from '../source/origin.ts';
import { compileAllHostRules, compileHostRules, type HostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec, ProbeSpec } from '../topology/model.ts';
import { buildDataplane, type Dataplane, type DataplaneEngines, resetDataplane } from './dataplane.ts';
import type { BridgeFirewall, IpvsEngine } from './engines.ts';
import { makeBridgeFirewall } from './firewall.ts';
import { fwmarkTargets } from './fwmark-targets.ts';
import { makeIpvsEngine } from './ipvs-engine.ts';
import { traceProbe } from './probe.ts';
import type { Trace } from './types.ts';

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

/**
 * Performance: a firewall only reads its tables, so the host rules (reused across sessions by `compileHostRules`
 * while a host's filters and bindings are unchanged) keep theirs.
 */
const firewallCache = new WeakMap<HostRules, Map<string, BridgeFirewall>>();
function firewallOf(r: HostRules, brnf: boolean, style: EbStyle): BridgeFirewall {
  let m = firewallCache.get(r);
  if (m === undefined) {
    m = new Map();
    firewallCache.set(r, m);
  }
  const key = `${brnf}${style}`;
  let fw = m.get(key);
  if (fw === undefined) {
    fw = makeBridgeFirewall({ nat: r.nat, ...(brnf && r.filter4 ? { ip4: r.filter4 } : {}) }, style);
    m.set(key, fw);
  }
  return fw;
}

/**
 * Performance: nothing is compiled when the session opens. A host's nwfilter bindings are compiled the first time a
 * frame meets its bridge (and reused across sessions while its filters and bindings are unchanged, see
 * `compileHostRules`); `hostRules` and `issues` compile every host when first read, with the same results.
 */
export function openSession(loaded: LoadedScenario, options: SessionOptions = {}): Session {
  const style = options.style ?? 'nft';
  const nodes = loaded.scenario.nodes;
  const firewalls = new Map<string, BridgeFirewall | undefined>();
  const firewallOfHost = (name: string): BridgeFirewall | undefined => {
    if (firewalls.has(name)) return firewalls.get(name);
    const node = nodes.get(name);
    let fw: BridgeFirewall | undefined;
    if (node?.kind === 'host') {
      const r = compileHostRules(loaded, node.name, style);
      // br_netfilter hands bridged IPv4 to iptables when net.bridge.bridge-nf-call-iptables=1 (its default once loaded).
      const brnf = node.sysctl.get('net.bridge.bridge-nf-call-iptables')?.value.trim() === '1';
      // A host whose iptables-save was given is evaluated with the rules it really has (its own policies included).
      const installed = loaded.installedIptables?.get(node.name);
      const ipsets = loaded.installedIpsets?.get(node.name);
      const raw = loaded.installedRaw?.get(node.name);
      const ebFilter = loaded.installedEbFilter?.get(node.name) ?? loaded.proxmox?.get(node.name)?.ebFilter;
      const nftBridge = loaded.proxmox?.get(node.name)?.nft?.guests;
      const nftBridgeArp = loaded.proxmox?.get(node.name)?.nft?.guestsArp;
      fw = installed
        ? makeBridgeFirewall(
            {
              nat: r.nat,
              ...(ebFilter ? { filter: ebFilter } : {}),
              ...(nftBridge ? { nftBridge } : {}),
              ...(nftBridgeArp ? { nftBridgeArp } : {}),
              ...(brnf ? { ip4: installed } : {}),
              ...(brnf && raw ? { raw } : {}),
              host4: installed,
              ...(ipsets ? { ipsets } : {}),
            },
            style,
          )
        : firewallOf(r, brnf, style);
    }
    firewalls.set(name, fw);
    return fw;
  };
  const ipvs = new Map<string, () => IpvsEngine>();
  for (const [director, table] of loaded.ipvs) {
    const kernel = loaded.kernels.get(director);
    const sysctl = nodes.get(director)?.sysctl;
    const connections = loaded.ipvsConnections?.get(director)?.rows;
    ipvs.set(director, () =>
      makeIpvsEngine(table, {
        ...(kernel ? { kernel } : {}),
        ...(sysctl ? { sysctl } : {}),
        ...(connections ? { connections } : {}),
      }),
    );
  }
  const engines: DataplaneEngines = { firewalls: { get: firewallOfHost }, ipvs };
  let all: ReturnType<typeof compileAllHostRules> | undefined;
  const compileAll = () => {
    all ??= compileAllHostRules(loaded, style);
    return all;
  };
  return {
    loaded,
    get hostRules() {
      return compileAll().hostRules;
    },
    engines,
    pristine: buildDataplane(loaded.scenario, engines),
    get issues() {
      return compileAll().issues;
    },
  };
}

/** Runs one probe from the scenario's initial state. */
export function runProbe(session: Session, probe: AnyProbeSpec): Trace {
  return traceProbe(resetDataplane(session.pristine, enginesFor(session, probe)), probe);
}

const PINNED = new WeakMap<Session, Map<string, DataplaneEngines>>();

/**
 * The engines a probe runs with: the session's, except for a probe aimed at one real server (`realServer`), whose
 * directors schedule that virtual service to that destination only.
 */
export function enginesFor(session: Session, probe: AnyProbeSpec): DataplaneEngines {
  if (probe.kind === 'arp' || probe.realServer === undefined) return session.engines;
  const rs = probe.realServer;
  const protocol = probe.kind === 'udp' ? 'UDP' : 'TCP';
  const key = `${protocol} ${probe.to} ${probe.dport} ${rs.addr} ${rs.port}`;
  let byKey = PINNED.get(session);
  if (byKey === undefined) {
    byKey = new Map();
    PINNED.set(session, byKey);
  }
  const known = byKey.get(key);
  if (known) return known;
  const ipvs = new Map(session.engines.ipvs);
  for (const [director, table] of session.loaded.ipvs) {
    let hit = false;
    // The fwmark services whose mangle rules mark this probe (pinned like the address service they stand for).
    const marked = new Set(
      table.services
        .filter(
          (svc) =>
            svc.key.kind === 'fwmark' &&
            protocol === 'TCP' &&
            fwmarkTargets(session.loaded.scenario.nodes.get(director)?.mangle, svc.key.fwmark).some(
              (t) => t.vip === probe.to && t.port === probe.dport,
            ),
        )
        .map((svc) => svc.key),
    );
    const services = table.services.map((svc) => {
      const k = svc.key;
      if (
        !marked.has(k) &&
        (k.kind !== 'addr' ||
          k.protocol !== protocol ||
          k.address.family !== 'ipv4' ||
          k.address.addr !== probe.to ||
          k.port !== probe.dport)
      )
        return svc;
      hit = true;
      return {
        ...svc,
        destinations: svc.destinations.filter(
          (d) => d.address.family === 'ipv4' && d.address.addr === rs.addr && d.port === rs.port,
        ),
      };
    });
    if (!hit) continue;
    const kernel = session.loaded.kernels.get(director);
    ipvs.set(director, () => makeIpvsEngine({ ...table, services }, { ...(kernel ? { kernel } : {}) }));
  }
  const engines: DataplaneEngines = { ...session.engines, ipvs };
  byKey.set(key, engines);
  return engines;
}

/** The probes to run when none is asked for: the scenario's own, or the defaults. */
export function probesOf(loaded: LoadedScenario): ProbeSpec[] {
  return loaded.scenario.probes.length > 0 ? [...loaded.scenario.probes] : defaultProbes(loaded);
}

/**
 * Sensible probes for any scenario: a TCP SYN from the client to every IPv4 IPVS service (for an fwmark service, to
 * each address and port the director's mangle rules mark) and to every real server directly, and an ARP request from
 * the gateway for every VIP.
 */
export function defaultProbes(loaded: LoadedScenario): ProbeSpec[] {
  const s = loaded.scenario;
  const out: ProbeSpec[] = [];
  const client = [...s.nodes.values()].find((n) => n.kind === 'client');
  const gateway = [...s.nodes.values()].find((n) => n.kind === 'gateway');
  const t0 = 1_700_000_000_000_000_000n;
  let k = 0;
  const tcp = (name: string, to: Ipv4, dport: number, origin: Origin): ProbeSpec => ({
    kind: 'tcp',
    name,
    from: client!.name,
    to,
    dport,
    sport: 40000 + k,
    seq: 1000 + k * 7919,
    ipId: 1 + k,
    window: 64240,
    tsval: 1 + k,
    timeNs: t0 + BigInt(k++) * 1_000_000_000n,
    origin,
  });
  const seen = new Set<string>();
  for (const [director, table] of loaded.ipvs)
    for (const svc of table.services) {
      // An fwmark service is probed with a packet the director's mangle rules mark (to the address and TCP port
      // they name); its real servers as an address service's.
      if (svc.key.kind === 'fwmark' && svc.key.family === 'ipv4' && client) {
        for (const t of fwmarkTargets(s.nodes.get(director)?.mangle, svc.key.fwmark)) {
          if (seen.has(`t ${t.vip} ${t.port}`)) continue;
          seen.add(`t ${t.vip} ${t.port}`);
          out.push(tcp(`tcp-fwm${svc.key.fwmark}-${formatIpv4(t.vip)}-${t.port}`, t.vip, t.port, t.origin));
        }
        continue;
      }
      if (svc.key.kind !== 'addr' || svc.key.address.family !== 'ipv4') continue;
      const vip = svc.key.address.addr;
      if (client && svc.key.protocol === 'TCP' && !seen.has(`t ${vip} ${svc.key.port}`)) {
        seen.add(`t ${vip} ${svc.key.port}`);
        out.push(tcp(`tcp-${formatIpv4(vip)}-${svc.key.port}`, vip, svc.key.port, svc.origin));
      }
      if (gateway && !seen.has(`a ${vip}`)) {
        seen.add(`a ${vip}`);
        out.push({
          kind: 'arp',
          name: `arp-${formatIpv4(vip)}`,
          from: gateway.name,
          target: vip,
          timeNs: t0 + BigInt(k++) * 1_000_000_000n,
          origin: svc.origin,
        });
      }
      if (!client || svc.key.protocol !== 'TCP') continue;
      for (const d of svc.destinations) {
        if (d.address.family !== 'ipv4' || seen.has(`t ${d.address.addr} ${d.port}`)) continue;
        seen.add(`t ${d.address.addr} ${d.port}`);
        out.push(tcp(`tcp-rs-${formatIpv4(d.address.addr)}-${d.port}`, d.address.addr, d.port, d.origin));
      }
    }
  return out;
}
