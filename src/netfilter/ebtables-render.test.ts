import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { implicit } from '../source/origin.ts';
import type { EbRule, EbTable } from './ebtables-model.ts';
import { renderEbtablesList, renderEbtablesRule, renderMacAndMask } from './ebtables-render.ts';

const origin = implicit('test');
const rule = (r: Omit<EbRule, 'origin'>): EbRule => ({ ...r, origin });

describe('renderEbtablesRule', () => {
  it('prints well-known MACs by name and masks only when not all ones', () => {
    expect(renderMacAndMask(mac('ff:ff:ff:ff:ff:ff'), undefined, 'nft')).toBe('Broadcast');
    expect(renderMacAndMask(mac('01:80:c2:00:00:00'), undefined, 'nft')).toBe('BGA');
    expect(renderMacAndMask(mac('01:00:00:00:00:00'), mac('01:00:00:00:00:00'), 'nft')).toBe('Multicast');
    expect(renderMacAndMask(mac('00:00:00:00:00:00'), mac('01:00:00:00:00:00'), 'nft')).toBe('Unicast');
    expect(renderMacAndMask(mac('02:00:73:b6:53:c8'), mac('ff:ff:ff:ff:ff:ff'), 'legacy')).toBe('2:0:73:b6:53:c8');
    expect(renderMacAndMask(mac('02:00:73:b6:53:00'), mac('ff:ff:ff:ff:ff:00'), 'nft')).toBe(
      '02:00:73:b6:53:00/ff:ff:ff:ff:ff:00',
    );
  });

  it('prints ethertypes the way each implementation does', () => {
    const rarp = rule({
      proto: { kind: 'ethertype', value: 0x8035, negated: false },
      matches: [],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
    });
    expect(renderEbtablesRule(rarp, { style: 'nft' })).toBe('-p RARP -j ACCEPT');
    expect(renderEbtablesRule(rarp, { style: 'legacy' })).toBe('-p 0x8035 -j ACCEPT');
    const len = rule({
      proto: { kind: 'length', negated: true },
      matches: [],
      target: { kind: 'verdict', verdict: 'DROP' },
    });
    expect(renderEbtablesRule(len, { style: 'legacy' })).toBe('-p ! Length -j DROP');
  });

  it('prints interfaces, negations, IP masks and ranges in ebtables order', () => {
    const r = rule({
      proto: { kind: 'ethertype', value: 0x0800, negated: false },
      src: { addr: mac('02:00:73:b6:53:c8'), negated: true },
      in: { name: 'vnet+', negated: false },
      out: { name: 'eth0', negated: true },
      matches: [
        {
          kind: 'ip',
          src: { addr: ipv4('10.1.0.0'), mask: 0xffff8000, negated: false },
          dst: { addr: ipv4('10.0.0.0'), mask: 0xff00ff00, negated: true },
          tos: { value: 0x3f, negated: false },
          proto: { value: 112, negated: false },
          dport: { lo: 80, hi: 88, negated: true },
        },
      ],
      target: { kind: 'jump', chain: 'x' },
      counters: { packets: 3, bytes: 180 },
    });
    expect(renderEbtablesRule(r, { style: 'nft', counters: true })).toBe(
      '-p IPv4 -s ! 02:00:73:b6:53:c8 -i vnet+ -o ! eth0 --ip-src 10.1.0.0/17 --ip-dst ! 10.0.0.0/255.0.255.0 --ip-tos 0x3F --ip-proto vrrp --ip-dport ! 80:88 -j x , pcnt = 3 -- bcnt = 180',
    );
  });

  it('prints ARP opcodes by name and VLAN encapsulation per implementation', () => {
    const r = rule({
      proto: { kind: 'ethertype', value: 0x8100, negated: false },
      matches: [{ kind: 'vlan', id: { value: 291, negated: false }, encap: { value: 0x0806, negated: false } }],
      target: { kind: 'verdict', verdict: 'CONTINUE' },
    });
    // ebtables-nft prints `%4.4X`; legacy ebtables a name when it has one.
    expect(renderEbtablesRule(r, { style: 'nft' })).toBe('-p 802_1Q --vlan-id 291 --vlan-encap 0806 -j CONTINUE');
    expect(renderEbtablesRule(r, { style: 'legacy' })).toBe('-p 802_1Q --vlan-id 291 --vlan-encap ARP -j CONTINUE');
    // What libvirt's `encap-protocol='ipv6'` installs: 34525 read as hex, 16 bits kept (0x4525).
    const v6 = rule({
      proto: { kind: 'ethertype', value: 0x8100, negated: false },
      matches: [{ kind: 'vlan', encap: { value: 0x4525, negated: true } }],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
    });
    expect(renderEbtablesRule(v6, { style: 'nft' })).toBe('-p 802_1Q --vlan-encap ! 4525 -j ACCEPT');
    expect(renderEbtablesRule(v6, { style: 'legacy' })).toBe('-p 802_1Q --vlan-encap ! 4525 -j ACCEPT');
    const a = rule({
      proto: { kind: 'ethertype', value: 0x0806, negated: false },
      matches: [
        {
          kind: 'arp',
          op: { value: 2, negated: true },
          ptype: { value: 0x0800, negated: false },
          gratuitous: { negated: false },
        },
      ],
      target: { kind: 'verdict', verdict: 'DROP' },
    });
    expect(renderEbtablesRule(a, { style: 'nft' })).toBe(
      '-p ARP --arp-op ! Reply --arp-ptype 0x800 --arp-gratuitous -j DROP',
    );
  });
});

describe('renderEbtablesList', () => {
  const t: EbTable = {
    name: 'nat',
    chains: [
      { name: 'PREROUTING', builtin: true, policy: 'ACCEPT', policyOrigin: origin, origin, rules: [] },
      { name: 'OUTPUT', builtin: true, policy: 'ACCEPT', policyOrigin: origin, origin, rules: [] },
      { name: 'POSTROUTING', builtin: true, policy: 'ACCEPT', policyOrigin: origin, origin, rules: [] },
      { name: 'zeta', builtin: false, policy: 'RETURN', policyOrigin: origin, origin, rules: [] },
      { name: 'Alpha', builtin: false, policy: 'DROP', policyOrigin: origin, origin, rules: [] },
    ],
  };

  it('sorts user chains by name in nft style and keeps creation order in legacy style', () => {
    expect(renderEbtablesList(t, { style: 'nft' })).toContain(
      'policy: ACCEPT\n\nBridge chain: Alpha, entries: 0, policy: DROP\n\nBridge chain: zeta',
    );
    expect(renderEbtablesList(t, { style: 'legacy' })).toContain(
      'policy: ACCEPT\n\nBridge chain: zeta, entries: 0, policy: RETURN\n\nBridge chain: Alpha',
    );
  });

  it('can list selected chains only', () => {
    expect(renderEbtablesList(t, { style: 'nft', chains: ['zeta'] })).toBe(
      'Bridge table: nat\n\nBridge chain: zeta, entries: 0, policy: RETURN\n',
    );
  });
});
