import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { parseEthernet } from '../wire/ethernet.ts';
import { readPcap } from './pcap.ts';
import { readTcpdumpText } from './tcpdump-text.ts';

const FIX = join(import.meta.dirname, '../../fixtures');

interface Fields {
  src: string;
  dst: string;
  id?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  sport?: number;
}

function fields(bytes: Uint8Array, withId: boolean): Fields | undefined {
  const f = parseEthernet(bytes);
  const p = f.payload;
  if (p.kind !== 'ipv4' || p.payload.kind !== 'tcp' || p.fragmentOffset !== 0) return undefined;
  const t = p.payload;
  return {
    src: formatIpv4(p.src),
    dst: formatIpv4(p.dst),
    ...(withId ? { id: p.id } : {}),
    seq: t.seq,
    ack: t.ack,
    flags: t.flags,
    sport: t.srcPort,
  };
}

describe('tcpdump text reader', () => {
  const pcap = readPcap(new Uint8Array(readFileSync(join(FIX, 'tcpdump/corpus.pcap')))).value!;

  it('reads `-e -vvv -nnn` output back into the TCP fields of the capture it was printed from', () => {
    const r = readTcpdumpText(readFileSync(join(FIX, 'tcpdump/corpus.e-vvv-nnn.txt'), 'utf8'), 'corpus.txt', {
      dayNs: 1_700_006_400_000_000_000n,
    });
    expect(r.fields).toEqual({ link: true, ipId: true, ttl: true, payload: false });
    const fromText = new Map(r.packets.map((p) => [p.timeNs, fields(p.bytes, true)]));
    let compared = 0;
    for (const rec of pcap.records) {
      const want = fields(rec.bytes, true);
      const got = fromText.get(rec.timeNs);
      if (!want || !got || want.flags === undefined) continue;
      // Lines tcpdump could not finish ([|tcp], bad header length) carry no flags.
      if (got.flags === 0 && want.flags !== 0) continue;
      expect(got).toEqual(want);
      compared++;
    }
    expect(compared).toBeGreaterThan(15);
  });

  it('reads `-nn` output, undoing relative sequence numbers, without IP ids or MACs', () => {
    const r = readTcpdumpText(readFileSync(join(FIX, 'tcpdump/corpus.nn.txt'), 'utf8'), 'corpus.nn.txt', {
      dayNs: 1_700_006_400_000_000_000n,
    });
    expect(r.fields).toMatchObject({ link: false, ipId: false, ttl: false });
    const want = pcap.records.map((x) => [x.timeNs, fields(x.bytes, false)] as const);
    const got = new Map(r.packets.map((p) => [p.timeNs, fields(p.bytes, false)]));
    // The first conversation of the corpus: SYN, SYN-ACK, ACK, request, response, FIN.
    for (const [t, w] of want.slice(0, 6)) expect(got.get(t)).toEqual(w);
  });

  it('reads the founding case as pasted from the article, with both lines of each packet', () => {
    const r = readTcpdumpText(readFileSync(join(FIX, 'captures/founding-case.director-eth0.txt'), 'utf8'));
    expect(r.issues).toEqual([]);
    expect(r.packets).toHaveLength(4);
    const f = parseEthernet(r.packets[1]!.bytes);
    expect([f.src, f.dst]).toEqual(['02:00:73:b6:53:c8', '02:00:73:b6:53:e2']);
    const ip = f.payload;
    expect(ip.kind === 'ipv4' && [ip.id, ip.ttl, formatIpv4(ip.src), formatIpv4(ip.dst)]).toEqual([
      47264,
      48,
      '192.243.119.145',
      '192.0.2.208',
    ]);
    expect(ip.kind === 'ipv4' && ip.payload.kind === 'tcp' && ip.payload.options).toContainEqual({
      kind: 'timestamp',
      val: 780753501,
      ecr: 0,
    });
    expect(r.packets[0]!.timeNs).toBe(41_959_372_804_000n);
  });

  it('reads epoch and date-time timestamps and rolls over midnight', () => {
    const r = readTcpdumpText(
      [
        '23:59:59.999000 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [S], seq 5, win 1, length 0',
        '00:00:00.001000 IP 10.0.0.1.1 > 10.0.0.2.2: Flags [S], seq 6, win 1, length 0',
        '1465299559.372804 IP 10.0.0.1.1 > 10.0.0.2.2: UDP, length 12',
        '2016-06-07 11:39:19.372804 ARP, Request who-has 10.0.0.2 tell 10.0.0.1, length 28',
      ].join('\n'),
    );
    expect(r.packets.map((p) => p.timeNs)).toEqual([
      86_399_999_000_000n,
      86_400_001_000_000n,
      1_465_299_559_372_804_000n,
      1_465_299_559_372_804_000n,
    ]);
  });

  it('warns about a packet line it cannot read, with its line number', () => {
    const r = readTcpdumpText('11:39:19.372804 IP6 ::1.1 > ::1.2: UDP, length 1\n', 'paste.txt');
    expect(r.issues.map((i) => [i.severity, i.pos?.line])).toEqual([['warning', 1]]);
  });

  it('reads lines tcpdump decoded at the application layer as UDP packets with their payload length', () => {
    const text = [
      '10:00:00.000001 IP 192.0.2.10.41000 > 192.0.2.53.53: 4660+ A? www.example.com. (33)',
      '10:00:00.000002 IP 192.0.2.53.53 > 192.0.2.10.41000: 4660 1/0/0 A 198.51.100.7 (49)',
      '10:00:00.000003 IP 192.0.2.10.123 > 192.0.2.1.123: NTPv4, Client, length 48',
      '10:00:00.000004 IP 192.0.2.10.68 > 255.255.255.255.67: BOOTP/DHCP, Request from 52:54:00:12:34:56, length 300',
    ].join('\n');
    const r = readTcpdumpText(text, 'app.txt');
    expect(r.issues).toEqual([]);
    const lens = r.packets.map((p) => {
      const ip = p.frame.payload;
      return ip.kind === 'ipv4' && ip.payload.kind === 'udp' ? [ip.payload.dstPort, ip.payload.payload.length] : [];
    });
    expect(lens).toEqual([
      [53, 33],
      [41000, 49],
      [123, 48],
      [67, 300],
    ]);
  });

  it('reads service names (tcpdump -n) and host names the scenario knows; else refuses once with the hint to use -nn', () => {
    const named = '10:00:00.000001 IP 192.0.2.10.41000 > 192.0.2.80.http: Flags [S], seq 1, win 64240, length 0\n';
    const a = readTcpdumpText(named, 'n.txt');
    expect(a.issues).toEqual([]);
    const t = a.packets[0]!.frame.payload;
    expect(t.kind === 'ipv4' && t.payload.kind === 'tcp' && t.payload.dstPort).toBe(80);
    const hosts =
      '10:00:00.000001 IP client.example.41000 > web1.https: Flags [S], seq 1, win 64240, length 0\n'.repeat(3);
    const b = readTcpdumpText(hosts, 'names.txt');
    expect(b.packets).toEqual([]);
    expect(b.issues).toHaveLength(1);
    expect(b.issues[0]).toMatchObject({ code: 'tcpdump-text-names', severity: 'error', pos: { line: 1 } });
    expect(b.issues[0]!.message).toContain('"client.example" is not known to the scenario; print or capture with -nn');
    const known = new Map([
      ['client.example', parseIpv4('192.0.2.10')!],
      ['web1', parseIpv4('192.0.2.80')!],
    ]);
    const c = readTcpdumpText(hosts, 'names.txt', { hosts: known });
    expect(c.issues).toEqual([]);
    expect(c.packets).toHaveLength(3);
  });

  it('names what it does not read: SCTP, IPv6, snapshot-cut lines', () => {
    const text = [
      '10:00:00.000001 IP 192.0.2.1.5000 > 192.0.2.2.5000: sctp (1) [INIT] [init tag: 1] [rwnd: 1] [OS: 1] [MIS: 1] [init TSN: 1]',
      '10:00:00.000002 IP6 2001:db8::1 > 2001:db8::2: ICMP6, echo request, id 1, seq 1, length 64',
      '10:00:00.000003 IP 192.0.2.1.80 > 192.0.2.2.4000:  [|tcp]',
    ].join('\n');
    const r = readTcpdumpText(text, 'x.txt');
    expect(r.issues.map((i) => i.message)).toEqual([
      'an SCTP packet: lvsdoctor does not read SCTP (its chunks are not modelled)',
      'an IPv6 packet: lvsdoctor reads IPv4 and ARP only',
      "cut short by tcpdump's snapshot length ([|tcp]): the tcp header is incomplete",
    ]);
  });
});
