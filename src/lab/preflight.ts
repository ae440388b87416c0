/** What the lab needs from the machine: root, commands, and which optional real components exist. */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Commands the lab cannot work without, with the Debian package that provides each. */
export const REQUIRED_COMMANDS: readonly (readonly [string, string])[] = [
  ['ip', 'iproute2'],
  ['ss', 'iproute2'],
  ['ebtables', 'ebtables'],
  ['ebtables-restore', 'ebtables'],
  ['nft', 'nftables'],
  ['tcpdump', 'tcpdump'],
  ['sysctl', 'procps'],
  ['unshare', 'util-linux'],
  ['nsenter', 'util-linux'],
  ['python3', 'python3'],
];

export interface Preflight {
  readonly root: boolean;
  /** Missing commands as `command (package)`. */
  readonly missing: readonly string[];
  /** A real libvirt nwfilter driver can be started (libvirtd, virsh and the nwfilter driver module exist). */
  readonly libvirt: boolean;
  readonly libvirtMissing: readonly string[];
  /** The kernel has IPVS (loaded, or a loadable module) and ipvsadm exists. */
  readonly ipvs: boolean;
  /** Why not, when `ipvs` is false. */
  readonly ipvsMissing?: string;
  readonly python: string;
}

export function whichCommand(cmd: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = join(d, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

export const NWFILTER_DRIVER_DIRS = [
  '/usr/lib/x86_64-linux-gnu/libvirt/connection-driver',
  '/usr/lib/aarch64-linux-gnu/libvirt/connection-driver',
  '/usr/lib64/libvirt/connection-driver',
  '/usr/lib/libvirt/connection-driver',
];

export function nwfilterDriverDir(): string | undefined {
  return NWFILTER_DRIVER_DIRS.find((d) => existsSync(join(d, 'libvirt_driver_nwfilter.so')));
}

let ipvsKnown: boolean | undefined;

/** IPVS loaded, or a module `modprobe` would load (checked once, with a dry run). */
export function kernelHasIpvs(): boolean {
  if (existsSync('/proc/net/ip_vs')) return true;
  if (ipvsKnown === undefined) {
    const r = spawnSync('modprobe', ['-n', '-q', 'ip_vs'], { stdio: 'ignore', timeout: 5000 });
    ipvsKnown = r.status === 0;
  }
  return ipvsKnown;
}

export function preflight(): Preflight {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const missing = REQUIRED_COMMANDS.filter(([c]) => !whichCommand(c)).map(([c, p]) => `${c} (${p})`);
  const libvirtMissing: string[] = [];
  if (!whichCommand('libvirtd')) libvirtMissing.push('libvirtd (libvirt-daemon)');
  if (!whichCommand('virsh')) libvirtMissing.push('virsh (libvirt-clients)');
  if (!nwfilterDriverDir()) libvirtMissing.push('libvirt_driver_nwfilter.so (libvirt-daemon)');
  if (!existsSync('/etc/libvirt/nwfilter/clean-traffic.xml'))
    libvirtMissing.push('/etc/libvirt/nwfilter (libvirt-daemon-config-nwfilter)');
  const ipvsMissing = !whichCommand('ipvsadm')
    ? 'ipvsadm (ipvsadm) is not installed'
    : !kernelHasIpvs()
      ? 'the kernel has no IPVS (no /proc/net/ip_vs, no ip_vs module)'
      : undefined;
  const ipvs = ipvsMissing === undefined;
  // Debian's python3 (scapy-free stdlib is enough); a pyenv shim first on PATH works too.
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : (whichCommand('python3') ?? 'python3');
  return {
    root,
    missing,
    libvirt: libvirtMissing.length === 0,
    libvirtMissing,
    ipvs,
    ...(ipvsMissing ? { ipvsMissing } : {}),
    python,
  };
}

/** Why the lab cannot run here, or undefined when it can. */
export function labUnavailable(p: Preflight = preflight()): string | undefined {
  const why: string[] = [];
  if (!p.root) why.push('the lab needs root (network namespaces, bridges, ebtables)');
  if (p.missing.length > 0) why.push(`missing commands: ${p.missing.join(', ')}`);
  return why.length ? why.join('; ') : undefined;
}
