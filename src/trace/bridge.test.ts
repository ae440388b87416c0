import { describe, expect, it } from 'vitest';
import { arpProbe, bridgedPair, loggingFirewall, pathHops, tcpProbe, trace } from '../../test/support/tiny-net.ts';

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
