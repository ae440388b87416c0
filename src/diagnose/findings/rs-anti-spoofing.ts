import { formatIpv4, type Ipv4, ipv4 } from '../../addr/ipv4.ts';
import { MAC_BROADCAST } from '../../addr/mac.ts';
import { findOrigin } from '../../source/origin.ts';
import type { Node } from '../../topology/model.ts';
import type { NetfilterStep } from '../../trace/types.ts';
import {
  allVips,
  bindingAt,
  endHop,
  guestEgressDrop,
  guestEgressVerdict,
  nicOwning,
  ownsAddress,
  synFrame,
  tapOf,
} from '../facts.ts';
import { addToIpListFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';

const ANY_CLIENT = ipv4('203.0.113.77');

function explain(
  ctx: DiagnoseContext,
  host: string,
  tap: string,
  guest: Node,
  vip: Ipv4,
  drop: NetfilterStep,
  kind: FindingKind,
): Detected {
  const b = bindingAt(ctx.loaded, host, tap);
  const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
  const fixes: FixProposal[] = [];
  if (b) {
    const add = addToIpListFix(b, [vip], 'the real server answers from the VIP');
    if (add) fixes.push(add);
    fixes.push(removeFilterrefFix(b));
  }
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `real server ${guest.name}'s replies from VIP ${formatIpv4(vip)} are dropped on ${host}:${tap}`,
      explanation:
        `With DR (and TUN) the real server answers the client directly with the VIP ${formatIpv4(vip)} as source ` +
        `address. ${String(filter)} on its port accepts only its own addresses, so ${drop.chain} rule ` +
        `${drop.ruleNumber ?? '(policy)'} "${drop.ruleText}" drops every reply.`,
      where: `${host}:${tap}`,
      culprit: drop.origin,
    },
    fixes,
  };
}

/** A DR/TUN real server answers from the VIP; its own anti-spoofing filter drops the replies. */
export const rsAntiSpoofing: FindingKind = {
  code: 'rs-anti-spoofing',
  severity: 'error',
  title: "A real server's port filter drops its replies sourced from the VIP",
  source: 'trace',
  needs:
    "an IPv4 frame whose source is a VIP dropped by an ebtables rule at a real server's tap — in a trace, or asked of the configuration",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const d = guestEgressDrop(ctx.loaded, endHop(trace));
    const p = d?.hop.frame.payload;
    if (!d || p?.kind !== 'ipv4' || !allVips(ctx.loaded).has(p.src) || ctx.loaded.ipvs.has(d.guest.name))
      return undefined;
    return explain(ctx, d.host, d.tap, d.guest, p.src, d.drop, this);
  },
  check(ctx) {
    const out: Detected[] = [];
    const seen = new Set<string>();
    for (const [, table] of ctx.loaded.ipvs)
      for (const svc of table.services) {
        if (svc.key.kind !== 'addr' || svc.key.address.family !== 'ipv4') continue;
        const vip = svc.key.address.addr as Ipv4;
        for (const d of svc.destinations) {
          const kind = d.forwarding?.kind ?? 'route';
          if ((kind !== 'route' && kind !== 'tunnel') || d.address.family !== 'ipv4') continue;
          const rs = nicOwning(ctx.loaded, d.address.addr as Ipv4)?.node;
          const port = rs && tapOf(ctx.loaded, rs);
          if (!rs || !port || !ownsAddress(rs, vip) || seen.has(`${rs.name} ${vip}`)) continue;
          seen.add(`${rs.name} ${vip}`);
          const reply = synFrame(port.nic.mac, MAC_BROADCAST, vip, ANY_CLIENT, 40000);
          const step = guestEgressVerdict(ctx.loaded, port.host, port.tap, reply);
          if (step?.verdict === 'DROP') out.push(explain(ctx, port.host, port.tap, rs, vip, step, this));
        }
      }
    return out;
  },
};
