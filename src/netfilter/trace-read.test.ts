/**
 * `nft monitor trace` and `xtables-monitor --trace` readers, on lines recorded from nftables 1.0.6 and iptables 1.8.9
 * (fixtures/kernel-traces/founding-real and an iptables-nft `-j TRACE` run recorded the same way).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeXtablesHex, netfilterTraceTool, readNftMonitorTrace, readXtablesMonitorTrace } from './trace-read.ts';

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'kernel-traces', 'founding-real');

describe('nft monitor trace', () => {
  it('reads the netdev and inet families as nft 1.0.6 prints them (also for -j, which prints the same text)', () => {
    const FAM = join(import.meta.dirname, '..', '..', 'fixtures', 'kernel-traces', 'nft-families');
    const text = readFileSync(join(FAM, 'nft-monitor-trace.txt'), 'utf8');
    expect(netfilterTraceTool(text)).toBe('nft-monitor');
    const r = readNftMonitorTrace(text, 'fam.txt');
    expect(r.issues).toEqual([]);
    expect(r.value!.map((e) => [e.family, e.table, e.chain, e.what, e.verdict, e.target, e.pos.line])).toEqual([
      ['netdev', 'nd', 'ing', 'rule', 'continue', undefined, 2],
      ['netdev', 'nd', 'ing', 'policy', 'accept', undefined, 3],
      ['inet', 'fw', 'input', 'rule', 'jump', 'udp_in', 5],
      ['inet', 'fw', 'udp_in', 'rule', 'drop', undefined, 6],
    ]);
    // The netdev ingress hook dumps the link layer too; each event keeps the packet line of its base chain.
    const [ing, , input, udpIn] = r.value!;
    expect(ing!.packet).toMatchObject({ iif: 'veth1', etherType: 'ip', ipSrc: '192.0.2.1', ipDst: '192.0.2.2' });
    expect(ing!.packet).toMatchObject({ protocol: 'udp', dport: 9, pos: { line: 1 } });
    expect(input!.packet?.pos.line).toBe(4);
    expect(udpIn!.packet).toBe(input!.packet);
    expect(udpIn!.ruleText).toBe('udp dport 9 counter packets 0 bytes 0 drop');
  });

  it('reads rule, policy and packet lines with the fields lvsdoctor compares', () => {
    const r = readNftMonitorTrace(readFileSync(join(DIR, 'nft-monitor-trace.txt'), 'utf8'), 'trace.txt');
    expect(r.issues).toEqual([]);
    const drop = r.value!.find((e) => e.verdict === 'drop')!;
    expect(drop).toMatchObject({
      tool: 'nft-monitor',
      family: 'bridge',
      table: 'nat',
      chain: 'I-vnet0-ipv4-ip',
      what: 'rule',
      ruleText: 'counter packets 0 bytes 0 drop',
      packet: {
        iif: 'vnet0',
        etherSrc: '02:00:73:b6:53:c8',
        ipSrc: '192.243.119.145',
        ipDst: '192.0.2.208',
        protocol: 'tcp',
        sport: 51643,
        dport: 80,
      },
    });
    const jump = r.value!.find((e) => e.verdict === 'jump')!;
    expect(jump.target).toMatch(/^libvirt-/);
    expect(r.value!.some((e) => e.what === 'policy' && e.verdict === 'accept')).toBe(true);
    expect(netfilterTraceTool('\ntrace id 0a bridge t c policy accept\n')).toBe('nft-monitor');
  });

  it('reads handles (nft -a), unknown rule handles and implicit returns', () => {
    const r = readNftMonitorTrace(
      [
        'trace id 56ae34b5 ip filter INPUT packet: iif "eth0" ip saddr 192.0.2.200 ip daddr 192.0.2.1 udp sport 37112 udp dport 9 ',
        'trace id 56ae34b5 ip filter INPUT rule iifname "eth0" counter packets 0 bytes 0 jump LV-IN # handle 3 (verdict jump LV-IN)',
        'trace id 56ae34b5 ip filter LV-IN unknown rule handle 4 (verdict drop)',
        'trace id 56ae34b5 ip filter LV-IN verdict continue ',
      ].join('\n'),
      't.txt',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.map((e) => [e.what, e.handle, e.verdict, e.ruleText])).toEqual([
      ['rule', 3, 'jump', 'iifname "eth0" counter packets 0 bytes 0 jump LV-IN'],
      ['rule', 4, 'drop', undefined],
      ['return', undefined, 'continue', undefined],
    ]);
    expect(r.value![0]!.packet).toMatchObject({ protocol: 'udp', sport: 37112, dport: 9 });
  });

  it('names file and line of what it cannot read, and reads the rest', () => {
    const r = readNftMonitorTrace(
      'garbage here\ntrace id 1 bridge nat X rule drop (verdict frobnicate)\ntrace id 1 bridge nat X policy drop\ntrace id 1 bridge nat X what is this\n',
      'bad.txt',
    );
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([
      ['trace-bad-line', 1],
      ['trace-bad-verdict', 2],
      ['trace-unsupported', 4],
    ]);
    expect(r.issues[2]!.unsupported).toBe(true);
    expect(r.value).toHaveLength(1);
  });
});

describe('xtables-monitor --trace', () => {
  it('reads bridge events by handle, numeric verdicts, and decodes the sign-extended NH and LL hex', () => {
    const r = readXtablesMonitorTrace(readFileSync(join(DIR, 'xtables-monitor-trace.txt'), 'utf8'), 'xt.txt');
    expect(r.issues).toEqual([]);
    const ret = r.value!.find((e) => e.chain === 'I-vnet0-mac')!;
    expect(ret).toMatchObject({ tool: 'xtables-monitor', family: 'bridge', what: 'rule', verdict: 'return' });
    expect(ret.handle).toBeGreaterThan(0);
    const drop = r.value!.find((e) => e.verdict === 'drop' && e.chain === 'I-vnet0-ipv4-ip')!;
    expect(drop.packet).toMatchObject({
      iif: 'vnet0',
      etherSrc: '02:00:73:b6:53:c8',
      etherType: 'ip',
      ipSrc: '192.243.119.145',
      ipDst: '192.0.2.208',
      protocol: 'tcp',
    });
    const out = r.value!.find((e) => e.chain === 'POSTROUTING' && e.packet?.oif === 'vnet0')!;
    expect(out.packet).toMatchObject({ etherDst: '02:00:73:b6:53:c8', etherSrc: '84:78:ac:27:6c:41', etherType: 'ip' });
    expect(decodeXtablesHex('45ffffffc0ffffffff00')).toEqual([0x45, 0xc0, 0xff, 0x00]);
    expect(decodeXtablesHex('ffff')).toBeUndefined();
  });

  it('reads IPv4 rules in save syntax (iptables-nft -j TRACE)', () => {
    const r = readXtablesMonitorTrace(
      [
        'PACKET: 2 56ae34b5 IN=eth0 MACSRC=2:0:73:b6:53:c8 MACDST=8e:97:e:53:5e:63 MACPROTO=0800 SRC=192.0.2.200 DST=192.0.2.1 LEN=36 TOS=0x0 TTL=64 ID=53304 DF SPORT=37112 DPORT=9 ',
        ' TRACE: 2 56ae34b5 raw:PREROUTING:rule:0x2:CONTINUE  -4 -t raw -A PREROUTING -p udp -j TRACE',
        ' TRACE: 2 56ae34b5 raw:PREROUTING:policy:ACCEPT ',
        ' TRACE: 2 56ae34b5 filter:INPUT:rule:0x3:JUMP:LV-IN  -4 -t filter -A INPUT -i eth0 -j LV-IN',
        ' TRACE: 2 56ae34b5 filter:LV-IN:rule:0x4:DROP  -4 -t filter -A LV-IN -s 192.0.2.200/32 -p udp -m udp --dport 9 -j DROP',
      ].join('\n'),
      'xt4.txt',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.map((e) => [e.table, e.chain, e.verdict, e.target, e.ruleText])).toEqual([
      ['raw', 'PREROUTING', 'continue', undefined, '-A PREROUTING -p udp -j TRACE'],
      ['raw', 'PREROUTING', 'accept', undefined, undefined],
      ['filter', 'INPUT', 'jump', 'LV-IN', '-A INPUT -i eth0 -j LV-IN'],
      ['filter', 'LV-IN', 'drop', undefined, '-A LV-IN -s 192.0.2.200/32 -p udp -m udp --dport 9 -j DROP'],
    ]);
    expect(r.value![0]!.packet).toMatchObject({
      etherSrc: '02:00:73:b6:53:c8',
      ipSrc: '192.0.2.200',
      sport: 37112,
      dport: 9,
    });
  });

  it('says where xtables-monitor gave up on an overflowing socket (ENOBUFS): the events after it are missing', () => {
    const r = readXtablesMonitorTrace(
      'PACKET: 7 ab IN=eno1 MACPROTO=0806\ncannot receive from nfnetlink socket: No buffer space available\n',
      'x.txt',
    );
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([['trace-monitor-stopped', 2]]);
    expect(r.issues[0]!.message).toMatch(/events after this line are missing/);
    const n = readNftMonitorTrace('# ERROR: We lost some netlink events!\n', 'n.txt');
    expect(n.issues.map((i) => [i.code, i.pos?.line])).toEqual([['trace-monitor-stopped', 1]]);
  });

  it('reads the TCP flags of a packet line (nft monitor trace and xtables-monitor, as recorded)', () => {
    const nft = readNftMonitorTrace(
      [
        'trace id 1 ip filter FORWARD packet: iif "br0" oif "br0" ip saddr 203.0.113.50 ip daddr 198.51.100.100 ip length 52 tcp sport 40005 tcp dport 80 tcp flags == ack tcp window 63',
        'trace id 1 ip filter FORWARD rule ct state invalid counter packets 0 bytes 0 drop (verdict drop)',
        'trace id 2 ip filter FORWARD packet: iif "br0" oif "br0" ip saddr 203.0.113.50 ip daddr 198.51.100.100 tcp sport 40005 tcp dport 80 tcp flags == 0x18 tcp window 63',
        'trace id 2 ip filter FORWARD policy accept',
        'trace id 3 ip filter FORWARD packet: iif "br0" tcp sport 1 tcp dport 2 tcp flags == syn | ack tcp window 9',
        'trace id 3 ip filter FORWARD policy accept',
      ].join('\n'),
      'n.txt',
    );
    expect(nft.issues).toEqual([]);
    expect(nft.value!.map((e) => e.packet?.tcpFlags)).toEqual([0x10, 0x18, 0x12]);
    expect(nft.value![1]!.packet).toMatchObject({ sport: 40005, dport: 80 });
    const xt = readXtablesMonitorTrace(
      'PACKET: 2 56dad4d4 IN=br0 OUT=br0 MACSRC=0:1c:73:5e:21:1 MACDST=52:54:0:3a:11:1 MACPROTO=0800 SRC=203.0.113.50 DST=198.51.100.100 LEN=60 TOS=0x0 TTL=63 ID=52456 DF SPORT=40000 DPORT=80 SYN \n TRACE: 2 56dad4d4 filter:FORWARD:policy:ACCEPT \n',
      'x.txt',
    );
    expect(xt.issues).toEqual([]);
    expect(xt.value![0]!.packet).toMatchObject({ tcpFlags: 0x02, sport: 40000, dport: 80 });
  });

  it('names file and line of what it cannot read', () => {
    const r = readXtablesMonitorTrace(
      ' TRACE: 2 ab filter:INPUT:rule:0x3:MAYBE\nTRACE: 99 ab filter:INPUT:policy:ACCEPT\nhello\n',
      'x.txt',
    );
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([
      ['trace-bad-verdict', 1],
      ['trace-family', 2],
      ['trace-bad-line', 3],
    ]);
  });
});
