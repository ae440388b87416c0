import { formatIpv4 } from '../../addr/ipv4.ts';
import type { IptRule, IptTable } from '../../netfilter/iptables-model.ts';
import { readIptablesSave } from '../../netfilter/iptables-read.ts';
import { findOrigin, implicit } from '../../source/origin.ts';
import { commentName, shellCommand } from '../../source/shell.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Node } from '../../topology/model.ts';
import { ruleQuote } from '../../trace/render-step.ts';
import type { Hop, NetfilterStep } from '../../trace/types.ts';
import { dropStep, endHop } from '../facts.ts';
import { sysctlFix } from '../sysctl-fix.ts';
import type { FixProposal } from '../types.ts';
import type { FindingKind } from './kind.ts';

/**
 * A guest's own firewall (its `iptables-save`: filter INPUT/FORWARD/OUTPUT, raw PREROUTING/OUTPUT) drops the
 * service's traffic: a director's INPUT before IPVS takes the request (ip_vs_in runs after filter at LOCAL_IN), its
 * OUTPUT on the packet IPVS transmits (LOCAL_OUT), a real server's INPUT on the request or OUTPUT on its answer.
 */
export const guestFirewallDrops: FindingKind = {
  code: 'guest-firewall-drops',
  severity: 'error',
  title: "A guest's own iptables rules drop the service's traffic",
  source: 'trace',
  needs:
    "a trace dropped by a rule or policy of a guest's own filter or raw table (guests.NAME.iptables-save), at the hooks of its own stack",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    if (!hop || !drop || drop.family !== 'ipv4' || (drop.table !== 'filter' && drop.table !== 'raw')) return undefined;
    const node = ctx.loaded.scenario.nodes.get(hop.place.node);
    if (!node || node.kind !== 'guest' || !node[drop.table]) return undefined;
    const role = ctx.loaded.ipvs.has(node.name) ? 'director' : 'guest';
    const before =
      drop.hook === 'INPUT' && role === 'director'
        ? ' IPVS takes a request only after filter INPUT has accepted it (ip_vs_in runs at LOCAL_IN after the filter table), so the virtual service never sees it.'
        : drop.hook === 'OUTPUT' && hop.steps.some((s) => s.kind === 'ipvs')
          ? ' IPVS sends the packet it forwards through LOCAL_OUT (ip_vs_send_or_cont), so the director’s own OUTPUT chain judges it, untracked unless net.ipv4.vs.conntrack=1.'
          : '';
    const fix = acceptFix(node, hop, drop, trace.stage);
    // A packet conntrack found INVALID on a director whose IPVS untracks what it forwards (a NAT real server's reply
    // belongs to no entry): keeping IPVS's entries (vs.conntrack=1) is the fix that keeps the stateful rule.
    const invalid = hop.steps.some((s) => s.kind === 'note' && s.text.includes('ctstate INVALID'));
    const untracking = role === 'director' && invalid && node.sysctl.get('net.ipv4.vs.conntrack')?.value.trim() !== '1';
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${node.name}'s own ${drop.nft ? 'nft' : `iptables -t ${drop.table}`} ${drop.hook} → ${ruleQuote(drop)} drops the ${trace.stage}`,
        explanation: `${trace.end.reason}.${before}${untracking ? ' The packet is INVALID to conntrack: with net.ipv4.vs.conntrack=0 IPVS untracks the connections it forwards, so the real server’s answer belongs to no entry.' : ''} Accept the service's traffic ahead of that ${drop.ruleNumber !== undefined ? 'rule' : 'policy'} in ${node.name}'s own rule set.`,
        where: hop.place.iface ? `${hop.place.node}:${hop.place.iface}` : hop.place.node,
        culprit: drop.origin,
      },
      fixes: [
        ...(untracking
          ? [
              sysctlFix(
                node,
                [['net.ipv4.vs.conntrack', '1']],
                'IPVS keeps conntrack entries for the connections it forwards, so stateful rules see them',
                90,
                `every rule of ${node.name} as it is; only IPVS's connections are now tracked`,
              ),
            ]
          : []),
        ...(fix ? [fix] : []),
      ],
    };
  },
};

/**
 * The dropped packet as match words: a reply by its source and source port (the service's side); a request by its
 * destination and port, or — what IPVS transmits in OUTPUT — by the route it takes to the real server.
 */
function matchWords(hop: Hop, drop: NetfilterStep, stage: 'request' | 'reply'): string[] | undefined {
  const p = hop.frame.payload;
  if (p.kind !== 'ipv4') return undefined;
  const l4 = p.payload;
  const ports = l4.kind === 'tcp' || l4.kind === 'udp' ? l4 : undefined;
  if (stage === 'reply')
    return ports
      ? ['-s', `${formatIpv4(p.src)}/32`, '-p', ports.kind, '-m', ports.kind, '--sport', String(ports.srcPort)]
      : ['-s', `${formatIpv4(p.src)}/32`, '-p', String(p.protocol)];
  const ipvs = hop.steps.find((s) => s.kind === 'ipvs');
  const route = [...hop.steps].reverse().find((s) => s.kind === 'route');
  if (drop.hook === 'OUTPUT' && ipvs?.kind === 'ipvs' && route?.kind === 'route') {
    // DR leaves with the client's header (to the VIP); NAT and TUN to the real server's address.
    const out = route.outIface ? ['-o', route.outIface] : [];
    if (ipvs.method !== 'Route') return [...out, '-d', `${formatIpv4(route.dst)}/32`];
    const dr = ['-d', `${formatIpv4(p.dst)}/32`];
    return ports
      ? [...out, ...dr, '-p', ports.kind, '-m', ports.kind, '--dport', String(ports.dstPort)]
      : [...out, ...dr];
  }
  const base = ['-d', `${formatIpv4(p.dst)}/32`];
  return ports
    ? [...base, '-p', ports.kind, '-m', ports.kind, '--dport', String(ports.dstPort)]
    : [...base, '-p', String(p.protocol)];
}

/** Inserts `rule` in `chain` of `table` before the rule numbered `before` (1-based), or appends it. */
function insertRule(table: IptTable, chain: string, rule: IptRule, before: number | undefined): IptTable {
  return {
    ...table,
    chains: table.chains.map((c) => {
      if (c.name !== chain) return c;
      const rules = [...c.rules];
      rules.splice(before !== undefined ? before - 1 : rules.length, 0, rule);
      return { ...c, rules };
    }),
  };
}

/** An ACCEPT for the dropped traffic ahead of the dropping rule (or at the end of the chain whose policy drops). */
function acceptFix(node: Node, hop: Hop, drop: NetfilterStep, stage: 'request' | 'reply'): FixProposal | undefined {
  // Rules read from `nft list ruleset` are fixed in nft's words, which this fix does not write.
  if (drop.nft || !findOrigin(drop.origin, 'file')) return undefined;
  const words = matchWords(hop, drop, stage);
  if (!words) return undefined;
  const table = drop.table as 'filter' | 'raw';
  const ruleLine = ['-A', drop.chain, ...words, '-j', 'ACCEPT'].join(' ');
  const read = readIptablesSave(`*${table}\n:${drop.chain} ACCEPT [0:0]\n${ruleLine}\nCOMMIT\n`, 'fix', 'ipv4', [
    'raw',
  ]);
  const parsed = read.value?.find((t) => t.name === table)?.chains.find((c) => c.name === drop.chain)?.rules[0];
  if (!parsed || read.issues.some((i) => i.severity === 'error')) return undefined;
  const rule: IptRule = { ...parsed, origin: implicit(`added by the fix: iptables -t ${table} ${ruleLine}`) };
  const position = drop.ruleNumber;
  const command =
    position !== undefined
      ? shellCommand('iptables', '-t', table, '-I', drop.chain, String(position), ...words, '-j', 'ACCEPT')
      : shellCommand('iptables', '-t', table, '-A', drop.chain, ...words, '-j', 'ACCEPT');
  return {
    id: `guest-accept:${node.name}:${table}:${drop.chain}:${words.join(' ')}`,
    title: `On ${node.name}: accept ${words.join(' ')} in its ${table} ${drop.chain} chain ${position !== undefined ? `before rule ${position}` : 'before its DROP policy'}`,
    keeps: `every other rule and the chain's policy of ${node.name}; only this traffic is let through`,
    protectionRank: 80,
    artifacts: [],
    commands: [
      `# on ${commentName(node.name)}:`,
      command,
      '# then save the rule set the way the guest keeps it (iptables-save > /etc/sysconfig/iptables, netfilter-persistent save, …)',
    ],
    apply: (s: LoadedScenario) => {
      const n = s.scenario.nodes.get(node.name);
      const t = n?.[table];
      if (!n || !t) return s;
      const nodes = new Map(s.scenario.nodes);
      nodes.set(node.name, { ...n, [table]: insertRule(t, drop.chain, rule, position) });
      return { ...s, scenario: { ...s.scenario, nodes } };
    },
  };
}
