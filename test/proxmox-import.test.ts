/**
 * `lvsdoctor import` from Proxmox VE bundles: the collector runs against a fake node (its /etc/pve tree and every
 * command it lists answered by canned outputs, the way a Proxmox node prints them), the bundles of the node and its
 * guests are imported into a scenario with `platform: proxmox`, and `diagnose` walks it: the DR director behind
 * `ipfilter: 1` is broken (exit 1); with the `.fw` file the proposed fix writes put into /etc/pve but pve-firewall not
 * reloaded yet, the node's live rules (iptables-save, ebtables -L, ipset save) drift from /etc/pve and the trace,
 * following the kernel, is still broken; once pve-firewall applied it, the new import is healthy (exit 0).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { collectorScript } from '../src/collect/collector-script.ts';
import { renderEbtablesList } from '../src/netfilter/ebtables-render.ts';
import { renderIptablesSave } from '../src/netfilter/iptables-render.ts';
import { renderPveIpsetRestore } from '../src/proxmox/compile.ts';
import { pveFilterTable } from '../src/proxmox/model.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { readPveHost } from '../src/topology/proxmox-host.ts';
import { runCli } from './run-cli.ts';

const PVE = join(import.meta.dirname, '..', 'examples', 'proxmox-lvs-dr', 'etc-pve');
const tmp = mkdtempSync(join(tmpdir(), 'pve-import-'));
afterAll(() => (process.env.KEEP ? undefined : rmSync(tmp, { recursive: true, force: true })));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** `ip -j -d link/addr show` rows. */
function link(
  ifname: string,
  address: string,
  o: { master?: string; kind?: string; addrs?: [string, number][] } = {},
): object {
  return {
    ifname,
    address,
    link_type: ifname === 'lo' ? 'loopback' : 'ether',
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    ...(o.master ? { master: o.master } : {}),
    ...(o.kind ? { linkinfo: { info_kind: o.kind } } : {}),
    addr_info: (o.addrs ?? []).map(([local, prefixlen]) => ({ family: 'inet', local, prefixlen })),
  };
}

/** A guest NIC as qemu-server and pve-firewall wire it: tap → fwbr ← fwln ═ fwpr → vmbr0. */
function pveNic(vmid: number, mac: string): object[] {
  const m = `fe${mac.slice(2)}`;
  return [
    link(`tap${vmid}i0`, m, { master: `fwbr${vmid}i0`, kind: 'tun' }),
    link(`fwbr${vmid}i0`, m, { kind: 'bridge' }),
    link(`fwln${vmid}i0`, m, { master: `fwbr${vmid}i0`, kind: 'veth' }),
    link(`fwpr${vmid}p0`, m, { master: 'vmbr0', kind: 'veth' }),
  ];
}

const GW = '{"dst":"192.0.2.1","dev":"eth0","lladdr":"02:00:5e:10:00:01","state":["REACHABLE"]}';

/** What each fake machine answers, by command line. */
const MACHINES: Record<string, Record<string, string>> = {
  pve1: {
    // VM 102 (lb2) is configured but not running: no taps.
    'ip -j -d link show': JSON.stringify([
      link('lo', '00:00:00:00:00:00', { addrs: [['127.0.0.1', 8]] }),
      link('eno1', '02:00:5e:10:00:02', { master: 'vmbr0' }),
      link('vmbr0', '02:00:5e:10:00:02', { kind: 'bridge', addrs: [['192.0.2.2', 24]] }),
      ...pveNic(100, 'bc:24:11:00:00:0b'),
      ...pveNic(101, 'bc:24:11:00:00:15'),
    ]),
    'ip route show':
      'default via 192.0.2.1 dev vmbr0 proto kernel onlink\n192.0.2.0/24 dev vmbr0 proto kernel scope link src 192.0.2.2\n',
    'ip -j neigh show': `[${GW.replace('eth0', 'vmbr0')}]`,
    'bridge -j fdb show': '[]',
    'sysctl -e -a': 'net.ipv4.ip_forward = 0\nnet.bridge.bridge-nf-call-iptables = 1\n',
    'pve-firewall status': 'Status: enabled/running\n',
  },
  lb1: {
    'ip -j -d link show': JSON.stringify([
      link('lo', '00:00:00:00:00:00', { addrs: [['127.0.0.1', 8]] }),
      link('eth0', 'bc:24:11:00:00:0b', {
        addrs: [
          ['192.0.2.11', 24],
          ['192.0.2.100', 24],
        ],
      }),
    ]),
    'ip route show': 'default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11\n',
    'ip -j neigh show': `[${GW}]`,
    'sysctl -e -a': 'net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.rp_filter = 0\n',
    'ipvsadm -Ln':
      'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  192.0.2.100:80 rr\n  -> 192.0.2.21:80                Route   1      0          0\n',
    'ss -Hltnu': 'tcp   LISTEN 0      4096         0.0.0.0:22        0.0.0.0:*\n',
  },
  web1: {
    'ip -j -d link show': JSON.stringify([
      link('lo', '00:00:00:00:00:00', {
        addrs: [
          ['127.0.0.1', 8],
          ['192.0.2.100', 32],
        ],
      }),
      link('eth0', 'bc:24:11:00:00:15', { addrs: [['192.0.2.21', 24]] }),
    ]),
    'ip route show': 'default via 192.0.2.1 dev eth0\n192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.21\n',
    'ip -j neigh show': `[${GW}]`,
    'sysctl -e -a':
      'net.ipv4.ip_forward = 0\nnet.ipv4.conf.all.arp_announce = 2\nnet.ipv4.conf.all.arp_ignore = 1\nnet.ipv4.conf.all.rp_filter = 0\nnet.ipv4.conf.eth0.rp_filter = 1\nnet.ipv4.conf.lo.arp_announce = 2\nnet.ipv4.conf.lo.arp_ignore = 1\n',
    'ss -Hltnu': 'tcp   LISTEN 0      511          0.0.0.0:80        0.0.0.0:*\n',
  },
};
MACHINES.pve1!['ip -j -d addr show'] = MACHINES.pve1!['ip -j -d link show']!;
MACHINES.lb1!['ip -j -d addr show'] = MACHINES.lb1!['ip -j -d link show']!;
MACHINES.web1!['ip -j -d addr show'] = MACHINES.web1!['ip -j -d link show']!;

/**
 * pve-firewall applies the node's /etc/pve: the kernel's listings become what it compiles to, as iptables-save -c,
 * ebtables-nft -L --Lc and ipset save print them (counters, `initval`).
 */
function pveFirewallApplies(etcPve: string): void {
  const files = {
    read: (rel: string) => {
      try {
        return readFileSync(join(etcPve, rel), 'utf8');
      } catch {
        return undefined;
      }
    },
    list: (rel: string) => {
      try {
        return readdirSync(join(etcPve, rel));
      } catch {
        return undefined;
      }
    },
  };
  const pve = readPveHost(files, '', 'etc-pve', { file: 'x', line: 0 }, 'pve1').value!;
  const m = MACHINES.pve1!;
  m['iptables-save -c'] = renderIptablesSave(pve.filter4!).replace(/^-A /gm, '[0:0] -A ');
  m['ip6tables-save -c'] = renderIptablesSave(pveFilterTable(pve.compiled.filter6, 'ipv6').table).replace(
    /^-A /gm,
    '[0:0] -A ',
  );
  m['ebtables --version'] = 'ebtables 1.8.9 (nf_tables)\n';
  m['ebtables -t nat -L --Lc'] =
    'Bridge table: nat\n\nBridge chain: PREROUTING, entries: 0, policy: ACCEPT\n\nBridge chain: OUTPUT, entries: 0, policy: ACCEPT\n\nBridge chain: POSTROUTING, entries: 0, policy: ACCEPT\n';
  m['ebtables -t filter -L --Lc'] = renderEbtablesList(pve.ebFilter!, { style: 'nft', counters: true });
  m['ipset save'] = renderPveIpsetRestore(pve.compiled.ipsets).replace(
    / bucketsize 12$/gm,
    ' bucketsize 12 initval 0x6a3f9e21',
  );
}

/** Every tool the collector calls, answered from MACHINES (anything else fails as on a machine without it). */
const TOOLS = ['hostname', 'ip', 'bridge', 'sysctl', 'virsh', 'ebtables', 'iptables-save', 'ip6tables-save', 'nft'];
const MORE = ['ipset', 'pve-firewall', 'ipvsadm', 'keepalived', 'ss', 'nstat'];

/** Runs the collector as `machine` would; returns the bundle's path. */
function collect(machine: string, guest: boolean, pveRoot?: string): string {
  const dir = join(tmp, `${machine}-${Math.random().toString(36).slice(2)}`);
  const shims = join(dir, 'shims');
  const answers = join(dir, 'answers');
  const work = join(dir, 'work');
  for (const d of [shims, answers, work]) mkdirSync(d, { recursive: true });
  const key = (line: string) => line.replace(/[^A-Za-z0-9-]/g, '_');
  for (const [line, out] of Object.entries({ hostname: `${machine}\n`, ...MACHINES[machine] }))
    writeFileSync(join(answers, key(line)), out);
  const fake = [
    '#!/bin/sh',
    'k=$(basename "$0"); for a in "$@"; do k="$k $a"; done',
    `f="${answers}/$(printf '%s' "$k" | tr -c 'A-Za-z0-9-' '_')"`,
    '[ -f "$f" ] && exec cat "$f"',
    'echo "$k: not available on this machine" >&2; exit 1',
  ].join('\n');
  for (const t of [...TOOLS, ...MORE]) {
    writeFileSync(join(shims, t), `${fake}\n`);
    chmodSync(join(shims, t), 0o755);
  }
  const ipvsProc = join(dir, 'ip_vs');
  writeFileSync(ipvsProc, '');
  writeFileSync(join(dir, 'collect.sh'), collectorScript({ guest }));
  const out = execFileSync('dash', [join(dir, 'collect.sh')], {
    cwd: work,
    env: {
      ...process.env,
      PATH: `${shims}:${process.env.PATH}`,
      LVSDOCTOR_IPVS_PROC: ipvsProc,
      LVSDOCTOR_PVE_ROOT: pveRoot ?? join(dir, 'no-pve'),
      LVSDOCTOR_NET_INTERFACES: pveRoot ? join(pveRoot, '..', 'interfaces') : join(dir, 'no-interfaces'),
      LVSDOCTOR_PVE_NODE: 'pve1',
    },
    encoding: 'utf8',
    timeout: 100_000,
  }).trim();
  return join(work, out);
}

describe.skipIf(!has('dash') || !has('tar'))('import from the bundles of a Proxmox VE node and its guests', () => {
  it('builds a platform: proxmox scenario that diagnose finds broken, and healthy once the fix is applied', {
    timeout: 240_000,
  }, async () => {
    const etcPve = join(tmp, 'etc-pve');
    cpSync(PVE, etcPve, { recursive: true });
    // The node's /etc/network/interfaces: vmbr0 is VLAN-aware (untagged guests are in VLAN 1, as the gateway).
    writeFileSync(
      join(tmp, 'interfaces'),
      'auto vmbr0\niface vmbr0 inet static\n\taddress 192.0.2.2/24\n\tbridge-ports eno1\n\tbridge-vlan-aware yes\n\tbridge-vids 2-4094\n',
    );
    const guests = [collect('lb1', true), collect('web1', true)];
    pveFirewallApplies(etcPve);
    const out1 = join(tmp, 'imported');
    const imp = await runCli('import', collect('pve1', false, etcPve), ...guests, '-o', out1);
    expect(imp.stderr).toBe('');
    expect(imp.code).toBe(0);
    const yaml = readFileSync(join(out1, 'scenario.yaml'), 'utf8');
    expect(yaml).toMatch(/^ {2}pve1:.*\n(?: {4}.*\n)*? {4}platform: proxmox/m);
    expect(yaml).toMatch(/^ {4}pve: pve1\/etc-pve/m);
    expect(yaml).toMatch(/^ {4}network-interfaces: pve1\/network-interfaces/m);
    // The trace follows the node's live rules; they are what /etc/pve compiles to.
    expect(yaml).toMatch(/^ {4}iptables-save: pve1\/iptables-save\.txt {2}# live/m);
    expect(yaml).toMatch(/^ {4}ipset-save: pve1\/ipset-save\.txt/m);
    expect(yaml).toMatch(/^ {4}ebtables-filter: pve1\/ebtables-filter\.txt/m);
    expect(imp.stdout).toContain('drift: none');
    expect(imp.stdout).toMatch(
      /pve1: the trace follows the node's live iptables-save, ip6tables-save, ebtables-filter, ipset-save .* \(they are the same\)/,
    );
    expect(yaml).toMatch(/members: \[pve1:eno1\]/);
    expect(yaml).toMatch(
      /^ {2}lb1:\n {4}# on pve1: tap100i0 \(fwbr100i0 → vmbr0\)\n(?: {4}.*\n)*? {4}ip-addr: guests\/lb1\/ip-addr.json/m,
    );
    expect(yaml).toContain('ipvsadm: guests/lb1/ipvsadm-Ln.txt');
    // lb2 (VM 102) has a config but no tap: not running, left out and said so.
    expect(yaml).toMatch(/guest lb2 on pve1 is not running/);
    expect(readdirSync(join(out1, 'pve1', 'etc-pve', 'firewall')).sort()).toEqual([
      '100.fw',
      '101.fw',
      '102.fw',
      'cluster.fw',
    ]);

    const loaded = loadScenario(out1).value!;
    expect(loaded.scenario.nodes.get('pve1')!.interfaces.get('vmbr0')?.vlanFiltering).toBe(true);
    const broken = await runCli('diagnose', out1, '--json');
    expect(broken.code).toBe(1);
    const d = JSON.parse(broken.stdout) as {
      probes: { probe: { name: string }; disposition: string; end: { place?: { node: string; iface: string } } }[];
      findings: { code: string; culprit: { label: string; file?: string; line?: number }[] }[];
      fixes: { id: string; verified: boolean; artifacts: { path: string; content: string }[] }[];
    };
    // Nobody knows the VIP's MAC yet: lb1's ARP reply (sender = VIP) dies on the ARP allow-list the explicit set
    // makes, and behind it the IP filter drops what lb1 forwards.
    const http = d.probes.find((p) => p.probe.name === 'tcp-192.0.2.100-80')!;
    expect(http.disposition).toBe('arp-unresolved');
    const arp = d.probes.find((p) => p.probe.name === 'arp-192.0.2.100')!;
    expect([arp.disposition, arp.end.place]).toEqual(['dropped-by-filter', { node: 'pve1', iface: 'fwln100i0' }]);
    expect(d.findings.map((f) => f.code).sort()).toEqual(['director-anti-spoofing', 'vip-arp-blocked']);
    // Adding the VIP to the set only answers the ARP; the director fix answers both.
    expect(d.fixes.map((f) => [f.id, f.verified])).toEqual([
      ['pve-director-ipfilter-off-100', true],
      ['pve-vip-in-ipfilter-100-net0', true],
    ]);
    const culprits = d.findings.flatMap((f) => f.culprit.map((c) => `${c.label} ${c.file}:${c.line}`));
    expect(culprits.some((l) => /ipfilter-net0.*pve1\/etc-pve\/firewall\/100\.fw:6$/.test(l))).toBe(true);
    const fix = d.fixes.find((f) => f.id === 'pve-director-ipfilter-off-100')!;
    expect(fix.verified).toBe(true);
    const fw = fix.artifacts.find((a) => a.path.endsWith('firewall/100.fw'))!.content;

    // The operator puts the fix into /etc/pve; the node is collected before pve-firewall applied it.
    writeFileSync(join(etcPve, 'firewall', '100.fw'), fw);
    const stale = join(tmp, 'imported-stale');
    const impS = await runCli('import', collect('pve1', false, etcPve), ...guests, '-o', stale);
    expect(impS.code).toBe(0);
    // The set and its ARP allow-list are gone from /etc/pve, still in the kernel: drift, with both origins.
    expect(impS.stdout).toMatch(
      /pve1 iptables tap100i0-OUT: tap100i0-OUT was generated from another configuration \(its PVESIG digest differs.*; the trace follows the live rule/,
    );
    expect(impS.stdout).toMatch(
      /\+ -A tap100i0-OUT -m set ! --match-set PVEFW-100-ipfilter-net0-v4 src -j DROP {2}\[live: .*pve1\/iptables-save\.txt:\d+\)/,
    );
    expect(impS.stdout).toMatch(
      /pve1 ipset PVEFW-100-ipfilter-net0-v4: set PVEFW-100-ipfilter-net0-v4 is installed \(ipset save \(pve1\/ipset-save\.txt:\d+\)\), but \/etc\/pve no longer compiles to it/,
    );
    expect(impS.stdout).toMatch(
      /pve1 ebtables tap100i0-OUT-ARP: tap100i0-OUT-ARP is installed, but \/etc\/pve no longer compiles to it/,
    );
    // What the kernel has is what the trace walks: still broken, and diagnose says which rules it followed.
    const still = await runCli('diagnose', stale, '--json');
    expect(still.code).toBe(1);
    const ds = JSON.parse(still.stdout) as { assumptions: string[] } & typeof d;
    // The stale rules no longer come from any .fw line: the drop is named by its listing line alone.
    expect(ds.findings.map((f) => f.code).sort()).toEqual(['filter-drop', 'probe-failed']);
    expect(JSON.stringify(ds.findings)).toMatch(/tap100i0-OUT-ARP.*pve1\/ebtables-filter\.txt/);
    expect(JSON.stringify(ds.assumptions)).toMatch(/pve1's firewall is what its kernel had when collected/);

    // pve-firewall applies it (it does every 10 s); the node is collected again.
    pveFirewallApplies(etcPve);
    const out2 = join(tmp, 'imported-fixed');
    const imp2 = await runCli('import', collect('pve1', false, etcPve), ...guests, '-o', out2);
    expect(imp2.code).toBe(0);
    expect(imp2.stdout).toContain('drift: none');
    const fixed = await runCli('diagnose', out2);
    expect(fixed.stdout).toMatch(/healthy/);
    expect(fixed.code).toBe(0);
  });
});
