import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  emitPcapHeader,
  emitPcapRecord,
  PCAP_HEADER_LEN,
  PCAP_MAGIC_MICRO,
  PCAP_MAGIC_NANO,
  PcapReader,
  type PcapRecordInput,
  readPcap,
  writePcap,
} from './pcap.ts';
import { scanCaptureBytes } from './scanner.ts';

const RECORDS: PcapRecordInput[] = [
  { timeNs: 1_700_048_359_372_804_000n, bytes: Uint8Array.of(1, 2, 3, 4) },
  { timeNs: 1_700_048_359_372_805_123n, bytes: Uint8Array.of(5, 6), originalLength: 1514 },
];

/** Rewrites a little-endian file as big-endian (as written on a big-endian host). */
function toBigEndian(le: Uint8Array): Uint8Array {
  const be = le.slice();
  const src = new DataView(le.buffer, le.byteOffset, le.byteLength);
  const dst = new DataView(be.buffer);
  const swap32 = (o: number): void => dst.setUint32(o, src.getUint32(o, true), false);
  const swap16 = (o: number): void => dst.setUint16(o, src.getUint16(o, true), false);
  swap32(0);
  swap16(4);
  swap16(6);
  swap32(8);
  swap32(12);
  swap32(16);
  swap32(20);
  let off = PCAP_HEADER_LEN;
  while (off < le.length) {
    const caplen = src.getUint32(off + 8, true);
    for (let i = 0; i < 16; i += 4) swap32(off + i);
    off += 16 + caplen;
  }
  return be;
}

describe('pcap files', () => {
  it('writes the classic little-endian microsecond header for Ethernet', () => {
    expect(Buffer.from(emitPcapHeader()).toString('hex')).toBe('d4c3b2a10200040000000000000000000000040001000000');
  });

  it('reads back what it writes, with microsecond precision', () => {
    const r = readPcap(writePcap(RECORDS));
    expect(r.issues).toEqual([]);
    expect(r.value?.header).toMatchObject({ nanosecond: false, littleEndian: true, snaplen: 262144, linkType: 1 });
    expect(r.value?.records).toEqual([
      { timeNs: 1_700_048_359_372_804_000n, bytes: Uint8Array.of(1, 2, 3, 4), originalLength: 4 },
      { timeNs: 1_700_048_359_372_805_000n, bytes: Uint8Array.of(5, 6), originalLength: 1514 },
    ]);
  });

  it('keeps nanoseconds with the nanosecond magic', () => {
    const file = writePcap(RECORDS, { nanosecond: true });
    expect(new DataView(file.buffer).getUint32(0, true)).toBe(PCAP_MAGIC_NANO);
    expect(readPcap(file).value?.records[1]?.timeNs).toBe(1_700_048_359_372_805_123n);
  });

  it('reads big-endian files of both precisions', () => {
    for (const nanosecond of [false, true]) {
      const r = readPcap(toBigEndian(writePcap(RECORDS, { nanosecond })));
      expect(r.issues).toEqual([]);
      expect(r.value?.header.littleEndian).toBe(false);
      expect(r.value?.records.map((x) => x.originalLength)).toEqual([4, 1514]);
    }
    expect(new DataView(writePcap(RECORDS).buffer).getUint32(0, true)).toBe(PCAP_MAGIC_MICRO);
  });

  it('streams: records come out as chunks complete them', () => {
    const file = writePcap(RECORDS);
    const reader = new PcapReader('x.pcap');
    const got = [];
    for (let i = 0; i < file.length; i += 7) got.push(...reader.push(file.subarray(i, i + 7)));
    expect(reader.finish()).toEqual([]);
    expect(got).toEqual(readPcap(file).value?.records);
  });

  it('concatenates a header and separately emitted records into a valid file', () => {
    const parts = [emitPcapHeader(), ...RECORDS.map((r) => emitPcapRecord(r))];
    expect(Buffer.concat(parts)).toEqual(Buffer.from(writePcap(RECORDS)));
  });

  it('reports a bad magic at byte 0 and mentions pcapng', () => {
    const r = readPcap(Uint8Array.of(0x0a, 0x0d, 0x0d, 0x0a, ...new Uint8Array(40)), 'a.pcapng');
    expect(r.value).toBeUndefined();
    expect(r.issues[0]).toMatchObject({ code: 'pcap-bad-magic', severity: 'error', pos: { file: 'a.pcapng' } });
    expect(r.issues[0]?.message).toContain('pcapng');
  });

  it('reports a truncated header and a truncated record with byte offsets, keeping earlier records', () => {
    expect(readPcap(new Uint8Array(10)).issues[0]).toMatchObject({ code: 'pcap-truncated-header' });
    const file = writePcap(RECORDS);
    const r = readPcap(file.subarray(0, file.length - 1));
    expect(r.value?.records.length).toBe(1);
    expect(r.issues).toEqual([expect.objectContaining({ code: 'pcap-truncated-record' })]);
    expect(r.issues[0]?.message).toContain('byte 44');
  });

  it('stops at an absurd captured length', () => {
    const file = writePcap(RECORDS);
    new DataView(file.buffer).setUint32(24 + 8, 0x7fffffff, true);
    const r = readPcap(file);
    expect(r.value?.records).toEqual([]);
    expect(r.issues[0]).toMatchObject({ code: 'pcap-bad-caplen' });
    expect(r.issues[0]?.message).toContain('byte 24');
  });

  it('reads a link-type field with FCS bits (0x04000001) as Ethernet, as libpcap does', () => {
    const file = writePcap(RECORDS);
    new DataView(file.buffer).setUint32(20, 0x04000001, true);
    const r = readPcap(file);
    expect(r.value?.header.linkType).toBe(1);
    expect(r.issues).toEqual([]);
    let links = 0;
    const s = scanCaptureBytes(file, 'fcs.pcap', (lt) => {
      if (lt === 1) links++;
    });
    expect(s.issues).toEqual([]);
    expect(links).toBe(RECORDS.length);
  });

  test.prop([fc.uint8Array({ maxLength: 200 })])('never throws on corrupt input', (b) => {
    const file = writePcap(RECORDS);
    const mixed = new Uint8Array(file.length + b.length);
    mixed.set(file.subarray(0, 24));
    mixed.set(b, 24);
    expect(() => readPcap(mixed)).not.toThrow();
    expect(() => readPcap(b)).not.toThrow();
  });
});
