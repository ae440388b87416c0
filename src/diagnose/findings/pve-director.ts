/**
 * The founding failure on a Proxmox VE host: a DR director's forwarded frames (client source address) dropped by
 * pve-firewall's IP filter on the director NIC (`tapXiY-OUT … ! --match-set PVEFW-X-ipfilter-netY-v4 src -j DROP`,
 * met on the NIC's `fwbrXiY` bridge). The fix keeping the most protection (fact sheet §7): the IP filter off on that
 * NIC only — `ipfilter: 0` and no explicit `[IPSET ipfilter-netY]` (which turns the filter on by itself) — while the
 * MAC filter, the IN/OUT rules and policies stay. Adding the VIP to the set does not help: the source is the client.
 */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { removeFwIpset, setFwOption } from '../../proxmox/fw-edit.ts';
import type { PveNodeFiles } from '../../proxmox/node-files.ts';
import { findOrigin, type Origin } from '../../source/origin.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import { type PveHost, pveHostFrom } from '../../topology/proxmox-host.ts';
import type { Trace } from '../../trace/types.ts';
import { dropStep, endHop, ownsAddress } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';

interface PveNicRef {
  readonly vmid: string;
  readonly netid: string;
  readonly iface: string;
}

/** The Proxmox guest NIC a rule's origin chain names (`VM 100 net0 (tap100i0, firewall=1)`). */
function pveNic(o: Origin | undefined): PveNicRef | undefined {
  for (let cur = o; cur; cur = cur.via) {
    const d = cur.data;
    if (d?.platform === 'proxmox' && typeof d.vmid === 'string' && typeof d.netid === 'string')
      return { vmid: d.vmid, netid: d.netid, iface: String(d.iface ?? '') };
  }
  return undefined;
}

/** The loaded scenario with one Proxmox host rebuilt from edited files. */
function withPveHost(s: LoadedScenario, host: string, pve: PveHost): LoadedScenario {
  const iptables = new Map(s.installedIptables ?? []);
  if (pve.filter4) iptables.set(host, pve.filter4);
  else iptables.delete(host);
  const ipsets = new Map(s.installedIpsets ?? []);
  ipsets.set(host, pve.ipsets);
  const proxmox = new Map(s.proxmox ?? []);
  proxmox.set(host, pve);
  return { ...s, installedIptables: iptables, installedIpsets: ipsets, proxmox };
}

function ipfilterOffFix(hostName: string, pve: PveHost, nic: PveNicRef, director: string): FixProposal | undefined {
  const fw = pve.files.guestFw.get(nic.vmid);
  if (!fw) return undefined;
  const set = `ipfilter-${nic.netid}`;
  const text = removeFwIpset(setFwOption(fw.text, 'ipfilter', '0'), set);
  const files: PveNodeFiles = { ...pve.files, guestFw: new Map([...pve.files.guestFw, [nic.vmid, { ...fw, text }]]) };
  const rebuilt = pveHostFrom(files).value;
  if (!rebuilt) return undefined;
  const kind = pve.input.guests.find((g) => g.config.vmid === nic.vmid)?.config.kind ?? 'qemu';
  const base = `/nodes/${pve.files.nodeName}/${kind}/${nic.vmid}/firewall`;
  const hasSet = pve.input.guests.find((g) => g.config.vmid === nic.vmid)?.fw?.ipsets.has(set) ?? false;
  return {
    id: `pve-director-ipfilter-off-${nic.vmid}`,
    title: `On ${hostName}: no IP filter on director ${director}'s ${nic.netid} (VM ${nic.vmid}: ipfilter: 0${hasSet ? ` and no [IPSET ${set}]` : ''})`,
    keeps: `the MAC filter, the IN/OUT rules and policies of VM ${nic.vmid}, and every other guest's IP filter; loses IP anti-spoofing on ${nic.netid} of VM ${nic.vmid} (a DR director must send with its clients' source addresses)`,
    protectionRank: 60,
    artifacts: [{ path: `pve-${hostName}/firewall/${nic.vmid}.fw`, content: text }],
    commands: [
      `# on ${hostName} (or any node of its cluster):`,
      `pvesh set ${base}/options --ipfilter 0`,
      ...(hasSet ? [`pvesh delete ${base}/ipset/${set} --force 1`] : []),
      `# or: cp -- pve-${hostName}/firewall/${nic.vmid}.fw /etc/pve/firewall/${nic.vmid}.fw`,
    ],
    apply: (s) => withPveHost(s, hostName, rebuilt),
  };
}

/** A trace dropped by pve-firewall's rules on a DR director's NIC, its source not the director's own address. */
export function pveDirectorDrop(ctx: DiagnoseContext, trace: Trace, kind: FindingKind): Detected | undefined {
  const hop = endHop(trace);
  if (!hop) return undefined;
  const pve = ctx.loaded.proxmox?.get(hop.place.node);
  if (!pve) return undefined;
  const step = dropStep(hop);
  if (step?.family !== 'ipv4') return undefined;
  const nic = pveNic(step.origin);
  if (!nic) return undefined;
  const domain = pve.domains.find((d) => d.interfaces.some((i) => i.targetDev === nic.iface));
  const guest = domain && ctx.loaded.scenario.nodes.get(domain.name);
  if (!guest || !ctx.loaded.ipvs.has(guest.name)) return undefined;
  const p = hop.frame.payload;
  if (p.kind !== 'ipv4' || ownsAddress(guest, p.src)) return undefined;
  // Only a drop on the way out of the director's NIC (its OUT chain, on its firewall bridge).
  if (!step.path.some((c) => c === `${nic.iface}-OUT`) && step.chain !== `${nic.iface}-OUT`) return undefined;
  const ipfilter = findOrigin(step.origin, 'file')?.label ?? `ipfilter on ${nic.netid}`;
  const fix = ipfilterOffFix(hop.place.node, pve, nic, guest.name);
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${hop.place.node} drops what director ${guest.name} forwards: ${step.chain} ${step.ruleText}`,
      explanation:
        `In DR mode IPVS rewrites only the MAC addresses; the IP header keeps the client's source address ` +
        `${formatIpv4(p.src as Ipv4)}. On Proxmox node ${hop.place.node}, VM ${nic.vmid}'s ${nic.netid} (${nic.iface}) is behind ` +
        `the firewall bridge fwbr${nic.vmid}i${nic.netid.replace(/^net/, '')} with the IP filter on (${ipfilter}): IPv4 may leave the guest only from ` +
        `the addresses of ipfilter-${nic.netid}, so every forwarded frame is taken for spoofing and dropped by ${step.chain} ` +
        `rule ${step.ruleNumber ?? '(policy)'} "${step.ruleText}". Adding the VIP to the set does not help (the source is the client).`,
      where: `${hop.place.node}:${nic.iface}`,
      culprit: step.origin,
    },
    fixes: fix ? [fix] : [],
  };
}
