import { formatIpv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import { ARP_REPLY } from '../../wire/types.ts';
import { allVips, bindingAt, dropStep, endHop, guestBehind } from '../facts.ts';
import { addToIpListFix, drDirectorFilterFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { FindingKind } from './kind.ts';

/** The latent second fault: the director answers ARP for the VIP and its port filter drops the answer. */
export const vipArpBlocked: FindingKind = {
  code: 'vip-arp-blocked',
  severity: 'error',
  title: "The director's ARP replies for the VIP are dropped",
  needs: "a trace in which an ARP reply whose sender address is a VIP is dropped by an ebtables rule at a guest's tap",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    const arp = hop?.frame.payload;
    if (!hop || !drop || !hop.place.iface || arp?.kind !== 'arp' || arp.op !== ARP_REPLY) return undefined;
    if (!allVips(ctx.loaded).has(arp.spa)) return undefined;
    const guest = guestBehind(ctx.loaded, hop.place.node, hop.place.iface);
    if (!guest) return undefined;
    const b = bindingAt(ctx.loaded, hop.place.node, hop.place.iface);
    const ipList = b?.binding.params.get('IP') ?? [];
    const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
    const vip = formatIpv4(arp.spa);
    const cached = [...ctx.loaded.scenario.nodes.values()].filter((n) => n.neighbours.has(arp.spa)).map((n) => n.name);
    const fixes: FixProposal[] = [];
    if (b) {
      const add = addToIpListFix(b, [arp.spa], 'so its ARP replies for the VIP pass');
      if (add) fixes.push(add);
      if (ctx.loaded.ipvs.has(guest.name)) {
        const safer = drDirectorFilterFix(ctx.loaded, b, guest.name);
        if (safer) fixes.push(safer);
      }
      fixes.push(removeFilterrefFix(b));
    }
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${guest.name}'s ARP replies for VIP ${vip} are dropped on ${hop.place.node}:${hop.place.iface}`,
        explanation:
          `${guest.name} answers "who-has ${vip}" with ${vip} as the sender address, but ${String(filter)} lets ARP leave ` +
          `the guest only with sender addresses IP=${ipList.join(',') || '(learned)'}; ${drop.chain} rule ${drop.ruleNumber ?? '(policy)'} ` +
          `"${drop.ruleText}" drops the reply. Nobody can learn the VIP's MAC: ` +
          (cached.length
            ? `the VIP works only while the cached neighbour entry on ${cached.join(', ')} lasts (as recorded in the scenario).`
            : 'the VIP does not work at all.'),
        where: `${hop.place.node}:${hop.place.iface}`,
        culprit: drop.origin,
      },
      fixes,
    };
  },
};
