/**
 * The Proxmox examples end to end through the CLI: the broken LVS-DR setup (pve-firewall's ipfilter on both
 * directors and the real server, VRRP not allowed in) gives the findings of the fact sheet's §7 with fixes verified
 * by re-trace; its fixed twin (the files `--fix-dir` wrote) gives none.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const EX = join(import.meta.dirname, '..', 'examples');
const ROLES = [
  '--vip',
  '192.0.2.100',
  '--director',
  '100@192.0.2.11',
  '--director',
  '102@192.0.2.12',
  '--real-server',
  '101@192.0.2.21',
];

describe('examples/proxmox-lvs-dr', () => {
  it('finds the director ipfilter drop, VRRP dropped both ways and the real server VIP replies, each fix verified', async () => {
    const r = await runCli('proxmox', 'check', join(EX, 'proxmox-lvs-dr/etc-pve'), ...ROLES, '--json');
    expect(r.code).toBe(1);
    const rep = JSON.parse(r.stdout) as {
      findings: { id: string; fixes: { id: string; verified: boolean }[] }[];
      combined: { failing: unknown[]; probes: number };
    };
    expect(rep.findings.map((f) => f.id)).toEqual([
      'pve-dr-director-ipfilter',
      'pve-dr-director-ipfilter',
      'pve-vrrp-dropped',
      'pve-vrrp-dropped',
      'pve-rs-vip-source',
    ]);
    expect(rep.findings.flatMap((f) => f.fixes.map((x) => [x.id, x.verified]))).toEqual([
      ['pve-director-ipfilter-off-100', true],
      ['pve-director-ipfilter-off-102', true],
      ['pve-vrrp-in-102', true],
      ['pve-vrrp-in-100', true],
      ['pve-vip-in-ipfilter-101', true],
    ]);
    expect(rep.combined.failing).toEqual([]);
  });

  it('names the deciding rule, its .fw line and the VM config line', async () => {
    const r = await runCli('proxmox', 'check', join(EX, 'proxmox-lvs-dr/etc-pve'), ...ROLES);
    expect(r.stdout).toContain(
      'dropped at fwbr100i0 (FORWARD) by: -A tap100i0-OUT -m set ! --match-set PVEFW-100-ipfilter-net0-v4 src -j DROP',
    );
    expect(r.stdout).toContain(
      '(firewall/100.fw:6) ← VM 100 net0 (tap100i0, firewall=1) (nodes/pve1/qemu-server/100.conf:5)',
    );
    expect(r.stdout).toContain('pvesh set /nodes/pve1/qemu/100/firewall/options --ipfilter 0');
  });

  it('writes the fixed files, which are the fixed twin', async () => {
    const out = mkdtempSync(join(tmpdir(), 'pve-fix-'));
    try {
      const r = await runCli('proxmox', 'check', join(EX, 'proxmox-lvs-dr/etc-pve'), ...ROLES, '--fix-dir', out);
      expect(r.code).toBe(1);
      for (const f of ['firewall/100.fw', 'firewall/101.fw', 'firewall/102.fw'])
        expect(readFileSync(join(out, f), 'utf8')).toBe(
          readFileSync(join(EX, 'proxmox-lvs-dr-fixed/etc-pve', f), 'utf8'),
        );
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it.skipIf(spawnSync('sh', ['-c', 'command -v tcpdump']).status !== 0)(
    'writes a pcap per bridge port; real tcpdump reads it as the report prints it',
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'pve-pcap-'));
      try {
        const r = await runCli(
          'proxmox',
          'check',
          join(EX, 'proxmox-lvs-dr/etc-pve'),
          ...ROLES,
          '--pcap-dir',
          out,
          '--json',
        );
        const rep = JSON.parse(r.stdout) as { findings: { probe: { tcpdump: string; seenAt: string[] } }[] };
        const probe = rep.findings[0]!.probe;
        expect(probe.seenAt).toEqual(['tap100i0']);
        const real = spawnSync('tcpdump', ['-nn', '-e', '-r', join(out, 'tap100i0.pcap')], { encoding: 'utf8' });
        const lines = real.stdout.split('\n').map((l) => l.replace(/^\S+ /, ''));
        expect(lines).toContain(probe.tcpdump);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );

  it('the fixed twin has no findings', async () => {
    const r = await runCli('proxmox', 'check', join(EX, 'proxmox-lvs-dr-fixed/etc-pve'), ...ROLES);
    expect(r.stdout).toContain('No findings');
    expect(r.code).toBe(0);
  });

  it('keepalived use_vmac: the MAC filter drops the virtual MAC; macfilter: 0 is the fix, the IP filter stays', async () => {
    const r = await runCli(
      'proxmox',
      'check',
      join(EX, 'proxmox-lvs-dr-fixed/etc-pve'),
      ...ROLES,
      '--vmac-vrid',
      '51',
      '--json',
    );
    const rep = JSON.parse(r.stdout) as {
      findings: { id: string; probe: { rule: string }; fixes: { verified: boolean }[] }[];
    };
    expect(rep.findings.map((f) => f.id)).toEqual(['pve-vmac-macfilter', 'pve-vmac-macfilter']);
    expect(rep.findings[0]!.probe.rule).toBe('-A tap100i0-OUT -m mac ! --mac-source BC:24:11:00:00:0B -j DROP');
    expect(rep.findings.every((f) => f.fixes[0]!.verified)).toBe(true);
  });

  it('LVS-NAT: the VIP in the set is enough (the IP filter stays on)', async () => {
    const r = await runCli('proxmox', 'check', join(EX, 'proxmox-lvs-dr/etc-pve'), ...ROLES, '--mode', 'nat', '--json');
    const rep = JSON.parse(r.stdout) as { findings: { id: string; fixes: { id: string; verified: boolean }[] }[] };
    expect(rep.findings.filter((f) => f.id === 'pve-vip-not-in-ipfilter').map((f) => f.fixes[0])).toEqual([
      expect.objectContaining({ id: 'pve-vip-in-ipfilter-100', verified: true }),
      expect.objectContaining({ id: 'pve-vip-in-ipfilter-102', verified: true }),
    ]);
  });

  it('says what is wrong with bad input, with file and line', async () => {
    const r = await runCli('proxmox', 'check', join(EX, 'nope'), ...ROLES);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not a directory');
  });
});
