/** NAT and TUN requirements: the director forwards NAT replies, real servers route them back, TUN servers decapsulate. */
import { formatIpv4, type Ipv4, parseIpv4 } from '../../addr/ipv4.ts';
import { prefixContains } from '../../addr/prefix.ts';
import { implicit } from '../../source/origin.ts';
import { commentName, fileNamePart, shellCommand } from '../../source/shell.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Iface, Node } from '../../topology/model.ts';
import { natPostrouting } from '../../trace/firewall.ts';
import { effectiveSysctl, lookupRoute } from '../../trace/node-config.ts';
import type { NetfilterStep, Trace } from '../../trace/types.ts';
import { ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet, TCP_SYN } from '../../wire/types.ts';
import { ipv4Services, nicOwning, serviceVip } from '../facts.ts';
import { sysctlFix } from '../sysctl-fix.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';

interface MethodTarget {
  readonly director: Node;
  readonly rs: Node;
  readonly vip: Ipv4;
  readonly rsAddr: Ipv4;
  /** The real server's port and the service's protocol. */
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly origin: NonNullable<Detected['finding']['culprit']>;
}

function targets(ctx: DiagnoseContext, kind: 'masq' | 'tunnel' | 'route'): MethodTarget[] {
  const out: MethodTarget[] = [];
  const seen = new Set<string>();
  for (const name of ctx.loaded.ipvs.keys()) {
    const director = ctx.loaded.scenario.nodes.get(name);
    if (!director) continue;
    for (const svc of ipv4Services(ctx.loaded, name))
      for (const d of svc.destinations) {
        if (d.forwarding?.kind !== kind || d.address.family !== 'ipv4') continue;
        const rs = nicOwning(ctx.loaded, d.address.addr as Ipv4)?.node;
        if (!rs || seen.has(`${name} ${rs.name}`)) continue;
        seen.add(`${name} ${rs.name}`);
        out.push({
          director,
          rs,
          vip: serviceVip(svc)!,
          rsAddr: d.address.addr as Ipv4,
          port: d.port,
          protocol: svc.key.kind === 'addr' && svc.key.protocol === 'UDP' ? 'udp' : 'tcp',
          origin: d.origin,
        });
      }
  }
  return out;
}

/**
 * Full NAT: the director's nat POSTROUTING rule that rewrites the source of what IPVS NAT-forwards to this real server
 * (seen only with `net.ipv4.vs.conntrack=1`), so its replies come back to the director whatever its routes are.
 */
function fullNatRule(ctx: DiagnoseContext, t: MethodTarget, anyConntrack = false): NetfilterStep | undefined {
  const d = t.director;
  if (!d.nat || (!anyConntrack && d.sysctl.get('net.ipv4.vs.conntrack')?.value.trim() !== '1')) return undefined;
  const r = lookupRoute(d, t.rsAddr);
  const dev = r?.dev ?? (r?.via !== undefined ? lookupRoute(d, r.via)?.dev : undefined);
  const out = dev !== undefined ? d.interfaces.get(dev) : undefined;
  if (!out) return undefined;
  const nextHop = r?.via ?? t.rsAddr;
  const client = [...ctx.loaded.scenario.nodes.values()]
    .find((n) => n.kind === 'client')
    ?.interfaces.values()
    .next().value?.addrs[0]?.prefix.addr;
  const pkt: Ipv4Packet = {
    kind: 'ipv4',
    tos: 0,
    id: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol: t.protocol === 'udp' ? 17 : 6,
    src: client ?? parseIpv4('203.0.113.1')!,
    dst: t.rsAddr,
    payload:
      t.protocol === 'udp'
        ? { kind: 'udp', srcPort: 40000, dstPort: t.port, payload: new Uint8Array(0) }
        : {
            kind: 'tcp',
            srcPort: 40000,
            dstPort: t.port,
            seq: 0,
            ack: 0,
            flags: TCP_SYN,
            window: 64240,
            urgent: 0,
            options: [],
            payload: new Uint8Array(0),
          },
  };
  const frame: EthernetFrame = { dst: out.mac, src: out.mac, vlans: [], etherType: ETHERTYPE_IPV4, payload: pkt };
  const masq = (out.addrs.find((a) => prefixContains(a.prefix, nextHop)) ?? out.addrs[0])?.prefix.addr;
  const step = natPostrouting(d.nat, frame, out.name, masq);
  return step?.snat ? step : undefined;
}

/** The director's address on the real server's subnet. */
function dipFor(director: Node, rsAddr: Ipv4): Ipv4 | undefined {
  for (const i of director.interfaces.values())
    for (const a of i.addrs) if (a.prefix.len < 32 && prefixContains(a.prefix, rsAddr)) return a.prefix.addr;
  return undefined;
}

function routeViaFix(rs: Node, dip: Ipv4, dev: string, through = 'the director'): FixProposal {
  const file = `route-${fileNamePart(rs.name)}/default-route.txt`;
  return {
    id: `route:${rs.name}:default-via-${formatIpv4(dip)}`,
    title: `On ${rs.name}: route replies via ${through} (default via ${formatIpv4(dip)})`,
    keeps: "every filter; only the real server's default route changes",
    protectionRank: 100,
    artifacts: [{ path: file, content: `default via ${formatIpv4(dip)} dev ${dev}\n` }],
    commands: [
      `# on ${commentName(rs.name)}:`,
      shellCommand('ip', 'route', 'replace', 'default', 'via', formatIpv4(dip), 'dev', dev),
    ],
    apply: (s: LoadedScenario) => {
      const n = s.scenario.nodes.get(rs.name);
      if (!n) return s;
      const routes = [
        ...n.routes.filter((r) => r.dst.len !== 0),
        {
          dst: { addr: 0 as Ipv4, len: 0 },
          via: dip,
          dev,
          metric: 0,
          type: 'unicast' as const,
          origin: implicit(`set by the fix: default via ${through}`),
        },
      ];
      const nodes = new Map(s.scenario.nodes);
      nodes.set(rs.name, { ...n, routes });
      return { ...s, scenario: { ...s.scenario, nodes } };
    },
  };
}

function tunl0Fix(rs: Node, vip: Ipv4): FixProposal {
  return {
    id: `tunl0:${rs.name}:${formatIpv4(vip)}`,
    title: `On ${rs.name}: load ipip and put VIP ${formatIpv4(vip)} on tunl0`,
    keeps: 'every filter; the real server gains a tunnel device',
    protectionRank: 100,
    artifacts: [
      {
        path: `tunl0-${fileNamePart(rs.name)}/commands.sh`,
        content: `modprobe ipip\nip link set tunl0 up\nip addr add ${formatIpv4(vip)}/32 dev tunl0\n`,
      },
    ],
    commands: [
      `# on ${commentName(rs.name)}:`,
      'modprobe ipip',
      'ip link set tunl0 up',
      `ip addr add ${formatIpv4(vip)}/32 dev tunl0`,
    ],
    apply: (s: LoadedScenario) => {
      const n = s.scenario.nodes.get(rs.name);
      if (!n) return s;
      const origin = implicit('added by the fix: tunl0 with the VIP');
      const tun: Iface = {
        name: 'tunl0',
        kind: 'tunnel',
        mac: '00:00:00:00:00:00' as Iface['mac'],
        addrs: [{ prefix: { addr: vip, len: 32 }, label: 'tunl0', origin }],
        up: true,
        origin,
      };
      const interfaces = new Map(n.interfaces);
      interfaces.set('tunl0', tun);
      const nodes = new Map(s.scenario.nodes);
      nodes.set(rs.name, { ...n, interfaces });
      return { ...s, scenario: { ...s.scenario, nodes } };
    },
  };
}

function endOn(trace: Trace, cause: NonNullable<Trace['end']['cause']>): boolean {
  return trace.disposition !== 'replied' && trace.end.cause === cause;
}

export const natForwardingOff: FindingKind = {
  code: 'nat-forwarding-off',
  severity: 'error',
  title: 'A NAT director does not forward the replies',
  source: 'trace',
  needs: 'a NAT (Masq) director with net.ipv4.ip_forward=0 — replies from real servers die there',
  detect(ctx, trace) {
    if (!endOn(trace, 'ip-forward-off') || !ctx.loaded.ipvs.has(trace.end.place.node)) return undefined;
    return this.check!(ctx).find((d) => d.finding.where === trace.end.place.node);
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const director of new Set(targets(ctx, 'masq').map((t) => t.director))) {
      const v = director.sysctl.get('net.ipv4.ip_forward');
      if (v?.value.trim() === '1') continue;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `NAT director ${director.name} has net.ipv4.ip_forward=${v?.value ?? '0 (default)'}`,
          explanation: `In NAT mode the real servers' replies pass through the director's FORWARD path, where IPVS rewrites their source to the VIP; with forwarding off they are discarded before IPVS sees them.`,
          where: director.name,
          ...(v ? { culprit: v.origin } : {}),
        },
        fixes: [sysctlFix(director, [['net.ipv4.ip_forward', '1']], 'NAT replies are forwarded by the director', 100)],
      });
    }
    return out;
  },
};

export const natReplyBypassesDirector: FindingKind = {
  code: 'nat-reply-bypasses-director',
  severity: 'error',
  title: 'NAT real servers send replies around the director',
  source: 'trace',
  needs: 'a NAT (Masq) real server whose route to clients does not lead through the director',
  detect(ctx, trace) {
    if (!endOn(trace, 'unexpected-reply')) return undefined;
    const all = this.check!(ctx);
    const p = trace.hops[trace.path[trace.path.length - 1]!]!.frame.payload;
    return all.find((d) => p.kind === 'ipv4' && d.finding.title.includes(formatIpv4(p.src))) ?? all[0];
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const t of targets(ctx, 'masq')) {
      if (fullNatRule(ctx, t)) continue;
      // A SNAT rule for this traffic that IPVS keeps from the nat table (net.ipv4.vs.conntrack=0).
      const idle = fullNatRule(ctx, t, true);
      const dip = dipFor(t.director, t.rsAddr);
      const r = lookupRoute(t.rs, 0 as Ipv4);
      const directorAddrs = [...t.director.interfaces.values()].flatMap((i) => i.addrs.map((a) => a.prefix.addr));
      if (r?.via !== undefined && directorAddrs.includes(r.via)) continue;
      const dev =
        [...t.rs.interfaces.values()].find((i) => i.addrs.some((a) => a.prefix.addr === t.rsAddr))?.name ?? 'eth0';
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `NAT real server ${t.rs.name} (${formatIpv4(t.rsAddr)}) routes replies ${r?.via !== undefined ? `via ${formatIpv4(r.via)}` : 'without a gateway'}, not via director ${t.director.name}`,
          explanation: `In NAT mode the director rewrote the destination to ${formatIpv4(t.rsAddr)}; the reply must go back through the director to get the VIP ${formatIpv4(t.vip)} as source again. Sent around it, the client receives a SYN-ACK from ${formatIpv4(t.rsAddr)}, which it never connected to, and answers RST (for UDP: an answer from ${formatIpv4(t.rsAddr)}, which its socket does not take).${idle ? ` ${t.director.name}'s nat POSTROUTING rule "${idle.ruleText}" would rewrite the source to ${formatIpv4(idle.snat!.to)} so that replies come back to it, but with net.ipv4.vs.conntrack=0 IPVS marks the packets it forwards untracked and the nat table never sees them.` : ''}`,
          where: t.rs.name,
          ...(r ? { culprit: r.origin } : { culprit: t.origin }),
        },
        fixes: [
          ...(idle
            ? [
                sysctlFix(
                  t.director,
                  [['net.ipv4.vs.conntrack', '1']],
                  'IPVS traffic is tracked, so the nat POSTROUTING SNAT rule applies to it',
                  100,
                ),
              ]
            : []),
          ...(dip !== undefined ? [routeViaFix(t.rs, dip, dev)] : []),
        ],
      });
    }
    return out;
  },
};

export const drReplyViaDirector: FindingKind = {
  code: 'dr-reply-via-director',
  severity: 'error',
  title: 'DR real servers route their replies through the director',
  source: 'trace',
  needs:
    'a DR (Route) real server whose default route leads to the director, while the director does not forward (ip_forward=0) or takes the VIP as a martian source (accept_local=0)',
  detect(ctx, trace) {
    if (!endOn(trace, 'martian-source') && !endOn(trace, 'ip-forward-off')) return undefined;
    // The real server on the trace's path whose replies the director dropped.
    const onPath = new Set(trace.hops.map((h) => h.place.node));
    const director = `via director ${trace.end.place.node} (`;
    return this.check!(ctx).find((d) => onPath.has(d.finding.where) && d.finding.title.includes(director));
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const t of targets(ctx, 'route')) {
      const r = lookupRoute(t.rs, 0 as Ipv4);
      if (r?.via === undefined) continue;
      const dIface = [...t.director.interfaces.values()].find((i) => i.addrs.some((a) => a.prefix.addr === r.via));
      if (!dIface) continue;
      const fwd = t.director.sysctl.get('net.ipv4.ip_forward');
      const forwards = fwd?.value.trim() === '1';
      const al = effectiveSysctl(t.director, 'accept_local', dIface.name);
      if (forwards && al.value === 1) continue;
      const rsDev =
        [...t.rs.interfaces.values()].find((i) => i.addrs.some((a) => a.prefix.addr === t.rsAddr))?.name ?? 'eth0';
      // The router the director itself uses, when the real server can reach it directly.
      const gw = lookupRoute(t.director, 0 as Ipv4)?.via;
      const rsIface = t.rs.interfaces.get(rsDev);
      const direct = gw !== undefined && rsIface?.addrs.some((a) => a.prefix.len < 32 && prefixContains(a.prefix, gw));
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `DR real server ${t.rs.name} (${formatIpv4(t.rsAddr)}) routes its replies via director ${t.director.name} (${formatIpv4(r.via)})`,
          explanation: forwards
            ? `In DR mode the real server answers from the VIP ${formatIpv4(t.vip)}. Sent to the director, the reply's source is one of the director's own addresses: its forwarding route drops it as a martian source (accept_local=${al.value}), so the client never sees an answer. DR replies should go from the real server to the router directly.`
            : `In DR mode the real server answers from the VIP ${formatIpv4(t.vip)}. Sent to the director, which does not forward (net.ipv4.ip_forward=0), the reply is discarded. DR replies should go from the real server to the router directly.`,
          where: t.rs.name,
          culprit: r.origin,
        },
        fixes: direct ? [routeViaFix(t.rs, gw!, rsDev, 'the router')] : [],
      });
    }
    return out;
  },
};

export const tunRpFilter: FindingKind = {
  code: 'tun-rp-filter',
  severity: 'error',
  title: 'Strict rp_filter on a TUN real server drops the decapsulated packets',
  source: 'trace',
  needs: 'a TUN real server whose effective rp_filter on tunl0 (max of all and tunl0) is 1',
  detect(ctx, trace) {
    if (!endOn(trace, 'rp-filter')) return undefined;
    return this.check!(ctx).find((d) => d.finding.where.startsWith(`${trace.end.place.node}:`));
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const t of targets(ctx, 'tunnel')) {
      const tun = [...t.rs.interfaces.values()].find((i) => i.kind === 'tunnel');
      if (!tun) continue;
      const rp = effectiveSysctl(t.rs, 'rp_filter', tun.name);
      if (rp.value !== 1) continue;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `rp_filter=1 on ${t.rs.name}:${tun.name} drops what director ${t.director.name} tunnels to it`,
          explanation: `The decapsulated packet arrives on ${tun.name} with the client as source, while the route back to the client leaves through another interface: strict reverse-path filtering (the kernel uses the max of conf/all and conf/${tun.name}) drops it.`,
          where: `${t.rs.name}:${tun.name}`,
          culprit: rp.origin,
        },
        fixes: [
          sysctlFix(
            t.rs,
            [
              ['net.ipv4.conf.all.rp_filter', '0'],
              [`net.ipv4.conf.${tun.name}.rp_filter`, '0'],
            ],
            'decapsulated packets arrive on the tunnel, their route back does not',
            90,
          ),
        ],
      });
    }
    return out;
  },
};

export const tunNoIpip: FindingKind = {
  code: 'tun-no-ipip',
  severity: 'error',
  title: 'A TUN real server cannot decapsulate IPIP',
  source: 'trace',
  needs: 'a TUN real server without an up tunl0 device',
  detect(ctx, trace) {
    if (!endOn(trace, 'no-ipip') && !endOn(trace, 'tunnel-down')) return undefined;
    return this.check!(ctx).find((d) => d.finding.where === trace.end.place.node);
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const t of targets(ctx, 'tunnel')) {
      const tun = [...t.rs.interfaces.values()].find((i) => i.kind === 'tunnel' && i.name.startsWith('tunl'));
      if (tun?.up) continue;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `TUN real server ${t.rs.name} has ${tun ? 'tunl0 down' : 'no tunl0 (ipip not loaded)'}`,
          explanation: `The director sends IPIP packets to ${formatIpv4(t.rsAddr)}; without the ipip module's tunl0 up, the real server drops them.`,
          where: t.rs.name,
          culprit: tun?.origin ?? t.origin,
        },
        fixes: [tunl0Fix(t.rs, t.vip)],
      });
    }
    return out;
  },
};
