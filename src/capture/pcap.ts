/**
 * Classic libpcap files (https://www.tcpdump.org/manpages/pcap-savefile.5.html): microsecond and nanosecond
 * magics, both byte orders when reading, little-endian when writing. The reader never throws: corrupt input ends
 * reading with an issue naming the byte offset, and every record before it is kept.
 */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';

/**
 * The link-type field of a pcap file header as libpcap reads it (`LT_LINKTYPE`): the low 26 bits; bit 26 says an FCS
 * length is given in the top 4 bits (so 0x04000001 is Ethernet, with an FCS).
 */
export function pcapLinkType(field: number): number {
  return field & 0x03ffffff;
}

export const PCAP_MAGIC_MICRO = 0xa1b2c3d4;
export const PCAP_MAGIC_NANO = 0xa1b23c4d;
export const PCAP_HEADER_LEN = 24;
export const PCAP_RECORD_HEADER_LEN = 16;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_DEFAULT_SNAPLEN = 262144;

/**
 * The bytes of a record libpcap hands out: at most the file's snapshot length (the header's snaplen, or 262144 when
 * it is 0 or larger); a record captured longer is cut there, the rest skipped (sf-pcap.c `pcap_next_packet`).
 */
export function pcapSnapshot(snaplen: number): number {
  return snaplen === 0 || snaplen > PCAP_DEFAULT_SNAPLEN ? PCAP_DEFAULT_SNAPLEN : snaplen;
}

/** One captured frame: raw bytes as captured plus the time and the length it had on the wire. */
export interface PcapRecord {
  /** Nanoseconds since the epoch. */
  readonly timeNs: bigint;
  /** Captured bytes (a view of the input when read). */
  readonly bytes: Uint8Array;
  /** Length on the wire; equals `bytes.length` unless the capture was cut by the snap length. */
  readonly originalLength: number;
}

export interface PcapHeader {
  readonly nanosecond: boolean;
  readonly littleEndian: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  readonly linkType: number;
}

export interface PcapFile {
  readonly header: PcapHeader;
  readonly records: readonly PcapRecord[];
}

export interface PcapWriteOptions {
  /** Write nanosecond timestamps (magic 0xa1b23c4d). Default: microseconds. */
  readonly nanosecond?: boolean;
  readonly snaplen?: number;
  readonly linkType?: number;
}

/** A record to write: `originalLength` defaults to the byte count. */
export interface PcapRecordInput {
  readonly timeNs: bigint;
  readonly bytes: Uint8Array;
  readonly originalLength?: number;
}

export function emitPcapHeader(options?: PcapWriteOptions): Uint8Array {
  const buf = new Uint8Array(PCAP_HEADER_LEN);
  const v = new DataView(buf.buffer);
  v.setUint32(0, options?.nanosecond ? PCAP_MAGIC_NANO : PCAP_MAGIC_MICRO, true);
  v.setUint16(4, 2, true);
  v.setUint16(6, 4, true);
  v.setUint32(16, options?.snaplen ?? PCAP_DEFAULT_SNAPLEN, true);
  v.setUint32(20, options?.linkType ?? LINKTYPE_ETHERNET, true);
  return buf;
}

function writeRecord(rec: PcapRecordInput, nanosecond: boolean, v: DataView, buf: Uint8Array, off: number): number {
  const t = rec.timeNs < 0n ? 0n : rec.timeNs;
  const sec = t / 1_000_000_000n;
  const ns = Number(t % 1_000_000_000n);
  v.setUint32(off, Number(sec & 0xffffffffn), true);
  v.setUint32(off + 4, nanosecond ? ns : Math.floor(ns / 1000), true);
  v.setUint32(off + 8, rec.bytes.length, true);
  v.setUint32(off + 12, rec.originalLength ?? rec.bytes.length, true);
  buf.set(rec.bytes, off + PCAP_RECORD_HEADER_LEN);
  return PCAP_RECORD_HEADER_LEN + rec.bytes.length;
}

/** One record (header + bytes), for streaming writers that already wrote `emitPcapHeader`. */
export function emitPcapRecord(rec: PcapRecordInput, options?: PcapWriteOptions): Uint8Array {
  const buf = new Uint8Array(PCAP_RECORD_HEADER_LEN + rec.bytes.length);
  writeRecord(rec, options?.nanosecond ?? false, new DataView(buf.buffer), buf, 0);
  return buf;
}

/** A whole pcap file in one buffer. */
export function writePcap(records: readonly PcapRecordInput[], options?: PcapWriteOptions): Uint8Array {
  let size = PCAP_HEADER_LEN;
  for (const r of records) size += PCAP_RECORD_HEADER_LEN + r.bytes.length;
  const buf = new Uint8Array(size);
  buf.set(emitPcapHeader(options));
  const v = new DataView(buf.buffer);
  const nano = options?.nanosecond ?? false;
  let off = PCAP_HEADER_LEN;
  for (const r of records) off += writeRecord(r, nano, v, buf, off);
  return buf;
}

/**
 * Incremental reader: feed chunks with `push`, which returns the records completed so far; `finish` reports
 * what was left over. After an error (bad magic, absurd record length) further input is ignored.
 */
export class PcapReader {
  private pending: Uint8Array = new Uint8Array(0);
  /** Absolute file offset of `pending[0]`. */
  private base = 0;
  private hdr: PcapHeader | undefined;
  private failed = false;
  private readonly found: Issue[] = [];

  constructor(private readonly file = '<pcap>') {}

  get header(): PcapHeader | undefined {
    return this.hdr;
  }

  get issues(): readonly Issue[] {
    return this.found;
  }

  push(chunk: Uint8Array): PcapRecord[] {
    if (this.failed) return [];
    if (this.pending.length === 0) this.pending = chunk;
    else {
      const joined = new Uint8Array(this.pending.length + chunk.length);
      joined.set(this.pending);
      joined.set(chunk, this.pending.length);
      this.pending = joined;
    }
    const out: PcapRecord[] = [];
    const b = this.pending;
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    let off = 0;
    if (this.hdr === undefined) {
      if (b.length < PCAP_HEADER_LEN) return out;
      const h = this.readHeader(v);
      if (h === undefined) {
        this.failed = true;
        this.pending = new Uint8Array(0);
        return out;
      }
      this.hdr = h;
      off = PCAP_HEADER_LEN;
    }
    const le = this.hdr.littleEndian;
    const scale = this.hdr.nanosecond ? 1n : 1000n;
    const limit = Math.max(this.hdr.snaplen, PCAP_DEFAULT_SNAPLEN);
    while (off + PCAP_RECORD_HEADER_LEN <= b.length) {
      const caplen = v.getUint32(off + 8, le);
      const len = v.getUint32(off + 12, le);
      if (caplen > limit) {
        this.fail('pcap-bad-caplen', `record at byte ${this.base + off}: captured length ${caplen} exceeds ${limit}`);
        return out;
      }
      if (off + PCAP_RECORD_HEADER_LEN + caplen > b.length) break;
      const sec = v.getUint32(off, le);
      const frac = v.getUint32(off + 4, le);
      if (frac >= (this.hdr.nanosecond ? 1_000_000_000 : 1_000_000))
        this.warn('pcap-bad-timestamp', `record at byte ${this.base + off}: fraction ${frac} out of range`);
      if (len < caplen)
        this.warn('pcap-bad-length', `record at byte ${this.base + off}: original length ${len} < captured ${caplen}`);
      const start = off + PCAP_RECORD_HEADER_LEN;
      out.push({
        timeNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * scale,
        bytes: b.subarray(start, start + Math.min(caplen, pcapSnapshot(this.hdr.snaplen))),
        originalLength: len,
      });
      off = start + caplen;
    }
    this.pending = b.subarray(off);
    this.base += off;
    return out;
  }

  /** Ends the input; reports a truncated header or record. */
  finish(): readonly Issue[] {
    if (!this.failed) {
      if (this.hdr === undefined)
        this.fail('pcap-truncated-header', `file ends at byte ${this.pending.length} inside the 24-byte header`);
      else if (this.pending.length > 0)
        this.fail(
          'pcap-truncated-record',
          `record at byte ${this.base} is truncated: ${this.pending.length} byte(s) left at end of file`,
        );
    }
    return this.found;
  }

  private readHeader(v: DataView): PcapHeader | undefined {
    const m = v.getUint32(0, true);
    let littleEndian: boolean;
    let nanosecond: boolean;
    if (m === PCAP_MAGIC_MICRO || m === PCAP_MAGIC_NANO) {
      littleEndian = true;
      nanosecond = m === PCAP_MAGIC_NANO;
    } else {
      const mb = v.getUint32(0, false);
      if (mb !== PCAP_MAGIC_MICRO && mb !== PCAP_MAGIC_NANO) {
        const what = mb === 0x0a0d0d0a ? ' (pcapng is not supported yet)' : '';
        this.fail('pcap-bad-magic', `byte 0: unknown magic 0x${mb.toString(16).padStart(8, '0')}${what}`);
        return undefined;
      }
      littleEndian = false;
      nanosecond = mb === PCAP_MAGIC_NANO;
    }
    const h: PcapHeader = {
      nanosecond,
      littleEndian,
      versionMajor: v.getUint16(4, littleEndian),
      versionMinor: v.getUint16(6, littleEndian),
      snaplen: v.getUint32(16, littleEndian),
      linkType: pcapLinkType(v.getUint32(20, littleEndian)),
    };
    if (h.versionMajor !== 2)
      this.warn('pcap-version', `byte 4: unexpected version ${h.versionMajor}.${h.versionMinor}`);
    if (h.linkType !== LINKTYPE_ETHERNET)
      this.found.push({
        ...issue('pcap-linktype', `byte 20: link type ${h.linkType} is not Ethernet`, { file: this.file, line: 0 }),
        unsupported: true,
      });
    return h;
  }

  private fail(code: string, message: string): void {
    this.failed = true;
    this.found.push(issue(code, message, { file: this.file, line: 0 }));
  }

  private warn(code: string, message: string): void {
    this.found.push(issue(code, message, { file: this.file, line: 0 }, 'warning'));
  }
}

/** Reads a whole file held in memory. */
export function readPcap(bytes: Uint8Array, file = '<pcap>'): ReadResult<PcapFile> {
  const r = new PcapReader(file);
  const records = r.push(bytes);
  const issues = r.finish();
  const header = r.header;
  return { value: header === undefined ? undefined : { header, records }, issues };
}
