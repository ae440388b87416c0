/**
 * The founding failure on a Proxmox VE host: a DR director's forwarded frames (client source address) dropped by
 * pve-firewall's IP filter on the director NIC (`tapXiY-OUT … ! --match-set PVEFW-X-ipfilter-netY-v4 src -j DROP`,
 * met on the NIC's `fwbrXiY` bridge). The fix keeping the most protection (fact sheet §7): the IP filter off on that
 * NIC only — `ipfilter: 0` and no explicit `[IPSET ipfilter-netY]` (which turns the filter on by itself) — while the
 * MAC filter, the IN/OUT rules and policies stay. Adding the VIP to the set does not help: the source is the client.
 */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { removeFwIpset, setFwOption } from '../../proxmox/fw-edit.ts';
import { findOrigin } from '../../source/origin.ts';
import type { PveHost } from '../../topology/proxmox-host.ts';
import type { Trace } from '../../trace/types.ts';
import { endHop, ownsAddress } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { type PveNicRef, pveApiBase, pveFwFix, pveGuestDrop } from './pve-fix.ts';

/** The fix keeping the most on a DR director's NIC: the IP filter off there (and its explicit set gone). */
export function pveIpfilterOffFix(
  hostName: string,
  pve: PveHost,
  nic: PveNicRef,
  director: string,
): FixProposal | undefined {
  const set = `ipfilter-${nic.netid}`;
  const hasSet = pve.input.guests.find((g) => g.config.vmid === nic.vmid)?.fw?.ipsets.has(set) ?? false;
  const base = pveApiBase(pve, nic.vmid);
  return pveFwFix({
    hostName,
    pve,
    vmid: nic.vmid,
    id: `pve-director-ipfilter-off-${nic.vmid}`,
    title: `On ${hostName}: no IP filter on director ${director}'s ${nic.netid} (VM ${nic.vmid}: ipfilter: 0${hasSet ? ` and no [IPSET ${set}]` : ''})`,
    keeps: `the MAC filter, the IN/OUT rules and policies of VM ${nic.vmid}, and every other guest's IP filter; loses IP anti-spoofing on ${nic.netid} of VM ${nic.vmid} (a DR director must send with its clients' source addresses)`,
    protectionRank: 60,
    edit: (text) => removeFwIpset(setFwOption(text, 'ipfilter', '0'), set),
    pvesh: [
      `pvesh set ${base}/options --ipfilter 0`,
      ...(hasSet ? [`pvesh delete ${base}/ipset/${set} --force 1`] : []),
    ],
  });
}

/** A trace dropped by pve-firewall's rules on a DR director's NIC, its source not the director's own address. */
export function pveDirectorDrop(ctx: DiagnoseContext, trace: Trace, kind: FindingKind): Detected | undefined {
  const hop = endHop(trace);
  const d = pveGuestDrop(ctx, hop);
  if (!hop || !d) return undefined;
  const { step, nic, guest, pve } = d;
  // pve-firewall: iptables on the NIC's firewall bridge; proxmox-firewall (nftables): the bridge table
  if (step.family !== (pve.nft ? 'bridge' : 'ipv4')) return undefined;
  if (!guest || !ctx.loaded.ipvs.has(guest.name)) return undefined;
  const p = hop.frame.payload;
  if (p.kind !== 'ipv4' || ownsAddress(guest, p.src)) return undefined;
  // Only a drop on the way out of the director's NIC (its OUT chain: per NIC, or per guest with nftables).
  const out = pve.nft ? `guest-${nic.vmid}-out` : `${nic.iface}-OUT`;
  if (!step.path.some((c) => c === out) && step.chain !== out) return undefined;
  const ipfilter = findOrigin(step.origin, 'file')?.label ?? `ipfilter on ${nic.netid}`;
  const fix = pveIpfilterOffFix(hop.place.node, pve, nic, guest.name);
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${hop.place.node} drops what director ${guest.name} forwards: ${step.chain} ${step.ruleText}`,
      explanation:
        `In DR mode IPVS rewrites only the MAC addresses; the IP header keeps the client's source address ` +
        `${formatIpv4(p.src as Ipv4)}. On Proxmox node ${hop.place.node}, VM ${nic.vmid}'s ${nic.netid} (${nic.iface}) is ` +
        (pve.nft
          ? `filtered by proxmox-firewall (nftables) in bridge prerouting`
          : `behind the firewall bridge fwbr${nic.vmid}i${nic.netid.replace(/^net/, '')}`) +
        ` with the IP filter on (${ipfilter}): IPv4 may leave the guest only from ` +
        `the addresses of ipfilter-${nic.netid}, so every forwarded frame is taken for spoofing and dropped by ${step.chain} ` +
        `rule ${step.ruleNumber ?? '(policy)'} "${step.ruleText}". Adding the VIP to the set does not help (the source is the client).`,
      where: `${hop.place.node}:${nic.iface}`,
      culprit: step.origin,
    },
    fixes: fix ? [fix] : [],
  };
}
