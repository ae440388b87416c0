/**
 * `vip-arp-blocked` on a Proxmox VE node: the VIP holder's ARP reply (sender address = the VIP) dropped by
 * pve-firewall's ARP allow-list, which an explicit `[IPSET ipfilter-netN]` makes (`tapXiY-OUT-ARP`: ARP may leave
 * the guest only with a sender address of the set; fact sheet §4.9). Fixes, most protection first: the VIP added to
 * that set (keeps anti-spoofing for every other address); for a DR director, whose forwarded requests the IP filter
 * drops as well, the IP filter off on that NIC (the set goes with it, and so does the ARP allow-list).
 */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import type { Hop } from '../../trace/types.ts';
import { ARP_REPLY } from '../../wire/types.ts';
import { allVips, nodesCaching } from '../facts.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { pveVipArpFixes } from './pve-drop-fixes.ts';
import { pveGuestDrop } from './pve-fix.ts';

export function pveVipArpDrop(ctx: DiagnoseContext, hop: Hop | undefined, kind: FindingKind): Detected | undefined {
  const d = pveGuestDrop(ctx, hop);
  const arp = hop?.frame.payload;
  if (!d?.guest || d.step.family !== 'bridge' || arp?.kind !== 'arp' || arp.op !== ARP_REPLY) return undefined;
  if (!allVips(ctx.loaded).has(arp.spa)) return undefined;
  const { host, nic, step, guest } = d;
  const vip = formatIpv4(arp.spa as Ipv4);
  const set = `ipfilter-${nic.netid}`;
  const fixes = pveVipArpFixes(ctx, host, nic, guest.name, arp.spa as Ipv4);
  const cached = nodesCaching(ctx.loaded, arp.spa as Ipv4);
  const what = findOrigin(step.origin, 'file')?.label ?? `[IPSET ${set}]`;
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${guest.name}'s ARP replies for VIP ${vip} are dropped on ${host} (VM ${nic.vmid} ${nic.netid}, ${nic.iface})`,
      explanation:
        `${guest.name} answers "who-has ${vip}" with ${vip} as the sender address, but on Proxmox node ${host} ` +
        (d.pve.nft
          ? `the IP filter of VM ${nic.vmid} (${what}) also checks ARP senders: nft ${step.chain} rule `
          : `the explicit [IPSET ${set}] of VM ${nic.vmid} (${what}) is also an ARP allow-list: ebtables ${step.chain} rule `) +
        `${step.ruleNumber ?? '(policy)'} "${step.ruleText}" drops ARP whose sender address is not in the set. ` +
        `Nobody can learn the VIP's MAC: ` +
        (cached.length
          ? `the VIP works only while the cached neighbour entry on ${cached.join(', ')} lasts.`
          : 'the VIP does not work at all.') +
        (ctx.loaded.ipvs.has(guest.name)
          ? ` ${guest.name} is a DR director: what it forwards keeps the client's source address, which the same IP filter drops, so the VIP in the set is not enough there.`
          : ''),
      where: `${host}:${nic.iface}`,
      culprit: step.origin,
    },
    fixes,
  };
}
