/** A director's nat POSTROUTING on what IPVS NAT-forwards (full NAT): reading SNAT/MASQUERADE and evaluating them. */
import { describe, expect, it } from 'vitest';
import { formatIpv4, ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { renderIptablesRule } from '../netfilter/iptables-render.ts';
import { formatIssue } from '../source/issue.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { Conntrack } from './conntrack.ts';
import { natPostrouting } from './firewall.ts';

function save(...rules: string[]): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ...rules,
    'COMMIT',
    '',
  ].join('\n');
}

function nat(...rules: string[]) {
  const r = readIptablesSave(save(...rules), 'lb1/iptables-save.txt', 'ipv4', ['nat']);
  const table = r.value?.find((t) => t.name === 'nat');
  return { table, issues: r.issues.map((i) => formatIssue(i)) };
}

function syn(src: string, dst: string, dport: number): EthernetFrame {
  return {
    src: mac('52:54:00:3a:11:01'),
    dst: mac('52:54:00:3a:21:02'),
    vlans: [],
    etherType: 0x0800,
    payload: {
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

describe('nat POSTROUTING of a NAT director', () => {
  it('reads SNAT and MASQUERADE and saves them back as iptables-save prints them', () => {
    const { table, issues } = nat(
      '-A POSTROUTING -d 198.51.100.16/28 -o eth0 -j SNAT --to-source 198.51.100.11',
      '-A POSTROUTING -d 192.0.2.0/24 -o eth0 -j MASQUERADE',
    );
    expect(issues).toEqual([]);
    const post = table!.chains.find((c) => c.name === 'POSTROUTING')!;
    expect(post.builtin).toBe(true);
    expect(post.rules.map((r) => renderIptablesRule('POSTROUTING', r, 'ipv4'))).toEqual([
      '-A POSTROUTING -d 198.51.100.16/28 -o eth0 -j SNAT --to-source 198.51.100.11',
      '-A POSTROUTING -d 192.0.2.0/24 -o eth0 -j MASQUERADE',
    ]);
  });

  it('SNAT rewrites the source to --to-source; MASQUERADE to the out interface address it is given', () => {
    const { table } = nat(
      '-A POSTROUTING -d 198.51.100.16/28 -o eth0 -j SNAT --to-source 198.51.100.11',
      '-A POSTROUTING -d 192.0.2.0/24 -o eth0 -j MASQUERADE',
    );
    const s = natPostrouting(table!, syn('203.0.113.50', '198.51.100.22', 80), 'eth0', ipv4('198.51.100.12'));
    expect(s && { rule: s.ruleNumber, from: formatIpv4(s.snat!.from), to: formatIpv4(s.snat!.to) }).toEqual({
      rule: 1,
      from: '203.0.113.50',
      to: '198.51.100.11',
    });
    const m = natPostrouting(table!, syn('203.0.113.50', '192.0.2.21', 80), 'eth0', ipv4('192.0.2.1'));
    expect(m && { rule: m.ruleNumber, to: formatIpv4(m.snat!.to) }).toEqual({ rule: 2, to: '192.0.2.1' });
    // Another out interface, or a destination no rule names: no rewrite.
    expect(natPostrouting(table!, syn('203.0.113.50', '198.51.100.22', 80), 'eth1', ipv4('192.0.2.1'))).toBeUndefined();
    expect(natPostrouting(table!, syn('203.0.113.50', '203.0.113.9', 80), 'eth0', ipv4('192.0.2.1'))).toBeUndefined();
  });

  it('an address range or ports in --to-source is refused with file, line and what is modelled', () => {
    const { issues } = nat('-A POSTROUTING -o eth0 -j SNAT --to-source 198.51.100.11-198.51.100.12');
    expect(issues.join('\n')).toMatch(/lb1\/iptables-save\.txt:6.*expected one IPv4 address/);
    expect(nat('-A POSTROUTING -o eth0 -j SNAT').issues.join('\n')).toMatch(/without --to-source/);
  });

  it("a Docker director's nat table: its DNAT is reported by what it changes, not refused", () => {
    const { table, issues } = nat(
      ':DOCKER - [0:0]',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
      '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
      '-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80',
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(/lb1\/iptables-save\.txt:9: warning: nat DOCKER -j DNAT .*traces do not apply it/);
    expect(table!.chains.find((c) => c.name === 'POSTROUTING')!.rules).toHaveLength(1);
  });

  it('conntrack de-NATs the reply of a source-NATed connection back to the client, and nothing else', () => {
    const ct = new Conntrack();
    const out = syn('198.51.100.11', '198.51.100.22', 80).payload;
    if (out.kind !== 'ipv4') throw new Error('ipv4');
    ct.bindSnat(out, ipv4('203.0.113.50'), { kind: 'implicit', label: 'test' });
    const reply = (dport: number) => {
      const p = syn('198.51.100.22', '198.51.100.11', dport).payload;
      if (p.kind !== 'ipv4' || p.payload.kind !== 'tcp') throw new Error('tcp');
      return { ...p, payload: { ...p.payload, srcPort: 80 } };
    };
    expect(formatIpv4(ct.unSnat(reply(40000))!.addr)).toBe('203.0.113.50');
    expect(ct.unSnat(reply(40001))).toBeUndefined();
  });
});
