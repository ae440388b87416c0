/**
 * Randomized LVS scenarios for the kernel-vs-simulator differential test: DR or NAT (Masq, with the real servers'
 * default route via the director or — a classic mistake — via the router, the director forwarding or not, real
 * servers on another port), filters on the director and the real servers (VIP in the IP lists or not), ARP and
 * rp_filter sysctls, weights and schedulers, the gateway's cached VIP entry or not, and probes to the VIP, to a
 * closed port of the VIP and to a real server directly. HA and routed layouts too: a BACKUP director with the same
 * table and no VIP, and real servers whose replies follow a policy rule (`ip rule from VIP lookup 100`).
 */
import type { GuestSpec, RealServerSpec, ScenarioSpec } from './scenario-builder.ts';

/** mulberry32: small, seedable, good enough for test variety. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const RANGES = ['192.0.2', '198.51.100', '203.0.113'] as const;

export interface RandomScenario {
  readonly spec: ScenarioSpec;
  /** What was drawn, in words (for reports). */
  readonly summary: string;
}

export function randomScenario(seed: number): RandomScenario {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const chance = (p: number) => r() < p;
  const prefix = pick(RANGES);
  const clientRange = pick(RANGES.filter((x) => x !== prefix));
  const vip = `${prefix}.${200 + Math.floor(r() * 50)}`;
  const port = pick([80, 8080]);
  const nat = chance(0.4);
  // NAT: where the real servers listen (IPVS-NAT may change the port; DR cannot).
  const rsPort = nat && chance(0.3) ? 8000 + Math.floor(r() * 100) : port;
  const hostCount = 1 + Math.floor(r() * 3);
  const hosts = Array.from({ length: hostCount }, (_, k) => ({
    name: `kvm${k + 1}`,
    ip: `${prefix}.${2 + k}`,
    mac: `52:54:00:aa:00:${(k + 1).toString(16).padStart(2, '0')}`,
  }));
  const filter = (ip: string): GuestSpec['filter'] => {
    switch (pick(['none', 'none', 'clean', 'clean-vip', 'no-ip', 'no-arp'] as const)) {
      case 'none':
        return undefined;
      case 'clean':
        return { name: 'clean-traffic', params: [['IP', ip]] };
      case 'clean-vip':
        return {
          name: 'clean-traffic',
          params: [
            ['IP', ip],
            ['IP', vip],
          ],
        };
      case 'no-ip':
        return { name: 'no-ip-spoofing', params: [['IP', ip]] };
      case 'no-arp':
        return { name: 'no-arp-spoofing', params: [['IP', ip]] };
    }
  };
  const sysctl = (rs: boolean): Record<string, number> => {
    const s: Record<string, number> = {
      'net.ipv4.conf.all.arp_ignore': rs ? pick([0, 1, 1, 2]) : pick([0, 0, 1]),
      'net.ipv4.conf.all.arp_announce': rs ? pick([0, 2, 2, 1]) : pick([0, 0, 2]),
      'net.ipv4.conf.eth0.rp_filter': pick([0, 1, 2]),
    };
    if (chance(0.3)) s['net.ipv4.conf.all.rp_filter'] = pick([0, 1, 2]);
    return s;
  };
  const dirIp = `${prefix}.10`;
  const director = {
    name: 'lb1',
    host: 'kvm1',
    ip: dirIp,
    mac: '52:54:00:00:00:10',
    vipOnEth0: chance(0.9),
    sysctl: { ...sysctl(false), ...(nat ? { 'net.ipv4.ip_forward': chance(0.85) ? 1 : 0 } : {}) },
    ...(chance(0.5) ? {} : { filter: filter(dirIp) }),
  } as ScenarioSpec['director'];
  const rsCount = 1 + Math.floor(r() * 3);
  const realServers: RealServerSpec[] = Array.from({ length: rsCount }, (_, k) => {
    const ip = `${prefix}.${21 + k}`;
    const f = filter(ip);
    return {
      name: `rs${k + 1}`,
      host: pick(hosts).name,
      ip,
      mac: `52:54:00:00:00:${(0x21 + k).toString(16)}`,
      weight: pick([0, 1, 1, 1, 2, 3]),
      vipOnLo: chance(nat ? 0.2 : 0.9),
      sysctl: sysctl(true),
      ...(f ? { filter: f } : {}),
      ...(nat ? { via: chance(0.8) ? ('director' as const) : ('router' as const) } : {}),
      ...(rsPort !== port ? { port: rsPort, listen: [rsPort] } : {}),
    };
  });
  // HA and routed layouts, drawn from a stream of their own so that the draws above stay what they were per seed:
  // a keepalived-like BACKUP director (same table, no VIP), and DR real servers whose replies from the VIP follow
  // an `ip rule` to table 100 (default via the router: healthy; via the director, which does not forward them).
  const r2 = rng(seed ^ 0x5eed);
  const backup: GuestSpec | undefined =
    r2() < 0.3
      ? {
          name: 'lb2',
          host: hosts[Math.floor(r2() * hosts.length)]!.name,
          ip: `${prefix}.11`,
          mac: '52:54:00:00:00:11',
          sysctl: sysctl(false),
        }
      : undefined;
  if (!nat)
    for (let k = 0; k < realServers.length; k++)
      if (r2() < 0.25)
        realServers[k] = { ...realServers[k]!, replyTable: r2() < 0.6 ? ('router' as const) : ('director' as const) };
  const sports = new Set<number>();
  const sport = () => {
    let p = 20000 + Math.floor(r() * 40000);
    while (sports.has(p)) p++;
    sports.add(p);
    return p;
  };
  const probes = [
    'probes:',
    '  - name: tcp-vip',
    `    tcp: ${vip}:${port}`,
    `    sport: ${sport()}`,
    '  - name: arp-vip',
    `    arp: ${vip}`,
  ];
  if (chance(0.3)) probes.push('  - name: tcp-closed-port', `    tcp: ${vip}:${port + 1}`, `    sport: ${sport()}`);
  if (chance(0.3))
    probes.push('  - name: tcp-rs1', `    tcp: ${realServers[0]!.ip}:${rsPort}`, `    sport: ${sport()}`);
  const spec: ScenarioSpec = {
    name: `lab-random-${seed}`,
    prefix,
    vip,
    port,
    scheduler: pick(['rr', 'wrr']),
    ...(nat ? { method: 'Masq' as const } : {}),
    director,
    ...(backup ? { backup } : {}),
    realServers,
    hosts,
    gateway: { ip: `${prefix}.1`, mac: '52:54:00:ff:00:01', cachedVip: chance(0.5) },
    client: { ip: `${clientRange}.${50 + Math.floor(r() * 50)}`, ...(chance(0.5) ? { ttl: 64 } : {}) },
    probes: probes.join('\n'),
  };
  const f = (g: GuestSpec) => (g.filter ? `${g.filter.name}(${g.filter.params.map(([, v]) => v).join(',')})` : 'none');
  const summary = [
    `director ${f(director)} vip-on-eth0=${director.vipOnEth0} ${JSON.stringify(director.sysctl)}`,
    ...(backup ? [`backup director lb2@${backup.host} (same table, no VIP)`] : []),
    ...realServers.map(
      (s) =>
        `${s.name}@${s.host} w=${s.weight} vip-on-lo=${s.vipOnLo}${s.via ? ` via=${s.via}` : ''}${s.replyTable ? ` replies-from-vip-via=${s.replyTable}` : ''}${s.port ? ` port=${s.port}` : ''} ${f(s)} ${JSON.stringify(s.sysctl)}`,
    ),
    `gateway cached-vip=${spec.gateway.cachedVip}, scheduler ${spec.scheduler}, ${nat ? 'NAT' : 'DR'}`,
  ].join('; ');
  return { spec, summary };
}
