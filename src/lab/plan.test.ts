import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../topology/load-scenario.ts';
import { compileHostRules } from '../trace/host-rules.ts';
import { openSession, probesOf, runProbe } from '../trace/session.ts';
import { l2View, lastSeen, onPath, probeKey } from './correlate.ts';
import { directorNft, ebtablesRestoreText } from './kernel-rules.ts';
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
