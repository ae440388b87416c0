/**
 * A Proxmox VE node inside a scenario (`platform: proxmox`, `pve: etc-pve`): the loader builds the guests, the
 * tap → fwbr ← fwln ═ fwpr → vmbr wiring and the node's iptables/ipset rules from the /etc/pve copy, and
 * `lvsdoctor diagnose` walks the cluster hop by hop through it.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnose, diagnoseSession } from '../src/diagnose/diagnose.ts';
import { fixesToApply } from '../src/diagnose/fix-list.ts';
import { labLimits } from '../src/lab/limits.ts';
import { labUnavailable } from '../src/lab/preflight.ts';
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
    expect(d.findings.map((f) => f.code)).toEqual([
      'director-anti-spoofing',
      'vip-arp-blocked',
      'vrrp-adverts-dropped',
      'vrrp-failover-broken',
      'vrrp-backup-adverts-dropped',
    ]);
    // The VIP in the set answers the ARP probe only; the director fix answers both and comes first.
    expect(d.fixes.map((f) => [f.id, f.verified])).toEqual([
      ['pve-director-ipfilter-off-100', true],
      ['pve-vip-in-ipfilter-100-net0', true],
      ['pve-vrrp-in-102-192.0.2.11', true],
      ['pve-vrrp-in-100-192.0.2.12', true],
      ['pve-vip-in-ipfilter-102-net0', true],
      ['pve-director-ipfilter-off-102', true],
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

  it('diagnose: VRRP adverts dropped by a guest policy on Proxmox, fixed by an IN ACCEPT -p vrrp rule of that guest', async () => {
    const r = await runCli('diagnose', BROKEN, '--json');
    const d = JSON.parse(r.stdout) as {
      findings: { code: string; title: string; explanation: string; where: string }[];
      fixes: { id: string; proof: string; clears: string[]; artifacts: { path: string; content: string }[] }[];
    };
    const adverts = d.findings.find((f) => f.code === 'vrrp-adverts-dropped')!;
    expect(adverts.title).toBe("lb1's VRRP adverts (vrid 51, IP protocol 112 to 224.0.0.18) do not reach lb2");
    // policy_in DROP (the default) ends in PVEFW-Drop, whose DropBroadcast drops multicast without logging.
    expect(adverts.explanation).toContain('PVEFW-DropBroadcast');
    expect(adverts.where).toBe('pve1:tap102i0');
    const vrrp = d.fixes.find((f) => f.id === 'pve-vrrp-in-102-192.0.2.11')!;
    expect([vrrp.proof, vrrp.clears]).toEqual(['finding-only', ['vrrp-adverts-dropped@pve1:tap102i0']]);
    const fw = vrrp.artifacts.find((a) => a.path === 'pve-pve1/firewall/102.fw')!.content;
    expect(fw).toMatch(/\[RULES\]\n\nIN ACCEPT -p vrrp -source 192\.0\.2\.11 # keepalived adverts\nIN HTTP\(ACCEPT\)/);
    // After failover lb2 holds the VIP: its gratuitous ARP meets VM 102's ARP allow-list.
    const garp = d.findings.find((f) => f.code === 'vrrp-failover-broken')!;
    expect(garp.title).toContain("lb2's gratuitous ARP for 192.0.2.100 does not reach gateway");
  });

  it('diagnose: both directors holding the VIP on Proxmox is a split brain, its cause the guest policy, its fix the VRRP rules', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'pve-split-'));
    try {
      cpSync(BROKEN, tmp, { recursive: true });
      const ip = join(tmp, 'lb2', 'ip-addr.txt');
      writeFileSync(
        ip,
        readFileSync(ip, 'utf8').replace(
          /(inet 192\.0\.2\.12\/24[^\n]*\n[^\n]*\n)/,
          '$1    inet 192.0.2.100/24 brd 192.0.2.255 scope global secondary eth0\n       valid_lft forever preferred_lft forever\n',
        ),
      );
      const r = await runCli('diagnose', tmp, '--json');
      const d = JSON.parse(r.stdout) as {
        findings: { code: string; title: string; explanation: string }[];
        fixes: { id: string; proof: string; clears: string[] }[];
      };
      const split = d.findings.find((f) => f.code === 'vrrp-split-brain')!;
      expect(split.title).toBe('lb1 and lb2 both hold VIP 192.0.2.100 (vrid 51): adverts lb1 → lb2, lb2 → lb1 lost');
      expect(split.explanation).toContain('dropped at pve1:tap102i0 by iptables PVEFW-DropBroadcast');
      // Each rule lets one direction through: either changes which adverts are lost, so each clears this finding;
      // with lb1's adverts reaching lb2, lb2 (priority 100 < 150) steps back.
      const fix = (id: string) => d.fixes.find((f) => f.id === id);
      expect(fix('pve-vrrp-in-102-192.0.2.11')).toMatchObject({
        proof: 'finding-only',
        clears: ['vrrp-split-brain@lb1,lb2'],
      });
      expect(fix('pve-vrrp-in-100-192.0.2.12')).toMatchObject({
        proof: 'finding-only',
        clears: ['vrrp-split-brain@lb1,lb2'],
      });
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('the proposed fixes compose: applied one after another to the model, the broken example is healthy', () => {
    const loaded = loadScenario(BROKEN).value!;
    const s = diagnoseSession(loaded);
    const ids = [
      'pve-director-ipfilter-off-100',
      'pve-director-ipfilter-off-102',
      'pve-vrrp-in-102-192.0.2.11',
      'pve-vrrp-in-100-192.0.2.12',
    ];
    const chosen = fixesToApply(s, ids);
    if (!('fixes' in chosen)) throw new Error(`unknown fix ${chosen.unknown}`);
    const after = chosen.fixes.reduce((cur, f) => f.apply(cur), loaded);
    const fw100 = after.proxmox!.get('pve1')!.files.guestFw.get('100')!.text;
    expect(fw100).toMatch(/^ipfilter: 0$/m);
    expect(fw100).toContain('IN ACCEPT -p vrrp -source 192.0.2.12');
    const report = diagnose(after);
    expect(report.findings.filter((f) => f.severity === 'error').map((f) => f.code)).toEqual([]);
  });

  it('diagnose: keepalived use_vmac against the Proxmox MAC filter is vmac-blocked, fixed by macfilter: 0', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'pve-vmac-'));
    try {
      cpSync(FIXED, tmp, { recursive: true });
      const ka = join(tmp, 'lb1', 'keepalived.conf');
      writeFileSync(ka, readFileSync(ka, 'utf8').replace('    advert_int 1\n', '    advert_int 1\n    use_vmac\n'));
      // keepalived moves the VIP to its macvlan vrrp.51@eth0, whose MAC is 00:00:5e:00:01:33 (VRID 51).
      const ip = join(tmp, 'lb1', 'ip-addr.txt');
      writeFileSync(
        ip,
        `${readFileSync(ip, 'utf8').replace(/ {4}inet 192\.0\.2\.100\/24[^\n]*\n[^\n]*\n/, '')}3: vrrp.51@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n    link/ether 00:00:5e:00:01:33 brd ff:ff:ff:ff:ff:ff\n    inet 192.0.2.100/24 scope global vrrp.51\n       valid_lft forever preferred_lft forever\n`,
      );
      let r = await runCli('diagnose', tmp, '--json');
      let d = JSON.parse(r.stdout) as {
        findings: { code: string; title: string; where: string; culprit: { label: string }[] }[];
        fixes: { id: string; proof: string; clears: string[]; artifacts: { path: string; content: string }[] }[];
      };
      expect(r.code).toBe(1);
      const vmac = d.findings.find((f) => f.code === 'vmac-blocked')!;
      expect(vmac.title).toContain('frames from VMAC 00:00:5e:00:01:33 (vrrp_instance VI_WEB) are dropped on pve1:');
      expect(vmac.culprit.map((c) => c.label).join(' ← ')).toMatch(/100\.fw default macfilter: 1 ← VM 100 net0/);
      const fix = d.fixes.find((f) => f.id === 'pve-macfilter-off-100')!;
      expect(fix.clears).toContain(`vmac-blocked@${vmac.where}`);
      const fw = fix.artifacts[0]!.content;
      expect(fw).toMatch(/^macfilter: 0$/m);
      // Applied for real: the example without the MAC filter on VM 100 is healthy again.
      writeFileSync(join(tmp, 'etc-pve', 'firewall', '100.fw'), fw);
      r = await runCli('diagnose', tmp, '--json');
      d = JSON.parse(r.stdout);
      expect(d.findings.map((f) => f.code)).toEqual([]);
      expect(r.code).toBe(0);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  describe('guest VLANs (netN: …,tag=20)', () => {
    const INTERFACES = [
      'auto lo',
      'iface lo inet loopback',
      '',
      'iface eno1 inet manual',
      '',
      'auto vmbr0',
      'iface vmbr0 inet static',
      '\taddress 192.0.2.2/24',
      '\tbridge-ports eno1',
      '\tbridge-stp off',
      '\tbridge-fd 0',
      '\tbridge-vlan-aware yes',
      '\tbridge-vids 2-4094',
      '',
    ].join('\n');
    /** The fixed twin with every guest NIC tagged 20 and the gateway on VLAN 20; `aware` adds the interfaces file. */
    function tagged(aware: boolean, edit: (dir: string) => void = () => {}): string {
      const tmp = mkdtempSync(join(tmpdir(), 'pve-vlan-'));
      cpSync(FIXED, tmp, { recursive: true });
      for (const id of ['100', '101', '102']) {
        const conf = join(tmp, 'etc-pve', 'nodes', 'pve1', 'qemu-server', `${id}.conf`);
        writeFileSync(conf, readFileSync(conf, 'utf8').replace('firewall=1', 'firewall=1,tag=20'));
      }
      const y = join(tmp, 'scenario.yaml');
      let yaml = readFileSync(y, 'utf8').replace(/^ {2}segment: lan$/m, '  segment: lan\n  vlan: 20');
      if (aware) {
        writeFileSync(join(tmp, 'pve1', 'interfaces'), INTERFACES);
        yaml = yaml.replace(/^( {4}ip-addr: pve1\/ip-addr\.txt.*)$/m, '$1\n    network-interfaces: pve1/interfaces');
      }
      writeFileSync(y, yaml);
      edit(tmp);
      return tmp;
    }

    it('on a VLAN-aware vmbr: the fwpr ports get PVID 20 untagged, eno1 carries 2-4094 tagged; healthy', async () => {
      const dir = tagged(true);
      try {
        const r = loadScenario(dir);
        expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
        const i = (n: string) => r.value!.scenario.nodes.get('pve1')!.interfaces.get(n)!;
        expect(i('vmbr0').vlanFiltering).toBe(true);
        expect([i('fwpr100p0').bridgeVlans?.pvid, i('fwpr100p0').bridgeVlans?.untagged]).toEqual([20, [20]]);
        expect(i('eno1').bridgeVlans?.tagged).toEqual([[2, 4094]]);
        const t = await runCli('trace', dir, '--probe', 'http-to-vip');
        expect(t.stdout).toContain('vmbr0 (VLAN filtering): tagged on eno1, VLAN 20');
        expect(t.stdout).toMatch(/pve1:eno1\n\s+\S+ \S+ > \S+, ethertype 802\.1Q \(0x8100\), length \d+: vlan 20/);
        const d = await runCli('diagnose', dir);
        expect(d.code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('the lab refuses a VLAN-aware node with exit 4, saying why (a kernel without bridge VLAN filtering, or none built yet)', async () => {
      const dir = tagged(true);
      try {
        const loaded = loadScenario(dir).value!;
        const caps = { ipip: true, ipvs: true, vlan: true };
        expect(labLimits(loaded, { ...caps, bridgeVlanFiltering: false })).toEqual([
          'VLAN-filtering bridges (pve1:vmbr0): this kernel cannot make them (CONFIG_BRIDGE_VLAN_FILTERING is not set: `ip link set BRIDGE type bridge vlan_filtering 1` fails with "Operation not supported")',
        ]);
        expect(labLimits(loaded, { ...caps, bridgeVlanFiltering: true })).toEqual([
          expect.stringContaining("the lab does not set bridge vlan_filtering or the ports' VLANs yet"),
        ]);
        // The untagged twin (vmbr0v20, eno1.20: plain bridges and a VLAN device) asks nothing of the kind.
        const plain = tagged(false);
        try {
          expect(labLimits(loadScenario(plain).value!, { ...caps, bridgeVlanFiltering: false })).toEqual([]);
        } finally {
          rmSync(plain, { recursive: true, force: true });
        }
        // On this machine, as root with the lab's tools: said before anything is built, exit 4.
        if (labUnavailable() === undefined) {
          const r = await runCli('lab', 'run', dir);
          expect(r.code).toBe(4);
          expect(r.stderr).toContain('VLAN-filtering bridges (pve1:vmbr0)');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('on a vmbr that is not VLAN-aware: the ports sit on vmbr0v20 with eno1.20; healthy, and the assumption is said', async () => {
      const dir = tagged(false);
      try {
        const r = loadScenario(dir);
        const node = r.value!.scenario.nodes.get('pve1')!;
        expect(node.interfaces.get('fwpr100p0')?.master).toBe('vmbr0v20');
        expect(node.interfaces.get('eno1.20')).toMatchObject({
          kind: 'vlan',
          lower: 'eno1',
          vlanId: 20,
          master: 'vmbr0v20',
        });
        expect(r.value!.scenario.assumptions.join('\n')).toContain('vmbr0 assumed not VLAN-aware');
        const d = await runCli('diagnose', dir);
        expect(d.code).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a real server on another VLAN (tag=30) is cut off from the director: the probe fails', async () => {
      const dir = tagged(true, (d) => {
        const conf = join(d, 'etc-pve', 'nodes', 'pve1', 'qemu-server', '101.conf');
        writeFileSync(conf, readFileSync(conf, 'utf8').replace('tag=20', 'tag=30'));
      });
      try {
        const r = await runCli('diagnose', dir, '--json');
        expect(r.code).toBe(1);
        const d = JSON.parse(r.stdout) as { probes: { probe: { name: string }; disposition: string }[] };
        expect(d.probes.find((p) => p.probe.name === 'http-to-vip')?.disposition).toBe('arp-unresolved');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it("a clone of web1 (the same MAC) on VLAN 30 of the same vmbr: the director's frames to web1 in VLAN 20 are forwarded to web1's port only ((VLAN, MAC) FDB)", async () => {
      const dir = tagged(true, (d) => {
        writeFileSync(
          join(d, 'etc-pve', 'nodes', 'pve1', 'qemu-server', '103.conf'),
          'name: web1-clone\nnet0: virtio=BC:24:11:00:00:15,bridge=vmbr0,firewall=1,tag=30\n',
        );
        // lb1 knows web1's MAC already (no ARP that would teach vmbr0 where it is first).
        writeFileSync(join(d, 'lb1', 'ip-neigh.txt'), '192.0.2.21 dev eth0 lladdr bc:24:11:00:00:15 REACHABLE\n');
        const y = join(d, 'scenario.yaml');
        writeFileSync(
          y,
          readFileSync(y, 'utf8')
            .replace(/^( {4}ip-route: lb1\/ip-route\.txt.*)$/m, '$1\n    ip-neigh: lb1/ip-neigh.txt')
            .replace(/^guests:$/m, 'guests:\n  web1-clone: {}'),
        );
      });
      try {
        const r = loadScenario(dir);
        expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
        const d = diagnose(r.value!);
        const t = d.traces.find((x) => x.probe.name === 'http-to-vip')!;
        expect(t.disposition).toBe('replied');
        // The DR-forwarded SYN (to web1's MAC, from lb1's port) in VLAN 20.
        const toWeb1 = t.hops.filter(
          (h) => h.place.node === 'pve1' && h.place.iface === 'fwpr100p0' && h.frame.dst === 'bc:24:11:00:00:15',
        );
        expect(toWeb1.length).toBeGreaterThan(0);
        for (const h of toWeb1)
          expect(h.steps.find((s) => s.kind === 'bridge')).toMatchObject({ decision: 'forward', ports: ['fwpr101p0'] });
        // Under a MAC-only key the clone's port (not in VLAN 20) would be found, the frame flooded in VLAN 20: out of
        // eno1 too. It is not.
        expect(
          t.hops.some((h) => h.place.iface === 'eno1' && h.direction === 'out' && h.frame.dst === 'bc:24:11:00:00:15'),
        ).toBe(false);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('a bad bridge-vids is an error naming the interfaces file and line', () => {
      const dir = tagged(true, (d) =>
        writeFileSync(join(d, 'pve1', 'interfaces'), INTERFACES.replace('2-4094', '2-5000')),
      );
      try {
        const msgs = loadScenario(dir).issues.map(
          (i) => `${i.pos?.file.split('/').slice(-2).join('/')}:${i.pos?.line} ${i.message}`,
        );
        expect(msgs).toContain('pve1/interfaces:13 bridge-vids: expected VLAN ids 1-4094 (e.g. 2-4094), got "2-5000"');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it("DR with the real server on another node: the director's node sees the SYN, never the SYN-ACK, and PVEFW-FORWARD drops the client's ACK as INVALID", () => {
    // The fixed twin with web1 (VM 101) moved to a second node pve2 of the same cluster (one /etc/pve, two nodes).
    const tmp = mkdtempSync(join(tmpdir(), 'pve-two-'));
    try {
      cpSync(FIXED, tmp, { recursive: true });
      mkdirSync(join(tmp, 'etc-pve', 'nodes', 'pve2', 'qemu-server'), { recursive: true });
      renameSync(
        join(tmp, 'etc-pve', 'nodes', 'pve1', 'qemu-server', '101.conf'),
        join(tmp, 'etc-pve', 'nodes', 'pve2', 'qemu-server', '101.conf'),
      );
      mkdirSync(join(tmp, 'pve2'));
      writeFileSync(
        join(tmp, 'pve2', 'ip-addr.txt'),
        readFileSync(join(tmp, 'pve1', 'ip-addr.txt'), 'utf8')
          .replaceAll('02:00:5e:10:00:02', '02:00:5e:10:00:03')
          .replace('192.0.2.2/24', '192.0.2.3/24'),
      );
      const y = join(tmp, 'scenario.yaml');
      writeFileSync(
        y,
        readFileSync(y, 'utf8')
          .replace('members: [pve1:eno1, gateway:eth0]', 'members: [pve1:eno1, pve2:eno1, gateway:eth0]')
          .replace(
            /^( {4}ip-addr: pve1\/ip-addr\.txt.*)$/m,
            '    pve-node: pve1\n$1\n  pve2:\n    platform: proxmox\n    pve: etc-pve\n    pve-node: pve2\n    ip-addr: pve2/ip-addr.txt',
          ),
      );
      const r = loadScenario(tmp);
      expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
      const d = diagnose(r.value!);
      const t = d.traces.find((x) => x.probe.name === 'http-to-vip')!;
      expect([t.disposition, t.stage, t.end.place.node]).toEqual(['dropped-by-filter', 'request', 'pve1']);
      expect(t.end.reason).toContain('PVEFW-FORWARD rule 1 "-A PVEFW-FORWARD -m conntrack --ctstate INVALID -j DROP"');
      const hop = t.hops.find((h) => h.end === t.end)!;
      expect(hop.steps.some((s) => s.kind === 'note' && /SYN_SENT \+ ACK in the original direction/.test(s.text))).toBe(
        true,
      );
      expect(t.hops.some((h) => h.end?.reason.includes('completed the handshake'))).toBe(true);
      expect(d.findings.map((f) => f.code)).toContain('conntrack-invalid');
      // pve-firewall sets bridge-nf-call-iptables back to 1: the fix is host.fw's nf_conntrack_allow_invalid (F).
      const fix = d.fixes.find((f) => f.id === 'pve-allow-invalid-pve1')!;
      expect([fix.verified, fix.unblocks]).toEqual([true, ['http-to-vip']]);
      expect(fix.artifacts).toEqual([
        {
          path: 'pve-pve1/nodes/pve1/host.fw',
          content: expect.stringMatching(/^\[OPTIONS\]\n\nnf_conntrack_allow_invalid: 1\n/),
        },
      ]);
      expect(fix.commands).toContain('pvesh set /nodes/pve1/firewall/options --nf_conntrack_allow_invalid 1');
      expect(d.fixes.map((f) => f.id)).not.toContain('sysctl:pve1:net.bridge.bridge-nf-call-iptables=0');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  it("traffic to the node's own address meets its INPUT rules (host.fw, the datacenter's policy_in)", async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'pve-host-'));
    try {
      cpSync(FIXED, tmp, { recursive: true });
      const hostFw = join(tmp, 'etc-pve', 'nodes', 'pve1', 'host.fw');
      writeFileSync(hostFw, '[OPTIONS]\n\nenable: 1\n\n[RULES]\n\nIN SSH(ACCEPT) -source 198.51.100.0/24\n');
      writeFileSync(
        join(tmp, 'scenario.yaml'),
        `${readFileSync(join(tmp, 'scenario.yaml'), 'utf8')}  - name: pve-gui\n    tcp: 192.0.2.2:8006\n`,
      );
      const gui = async () =>
        (
          JSON.parse((await runCli('diagnose', tmp, '--json')).stdout) as {
            probes: { probe: { name: string }; disposition: string; end: { reason: string } }[];
          }
        ).probes.find((p) => p.probe.name === 'pve-gui')!;
      let p = await gui();
      expect(p.disposition).toBe('dropped-by-filter');
      expect(p.end.reason).toBe('iptables -t filter INPUT: PVEFW-HOST-IN rule 13 "-A PVEFW-HOST-IN -j DROP"');
      const t = await runCli('trace', tmp, '--probe', 'pve-gui');
      expect(t.stdout).toContain('INPUT → PVEFW-INPUT → PVEFW-HOST-IN');
      expect(t.stdout).toContain('from cluster.fw default policy_in: DROP');
      // A host.fw rule lets it in: the node then answers (nothing listens on 8006 in the model: refused).
      writeFileSync(hostFw, `${readFileSync(hostFw, 'utf8')}IN ACCEPT -p tcp -dport 8006\n`);
      p = await gui();
      expect(p.disposition).not.toBe('dropped-by-filter');
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  describe('a node with nftables: 1 (proxmox-firewall)', () => {
    /** A copy of an example whose node has host.fw `nftables: 1` (plus `extra` host.fw lines). */
    function nftCopy(from: string, extra = ''): string {
      const tmp = mkdtempSync(join(tmpdir(), 'pve-nft-'));
      cpSync(from, tmp, { recursive: true });
      writeFileSync(join(tmp, 'etc-pve', 'nodes', 'pve1', 'host.fw'), `[OPTIONS]\n\nnftables: 1\n${extra}`);
      return tmp;
    }
    type Report = {
      probes: { probe: { name: string }; disposition: string; end: { reason: string; place?: { iface: string } } }[];
      findings: { code: string; explanation: string; culprit: { label: string; file?: string; line?: number }[] }[];
      fixes: { id: string; verified: boolean; artifacts: { path: string; content: string }[] }[];
    };

    it('wires each tap straight into its vmbr (no fwbr) and evaluates proxmox-firewall’s tables, without the old warning', () => {
      const tmp = nftCopy(BROKEN);
      try {
        const r = loadScenario(tmp);
        expect(r.issues.filter((i) => i.severity !== 'info').map((i) => i.message)).toEqual([]);
        const host = r.value!.scenario.nodes.get('pve1')!;
        expect(host.interfaces.get('tap100i0')?.master).toBe('vmbr0');
        expect(host.interfaces.has('fwbr100i0')).toBe(false);
        expect(host.interfaces.has('fwpr100p0')).toBe(false);
        // pve-firewall applies nothing there, so nothing turns br_netfilter's iptables call on
        expect(host.sysctl.get('net.bridge.bridge-nf-call-iptables')).toBeUndefined();
        const pve = r.value!.proxmox!.get('pve1')!;
        expect(pve.ebFilter).toBeUndefined();
        expect(pve.nft?.guests?.chains.map((c) => c.name)).toContain('guest-100-out');
        expect(r.value!.installedIptables?.get('pve1')?.chains.find((c) => c.name === 'INPUT')?.nft?.chain).toBe(
          'inet proxmox-firewall/input',
        );
        // the lab does not load proxmox-firewall's tables: a stated limit (exit 4), not pve-firewall's form in its place
        const caps = { ipip: true, ipvs: true, vlan: true, bridgeVlanFiltering: true };
        expect(labLimits(r.value!, caps)).toEqual([
          expect.stringMatching(
            /^proxmox-firewall's guest table \(nftables: 1, a guest with its firewall on\) on pve1: the lab loads only its inet table/,
          ),
        ]);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('diagnose: the director’s forwarded SYN and its ARP for the VIP die in the guest table; the .fw fixes are verified by re-trace', async () => {
      const tmp = nftCopy(BROKEN);
      try {
        const r = await runCli('diagnose', tmp, '--json');
        expect(r.code).toBe(1);
        const d = JSON.parse(r.stdout) as Report;
        const http = d.probes.find((p) => p.probe.name === 'http-to-vip')!;
        expect([http.disposition, http.end.place?.iface]).toEqual(['dropped-by-filter', 'tap100i0']);
        expect(http.end.reason).toContain('guest-100-out');
        // an nft bridge table's drop is named as nft, not as the ebtables nat table it is evaluated beside
        expect(http.end.reason).toMatch(/^nft PREROUTING: nft chain bridge proxmox-firewall-guests\/guest-100-out /);
        expect(http.end.reason).toContain('"meta iifname tap100i0 ip saddr != @v4-guest-100/ipfilter-net0 drop"');
        // ARP: the nftables IP filter checks ARP senders whenever ipfilter: 1 (pve-firewall: only with an explicit set)
        const arp = d.probes.find((p) => p.probe.name === 'arp-for-vip')!;
        expect(arp.end.reason).toContain('arp saddr ip != @v4-guest-100/ipfilter-net0 drop');
        const director = d.findings.find((f) => f.code === 'director-anti-spoofing')!;
        expect(director.explanation).toContain('filtered by proxmox-firewall (nftables) in bridge prerouting');
        expect(director.culprit[0]).toEqual(
          expect.objectContaining({ label: expect.stringContaining('[IPSET ipfilter-net0]'), line: 6 }),
        );
        expect(d.findings.map((f) => f.code)).toEqual(
          expect.arrayContaining(['director-anti-spoofing', 'vip-arp-blocked', 'vrrp-adverts-dropped']),
        );
        const fixes = new Map(d.fixes.map((f) => [f.id, f]));
        expect(fixes.get('pve-director-ipfilter-off-100')?.verified).toBe(true);
        expect(fixes.get('pve-vrrp-in-102-192.0.2.11')?.verified).toBe(true);
        expect(fixes.get('pve-director-ipfilter-off-100')?.artifacts[0]?.content).toContain('ipfilter: 0');
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });

    it('the fixed twin is healthy there too; the host table judges traffic to the node (host-in, cluster policy_in)', async () => {
      const tmp = nftCopy(FIXED, '\n[RULES]\n\nIN SSH(ACCEPT) -source 198.51.100.0/24\n');
      try {
        writeFileSync(
          join(tmp, 'scenario.yaml'),
          `${readFileSync(join(tmp, 'scenario.yaml'), 'utf8')}  - name: pve-gui\n    tcp: 192.0.2.2:8006\n`,
        );
        const d = JSON.parse((await runCli('diagnose', tmp, '--json')).stdout) as Report;
        const bad = d.probes.filter((p) => p.disposition !== 'replied' && p.probe.name !== 'pve-gui');
        expect(bad.map((p) => `${p.probe.name}: ${p.end.reason}`)).toEqual([]);
        // the client is not in the management set: default-in's accept-management does not take it, cluster-in drops
        const gui = d.probes.find((p) => p.probe.name === 'pve-gui')!;
        expect([gui.disposition, gui.end.reason]).toEqual([
          'dropped-by-filter',
          'nft INPUT: nft chain inet proxmox-firewall/cluster-in "drop"',
        ]);
        const t = await runCli('trace', tmp, '--probe', 'pve-gui');
        expect(t.stdout).toContain(
          'INPUT: INPUT → default-in → allow-icmp → accept-management → ct-in → option-in → allow-ndp-in → block-smurfs → host-in → cluster-in ⇒ DROP',
        );
        expect(t.stdout).toContain('cluster.fw default policy_in: DROP');
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    });
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
