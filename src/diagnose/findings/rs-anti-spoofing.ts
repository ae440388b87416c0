import { formatIpv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import { allVips, bindingAt, dropStep, endHop, guestBehind } from '../facts.ts';
import { addToIpListFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { FindingKind } from './kind.ts';

/** A DR/TUN real server answers from the VIP; its own anti-spoofing filter drops the replies. */
export const rsAntiSpoofing: FindingKind = {
  code: 'rs-anti-spoofing',
  severity: 'error',
  title: "A real server's port filter drops its replies sourced from the VIP",
  needs: "a trace in which an IPv4 frame whose source is a VIP is dropped by an ebtables rule at a real server's tap",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    const p = hop?.frame.payload;
    if (!hop || !drop || !hop.place.iface || p?.kind !== 'ipv4' || !allVips(ctx.loaded).has(p.src)) return undefined;
    const guest = guestBehind(ctx.loaded, hop.place.node, hop.place.iface);
    if (!guest || ctx.loaded.ipvs.has(guest.name)) return undefined;
    const b = bindingAt(ctx.loaded, hop.place.node, hop.place.iface);
    const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
    const fixes: FixProposal[] = [];
    if (b) {
      const add = addToIpListFix(b, [p.src], 'the real server answers from the VIP');
      if (add) fixes.push(add);
      fixes.push(removeFilterrefFix(b));
    }
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `real server ${guest.name}'s replies from VIP ${formatIpv4(p.src)} are dropped on ${hop.place.node}:${hop.place.iface}`,
        explanation:
          `With DR (and TUN) the real server answers the client directly with the VIP ${formatIpv4(p.src)} as source ` +
          `address. ${String(filter)} on its port accepts only its own addresses, so ${drop.chain} rule ` +
          `${drop.ruleNumber ?? '(policy)'} "${drop.ruleText}" drops every reply.`,
        where: `${hop.place.node}:${hop.place.iface}`,
        culprit: drop.origin,
      },
      fixes,
    };
  },
};
