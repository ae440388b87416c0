import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tcpRecord } from '../../test/support/synthetic-captures.ts';
import { concatBytes } from '../../test/support/tcpdump-frames.ts';
import { LINKTYPE_LINUX_SLL2, LINKTYPE_RAW } from './link.ts';
import { LINKTYPE_ETHERNET, readPcap } from './pcap.ts';
import { PcapngReader, PcapngWriter, readPcapng, writePcapng } from './pcapng.ts';

const T0 = 1_465_299_559_372_804_123n;
const syn = tcpRecord(T0, { src: '192.0.2.1', dst: '192.0.2.2', sport: 1, dport: 80, seq: 7, flags: 2, id: 9 });

const concat = (parts: Uint8Array[]): Uint8Array => concatBytes(parts);

function twoInterfaces(bigEndian = false): Uint8Array {
  return writePcapng(
    [
      { linkType: LINKTYPE_ETHERNET, name: 'eth0', description: 'director' },
      { linkType: LINKTYPE_RAW, name: 'tun0', tsresol: 9 },
    ],
    [
      { interfaceId: 0, timeNs: T0, bytes: syn.bytes, comment: 'the SYN' },
      { interfaceId: 1, timeNs: T0 + 11_000n, bytes: syn.bytes.subarray(14) },
    ],
    { bigEndian, userAppl: 'lvsdoctor' },
  );
}

const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-pcapng-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('pcapng files', () => {
  it('reads back interfaces, options and packets it writes, with µs and ns resolution', () => {
    const r = readPcapng(twoInterfaces());
    expect(r.issues).toEqual([]);
    const f = r.value!;
    expect(f.sections).toEqual([{ littleEndian: true, versionMajor: 1, versionMinor: 0, userAppl: 'lvsdoctor' }]);
    expect(f.interfaces.map((i) => [i.linkType, i.name, i.unitsPerSecond])).toEqual([
      [1, 'eth0', 1e6],
      [101, 'tun0', 1e9],
    ]);
    expect(f.interfaces[0]!.description).toBe('director');
    expect(f.packets.map((p) => [p.interfaceId, p.linkType, p.timeNs])).toEqual([
      [0, 1, T0 - 123n],
      [1, 101, T0 + 11_000n],
    ]);
    expect([...f.packets[0]!.bytes]).toEqual([...syn.bytes]);
  });

  it('reads big-endian sections the same way', () => {
    const le = readPcapng(twoInterfaces(false)).value!;
    const be = readPcapng(twoInterfaces(true));
    expect(be.issues).toEqual([]);
    expect(be.value!.sections[0]!.littleEndian).toBe(false);
    expect(be.value!.packets.map((p) => p.timeNs)).toEqual(le.packets.map((p) => p.timeNs));
  });

  it('numbers interfaces across several sections, each with its own byte order', () => {
    const two = concat([twoInterfaces(false), twoInterfaces(true)]);
    const r = readPcapng(two);
    expect(r.issues).toEqual([]);
    expect(r.value!.sections.map((s) => s.littleEndian)).toEqual([true, false]);
    expect(r.value!.packets.map((p) => p.interfaceId)).toEqual([0, 1, 2, 3]);
  });

  it('reads simple packet blocks and skips unknown blocks', () => {
    const w = new PcapngWriter();
    const unknown = new Uint8Array(16);
    const v = new DataView(unknown.buffer);
    v.setUint32(0, 0x0bad, true);
    v.setUint32(4, 16, true);
    v.setUint32(12, 16, true);
    const bytes = concat([
      w.header(),
      w.interface({ linkType: LINKTYPE_ETHERNET, snaplen: 64 }),
      unknown,
      w.simplePacket(syn.bytes),
    ]);
    const r = readPcapng(bytes);
    expect(r.issues).toEqual([]);
    expect(r.value!.packets).toHaveLength(1);
    expect(r.value!.packets[0]!.bytes.length).toBe(syn.bytes.length);
  });

  it('applies if_tsresol powers of two and if_tsoffset', () => {
    const w = new PcapngWriter();
    const idb = w.interface({ linkType: LINKTYPE_ETHERNET });
    // Rewrite as an interface with if_tsresol 2^-10 and if_tsoffset 100 s.
    const opts = new Uint8Array(8 + 16 + 4);
    const ov = new DataView(opts.buffer);
    ov.setUint16(0, 9, true);
    ov.setUint16(2, 1, true);
    opts[4] = 0x80 | 10;
    ov.setUint16(8, 14, true);
    ov.setUint16(10, 8, true);
    ov.setBigInt64(12, 100n, true);
    const body = concat([idb.subarray(8, 16), opts]);
    const block = new Uint8Array(12 + body.length);
    const bv = new DataView(block.buffer);
    bv.setUint32(0, 1, true);
    bv.setUint32(4, block.length, true);
    block.set(body, 8);
    bv.setUint32(block.length - 4, block.length, true);
    const epb = new PcapngWriter();
    epb.interface({ linkType: 1, tsresol: 6 });
    // 2048 units of 1/1024 s = 2 s
    const pkt = epb.packet({ interfaceId: 0, timeNs: 2048n * 1000n, bytes: syn.bytes });
    const r = readPcapng(concat([w.header(), block, pkt]));
    expect(r.issues).toEqual([]);
    expect(r.value!.interfaces[0]!.unitsPerSecond).toBe(1024);
    expect(r.value!.packets[0]!.timeNs).toBe(102_000_000_000n);
  });

  it('streams: chunks of any size give the same packets as the whole file', () => {
    const whole = twoInterfaces();
    for (const size of [1, 7, 64]) {
      const r = new PcapngReader();
      const got = [];
      for (let o = 0; o < whole.length; o += size) got.push(...r.push(whole.slice(o, o + size)));
      expect(r.finish()).toEqual([]);
      expect(got.map((p) => p.timeNs)).toEqual([T0 - 123n, T0 + 11_000n]);
    }
  });

  it('keeps the packets before a truncated block and names its byte offset', () => {
    const whole = twoInterfaces();
    const cut = whole.subarray(0, whole.length - 10);
    const r = readPcapng(cut, 'cut.pcapng');
    expect(r.value!.packets).toHaveLength(1);
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]!.code).toBe('pcapng-truncated-block');
    expect(r.issues[0]!.pos?.file).toBe('cut.pcapng');
    expect(r.issues[0]!.message).toMatch(/^block at byte \d+ is truncated/);
  });

  it('reports a corrupt block length at its byte offset', () => {
    const whole = twoInterfaces().slice();
    const first = readPcapng(whole).value!;
    expect(first.packets).toHaveLength(2);
    // Corrupt the trailing length of the last block.
    new DataView(whole.buffer).setUint32(whole.length - 4, 12345, true);
    const r = readPcapng(whole);
    expect(r.value!.packets).toHaveLength(1);
    expect(r.issues[0]!.code).toBe('pcapng-bad-block-length');
    expect(r.issues[0]!.message).toMatch(/trailing length 12345/);
  });

  it('reports a packet for an interface that was never described', () => {
    const w = new PcapngWriter();
    w.interface({ linkType: 1 });
    const bytes = concat([new PcapngWriter().header(), w.packet({ interfaceId: 0, timeNs: T0, bytes: syn.bytes })]);
    const r = readPcapng(bytes);
    expect(r.issues[0]!.code).toBe('pcapng-bad-interface');
  });
});

const tcpdump = spawnSync('tcpdump', ['--version']).status === 0;
const tshark = spawnSync('tshark', ['--version']).status === 0;

describe('pcapng files written by lvsdoctor', () => {
  const file = join(dir, 'two.pcapng');
  writeFileSync(file, concat([twoInterfaces(), twoInterfaces(true)]));

  it.skipIf(!tcpdump)(
    'are read by tcpdump: two sections, both byte orders, µs and ns interfaces (skipped without tcpdump)',
    () => {
      // libpcap wants one link type per file; tshark takes mixed ones (next test).
      const eth = (bigEndian: boolean): Uint8Array =>
        writePcapng(
          [
            { linkType: LINKTYPE_ETHERNET, name: 'eth0' },
            { linkType: LINKTYPE_ETHERNET, name: 'eth1', tsresol: 9 },
          ],
          [
            { interfaceId: 0, timeNs: T0, bytes: syn.bytes },
            { interfaceId: 1, timeNs: T0 + 11_000n, bytes: syn.bytes },
          ],
          { bigEndian },
        );
      // libpcap also wants one byte order per file, so the big-endian section gets a file of its own.
      const f = join(dir, 'eth.pcapng');
      const fb = join(dir, 'eth-be.pcapng');
      writeFileSync(f, concat([eth(false), eth(false)]));
      writeFileSync(fb, eth(true));
      const be = spawnSync('tcpdump', ['-r', fb, '-nn', '-tt'], { encoding: 'utf8' });
      expect(be.status).toBe(0);
      expect(be.stdout.trim().split('\n')).toHaveLength(2);
      const r = spawnSync('tcpdump', ['-r', f, '-nn', '-tt'], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
      expect(r.status).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(4);
      expect(lines[0]).toBe('1465299559.372804 IP 192.0.2.1.1 > 192.0.2.2.80: Flags [S], seq 7, win 14600, length 0');
      expect(lines[1]).toMatch(/^1465299559\.372815 IP /);
    },
  );

  it.skipIf(!tshark)('are read by tshark with every interface and link type (skipped when tshark is missing)', () => {
    const r = spawnSync(
      'tshark',
      [
        '-r',
        file,
        '-T',
        'fields',
        '-e',
        'frame.interface_id',
        '-e',
        'frame.encap_type',
        '-e',
        'ip.id',
        '-e',
        'frame.comment',
      ],
      { encoding: 'utf8' },
    );
    expect(r.status).toBe(0);
    const rows = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split('\t'));
    expect(rows.map((x) => x[0])).toEqual(['0', '1', '0', '1']);
    expect(rows.map((x) => Number(x[2]))).toEqual([9, 9, 9, 9]);
    expect(rows[0]![3]).toBe('the SYN');
  });

  it.skipIf(!tshark)('carry Linux cooked SLL2 packets tshark decodes (skipped when tshark is missing)', () => {
    const sll2 = new Uint8Array(20 + syn.bytes.length - 14);
    const v = new DataView(sll2.buffer);
    v.setUint16(0, 0x0800);
    v.setUint32(4, 2);
    v.setUint16(8, 1);
    sll2[10] = 4;
    sll2[11] = 6;
    sll2.set(syn.bytes.subarray(6, 12), 12);
    sll2.set(syn.bytes.subarray(14), 20);
    const f = join(dir, 'sll2.pcapng');
    writeFileSync(f, writePcapng([{ linkType: LINKTYPE_LINUX_SLL2 }], [{ interfaceId: 0, timeNs: T0, bytes: sll2 }]));
    const r = spawnSync('tshark', ['-r', f, '-T', 'fields', '-e', 'sll.pkttype', '-e', 'tcp.seq_raw'], {
      encoding: 'utf8',
    });
    expect(r.stdout.trim()).toBe('4\t7');
  });
});

describe('a pcapng written by the real editcap', () => {
  it('reads as exactly the packets of the pcap it was converted from (fixtures/tcpdump/README.md)', () => {
    const dir = join(import.meta.dirname, '..', '..', 'fixtures', 'tcpdump');
    const ng = readPcapng(readFileSync(join(dir, 'corpus.pcapng')), 'corpus.pcapng');
    const pcap = readPcap(readFileSync(join(dir, 'corpus.pcap')), 'corpus.pcap');
    expect(ng.issues).toEqual([]);
    expect(pcap.issues).toEqual([]);
    const a = ng.value!.packets;
    const b = pcap.value!.records;
    expect(a.length).toBe(69);
    expect(a.length).toBe(b.length);
    for (let i = 0; i < a.length; i++) {
      expect(a[i]!.linkType).toBe(LINKTYPE_ETHERNET);
      expect(a[i]!.timeNs).toBe(b[i]!.timeNs);
      expect(a[i]!.originalLength).toBe(b[i]!.originalLength);
      expect(Buffer.from(a[i]!.bytes).equals(Buffer.from(b[i]!.bytes))).toBe(true);
    }
  });
});
