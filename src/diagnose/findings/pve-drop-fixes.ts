/**
 * Fixes for a drop by pve-firewall's rules of one guest NIC on a Proxmox node, by what was dropped — each a `.fw`
 * edit (with its `pvesh` commands) that keeps the most, verified by the re-trace of the finding that proposes it:
 * - VRRP (IP protocol 112) dropped on the way into a guest (its `tapXiY-IN`: policy_in, PVEFW-DropBroadcast for
 *   224.0.0.18, a DROP rule): `IN ACCEPT -p vrrp -source <sender>` first in that guest's [RULES];
 * - VRRP dropped on the way out (policy_out): `OUT ACCEPT -p vrrp -dest <group or peer>`;
 * - a frame from keepalived's VMAC (00:00:5e:00:01:VRID) dropped by the MAC filter: `macfilter: 0` on that guest;
 * - an ARP reply or gratuitous ARP for a VIP dropped by the ARP allow-list of an explicit `[IPSET ipfilter-netN]`:
 *   the VIP added to the set, and for a DR director the IP filter off on that NIC.
 */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { addFwIpsetEntry, addFwRule, setFwOption } from '../../proxmox/fw-edit.ts';
import type { Origin } from '../../source/origin.ts';
import type { Hop, NetfilterStep } from '../../trace/types.ts';
import { ARP_REPLY } from '../../wire/types.ts';
import { allVips } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import { VRRP_PROTOCOL } from '../vrrp.ts';
import type { DiagnoseContext } from './kind.ts';
import { pveIpfilterOffFix } from './pve-director.ts';
import { type PveNicRef, pveApiBase, pveFwFix, pveNic } from './pve-fix.ts';

/**
 * The guest NIC and direction of a Proxmox firewall drop: from its origin, else from the chains it went through —
 * pve-firewall's per-NIC `tapXiY-IN|OUT`, or proxmox-firewall's per-guest `guest-<vmid>-in|out` (nftables), whose
 * NIC is the bridge port `port` the frame was met on.
 */
export function pveDropNic(step: NetfilterStep, port?: string): { nic?: PveNicRef; dir?: 'IN' | 'OUT' } {
  let dir: 'IN' | 'OUT' | undefined;
  let fromChain: PveNicRef | undefined;
  for (const c of [...step.path, step.chain]) {
    const m = /^((?:tap|veth)(\d+)i(\d+))-(IN|OUT)(?:-ARP|-PROTO)?$/.exec(c);
    if (m) {
      dir = m[4] as 'IN' | 'OUT';
      fromChain = { vmid: m[2]!, netid: `net${m[3]}`, iface: m[1]! };
    }
    const g = step.nft ? /^guest-(\d+)-(in|out)$/.exec(c) : null;
    if (g) {
      dir = g[2] === 'in' ? 'IN' : 'OUT';
      const p = port === undefined ? null : /^(?:tap|veth)(\d+)i(\d+)$/.exec(port);
      if (p && p[1] === g[1]) fromChain = { vmid: g[1]!, netid: `net${p[2]}`, iface: port! };
    }
  }
  const nic = pveNic(step.origin) ?? fromChain;
  return { ...(nic ? { nic } : {}), ...(dir ? { dir } : {}) };
}

/** A drop by the ARP sender check of a guest NIC's IP filter (pve-firewall's `-ARP` chain, proxmox-firewall's rule). */
export function isPveArpFilterDrop(step: NetfilterStep): boolean {
  return /-ARP$/.test(step.chain) || (step.nft !== undefined && /\barp saddr ip != @v4-guest-/.test(step.ruleText));
}

function isMacfilter(o: Origin | undefined): boolean {
  for (let cur = o; cur; cur = cur.via) if (/\bmacfilter: /.test(cur.label)) return true;
  return false;
}

/** The fixes of an ARP reply for a VIP dropped by a guest NIC's ARP allow-list (its explicit ipfilter set). */
export function pveVipArpFixes(
  ctx: DiagnoseContext,
  host: string,
  nic: PveNicRef,
  guest: string,
  vip: Ipv4,
): FixProposal[] {
  const pve = ctx.loaded.proxmox?.get(host);
  if (!pve) return [];
  const set = `ipfilter-${nic.netid}`;
  const v = formatIpv4(vip);
  const fixes: FixProposal[] = [];
  const add = pveFwFix({
    hostName: host,
    pve,
    vmid: nic.vmid,
    id: `pve-vip-in-ipfilter-${nic.vmid}-${nic.netid}`,
    title: `On ${host}: add VIP ${v} to [IPSET ${set}] of VM ${nic.vmid} (${guest})`,
    keeps: `the IP and ARP anti-spoofing of VM ${nic.vmid}'s ${nic.netid} for every address but the VIP, its MAC filter, rules and policies`,
    protectionRank: 80,
    edit: (text) => addFwIpsetEntry(text, set, v, 'VIP (keepalived/LVS)'),
    pvesh: [`pvesh create ${pveApiBase(pve, nic.vmid)}/ipset/${set} --cidr ${v} --comment 'VIP'`],
  });
  if (add) fixes.push(add);
  if (ctx.loaded.ipvs.has(guest)) {
    const off = pveIpfilterOffFix(host, pve, nic, guest);
    if (off) fixes.push(off);
  }
  return fixes;
}

/** The fixes for a drop on a Proxmox node (none when the drop is not by a guest NIC's rules, or not understood). */
export function pveDropFixes(ctx: DiagnoseContext, hop: Hop, step: NetfilterStep): FixProposal[] {
  const host = hop.place.node;
  const pve = ctx.loaded.proxmox?.get(host);
  if (!pve) return [];
  const { nic, dir } = pveDropNic(step, hop.place.iface);
  if (!nic) return [];
  const guest = pve.domains.find((d) => d.interfaces.some((i) => i.targetDev === nic.iface))?.name ?? nic.vmid;
  const f = hop.frame;
  const p = f.payload;
  const base = pveApiBase(pve, nic.vmid);
  if (isMacfilter(step.origin) && /^00:00:5e:00:01:/i.test(f.src)) {
    const fix = pveFwFix({
      hostName: host,
      pve,
      vmid: nic.vmid,
      id: `pve-macfilter-off-${nic.vmid}`,
      title: `On ${host}: no MAC filter for VM ${nic.vmid} (${guest}): macfilter: 0, so keepalived's VMAC ${f.src} may send`,
      keeps: `the IP filter, IN/OUT rules and policies of VM ${nic.vmid}; loses MAC anti-spoofing on all its NICs (or drop use_vmac in keepalived.conf and keep it)`,
      protectionRank: 40,
      edit: (text) => setFwOption(text, 'macfilter', '0'),
      pvesh: [`pvesh set ${base}/options --macfilter 0`],
    });
    return fix ? [fix] : [];
  }
  if (p.kind === 'arp' && p.op === ARP_REPLY && allVips(ctx.loaded).has(p.spa) && isPveArpFilterDrop(step))
    return pveVipArpFixes(ctx, host, nic, guest, p.spa as Ipv4);
  if (p.kind === 'ipv4' && p.protocol === VRRP_PROTOCOL && dir) {
    const peer = formatIpv4(dir === 'IN' ? p.src : p.dst);
    const rule =
      dir === 'IN'
        ? `IN ACCEPT -p vrrp -source ${peer} # keepalived adverts`
        : `OUT ACCEPT -p vrrp -dest ${peer} # keepalived adverts`;
    const fix = pveFwFix({
      hostName: host,
      pve,
      vmid: nic.vmid,
      id: `pve-vrrp-${dir.toLowerCase()}-${nic.vmid}-${peer}`,
      title: `On ${host}: let VRRP ${dir === 'IN' ? `from ${peer} into` : `to ${peer} out of`} VM ${nic.vmid} (${guest}): ${rule.replace(/ #.*/, '')}`,
      keeps: `every other rule, the policies, IP and MAC filters of VM ${nic.vmid}: only IP protocol 112 ${dir === 'IN' ? `from ${peer}` : `to ${peer}`} is let through`,
      protectionRank: 90,
      edit: (text) => addFwRule(text, rule),
      pvesh: [
        `pvesh create ${base}/rules --type ${dir.toLowerCase()} --action ACCEPT --proto vrrp --${dir === 'IN' ? 'source' : 'dest'} ${peer} --pos 0 --comment 'keepalived adverts'`,
      ],
    });
    return fix ? [fix] : [];
  }
  return [];
}
