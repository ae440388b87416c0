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

/** One copied /etc/pve file: its path relative to /etc/pve, the bundle command that copied it, its text. */
export interface PveBundleFile {
  readonly rel: string;
  readonly id: string;
  readonly text: string;
}

/** The node the collector read (`meta pve-node`, else the bundle's hostname). */
export function pveNodeOf(b: Bundle): string {
  return b.meta.get('pve-node') ?? b.hostname;
}

/** The /etc/pve files a Proxmox bundle holds (copies that succeeded), named as in /etc/pve, in a stable order. */
export function pveBundleFiles(b: Bundle): PveBundleFile[] {
  const node = pveNodeOf(b);
  const out: PveBundleFile[] = [];
  const add = (id: string, rel: string) => {
    const text = outputOf(b, id);
    if (text !== undefined && b.commands.get(id)?.status === 'ok') out.push({ rel, id, text });
  };
  add('pve-fw-cluster', 'firewall/cluster.fw');
  add('pve-fw-host', `nodes/${node}/host.fw`);
  add('pve-corosync', 'corosync.conf');
  for (const id of [...b.commands.keys()].sort()) {
    const m = /^pve-(qemu-server|lxc)-(\d+)$/.exec(id);
    if (m) add(id, `nodes/${node}/${m[1]}/${m[2]}.conf`);
    const f = /^pve-fw-(\d+)$/.exec(id);
    if (f) add(id, `firewall/${f[1]}.fw`);
  }
  return out;
}

export function pveFilesFromBundle(b: Bundle, localNetwork?: string): { files: PveNodeFiles; issues: Issue[] } {
  const issues: Issue[] = [];
  const node = pveNodeOf(b);
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  let cluster: { file: string; text: string } | undefined;
  let host: { file: string; text: string } | undefined;
  let corosync: { file: string; text: string } | undefined;
  for (const f of pveBundleFiles(b)) {
    const named = { file: `${bundleFile(b, '')}${f.rel}`, text: f.text };
    const g = /^pve-(qemu-server|lxc)-(\d+)$/.exec(f.id);
    const fw = /^pve-fw-(\d+)$/.exec(f.id);
    if (g) guests.push({ kind: g[1] === 'lxc' ? 'lxc' : 'qemu', vmid: g[2]!, conf: named });
    else if (fw) guestFw.set(fw[1]!, named);
    else if (f.id === 'pve-fw-cluster') cluster = named;
    else if (f.id === 'pve-fw-host') host = named;
    else if (f.id === 'pve-corosync') corosync = named;
  }
  if (!cluster)
    issues.push(
      issue(
        'pve-no-cluster-fw',
        'the bundle has no firewall/cluster.fw: the firewall is off for the whole cluster',
        filePos(bundleFile(b, 'cmd/pve-fw-cluster.out'), 0),
        'warning',
      ),
    );
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
