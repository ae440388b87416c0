import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import type { Node } from '../../topology/model.ts';
import type { NetfilterStep } from '../../trace/types.ts';
import { ARP_REPLY } from '../../wire/types.ts';
import {
  allVips,
  arpReplyFrame,
  bindingAt,
  endHop,
  guestEgressDrop,
  guestEgressVerdict,
  ipv4Services,
  nodesCaching,
  ownsAddress,
  serviceVip,
  tapOf,
} from '../facts.ts';
import { addToIpListFix, drDirectorFilterFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { pveVipArpDrop } from './pve-vip-arp.ts';

function explain(
  ctx: DiagnoseContext,
  host: string,
  tap: string,
  guest: Node,
  vipAddr: Ipv4,
  drop: NetfilterStep,
  kind: FindingKind,
): Detected {
  const b = bindingAt(ctx.loaded, host, tap);
  const ipList = b?.binding.params.get('IP') ?? [];
  const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
  const vip = formatIpv4(vipAddr);
  const cached = nodesCaching(ctx.loaded, vipAddr);
  const fixes: FixProposal[] = [];
  if (b) {
    const add = addToIpListFix(b, [vipAddr], 'so its ARP replies for the VIP pass');
    if (add) fixes.push(add);
    if (ctx.loaded.ipvs.has(guest.name)) {
      const safer = drDirectorFilterFix(ctx.loaded, b, guest.name);
      if (safer) fixes.push(safer);
    }
    fixes.push(removeFilterrefFix(b));
  }
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${guest.name}'s ARP replies for VIP ${vip} are dropped on ${host}:${tap}`,
      explanation:
        `${guest.name} answers "who-has ${vip}" with ${vip} as the sender address, but ${String(filter)} lets ARP leave ` +
        `the guest only with sender addresses IP=${ipList.join(',') || '(learned)'}; ${drop.chain} rule ${drop.ruleNumber ?? '(policy)'} ` +
        `"${drop.ruleText}" drops the reply. Nobody can learn the VIP's MAC: ` +
        (cached.length
          ? `the VIP works only while the cached neighbour entry on ${cached.join(', ')} lasts (as recorded in the scenario).`
          : 'the VIP does not work at all.'),
      where: `${host}:${tap}`,
      culprit: drop.origin,
    },
    fixes,
  };
}

/** The latent second fault: the director answers ARP for the VIP and its port filter drops the answer. */
export const vipArpBlocked: FindingKind = {
  code: 'vip-arp-blocked',
  severity: 'error',
  title: "The director's ARP replies for the VIP are dropped",
  source: 'trace',
  needs:
    "an ARP reply whose sender address is a VIP dropped by an ebtables rule at the VIP owner's tap (on Proxmox: the ARP allow-list of an explicit [IPSET ipfilter-netN], or with nftables the IP filter's ARP rule) — in a trace, or (libvirt) asked of the configuration",
  detect(ctx, trace) {
    let hop = endHop(trace);
    // A TCP probe that could not resolve the VIP: the decisive drop is inside the ARP exchange it walked.
    if (trace.disposition === 'arp-unresolved' && hop) {
      for (const s of hop.steps)
        if (s.kind === 'neighbour' && s.arp) {
          const dropped = s.arp.hops.find((h) => h.end?.disposition === 'dropped-by-filter');
          if (dropped) hop = dropped;
        }
    } else if (trace.disposition !== 'dropped-by-filter') return undefined;
    // a Proxmox node's drop is told in its own terms first (on an nftables node it also meets the tap)
    const pve = pveVipArpDrop(ctx, hop, this);
    if (pve) return pve;
    const d = guestEgressDrop(ctx.loaded, hop);
    if (!d) return undefined;
    const arp = d?.hop.frame.payload;
    if (!d || arp?.kind !== 'arp' || arp.op !== ARP_REPLY || !allVips(ctx.loaded).has(arp.spa)) return undefined;
    return explain(ctx, d.host, d.tap, d.guest, arp.spa, d.drop, this);
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const name of ctx.loaded.ipvs.keys()) {
      const director = ctx.loaded.scenario.nodes.get(name);
      const port = director && tapOf(ctx.loaded, director);
      if (!director || !port) continue;
      for (const svc of ipv4Services(ctx.loaded, name)) {
        const vip = serviceVip(svc)!;
        if (!ownsAddress(director, vip)) continue;
        const step = guestEgressVerdict(ctx.loaded, port.host, port.tap, arpReplyFrame(port.nic.mac, vip));
        if (step?.verdict === 'DROP') out.push(explain(ctx, port.host, port.tap, director, vip, step, this));
      }
    }
    return out;
  },
};
