import { findOrigin } from '../../source/origin.ts';
import type { Node } from '../../topology/model.ts';
import { ruleQuote } from '../../trace/render-step.ts';
import { endHop } from '../facts.ts';
import { sysctlFix } from '../sysctl-fix.ts';
import type { FixProposal } from '../types.ts';
import type { FindingKind } from './kind.ts';

/**
 * br_netfilter hands bridged IPv4 to iptables: a FORWARD policy or rule of the host (not from an nwfilter — e.g.
 * Docker's `FORWARD DROP`) drops traffic between guests and the LAN.
 */
export const bridgedForwardDrop: FindingKind = {
  code: 'bridged-forward-drop',
  severity: 'error',
  title: "The hypervisor's iptables FORWARD drops bridged traffic (br_netfilter)",
  source: 'trace',
  needs:
    'a trace dropped in iptables FORWARD on a host by its policy or a rule that no nwfilter made, with net.bridge.bridge-nf-call-iptables=1',
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const step = hop?.steps.find((s) => s.kind === 'netfilter' && s.family === 'ipv4' && s.verdict === 'DROP');
    if (!hop || !step || step.kind !== 'netfilter' || findOrigin(step.origin, 'nwfilter-rule')) return undefined;
    const host = ctx.loaded.scenario.nodes.get(hop.place.node);
    if (!host || host.kind !== 'host') return undefined;
    // Besides filter FORWARD, br_netfilter runs bridged IPv4 through the host's mangle (and raw, nat) hooks.
    const hook = step.table === 'filter' ? step.hook : `-t ${step.table} ${step.hook}`;
    // A drop on prerouting is where the frame came in; on forward and postrouting, where it was going.
    const arriving = step.hook === 'PREROUTING';
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${host.name}: ${step.nft ? `nft chain ${step.nft.chain}` : `iptables ${hook}`} ${step.ruleText} drops bridged traffic ${arriving ? 'arriving on' : 'toward'} ${hop.place.iface ?? '?'}`,
        explanation: `With br_netfilter loaded and net.bridge.bridge-nf-call-iptables=1, frames bridged between a guest's tap and the uplink also traverse the host's ${step.nft ? `nftables ${(step.hook ?? 'forward').toLowerCase()} hook` : step.table === 'filter' ? 'iptables FORWARD chain' : `iptables ${step.table} ${step.hook} chain (br_netfilter runs bridged IPv4 through the same hooks as routed traffic)`}; ${ruleQuote(step)} (a host rule or policy, e.g. Docker's FORWARD DROP) drops them. ${step.nft ? `Accept bridged traffic in ${step.nft.chain} itself (an accept in another table does not stop this chain)` : 'Accept bridged traffic (iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT)'} or stop passing bridged frames to iptables.`,
        where: `${host.name}:${hop.place.iface ?? ''}`,
        culprit: step.origin,
      },
      fixes: [brNetfilterOff(host)],
    };
  },
};

/** The fix that stops passing bridged frames to iptables (and its connection tracking) on a host. */
export function brNetfilterOff(host: Node): FixProposal {
  return sysctlFix(
    host,
    [['net.bridge.bridge-nf-call-iptables', '0']],
    'bridged frames no longer pass through iptables',
    40,
    'the ebtables part of every nwfilter; but the iptables part of nwfilters (tcp/udp/icmp rules) no longer sees bridged traffic either',
  );
}
