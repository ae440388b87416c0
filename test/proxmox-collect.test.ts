/**
 * The collector on a Proxmox VE host: it copies the firewall files of /etc/pve this node uses (pointed at the shipped
 * example with LVSDOCTOR_PVE_ROOT / LVSDOCTOR_PVE_NODE, as a real host's /etc/pve), and `proxmox check` reads the
 * bundle as it reads a copy of /etc/pve: same findings, origins naming the bundle's files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collectorScript } from '../src/collect/collector-script.ts';
import { runCli } from './run-cli.ts';

const PVE = join(import.meta.dirname, '..', 'examples', 'proxmox-lvs-dr', 'etc-pve');

describe('collector on a Proxmox VE host', () => {
  it('bundles the firewall files and proxmox check finds what it finds in /etc/pve', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pve-collect-'));
    try {
      writeFileSync(join(dir, 'collect.sh'), collectorScript({ guest: false }));
      const r = spawnSync('sh', ['collect.sh'], {
        cwd: dir,
        env: { ...process.env, LVSDOCTOR_PVE_ROOT: PVE, LVSDOCTOR_PVE_NODE: 'pve1' },
        encoding: 'utf8',
        timeout: 100_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const bundle = readdirSync(dir).find((f) => f.startsWith('lvsdoctor-bundle-'))!;
      const args = [
        '--vip',
        '192.0.2.100',
        '--director',
        '100@192.0.2.11',
        '--director',
        '102@192.0.2.12',
        '--real-server',
        '101@192.0.2.21',
        '--json',
      ];
      const fromBundle = await runCli('proxmox', 'check', join(dir, bundle), ...args);
      const fromDir = await runCli('proxmox', 'check', PVE, ...args);
      const ids = (s: string) => (JSON.parse(s) as { findings: { id: string }[] }).findings.map((f) => f.id);
      expect(fromBundle.code).toBe(1);
      expect(ids(fromBundle.stdout)).toEqual(ids(fromDir.stdout));
      expect(fromBundle.stdout).toContain(`${bundle}/firewall/100.fw:6`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
