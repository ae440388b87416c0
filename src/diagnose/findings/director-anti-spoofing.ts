import { formatIpv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import { bindingAt, dropStep, endHop, guestBehind, ownsAddress } from '../facts.ts';
import { drDirectorFilterFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { FindingKind } from './kind.ts';

/** The founding case: a DR (or NAT) director's port filter drops what the director forwards. */
export const directorAntiSpoofing: FindingKind = {
  code: 'director-anti-spoofing',
  severity: 'error',
  title: "The director's port filter drops the packets it forwards",
  needs: "a trace in which a frame forwarded by an IPVS director is dropped by an ebtables rule at the director's tap",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    if (!hop || !drop || !hop.place.iface) return undefined;
    const guest = guestBehind(ctx.loaded, hop.place.node, hop.place.iface);
    if (!guest || !ctx.loaded.ipvs.has(guest.name)) return undefined;
    const p = hop.frame.payload;
    if (p.kind !== 'ipv4' || ownsAddress(guest, p.src)) return undefined;
    const b = bindingAt(ctx.loaded, hop.place.node, hop.place.iface);
    const ipList = b?.binding.params.get('IP') ?? [];
    const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
    const bridge = ctx.loaded.scenario.nodes.get(hop.place.node)?.interfaces.get(hop.place.iface)?.master ?? '?';
    const fixes: FixProposal[] = [];
    if (b) {
      const safer = drDirectorFilterFix(ctx.loaded, b, guest.name);
      if (safer) fixes.push(safer);
      fixes.push(removeFilterrefFix(b));
    }
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${hop.place.node} drops what director ${guest.name} forwards: ${drop.chain} ${drop.ruleText}`,
        explanation:
          `In DR mode IPVS rewrites only the MAC addresses; the IP header keeps the client's source address ` +
          `${formatIpv4(p.src)}. On ${hop.place.node}, bridge ${bridge}, port ${hop.place.iface}, the libvirt filter ` +
          `${String(filter)} lets IPv4 leave the guest only from ${ipList.length ? `IP=${ipList.join(',')}` : 'its learned address'}, ` +
          `so every forwarded frame is taken for spoofing and dropped by ${drop.chain} rule ${drop.ruleNumber ?? '(policy)'} ` +
          `"${drop.ruleText}".`,
        where: `${hop.place.node}:${hop.place.iface}`,
        culprit: drop.origin,
      },
      fixes,
    };
  },
};
