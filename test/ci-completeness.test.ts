/**
 * In CI (environment CI=true, as set by .ci/run and every CI service) nothing that CI can run may be skipped in
 * silence: the external suites must be present, the run must be root, and every tool the kernel, libvirt and oracle
 * tests use must be installed (scripts/install-test-deps.sh installs them). Outside CI the same checks are only
 * reported, as skipped tests whose names say what a CI run would have missed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXTERNAL_SUITES, externalSuite, SHARED_DIR_ENV } from './support/conformance.ts';

const CI = process.env.CI === 'true' || process.env.CI === '1';

/** The commands the root-only and oracle tests need, with the Debian package that provides each. */
const TOOLS: readonly (readonly [string, string])[] = [
  ['ip', 'iproute2'],
  ['dash', 'dash'],
  ['busybox', 'busybox'],
  ['unshare', 'util-linux'],
  ['nsenter', 'util-linux'],
  ['ebtables', 'ebtables'],
  ['ipset', 'ipset'],
  ['ebtables-save', 'ebtables'],
  ['iptables-save', 'iptables'],
  ['ip6tables-save', 'iptables'],
  ['xtables-monitor', 'iptables'],
  ['nft', 'nftables'],
  ['tcpdump', 'tcpdump'],
  ['tshark', 'tshark'],
  ['libvirtd', 'libvirt-daemon'],
  ['virsh', 'libvirt-clients'],
  ['keepalived', 'keepalived'],
  ['curl', 'curl'],
  ['chromium', 'chromium'],
];

/** Packages checked otherwise than by a command (below). */
const OTHER_CHECKS = ['libvirt-daemon-config-nwfilter', 'python3-scapy'];

function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** Everything a CI run needs but this machine lacks, one line each. */
function missing(): string[] {
  const out: string[] = [];
  for (const s of EXTERNAL_SUITES) {
    const skip = externalSuite(s).skip;
    if (skip !== undefined) out.push(skip);
  }
  if (process.platform !== 'linux') out.push('not Linux (the kernel tests need network namespaces)');
  else if (process.getuid?.() !== 0) out.push('not root (the kernel, libvirt and collector tests need root)');
  for (const [cmd, pkg] of TOOLS) if (!has(cmd)) out.push(`${cmd} is not installed (package ${pkg})`);
  if (!existsSync('/usr/share/libvirt/nwfilter')) out.push('libvirt-daemon-config-nwfilter is not installed');
  if (spawnSync('/usr/bin/python3', ['-c', 'import scapy'], { stdio: 'ignore' }).status !== 0) {
    out.push('python3-scapy is not installed (Debian /usr/bin/python3)');
  }
  return out;
}

const gaps = missing();

describe('a CI run skips nothing it can run', () => {
  if (CI) {
    it(`CI=true: every external suite (${SHARED_DIR_ENV}), root and every test tool are present`, () => {
      expect(gaps, 'CI would skip tests it can run; fix the CI image (see .ci/run)').toEqual([]);
    });
  } else {
    // Outside CI: one skipped line per gap, so a developer sees what a CI run would also cover.
    for (const g of gaps) it.skip(`not in CI, skipped: ${g}`, () => {});
  }

  it('checks every package scripts/install-test-deps.sh installs', () => {
    const script = readFileSync(new URL('../scripts/install-test-deps.sh', import.meta.url), 'utf8');
    const list = /^PACKAGES=\(([^)]*)\)/m.exec(script)?.[1];
    expect(list, 'PACKAGES=(…) in scripts/install-test-deps.sh').toBeDefined();
    const checked = new Set([...TOOLS.map(([, pkg]) => pkg), ...OTHER_CHECKS]);
    expect(list!.split(/\s+/).filter((p) => p !== '' && !checked.has(p))).toEqual([]);
  });
});
