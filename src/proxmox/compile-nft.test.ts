/**
 * The nftables (`proxmox-firewall`) form of the Proxmox compiler: against proxmox-firewall's own integration-test
 * snapshot (rendered condensed in ../shared/conformance/pve-firewall/nftables, read at run time), own-made cases,
 * and — where `nft` and root are available — `nft -c` inside a network namespace made for the test.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../test/run-cli.ts';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import {
  compileProxmoxFirewallNft,
  PVE_NFT_GUEST_TABLE,
  PVE_NFT_HOST_TABLE,
  pveNftTableLines,
  renderPveNft,
} from './compile-nft.ts';
import { type PveNodeFiles, pveNodeInput } from './node-files.ts';

const suite = externalSuite('conformance/pve-firewall/nftables/');

function snapshotInput(read: (f: string) => string): PveNodeFiles {
  const f = (name: string) => ({ file: name, text: read(`input/${name}`) });
  return {
    nodeName: 'proxmox',
    cluster: f('cluster.fw'),
    host: f('host.fw'),
    guestFw: new Map([
      ['100', f('100.fw')],
      ['101', f('101.fw')],
    ]),
    guests: [
      { kind: 'lxc', vmid: '100', conf: f('100.conf') },
      { kind: 'qemu', vmid: '101', conf: f('101.conf') },
    ],
  };
}

function compile(files: PveNodeFiles) {
  const r = pveNodeInput(files);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return compileProxmoxFirewallNft(r.value!);
}

/**
 * Our commands in the snapshot's rendering where that rendering is not nft syntax: its `auto-merge True` is our
 * `auto-merge;`, its map elements `{ { veth100i1, goto guest-100-in }, … }` are our `{ veth100i1 : goto guest-100-in,
 * … }`, and the statements it leaves as JSON (conntrack helper objects and assignments, the SYN-flood meter) are
 * written back as that JSON.
 */
function snapshotForm(text: string): string {
  return text
    .replace('auto-merge; }', 'auto-merge True }')
    .replace(/^(add element \S+ \S+ vm-map-\w+) \{ (.*) \}$/, (_m, head: string, body: string) => {
      const els = body.split(', ').map((e) => `{ ${e.replace(' : ', ', ')} }`);
      return `${head} { ${els.join(', ')} }`;
    })
    .replace(
      /^(add ct helper \S+ \S+ \S+) \{ type "([^"]+)" protocol (\w+);(?: l3proto (\w+);)? \}$/,
      (_m, head: string, type: string, proto: string, l3?: string) =>
        `${head} {"type": "${type}", "protocol": "${proto}", "l3proto": ${l3 === undefined ? 'null' : `"${l3}"`}}`,
    )
    .replace(/ ct helper set "([^"]+)"$/, ' {"ct helper": "$1"}')
    .replace(/ ct helper "([^"]+)" accept$/, ' ct helper $1 accept')
    .replace(
      /update (@\S+) \{ (ip6?) saddr limit rate over (\d+)\/second burst (\d+) packets \} drop$/,
      (_m, set: string, fam: string, rate: string, burst: string) =>
        `{"set": {"op": "update", "elem": {"payload": {"protocol": "${fam}", "field": "saddr"}}, "set": "${set}", "stmt": {"limit": {"rate": ${rate}, "per": "second", "burst": ${burst}, "inv": true}}}} drop`,
    );
}

/**
 * The snapshot's commands on one table from the first `add set` on (the earlier flush/delete/add commands are the
 * daemon's housekeeping of the previous state), except those naming `sdn/` sets: they come from the SDN
 * configuration and IPAM the snapshot's harness builds in (VNet subnets, gateways, DHCP ranges, IPAM entries), not
 * from the input files, and lvsdoctor does not model SDN — so the two host FORWARD rules on `+sdn/…` sets are not
 * compared either (the compiler says it skipped them).
 */
function snapshotTable(table: string): string[] {
  const lines = suite.read('snapshot-condensed.txt').split('\n');
  const first = lines.findIndex((l) => l.startsWith('add set '));
  return lines.slice(first).filter((l) => l.includes(` ${table} `) && !l.includes('sdn/'));
}

describe('proxmox-firewall conformance: both tables against the upstream snapshot', () => {
  skippedBecause(suite.skip);
  if (suite.skip !== undefined) return;
  it('generates the snapshot’s guest-table commands, in order', () => {
    const out = compile(snapshotInput((f) => suite.read(f)));
    expect(out.hostWantsNftables).toBe(true);
    const got = pveNftTableLines(out, PVE_NFT_GUEST_TABLE).map((l) => snapshotForm(l.text));
    expect(got).toEqual(snapshotTable(PVE_NFT_GUEST_TABLE));
  });
  it('generates the snapshot’s host/cluster-table commands, in order', () => {
    const out = compile(snapshotInput((f) => suite.read(f)));
    const got = pveNftTableLines(out, PVE_NFT_HOST_TABLE).map((l) => snapshotForm(l.text));
    expect(got).toEqual(snapshotTable(PVE_NFT_HOST_TABLE));
  });
  it('says which rules it left out: only the two on SDN sets', () => {
    const out = compile(snapshotInput((f) => suite.read(f)));
    expect(out.issues.map((i) => `${i.pos?.file}:${i.pos?.line} ${i.message}`)).toEqual([
      expect.stringMatching(/^host\.fw:\d+ FORWARD DROP --source \+sdn\/guest-ipam-101 .*SDN/),
      expect.stringMatching(/^host\.fw:\d+ FORWARD DROP --source \+sdn\/public-all .*SDN/),
    ]);
  });
  it('every line keeps an origin; user rules point at their .fw line', () => {
    const out = compile(snapshotInput((f) => suite.read(f)));
    const r = out.lines.find((l) => l.text.includes('th dport { 123, 222-333 }'))!;
    expect(r.origin.pos).toEqual(expect.objectContaining({ file: '100.fw' }));
    const h = out.lines.find((l) => l.text.endsWith('host-in meta l4proto udp th dport 443 jump do-reject'))!;
    expect(h.origin.pos).toEqual(expect.objectContaining({ file: 'host.fw', line: 25 }));
    const p = out.lines.find((l) => l.text === 'add rule inet proxmox-firewall cluster-in drop')!;
    expect(p.origin.label).toBe('cluster.fw default policy_in: DROP');
    const c = out.lines.find((l) => l.text.includes('ct-in meta l4proto tcp th dport 21 '))!;
    expect(c.origin.pos).toEqual(expect.objectContaining({ file: 'host.fw', line: 15 }));
  });
});

const CLUSTER = '[OPTIONS]\nenable: 1\n\n[IPSET vips]\n192.0.2.100\n198.51.100.0/24\n!198.51.100.7\n';

function own(vmFw: string, nets: Record<string, string>, kind: 'qemu' | 'lxc' = 'qemu'): PveNodeFiles {
  return {
    nodeName: 'n1',
    cluster: { file: 'cluster.fw', text: CLUSTER },
    host: { file: 'host.fw', text: '[OPTIONS]\nnftables: 1\n' },
    guestFw: new Map([['200', { file: '200.fw', text: vmFw }]]),
    guests: [{ kind, vmid: '200', conf: { file: '200.conf', nets } }],
  };
}

describe('proxmox-firewall nftables form: own cases', () => {
  const nets = { net0: 'virtio=BC:24:11:00:00:0B,bridge=vmbr0,firewall=1' };
  it('QEMU with ipfilter: 1 and no explicit set: an implied set holding only the link-local address', () => {
    const out = compile(own('[OPTIONS]\nenable: 1\nipfilter: 1\n', nets));
    const t = out.lines.map((l) => l.text);
    expect(t).toContain(
      'add element bridge proxmox-firewall-guests v6-guest-200/ipfilter-net0 { fe80::be24:11ff:fe00:b/128 }',
    );
    expect(t.some((l) => l.startsWith('add element bridge proxmox-firewall-guests v4-guest-200/ipfilter-net0 '))).toBe(
      false,
    );
    expect(t).toContain(
      'add rule bridge proxmox-firewall-guests guest-200-out meta iifname tap200i0 ip saddr != @v4-guest-200/ipfilter-net0 drop',
    );
  });
  it('an explicit ipfilter set without ipfilter: 1 filters nothing (unlike pve-firewall)', () => {
    const out = compile(own('[OPTIONS]\nenable: 1\n\n[IPSET ipfilter-net0]\n192.0.2.10\n', nets));
    const t = out.lines.map((l) => l.text);
    expect(t).toContain('add element bridge proxmox-firewall-guests v4-guest-200/ipfilter-net0 { 192.0.2.10/32 }');
    expect(t.some((l) => l.includes('@v4-guest-200/ipfilter-net0'))).toBe(false);
  });
  it('macfilter on (default): one rule per guest listing every firewalled NIC with its MAC; defaults for options and policies', () => {
    const out = compile(own('[OPTIONS]\nenable: 1\n', { ...nets, net1: 'virtio=BC:24:11:00:00:0C,bridge=vmbr1' }));
    const t = out.lines.map((l) => l.text.replace('add rule bridge proxmox-firewall-guests ', ''));
    expect(t).toContain('guest-200-out iifname . ether saddr != { tap200i0 . bc:24:11:00:00:0b } drop');
    expect(t).toContain('guest-200-in jump allow-dhcp-in');
    expect(t).toContain('guest-200-out jump block-ra-out');
    expect(t.at(-1)).toBe('guest-200-out accept');
    expect(t).toContain('guest-200-in drop');
    expect(t).toContain('add element bridge proxmox-firewall-guests vm-map-in { tap200i0 : goto guest-200-in }');
  });
  it('set references become set/nomatch pairs per IP version; REJECT jumps to do-reject; -log adds a limited log rule', () => {
    const out = compile(
      own(
        '[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -source +vips -p tcp -dport 80\nOUT REJECT -p udp -dport 53 -log warning\n',
        nets,
      ),
    );
    const t = out.lines.map((l) => l.text.replace('add rule bridge proxmox-firewall-guests ', ''));
    expect(t).toContain(
      'guest-200-in meta l4proto tcp th dport 80 ip saddr @v4-dc/vips ip saddr != @v4-dc/vips-nomatch accept',
    );
    expect(t).toContain(
      'guest-200-in meta l4proto tcp th dport 80 ip6 saddr @v6-dc/vips ip6 saddr != @v6-dc/vips-nomatch accept',
    );
    expect(t).toContain(
      'guest-200-out meta l4proto udp th dport 53 limit rate 1/second burst 5 packets log prefix ":200:4:guest-200-out: REJECT: " group 0',
    );
    expect(t).toContain('guest-200-out meta l4proto udp th dport 53 jump do-reject');
    expect(t).toContain('add element bridge proxmox-firewall-guests v4-dc/vips-nomatch { 198.51.100.7/32 }');
  });
  it('security groups: one chain per direction in the bridge table; REJECT in the IN direction is a drop there', () => {
    const files = own('[OPTIONS]\nenable: 1\n\n[RULES]\nGROUP web -i net0\n', nets);
    const out = compile({
      ...files,
      cluster: {
        file: 'cluster.fw',
        text: `${CLUSTER}\n[group web]\nIN REJECT -p tcp -dport 22\nOUT REJECT -p tcp -dport 25\n`,
      },
    });
    const t = out.lines.map((l) => l.text.replace('add rule bridge proxmox-firewall-guests ', ''));
    expect(t).toContain('group-web-in meta l4proto tcp th dport 22 drop');
    expect(t).toContain('group-web-out meta l4proto tcp th dport 25 jump do-reject');
    expect(t).toContain('add chain bridge proxmox-firewall-guests group-web-forward');
    expect(t).toContain('guest-200-in meta oifname tap200i0 jump group-web-in');
    expect(t).toContain('guest-200-out meta iifname tap200i0 jump group-web-out');
  });
  it('a guest without enable: 1 gets no chains; a disabled cluster generates nothing', () => {
    expect(compile(own('[OPTIONS]\nipfilter: 1\n', nets)).lines.some((l) => l.text.includes('guest-200'))).toBe(false);
    const off = own('[OPTIONS]\nenable: 1\n', nets);
    const out = compile({ ...off, cluster: { file: 'cluster.fw', text: '[OPTIONS]\nenable: 0\n' } });
    expect(out.enabled).toBe(false);
    expect(out.lines).toEqual([]);
  });
});

function canNftCheck(): string | undefined {
  if (process.getuid?.() !== 0) return 'nft -c in a namespace needs root';
  if (spawnSync('nft', ['--version']).status !== 0) return 'nft is not installed';
  if (suite.skip !== undefined) return suite.skip;
  return undefined;
}

describe('proxmox-firewall nftables form: nft accepts it after the skeleton', () => {
  const why = canNftCheck();
  skippedBecause(why);
  if (why !== undefined) return;
  // nft -c evaluates against the running kernel. Kernels without bridge conntrack (nf_conntrack_bridge) or bridge
  // reject refuse some of the skeleton's own rules; our commands may fail there only the same way: "Protocol error"
  // on a `ct …` statement, and only when the skeleton alone fails so too. Anything else (syntax, unknown set or
  // chain, wrong type) fails the test.
  it('nft -c -f (skeleton + generated commands) accepts the generated commands inside a fresh network namespace', () => {
    // the snapshot's input, plus an own VM exercising macfilter, set references, REJECT and logging
    const snap = renderPveNft(compile(snapshotInput((f) => suite.read(f))));
    const mine = renderPveNft(
      compile(
        own(
          '[OPTIONS]\nenable: 1\nipfilter: 1\n\n[RULES]\nIN ACCEPT -source +vips -p tcp -dport 80,8080:8090 -log info\nOUT REJECT -p udp -dport 53\nOUT DROP -p icmp -icmp-type echo-request\n',
          {
            net0: 'virtio=BC:24:11:00:00:0B,bridge=vmbr0,firewall=1',
            net1: 'virtio=BC:24:11:00:00:0C,bridge=vmbr0,firewall=1',
          },
        ),
      ),
    ).replace(/^add rule \S+ \S+ invalid-conntrack drop\n/m, '');
    const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-pvenft-'));
    const ns = `lvsd-pvenft-${process.pid}`;
    try {
      const skeleton = suite.read('skeleton-proxmox-firewall.nft');
      const skelFile = join(dir, 'skeleton.nft');
      const file = join(dir, 'ruleset.nft');
      writeFileSync(skelFile, skeleton);
      writeFileSync(file, `${skeleton}\n${snap}${mine}`);
      execFileSync('ip', ['netns', 'add', ns]);
      const check = (f: string) => spawnSync('ip', ['netns', 'exec', ns, 'nft', '-c', '-f', f], { encoding: 'utf8' });
      const skel = check(skelFile);
      const skelCtBroken = /Protocol error\n.*\bct\b/.test(skel.stderr);
      const r = check(file);
      const skelLines = skeleton.split('\n').length;
      const ours = [...r.stderr.matchAll(/ruleset\.nft:(\d+):[\d-]+: Error: (.*)\n(.*)\n/g)].filter(
        (m) => Number(m[1]) > skelLines,
      );
      const unexplained = ours.filter((m) => !(skelCtBroken && /Protocol error/.test(m[2]!) && /\bct /.test(m[3]!)));
      expect(unexplained.map((m) => `${m[2]}: ${m[3]}`)).toEqual([]);
      if (skel.status === 0) expect(r.status).toBe(0);
    } finally {
      spawnSync('ip', ['netns', 'delete', ns]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('lvsdoctor proxmox compile: the nftables form', () => {
  function pveDir(hostFw: string): string {
    const d = mkdtempSync(join(tmpdir(), 'lvsdoctor-pvenft-cli-'));
    for (const sub of ['firewall', 'nodes/n1/qemu-server']) mkdirSync(join(d, sub), { recursive: true });
    writeFileSync(join(d, 'firewall/cluster.fw'), CLUSTER);
    writeFileSync(
      join(d, 'firewall/200.fw'),
      '[OPTIONS]\nenable: 1\n\n[RULES]\nIN ACCEPT -source 192.0.2.1,192.0.2.5-192.0.2.9 -p tcp -dport 22\n',
    );
    writeFileSync(join(d, 'nodes/n1/host.fw'), hostFw);
    writeFileSync(join(d, 'nodes/n1/qemu-server/200.conf'), 'net0: virtio=BC:24:11:00:00:0B,bridge=vmbr0,firewall=1\n');
    return d;
  }
  it('is the default when host.fw has nftables: 1; iptables stays the default otherwise', async () => {
    const nft = pveDir('[OPTIONS]\nnftables: 1\n');
    const ipt = pveDir('[OPTIONS]\nenable: 1\n');
    try {
      const a = await runCli('proxmox', 'compile', nft, '--local-network', '192.0.2.0/24');
      expect(a.code).toBe(0);
      expect(a.stdout).toContain('add rule bridge proxmox-firewall-guests guest-200-in jump pre-vm-in\n');
      // a range inside a list: pve-firewall refuses the rule (and says so), proxmox-firewall compiles it
      expect(a.stdout).toContain(
        'guest-200-in meta l4proto tcp th dport 22 ip saddr { 192.0.2.1/32, 192.0.2.5-192.0.2.9 } accept',
      );
      expect(a.stderr).not.toContain('rule not compiled');
      const b = await runCli('proxmox', 'compile', ipt, '--local-network', '192.0.2.0/24');
      expect(b.stdout).toContain('*filter');
      expect(b.stderr).toContain('rule not compiled');
      const c = await runCli('proxmox', 'compile', ipt, '--local-network', '192.0.2.0/24', '--output', 'nftables');
      expect(c.stdout).toContain('guest-200-out');
      expect(c.stderr).toContain('does not set nftables: 1');
      const d = await runCli('proxmox', 'compile', nft, '--local-network', '192.0.2.0/24', '--output', 'iptables');
      expect(d.stderr).toContain('proxmox-firewall (nftables) filters on this node');
    } finally {
      rmSync(nft, { recursive: true, force: true });
      rmSync(ipt, { recursive: true, force: true });
    }
  });
});
