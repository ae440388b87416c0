/**
 * Benchmark: a Proxmox VE node with 500 VMs (each with the firewall on: ipfilter set, macros, a security group,
 * logging) — read its files, compile them as pve-firewall does (iptables, ip6tables, ipsets, ebtables), read the rules
 * into the netfilter model, and trace 1,000 probes hop by hop (a DR-forwarded request and an inbound request per VM).
 * Baseline measured in the same run: libvirt nwfilter `clean-traffic` compiled for the same 500 interfaces by
 * lvsdoctor's libvirt compiler. Prints figures only.   npx tsx bench/proxmox.ts
 */
import type { Mac } from '../src/addr/mac.ts';
import { filterRegistry } from '../src/libvirt/builtin-filters.ts';
import { compileBindings } from '../src/libvirt/compile.ts';
import type { NwFilterBinding } from '../src/libvirt/nwfilter-model.ts';
import { renderEbtablesSave } from '../src/netfilter/ebtables-render.ts';
import {
  compilePveFirewall,
  renderPveEbtablesRestore,
  renderPveIpsetRestore,
  renderPveRestore,
} from '../src/proxmox/compile.ts';
import { type PveGuestSource, pveNodeInput } from '../src/proxmox/node-files.ts';
import { type PveEndpoint, pveNodeModel, pveSimulate } from '../src/proxmox/simulate.ts';
import type { EthernetFrame } from '../src/wire/types.ts';

const N = Number(process.env.BENCH_VMS ?? 500);
const hex = (n: number) => n.toString(16).padStart(2, '0');
const mac = (i: number) => `BC:24:11:${hex((i >> 16) & 255)}:${hex((i >> 8) & 255)}:${hex(i & 255)}`.toUpperCase();
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${(i & 255) + 1}`;

function files() {
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  for (let i = 0; i < N; i++) {
    const vmid = String(1000 + i);
    guests.push({
      kind: 'qemu',
      vmid,
      conf: {
        file: `qemu-server/${vmid}.conf`,
        text: `name: vm${i}\nnet0: virtio=${mac(i)},bridge=vmbr0,firewall=1\n`,
      },
    });
    guestFw.set(vmid, {
      file: `firewall/${vmid}.fw`,
      text: `[OPTIONS]\nenable: 1\nipfilter: 1\n\n[IPSET ipfilter-net0]\n${ipOf(i)}\n\n[RULES]\nGROUP web\nIN SSH(ACCEPT) -source 198.51.100.0/24 -log info\nIN ACCEPT -p tcp -dport 8080:8090\nOUT DROP -p tcp -dport 25\n`,
    });
  }
  return {
    nodeName: 'pve1',
    cluster: {
      file: 'firewall/cluster.fw',
      text: '[OPTIONS]\nenable: 1\n\n[IPSET blacklist]\n203.0.113.0/28\n\n[group web]\nIN HTTP(ACCEPT)\nIN HTTPS(ACCEPT)\n',
    },
    guestFw,
    guests,
    localNetwork: '192.0.2.0/24',
  };
}

function frame(src: string, dst: string, smac: string): EthernetFrame {
  const p = (t: string) => t.split('.').reduce((a, b) => ((a << 8) | Number(b)) >>> 0, 0);
  return {
    dst: '02:00:00:00:00:02' as Mac,
    src: smac.toLowerCase() as Mac,
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
      src: p(src) as never,
      dst: p(dst) as never,
      payload: {
        kind: 'tcp',
        srcPort: 40000,
        dstPort: 80,
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

function proxmox() {
  const t0 = performance.now();
  const input = pveNodeInput(files()).value!;
  const t1 = performance.now();
  const compiled = compilePveFirewall(input);
  const text =
    renderPveRestore(compiled.filter4, 'filter').length +
    renderPveRestore(compiled.filter6, 'filter').length +
    renderPveIpsetRestore(compiled.ipsets).length +
    renderPveEbtablesRestore(compiled.ebtables).length;
  const t2 = performance.now();
  const model = pveNodeModel(input, compiled);
  const t3 = performance.now();
  let dropped = 0;
  let probes = 0;
  const uplink: PveEndpoint = { kind: 'port', bridge: 'vmbr0', port: 'eno1' };
  for (let i = 0; i < N; i++) {
    const me: PveEndpoint = { kind: 'guest', vmid: String(1000 + i), netid: 'net0' };
    const other: PveEndpoint = { kind: 'guest', vmid: String(1000 + ((i + 1) % N)), netid: 'net0' };
    const a = pveSimulate(model, frame('203.0.113.77', '192.0.2.100', mac(i)), me, other);
    const b = pveSimulate(model, frame('198.51.100.9', ipOf(i), '02:00:00:00:00:01'), uplink, me);
    probes += 2;
    if (a.verdict !== 'ACCEPT') dropped++;
    if (b.verdict !== 'ACCEPT') dropped++;
  }
  const t4 = performance.now();
  const rules = [...compiled.filter4.values()].reduce((n, r) => n + r.length, 0);
  return { read: t1 - t0, compile: t2 - t1, model: t3 - t2, trace: t4 - t3, probes, dropped, rules, text };
}

function libvirt(): number {
  const registry = filterRegistry();
  const bindings: NwFilterBinding[] = Array.from({ length: N }, (_, i) => ({
    portdev: `vnet${i}`,
    mac: mac(i).toLowerCase() as Mac,
    filter: 'clean-traffic',
    params: new Map([['IP', [ipOf(i)]]]),
    origin: { kind: 'binding', label: `bench binding vnet${i}` },
  }));
  const t0 = performance.now();
  const c = compileBindings(bindings, registry, { commands: false });
  renderEbtablesSave(c.nat);
  return performance.now() - t0;
}

// warm-up of both (JIT), then the measured runs
proxmox();
libvirt();
const p = proxmox();
const base = libvirt();
const compileTotal = p.read + p.compile + p.model;
console.log(`Proxmox node, ${N} VMs: ${p.rules} iptables rules, ${(p.text / 1024).toFixed(0)} KiB of restore text`);
console.log(
  `  read files ${p.read.toFixed(1)} ms, compile + render ${p.compile.toFixed(1)} ms, read into the model ${p.model.toFixed(1)} ms`,
);
console.log(
  `  trace ${p.probes} probes hop by hop: ${p.trace.toFixed(1)} ms (${((p.probes / p.trace) * 1000).toFixed(0)} probes/s; ${p.dropped} dropped, as expected: the DR-forwarded requests)`,
);
console.log(
  `baseline, same run: libvirt clean-traffic for ${N} interfaces (lvsdoctor's nwfilter compiler) ${base.toFixed(1)} ms`,
);
console.log(
  `ratio: Proxmox read+compile+model / libvirt compile = ${(compileTotal / base).toFixed(2)}×; compile+trace total ${(compileTotal + p.trace).toFixed(0)} ms`,
);
