import { describe, expect, it } from 'vitest';
import { buildTcpdumpCorpus } from '../../test/support/tcpdump-corpus.ts';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { emitEthernet } from './ethernet.ts';
import { TCPDUMP_E_VVV, TCPDUMP_NN, TcpdumpRenderer } from './tcpdump.ts';
import { ETHERTYPE_IPV4, TCP_SYN } from './types.ts';

// The byte-for-byte comparison with real tcpdump output lives in src/capture/tcpdump-golden.test.ts.
const corpus = buildTcpdumpCorpus();

describe('the tcpdump renderer', () => {
  it('prints the founding case exactly as tcpdump did', () => {
    const text = new TcpdumpRenderer(TCPDUMP_E_VVV).render(corpus[0]!.bytes, corpus[0]!.timeNs);
    expect(text).toBe(
      '11:39:19.372804 84:78:ac:27:6c:41 > 02:00:73:b6:53:c8, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 48, id 47264, offset 0, flags [DF], proto TCP (6), length 60)\n' +
        '    192.243.119.145.51643 > 192.0.2.208.80: Flags [S], cksum 0x04c4 (correct), seq 3639534333, win 14600, options [mss 1460,sackOK,TS val 780753501 ecr 0,nop,wscale 7], length 0',
    );
  });

  it('prints absolute sequence numbers with the -S option', () => {
    const r = new TcpdumpRenderer({ ...TCPDUMP_NN, absoluteSeq: true });
    const lines = corpus.slice(0, 3).map((c) => r.render(c.bytes, c.timeNs));
    expect(lines[2]).toContain('ack 1020304051, win 115');
  });

  it('supports the -t, -tt and -tttt timestamp formats', () => {
    const c = corpus[0]!;
    expect(new TcpdumpRenderer({ time: 'none' }).render(c.bytes, c.timeNs)).toMatch(/^IP 192/);
    expect(new TcpdumpRenderer({ time: 'epoch' }).render(c.bytes, c.timeNs)).toMatch(/^1700048359\.372804 IP/);
    expect(new TcpdumpRenderer({ time: 'date-time' }).render(c.bytes, c.timeNs)).toMatch(
      /^2023-11-15 11:39:19\.372804 IP/,
    );
  });

  it('truncates nanosecond timestamps to microseconds like libpcap', () => {
    expect(new TcpdumpRenderer().render(corpus[0]!.bytes, 1_700_048_359_123_456_999n)).toMatch(/^11:39:19\.123456 /);
  });

  it('reports invalid pcap headers as tcpdump does', () => {
    const r = new TcpdumpRenderer();
    expect(r.render(new Uint8Array(0), 0n)).toBe('[Invalid header: caplen==0, len==0]');
    expect(r.render(new Uint8Array(20), 0n, 10)).toBe('[Invalid header: len(10) < caplen(20)]');
  });

  it('never throws on random bytes', () => {
    const r = new TcpdumpRenderer(TCPDUMP_E_VVV);
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 16;
    };
    const base = emitEthernet({
      dst: mac('02:00:00:00:00:01'),
      src: mac('02:00:00:00:00:02'),
      vlans: [],
      etherType: ETHERTYPE_IPV4,
      payload: {
        kind: 'ipv4',
        tos: 0,
        id: 1,
        dontFragment: true,
        moreFragments: false,
        fragmentOffset: 0,
        ttl: 64,
        protocol: 6,
        src: ipv4('192.0.2.1'),
        dst: ipv4('192.0.2.2'),
        payload: {
          kind: 'tcp',
          srcPort: 1,
          dstPort: 80,
          seq: 1,
          ack: 0,
          flags: TCP_SYN,
          window: 1,
          urgent: 0,
          options: [{ kind: 'mss', value: 1460 }],
          payload: new Uint8Array(16),
        },
      },
    });
    for (let i = 0; i < 3000; i++) {
      const b = base.slice(0, rnd() % (base.length + 1));
      for (let k = rnd() % 6; k > 0; k--) if (b.length) b[rnd() % b.length] = rnd() & 0xff;
      const text = r.render(b, BigInt(i));
      expect(text).not.toContain('renderer error');
    }
  });
});
