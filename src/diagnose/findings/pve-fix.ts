/**
 * What the Proxmox findings of a whole-cluster trace share: the guest NIC a pve-firewall rule's origin names, the
 * scenario with a Proxmox node rebuilt from edited files, and a fix written as one guest's edited `.fw` file (with
 * the `pvesh` commands that make the same edit) whose `apply` compiles the edited files again for the re-trace.
 */
import { setFwOption } from '../../proxmox/fw-edit.ts';
import type { PveNodeFiles } from '../../proxmox/node-files.ts';
import type { Origin } from '../../source/origin.ts';
import { shellCommand } from '../../source/shell.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { Node } from '../../topology/model.ts';
import { type PveHost, pveHostFrom } from '../../topology/proxmox-host.ts';
import type { Hop, NetfilterStep } from '../../trace/types.ts';
import { dropStep } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import type { DiagnoseContext } from './kind.ts';

export interface PveNicRef {
  readonly vmid: string;
  readonly netid: string;
  readonly iface: string;
}

/** The Proxmox guest NIC a rule's origin chain names (`VM 100 net0 (tap100i0, firewall=1)`). */
export function pveNic(o: Origin | undefined): PveNicRef | undefined {
  for (let cur = o; cur; cur = cur.via) {
    const d = cur.data;
    if (d?.platform === 'proxmox' && typeof d.vmid === 'string' && typeof d.netid === 'string')
      return { vmid: d.vmid, netid: d.netid, iface: String(d.iface ?? '') };
  }
  return undefined;
}

/** The loaded scenario with one Proxmox host rebuilt from edited files. */
export function withPveHost(s: LoadedScenario, host: string, pve: PveHost): LoadedScenario {
  const iptables = new Map(s.installedIptables ?? []);
  if (pve.filter4) iptables.set(host, pve.filter4);
  else iptables.delete(host);
  const ipsets = new Map(s.installedIpsets ?? []);
  ipsets.set(host, pve.ipsets);
  const proxmox = new Map(s.proxmox ?? []);
  proxmox.set(host, pve);
  // pve-firewall applies the edited files: the node's live ebtables (if the scenario had them) become the compiled.
  const ebFilter = new Map(s.installedEbFilter ?? []);
  ebFilter.delete(host);
  return { ...s, installedIptables: iptables, installedIpsets: ipsets, installedEbFilter: ebFilter, proxmox };
}

/** A drop by a pve-firewall rule of one guest NIC, on a Proxmox node of the scenario. */
export interface PveGuestDrop {
  readonly host: string;
  readonly pve: PveHost;
  readonly nic: PveNicRef;
  readonly step: NetfilterStep;
  /** The guest (its node in the scenario), when it is modelled. */
  readonly guest?: Node;
}

/** The drop of a hop, when a rule made for a Proxmox guest NIC (its origin names the NIC) decided it. */
export function pveGuestDrop(ctx: DiagnoseContext, hop: Hop | undefined): PveGuestDrop | undefined {
  if (!hop) return undefined;
  const pve = ctx.loaded.proxmox?.get(hop.place.node);
  if (!pve) return undefined;
  const step = dropStep(hop);
  const nic = step && pveNic(step.origin);
  if (!step || !nic) return undefined;
  const domain = pve.domains.find((d) => d.interfaces.some((i) => i.targetDev === nic.iface));
  const guest = domain && ctx.loaded.scenario.nodes.get(domain.name);
  return { host: hop.place.node, pve, nic, step, ...(guest ? { guest } : {}) };
}

/** The `pvesh` path of a guest's firewall (`/nodes/pve1/qemu/100/firewall`). */
export function pveApiBase(pve: PveHost, vmid: string): string {
  const kind = pve.input.guests.find((g) => g.config.vmid === vmid)?.config.kind ?? 'qemu';
  return `/nodes/${pve.files.nodeName}/${kind}/${vmid}/firewall`;
}

/**
 * A fix that edits one guest's `.fw` file (created when the guest has none): the edited file as an artifact, the
 * `pvesh` commands for the same edit, and the node compiled again from the edited files for the re-trace.
 */
export function pveFwFix(o: {
  readonly hostName: string;
  readonly pve: PveHost;
  readonly vmid: string;
  readonly id: string;
  readonly title: string;
  readonly keeps: string;
  readonly protectionRank: number;
  readonly edit: (text: string) => string;
  readonly pvesh: readonly string[];
}): FixProposal | undefined {
  const { pve, vmid, hostName } = o;
  /** The node with the edit made to its current files (so that fixes applied one after another compose). */
  const edited = (cur: PveHost): PveHost | undefined => {
    const fw = cur.files.guestFw.get(vmid) ?? { file: `firewall/${vmid}.fw`, text: '' };
    const text = o.edit(fw.text);
    if (text === fw.text) return cur;
    const files: PveNodeFiles = { ...cur.files, guestFw: new Map([...cur.files.guestFw, [vmid, { ...fw, text }]]) };
    return pveHostFrom(files).value;
  };
  const before = pve.files.guestFw.get(vmid)?.text ?? '';
  const text = o.edit(before);
  const rebuilt = edited(pve);
  if (text === before || !rebuilt) return undefined;
  return {
    id: o.id,
    title: o.title,
    keeps: o.keeps,
    protectionRank: o.protectionRank,
    artifacts: [{ path: `pve-${hostName}/firewall/${vmid}.fw`, content: text }],
    commands: [
      `# on ${hostName} (or any node of its cluster):`,
      ...o.pvesh,
      `# or: cp -- pve-${hostName}/firewall/${vmid}.fw /etc/pve/firewall/${vmid}.fw`,
    ],
    apply: (s) => {
      const cur = s.proxmox?.get(hostName);
      const next = cur === undefined || cur === pve ? rebuilt : edited(cur);
      return next ? withPveHost(s, hostName, next) : s;
    },
  };
}

/**
 * A fix that edits a node's `host.fw` (created when the node has none): the edited file, the `pvesh` commands for the
 * same edit, and the node compiled again for the re-trace.
 */
export function pveHostFwFix(
  hostName: string,
  pve: PveHost,
  o: {
    readonly id: string;
    readonly title: string;
    readonly keeps: string;
    readonly protectionRank: number;
    readonly edit: (text: string) => string;
    readonly pvesh: readonly string[];
  },
): FixProposal | undefined {
  const node = pve.files.nodeName;
  const edited = (cur: PveHost): PveHost | undefined => {
    const h = cur.files.host ?? { file: `nodes/${node}/host.fw`, text: '' };
    const text = o.edit(h.text);
    if (text === h.text) return cur;
    return pveHostFrom({ ...cur.files, host: { ...h, text } }).value;
  };
  const before = pve.files.host?.text ?? '';
  const text = o.edit(before);
  const rebuilt = edited(pve);
  if (text === before || !rebuilt) return undefined;
  return {
    id: o.id,
    title: o.title,
    keeps: o.keeps,
    protectionRank: o.protectionRank,
    artifacts: [{ path: `pve-${hostName}/nodes/${node}/host.fw`, content: text }],
    commands: [
      `# on ${hostName}:`,
      ...o.pvesh,
      `# or: cp -- pve-${hostName}/nodes/${node}/host.fw /etc/pve/nodes/${node}/host.fw`,
    ],
    apply: (s) => {
      const cur = s.proxmox?.get(hostName);
      const next = cur === undefined || cur === pve ? rebuilt : edited(cur);
      return next ? withPveHost(s, hostName, next) : s;
    },
  };
}

/** A fix that sets one option of a node's `host.fw` (see `pveHostFwFix`). */
export function pveHostOptionFix(o: {
  readonly hostName: string;
  readonly pve: PveHost;
  readonly key: string;
  readonly value: string;
  readonly id: string;
  readonly title: string;
  readonly keeps: string;
  readonly protectionRank: number;
}): FixProposal | undefined {
  return pveHostFwFix(o.hostName, o.pve, {
    id: o.id,
    title: o.title,
    keeps: o.keeps,
    protectionRank: o.protectionRank,
    edit: (t) => setFwOption(t, o.key, o.value),
    pvesh: [shellCommand('pvesh', 'set', `/nodes/${o.pve.files.nodeName}/firewall/options`, `--${o.key}`, o.value)],
  });
}
