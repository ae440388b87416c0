/**
 * Writes scenario directories from a compact description, the way an engineer would assemble them: virsh dumpxml
 * per guest, ip addr / ip route / sysctl per guest, ipvsadm -Ln for directors, and scenario.yaml.
 */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GuestSpec {
  readonly name: string;
  readonly host: string;
  readonly ip: string;
  readonly mac: string;
  /** `clean-traffic` etc. with parameters (repeated names allowed). */
  readonly filter?: { readonly name: string; readonly params: readonly (readonly [string, string])[] };
  readonly sysctl?: Readonly<Record<string, string | number>>;
  readonly kernel?: string;
}

export interface RealServerSpec extends GuestSpec {
  readonly weight: number;
  readonly vipOnLo: boolean;
  readonly listen?: readonly number[];
  /** A port other than the service's (DR cannot honour it). */
  readonly port?: number;
  /** The real server's default gateway: the router (default) or the director (needed for NAT). */
  readonly via?: 'router' | 'director';
  /** A tunl0 device (TUN): up, with the VIP on it instead of lo. */
  readonly tunl0?: 'up' | 'down';
  /**
   * Policy routing of the replies: `ip rule` sends packets from the VIP to table 100, whose default route goes via
   * the router or the director.
   */
  readonly replyTable?: 'router' | 'director';
}

export interface ScenarioSpec {
  readonly name: string;
  readonly prefix: string; // e.g. '198.51.100'
  readonly vip: string;
  readonly port: number;
  readonly scheduler: string;
  readonly director: GuestSpec & { readonly vipOnEth0: boolean };
  readonly realServers: readonly RealServerSpec[];
  readonly hosts: readonly {
    readonly name: string;
    readonly ip: string;
    readonly mac: string;
    readonly sysctl?: Readonly<Record<string, string | number>>;
    /** Custom nwfilter XML documents, written into the host's nwfilter-dir. */
    readonly filters?: readonly string[];
  }[];
  readonly gateway: { readonly ip: string; readonly mac: string; readonly cachedVip: boolean };
  readonly client: { readonly ip: string; readonly ttl?: number };
  readonly probes?: string;
  /** `persistent N` on the service. */
  readonly persistent?: number;
  /** Forwarding method of every real server (default Route). */
  readonly method?: 'Route' | 'Masq' | 'Tunnel';
  /** A second director with the same IPVS table and no VIP (a keepalived BACKUP). */
  readonly backup?: GuestSpec;
}

function domainXml(g: GuestSpec, tap: string, uuidSeed: number): string {
  const filter = g.filter
    ? `\n      <filterref filter='${g.filter.name}'>${g.filter.params.map(([k, v]) => `\n        <parameter name='${k}' value='${v}'/>`).join('')}\n      </filterref>`
    : '';
  return `<domain type='kvm' id='${uuidSeed}'>
  <name>${g.name}</name>
  <uuid>00000000-0000-4000-8000-${String(uuidSeed).padStart(12, '0')}</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>1</vcpu>
  <devices>
    <interface type='bridge'>
      <mac address='${g.mac}'/>
      <source bridge='br0'/>
      <target dev='${tap}'/>
      <model type='virtio'/>${filter}
      <alias name='net0'/>
    </interface>
  </devices>
</domain>
`;
}

function tunl0Text(state: 'up' | 'down', vip: string): string {
  return `5: tunl0@NONE: <NOARP${state === 'up' ? ',UP,LOWER_UP' : ''}> mtu 1480 qdisc noqueue state ${state === 'up' ? 'UNKNOWN' : 'DOWN'} group default qlen 1000
    link/ipip 0.0.0.0 brd 0.0.0.0
    inet ${vip}/32 scope global tunl0
       valid_lft forever preferred_lft forever
`;
}

function guestIpAddr(g: GuestSpec, extraEth0: string | undefined, loVip: string | undefined): string {
  return `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
${loVip ? `    inet ${loVip}/32 scope global lo:0\n       valid_lft forever preferred_lft forever\n` : ''}2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000
    link/ether ${g.mac} brd ff:ff:ff:ff:ff:ff
    inet ${g.ip}/24 brd ${g.ip.replace(/\.\d+$/, '.255')} scope global eth0
       valid_lft forever preferred_lft forever
${extraEth0 ? `    inet ${extraEth0}/24 scope global secondary eth0:0\n       valid_lft forever preferred_lft forever\n` : ''}`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

export function writeScenario(dir: string, s: ScenarioSpec): void {
  mkdirSync(dir, { recursive: true });
  const guests: GuestSpec[] = [s.director, ...(s.backup ? [s.backup] : []), ...s.realServers];
  const tapOf = new Map<string, string>();
  for (const h of s.hosts) {
    mkdirSync(join(dir, h.name), { recursive: true });
    if (h.sysctl)
      writeFileSync(
        join(dir, h.name, 'sysctl.txt'),
        Object.entries(h.sysctl)
          .map(([k, v]) => `${k} = ${v}\n`)
          .join(''),
      );
    if (h.filters) {
      mkdirSync(join(dir, h.name, 'nwfilter'), { recursive: true });
      h.filters.forEach((xml, k) => {
        writeFileSync(join(dir, h.name, 'nwfilter', `filter-${k}.xml`), xml);
      });
    }
    const mine = guests.filter((g) => g.host === h.name);
    mine.forEach((g, k) => {
      tapOf.set(g.name, `vnet${k}`);
    });
    const taps = mine
      .map(
        (g, k) =>
          `${10 + k}: vnet${k}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel master br0 state UNKNOWN group default qlen 1000\n    link/ether fe${g.mac.slice(2)} brd ff:ff:ff:ff:ff:ff\n`,
      )
      .join('');
    writeFileSync(
      join(dir, h.name, 'ip-addr.txt'),
      `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc mq master br0 state UP group default qlen 1000
    link/ether ${h.mac} brd ff:ff:ff:ff:ff:ff
3: br0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether ${h.mac} brd ff:ff:ff:ff:ff:ff
    inet ${h.ip}/24 brd ${h.ip.replace(/\.\d+$/, '.255')} scope global br0
${taps}`,
    );
  }
  guests.forEach((g, k) => {
    writeFileSync(join(dir, g.host, `${g.name}.xml`), domainXml(g, tapOf.get(g.name)!, k + 1));
    mkdirSync(join(dir, g.name), { recursive: true });
    const isDirector = g === s.director;
    const rs = s.realServers.find((r) => r.name === g.name);
    writeFileSync(
      join(dir, g.name, 'ip-addr.txt'),
      guestIpAddr(
        g,
        isDirector && s.director.vipOnEth0 ? s.vip : undefined,
        rs?.vipOnLo && !rs.tunl0 ? s.vip : undefined,
      ) + (rs?.tunl0 ? tunl0Text(rs.tunl0, s.vip) : ''),
    );
    const gw = rs?.via === 'director' ? s.director.ip : s.gateway.ip;
    const table100 = rs?.replyTable
      ? `default via ${rs.replyTable === 'director' ? s.director.ip : s.gateway.ip} dev eth0 table 100\n`
      : '';
    writeFileSync(
      join(dir, g.name, 'ip-route.txt'),
      `default via ${gw} dev eth0\n${s.prefix}.0/24 dev eth0 proto kernel scope link src ${g.ip}\n${table100}`,
    );
    if (rs?.replyTable)
      writeFileSync(
        join(dir, g.name, 'ip-rule.txt'),
        `0:\tfrom all lookup local\n100:\tfrom ${s.vip} lookup 100\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n`,
      );
    const sys = { 'net.ipv4.ip_forward': 0, ...(g.sysctl ?? {}) };
    writeFileSync(
      join(dir, g.name, 'sysctl.txt'),
      Object.entries(sys)
        .map(([k, v]) => `${k} = ${v}\n`)
        .join(''),
    );
  });
  const ipvs = [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    `TCP  ${s.vip}:${s.port} ${s.scheduler}${s.persistent ? ` persistent ${s.persistent}` : ''}`,
    ...s.realServers.map(
      (r) =>
        `  -> ${pad(`${r.ip}:${r.port ?? s.port}`, 26)}   ${pad(s.method ?? 'Route', 7)} ${pad(String(r.weight), 6)} 0          0`,
    ),
    '',
  ].join('\n');
  writeFileSync(join(dir, s.director.name, 'ipvsadm-Ln.txt'), ipvs);
  if (s.backup) writeFileSync(join(dir, s.backup.name, 'ipvsadm-Ln.txt'), ipvs);
  const yaml = [
    `name: ${s.name}`,
    'segments:',
    '  lan:',
    `    members: [${[...s.hosts.map((h) => `${h.name}:eth0`), 'gateway:eth0'].join(', ')}]`,
    'hosts:',
    ...s.hosts.flatMap((h) => [
      `  ${h.name}:`,
      `    ip-addr: ${h.name}/ip-addr.txt`,
      ...(h.sysctl ? [`    sysctl: ${h.name}/sysctl.txt`] : []),
      ...(h.filters ? [`    nwfilter-dir: ${h.name}/nwfilter`] : []),
      `    domains: [${guests
        .filter((g) => g.host === h.name)
        .map((g) => `${h.name}/${g.name}.xml`)
        .join(', ')}]`,
    ]),
    'guests:',
    ...guests.flatMap((g) => {
      const rs = s.realServers.find((r) => r.name === g.name);
      return [
        `  ${g.name}:`,
        ...(g.kernel ? [`    kernel: ${g.kernel}`] : []),
        `    ip-addr: ${g.name}/ip-addr.txt`,
        `    ip-route: ${g.name}/ip-route.txt`,
        ...(rs?.replyTable ? [`    ip-rule: ${g.name}/ip-rule.txt`] : []),
        `    sysctl: ${g.name}/sysctl.txt`,
        ...(g === s.director || g === s.backup ? [`    ipvsadm: ${g.name}/ipvsadm-Ln.txt`] : []),
        ...(rs?.listen ? [`    listen: [${rs.listen.map((p) => `tcp/${p}`).join(', ')}]`] : []),
      ];
    }),
    'gateway:',
    `  mac: ${s.gateway.mac}`,
    `  ip: ${s.gateway.ip}/24`,
    '  segment: lan',
    ...(s.gateway.cachedVip ? ['  neighbours:', `    ${s.vip}: ${s.director.mac}`] : []),
    'client:',
    `  ip: ${s.client.ip}`,
    ...(s.client.ttl ? [`  ttl: ${s.client.ttl}`] : []),
    s.probes ??
      ['probes:', `  - name: tcp-vip`, `    tcp: ${s.vip}:${s.port}`, '  - name: arp-vip', `    arp: ${s.vip}`].join(
        '\n',
      ),
    '',
  ].join('\n');
  writeFileSync(join(dir, 'scenario.yaml'), yaml);
}

/** A healthy two-server DR cluster on 198.51.100.0/24, to vary in tests. */
export function baseSpec(): ScenarioSpec {
  const rsSys = { 'net.ipv4.conf.all.arp_ignore': 1, 'net.ipv4.conf.all.arp_announce': 2 };
  return {
    name: 'made-up-dr',
    prefix: '198.51.100',
    vip: '198.51.100.100',
    port: 443,
    scheduler: 'wrr',
    director: {
      name: 'lb1',
      host: 'kvm1',
      ip: '198.51.100.10',
      mac: '52:54:00:00:00:10',
      vipOnEth0: true,
      kernel: '6.1.0-18-amd64',
    },
    realServers: [
      {
        name: 'web1',
        host: 'kvm1',
        ip: '198.51.100.21',
        mac: '52:54:00:00:00:21',
        weight: 3,
        vipOnLo: true,
        sysctl: rsSys,
        listen: [443],
      },
      {
        name: 'web2',
        host: 'kvm2',
        ip: '198.51.100.22',
        mac: '52:54:00:00:00:22',
        weight: 1,
        vipOnLo: true,
        sysctl: rsSys,
        listen: [443],
      },
    ],
    hosts: [
      { name: 'kvm1', ip: '198.51.100.2', mac: '52:54:00:aa:00:01' },
      { name: 'kvm2', ip: '198.51.100.3', mac: '52:54:00:aa:00:02' },
    ],
    gateway: { ip: '198.51.100.1', mac: '52:54:00:ff:00:01', cachedVip: false },
    client: { ip: '203.0.113.50' },
  };
}

/**
 * `baseSpec` as LVS-NAT: the director forwards and is the real servers' gateway, which listen on 8443 (without the
 * VIP) behind the VIP's 443.
 */
export function natBaseSpec(): ScenarioSpec {
  const b = baseSpec();
  return {
    ...b,
    method: 'Masq',
    director: { ...b.director, sysctl: { 'net.ipv4.ip_forward': 1 } },
    realServers: b.realServers.map((r) => ({
      ...r,
      vipOnLo: false,
      via: 'director' as const,
      port: 8443,
      listen: [8443],
    })),
  };
}

/**
 * keepalived's VMAC: the director holds the VIP on a macvlan `vrrp.51@eth0` with the VRRP MAC 00:00:5e:00:01:33 (its
 * eth0 does not answer ARP for it), one real server, probes `to-vip` (TCP 443) and `arp-vip`; `filter` on the
 * director's port (e.g. no-mac-spoofing, which drops the VMAC's ARP reply).
 */
export function writeVmacScenario(dir: string, name: string, filter?: string): void {
  const s = baseSpec();
  writeScenario(dir, {
    ...s,
    name,
    scheduler: 'rr',
    realServers: [s.realServers[1]!],
    director: {
      ...s.director,
      vipOnEth0: false,
      // keepalived with use_vmac: the base interface must not answer for the VIP.
      sysctl: { 'net.ipv4.conf.eth0.arp_ignore': 1 },
      ...(filter ? { filter: { name: filter, params: [] } } : {}),
    },
    probes: [
      'probes:',
      '  - name: to-vip',
      '    tcp: 198.51.100.100:443',
      '    sport: 43001',
      '  - name: arp-vip',
      '    arp: 198.51.100.100',
    ].join('\n'),
  });
  appendFileSync(
    join(dir, 'lb1/ip-addr.txt'),
    `3: vrrp.51@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 00:00:5e:00:01:33 brd ff:ff:ff:ff:ff:ff
    inet ${s.vip}/32 scope global vrrp.51
       valid_lft forever preferred_lft forever
`,
  );
}
