import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import type { IptChain, IptTable } from '../../netfilter/iptables-model.ts';
import { readIptablesRuleText } from '../../netfilter/iptables-read.ts';
import { implicit } from '../../source/origin.ts';
import { commentName, shellCommand } from '../../source/shell.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Node } from '../../topology/model.ts';
import { ruleQuote } from '../../trace/render-step.ts';
import type { NetfilterStep, Trace } from '../../trace/types.ts';
import { pathHops } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import { brNetfilterOff } from './bridged-forward-drop.ts';
import type { FindingKind } from './kind.ts';

/**
 * A hypervisor's own nat PREROUTING/OUTPUT rule (a transparent proxy's REDIRECT, a port forward's DNAT, a container
 * runtime's) rewrites the destination of a probe the host routes or bridges (br_netfilter), and the probe fails: it is
 * delivered to the wrong place.
 */
export const hostNatCaptures: FindingKind = {
  code: 'host-nat-captures',
  severity: 'error',
  title: "A hypervisor's nat rule rewrites the destination of the traffic (DNAT/REDIRECT)",
  source: 'trace',
  needs:
    'a failed trace in which a host’s own iptables nat PREROUTING or OUTPUT rule (DNAT or REDIRECT) rewrote the destination — bridged traffic only with net.bridge.bridge-nf-call-iptables=1',
  detect(ctx, trace) {
    if (trace.disposition === 'replied') return undefined;
    const found = rewriteOf(ctx.loaded, trace);
    if (!found) return undefined;
    const { host, step, bridged } = found;
    const d = step.dnat!;
    const port = (p: number | undefined) => (p !== undefined ? `:${p}` : '');
    const from = `${formatIpv4(d.from)}${port(d.fromPort)}`;
    const to = `${formatIpv4(d.to)}${port(d.toPort)}`;
    const end = trace.end;
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${host.name}: ${step.nft ? '' : 'iptables -t nat '}${ruleQuote(step)} rewrites ${from} to ${to}`,
        explanation: `${host.name}'s own nat table rewrites the destination of the ${trace.stage} before ${bridged ? 'the bridge forwards it (br_netfilter hands bridged IPv4 to iptables with net.bridge.bridge-nf-call-iptables=1, and re-routes a frame whose destination changed)' : 'routing'}: ${ruleQuote(step)} sends traffic for ${from} to ${to}, so it never reaches ${formatIpv4(d.from)}; the trace ends ${end.disposition} at ${end.place.node}${end.place.iface ? `:${end.place.iface}` : ''} (${end.reason}). conntrack keeps that binding for the whole connection. Exempt ${formatIpv4(d.from)} from the rule (or narrow the rule to the traffic it is meant for).`,
        where: `${host.name}`,
        culprit: step.origin,
      },
      // Bridged: also the switch that keeps bridged frames out of iptables altogether (nat included).
      fixes: [...exemptFix(host, step, d.from), ...(bridged ? [brNetfilterOff(host)] : [])],
    };
  },
};

/** The first host nat step on the trace's path that rewrote a destination. */
function rewriteOf(
  loaded: LoadedScenario,
  trace: Trace,
): { host: Node; step: NetfilterStep; bridged: boolean } | undefined {
  for (const hop of pathHops(trace))
    for (const s of hop.steps) {
      if (s.kind !== 'netfilter' || s.table !== 'nat' || s.dnat === undefined) continue;
      const host = loaded.scenario.nodes.get(hop.place.node);
      if (host?.kind !== 'host' || host.nat === undefined) continue;
      const bridged = host.interfaces.get(hop.place.iface ?? '')?.master !== undefined;
      return { host, step: s, bridged };
    }
  return undefined;
}

/** `iptables -t nat -I CHAIN N -d ADDR/32 -j RETURN` before the rewriting rule: the address is left alone. */
function exemptFix(host: Node, step: NetfilterStep, dst: Ipv4): FixProposal[] {
  const nat = host.nat;
  const n = step.ruleNumber;
  if (!nat || n === undefined || step.nft) return [];
  const chain = nat.chains.find((c) => c.name === step.chain);
  if (!chain) return [];
  const spec = `-d ${formatIpv4(dst)}/32 -j RETURN`;
  const read = readIptablesRuleText(
    `-A ${chain.name} ${spec}`,
    'ipv4',
    new Set(nat.chains.map((c) => c.name)),
    implicit(`inserted by the fix: iptables -t nat -I ${chain.name} ${n} ${spec}`),
  );
  if (!('rule' in read)) return [];
  const rules = [...chain.rules];
  rules.splice(n - 1, 0, read.rule);
  const changed: IptChain = { ...chain, rules };
  const table: IptTable = { ...nat, chains: nat.chains.map((c) => (c === chain ? changed : c)) };
  return [
    {
      id: `host-nat-exempt:${host.name}:${chain.name}:${n}:${formatIpv4(dst)}`,
      title: `On ${host.name}: leave ${formatIpv4(dst)} out of nat ${chain.name} rule ${n} (iptables -t nat -I ${chain.name} ${n} ${spec})`,
      keeps: `the rule for every other destination; only traffic to ${formatIpv4(dst)} is no longer rewritten`,
      protectionRank: 60,
      artifacts: [],
      commands: [
        `# on ${commentName(host.name)} (and in whatever writes its rules at boot, e.g. /etc/sysconfig/iptables):`,
        shellCommand('iptables', '-t', 'nat', '-I', chain.name, `${n}`, '-d', `${formatIpv4(dst)}/32`, '-j', 'RETURN'),
      ],
      apply: (s: LoadedScenario) => {
        const cur = s.scenario.nodes.get(host.name);
        if (!cur || cur.nat !== nat) return s;
        const nodes = new Map(s.scenario.nodes);
        nodes.set(host.name, { ...cur, nat: table });
        return { ...s, scenario: { ...s.scenario, nodes } };
      },
    },
  ];
}
