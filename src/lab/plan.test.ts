import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { natBaseSpec, writeScenario } from '../../test/scenario-builder.ts';
import { compileHostRules } from '../topology/host-rules.ts';
import { loadScenario } from '../topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../trace/session.ts';
import { l2View, lastSeen, onPath, probeKey } from './correlate.ts';
import { directorNft, ebtablesRestoreText, ipvsadmRestoreText } from './kernel-rules.ts';
import { planLab } from './plan.ts';

const examples = join(import.meta.dirname, '..', '..', 'examples');
const loaded = loadScenario(join(examples, 'kvm-lvs-dr')).value!;

describe('the lab plan of the founding case', () => {
  const plan = planLab(loaded, 'lvsd-test-0-');

  it('gives every node and the segment a namespace of its own, all with the run prefix', () => {
    expect(plan.namespaces.map((n) => n.ns).sort()).toEqual(
      [
        'lvsd-test-0-client',
        'lvsd-test-0-gateway',
        'lvsd-test-0-host1',
        'lvsd-test-0-host2',
        'lvsd-test-0-r2-10105',
        'lvsd-test-0-r2-10106',
        'lvsd-test-0-seg0',
      ].sort(),
    );
  });

  it("joins each tap to its guest's NIC with a veth pair carrying the model's MACs", () => {
    const v = plan.veths.find((x) => x.a.ns === 'lvsd-test-0-host1' && x.a.name === 'vnet0');
    expect(v).toMatchObject({
      a: { mac: 'fe:00:73:b6:53:c8', master: 'br0' },
      b: { ns: 'lvsd-test-0-r2-10105', name: 'eth0', mac: '02:00:73:b6:53:c8' },
    });
  });

  it('plugs the uplinks and the gateway into the segment bridge', () => {
    const seg = plan.veths.filter((x) => x.b.ns === 'lvsd-test-0-seg0').map((x) => `${x.a.ns}:${x.a.name}`);
    expect(seg.sort()).toEqual(['lvsd-test-0-gateway:eth0', 'lvsd-test-0-host1:eth0', 'lvsd-test-0-host2:eth0']);
  });

  it('captures at every point where the simulator captures', () => {
    const session = openSession(loaded);
    const simPoints = new Set(probesOf(loaded).flatMap((p) => runProbe(session, p).captures.map((c) => c.point)));
    const labPoints = new Set(plan.captures.map((c) => c.point));
    for (const p of simPoints) expect(labPoints).toContain(p);
  });

  it("keeps the gateway's cached VIP entry and the real server's VIP on lo", () => {
    expect(plan.neighbours).toContainEqual({
      ns: 'lvsd-test-0-gateway',
      ip: '192.0.2.208',
      mac: '02:00:73:b6:53:c8',
      dev: 'eth0',
    });
    expect(plan.addrs).toContainEqual(
      expect.objectContaining({ ns: 'lvsd-test-0-r2-10106', dev: 'lo', cidr: '192.0.2.208/32' }),
    );
    expect(plan.sysctls.get('lvsd-test-0-r2-10106')).toContainEqual(['net.ipv4.conf.all.arp_ignore', '1']);
  });

  it('emulates the director as DR towards the real server a fresh IPVS picks', () => {
    const d = plan.directors[0]!;
    expect(d.services[0]).toMatchObject({ vip: '192.0.2.208', port: 80, firstPick: { ip: '192.0.2.226' } });
    const nft = directorNft(d, { kind: 'fresh' });
    expect(nft).toContain('type filter hook ingress device "eth0" priority 0;');
    expect(nft).toContain(
      'ether daddr 02:00:73:b6:53:c8 ip daddr 192.0.2.208 tcp dport 80 fwd ip to 192.0.2.226 device "eth0"',
    );
  });
});

describe('the compiled rules as ebtables-restore input', () => {
  it('declares every chain with its policy and appends the rules in order', () => {
    const text = ebtablesRestoreText(compileHostRules(loaded, 'host1', 'nft').nat);
    expect(text.split('\n').slice(0, 4)).toEqual([
      '*nat',
      ':PREROUTING ACCEPT',
      ':OUTPUT ACCEPT',
      ':POSTROUTING ACCEPT',
    ]);
    expect(text).toContain(':I-vnet0-ipv4-ip RETURN');
    expect(text).toContain('-A I-vnet0-ipv4-ip -p IPv4 --ip-src 192.0.2.200 -j RETURN\n-A I-vnet0-ipv4-ip -j DROP');
    expect(text.trimEnd().endsWith('COMMIT')).toBe(true);
  });
});

describe('the last point a probe was seen', () => {
  const session = openSession(loaded);
  const view = l2View(loaded.scenario);

  it("is the director's tap for the founding case's SYN, read from the simulator's captures", () => {
    const probe = loaded.scenario.probes.find((p) => p.name === 'http-to-vip')!;
    const t = runProbe(session, probe);
    expect(lastSeen(view, probeKey(loaded, probe), t.captures)).toMatchObject({
      rank: 2,
      stage: 'request',
      point: 'host1:vnet0',
    });
  });

  it('ignores copies a bridge floods towards a NIC that does not want them', () => {
    const frame = {
      dst: '02:00:73:b6:53:c8',
      src: '84:78:ac:27:6c:41',
      vlans: [],
      etherType: 0x0800,
      payload: { kind: 'raw', bytes: new Uint8Array() },
    } as const;
    // Gateway → director: on its way at host1, a flooded copy at host2 and at the real server.
    expect(onPath(view, 'host1:vnet0', frame as never)).toBe(true);
    expect(onPath(view, 'host1:br0', frame as never)).toBe(true);
    expect(onPath(view, 'host2:vnet0', frame as never)).toBe(false);
    expect(onPath(view, 'host2:br0', frame as never)).toBe(false);
    expect(onPath(view, 'r2-10106:eth0', frame as never)).toBe(false);
  });
});

describe('a NAT director', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-plan-nat-'));
  writeScenario(dir, { ...natBaseSpec(), name: 'plan-nat' });
  const nat = loadScenario(dir).value!;
  rmSync(dir, { recursive: true, force: true });
  const d = planLab(nat, 'lvsd-test-1-').directors[0]!;

  it('is planned as NAT towards every usable real server, in the listed order', () => {
    expect(d.services[0]).toMatchObject({
      vip: '198.51.100.100',
      port: 443,
      method: 'masq',
      dests: [
        { ip: '198.51.100.21', port: 8443, weight: 3 },
        { ip: '198.51.100.22', port: 8443, weight: 1 },
      ],
      firstPick: { ip: '198.51.100.21' },
    });
  });

  it('rewrites the destination at LOCAL_IN, sends it on with dup, and gives replies of its connections the VIP back', () => {
    const nft = directorNft(d, { kind: 'fresh' });
    expect(nft).not.toContain('table netdev');
    expect(nft).toContain('type filter hook input priority 98;');
    expect(nft).toContain(
      'ip daddr 198.51.100.100 tcp dport 443 ip daddr set 198.51.100.21 tcp dport set 8443 update @conn0 { ip saddr . tcp sport . ip daddr . tcp dport } dup to ip daddr device "eth0" drop',
    );
    expect(nft).toContain('type filter hook forward priority 100;');
    expect(nft).toContain(
      'ip daddr . tcp dport . ip saddr . tcp sport @conn0 ip saddr set 198.51.100.100 tcp sport set 443',
    );
  });

  it('spreads flows by weight over the real servers for lab up, one server per connection', () => {
    const nft = directorNft(d, { kind: 'spread' });
    expect(nft).toContain(
      'ip daddr set jhash ip saddr . tcp sport mod 4 seed 0x6c766473 map { 0 : 198.51.100.21, 1 : 198.51.100.21, 2 : 198.51.100.21, 3 : 198.51.100.22 }',
    );
    expect(nft).toContain('tcp dport set 8443 update');
  });

  it('programs real IPVS with ipvsadm -R where the kernel has it', () => {
    expect(ipvsadmRestoreText(d).split('\n')).toEqual([
      '-A -t 198.51.100.100:443 -s wrr',
      '-a -t 198.51.100.100:443 -r 198.51.100.21:8443 -m -w 3',
      '-a -t 198.51.100.100:443 -r 198.51.100.22:8443 -m -w 1',
      '',
    ]);
  });

  it('ranks the rewritten request and the real server’s own reply between the request and the final reply', () => {
    const probe = nat.scenario.probes.find((p) => p.kind === 'tcp')!;
    const key = probeKey(nat, probe);
    expect([...key.natDests].sort()).toEqual(['198.51.100.21:8443', '198.51.100.22:8443']);
    const t = runProbe(openSession(nat), probe);
    expect(t.disposition).toBe('replied');
    expect(lastSeen(l2View(nat.scenario), key, t.captures)).toMatchObject({
      rank: 4,
      stage: 'reply',
      point: 'client:eth0',
    });
  });
});

describe('a service without a usable real server', () => {
  it('is rejected at LOCAL_IN with port unreachable, as IPVS does', () => {
    const d = planLab(loaded, 'lvsd-test-2-').directors[0]!;
    const none = { ...d, services: d.services.map((s) => ({ ...s, dests: [] })) };
    const nft = directorNft(none, { kind: 'fresh' });
    expect(nft).not.toContain('fwd');
    expect(nft).toContain('ip daddr 192.0.2.208 tcp dport 80 reject with icmp type port-unreachable');
  });
});

describe('the lab plan of policy routing', () => {
  it('adds routes to their tables (named ones numbered alike in routes and rules) and the non-default rules', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-plan-rules-'));
    try {
      const s = natBaseSpec();
      writeScenario(dir, {
        ...s,
        method: 'Route',
        realServers: [{ ...s.realServers[0]!, via: 'router', vipOnLo: true, replyTable: 'router' }],
      });
      const plan = planLab(loadScenario(dir).value!, 'lvsd-test-1-');
      const web1 = 'lvsd-test-1-web1';
      expect(plan.routes.filter((r) => r.ns === web1).map((r) => r.args.join(' '))).toContain(
        'default via 198.51.100.1 dev eth0 table 100',
      );
      // The kernel's own rules (0 local, 32766 main, 32767 default) are not added again.
      expect(plan.rules.filter((r) => r.ns === web1).map((r) => r.args.join(' '))).toEqual([
        'priority 100 from 198.51.100.100/32 lookup 100',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
