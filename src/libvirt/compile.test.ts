import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { type Mac, mac } from '../addr/mac.ts';
import { evaluateEbtables } from '../netfilter/ebtables-eval.ts';
import { renderEbtablesChain, renderEbtablesList } from '../netfilter/ebtables-render.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import type { NwFilter, NwFilterBinding } from './nwfilter-model.ts';
import { readNwfilterXml } from './nwfilter-xml.ts';

const GUEST = '02:00:73:b6:53:c8' as Mac;

function bind(filter: string, params: Record<string, string[]> = {}): NwFilterBinding {
  return {
    portdev: 'vnet0',
    mac: GUEST,
    filter,
    params: new Map(Object.entries(params)),
    origin: { kind: 'binding', label: 'test' },
  };
}

function xml(text: string): NwFilter {
  const r = readNwfilterXml(text, 'test.xml');
  expect(r.issues).toEqual([]);
  return r.value!;
}

function chainText(c: ReturnType<typeof compileBinding>, name: string): string {
  const ch = c.nat.chains.find((x) => x.name === name);
  return ch ? renderEbtablesChain(ch, { style: 'nft' }) : `(no chain ${name})`;
}

function ipFrame(src: string, dst: string, dstMac: string): EthernetFrame {
  return {
    src: GUEST,
    dst: mac(dstMac),
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 47264,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 48,
      protocol: 6,
      src: ipv4(src),
      dst: ipv4(dst),
      payload: {
        kind: 'tcp',
        srcPort: 51643,
        dstPort: 80,
        seq: 3639534333,
        ack: 0,
        flags: 2,
        window: 14600,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      },
    },
  };
}

describe('compiled clean-traffic evaluated on the founding case', () => {
  const c = compileBinding(bind('clean-traffic', { IP: ['192.0.2.200'] }), filterRegistry());

  it('drops the director forwarding a client SYN to a real server, in I-vnet0-ipv4-ip', () => {
    const r = evaluateEbtables(c.nat, 'PREROUTING', ipFrame('192.243.119.145', '192.0.2.208', '02:00:73:b6:53:e2'), {
      inIface: 'vnet0',
    });
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'I-vnet0-ipv4-ip', index: 2 });
    if (r.decidedBy.kind === 'rule')
      expect(r.decidedBy.rule.origin.data).toMatchObject({ filter: 'no-ip-spoofing', priority: 1000 });
    expect(r.events.map((e) => (e.kind === 'jump' ? `→${e.to}` : `←${e.from}`))).toEqual([
      '→libvirt-I-vnet0',
      '→I-vnet0-mac',
      '←I-vnet0-mac',
      '→I-vnet0-ipv4-ip',
    ]);
  });

  it('accepts the director sending from its own address', () => {
    const r = evaluateEbtables(c.nat, 'PREROUTING', ipFrame('192.0.2.200', '192.0.2.226', '02:00:73:b6:53:e2'), {
      inIface: 'vnet0',
    });
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'libvirt-I-vnet0', index: 2 });
  });

  it('leaves other ports untouched', () => {
    const r = evaluateEbtables(c.nat, 'PREROUTING', ipFrame('192.243.119.145', '192.0.2.208', '02:00:73:b6:53:e2'), {
      inIface: 'eth0',
    });
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy.kind).toBe('policy');
  });
});

describe('compiling made-up filters', () => {
  it('interleaves root rules and sub-chain jumps by priority, and bumps sub-chain rules to the chain priority', () => {
    const top = xml(`<filter name='top' chain='root'>
  <rule action='accept' direction='out' priority='-900'><mac protocolid='0x88cc'/></rule>
  <filterref filter='ipv4-xyz'/>
  <rule action='drop' direction='out' priority='-600'><mac protocolid='ipv4'/></rule>
  <filterref filter='late'/>
</filter>`);
    const xyz = xml(`<filter name='ipv4-xyz' chain='ipv4-xyz' priority='-650'>
  <rule action='return' direction='out' priority='-700'><ip srcipaddr='$IP'/></rule>
  <rule action='drop' direction='out' priority='-640'/>
</filter>`);
    const late = xml(`<filter name='late' chain='arp-late' priority='300'>
  <rule action='drop' direction='inout' priority='100'/>
</filter>`);
    const c = compileBinding(bind('top', { IP: ['10.0.0.1'] }), filterRegistry([top, xyz, late]));
    expect(c.issues).toEqual([]);
    expect(chainText(c, 'libvirt-I-vnet0')).toBe(
      [
        'Bridge chain: libvirt-I-vnet0, entries: 4, policy: RETURN',
        '-p LLDP -j ACCEPT', // ebtables-nft names 0x88cc from /etc/ethertypes
        '-p IPv4 -j I-vnet0-ipv4-xyz',
        '-p IPv4 -j DROP',
        '-p ARP -j I-vnet0-arp-late',
      ].join('\n'),
    );
    // -700 is bumped to -650, so the RETURN still comes before the DROP at -640.
    expect(chainText(c, 'I-vnet0-ipv4-xyz')).toBe(
      [
        'Bridge chain: I-vnet0-ipv4-xyz, entries: 2, policy: RETURN',
        '-p IPv4 --ip-src 10.0.0.1 -j RETURN',
        '-j DROP',
      ].join('\n'),
    );
    expect(chainText(c, 'libvirt-O-vnet0')).toBe(
      ['Bridge chain: libvirt-O-vnet0, entries: 1, policy: RETURN', '-p ARP -j O-vnet0-arp-late'].join('\n'),
    );
  });

  it('swaps source and destination in the I copy of an inout rule', () => {
    const f = xml(`<filter name='io'>
  <rule action='accept' direction='inout'><ip srcipaddr='10.0.0.1' dstipaddr='10.0.0.2' protocol='tcp' srcportstart='1' dstportstart='2' srcmacaddr='00:11:22:33:44:55'/></rule>
</filter>`);
    const c = compileBinding(bind('io'), filterRegistry([f]));
    expect(chainText(c, 'libvirt-I-vnet0').split('\n')[1]).toBe(
      '-p IPv4 -d 00:11:22:33:44:55 --ip-src 10.0.0.2 --ip-dst 10.0.0.1 --ip-proto tcp --ip-sport 2 --ip-dport 1 -j ACCEPT',
    );
    expect(chainText(c, 'libvirt-O-vnet0').split('\n')[1]).toBe(
      '-p IPv4 -s 00:11:22:33:44:55 --ip-src 10.0.0.1 --ip-dst 10.0.0.2 --ip-proto tcp --ip-sport 1 --ip-dport 2 -j ACCEPT',
    );
  });

  it('iterates lists: one iterator in parallel, two iterators as a product, duplicates skipped, element access fixed', () => {
    const f = xml(`<filter name='lists' chain='ipv4'>
  <rule action='return' direction='out'><ip srcipaddr='$A' dstipaddr='$B'/></rule>
  <rule action='return' direction='out'><ip srcipaddr='$A[@1]' dstipaddr='$B[@2]'/></rule>
  <rule action='drop' direction='out'><ip srcipaddr='$A[1]' dstipaddr='$B'/></rule>
</filter>`);
    const c = compileBinding(
      bind('lists', { A: ['1.1.1.1', '2.2.2.2', '1.1.1.1'], B: ['9.9.9.1', '9.9.9.2', '9.9.9.1'] }),
      filterRegistry([f]),
    );
    expect(chainText(c, 'I-vnet0-ipv4').split('\n').slice(1)).toEqual([
      '-p IPv4 --ip-src 1.1.1.1 --ip-dst 9.9.9.1 -j RETURN',
      '-p IPv4 --ip-src 2.2.2.2 --ip-dst 9.9.9.2 -j RETURN',
      '-p IPv4 --ip-src 1.1.1.1 --ip-dst 9.9.9.1 -j RETURN',
      '-p IPv4 --ip-src 2.2.2.2 --ip-dst 9.9.9.1 -j RETURN',
      '-p IPv4 --ip-src 1.1.1.1 --ip-dst 9.9.9.2 -j RETURN',
      '-p IPv4 --ip-src 2.2.2.2 --ip-dst 9.9.9.2 -j RETURN',
      '-p IPv4 --ip-src 2.2.2.2 --ip-dst 9.9.9.1 -j DROP',
      '-p IPv4 --ip-src 2.2.2.2 --ip-dst 9.9.9.2 -j DROP',
    ]);
  });

  it('refuses unresolvable variables with libvirt wording and installs nothing', () => {
    const f = xml(
      `<filter name='needs'><rule action='accept' direction='out'><mac srcmacaddr='$GW' dstmacaddr='$OTHER[3]'/></rule></filter>`,
    );
    const c = compileBinding(bind('needs', { OTHER: ['00:00:00:00:00:01'] }), filterRegistry([f]));
    expect(c.mode).toBe('failed');
    expect(c.issues.map((i) => i.message)).toEqual([
      'Cannot instantiate filter due to unresolvable variables or unavailable list elements: GW, OTHER[3]',
    ]);
    expect(renderEbtablesList(c.nat, { style: 'nft' })).not.toContain('libvirt-');
  });

  it('leaves IP out of the unresolvable names when others are missing too (libvirt 9.0 reports only the others)', () => {
    const f = xml(
      `<filter name='needs'><rule action='accept' direction='out'><ip srcipaddr='$IP' dstipaddr='$V4'/></rule></filter>`,
    );
    const c = compileBinding(bind('needs', {}), filterRegistry([f]));
    expect(c.failure).toBe('Cannot instantiate filter due to unresolvable variables or unavailable list elements: V4');
  });

  it("takes a lone '$' for a variable with an empty name: the filter is defined, every binding refused", () => {
    const f = xml(
      `<filter name='dollar'><rule action='accept' direction='out'><ip srcipaddr='192.0.2.1' comment='$'/></rule></filter>`,
    );
    const alone = compileBinding(bind('dollar', {}), filterRegistry([f]));
    expect(alone.failure).toBe(
      'Cannot instantiate filter due to unresolvable variables or unavailable list elements: ',
    );
    const g = xml(
      `<filter name='dollar2'><rule action='accept' direction='out'><ip srcipaddr='$V4[1]' comment='$'/></rule></filter>`,
    );
    const two = compileBinding(bind('dollar2', { V4: ['192.0.2.1'] }), filterRegistry([g]));
    // The empty name prints nothing; a separator shows when it comes after another name (libvirt's order is random:
    // both `V4[1]` and `V4[1], ` were recorded; lvsdoctor's order is the order of reference).
    expect(two.failure).toBe(
      'Cannot instantiate filter due to unresolvable variables or unavailable list elements: V4[1], ',
    );
  });

  it('refuses IP missing with CTRL_IP_LEARNING=none, and uses DHCP-only rules with dhcp', () => {
    const none = compileBinding(bind('clean-traffic', { CTRL_IP_LEARNING: ['none'] }), filterRegistry());
    expect(none.mode).toBe('failed');
    expect(none.issues[0]!.message).toMatch(/unresolvable variables .*: IP$/);
    const dhcp = compileBinding(
      bind('clean-traffic', { CTRL_IP_LEARNING: ['dhcp'], DHCPSERVER: ['192.0.2.1'] }),
      filterRegistry(),
    );
    expect(dhcp.mode).toBe('dhcp-learning');
    expect(chainText(dhcp, 'libvirt-O-vnet0').split('\n')[1]).toBe(
      '-p IPv4 -d 02:00:73:b6:53:c8 --ip-src 192.0.2.1 --ip-proto udp --ip-sport 67 --ip-dport 68 -j ACCEPT',
    );
  });

  it('refuses a CTRL_IP_LEARNING value other than none/any/dhcp only when the address is to be learned', () => {
    // Recorded with libvirt 9.0 (virsh nwfilter-binding-create): the value is printed as given; case does not matter
    // for the known values (`NONE` reports the missing IP, `DHCP` learns); with IP given the value is never read.
    const bad = compileBinding(bind('clean-traffic', { CTRL_IP_LEARNING: ['Static'] }), filterRegistry());
    expect(bad.mode).toBe('failed');
    expect(bad.failure).toBe(
      "failed to parse configuration file filter 'clean-traffic' learning value 'Static' invalid.",
    );
    expect(bad.nat.chains.every((c) => c.rules.length === 0)).toBe(true);
    const none = compileBinding(bind('clean-traffic', { CTRL_IP_LEARNING: ['NONE'] }), filterRegistry());
    expect(none.failure).toBe(
      'Cannot instantiate filter due to unresolvable variables or unavailable list elements: IP',
    );
    expect(compileBinding(bind('clean-traffic', { CTRL_IP_LEARNING: ['DHCP'] }), filterRegistry()).mode).toBe(
      'dhcp-learning',
    );
    const given = compileBinding(
      bind('clean-traffic', { CTRL_IP_LEARNING: ['static'], IP: ['192.0.2.5'] }),
      filterRegistry(),
    );
    expect(given.mode).toBe('filter');
    expect(given.failure).toBeUndefined();
  });

  it('reports a missing referenced filter and a reference loop', () => {
    const a = xml(`<filter name='a'><filterref filter='b'/><filterref filter='ghost'/></filter>`);
    const b = xml(`<filter name='b'><filterref filter='a'/></filter>`);
    const c = compileBinding(bind('a'), filterRegistry([a, b]));
    expect(c.mode).toBe('failed');
    expect(c.issues.map((i) => i.code)).toEqual(['nwfilter-loop', 'nwfilter-missing']);
  });

  it('prints legacy user-chain policy ACCEPT when compiled for ebtables-legacy', () => {
    const c = compileBinding(bind('clean-traffic', { IP: ['192.0.2.200'] }), filterRegistry(), { style: 'legacy' });
    expect(renderEbtablesList(c.nat, { style: 'legacy' })).toContain(
      'Bridge chain: libvirt-I-vnet0, entries: 9, policy: ACCEPT\n-j I-vnet0-mac\n',
    );
  });
});
