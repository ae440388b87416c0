/**
 * A hypervisor's whole nat table (issue 14): DNAT/REDIRECT read and evaluated in PREROUTING, MASQUERADE port ranges,
 * and the conntrack bindings that apply a connection's first translation to the rest and reverse it on replies.
 */
import { describe, expect, it } from 'vitest';
import { formatIpv4, type Ipv4, ipv4 } from '../addr/ipv4.ts';
import { MAC_ZERO } from '../addr/mac.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { renderIptablesRule } from '../netfilter/iptables-render.ts';
import { formatIssue } from '../source/issue.ts';
import { ETHERTYPE_IPV4, type EthernetFrame, type Ipv4Packet } from '../wire/types.ts';
import { Conntrack } from './conntrack.ts';
import { natChain } from './firewall.ts';

function hostNat(...rules: string[]) {
  const text = ['*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]'];
  const r = readIptablesSave(
    [...text, ':POSTROUTING ACCEPT [0:0]', ':DOCKER - [0:0]', ...rules, 'COMMIT', ''].join('\n'),
    'kvm1/iptables-save.txt',
    'ipv4',
    ['nat'],
    { wholeNat: true },
  );
  return { table: r.value!.find((t) => t.name === 'nat')!, issues: r.issues.map((i) => formatIssue(i)) };
}

function tcp(src: string, sport: number, dst: string, dport: number, flags = 2): Ipv4Packet {
  return {
    kind: 'ipv4',
    tos: 0,
    id: 1,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 62,
    protocol: 6,
    src: ipv4(src),
    dst: ipv4(dst),
    payload: {
      kind: 'tcp',
      srcPort: sport,
      dstPort: dport,
      seq: 1,
      ack: 0,
      flags,
      window: 1000,
      urgent: 0,
      options: [],
      payload: new Uint8Array(),
    },
  };
}

const frame = (p: Ipv4Packet): EthernetFrame => ({
  dst: MAC_ZERO,
  src: MAC_ZERO,
  vlans: [],
  etherType: ETHERTYPE_IPV4,
  payload: p,
});

const local = (addrs: string[]) => (a: Ipv4) => (addrs.map(ipv4).includes(a) ? 'LOCAL' : 'UNICAST');

describe("a hypervisor's nat table", () => {
  it('reads DNAT, REDIRECT and MASQUERADE --to-ports and saves them back as iptables-save prints them', () => {
    const rules = [
      '-A PREROUTING -i br0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128',
      '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
      '-A POSTROUTING -s 192.168.122.0/24 ! -d 192.168.122.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535',
    ];
    const { table, issues } = hostNat(...rules);
    expect(issues).toEqual([]);
    const rendered = table.chains.flatMap((c) => c.rules.map((r) => renderIptablesRule(c.name, r, 'ipv4')));
    expect(rendered.sort()).toEqual([...rules].sort());
  });

  it('says what it leaves out, with file and line: an address range in DNAT, a port range in REDIRECT, NETMAP', () => {
    const { issues } = hostNat(
      '-A PREROUTING -p tcp -j DNAT --to-destination 172.17.0.2-172.17.0.9',
      '-A PREROUTING -p tcp -j REDIRECT --to-ports 3128-3130',
      '-A PREROUTING -d 192.0.2.0/24 -j NETMAP --to 198.51.100.0/24',
    );
    const text = issues.join('\n');
    expect(text).toMatch(/kvm1\/iptables-save\.txt:7: warning: .*DNAT.*not modelled.*traced untranslated/);
    expect(text).toMatch(/:8: warning: .*REDIRECT --to-ports '3128-3130' is not modelled/);
    expect(text).toMatch(/:9: warning: .*target NETMAP is not modelled/);
    // And what NETMAP means for the verdict, once per chain and target.
    expect(text).toMatch(/:9: warning: nat PREROUTING -j NETMAP .*rewrites the destination/);
  });

  it('DNATs in PREROUTING only what -m addrtype --dst-type LOCAL names (a published Docker port, not a VIP)', () => {
    const { table } = hostNat(
      '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
      '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.2:80',
    );
    const types = local(['198.51.100.2']);
    const toHost = natChain(
      table,
      'PREROUTING',
      frame(tcp('203.0.113.50', 40000, '198.51.100.2', 80)),
      {
        inIface: 'br0',
        addrType: types,
      },
      undefined,
    );
    expect(toHost?.dnat && [formatIpv4(toHost.dnat.to), toHost.dnat.toPort, toHost.ruleNumber]).toEqual([
      '172.17.0.2',
      80,
      1,
    ]);
    const toVip = frame(tcp('203.0.113.50', 40000, '198.51.100.100', 80));
    expect(natChain(table, 'PREROUTING', toVip, { inIface: 'br0', addrType: types }, undefined)).toBeUndefined();
  });

  it('REDIRECT goes to the in interface address given, and drops without one (NF_DROP)', () => {
    const { table } = hostNat('-A PREROUTING -i br0 -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 3128');
    const f = frame(tcp('203.0.113.50', 40000, '198.51.100.100', 80));
    const s = natChain(table, 'PREROUTING', f, { inIface: 'br0' }, ipv4('198.51.100.2'));
    expect(s?.dnat && `${formatIpv4(s.dnat.to)}:${s.dnat.toPort}`).toBe('198.51.100.2:3128');
    expect(natChain(table, 'PREROUTING', f, { inIface: 'br0' }, undefined)?.verdict).toBe('DROP');
  });

  it('MASQUERADE --to-ports keeps a source port inside the range and takes the first of it otherwise', () => {
    const { table } = hostNat('-A POSTROUTING -s 192.168.122.0/24 -p tcp -j MASQUERADE --to-ports 1024-65535');
    const inRange = natChain(
      table,
      'POSTROUTING',
      frame(tcp('192.168.122.50', 40000, '198.51.100.100', 80)),
      {
        outIface: 'br0',
      },
      ipv4('198.51.100.3'),
    );
    expect(inRange?.snat && [formatIpv4(inRange.snat.to), inRange.snat.toPort]).toEqual(['198.51.100.3', 40000]);
    const low = natChain(
      table,
      'POSTROUTING',
      frame(tcp('192.168.122.50', 700, '198.51.100.100', 80)),
      {
        outIface: 'br0',
      },
      ipv4('198.51.100.3'),
    );
    expect(low?.snat?.toPort).toBe(1024);
  });
});

describe('conntrack NAT bindings', () => {
  it('finds the rest of a connection by its original tuple and its replies by the translated one', () => {
    const ct = new Conntrack();
    const syn = tcp('203.0.113.50', 40000, '198.51.100.100', 80);
    const origin = { kind: 'implicit', label: 'test rule' } as const;
    const b = ct.natBegin(syn, { addr: ipv4('198.51.100.2'), port: 3128, origin });
    // The client's ACK: the same original tuple, before DNAT.
    expect(ct.natLookup(tcp('203.0.113.50', 40000, '198.51.100.100', 80, 0x10), 'pre')).toEqual({
      dir: 'original',
      binding: b,
    });
    // In POSTROUTING the original direction is found after its DNAT; the reply as it arrives, from the new address.
    expect(ct.natLookup(tcp('203.0.113.50', 40000, '198.51.100.2', 3128), 'post')?.dir).toBe('original');
    expect(ct.natLookup(tcp('198.51.100.2', 3128, '203.0.113.50', 40000, 0x12), 'pre')?.dir).toBe('reply');
    // A source NAT bound in POSTROUTING: the reply arrives at the new source.
    ct.natComplete(b, { addr: ipv4('198.51.100.3'), origin });
    expect(ct.natLookup(tcp('198.51.100.2', 3128, '198.51.100.3', 40000, 0x12), 'pre')?.dir).toBe('reply');
    expect(ct.natLookup(tcp('198.51.100.2', 3128, '203.0.113.50', 40000, 0x12), 'post')?.dir).toBe('reply');
    // Another connection is not bound.
    expect(ct.natLookup(tcp('203.0.113.50', 40001, '198.51.100.100', 80), 'pre')).toBeUndefined();
  });
});
