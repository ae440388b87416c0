/**
 * The fleet summary of a diagnosis (imported bundles of many hypervisors): per hypervisor how many guests and
 * failing ones, per IPVS service its director, real servers and probe verdicts, the findings grouped by code with
 * the ports they name, and one row per guest. Everything comes from the report; the page only pages through it.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Report } from '../diagnose/types.ts';
import { formatAddrPort, formatServiceKey } from '../ipvs/model.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Node } from '../topology/model.ts';
import type { FleetGuest, FleetView } from './contract.ts';

function ipsOf(n: Node): Ipv4[] {
  const out: Ipv4[] = [];
  for (const i of n.interfaces.values()) if (i.kind !== 'loopback') for (const a of i.addrs) out.push(a.prefix.addr);
  return out;
}

const ROLE = { director: 'director', 'real-server': 'real server', other: 'guest' } as const;

export function fleetView(loaded: LoadedScenario, r: Report): FleetView {
  const nodes = [...loaded.scenario.nodes.values()];
  const guests = nodes.filter((n) => n.kind === 'guest');
  const byAddr = new Map<Ipv4, string>();
  for (const g of guests) for (const a of ipsOf(g)) byAddr.set(a, g.name);
  // Where a finding is named (`host:tap` or a node) → the guest it concerns.
  const guestAt = new Map<string, string>();
  for (const g of guests) {
    guestAt.set(g.name, g.name);
    for (const i of g.interfaces.values()) if (i.peer) guestAt.set(`${i.peer.node}:${i.peer.iface}`, g.name);
  }
  const findingsOf = new Map<string, string[]>();
  for (const f of r.findings) {
    const g = guestAt.get(f.where) ?? guestAt.get(f.where.split(':')[0]!);
    if (g) findingsOf.set(g, [...new Set([...(findingsOf.get(g) ?? []), f.code])]);
  }
  const rows: FleetGuest[] = guests.map((g) => {
    const port = [...g.interfaces.values()].find((i) => i.peer)?.peer;
    return {
      name: g.name,
      host: g.host ?? '',
      role: ROLE[g.role],
      ips: ipsOf(g).map(formatIpv4).join(' '),
      port: port ? `${port.node}:${port.iface}` : '',
      findings: findingsOf.get(g.name) ?? [],
    };
  });
  const hosts = nodes
    .filter((n) => n.kind === 'host')
    .map((h) => {
      const mine = rows.filter((g) => g.host === h.name);
      return {
        name: h.name,
        guests: mine.length,
        directors: mine.filter((g) => g.role === 'director').length,
        realServers: mine.filter((g) => g.role === 'real server').length,
        failing: mine.filter((g) => g.findings.length > 0).length,
      };
    });
  const clusters: FleetView['clusters'][number][] = [];
  // Services no probe exercised (IPv6, SCTP, fwmark without mangle rules…), by `SERVICE on DIRECTOR`; a backup
  // director's copy of a service is named once, on the first director.
  const uncheckedAt = new Map(r.unchecked.map((u) => [u.what, u.why]));
  const uncheckedService = new Map(r.unchecked.map((u) => [u.what.replace(/ on [^ ]+$/, ''), u.why]));
  for (const [director, table] of loaded.ipvs)
    for (const s of table.services) {
      const key = s.key;
      const name = formatServiceKey(key);
      const why = uncheckedAt.get(`${name} on ${director}`) ?? uncheckedService.get(name);
      const realServers = s.destinations.map(
        (d) =>
          `${formatAddrPort(d.address, d.port)}${d.address.family === 'ipv4' && byAddr.has(d.address.addr) ? ` (${byAddr.get(d.address.addr)})` : ''}`,
      );
      if (key.kind !== 'addr' || key.address.family !== 'ipv4') {
        // No address to match probes by (fwmark) or not traced (IPv6): listed, with the reason when unchecked.
        clusters.push({
          service: name,
          director,
          realServers,
          probes: [],
          ...(why !== undefined ? { unchecked: why } : {}),
        });
        continue;
      }
      const vip = key.address.addr;
      const rsAddrs = s.destinations.flatMap((d) => (d.address.family === 'ipv4' ? [d.address.addr] : []));
      const probes = r.traces
        .filter((t) =>
          t.probe.kind === 'arp'
            ? t.probe.target === vip
            : (t.probe.to === vip &&
                t.probe.dport === key.port &&
                (t.probe.kind === 'udp') === (key.protocol === 'UDP')) ||
              rsAddrs.includes(t.probe.to),
        )
        .map((t) => ({ probe: t.probe.name, ok: t.disposition === 'replied', disposition: t.disposition }));
      clusters.push({ service: name, director, realServers, probes, ...(why !== undefined ? { unchecked: why } : {}) });
    }
  const directors = [...new Set(clusters.map((c) => c.director))].map((name) => {
    const mine = clusters.filter((c) => c.director === name);
    return { name, services: mine.length, unchecked: mine.filter((c) => c.unchecked !== undefined).length };
  });
  const groups = new Map<string, { code: string; severity: string; title: string; where: string[] }>();
  for (const f of r.findings) {
    const g = groups.get(f.code) ?? { code: f.code, severity: f.severity, title: f.title, where: [] };
    g.where.push(f.where);
    groups.set(f.code, g);
  }
  return {
    hosts,
    clusters,
    directors,
    byFinding: [...groups.values()].map((g) => ({ ...g, count: g.where.length })),
    guests: rows,
  };
}
