/**
 * A Proxmox VE host's bundle (the collector copies the firewall files of /etc/pve this node uses) as the input of the
 * Proxmox compiler: the same files, named as in /etc/pve.
 */
import type { PveGuestSource, PveNodeFiles } from '../proxmox/node-files.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import { type Bundle, bundleFile, outputOf } from './bundle.ts';

/** Whether the collector saw a Proxmox VE host. */
export function isProxmoxBundle(b: Bundle): boolean {
  return b.meta.get('platform') === 'proxmox';
}

export function pveFilesFromBundle(b: Bundle, localNetwork?: string): { files: PveNodeFiles; issues: Issue[] } {
  const issues: Issue[] = [];
  const node = b.meta.get('pve-node') ?? b.hostname;
  const file = (id: string, name: string) => {
    const text = outputOf(b, id);
    return text === undefined || b.commands.get(id)?.status !== 'ok'
      ? undefined
      : { file: `${bundleFile(b, '')}${name}`, text };
  };
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  for (const id of [...b.commands.keys()].sort()) {
    const m = /^pve-(qemu-server|lxc)-(\d+)$/.exec(id);
    if (m) {
      const conf = file(id, `nodes/${node}/${m[1]}/${m[2]}.conf`);
      if (conf) guests.push({ kind: m[1] === 'lxc' ? 'lxc' : 'qemu', vmid: m[2]!, conf });
    }
    const f = /^pve-fw-(\d+)$/.exec(id);
    if (f) {
      const fw = file(id, `firewall/${f[1]}.fw`);
      if (fw) guestFw.set(f[1]!, fw);
    }
  }
  const cluster = file('pve-fw-cluster', 'firewall/cluster.fw');
  if (!cluster)
    issues.push(
      issue(
        'pve-no-cluster-fw',
        'the bundle has no firewall/cluster.fw: the firewall is off for the whole cluster',
        filePos(bundleFile(b, 'cmd/pve-fw-cluster.out'), 0),
        'warning',
      ),
    );
  const host = file('pve-fw-host', `nodes/${node}/host.fw`);
  const corosync = file('pve-corosync', 'corosync.conf');
  return {
    files: {
      nodeName: node,
      ...(cluster ? { cluster } : {}),
      ...(host ? { host } : {}),
      guestFw,
      guests,
      ...(corosync ? { corosync } : {}),
      ...(localNetwork !== undefined ? { localNetwork } : {}),
    },
    issues,
  };
}
