/**
 * The Proxmox layout on the real kernel, held against the simulator: randomized Proxmox nodes (guests with or without
 * ipfilter, explicit sets, macfilter, policies, macros) are built in network namespaces the way pve-firewall and
 * qemu-server build them — `tap ─ fwbr ─ fwln ═ fwpr ─ vmbr0` per firewalled NIC, br_netfilter on — and the rules
 * lvsdoctor compiled are loaded for real (`ipset restore`, `iptables-restore -n`, `ebtables-restore`). Crafted frames
 * (scapy) go from guests and from the uplink; what arrives at each destination must be what `pveSimulate` predicts.
 * Root only; only namespaces this test creates (prefix `lvsdpve`), removed afterwards. The seed is printed
 * (PVE_LAB_SEED reproduces a run).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import type { Mac } from '../src/addr/mac.ts';
import {
  compilePveFirewall,
  renderPveEbtablesRestore,
  renderPveIpsetRestore,
  renderPveRestore,
} from '../src/proxmox/compile.ts';
import { type PveGuestSource, pveNodeInput } from '../src/proxmox/node-files.ts';
import { type PveEndpoint, pveNodeModel, pveSimulate } from '../src/proxmox/simulate.ts';
import type { EthernetFrame } from '../src/wire/types.ts';

const PY = '/usr/bin/python3';
function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  for (const t of ['ip', 'iptables-restore', 'ebtables-restore', 'ipset'])
    if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed`;
  if (spawnSync(PY, ['-c', 'import scapy.all']).status !== 0) return 'python3-scapy is not installed';
  return undefined;
}
const SKIP = skipReason();

const PREFIX = `lvsdpve${process.pid % 10000}`;
const made: string[] = [];

function sh(args: string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), { input, stdio: ['pipe', 'pipe', 'pipe'], timeout: 30_000 }).toString();
}
const inNs = (ns: string, args: string[], input?: string) => sh(['ip', 'netns', 'exec', ns, ...args], input);

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}

interface Guest {
  vmid: string;
  mac: string;
  ip: string;
  fw: string;
}

function randomNode(r: () => number) {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const n = 2 + Math.floor(r() * 3);
  const guests: Guest[] = [];
  for (let i = 0; i < n; i++) {
    const vmid = String(100 + i);
    const ip = `192.0.2.${11 + i}`;
    const opts: string[] = ['enable: 1'];
    if (r() < 0.6) opts.push('ipfilter: 1');
    if (r() < 0.25) opts.push('macfilter: 0');
    if (r() < 0.3) opts.push(`policy_in: ${pick(['ACCEPT', 'REJECT', 'DROP'])}`);
    if (r() < 0.2) opts.push(`policy_out: ${pick(['DROP', 'REJECT'])}`);
    let text = `[OPTIONS]\n${opts.join('\n')}\n`;
    if (r() < 0.6) text += `\n[IPSET ipfilter-net0]\n${ip}\n${r() < 0.4 ? '192.0.2.100 # VIP\n' : ''}`;
    const rules = [
      'IN HTTP(ACCEPT)',
      'IN SSH(ACCEPT) -source 198.51.100.0/24',
      'OUT REJECT -p tcp -dport 25',
      'IN ACCEPT -p tcp -dport 443 -source 203.0.113.0/24',
      'OUT ACCEPT -p tcp -dport 80',
    ];
    const chosen = rules.filter(() => r() < 0.5);
    if (chosen.length > 0) text += `\n[RULES]\n${chosen.join('\n')}\n`;
    guests.push({ vmid, mac: `BC:24:11:00:01:${(0x10 + i).toString(16).toUpperCase()}`, ip, fw: text });
  }
  return guests;
}

interface Probe {
  id: number;
  from: PveEndpoint;
  to: PveEndpoint;
  srcMac: string;
  dstMac: string;
  src: string;
  dst: string;
  dport: number;
}

const CLIENT_MAC = '02:00:00:00:00:c1';

function frameOf(p: Probe): EthernetFrame {
  const ip = (t: string) => t.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0) as never;
  return {
    dst: p.dstMac.toLowerCase() as Mac,
    src: p.srcMac.toLowerCase() as Mac,
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 6,
      src: ip(p.src),
      dst: ip(p.dst),
      payload: {
        kind: 'tcp',
        srcPort: 20000 + p.id,
        dstPort: p.dport,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 64240,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      },
    },
  };
}

function nsOf(e: PveEndpoint): string {
  return e.kind === 'guest' ? `${PREFIX}g${e.vmid}` : `${PREFIX}c`;
}
function ifOf(e: PveEndpoint): string {
  return e.kind === 'guest' ? 'eth0' : 'up0';
}

function build(guests: Guest[], compiled: ReturnType<typeof compilePveFirewall>) {
  const host = `${PREFIX}h`;
  const client = `${PREFIX}c`;
  for (const ns of [host, client, ...guests.map((g) => `${PREFIX}g${g.vmid}`)]) {
    sh(['ip', 'netns', 'add', ns]);
    made.push(ns);
  }
  inNs(host, ['sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']);
  // A node has lo up and its address on vmbr0 (without a local routing table, addrtype calls every address BROADCAST).
  inNs(host, ['ip', 'link', 'set', 'lo', 'up']);
  inNs(host, ['ip', 'link', 'add', 'vmbr0', 'type', 'bridge']);
  inNs(host, ['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', client]);
  inNs(host, ['ip', 'link', 'set', 'eth0', 'master', 'vmbr0']);
  inNs(client, ['ip', 'link', 'set', 'up0', 'address', CLIENT_MAC]);
  for (const g of guests) {
    const gns = `${PREFIX}g${g.vmid}`;
    const i = `${g.vmid}i0`;
    inNs(host, ['ip', 'link', 'add', `fwbr${i}`, 'type', 'bridge']);
    // the guest NIC: a veth whose host end plays the tap
    inNs(host, ['ip', 'link', 'add', `tap${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', gns]);
    inNs(host, ['ip', 'link', 'add', `fwln${i}`, 'type', 'veth', 'peer', 'name', `fwpr${g.vmid}p0`]);
    inNs(host, ['ip', 'link', 'set', `tap${i}`, 'master', `fwbr${i}`]);
    inNs(host, ['ip', 'link', 'set', `fwln${i}`, 'master', `fwbr${i}`]);
    inNs(host, ['ip', 'link', 'set', `fwpr${g.vmid}p0`, 'master', 'vmbr0']);
    inNs(gns, ['ip', 'link', 'set', 'eth0', 'address', g.mac.toLowerCase()]);
    inNs(gns, ['ip', 'link', 'set', 'eth0', 'up']);
    for (const l of [`fwbr${i}`, `tap${i}`, `fwln${i}`, `fwpr${g.vmid}p0`]) inNs(host, ['ip', 'link', 'set', l, 'up']);
  }
  for (const l of ['vmbr0', 'eth0']) inNs(host, ['ip', 'link', 'set', l, 'up']);
  inNs(host, ['ip', 'addr', 'add', '192.0.2.2/24', 'dev', 'vmbr0']);
  inNs(client, ['ip', 'link', 'set', 'up0', 'up']);
  inNs(host, ['ipset', 'restore'], renderPveIpsetRestore(compiled.ipsets));
  inNs(host, ['iptables-restore', '-n'], renderPveRestore(compiled.filter4, 'filter'));
  inNs(host, ['ebtables-restore', '--noflush'], renderPveEbtablesRestore(compiled.ebtables));
}

const SNIFF = `
import sys
from scapy.all import sniff, TCP
print('ready', file=sys.stderr, flush=True)
sniff(iface=sys.argv[1], timeout=float(sys.argv[2]), filter='tcp and tcp[13] & 2 != 0', store=False,
      prn=lambda p: print(p[TCP].sport, flush=True) if TCP in p else None)
`;
const SEND = `
import sys, json, time
from scapy.all import sendp, Ether, IP, TCP
for f in json.loads(sys.stdin.read()):
    sendp(Ether(src=f['smac'], dst=f['dmac'])/IP(src=f['src'], dst=f['dst'])/TCP(sport=f['sport'], dport=f['dport'], flags='S'), iface=f['iface'], verbose=False)
    time.sleep(0.01)
`;

afterAll(() => {
  if (process.env.PVE_LAB_KEEP !== '1') for (const ns of made) spawnSync('ip', ['netns', 'del', ns]);
});

describe.skipIf(SKIP !== undefined)('Proxmox layout on the real kernel ≡ the simulator', () => {
  const seed = Number(process.env.PVE_LAB_SEED ?? Date.now() % 1_000_000);
  it(`randomized node (seed ${seed}): every probe arrives exactly where the simulator says`, {
    timeout: 120_000,
  }, async () => {
    const r = rng(seed);
    const guests = randomNode(r);
    const gsrc: PveGuestSource[] = guests.map((g) => ({
      kind: 'qemu',
      vmid: g.vmid,
      conf: { file: `qemu-server/${g.vmid}.conf`, text: `net0: virtio=${g.mac},bridge=vmbr0,firewall=1\n` },
    }));
    const input = pveNodeInput({
      nodeName: 'pve1',
      cluster: { file: 'cluster.fw', text: '[OPTIONS]\nenable: 1\n' },
      guestFw: new Map(guests.map((g) => [g.vmid, { file: `${g.vmid}.fw`, text: g.fw }])),
      guests: gsrc,
      localNetwork: '192.0.2.0/24',
    }).value!;
    const compiled = compilePveFirewall(input);
    const model = pveNodeModel(input, compiled);
    build(guests, compiled);
    // probes
    const probes: Probe[] = [];
    const uplink: PveEndpoint = { kind: 'port', bridge: 'vmbr0', port: 'eth0' };
    const ends: { e: PveEndpoint; mac: string; ip: string }[] = [
      { e: uplink, mac: CLIENT_MAC, ip: '203.0.113.7' },
      ...guests.map((g) => ({
        e: { kind: 'guest', vmid: g.vmid, netid: 'net0' } as PveEndpoint,
        mac: g.mac,
        ip: g.ip,
      })),
    ];
    const sources = ['own', '192.0.2.100', '203.0.113.7', '198.51.100.20'];
    for (let k = 0; k < 40; k++) {
      const a = ends[Math.floor(r() * ends.length)]!;
      let b = ends[Math.floor(r() * ends.length)]!;
      if (a === b) b = ends[(ends.indexOf(a) + 1) % ends.length]!;
      const s = sources[Math.floor(r() * sources.length)]!;
      probes.push({
        id: k,
        from: a.e,
        to: b.e,
        srcMac: r() < 0.15 ? '02:de:ad:00:00:01' : a.mac,
        dstMac: b.mac,
        src: s === 'own' ? a.ip : s,
        dst: b.ip,
        dport: [80, 22, 25, 443][Math.floor(r() * 4)]!,
      });
    }
    // sniff at every endpoint, send everything, collect
    const sniffers = ends.map((x) => {
      // stopped below once every frame was sent; the timeout only bounds a run gone wrong
      const p = spawn('ip', ['netns', 'exec', nsOf(x.e), PY, '-c', SNIFF, ifOf(x.e), '90'], { detached: true });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      const ready = new Promise<void>((res) => p.stderr.on('data', (d) => String(d).includes('ready') && res()));
      const done = new Promise<string>((res) => p.on('close', () => res(out)));
      return { e: x.e, ready, done, stop: () => process.kill(-p.pid!, 'SIGTERM') };
    });
    await Promise.all(sniffers.map((s) => s.ready));
    await new Promise((res) => setTimeout(res, 300));
    for (const x of ends) {
      const mine = probes.filter((p) => nsOf(p.from) === nsOf(x.e));
      if (mine.length === 0) continue;
      inNs(
        nsOf(x.e),
        [PY, '-c', SEND],
        JSON.stringify(
          mine.map((p) => ({
            smac: p.srcMac.toLowerCase(),
            dmac: p.dstMac.toLowerCase(),
            src: p.src,
            dst: p.dst,
            sport: 20000 + p.id,
            dport: p.dport,
            iface: ifOf(x.e),
          })),
        ),
      );
    }
    await new Promise((res) => setTimeout(res, 1500));
    for (const s of sniffers) s.stop();
    const seen = new Map<string, Set<number>>();
    for (const s of sniffers)
      seen.set(nsOf(s.e), new Set((await s.done).trim().split(/\s+/).filter(Boolean).map(Number)));
    const rows = probes.map((p) => {
      const sim = pveSimulate(model, frameOf(p), p.from, p.to);
      const kernel = seen.get(nsOf(p.to))!.has(20000 + p.id) ? 'ACCEPT' : 'DROP';
      return {
        probe: `${nsOf(p.from)}→${nsOf(p.to)} ${p.src}→${p.dst}:${p.dport} mac ${p.srcMac}`,
        sim: sim.verdict === 'ACCEPT' ? 'ACCEPT' : 'DROP',
        kernel,
      };
    });
    const disagree = rows.filter((x) => x.sim !== x.kernel);
    expect({ seed, disagree, passed: rows.filter((x) => x.kernel === 'ACCEPT').length > 0 }).toEqual({
      seed,
      disagree: [],
      passed: true,
    });
  });
});
