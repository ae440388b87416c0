import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { implicit } from '../source/origin.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { evaluateIptables } from './iptables-eval.ts';
import type { IptChain, IptRule, IptTable } from './iptables-model.ts';

const o = implicit('test');

function chain(name: string, rules: Omit<IptRule, 'origin'>[], builtin = false): IptChain {
  return {
    name,
    builtin,
    ...(builtin ? { policy: 'ACCEPT' as const, policyOrigin: implicit(`${name} policy`) } : {}),
    rules: rules.map((r) => ({ ...r, origin: o })),
    origin: o,
  };
}

/** What libvirt installs for one port with `<tcp dstportstart='80'/>` accepted towards the guest and a final drop. */
const TABLE: IptTable = {
  family: 'ipv4',
  name: 'filter',
  chains: [
    chain('INPUT', [{ matches: [], target: { kind: 'jump', chain: 'libvirt-host-in' } }], true),
    chain(
      'FORWARD',
      [
        { matches: [], target: { kind: 'jump', chain: 'libvirt-in' } },
        { matches: [], target: { kind: 'jump', chain: 'libvirt-out' } },
        { matches: [], target: { kind: 'jump', chain: 'libvirt-in-post' } },
      ],
      true,
    ),
    chain('OUTPUT', [], true),
    chain('libvirt-in', [
      {
        matches: [{ kind: 'physdev', in: { name: 'vnet0', negated: false } }],
        target: { kind: 'goto', chain: 'FI-vnet0' },
      },
    ]),
    chain('libvirt-out', [
      {
        matches: [{ kind: 'physdev', out: { name: 'vnet0', negated: false }, isBridged: { negated: false } }],
        target: { kind: 'goto', chain: 'FO-vnet0' },
      },
    ]),
    chain('libvirt-in-post', [
      {
        matches: [{ kind: 'physdev', in: { name: 'vnet0', negated: false } }],
        target: { kind: 'verdict', verdict: 'ACCEPT' },
      },
    ]),
    chain('libvirt-host-in', []),
    chain('FO-vnet0', [
      {
        proto: { value: 6, negated: false },
        matches: [
          { kind: 'tcp', dport: { lo: 80, hi: 80, negated: false } },
          { kind: 'conntrack', state: { states: ['NEW', 'ESTABLISHED'], negated: false } },
          { kind: 'conntrack', dir: 'ORIGINAL' },
        ],
        target: { kind: 'verdict', verdict: 'ACCEPT' },
      },
      { matches: [], target: { kind: 'reject', with: 'icmp-port-unreachable' } },
    ]),
    chain('FI-vnet0', [
      {
        src: { addr: '192.0.2.200', prefixLen: 32, negated: true },
        matches: [],
        target: { kind: 'verdict', verdict: 'DROP' },
      },
    ]),
  ],
};

function tcp(src: string, dst: string, dport: number): EthernetFrame {
  return {
    src: mac('02:00:00:00:00:01'),
    dst: mac('02:00:73:b6:53:c8'),
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
      src: ipv4(src),
      dst: ipv4(dst),
      payload: {
        kind: 'tcp',
        srcPort: 40000,
        dstPort: dport,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 1000,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      },
    },
  };
}

describe('evaluateIptables', () => {
  it('accepts a new connection to port 80 of the guest through libvirt-out and FO', () => {
    const r = evaluateIptables(TABLE, 'FORWARD', tcp('198.51.100.1', '192.0.2.200', 80), {
      physdevOut: 'vnet0',
      physdevIsBridged: true,
      ctState: 'NEW',
      ctDir: 'ORIGINAL',
    });
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'FO-vnet0', index: 0 });
    expect(r.events.map((e) => `${e.kind}:${e.to}`)).toEqual([
      'jump:libvirt-in',
      'return:FORWARD',
      'jump:libvirt-out',
      'goto:FO-vnet0',
    ]);
  });

  it('rejects other traffic to the guest with the rule that decided', () => {
    const r = evaluateIptables(TABLE, 'FORWARD', tcp('198.51.100.1', '192.0.2.200', 22), {
      physdevOut: 'vnet0',
      physdevIsBridged: true,
      ctState: 'NEW',
      ctDir: 'ORIGINAL',
    });
    expect(r.verdict).toBe('REJECT');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'FO-vnet0', index: 1 });
  });

  it('drops a forwarded packet from the guest with a foreign source address (a DR director forwarding)', () => {
    const r = evaluateIptables(TABLE, 'FORWARD', tcp('203.0.113.7', '192.0.2.208', 80), { physdevIn: 'vnet0' });
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'FI-vnet0' });
  });

  it('returns from a goto target to the caller of the chain that jumped, then accepts in libvirt-in-post', () => {
    const r = evaluateIptables(TABLE, 'FORWARD', tcp('192.0.2.200', '198.51.100.1', 80), { physdevIn: 'vnet0' });
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'libvirt-in-post' });
    expect(r.events.map((e) => `${e.kind}:${e.to}`)).toEqual([
      'jump:libvirt-in',
      'goto:FI-vnet0',
      'return:FORWARD',
      'jump:libvirt-out',
      'return:FORWARD',
      'jump:libvirt-in-post',
    ]);
  });

  it('reports an unknown conntrack state as unsupported and falls through to the policy', () => {
    const r = evaluateIptables(TABLE, 'FORWARD', tcp('198.51.100.1', '192.0.2.200', 80), {
      physdevOut: 'vnet0',
      physdevIsBridged: true,
    });
    expect(r.visited.find((v) => v.chain === 'FO-vnet0' && v.index === 0)?.unsupported).toContain('conntrack');
    expect(r.verdict).toBe('REJECT');
  });

  it('uses the built-in policy for traffic of no libvirt port', () => {
    const r = evaluateIptables(TABLE, 'INPUT', tcp('198.51.100.1', '192.0.2.1', 22));
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy).toMatchObject({ kind: 'policy', chain: 'INPUT' });
  });
});
