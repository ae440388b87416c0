/** Static checks of IPVS configuration against the topology (LVS-DR requirements, usable servers, persistence). */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { prefixContains } from '../../addr/prefix.ts';
import { formatAddrPort, formatServiceKey, type IpvsService, SCHED_FLAG_1 } from '../../ipvs/model.ts';
import type { Node } from '../../topology/model.ts';
import { effectiveSysctl } from '../../trace/node-config.ts';
import { ipv4Services, nicOwning, ownsAddress, serviceVip } from '../facts.ts';
import { sysctlFix } from '../sysctl-fix.ts';
import { isStandbyFor } from '../vrrp.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';

interface DrTarget {
  readonly director: Node;
  readonly svc: IpvsService;
  readonly vip: Ipv4;
  readonly rsAddr: Ipv4;
  readonly rsPort: number;
  readonly rs?: Node;
}

/**
 * Every DR destination (or, with `withTunnels`, DR and TUN: both deliver packets still addressed to the VIP) of
 * every IPv4 service, with the guest that owns the real-server address if modelled.
 */
function drTargets(ctx: DiagnoseContext, withTunnels = false): DrTarget[] {
  const out: DrTarget[] = [];
  for (const name of ctx.loaded.ipvs.keys()) {
    const director = ctx.loaded.scenario.nodes.get(name);
    if (!director) continue;
    for (const svc of ipv4Services(ctx.loaded, name))
      for (const d of svc.destinations) {
        const kind = d.forwarding?.kind ?? 'route';
        if ((kind !== 'route' && !(withTunnels && kind === 'tunnel')) || d.address.family !== 'ipv4') continue;
        const rs = nicOwning(ctx.loaded, d.address.addr as Ipv4)?.node;
        out.push({
          director,
          svc,
          vip: serviceVip(svc)!,
          rsAddr: d.address.addr as Ipv4,
          rsPort: d.port,
          ...(rs ? { rs } : {}),
        });
      }
  }
  return out;
}

/** A TUN destination whose real server has no tunl0 up: tun-no-ipip names that (its fix adds the VIP too). */
function tunnelWithoutIpip(t: DrTarget): boolean {
  const d = t.svc.destinations.find((x) => x.address.family === 'ipv4' && x.address.addr === t.rsAddr);
  if (d?.forwarding?.kind !== 'tunnel' || !t.rs) return false;
  return ![...t.rs.interfaces.values()].some((i) => i.kind === 'tunnel' && i.name.startsWith('tunl') && i.up);
}

function once<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => (seen.has(key(t)) ? false : (seen.add(key(t)), true)));
}

function vipMissing(kind: FindingKind, name: string, svc: IpvsService, vip: Ipv4): Detected {
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `director ${name} does not have VIP ${formatIpv4(vip)}`,
      explanation: `IPVS schedules only packets the director delivers locally (LOCAL_IN); ${formatIpv4(vip)} is none of ${name}'s addresses, so ${formatServiceKey(svc.key)} never sees a packet (its counters stay 0). Add the VIP (keepalived virtual_ipaddress or ip addr add) on the interface facing the clients.`,
      where: name,
      culprit: svc.origin,
    },
    fixes: [],
  };
}

export const directorVipMissing: FindingKind = {
  code: 'director-vip-missing',
  severity: 'error',
  title: 'The director does not have the VIP',
  source: 'static',
  needs: 'an IPVS service whose VIP is not an address of the director (IPVS sees only locally delivered packets)',
  check(ctx) {
    const out: Detected[] = [];
    for (const [name] of ctx.loaded.ipvs) {
      const d = ctx.loaded.scenario.nodes.get(name);
      if (!d) continue;
      for (const svc of ipv4Services(ctx.loaded, name)) {
        const vip = serviceVip(svc)!;
        // A keepalived standby: its peer holds the VIP now, and adding it here would be an address conflict.
        if (ownsAddress(d, vip) || isStandbyFor(ctx.loaded, name, vip)) continue;
        out.push(vipMissing(this, name, svc, vip));
      }
    }
    return out;
  },
  detect(ctx, trace) {
    // A probe to a VIP nobody holds fails (no ARP answer, or a host that does not own it): that is this fault.
    const target = trace.probe.kind === 'arp' ? trace.probe.target : trace.probe.to;
    for (const [name] of ctx.loaded.ipvs) {
      const d = ctx.loaded.scenario.nodes.get(name);
      if (!d) continue;
      for (const svc of ipv4Services(ctx.loaded, name)) {
        if (serviceVip(svc) !== target) continue;
        if (trace.probe.kind !== 'arp' && svc.key.kind === 'addr' && svc.key.port !== trace.probe.dport) continue;
        if (ownsAddress(d, target) || isStandbyFor(ctx.loaded, name, target)) return undefined;
        const held = [...ctx.loaded.ipvs.keys()].some((x) => {
          const n = ctx.loaded.scenario.nodes.get(x);
          return n !== undefined && ownsAddress(n, target);
        });
        if (held) return undefined;
        return vipMissing(this, name, svc, target);
      }
    }
    return undefined;
  },
};

export const rsVipMissing: FindingKind = {
  code: 'rs-vip-missing',
  severity: 'error',
  title: 'A DR or TUN real server does not have the VIP',
  source: 'static',
  needs: 'a Route (DR) or Tunnel destination modelled as a guest that does not own the VIP',
  detect(ctx, trace) {
    // The probe's packet died at a real server that lacks the VIP: that is this fault, not a second one.
    if (trace.disposition === 'replied' || trace.stage !== 'request') return undefined;
    return this.check?.(ctx).find((d) => d.finding.where === trace.end.place.node);
  },
  check(ctx) {
    return once(
      drTargets(ctx, true).filter((t) => t.rs && !ownsAddress(t.rs, t.vip) && !tunnelWithoutIpip(t)),
      (t) => `${t.rs!.name} ${t.vip}`,
    ).map((t) => ({
      finding: {
        code: this.code,
        severity: this.severity,
        title: `real server ${t.rs!.name} does not have VIP ${formatIpv4(t.vip)}`,
        explanation: `With DR (and TUN, once decapsulated) the packet reaches ${t.rs!.name} with the VIP ${formatIpv4(t.vip)} still as destination; a server without the VIP discards it (or forwards it back if ip_forward=1). Configure it on lo (DR) or tunl0 (TUN): ip addr add ${formatIpv4(t.vip)}/32 dev lo, with arp_ignore=1 and arp_announce=2.`,
        where: t.rs!.name,
        culprit: t.svc.origin,
      },
      fixes: [],
    }));
  },
};

export const rsArpProblem: FindingKind = {
  code: 'rs-arp-problem',
  severity: 'warning',
  title: 'A real server may answer ARP for the VIP (the "ARP problem")',
  source: 'static',
  needs:
    'a DR real server that owns the VIP with net.ipv4.conf.{all,IFACE}.arp_ignore < 1 (or the VIP on the LAN interface), or arp_announce < 2',
  check(ctx) {
    const out: Detected[] = [];
    for (const t of once(
      drTargets(ctx, true).filter((x) => x.rs && ownsAddress(x.rs, x.vip)),
      (x) => `${x.rs!.name} ${x.vip}`,
    )) {
      const rs = t.rs!;
      const lan = [...rs.interfaces.values()].find(
        (i) => i.kind !== 'loopback' && i.addrs.some((a) => prefixContains(a.prefix, t.rsAddr)),
      );
      if (!lan) continue;
      const ignore = effectiveSysctl(rs, 'arp_ignore', lan.name);
      const announce = effectiveSysctl(rs, 'arp_announce', lan.name);
      const vipOnLan = lan.addrs.find((a) => a.prefix.addr === t.vip);
      // The VIP on the LAN interface is answered for (arp_ignore 0, 1, 3), except with arp_ignore=2 when no sender
      // can be in its subnet there (a /32: arp_ignore=2 also wants the sender in the target's subnet) or with 8.
      const answers = vipOnLan
        ? ignore.value < 8 && !(ignore.value === 2 && vipOnLan.prefix.len === 32)
        : ignore.value === 0;
      const announces = announce.value < 2;
      if (!answers && !announces) continue;
      const why = [
        answers
          ? vipOnLan
            ? `the VIP is on ${lan.name} itself, so ${rs.name} answers ARP for it`
            : `arp_ignore=${ignore.value} on ${lan.name} lets ${rs.name} answer ARP for the VIP configured on another interface`
          : '',
        announces ? `arp_announce=${announce.value} lets it use the VIP as ARP sender address` : '',
      ].filter((x) => x !== '');
      out.push({
        finding: {
          code: this.code,
          severity: answers ? 'error' : 'warning',
          title: `real server ${rs.name} ${answers ? 'answers' : 'may announce'} ARP for VIP ${formatIpv4(t.vip)}`,
          explanation: `${why.join('; ')}. Routers and clients that learn the VIP from a real server bypass the director: traffic lands on one server, or flaps between MACs.`,
          where: `${rs.name}:${lan.name}`,
          culprit: answers ? ignore.origin : announce.origin,
        },
        fixes: vipOnLan
          ? []
          : [
              sysctlFix(
                rs,
                [
                  ['net.ipv4.conf.all.arp_ignore', '1'],
                  ['net.ipv4.conf.all.arp_announce', '2'],
                  [`net.ipv4.conf.${lan.name}.arp_ignore`, '1'],
                  [`net.ipv4.conf.${lan.name}.arp_announce`, '2'],
                ],
                'a DR real server must not answer or announce ARP for the VIP',
                100,
              ),
            ],
      });
    }
    return out;
  },
};

export const drAcrossL3: FindingKind = {
  code: 'dr-across-l3',
  severity: 'error',
  title: "A DR real server is not on the director's segment",
  source: 'static',
  needs: "a Route (DR) destination whose address is in none of the director's connected subnets",
  detect(ctx, trace) {
    // The probe was scheduled to such a destination: its failure (a loop, an unresolved ARP…) is this fault.
    if (trace.disposition === 'replied') return undefined;
    const chosen = trace.path
      .map((id) => trace.hops[id]!)
      .flatMap((h) => h.steps)
      .find((st) => st.kind === 'ipvs' && st.outcome === 'forwarded' && st.method === 'Route');
    if (chosen?.kind !== 'ipvs' || chosen.destinationOrigin === undefined) return undefined;
    return this.check?.(ctx).find((d) => d.finding.culprit === chosen.destinationOrigin);
  },
  check(ctx) {
    return drTargets(ctx)
      .filter(
        (t) =>
          ![...t.director.interfaces.values()].some(
            (i) =>
              i.kind !== 'loopback' && i.addrs.some((a) => a.prefix.len < 32 && prefixContains(a.prefix, t.rsAddr)),
          ),
      )
      .map((t) => ({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `DR destination ${formatIpv4(t.rsAddr)} is not on a segment of director ${t.director.name}`,
          explanation: `DR rewrites only the destination MAC: the frame goes to the next hop of the route to the real server (the real server itself on its own segment), with the VIP still as IP destination. ${formatIpv4(t.rsAddr)} is in none of ${t.director.name}'s subnets, so the frame goes to a router (or nowhere), which routes it by the VIP — not to the real server. The real server must share an L2 segment with the director; use TUN (-i) or NAT (-m) across routers.`,
          where: t.director.name,
          culprit: t.svc.destinations.find((d) => d.address.addr === t.rsAddr)?.origin ?? t.svc.origin,
        },
        fixes: [],
      }));
  },
};

export const drPortRemap: FindingKind = {
  code: 'dr-port-remap',
  severity: 'warning',
  title: 'A DR destination names another port than the service',
  source: 'static',
  needs: 'a Route (DR) destination whose port differs from the virtual service port',
  check(ctx) {
    return drTargets(ctx)
      .filter((t) => t.svc.key.kind === 'addr' && t.rsPort !== t.svc.key.port)
      .map((t) => ({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `${formatServiceKey(t.svc.key)} → ${formatIpv4(t.rsAddr)}:${t.rsPort} cannot remap the port in DR`,
          explanation: `DR rewrites only MAC addresses; the packet keeps destination port ${t.svc.key.kind === 'addr' ? t.svc.key.port : '?'} (ipvsadm forces the service port for -g). The real server must listen there; use NAT (-m) to remap ports.`,
          where: t.director.name,
          culprit: t.svc.destinations.find((d) => d.address.addr === t.rsAddr)?.origin ?? t.svc.origin,
        },
        fixes: [],
      }));
  },
};

export const noUsableRealServer: FindingKind = {
  code: 'no-usable-real-server',
  severity: 'error',
  title: 'A service has no usable real server',
  source: 'static',
  needs: 'an IPVS service without destinations, with every weight 0, or sh/mh without fallback and a weight-0 server',
  detect(ctx, trace) {
    if (trace.disposition !== 'no-real-server') return undefined;
    return this.check?.(ctx).find((d) => d.finding.where === trace.end.place.node);
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const [name, table] of ctx.loaded.ipvs)
      for (const svc of table.services) {
        const usable = svc.destinations.filter((d) => (d.weight ?? 1) > 0);
        const hashed = svc.scheduler === 'sh' || svc.scheduler === 'mh';
        const quiesced = svc.destinations.filter((d) => d.weight === 0);
        if (usable.length > 0 && hashed && quiesced.length > 0 && (svc.schedFlags & SCHED_FLAG_1) === 0) {
          // sh/mh hash a client to a server; without *-fallback a weight-0 server's clients get no destination.
          out.push({
            finding: {
              code: this.code,
              severity: this.severity,
              title: `${formatServiceKey(svc.key)} on ${name}: ${svc.scheduler} without ${svc.scheduler}-fallback has weight-0 servers (${quiesced.map((d) => formatAddrPort(d.address, d.port)).join(', ')})`,
              explanation: `${svc.scheduler} hashes each client to one real server; the clients that hash to a weight-0 server get "no destination available" (ICMP port unreachable) instead of another server, unless the service has the ${svc.scheduler}-fallback flag (-b ${svc.scheduler}-fallback).`,
              where: name,
              culprit: svc.origin,
            },
            fixes: [],
          });
          continue;
        }
        if (usable.length > 0) continue;
        out.push({
          finding: {
            code: this.code,
            severity: this.severity,
            title: `${formatServiceKey(svc.key)} on ${name} has ${svc.destinations.length === 0 ? 'no real server' : 'only real servers of weight 0'}`,
            explanation: `New connections get "no destination available" and the client an ICMP port unreachable ("connection refused" at once). Health checks may have removed or quiesced the servers.`,
            where: name,
            culprit: svc.origin,
          },
          fixes: [],
        });
      }
    return out;
  },
};

export const persistenceSticks: FindingKind = {
  code: 'persistence-sticks',
  severity: 'info',
  title: 'Persistence keeps a client on one real server',
  source: 'static',
  needs: 'a persistent IPVS service',
  check(ctx) {
    const out: Detected[] = [];
    for (const [name, table] of ctx.loaded.ipvs)
      for (const svc of table.services) {
        if (!svc.persistence) continue;
        out.push({
          finding: {
            code: this.code,
            severity: this.severity,
            title: `${formatServiceKey(svc.key)} is persistent (${svc.persistence.timeout} s)`,
            explanation: `Every connection from the same client (network) goes to the same real server until ${svc.persistence.timeout} s after its last connection ends: testing from one client looks like "not balancing". Long-lived TCP connections (ESTABLISHED times out after 900 s) have the same effect.`,
            where: name,
            culprit: svc.origin,
          },
          fixes: [],
        });
      }
    return out;
  },
};
