import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { check, diagnose } from '../src/diagnose/diagnose.ts';
import { FINDING_KINDS } from '../src/diagnose/findings/catalogue.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { baseSpec, type ScenarioSpec, writeScenario } from './scenario-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-find-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function loaded(spec: ScenarioSpec) {
  const dir = join(root, `f${n++}`);
  writeScenario(dir, spec);
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}

const base = baseSpec();
const ct = (ips: string[]) => ({ name: 'clean-traffic', params: ips.map((a) => ['IP', a] as const) });
const rs = (f: (r: ScenarioSpec['realServers'][number]) => Partial<ScenarioSpec['realServers'][number]>) =>
  base.realServers.map((r) => ({ ...r, ...f(r) }));

const fwd = { ...base.director, sysctl: { 'net.ipv4.ip_forward': 1 } };
const nat: ScenarioSpec = {
  ...base,
  method: 'Masq',
  director: fwd,
  realServers: rs(() => ({ vipOnLo: false, via: 'director' as const })),
};
const tun: ScenarioSpec = { ...base, method: 'Tunnel', realServers: rs(() => ({ tunl0: 'up' as const })) };

/** For every finding: a scenario that triggers it and a near-identical one that does not. */
const CASES: { code: string; trigger: ScenarioSpec; clean: ScenarioSpec }[] = [
  {
    code: 'director-anti-spoofing',
    trigger: { ...base, director: { ...base.director, filter: ct([base.director.ip, base.vip]) } },
    clean: { ...base, director: { ...base.director, filter: { name: 'no-mac-spoofing', params: [] } } },
  },
  {
    code: 'vip-arp-blocked',
    trigger: {
      ...base,
      director: { ...base.director, filter: { name: 'no-arp-spoofing', params: [['IP', base.director.ip]] } },
    },
    clean: {
      ...base,
      director: {
        ...base.director,
        filter: {
          name: 'no-arp-spoofing',
          params: [
            ['IP', base.director.ip],
            ['IP', base.vip],
          ],
        },
      },
    },
  },
  {
    code: 'rs-anti-spoofing',
    trigger: { ...base, realServers: rs((r) => ({ filter: ct([r.ip]) })) },
    clean: { ...base, realServers: rs((r) => ({ filter: ct([r.ip, base.vip]) })) },
  },
  {
    code: 'director-vip-missing',
    trigger: {
      ...base,
      director: { ...base.director, vipOnEth0: false },
      gateway: { ...base.gateway, cachedVip: true },
    },
    clean: { ...base, gateway: { ...base.gateway, cachedVip: true } },
  },
  {
    code: 'rs-vip-missing',
    trigger: { ...base, realServers: rs((r) => ({ vipOnLo: r.name !== 'web2' })) },
    clean: base,
  },
  {
    code: 'rs-arp-problem',
    trigger: { ...base, realServers: rs(() => ({ sysctl: {} })) },
    clean: base,
  },
  {
    code: 'dr-across-l3',
    trigger: { ...base, realServers: rs((r) => (r.name === 'web2' ? { ip: '203.0.113.22' } : {})) },
    clean: base,
  },
  {
    code: 'dr-port-remap',
    trigger: { ...base, realServers: rs((r) => (r.name === 'web1' ? { port: 8443 } : {})) },
    clean: base,
  },
  {
    code: 'persistence-sticks',
    trigger: { ...base, persistent: 360 },
    clean: base,
  },
  {
    code: 'ip-learning-director',
    trigger: { ...base, director: { ...base.director, filter: { name: 'clean-traffic', params: [] } } },
    clean: { ...base, director: { ...base.director, filter: { name: 'no-mac-spoofing', params: [] } } },
  },
  { code: 'nat-forwarding-off', trigger: { ...nat, director: base.director }, clean: nat },
  {
    code: 'nat-reply-bypasses-director',
    trigger: { ...nat, realServers: nat.realServers.map((r) => ({ ...r, via: 'router' as const })) },
    clean: nat,
  },
  {
    code: 'tun-rp-filter',
    trigger: {
      ...tun,
      realServers: tun.realServers.map((r) => ({ ...r, sysctl: { ...r.sysctl, 'net.ipv4.conf.all.rp_filter': 1 } })),
    },
    clean: {
      ...tun,
      realServers: tun.realServers.map((r) => ({ ...r, sysctl: { ...r.sysctl, 'net.ipv4.conf.all.rp_filter': 2 } })),
    },
  },
  { code: 'tun-no-ipip', trigger: { ...tun, realServers: rs(() => ({})) }, clean: tun },
  {
    // DR replies through a forwarding director: the VIP as source is a martian there.
    code: 'dr-reply-via-director',
    trigger: { ...base, director: fwd, realServers: rs(() => ({ via: 'director' as const })) },
    clean: { ...base, director: fwd },
  },
  {
    // … and through a director that does not forward.
    code: 'dr-reply-via-director',
    trigger: { ...base, realServers: rs(() => ({ via: 'director' as const })) },
    clean: base,
  },
  {
    code: 'no-usable-real-server',
    trigger: { ...base, realServers: rs(() => ({ weight: 0 })) },
    clean: { ...base, realServers: rs((r) => ({ weight: r.name === 'web1' ? 0 : 1 })) },
  },
];

describe('the findings catalogue', () => {
  it('has a trigger and a near-identical clean scenario for every configuration check it can build here', () => {
    const covered = new Set(CASES.map((c) => c.code));
    // The generic catch-alls explain whatever no specific kind does; scenarios.test.ts exercises them.
    const untestedHere = [
      'filter-drop',
      'probe-failed',
      'ipv6-vip-dropped',
      'keepalived-default-protocol',
      'keepalived-default-method',
      'vrrp-strict-drops',
      'vmac-blocked',
      'bridged-forward-drop',
      // a hypervisor's own nat rules: dr-host-* scenarios of the corpus (trigger and near-identical healthy controls)
      'host-nat-captures',
      // a routing Proxmox node's proxmox-firewall forward chain: the pve-nft-routed-* scenarios of the corpus
      'pve-host-forward-drop',
      // VRRP pairs: the ha-* scenarios of fixtures/scenarios (test/corpus.test.ts)
      'vrrp-split-brain',
      'vrrp-adverts-dropped',
      'vrrp-failover-broken',
      'vrrp-backup-adverts-dropped',
      // information about probes lvsdoctor adds: the nat-two-armed-* scenarios of the corpus
      'rs-direct-unreachable',
      // CTRL_IP_LEARNING=dhcp on a static guest: dr-rs-ip-learning-dhcp of the corpus
      // a guest's own iptables-save: dr-director-input-drops-vip-port, dr-rs-input-drops-http and their healthy twin
      // dr-director-input-restrictive-healthy in the corpus, and test/guest-firewall.test.ts
      'guest-firewall-drops',
      'ip-learning-dhcp-static',
      // conversations and connection listings need host iptables-save and ipvsadm -Lnc: test/conversation.test.ts
      'conntrack-invalid',
      'pmtu-blackhole',
      'ipvs-conn-deleted-server',
      'persistence-on-quiesced-server',
    ]; // these: their own tests below
    for (const k of FINDING_KINDS) if (!untestedHere.includes(k.code)) expect(covered.has(k.code), k.code).toBe(true);
  });

  for (const c of CASES) {
    it(`reports ${c.code} only where it applies`, () => {
      const bad = diagnose(loaded(c.trigger));
      expect(bad.findings.map((f) => f.code)).toContain(c.code);
      const good = diagnose(loaded(c.clean));
      expect(good.findings.map((f) => f.code)).not.toContain(c.code);
    });
  }

  it('finds the configuration faults without tracing (check)', () => {
    const f = check(loaded(CASES[0]!.trigger));
    expect(f.map((x) => x.code)).toContain('director-anti-spoofing');
    expect(check(loaded(base))).toEqual([]);
  });

  it('reports several faults in the order a packet meets them, and which fix unblocks which probe', () => {
    // Director filter drops the forwarded SYN; once fixed, the real servers' filters drop the SYN-ACK.
    const spec: ScenarioSpec = {
      ...base,
      director: { ...base.director, filter: ct([base.director.ip, base.vip]) },
      realServers: rs((r) => ({ filter: ct([r.ip]) })),
    };
    const report = diagnose(loaded(spec));
    const codes = report.findings.map((f) => f.code);
    expect(codes.indexOf('director-anti-spoofing')).toBeLessThan(codes.indexOf('rs-anti-spoofing'));
    const rsFinding = report.findings.find((f) => f.code === 'rs-anti-spoofing' && f.probes.includes('tcp-vip'))!;
    expect(rsFinding.after).toContain('director-anti-spoofing@kvm1:vnet0');
    const rsFix = report.fixes.find((f) => f.id === 'add-ip:kvm1:vnet1:198.51.100.100')!;
    expect(rsFix.requires).toEqual(['dr-director-filter:kvm1:vnet0']);
    expect(rsFix.verified).toBe(true);
    expect(rsFix.unblocks).toContain('tcp-vip');
    const first = report.fixes.find((f) => f.id === 'dr-director-filter:kvm1:vnet0')!;
    expect(first.verified).toBe(true);
    expect(first.unblocks).toEqual([]);
  });

  it('proves a sysctl fix for the ARP problem by the finding disappearing', () => {
    const report = diagnose(loaded({ ...base, realServers: rs(() => ({ sysctl: {} })) }));
    const fix = report.fixes.find((f) => f.id.startsWith('sysctl:web1:'))!;
    expect(fix.verified).toBe(true);
    expect(fix.clears).toContain('rs-arp-problem@web1:eth0');
    expect(fix.artifacts[0]!.content).toContain('net.ipv4.conf.all.arp_ignore = 1');
  });
});

describe('docs/findings.md', () => {
  it('documents every finding of the catalogue', async () => {
    const { readFileSync } = await import('node:fs');
    const doc = readFileSync('docs/findings.md', 'utf8');
    for (const k of FINDING_KINDS) expect(doc, k.code).toContain(`## ${k.code} (`);
  });
});

describe('IPv6 virtual services', () => {
  it('reports a director filter that drops IPv6, and not without the filter', async () => {
    const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
    const make = (example: string) => {
      const dir = join(root, `v6-${n++}`);
      cpSync(example, dir, { recursive: true });
      const f = join(dir, 'director1', 'ipvsadm-Ln.txt');
      writeFileSync(
        f,
        `${readFileSync(f, 'utf8')}TCP  [2001:db8::208]:80 rr\n  -> [2001:db8::226]:80             Route   1      0          0\n`,
      );
      const r = loadScenario(dir);
      expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
      return r.value!;
    };
    expect(check(make('examples/kvm-lvs-dr')).map((f) => f.code)).toContain('ipv6-vip-dropped');
    expect(check(make('examples/kvm-lvs-dr-fixed')).map((f) => f.code)).not.toContain('ipv6-vip-dropped');
  });
});

describe('keepalived directors', () => {
  const conf = (o: {
    protocol?: boolean;
    kind?: boolean;
    strict?: boolean;
    vmac?: boolean;
  }) => `! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
${o.strict ? '   vrrp_strict\n' : ''}}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 100
    advert_int 1
${o.vmac ? '    use_vmac\n' : ''}    virtual_ipaddress {
        192.0.2.208
    }
}
virtual_server 192.0.2.208 80 {
    delay_loop 6
    lb_algo rr
${o.kind === false ? '' : '    lb_kind DR\n'}${o.protocol === false ? '' : '    protocol TCP\n'}    real_server 192.0.2.226 80 {
        weight 2
        TCP_CHECK {
            connect_timeout 3
        }
    }
}
`;
  async function withKeepalived(example: string, text: string) {
    const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
    const dir = join(root, `ka-${n++}`);
    cpSync(example, dir, { recursive: true });
    writeFileSync(join(dir, 'director1', 'keepalived.conf'), text);
    const y = join(dir, 'scenario.yaml');
    writeFileSync(
      y,
      readFileSync(y, 'utf8').replace(
        'ipvsadm: director1/ipvsadm-Ln.txt   # ipvsadm -Ln',
        'keepalived: director1/keepalived.conf',
      ),
    );
    const r = loadScenario(dir);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    return r.value!;
  }
  const codes = async (example: string, o: Parameters<typeof conf>[0]) =>
    check(await withKeepalived(example, conf(o))).map((f) => f.code);
  const FIXED = 'examples/kvm-lvs-dr-fixed';

  it('programs IPVS from keepalived.conf when no ipvsadm listing is given', async () => {
    const l = await withKeepalived(FIXED, conf({}));
    expect(l.ipvs.get('r2-10105')?.services).toHaveLength(1);
    expect(diagnose(l).healthy).toBe(true);
  });

  it('reports a virtual_server without protocol (UDP) and only then', async () => {
    expect(await codes(FIXED, { protocol: false })).toContain('keepalived-default-protocol');
    expect(await codes(FIXED, {})).not.toContain('keepalived-default-protocol');
  });

  it('reports a virtual_server without lb_kind (NAT) and only then', async () => {
    expect(await codes(FIXED, { kind: false })).toContain('keepalived-default-method');
    expect(await codes(FIXED, {})).not.toContain('keepalived-default-method');
  });

  it('reports vrrp_strict without accept and only then', async () => {
    expect(await codes(FIXED, { strict: true })).toContain('vrrp-strict-drops');
    expect(await codes(FIXED, {})).not.toContain('vrrp-strict-drops');
  });

  it('reports use_vmac against no-mac-spoofing, not without the filter', async () => {
    expect(await codes('examples/kvm-lvs-dr', { vmac: true })).toContain('vmac-blocked');
    expect(await codes(FIXED, { vmac: true })).not.toContain('vmac-blocked');
  });
});

describe('a Docker-style FORWARD policy on the hypervisor', () => {
  const iptables = (policy: string) => `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [0:0]
:FORWARD ${policy} [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -j RETURN
COMMIT
`;
  async function withHostIptables(policy: string) {
    const { cpSync, readFileSync, writeFileSync } = await import('node:fs');
    const dir = join(root, `fwd-${n++}`);
    cpSync('examples/kvm-lvs-dr-fixed', dir, { recursive: true });
    writeFileSync(join(dir, 'host1', 'iptables-save.txt'), iptables(policy));
    writeFileSync(join(dir, 'host1', 'sysctl.txt'), 'net.bridge.bridge-nf-call-iptables = 1\n');
    const y = join(dir, 'scenario.yaml');
    writeFileSync(
      y,
      readFileSync(y, 'utf8').replace(
        '    domains: [host1/r2-10105.xml]',
        '    sysctl: host1/sysctl.txt\n    iptables-save: host1/iptables-save.txt\n    domains: [host1/r2-10105.xml]',
      ),
    );
    const r = loadScenario(dir);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    return r.value!;
  }

  it('drops bridged traffic through br_netfilter, and turning bridge-nf-call-iptables off is a verified fix', async () => {
    const report = diagnose(await withHostIptables('DROP'));
    const f = report.findings.find((x) => x.code === 'bridged-forward-drop');
    expect(f?.where).toBe('host1:vnet0');
    const fix = report.fixes.find((x) => x.id === 'sysctl:host1:net.bridge.bridge-nf-call-iptables=0');
    expect(fix?.verified).toBe(true);
    expect(fix?.keeps).toContain('no longer sees bridged traffic');
  });

  it('is not reported when the FORWARD policy accepts', async () => {
    const report = diagnose(await withHostIptables('ACCEPT'));
    expect(report.findings.map((x) => x.code)).not.toContain('bridged-forward-drop');
    expect(report.healthy).toBe(true);
  });
});

describe('hashing schedulers without fallback', () => {
  it('reports sh with a weight-0 server and no sh-fallback, not with the flag', async () => {
    const { cpSync, writeFileSync } = await import('node:fs');
    const make = (flags: string) => {
      const dir = join(root, `sh-${n++}`);
      cpSync('examples/kvm-lvs-dr-fixed', dir, { recursive: true });
      writeFileSync(
        join(dir, 'director1', 'ipvsadm-Ln.txt'),
        `IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  192.0.2.208:80 sh${flags}\n  -> 192.0.2.226:80               Route   2      0          0         \n  -> 192.0.2.227:80               Route   0      0          0         \n`,
      );
      return loadScenario(dir).value!;
    };
    const titles = (l: ReturnType<typeof make>) =>
      check(l)
        .filter((f) => f.code === 'no-usable-real-server')
        .map((f) => f.title);
    expect(titles(make('')).join()).toContain('sh without sh-fallback');
    expect(titles(make(' (sh-fallback)'))).toEqual([]);
  });
});

describe('dr-reply-via-director', () => {
  it('is explained by the martian drop at the director and fixed by routing replies to the router', () => {
    const r = diagnose(loaded({ ...base, director: fwd, realServers: rs(() => ({ via: 'director' as const })) }));
    const f = r.findings.find((x) => x.code === 'dr-reply-via-director')!;
    expect(f.where).toBe('web1');
    expect(f.probes).toContain('tcp-vip');
    expect(f.explanation).toMatch(/martian source \(accept_local=0\)/);
    const fix = r.fixes.find((x) => x.id === f.fixes[0])!;
    expect(fix.title).toMatch(/route replies via the router \(default via 198\.51\.100\.1\)/);
    expect(fix.verified).toBe(true);
  });
});
