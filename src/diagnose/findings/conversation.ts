/**
 * Findings that only a conversation shows (handshake, full-size request, response) and those of IPVS connection
 * state against real-server churn (`ipvsadm -L -n -c` given as `ipvsadm-connections`).
 */
import { formatIpv4 } from '../../addr/ipv4.ts';
import { formatConnEndpoint, isTemplateRow } from '../../ipvs/ipvsadm-conn-list.ts';
import { formatServiceKey } from '../../ipvs/model.ts';
import { implicit } from '../../source/origin.ts';
import { commentName, shellCommand } from '../../source/shell.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Route } from '../../topology/model.ts';
import { ipvsSysctls } from '../../trace/ipvs-engine.ts';
import { ruleQuote } from '../../trace/render-step.ts';
import type { NetfilterStep } from '../../trace/types.ts';
import { endHop } from '../facts.ts';
import { sysctlFix } from '../sysctl-fix.ts';
import type { FixProposal } from '../types.ts';
import { brNetfilterOff } from './bridged-forward-drop.ts';
import type { Detected, FindingKind } from './kind.ts';
import { pveHostOptionFix } from './pve-fix.ts';

/**
 * A host firewall with br_netfilter drops a packet of an established conversation as ctstate INVALID: the host
 * tracked the connection's SYN but never saw its SYN-ACK (DR replies go straight to the gateway).
 */
export const conntrackInvalid: FindingKind = {
  code: 'conntrack-invalid',
  severity: 'error',
  title: "A host's stateful firewall drops the client's packets after the SYN (conntrack INVALID, one-way traffic)",
  source: 'trace',
  needs:
    'a trace dropped in iptables FORWARD on a host by a rule matching ctstate INVALID, on a packet conntrack classified INVALID',
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    if (!hop) return undefined;
    const note = hop.steps.find((s) => s.kind === 'note' && s.text.includes('ctstate INVALID'));
    const drop = hop.steps.find((s) => s.kind === 'netfilter' && s.family === 'ipv4' && s.verdict === 'DROP');
    if (note?.kind !== 'note' || !drop || drop.kind !== 'netfilter' || !/invalid/i.test(drop.ruleText))
      return undefined;
    const host = ctx.loaded.scenario.nodes.get(hop.place.node);
    if (host?.kind !== 'host') return undefined;
    const p = hop.frame.payload;
    const vip = p.kind === 'ipv4' ? formatIpv4(p.dst) : '?';
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${host.name}: ${drop.nft ? 'nft' : 'iptables'} "${drop.ruleText}" drops the client's packets to ${vip} after the handshake`,
        explanation: `With br_netfilter, ${host.name} tracks the bridged connection: it saw the client's SYN toward the director but never the SYN-ACK, which the real server sends straight to the gateway (DR/TUN replies bypass this host). The client's next packet — its ACK and its request — is then an invalid transition (${note.text.replace(/^conntrack on [^:]+: /, '')}), and ${ruleQuote(drop)} drops it. The SYN passes, so a SYN-only check looks healthy. ${remedies(host.name, vip, drop)}`,
        where: `${host.name}:${hop.place.iface ?? ''}`,
        culprit: drop.origin,
      },
      fixes: pveAllowInvalid(ctx.loaded, host.name, drop) ?? [brNetfilterOff(host)],
    };
  },
};

/**
 * On a Proxmox node the INVALID drop is pve-firewall's (PVEFW-FORWARD rule 1), and bridge-nf-call-iptables=0 does not
 * last (pve-firewall sets it to 1 whenever it runs): the fix is host.fw's `nf_conntrack_allow_invalid: 1`, which
 * leaves that rule out (fact sheet §7.2 F).
 */
function pveAllowInvalid(loaded: LoadedScenario, host: string, drop: NetfilterStep): FixProposal[] | undefined {
  const pve = loaded.proxmox?.get(host);
  if (!pve || drop.chain !== 'PVEFW-FORWARD') return undefined;
  const fix = pveHostOptionFix({
    hostName: host,
    pve,
    key: 'nf_conntrack_allow_invalid',
    value: '1',
    id: `pve-allow-invalid-${host}`,
    title: `host.fw of ${host}: nf_conntrack_allow_invalid: 1 (PVEFW-FORWARD no longer drops ctstate INVALID)`,
    keeps:
      "every guest's chains (ipfilter, macfilter, rules, policies) and the node's own INPUT/OUTPUT rules; it loses INVALID-state protection for bridged and routed traffic on that node",
    protectionRank: 45,
  });
  return fix ? [fix] : [];
}

/** What an operator can change on the host, in the syntax of the rule set the host uses. */
function remedies(host: string, vip: string, drop: NetfilterStep): string {
  if (drop.nft)
    return `Exempt the virtual service from connection tracking on ${host} (a table of its own: nft add table ip lvs_notrack; nft add chain ip lvs_notrack pre '{ type filter hook prerouting priority raw; }'; nft add rule ip lvs_notrack pre ip daddr ${vip} notrack; nft add rule ip lvs_notrack pre ip saddr ${vip} notrack — an untracked packet is not "invalid"; both directions, since a real server on this host answers from the VIP and its reply to an untracked request would be INVALID), or stop passing bridged frames to the IP hooks. An accept in another table does not help: every base chain on the hook still sees the packet, and ${drop.nft.chain} still drops it.`;
  return `Exempt the virtual service from connection tracking on ${host} in both directions (iptables -t raw -I PREROUTING -d ${vip} -j CT --notrack; iptables -t raw -I PREROUTING -s ${vip} -j CT --notrack: a real server on this host answers from the VIP, and its reply to an untracked request would be INVALID), accept it before the INVALID rule (-m physdev --physdev-is-bridged -d ${vip} -j ACCEPT), or stop passing bridged frames to iptables.`;
}

/** A fix setting `advmss` on a real server's default route: the MSS it advertises, so clients send smaller segments. */
function advmssFix(loaded: LoadedScenario, rsName: string, mss: number): FixProposal | undefined {
  const rs = loaded.scenario.nodes.get(rsName);
  if (!rs) return undefined;
  const route = rs.routes.find((r) => r.dst.len === 0 && (r.table ?? 'main') === 'main');
  if (!route) return undefined;
  const words = [
    'ip',
    'route',
    'change',
    'default',
    ...(route.via !== undefined ? ['via', formatIpv4(route.via)] : []),
    ...(route.dev !== undefined ? ['dev', route.dev] : []),
    'advmss',
    String(mss),
  ];
  return {
    id: `advmss:${rsName}:${mss}`,
    title: `On ${rsName}: advertise MSS ${mss} on its default route, so clients send segments that fit the tunnel`,
    keeps: 'every filter as it is; only the size of the segments clients send changes',
    protectionRank: 60,
    artifacts: [],
    commands: [`# on ${commentName(rsName)}:`, shellCommand(...words)],
    apply: (s: LoadedScenario) => {
      const n = s.scenario.nodes.get(rsName);
      if (!n) return s;
      const routes: Route[] = n.routes.map((r) =>
        r === route ? { ...r, advmss: mss, origin: implicit(`set by the fix: advmss ${mss} (${words.join(' ')})`) } : r,
      );
      const nodes = new Map(s.scenario.nodes);
      nodes.set(rsName, { ...n, routes });
      return { ...s, scenario: { ...s.scenario, nodes } };
    },
  };
}

/**
 * A full-size request with DF set is larger than a link on its path (a TUN director adds 20 bytes) and the ICMP
 * "fragmentation needed" never reaches the client: path MTU discovery fails and the request dies (a black hole).
 */
export const pmtuBlackhole: FindingKind = {
  code: 'pmtu-blackhole',
  severity: 'error',
  title: 'Full-size packets exceed the path MTU and the ICMP "fragmentation needed" is lost (PMTU black hole)',
  source: 'trace',
  needs:
    'a trace whose decisive end is a packet too big for the next link (cause frag-needed, its ICMP not delivered) or for a bridge port (too-big-for-port: no ICMP at all)',
  detect(ctx, trace) {
    if (trace.end.cause !== 'frag-needed' && trace.end.cause !== 'too-big-for-port') return undefined;
    const hop = endHop(trace);
    if (!hop) return undefined;
    const icmpDeath = trace.hops.find(
      (h) =>
        h.id > hop.id &&
        h.end !== undefined &&
        h.end.disposition !== 'delivered' &&
        h.frame.payload.kind === 'ipv4' &&
        h.frame.payload.protocol === 1 &&
        h.end.disposition !== 'discarded',
    );
    const p = hop.frame.payload;
    if (trace.end.cause === 'too-big-for-port') {
      // An MTU mismatch on a bridge: the frame is dropped silently, no ICMP ever leaves.
      const host = ctx.loaded.scenario.nodes.get(hop.place.node);
      const port = host?.interfaces.get(hop.place.iface ?? '');
      const mtu = /the MTU (\d+) of bridge port/.exec(trace.end.reason)?.[1];
      const behind = port?.peer?.node;
      const fix =
        behind !== undefined && mtu !== undefined ? advmssFix(ctx.loaded, behind, Number(mtu) - 40) : undefined;
      return {
        finding: {
          code: this.code,
          severity: this.severity,
          title: `${hop.place.node}:${hop.place.iface ?? ''} has a smaller MTU (${mtu ?? '?'}) than the full-size frames sent to it: dropped without ICMP`,
          explanation: `${trace.end.reason}. A bridge drops frames larger than the port's MTU and tells nobody, so path MTU discovery cannot help: the handshake works, every full-size packet toward ${behind ?? 'the guest'} is lost. Give the guest's NIC and the tap the same MTU (ip link set … mtu ${mtu ?? ''}), or make clients send smaller segments (advmss on the guest's routes, MSS clamping).`,
          where: `${hop.place.node}:${hop.place.iface ?? ''}`,
          ...(port ? { culprit: port.origin } : {}),
        },
        fixes: fix ? [fix] : [],
      };
    }
    const ipvs = hop.steps.find((s) => s.kind === 'ipvs');
    const tunnel = ipvs?.kind === 'ipvs' && ipvs.method === 'Tunnel';
    const mtu = /mtu (\d+)\)/.exec(trace.end.reason)?.[1];
    const rsName =
      ipvs?.kind === 'ipvs' && ipvs.destination
        ? [...ctx.loaded.scenario.nodes.values()].find((n) =>
            [...n.interfaces.values()].some((i) =>
              i.addrs.some((a) => `${formatIpv4(a.prefix.addr)}:` === ipvs.destination!.replace(/\d+$/, '')),
            ),
          )?.name
        : undefined;
    const fix = rsName !== undefined && mtu !== undefined ? advmssFix(ctx.loaded, rsName, Number(mtu) - 40) : undefined;
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${hop.place.node}: full-size packets to ${p.kind === 'ipv4' ? formatIpv4(p.dst) : '?'} exceed the path MTU${tunnel ? ' (IPIP adds 20 bytes)' : ''}, and the ICMP never reaches the client`,
        explanation: `${trace.end.reason}. ${icmpDeath?.end ? `The ICMP message dies at ${icmpDeath.place.node}${icmpDeath.place.iface ? `:${icmpDeath.place.iface}` : ''}: ${icmpDeath.end.reason}. ` : ''}Without it the client keeps sending segments that do not fit: the handshake works, every full-size request is lost. Let ICMP "fragmentation needed" (type 3 code 4) through, or make clients send smaller segments: advertise a lower MSS on the real servers (ip route change … advmss ${mtu !== undefined ? Number(mtu) - 40 : 1440}) or clamp it (iptables -t mangle -A POSTROUTING -p tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu).`,
        where: `${hop.place.node}:${hop.place.iface ?? ''}`,
        ...(icmpDeath?.end?.origin
          ? { culprit: icmpDeath.end.origin }
          : trace.end.origin
            ? { culprit: trace.end.origin }
            : {}),
      },
      fixes: fix ? [fix] : [],
    };
  },
};

/** Connection entries (from `ipvsadm -L -n -c`) whose real server is no longer in the table. */
function deletedServerRows(loaded: LoadedScenario, director: string) {
  const table = loaded.ipvs.get(director);
  const listing = loaded.ipvsConnections?.get(director);
  if (!table || !listing) return [];
  return listing.rows.filter(
    (r) =>
      !isTemplateRow(r) &&
      table.services.some(
        (s) =>
          s.key.kind === 'addr' &&
          formatConnEndpoint({ address: s.key.address, port: s.key.port }) === formatConnEndpoint(r.virtual) &&
          !s.destinations.some(
            (d) => formatConnEndpoint({ address: d.address, port: d.port }) === formatConnEndpoint(r.destination),
          ),
      ),
  );
}

/**
 * Established connections point at a real server that was deleted (`ipvsadm -d`); with `expire_nodest_conn=0` the
 * director drops their packets silently until the entries expire (ESTABLISHED: 900 s).
 */
export const ipvsConnDeletedServer: FindingKind = {
  code: 'ipvs-conn-deleted-server',
  severity: 'error',
  title: 'Connections to a deleted real server are blackholed until they expire (expire_nodest_conn=0)',
  source: 'static',
  needs:
    "a director's connection listing (ipvsadm-connections) with entries whose real server is not in its table, and net.ipv4.vs.expire_nodest_conn=0",
  check(ctx) {
    const out: Detected[] = [];
    for (const director of ctx.loaded.ipvs.keys()) {
      const node = ctx.loaded.scenario.nodes.get(director);
      if (!node) continue;
      const rows = deletedServerRows(ctx.loaded, director);
      if (rows.length === 0 || ipvsSysctls(node.sysctl).expireNodestConn) continue;
      const servers = [...new Set(rows.map((r) => formatConnEndpoint(r.destination)))];
      const est = rows.filter((r) => r.state === 'ESTABLISHED').length;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `${director}: ${rows.length} connection${rows.length === 1 ? '' : 's'} (${est} ESTABLISHED) still point at deleted real server${servers.length === 1 ? '' : 's'} ${servers.join(', ')}`,
          explanation: `The connection table lists entries to ${servers.join(', ')}, which the IPVS table no longer has: the server was deleted while clients were connected. With net.ipv4.vs.expire_nodest_conn=0 (the default) IPVS drops every further packet of those connections silently until the entry expires (ESTABLISHED: 900 s); the clients hang instead of reconnecting to another server. Set expire_nodest_conn=1 (the first packet expires the entry, the client gets a reset and reconnects), or take servers out with weight 0 and wait for their connections to end before deleting them.`,
          where: director,
          ...(rows[0]!.pos
            ? {
                culprit: {
                  kind: 'file',
                  label: `connection entry ${formatConnEndpoint(rows[0]!.source)} → ${formatConnEndpoint(rows[0]!.destination)}`,
                  pos: rows[0]!.pos,
                },
              }
            : {}),
        },
        fixes: [
          sysctlFix(
            node,
            [['net.ipv4.vs.expire_nodest_conn', '1']],
            'entries of deleted real servers expire on their next packet',
            70,
          ),
        ],
      });
    }
    return out;
  },
};

/**
 * Persistence templates in the connection listing keep clients on a real server of weight 0 (drained): with
 * `expire_quiescent_template=0` they keep being sent there for as long as the template lives.
 */
export const quiescentTemplate: FindingKind = {
  code: 'persistence-on-quiesced-server',
  severity: 'warning',
  title: 'Persistence templates keep sending clients to a real server of weight 0',
  source: 'static',
  needs:
    "a director's connection listing with persistence templates (client port 0) whose real server has weight 0, and expire_quiescent_template=0",
  check(ctx) {
    const out: Detected[] = [];
    for (const [director, table] of ctx.loaded.ipvs) {
      const node = ctx.loaded.scenario.nodes.get(director);
      const listing = ctx.loaded.ipvsConnections?.get(director);
      if (!node || !listing || ipvsSysctls(node.sysctl).expireQuiescentTemplate) continue;
      for (const svc of table.services) {
        if (!svc.persistence || svc.key.kind !== 'addr') continue;
        const vkey = formatConnEndpoint({ address: svc.key.address, port: svc.key.port });
        const drained = svc.destinations.filter((d) => d.weight === 0);
        for (const d of drained) {
          const dkey = formatConnEndpoint({ address: d.address, port: d.port });
          const tmpl = listing.rows.filter(
            (r) =>
              isTemplateRow(r) &&
              formatConnEndpoint(r.destination) === dkey &&
              (formatConnEndpoint(r.virtual) === vkey || r.virtual.port === 0),
          );
          if (tmpl.length === 0) continue;
          out.push({
            finding: {
              code: this.code,
              severity: this.severity,
              title: `${formatServiceKey(svc.key)}: ${tmpl.length} persistence template${tmpl.length === 1 ? '' : 's'} still send clients to ${dkey} (weight 0)`,
              explanation: `${dkey} has weight 0 (drained), but persistence templates created before keep sending their clients' new connections to it for up to ${svc.persistence.timeout} s after their last connection (net.ipv4.vs.expire_quiescent_template=0). A server drained for maintenance keeps receiving those clients; stopping it then breaks them. Set expire_quiescent_template=1 to expire such templates on their next use.`,
              where: director,
              culprit: d.origin,
            },
            fixes: [
              sysctlFix(
                node,
                [['net.ipv4.vs.expire_quiescent_template', '1']],
                'persistence templates of drained servers expire on their next use',
                70,
              ),
            ],
          });
        }
      }
    }
    return out;
  },
};
