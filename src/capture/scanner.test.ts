import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tcpRecord } from '../../test/support/synthetic-captures.ts';
import { LINKTYPE_IPV4, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_RAW, toEthernetView } from './link.ts';
import { writePcap } from './pcap.ts';
import { writePcapng } from './pcapng.ts';
import { CaptureScanner, type PacketSink, scanCaptureBytes } from './scanner.ts';

const T0 = 1_465_299_559_372_804_000n;
const recs = [0, 1, 2].map((k) =>
  tcpRecord(T0 + BigInt(k) * 1000n, {
    src: '192.0.2.1',
    dst: '192.0.2.2',
    sport: 1,
    dport: 80,
    seq: k,
    flags: 2,
    id: k,
  }),
);

function collect(): { sink: PacketSink; got: { lt: number; len: number; sec: number; nsec: number }[] } {
  const got: { lt: number; len: number; sec: number; nsec: number }[] = [];
  return { sink: (lt, _b, _o, len, _ol, sec, nsec) => got.push({ lt, len, sec, nsec }), got };
}

describe('capture scanner', () => {
  it('detects pcap, pcapng and tcpdump text from the first bytes', () => {
    const a = collect();
    expect(scanCaptureBytes(writePcap(recs), 'a.pcap', a.sink).format).toBe('pcap');
    const b = collect();
    const ng = writePcapng(
      [{ linkType: 1 }],
      recs.map((r) => ({ interfaceId: 0, timeNs: r.timeNs, bytes: r.bytes })),
    );
    expect(scanCaptureBytes(ng, 'b.pcapng', b.sink).format).toBe('pcapng');
    expect(b.got).toEqual(a.got);
    expect(a.got[1]).toEqual({ lt: 1, len: 54, sec: 1465299559, nsec: 372805000 });
    const text = readFileSync(join(import.meta.dirname, '../../fixtures/captures/founding-case.host1-br0.txt'));
    const c = collect();
    const s = scanCaptureBytes(text, 'br0.txt', c.sink);
    expect(s.format).toBe('tcpdump-text');
    expect(s.fields).toEqual({ link: true, ipId: true, ttl: true, payload: false });
    expect(c.got).toHaveLength(2);
  });

  it('gives the same packets whatever the chunk boundaries', () => {
    const whole = writePcap(recs);
    for (const size of [1, 5, 17, 100]) {
      const c = collect();
      const s = new CaptureScanner('x.pcap');
      for (let o = 0; o < whole.length; o += size) s.push(whole.subarray(o, o + size), c.sink);
      expect(s.finish(c.sink)).toEqual([]);
      expect(c.got).toHaveLength(3);
    }
  });

  it('keeps the packets before a truncated record and names the file and byte offset', () => {
    const whole = writePcap(recs);
    const c = collect();
    const s = scanCaptureBytes(whole.subarray(0, whole.length - 3), 'cut.pcap', c.sink);
    expect(c.got).toHaveLength(2);
    expect(s.issues.map((i) => [i.code, i.pos?.file, i.message])).toEqual([
      ['pcap-truncated-record', 'cut.pcap', 'record at byte 164 is truncated: 67 byte(s) left at end of file'],
    ]);
  });

  it('stops at an absurd record length and keeps what came before', () => {
    const whole = writePcap(recs).slice();
    new DataView(whole.buffer).setUint32(24 + 70 + 8, 0x7fffffff, true);
    const c = collect();
    const s = scanCaptureBytes(whole, 'bad.pcap', c.sink);
    expect(c.got).toHaveLength(1);
    expect(s.issues[0]!.code).toBe('pcap-bad-caplen');
    expect(s.issues[0]!.message).toMatch(/^record at byte 94: captured length 2147483647/);
  });

  it('rejects a file that is no capture at all', () => {
    const c = collect();
    const s = scanCaptureBytes(Uint8Array.of(0, 1, 2, 3, 4, 5, 0xff), 'junk.bin', c.sink);
    expect(s.issues[0]!.code).toBe('capture-bad-magic');
    expect(c.got).toEqual([]);
  });

  it('reports an unsupported link type', () => {
    const c = collect();
    const s = scanCaptureBytes(writePcap(recs, { linkType: 105 }), 'wifi.pcap', c.sink);
    expect(s.issues[0]).toMatchObject({ code: 'capture-linktype', unsupported: true });
  });
});

describe('link types', () => {
  const eth = recs[0]!.bytes;
  const ip = eth.subarray(14);

  it('turns raw IP into an Ethernet view without MACs', () => {
    for (const lt of [LINKTYPE_RAW, LINKTYPE_IPV4]) {
      const v = toEthernetView(lt, ip)!;
      expect(v.macs).toBe('none');
      expect([...v.bytes.subarray(12)]).toEqual([...eth.subarray(12)]);
    }
  });

  it('keeps the sender MAC and packet type of Linux cooked captures (SLL and SLL2)', () => {
    const sll = new Uint8Array(16 + ip.length);
    const v = new DataView(sll.buffer);
    v.setUint16(0, 4); // outgoing
    v.setUint16(2, 1);
    v.setUint16(4, 6);
    sll.set(eth.subarray(6, 12), 6);
    v.setUint16(14, 0x0800);
    sll.set(ip, 16);
    const a = toEthernetView(LINKTYPE_LINUX_SLL, sll)!;
    expect(a).toMatchObject({ macs: 'src', packetType: 'outgoing' });
    expect([...a.bytes.subarray(6)]).toEqual([...eth.subarray(6)]);
    const sll2 = new Uint8Array(20 + ip.length);
    const w = new DataView(sll2.buffer);
    w.setUint16(0, 0x0800);
    w.setUint16(8, 1);
    sll2[10] = 0;
    sll2[11] = 6;
    sll2.set(eth.subarray(6, 12), 12);
    sll2.set(ip, 20);
    expect(toEthernetView(LINKTYPE_LINUX_SLL2, sll2)).toMatchObject({ macs: 'src', packetType: 'host' });
  });
});
