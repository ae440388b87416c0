/**
 * Drift on a Proxmox node: its live iptables-save / ebtables -L / ipset save against what /etc/pve compiles to.
 * Held to pve-firewall's own recorded state (the listings the kernel printed after applying pve-firewall's generated
 * rules: no drift), then made-up live states of the examples' node (documentation addresses): an ipset edit not yet
 * applied, a rule added by hand, pve-firewall stopped, Docker's rules beside pve-firewall's.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import { loadPveConformanceCase, pveConformanceCases } from '../../test/support/pve-conformance.ts';
import { labLimits } from '../lab/limits.ts';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { renderIptablesSave } from '../netfilter/iptables-render.ts';
import { compilePveFirewall, renderPveIpsetRestore } from '../proxmox/compile.ts';
import { pveFilterTable } from '../proxmox/model.ts';
import { renderOriginChain } from '../source/origin.ts';
import { loadScenario } from '../topology/load-scenario.ts';
import { type PveHost, pveEbFilter, readPveHost } from '../topology/proxmox-host.ts';
import { openSession, runProbe } from '../trace/session.ts';
import { comparePveListings, type PveLiveListings } from './proxmox-drift.ts';

const suite = externalSuite('conformance/pve-firewall/');

describe("pve-firewall's recorded kernel state shows no drift from what lvsdoctor compiles", () => {
  skippedBecause(suite.skip);
  if (suite.skip !== undefined) return;
  for (const c of pveConformanceCases(suite.dir)) {
    it(c.name, () => {
      const compiled = compilePveFirewall(loadPveConformanceCase(c).input);
      const issues: never[] = [];
      const pve = {
        compiled,
        ...(compiled.enabled ? { filter4: pveFilterTable(compiled.filter4, 'ipv4').table } : {}),
        ...(compiled.enabled ? pveEbFilter(compiled, issues) : {}),
      } as unknown as PveHost;
      const rec = (f: string) => ({ text: suite.read(`recorded/${c.name}/${f}`), file: f });
      const read: never[] = [];
      const drift = comparePveListings(
        'proxself',
        pve,
        {
          iptables: rec('iptables-save-filter.txt'),
          ip6tables: rec('ip6tables-save-filter.txt'),
          ebtables: { ...rec('ebtables-L.txt'), style: 'nft' },
          ipset: rec('ipset-save.txt'),
        },
        read,
      );
      expect(read).toEqual([]);
      expect(drift.map((d) => `${d.area} ${d.subject}: ${d.lines.join(' | ')}`)).toEqual([]);
    });
  }
});

const EX = join(import.meta.dirname, '..', '..', 'examples', 'proxmox-lvs-dr');
const tmp = mkdtempSync(join(tmpdir(), 'pve-drift-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the example's /etc/pve, edited, read as the loader reads it. */
function node(edit: (etcPve: string) => void = () => {}): PveHost {
  const dir = mkdtempSync(join(tmp, 'pve-'));
  cpSync(join(EX, 'etc-pve'), dir, { recursive: true });
  edit(dir);
  const files = {
    read: (rel: string) => {
      try {
        return readFileSync(join(dir, rel), 'utf8');
      } catch {
        return undefined;
      }
    },
    list: (rel: string) => {
      try {
        return statSync(join(dir, rel)).isDirectory() ? readdirSync(join(dir, rel)) : undefined;
      } catch {
        return undefined;
      }
    },
  };
  const r = readPveHost(files, '', 'etc-pve', { file: 'scenario.yaml', line: 0 }, undefined);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}

/** The listings a node shows once pve-firewall applied `p` (what the kernel prints back). */
function applied(p: PveHost): Required<Omit<PveLiveListings, 'status' | 'ip6tables'>> {
  return {
    iptables: { text: renderIptablesSave(p.filter4!), file: 'pve1/iptables-save.txt' },
    ebtables: {
      text: renderEbtablesList(p.ebFilter!, { style: 'nft' }),
      file: 'pve1/ebtables-filter.txt',
      style: 'nft',
    },
    ipset: { text: renderPveIpsetRestore(p.compiled.ipsets), file: 'pve1/ipset-save.txt' },
  };
}

const VIP_EDIT = (d: string) => {
  const f = join(d, 'firewall', '100.fw');
  writeFileSync(f, readFileSync(f, 'utf8').replace(/^192\.0\.2\.11$/m, '192.0.2.11\n192.0.2.100 # VIP'));
};

describe('drift on a Proxmox node (made-up live states)', () => {
  const before = node();

  it('none when the live listings are what /etc/pve compiles to', () => {
    expect(comparePveListings('pve1', before, applied(before))).toEqual([]);
  });

  it('the VIP added to ipfilter-net0 but pve-firewall not reloaded: the set member and the ARP allow rule, both origins', () => {
    const after = node(VIP_EDIT);
    const drift = comparePveListings('pve1', after, applied(before));
    expect(drift.map((d) => `${d.area} ${d.subject}`)).toEqual([
      'ebtables tap100i0-OUT-ARP',
      'ipset PVEFW-100-ipfilter-net0-v4',
    ]);
    const set = drift[1]!;
    expect(set.message).toMatch(/other members than \/etc\/pve gives it .*; the trace follows the live rule/);
    expect(set.lines).toEqual([
      expect.stringMatching(
        /^- add PVEFW-100-ipfilter-net0-v4 192\.0\.2\.100 {2}\[compiled from: .*192\.0\.2\.100 \(etc-pve\/firewall\/100\.fw:8\) ← 100\.fw \[IPSET ipfilter-net0\]/,
      ),
    ]);
    expect(set.differences?.[0]?.config?.pos).toEqual({ file: 'etc-pve/firewall/100.fw', line: 8 });
    const arp = drift[0]!;
    expect(arp.lines).toEqual([expect.stringMatching(/^- -p ARP --arp-ip-src 192\.0\.2\.100 -j RETURN .*100\.fw:8\)/)]);
    // The iptables chains do not change: the ipfilter rule names the set, not its members.
    expect(drift.some((d) => d.area === 'iptables')).toBe(false);
  });

  it('a rule added by hand to a PVEFW chain is drift (with its listing line); Docker’s chains and jumps are not', () => {
    const live = applied(before);
    const lines = live.iptables.text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('-A tap100i0-OUT -m set'));
    lines.splice(at, 0, '-A tap100i0-OUT -s 203.0.113.0/24 -j RETURN');
    const text = lines
      .join('\n')
      .replace(':FORWARD ACCEPT [0:0]\n', ':FORWARD ACCEPT [0:0]\n:DOCKER-USER - [0:0]\n')
      .replace(
        '-A FORWARD -j PVEFW-FORWARD\n',
        '-A FORWARD -j DOCKER-USER\n-A FORWARD -j PVEFW-FORWARD\n-A DOCKER-USER -j RETURN\n',
      );
    expect(text).toContain('DOCKER-USER');
    const drift = comparePveListings('pve1', before, { ...live, iptables: { ...live.iptables, text } });
    expect(drift.map((d) => `${d.area} ${d.subject}`)).toEqual(['iptables tap100i0-OUT']);
    expect(drift[0]!.message).toMatch(/changed by hand \(its PVESIG digest is what \/etc\/pve compiles to/);
    expect(drift[0]!.lines).toEqual([
      expect.stringMatching(
        new RegExp(
          `^\\+ -A tap100i0-OUT -s 203\\.0\\.113\\.0/24 -j RETURN {2}\\[live: .*pve1/iptables-save\\.txt:${text.split('\n').indexOf('-A tap100i0-OUT -s 203.0.113.0/24 -j RETURN') + 1}\\)\\]$`,
        ),
      ),
    ]);
  });

  it('pve-firewall stopped: no PVEFW chain at all, said first; every chain is missing', () => {
    const text = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
    const drift = comparePveListings('pve1', before, {
      iptables: { text, file: 'pve1/iptables-save.txt' },
      status: 'Status: enabled/stopped',
    });
    expect(drift[0]!.subject).toBe('pve-firewall');
    expect(drift[0]!.message).toContain('pve-firewall is not running (pve-firewall status: Status: enabled/stopped)');
    const subjects = drift.map((d) => d.subject);
    expect(subjects).toContain('PVEFW-FORWARD');
    expect(subjects).toContain('tap100i0-OUT');
    // The missing hook: `-A FORWARD -j PVEFW-FORWARD`, compiled from pve-firewall's fixed rules.
    expect(drift.find((d) => d.subject === 'FORWARD')!.lines).toEqual([
      expect.stringMatching(/^- -A FORWARD -j PVEFW-FORWARD {2}\[compiled from: pve-firewall hook FORWARD/),
    ]);
  });

  it('a node with nftables: 1 (proxmox-firewall) has no pve-firewall chains to compare: no drift, not "not running"', () => {
    const nft = node((d) => writeFileSync(join(d, 'nodes', 'pve1', 'host.fw'), '[OPTIONS]\nnftables: 1\n'));
    const text = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
    expect(comparePveListings('pve1', nft, { iptables: { text, file: 'pve1/iptables-save.txt' } })).toEqual([]);
  });

  it('the trace follows the live rules: a drop names the listing line and, through it, the .fw line', () => {
    const dir = mkdtempSync(join(tmp, 'scen-'));
    cpSync(EX, dir, { recursive: true });
    const live = applied(before);
    // A hand-made exception for the client network in front of the IP filter, live only.
    const text = live.iptables.text.replace(
      /^(-A tap100i0-OUT -m set )/m,
      '-A tap100i0-OUT -s 192.0.2.21/32 -j RETURN\n$1',
    );
    writeFileSync(join(dir, 'pve1', 'iptables-save.txt'), text);
    writeFileSync(join(dir, 'pve1', 'ipset-save.txt'), live.ipset.text);
    writeFileSync(join(dir, 'pve1', 'ebtables-filter.txt'), live.ebtables.text);
    const y = join(dir, 'scenario.yaml');
    writeFileSync(
      y,
      readFileSync(y, 'utf8').replace(
        /^( {4}ip-addr: pve1\/ip-addr\.txt.*)$/m,
        '$1\n    iptables-save: pve1/iptables-save.txt\n    ipset-save: pve1/ipset-save.txt\n    ebtables-filter: pve1/ebtables-filter.txt',
      ),
    );
    const r = loadScenario(dir);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const loaded = r.value!;
    expect(loaded.installedEbFilter?.has('pve1')).toBe(true);
    const t = runProbe(openSession(loaded), loaded.scenario.probes.find((p) => p.name === 'http-to-vip')!);
    expect(t.disposition).toBe('dropped-by-filter');
    const step = t.hops.flatMap((h) => h.steps).find((s) => s.kind === 'netfilter' && s.verdict === 'DROP');
    const chain = step && 'origin' in step ? renderOriginChain(step.origin) : '';
    // The lab loads what /etc/pve compiles to: a node's live listings are a stated limit there (exit 4).
    expect(labLimits(loaded, { ipip: true, ipvs: true, vlan: true })).toEqual([
      expect.stringMatching(
        /^a Proxmox node's live rules \(pve1 \(ebtables-filter\), pve1 \(iptables-save with pve-firewall's ipsets\)\)/,
      ),
    ]);
    expect(chain).toMatch(
      /^iptables filter tap100i0-OUT rule 5 \(installed by pve-firewall\) \(.*pve1\/iptables-save\.txt:\d+\) ← .*100\.fw:6\)/,
    );
  });
});
