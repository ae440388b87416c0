import { describe, expect, it } from 'vitest';
import {
  arpProbe,
  bridgedPair,
  loggingFirewall,
  pathHops,
  tcpProbe,
  tinyDataplane,
  tinyScenario,
  trace,
} from '../../test/support/tiny-net.ts';
import { parseMac } from '../addr/mac.ts';
import { implicit } from '../source/origin.ts';

const KNOWN = { a: { neighbours: { '198.51.100.20': '52:54:00:00:00:0b', '198.51.100.2': '52:54:00:aa:00:01' } } };

describe('the Linux bridge (bridge.ts)', () => {
  it('passes a bridged frame through nat PREROUTING, filter FORWARD, iptables FORWARD and nat POSTROUTING, in that order', () => {
    // br_handle_frame → NF_BR_PRE_ROUTING; br_forward → NF_BR_FORWARD, where br_nf_forward_ip hands IPv4 to
    // iptables FORWARD after ebtables' filter FORWARD; br_forward_finish → NF_BR_POST_ROUTING.
    const log: string[] = [];
    const s = bridgedPair({
      a: { ...KNOWN.a },
      b: { listen: [80], neighbours: { '198.51.100.10': '52:54:00:00:00:0a' } },
    });
    const t = trace(s, tcpProbe('a', '198.51.100.20', 80), { firewalls: { host: loggingFirewall(log) } });
    expect(t.disposition).toBe('replied');
    expect(log.slice(0, 4)).toEqual([
      'ebtables nat PREROUTING vnet0→-',
      'ebtables filter FORWARD vnet0→vnet1',
      'iptables filter FORWARD vnet0→vnet1',
      'ebtables nat POSTROUTING -→vnet1',
    ]);
  });

  it('passes a frame for the bridge itself through nat PREROUTING then filter INPUT before the host stack', () => {
    // br_handle_frame_finish: a frame to the bridge's own address goes to br_pass_frame_up via NF_BR_LOCAL_IN.
    const log: string[] = [];
    const t = trace(bridgedPair(KNOWN), tcpProbe('a', '198.51.100.2', 22), {
      firewalls: { host: loggingFirewall(log) },
    });
    expect(log).toEqual(['ebtables nat PREROUTING vnet0→-', 'ebtables filter INPUT vnet0→-']);
    expect(t.disposition).toBe('refused');
    expect(t.end.place).toEqual({ node: 'host', iface: 'vnet0' });
  });

  it("sends the host's own frames through nat OUTPUT and filter OUTPUT once, then nat POSTROUTING per port", () => {
    // br_dev_xmit → NF_BR_LOCAL_OUT (nat, then filter) → br_flood/br_forward → NF_BR_POST_ROUTING per port.
    const log: string[] = [];
    const t = trace(bridgedPair(), arpProbe('host', '198.51.100.10'), { firewalls: { host: loggingFirewall(log) } });
    expect(t.disposition).toBe('replied');
    expect(log.slice(0, 4)).toEqual([
      'ebtables nat OUTPUT -→-',
      'ebtables filter OUTPUT -→-',
      'ebtables nat POSTROUTING -→vnet0',
      'ebtables nat POSTROUTING -→vnet1',
    ]);
  });

  it('floods a broadcast to every other port and gives the bridge device a copy through filter INPUT', () => {
    const log: string[] = [];
    const t = trace(bridgedPair(), arpProbe('a', '198.51.100.20'), { firewalls: { host: loggingFirewall(log) } });
    expect(t.disposition).toBe('replied');
    const bridged = t.hops.find((h) => h.steps.some((s) => s.kind === 'bridge'))!;
    expect(bridged.steps.find((s) => s.kind === 'bridge')).toMatchObject({ decision: 'flood', ports: ['vnet1'] });
    expect(log.slice(0, 5)).toEqual([
      'ebtables nat PREROUTING vnet0→-',
      'ebtables filter FORWARD vnet0→vnet1',
      'iptables filter FORWARD vnet0→vnet1',
      'ebtables nat POSTROUTING -→vnet1',
      'ebtables filter INPUT vnet0→-',
    ]);
  });

  it('ends a frame dropped in filter FORWARD there, and asks no later hook about it', () => {
    const log: string[] = [];
    const fw = loggingFirewall(log, (table, hook) => (table === 'filter' && hook === 'FORWARD' ? 'DROP' : undefined));
    const t = trace(bridgedPair({ a: KNOWN.a, b: { listen: [80] } }), tcpProbe('a', '198.51.100.20', 80), {
      firewalls: { host: fw },
    });
    expect(t.disposition).toBe('dropped-by-filter');
    expect(t.end.reason).toBe('ebtables -t filter FORWARD: FORWARD "policy: DROP"');
    expect(pathHops(t).at(-1)!.place).toEqual({ node: 'host', iface: 'vnet1' });
    expect(log).toEqual(['ebtables nat PREROUTING vnet0→-', 'ebtables filter FORWARD vnet0→vnet1']);
  });

  it('forwards a unicast frame to the one port its FDB knows for the destination (br_fdb_find_rcu)', () => {
    const t = trace(bridgedPair({ a: KNOWN.a, b: { listen: [80] } }), tcpProbe('a', '198.51.100.20', 80));
    const step = t.hops.flatMap((h) => h.steps).find((s) => s.kind === 'bridge');
    // The warm FDB (made from the topology) knows b behind vnet1, and a behind vnet0 already: nothing is learned.
    expect(step).toMatchObject({ kind: 'bridge', bridge: 'br0', decision: 'forward', ports: ['vnet1'] });
    expect(step).not.toHaveProperty('learned');
  });
});

/**
 * The same MAC in two VLANs of VLAN-filtering bridges (a VM cloned onto another tag): b (VLAN 20, host h1) and c
 * (VLAN 30, host h2) both have 52:54:00:00:00:99; h1's uplink is a trunk (2-4094 tagged) to h2. a (VLAN 20) knows b's
 * MAC already and sends it a SYN.
 */
function sameMacTwoVlans() {
  const X = '52:54:00:00:00:99';
  const trunk = { pvid: 1, untagged: [1], tagged: [[2, 4094]] as const };
  return tinyScenario(
    {
      h1: {
        kind: 'host',
        ifaces: {
          br0: { kind: 'bridge', mac: '52:54:00:aa:00:01', vlanFiltering: true, vlans: { pvid: 1, untagged: [1] } },
          t20a: {
            kind: 'tap',
            mac: 'fe:54:00:00:00:0a',
            master: 'br0',
            peer: 'a:eth0',
            vlans: { pvid: 20, untagged: [20] },
          },
          t20b: {
            kind: 'tap',
            mac: 'fe:54:00:00:00:0b',
            master: 'br0',
            peer: 'b:eth0',
            vlans: { pvid: 20, untagged: [20] },
          },
          up: { mac: '52:54:00:aa:00:02', master: 'br0', segment: 'lan', vlans: trunk },
        },
      },
      h2: {
        kind: 'host',
        ifaces: {
          br0: { kind: 'bridge', mac: '52:54:00:bb:00:01', vlanFiltering: true, vlans: { pvid: 1, untagged: [1] } },
          up: { mac: '52:54:00:bb:00:02', master: 'br0', segment: 'lan', vlans: trunk },
          t30c: {
            kind: 'tap',
            mac: 'fe:54:00:00:00:0c',
            master: 'br0',
            peer: 'c:eth0',
            vlans: { pvid: 30, untagged: [30] },
          },
        },
      },
      a: {
        ifaces: { eth0: { mac: '52:54:00:00:00:0a', addrs: ['198.51.100.10/24'], peer: 'h1:t20a' } },
        neighbours: { '198.51.100.20': X },
      },
      b: { ifaces: { eth0: { mac: X, addrs: ['198.51.100.20/24'], peer: 'h1:t20b' } }, listen: [80] },
      c: { ifaces: { eth0: { mac: X, addrs: ['198.51.100.30/24'], peer: 'h2:t30c' } } },
    },
    { lan: ['h1:up', 'h2:up'] },
  );
}

describe('the FDB of a VLAN-filtering bridge is keyed by (VLAN, MAC) (br_fdb_find(br, addr, vid))', () => {
  it('the same MAC behind an access port of VLAN 20 and behind the trunk: VLAN 20 frames go to the access port', () => {
    const t = trace(sameMacTwoVlans(), tcpProbe('a', '198.51.100.20', 80));
    expect(t.disposition).toBe('replied');
    const fwd = t.hops.flatMap((h) => h.steps).find((s) => s.kind === 'bridge' && s.bridge === 'br0');
    expect(fwd).toMatchObject({ decision: 'forward', ports: ['t20b'] });
    // Nothing of the conversation crossed the trunk to h2.
    expect(t.hops.some((h) => h.place.node === 'h2')).toBe(false);
  });

  it('learning in one VLAN does not move the entry of the same MAC in another', () => {
    const s = sameMacTwoVlans();
    const dp = tinyDataplane(s);
    const fdb = dp.nodes.get('h1')!.fdb.get('br0')!;
    const X = s.nodes.get('b')!.interfaces.get('eth0')!.mac;
    fdb.set(X, 30, { port: 'up', origin: implicit('learned') });
    expect([fdb.get(X, 20)?.port, fdb.get(X, 30)?.port]).toEqual(['t20b', 'up']);
    // Without VLAN filtering the key is the MAC alone (vid 0).
    const plain = tinyDataplane(bridgedPair()).nodes.get('host')!.fdb.get('br0')!;
    const B = parseMac('52:54:00:00:00:0b')!;
    plain.set(B, undefined, { port: 'vnet0', origin: implicit('learned') });
    expect(plain.get(B)?.port).toBe('vnet0');
  });
});
