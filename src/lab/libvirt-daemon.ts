/**
 * A real libvirt nwfilter driver inside a host's namespace. libvirtd runs in a private mount namespace where /run,
 * /var, the filter directory and the driver directory are the lab's own (only the nwfilter driver is loaded, so no
 * qemu user is needed and nothing is written outside the lab's temporary directory). virsh reaches it by entering
 * the daemon's mount and network namespaces.
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFilterBindingXml, writeNwfilterXml } from '../diagnose/nwfilter-writer.ts';
import type { NwFilter } from '../libvirt/nwfilter-model.ts';
import type { PortBinding } from '../topology/model.ts';
import { type BgProcess, inNsWithSys, readLog, run, spawnBg } from './exec.ts';
import { nwfilterDriverDir } from './preflight.ts';

export interface LibvirtDaemon {
  readonly ns: string;
  readonly dir: string;
  readonly proc: BgProcess;
}

function virsh(d: LibvirtDaemon, args: readonly string[], allowFail = false) {
  return run(['nsenter', '-t', String(d.proc.pid), '-m', '-n', 'virsh', '-q', '-c', 'nwfilter:///system', ...args], {
    allowFail,
    timeoutMs: 30_000,
  });
}

export async function startLibvirtd(ns: string, dir: string, detach = false): Promise<LibvirtDaemon> {
  const drvSrc = nwfilterDriverDir();
  if (!drvSrc) throw new Error('libvirt nwfilter driver not found');
  mkdirSync(join(dir, 'drv'), { recursive: true });
  mkdirSync(join(dir, 'nwfilter'), { recursive: true });
  cpSync(join(drvSrc, 'libvirt_driver_nwfilter.so'), join(dir, 'drv', 'libvirt_driver_nwfilter.so'));
  cpSync('/etc/libvirt/nwfilter', join(dir, 'nwfilter'), { recursive: true });
  const script = [
    'set -e',
    'mount -t tmpfs lvsdoctor-run /run',
    'mount -t tmpfs lvsdoctor-var /var',
    'mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /var/tmp /run/libvirt',
    'ln -s /run /var/run',
    `mount --bind '${join(dir, 'drv')}' '${drvSrc}'`,
    `mount --bind '${join(dir, 'nwfilter')}' /etc/libvirt/nwfilter`,
    'exec libvirtd --pid-file /run/libvirtd.pid',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'start.sh'), script);
  const proc = await spawnBg(
    `libvirtd in ${ns}`,
    inNsWithSys(ns, ['unshare', '-m', '--propagation', 'private', 'sh', join(dir, 'start.sh')]),
    { logFile: join(dir, 'libvirtd.log'), ...(detach ? { detach } : {}) },
  );
  const d: LibvirtDaemon = { ns, dir, proc };
  const t0 = Date.now();
  for (;;) {
    const r = await virsh(d, ['nwfilter-list'], true);
    if (r.code === 0) break;
    if (proc.child.exitCode !== null) throw new Error(`libvirtd in ${ns} exited: ${readLog(proc).trim()}`);
    if (Date.now() - t0 > 10_000) throw new Error(`libvirtd in ${ns} did not answer within 10 s: ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
  return d;
}

/** Custom filters in an order where every filter comes after the custom filters it references. */
function definitionOrder(filters: readonly NwFilter[]): NwFilter[] {
  const byName = new Map(filters.map((f) => [f.name, f]));
  const out: NwFilter[] = [];
  const seen = new Set<string>();
  const visit = (f: NwFilter) => {
    if (seen.has(f.name)) return;
    seen.add(f.name);
    for (const e of f.entries) if (e.kind === 'filterref' && byName.has(e.filter)) visit(byName.get(e.filter)!);
    out.push(f);
  };
  for (const f of filters) visit(f);
  return out;
}

export async function defineFilters(d: LibvirtDaemon, filters: readonly NwFilter[]): Promise<void> {
  for (const f of definitionOrder(filters.filter((x) => !x.builtin))) {
    const file = join(d.dir, `filter-${f.name}.xml`);
    writeFileSync(file, writeNwfilterXml(f));
    await virsh(d, ['nwfilter-define', file]);
  }
}

export async function createBinding(d: LibvirtDaemon, b: PortBinding): Promise<void> {
  const file = join(d.dir, `binding-${b.binding.portdev}.xml`);
  writeFileSync(
    file,
    writeFilterBindingXml({
      ownerName: b.binding.ownerName ?? b.domain,
      ownerUuid: b.binding.ownerUuid ?? uuidOf(b.domain),
      portdev: b.binding.portdev,
      mac: b.binding.mac,
      filter: b.binding.filter,
      params: b.binding.params,
    }),
  );
  await virsh(d, ['nwfilter-binding-create', file]);
}

/** A stable UUID for an owner that has none (libvirt wants one in every binding). */
function uuidOf(name: string): string {
  const h = createHash('sha256').update(name).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
