/**
 * A Proxmox VE node inside a scenario (`platform: proxmox`, `pve: etc-pve`): the loader builds the guests, the
 * tap → fwbr ← fwln ═ fwpr → vmbr wiring and the node's iptables/ipset rules from the /etc/pve copy, and
 * `lvsdoctor diagnose` walks the cluster hop by hop through it.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { runCli } from './run-cli.ts';

const EX = join(import.meta.dirname, '..', 'examples');
const BROKEN = join(EX, 'proxmox-lvs-dr');
const FIXED = join(EX, 'proxmox-lvs-dr-fixed');

describe('a Proxmox host in a scenario', () => {
  it('wires each firewall=1 NIC as tap → fwbr ← fwln ═ fwpr → vmbr and loads the compiled rules', () => {
    const r = loadScenario(BROKEN);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const host = r.value!.scenario.nodes.get('pve1')!;
    const i = (n: string) => host.interfaces.get(n);
    expect([i('tap100i0')?.kind, i('tap100i0')?.master, i('tap100i0')?.peer]).toEqual([
      'tap',
      'fwbr100i0',
      { node: 'lb1', iface: 'eth0' },
    ]);
    expect(i('fwbr100i0')?.kind).toBe('bridge');
    expect([i('fwln100i0')?.kind, i('fwln100i0')?.master, i('fwln100i0')?.peer]).toEqual([
      'veth',
      'fwbr100i0',
      { node: 'pve1', iface: 'fwpr100p0' },
    ]);
    expect([i('fwpr100p0')?.master, i('fwpr100p0')?.peer]).toEqual(['vmbr0', { node: 'pve1', iface: 'fwln100i0' }]);
    expect(host.sysctl.get('net.bridge.bridge-nf-call-iptables')?.value).toBe('1');
    const chains = r.value!.installedIptables?.get('pve1')?.chains.map((c) => c.name) ?? [];
    expect(chains).toContain('tap100i0-OUT');
    expect([...(r.value!.installedIpsets?.get('pve1')?.keys() ?? [])]).toContain('PVEFW-100-ipfilter-net0-v4');
  });

  it('diagnose: the director behind ipfilter: 1 is broken at its fwbr, with the Proxmox rule and origin', async () => {
    const r = await runCli('diagnose', BROKEN, '--json');
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as {
      probes: { probe: { name: string }; disposition: string; end: { place?: { node: string; iface: string } } }[];
      findings: { code: string; culprit: { label: string; file?: string; line?: number }[] }[];
      fixes: { id: string; verified: boolean; artifacts: { path: string; content: string }[] }[];
    };
    const http = d.probes.find((p) => p.probe.name === 'http-to-vip')!;
    expect(http.disposition).toBe('dropped-by-filter');
    expect(http.end.place).toEqual({ node: 'pve1', iface: 'fwln100i0' });
    // The explicit ipfilter-net0 set is also an ebtables ARP sender allow-list: lb1's ARP reply for the VIP dies too.
    const arp = d.probes.find((p) => p.probe.name === 'arp-for-vip')!;
    expect([arp.disposition, arp.end.place]).toEqual(['dropped-by-filter', { node: 'pve1', iface: 'fwln100i0' }]);
    expect(d.findings.map((f) => f.code).sort()).toEqual(['director-anti-spoofing', 'vip-arp-blocked']);
    // The VIP in the set answers the ARP probe only; the director fix answers both and comes first.
    expect(d.fixes.map((f) => [f.id, f.verified])).toEqual([
      ['pve-director-ipfilter-off-100', true],
      ['pve-vip-in-ipfilter-100-net0', true],
    ]);
    const vipFix = d.fixes[1]!.artifacts.find((a) => a.path === 'pve-pve1/firewall/100.fw')!.content;
    expect(vipFix).toMatch(/^\[IPSET ipfilter-net0\].*\n192\.0\.2\.11\n192\.0\.2\.100 # VIP/m);
    const file = d.fixes[0]!.artifacts.find((a) => a.path === 'pve-pve1/firewall/100.fw')!.content;
    expect(file).toMatch(/^ipfilter: 0$/m);
    expect(file).not.toContain('[IPSET ipfilter-net0]');
    expect(file).toContain('IN SSH(ACCEPT) -source 198.51.100.0/24');
    const labels = d.findings.flatMap((f) => f.culprit.map((c) => `${c.label} ${c.file}:${c.line}`));
    expect(labels.some((l) => /ipfilter-net0.*100\.fw:6$/.test(l))).toBe(true);
    expect(labels.some((l) => /VM 100 net0.*100\.conf:5$/.test(l))).toBe(true);
  });

  it('diagnose: the fixed twin (IP filter off on the director NIC, VIP in the real server set) is healthy', async () => {
    const r = await runCli('diagnose', FIXED);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a Proxmox host without pve:, or a node that is not there, is an error naming scenario.yaml', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'pve-scn-'));
    try {
      cpSync(BROKEN, tmp, { recursive: true });
      const y = join(tmp, 'scenario.yaml');
      const text = readFileSync(y, 'utf8');
      writeFileSync(y, text.replace(/^ {4}pve: etc-pve.*\n/m, ''));
      let r = loadScenario(tmp);
      expect(r.issues.map((i) => `${i.code} ${i.pos?.file.endsWith('scenario.yaml')}`)).toContain('scenario.pve true');
      writeFileSync(y, text.replace(/^( {4}pve: etc-pve.*\n)/m, '$1    pve-node: pve9\n'));
      r = loadScenario(tmp);
      expect(r.issues.map((i) => i.message).join('\n')).toMatch(/no node "pve9" in .*etc-pve\/nodes \(found: pve1\)/);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
