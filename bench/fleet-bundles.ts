/**
 * A synthetic fleet of collector bundles, written as directories: `hosts` hypervisors × `guests` guests,
 * clean-traffic on every port, every guest collected, `clusters` LVS-DR clusters (a director and real servers on
 * different hosts), a router. Used by the fleet benchmarks (bench/import-fleet.ts, bench/web.ts) and the web app's
 * fleet test. Addresses are in 198.18.0.0/15 (RFC 2544, benchmarking).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIpv4, type Ipv4 } from '../src/addr/ipv4.ts';
import type { Mac } from '../src/addr/mac.ts';
import { filterRegistry } from '../src/libvirt/builtin-filters.ts';
import { compileBindings } from '../src/libvirt/compile.ts';
import { bindingForInterface, readDomainXml } from '../src/libvirt/domain-xml.ts';
import { renderEbtablesList } from '../src/netfilter/ebtables-render.ts';

export interface FleetShape {
  readonly hosts: number;
  readonly guests: number;
  readonly clusters: number;
}

/** Writes the bundles under `root`; returns their paths. */
export function writeFleetBundles(root: string, shape: FleetShape): string[] {
  const HOSTS = shape.hosts;
  const GUESTS = shape.guests;
  const CLUSTERS = shape.clusters;
  const RS_PER_CLUSTER = 3;
  // 198.18.0.0/15 (RFC 2544, benchmarking): one LAN for the whole fleet.
  const BASE = (198 << 24) | (18 << 16);
  const ip = (n: number) => formatIpv4(((BASE + n) >>> 0) as Ipv4);
  const GW = ip(1);
  const hostIp = (h: number) => ip(256 * 2 + h + 10);
  const guestIp = (h: number, g: number) => ip(256 * 8 + h * GUESTS + g);
  const vip = (c: number) => ip(256 * 4 + c + 10);
  const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
  const mac = (kind: number, n: number): Mac =>
    `02:${hex(kind, 2)}:${hex((n >> 16) & 0xff, 2)}:${hex((n >> 8) & 0xff, 2)}:${hex(n & 0xff, 2)}:01` as Mac;
  const hostMac = (h: number) => mac(0xa0, h);
  const guestMac = (h: number, g: number) => mac(0x01, h * GUESTS + g);
  const GW_MAC = '84:78:ac:00:00:01';

  interface Cmd {
    id: string;
    command: string;
    out: string;
    status?: string;
  }

  function writeBundle(root: string, kind: 'hypervisor' | 'guest', hostname: string, cmds: readonly Cmd[]): string {
    const dir = join(root, `lvsdoctor-bundle-${kind}-${hostname}`);
    mkdirSync(join(dir, 'cmd'), { recursive: true });
    const m = [
      'format-version\t1',
      `kind\t${kind}`,
      `hostname\t${hostname}`,
      'kernel\t6.1.0-18-amd64',
      'date\t2024-03-01T10:00:00Z',
    ];
    for (const c of cmds) {
      writeFileSync(join(dir, 'cmd', `${c.id}.out`), c.out);
      writeFileSync(join(dir, 'cmd', `${c.id}.err`), '');
      m.push(`cmd\t${c.id}\t${c.status ?? 'ok'}\t0\tcmd/${c.id}.out\tcmd/${c.id}.err\t${c.command}`);
    }
    writeFileSync(join(dir, 'manifest.tsv'), `${m.join('\n')}\n`);
    return dir;
  }

  const link = (ifindex: number, ifname: string, address: string, extra: Record<string, unknown> = {}) => ({
    ifindex,
    ifname,
    flags: ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'],
    mtu: 1500,
    operstate: 'UP',
    link_type: 'ether',
    address,
    ...extra,
  });
  const inet = (local: string, prefixlen: number, label: string) => ({
    family: 'inet',
    local,
    prefixlen,
    scope: 'global',
    label,
  });

  function domainXml(h: number, g: number): string {
    return `<domain type='kvm' id='${g + 1}'>
    <name>vm-${h}-${g}</name>
    <uuid>00000000-0000-4000-8000-${hex(h, 4)}${hex(g, 8)}</uuid>
    <devices>
      <interface type='bridge'>
        <mac address='${guestMac(h, g)}'/>
        <source bridge='br0'/>
        <target dev='vnet${g}'/>
        <model type='virtio'/>
        <filterref filter='clean-traffic'>
          <parameter name='IP' value='${guestIp(h, g)}'/>
        </filterref>
        <alias name='net0'/>
      </interface>
    </devices>
  </domain>
  `;
  }

  function bindingXml(h: number, g: number): string {
    return `<filterbinding>
    <owner>
      <name>vm-${h}-${g}</name>
      <uuid>00000000-0000-4000-8000-${hex(h, 4)}${hex(g, 8)}</uuid>
    </owner>
    <portdev name='vnet${g}'/>
    <mac address='${guestMac(h, g)}'/>
    <filterref filter='clean-traffic'>
      <parameter name='IP' value='${guestIp(h, g)}'/>
      <parameter name='MAC' value='${guestMac(h, g)}'/>
    </filterref>
  </filterbinding>
  `;
  }

  /** Cluster c: director on host (c*7) guest 0, real servers on the next hosts' guest 1. */
  function clusterOf(h: number, g: number): { c: number; role: 'director' | 'rs' } | undefined {
    for (let c = 0; c < CLUSTERS; c++) {
      const dh = (c * 7) % HOSTS;
      if (h === dh && g === 0) return { c, role: 'director' };
      for (let k = 1; k <= RS_PER_CLUSTER; k++) if (h === (dh + k) % HOSTS && g === 1) return { c, role: 'rs' };
    }
    return undefined;
  }

  function generate(root: string): string[] {
    const registry = filterRegistry();
    const paths: string[] = [];
    const sysctlGuest = (arpIgnore: number) =>
      [
        'net.ipv4.ip_forward = 0',
        `net.ipv4.conf.all.arp_ignore = ${arpIgnore}`,
        `net.ipv4.conf.all.arp_announce = ${arpIgnore ? 2 : 0}`,
        'net.ipv4.conf.all.rp_filter = 0',
        'net.ipv4.conf.eth0.rp_filter = 1',
      ].join('\n');
    for (let h = 0; h < HOSTS; h++) {
      const links = [
        link(1, 'lo', '00:00:00:00:00:00', { link_type: 'loopback', flags: ['LOOPBACK', 'UP', 'LOWER_UP'] }),
        link(2, 'eth0', hostMac(h), { master: 'br0', linkinfo: { info_kind: 'veth' } }),
        link(3, 'br0', hostMac(h), { linkinfo: { info_kind: 'bridge' } }),
        ...Array.from({ length: GUESTS }, (_, g) =>
          link(10 + g, `vnet${g}`, `fe${guestMac(h, g).slice(2)}`, { master: 'br0', linkinfo: { info_kind: 'tun' } }),
        ),
      ];
      const addrs = links.map((l) =>
        l.ifname === 'br0'
          ? { ...l, addr_info: [inet(hostIp(h), 15, 'br0')] }
          : l.ifname === 'lo'
            ? { ...l, addr_info: [inet('127.0.0.1', 8, 'lo')] }
            : { ...l, addr_info: [] },
      );
      // The bridge learned the neighbours' uplinks on eth0 (a warm LAN).
      const fdb = [
        ...[1, 2].map((d) => ({ mac: hostMac((h + d) % HOSTS), ifname: 'eth0', master: 'br0', state: '' })),
        { mac: GW_MAC, ifname: 'eth0', master: 'br0', state: '' },
        ...Array.from({ length: GUESTS }, (_, g) => ({
          mac: guestMac(h, g),
          ifname: `vnet${g}`,
          master: 'br0',
          state: '',
        })),
      ];
      const domains = Array.from({ length: GUESTS }, (_, g) => domainXml(h, g));
      const bindings = domains.flatMap((x) => {
        const d = readDomainXml(x, 'x').value!;
        return d.interfaces.flatMap((i) => (bindingForInterface(d, i).value ? [bindingForInterface(d, i).value!] : []));
      });
      const nat = renderEbtablesList(compileBindings(bindings, registry, { style: 'nft' }).nat, {
        style: 'nft',
        counters: true,
      });
      paths.push(
        writeBundle(root, 'hypervisor', `hv${h}`, [
          { id: 'ip-j-link', command: 'ip -j -d link show', out: JSON.stringify(links) },
          { id: 'ip-j-addr', command: 'ip -j -d addr show', out: JSON.stringify(addrs) },
          {
            id: 'ip-route',
            command: 'ip route show',
            out: `default via ${GW} dev br0\n198.18.0.0/15 dev br0 proto kernel scope link src ${hostIp(h)}\n`,
          },
          {
            id: 'ip-j-neigh',
            command: 'ip -j neigh show',
            out: JSON.stringify([{ dst: GW, dev: 'br0', lladdr: GW_MAC, state: ['REACHABLE'] }]),
          },
          {
            id: 'sysctl-net',
            command: 'net_sysctls',
            out: 'net.ipv4.ip_forward = 0\nnet.bridge.bridge-nf-call-iptables = 0\n',
          },
          { id: 'bridge-j-fdb', command: 'bridge -j fdb show', out: JSON.stringify(fdb) },
          { id: 'version-ebtables', command: 'ebtables --version', out: 'ebtables 1.8.9 (nf_tables)\n' },
          { id: 'ebtables-nat', command: 'ebtables -t nat -L --Lc', out: nat },
          {
            id: 'iptables-save',
            command: 'iptables-save -c',
            out: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n',
          },
          {
            id: 'virsh-list',
            command: 'virsh list --all --name',
            out: `${domains.map((_, g) => `vm-${h}-${g}`).join('\n')}\n\n`,
          },
          ...domains.map((out, g) => ({ id: `domain-vm-${h}-${g}`, command: `virsh dumpxml vm-${h}-${g}`, out })),
          { id: 'virsh-nwfilter-list', command: 'virsh nwfilter-list', out: ' UUID   Name\n----\n' },
          {
            id: 'virsh-binding-list',
            command: 'virsh nwfilter-binding-list',
            out: ` Port Dev   Filter\n----\n${domains.map((_, g) => ` vnet${g}  clean-traffic`).join('\n')}\n`,
          },
          ...domains.map((_, g) => ({
            id: `binding-vnet${g}`,
            command: `virsh nwfilter-binding-dumpxml vnet${g}`,
            out: bindingXml(h, g),
          })),
        ]),
      );
      for (let g = 0; g < GUESTS; g++) {
        const role = clusterOf(h, g);
        const lo = link(1, 'lo', '00:00:00:00:00:00', {
          link_type: 'loopback',
          addr_info: [inet('127.0.0.1', 8, 'lo'), ...(role?.role === 'rs' ? [inet(vip(role.c), 32, 'lo:0')] : [])],
        });
        const eth0 = link(2, 'eth0', guestMac(h, g), {
          addr_info: [
            inet(guestIp(h, g), 15, 'eth0'),
            ...(role?.role === 'director' ? [inet(vip(role.c), 15, 'eth0:0')] : []),
          ],
        });
        const cmds: Cmd[] = [
          { id: 'ip-j-link', command: 'ip -j -d link show', out: JSON.stringify([lo, eth0]) },
          { id: 'ip-j-addr', command: 'ip -j -d addr show', out: JSON.stringify([lo, eth0]) },
          {
            id: 'ip-route',
            command: 'ip route show',
            out: `default via ${GW} dev eth0\n198.18.0.0/15 dev eth0 proto kernel scope link src ${guestIp(h, g)}\n`,
          },
          {
            id: 'ip-j-neigh',
            command: 'ip -j neigh show',
            out: JSON.stringify([{ dst: GW, dev: 'eth0', lladdr: GW_MAC, state: ['STALE'] }]),
          },
          { id: 'sysctl-net', command: 'net_sysctls', out: sysctlGuest(role?.role === 'rs' ? 1 : 0) },
          {
            id: 'ss-listen',
            command: 'ss -Hltnu',
            out: `tcp LISTEN 0 128 0.0.0.0:22 0.0.0.0:*\n${role?.role === 'rs' ? 'tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*\n' : ''}`,
          },
        ];
        if (role?.role === 'director') {
          const rs = Array.from({ length: RS_PER_CLUSTER }, (_, k) => ((role.c * 7) % HOSTS) + k + 1);
          cmds.push({
            id: 'ipvsadm-Ln',
            command: 'ipvsadm -Ln',
            out: [
              'IP Virtual Server version 1.2.1 (size=4096)',
              'Prot LocalAddress:Port Scheduler Flags',
              '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
              `TCP  ${vip(role.c)}:80 rr`,
              ...rs.map((rh) => `  -> ${`${guestIp(rh % HOSTS, 1)}:80`.padEnd(28)}Route   1      0          0`),
              '',
            ].join('\n'),
          });
        } else cmds.push({ id: 'ipvsadm-Ln', command: 'ipvsadm -Ln', out: '', status: 'skipped' });
        paths.push(writeBundle(root, 'guest', `g${h}-${g}`, cmds));
      }
    }
    // The router.
    paths.push(
      writeBundle(root, 'guest', 'router', [
        { id: 'ip-j-link', command: 'ip -j -d link show', out: JSON.stringify([link(2, 'eth0', GW_MAC)]) },
        {
          id: 'ip-j-addr',
          command: 'ip -j -d addr show',
          out: JSON.stringify([link(2, 'eth0', GW_MAC, { addr_info: [inet(GW, 15, 'eth0')] })]),
        },
        { id: 'ip-route', command: 'ip route show', out: `198.18.0.0/15 dev eth0 proto kernel scope link src ${GW}\n` },
        {
          id: 'ip-j-neigh',
          command: 'ip -j neigh show',
          out: JSON.stringify(
            Array.from({ length: CLUSTERS }, (_, c) => ({
              dst: vip(c),
              dev: 'eth0',
              lladdr: guestMac((c * 7) % HOSTS, 0),
              state: ['REACHABLE'],
            })),
          ),
        },
        { id: 'sysctl-net', command: 'net_sysctls', out: 'net.ipv4.ip_forward = 1\n' },
      ]),
    );
    return paths;
  }
  return generate(root);
}
