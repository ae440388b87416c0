/**
 * Loads the directories of ../shared/conformance/pve-firewall (pve-firewall's own test inputs and our LVS examples)
 * into compiler input, with the fixed environment of pve-firewall's test harness (node `proxself`, local network
 * 172.16.1.0/24, the harness' corosync.conf and guests). Used by tests and the benchmark; never by the tool itself.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import type { PveNodeInput } from '../../src/proxmox/compile.ts';
import { type PveGuestSource, pveNodeInput } from '../../src/proxmox/node-files.ts';
import type { Issue } from '../../src/source/issue.ts';

export interface PveConformanceCase {
  readonly name: string;
  /** URL of the directory with cluster.fw, host.fw, <vmid>.fw and tests. */
  readonly dir: URL;
  readonly vmdata: URL;
  /** The suite's folder. */
  readonly base: URL;
}

/** The case directories of the suite at `base` (…/conformance/pve-firewall/), none when it is absent. */
export function pveConformanceCases(base: URL): PveConformanceCase[] {
  if (!existsSync(base)) return [];
  const out: PveConformanceCase[] = [];
  for (const [sub, vm] of [
    ['upstream/', undefined],
    ['examples/', 'vmdata.json'],
  ] as const) {
    const root = new URL(sub, base);
    for (const name of readdirSync(root)
      .filter((n) => n.startsWith('test-') || n.startsWith('example-'))
      .sort()) {
      const dir = new URL(`${name}/`, root);
      out.push({
        name,
        dir,
        base,
        vmdata: vm ? new URL(vm, dir) : new URL('fixtures/fwtester-vmdata.json', base),
      });
    }
  }
  return out;
}

export function loadPveConformanceCase(c: PveConformanceCase): { input: PveNodeInput; issues: readonly Issue[] } {
  const read = (name: string) => {
    const u = new URL(name, c.dir);
    return existsSync(u) ? { file: `${c.name}/${name}`, text: readFileSync(u, 'utf8') } : undefined;
  };
  const vmdata = JSON.parse(readFileSync(c.vmdata, 'utf8')) as {
    qemu: Record<string, Record<string, string>>;
    lxc: Record<string, Record<string, string>>;
  };
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  for (const kind of ['qemu', 'lxc'] as const) {
    for (const [vmid, nets] of Object.entries(vmdata[kind] ?? {})) {
      guests.push({ kind, vmid, conf: { file: `${kind}/${vmid}.conf`, nets } });
      const fw = read(`${vmid}.fw`);
      if (fw) guestFw.set(vmid, fw);
    }
  }
  const cluster = read('cluster.fw');
  const host = read('host.fw');
  const r = pveNodeInput({
    nodeName: 'proxself',
    ...(cluster ? { cluster } : {}),
    ...(host ? { host } : {}),
    guestFw,
    guests,
    corosync: {
      file: 'corosync.conf',
      text: readFileSync(new URL('upstream/corosync.conf', c.base), 'utf8'),
    },
    localNetwork: '172.16.1.0/24',
  });
  return { input: r.value!, issues: r.issues };
}
