/**
 * pcapng files (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-02.html): Section Header, Interface
 * Description, Enhanced Packet, Simple Packet and (obsolete) Packet blocks; other blocks are skipped. Several
 * sections per file, each with its own byte order and interfaces; per-interface `if_tsresol` and `if_tsoffset`.
 *
 * The parser is incremental and allocation-free per packet: `PcapngParser.parse` walks whole blocks of a buffer and
 * calls a sink with views of the input. `PcapngReader`/`readPcapng` wrap it into packet objects. Corrupt input ends
 * reading with an issue naming the byte offset; every packet before it is kept. The writer emits little-endian
 * (or, on request, big-endian) sections that tcpdump and tshark read.
 */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { PCAP_DEFAULT_SNAPLEN } from './pcap.ts';

export const PCAPNG_SHB = 0x0a0d0d0a;
export const PCAPNG_IDB = 0x00000001;
export const PCAPNG_PB = 0x00000002;
export const PCAPNG_SPB = 0x00000003;
export const PCAPNG_EPB = 0x00000006;
export const PCAPNG_BYTE_ORDER_MAGIC = 0x1a2b3c4d;

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;
export const SHB_HARDWARE = 2;
export const SHB_OS = 3;
export const SHB_USERAPPL = 4;
export const IF_NAME = 2;
export const IF_DESCRIPTION = 3;
export const IF_TSRESOL = 9;
export const IF_FCSLEN = 13;
export const IF_TSOFFSET = 14;

/** Blocks longer than this are treated as corruption rather than buffered. */
export const PCAPNG_MAX_BLOCK = 64 * 1024 * 1024;

export interface PcapngInterface {
  readonly section: number;
  readonly linkType: number;
  readonly snaplen: number;
  readonly name?: string;
  readonly description?: string;
  /** Timestamp units per second (1e6 unless `if_tsresol` says otherwise). */
  readonly unitsPerSecond: number;
  /** The raw `if_tsresol` byte (6 when absent). */
  readonly tsresol: number;
  /** `if_tsoffset`, seconds added to every timestamp. */
  readonly tsOffset: number;
  readonly fcsLength?: number;
}

export interface PcapngSection {
  readonly littleEndian: boolean;
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly hardware?: string;
  readonly os?: string;
  readonly userAppl?: string;
}

/**
 * Receives each packet: link type, a view (buffer, offset, captured length), the original length, the time as
 * seconds + nanoseconds since the epoch, and the file-wide interface index (counting across sections).
 */
export type PacketSink = (
  linkType: number,
  buf: Uint8Array,
  off: number,
  caplen: number,
  origLen: number,
  sec: number,
  nsec: number,
  iface: number,
) => void;

interface IfState {
  readonly info: PcapngInterface;
  /** Index in the file-wide interface list. */
  readonly global: number;
  readonly exact: boolean;
}

const TEXT = new TextDecoder();

/** Incremental block walker shared by the object reader and the fast correlation scanner. */
export class PcapngParser {
  readonly sections: PcapngSection[] = [];
  readonly interfaces: PcapngInterface[] = [];
  readonly issues: Issue[] = [];
  failed = false;
  packets = 0;
  private le = true;
  private current: IfState[] = [];
  private inSection = false;

  constructor(private readonly file = '<pcapng>') {}

  /**
   * Parses whole blocks of `b[off, end)`; `abs` is the file offset of `b[off]`. Returns the offset after the last
   * complete block (the caller keeps the rest for the next call), or `end` after a fatal error.
   */
  parse(b: Uint8Array, off: number, end: number, abs: number, sink: PacketSink): number {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const start = off;
    while (!this.failed && off + 12 <= end) {
      const at = abs + (off - start);
      let type = v.getUint32(off, this.le);
      if (type === PCAPNG_SHB || v.getUint32(off, true) === PCAPNG_SHB) {
        type = PCAPNG_SHB;
        const magic = v.getUint32(off + 8, true);
        if (magic === PCAPNG_BYTE_ORDER_MAGIC) this.le = true;
        else if (magic === 0x4d3c2b1a) this.le = false;
        else {
          this.fail('pcapng-bad-byte-order', `section header at byte ${at}: byte-order magic 0x${hex8(magic)}`, at);
          return end;
        }
      } else if (!this.inSection) {
        this.fail('pcapng-no-section', `byte ${at}: block 0x${hex8(type)} before any section header`, at);
        return end;
      }
      const len = v.getUint32(off + 4, this.le);
      if (len < 12 || len % 4 !== 0 || len > PCAPNG_MAX_BLOCK) {
        this.fail('pcapng-bad-block-length', `block at byte ${at}: total length ${len} is invalid`, at);
        return end;
      }
      if (off + len > end) break;
      if (v.getUint32(off + len - 4, this.le) !== len) {
        this.fail(
          'pcapng-bad-block-length',
          `block at byte ${at}: trailing length ${v.getUint32(off + len - 4, this.le)} differs from ${len}`,
          at,
        );
        return end;
      }
      switch (type) {
        case PCAPNG_SHB:
          this.section(v, off, len, at);
          break;
        case PCAPNG_IDB:
          this.idb(b, v, off, len, at);
          break;
        case PCAPNG_EPB:
          if (len < 32) {
            this.fail('pcapng-bad-block-length', `enhanced packet block at byte ${at}: length ${len} < 32`, at);
            return end;
          }
          this.epb(b, v, off, len, at, sink, 8, v.getUint32(off + 8, this.le));
          break;
        case PCAPNG_PB:
          if (len < 32) {
            this.fail('pcapng-bad-block-length', `packet block at byte ${at}: length ${len} < 32`, at);
            return end;
          }
          this.epb(b, v, off, len, at, sink, 8, v.getUint16(off + 8, this.le));
          break;
        case PCAPNG_SPB:
          this.spb(b, v, off, len, at, sink);
          break;
        default:
          break;
      }
      if (this.failed) return end;
      off += len;
    }
    return off;
  }

  /** Issues for input that ended inside a block (`left` bytes unread at file offset `at`). */
  finish(left: number, at: number): void {
    if (this.failed) return;
    if (!this.inSection && this.sections.length === 0)
      this.fail('pcapng-truncated-header', `file ends at byte ${at + left} before a complete section header`, at);
    else if (left > 0)
      this.fail('pcapng-truncated-block', `block at byte ${at} is truncated: ${left} byte(s) left at end of file`, at);
  }

  private section(v: DataView, off: number, len: number, at: number): void {
    if (len < 28) {
      this.fail('pcapng-bad-block-length', `section header at byte ${at}: length ${len} < 28`, at);
      return;
    }
    const opts = this.options(v, off + 24, off + len - 4, at);
    const s: {
      littleEndian: boolean;
      versionMajor: number;
      versionMinor: number;
      hardware?: string;
      os?: string;
      userAppl?: string;
    } = {
      littleEndian: this.le,
      versionMajor: v.getUint16(off + 12, this.le),
      versionMinor: v.getUint16(off + 14, this.le),
    };
    for (const [code, val] of opts) {
      if (code === SHB_HARDWARE) s.hardware = TEXT.decode(val);
      else if (code === SHB_OS) s.os = TEXT.decode(val);
      else if (code === SHB_USERAPPL) s.userAppl = TEXT.decode(val);
    }
    if (s.versionMajor !== 1) this.warn('pcapng-version', `section header at byte ${at}: version ${s.versionMajor}`);
    this.sections.push(s);
    this.current = [];
    this.inSection = true;
  }

  private idb(_b: Uint8Array, v: DataView, off: number, len: number, at: number): void {
    if (len < 20) {
      this.fail('pcapng-bad-block-length', `interface description at byte ${at}: length ${len} < 20`, at);
      return;
    }
    const linkType = v.getUint16(off + 8, this.le);
    const snaplen = v.getUint32(off + 12, this.le);
    let tsresol = 6;
    let tsOffset = 0;
    let name: string | undefined;
    let description: string | undefined;
    let fcsLength: number | undefined;
    for (const [code, val] of this.options(v, off + 16, off + len - 4, at)) {
      if (code === IF_TSRESOL && val.length >= 1) tsresol = val[0]!;
      else if (code === IF_NAME) name = TEXT.decode(val);
      else if (code === IF_DESCRIPTION) description = TEXT.decode(val);
      else if (code === IF_FCSLEN && val.length >= 1) fcsLength = val[0]!;
      else if (code === IF_TSOFFSET && val.length >= 8) {
        const ov = new DataView(val.buffer, val.byteOffset, 8);
        tsOffset = Number(ov.getBigInt64(0, this.le));
      }
    }
    const unitsPerSecond = tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol;
    if (!(unitsPerSecond >= 1) || !Number.isFinite(unitsPerSecond) || (tsresol & 0x7f) > 63)
      this.warn('pcapng-tsresol', `interface description at byte ${at}: if_tsresol ${tsresol} is not usable`);
    const info: PcapngInterface = {
      section: this.sections.length - 1,
      linkType,
      snaplen,
      unitsPerSecond,
      tsresol,
      tsOffset,
      ...(name !== undefined ? { name } : {}),
      ...(description !== undefined ? { description } : {}),
      ...(fcsLength !== undefined ? { fcsLength } : {}),
    };
    this.current.push({ info, global: this.interfaces.length, exact: unitsPerSecond <= 1e6 });
    this.interfaces.push(info);
  }

  private epb(
    b: Uint8Array,
    v: DataView,
    off: number,
    len: number,
    at: number,
    sink: PacketSink,
    _h: number,
    ifId: number,
  ): void {
    const ifs = this.current[ifId];
    if (ifs === undefined) {
      this.fail('pcapng-bad-interface', `packet block at byte ${at}: interface ${ifId} was not described`, at);
      return;
    }
    const hi = v.getUint32(off + 12, this.le);
    const lo = v.getUint32(off + 16, this.le);
    const caplen = v.getUint32(off + 20, this.le);
    const origLen = v.getUint32(off + 24, this.le);
    if (28 + caplen + 4 > len) {
      this.fail(
        'pcapng-bad-caplen',
        `packet block at byte ${at}: captured length ${caplen} does not fit in a ${len}-byte block`,
        at,
      );
      return;
    }
    this.emit(ifs, hi, lo, b, off + 28, caplen, origLen, sink);
  }

  private spb(b: Uint8Array, v: DataView, off: number, len: number, at: number, sink: PacketSink): void {
    const ifs = this.current[0];
    if (ifs === undefined) {
      this.fail('pcapng-bad-interface', `simple packet block at byte ${at}: no interface was described`, at);
      return;
    }
    if (len < 16) {
      this.fail('pcapng-bad-block-length', `simple packet block at byte ${at}: length ${len} < 16`, at);
      return;
    }
    const origLen = v.getUint32(off + 8, this.le);
    let caplen = Math.min(origLen, len - 16);
    if (ifs.info.snaplen > 0) caplen = Math.min(caplen, ifs.info.snaplen);
    // Simple packets carry no time; report the epoch.
    this.packets++;
    sink(ifs.info.linkType, b, off + 12, caplen, origLen, 0, 0, ifs.global);
  }

  private emit(
    ifs: IfState,
    hi: number,
    lo: number,
    b: Uint8Array,
    at: number,
    caplen: number,
    origLen: number,
    sink: PacketSink,
  ): void {
    const ups = ifs.info.unitsPerSecond;
    let sec: number;
    let nsec: number;
    if (ifs.exact) {
      const units = hi * 4294967296 + lo;
      sec = Math.floor(units / ups);
      nsec = Math.round(((units - sec * ups) * 1e9) / ups);
    } else if (ups < 137_000_000_000) {
      // Exact long division in 16-bit limbs (every intermediate stays below 2^53).
      let cur = hi >>> 16;
      let q = Math.floor(cur / ups);
      let r = cur - q * ups;
      cur = r * 65536 + (hi & 0xffff);
      let ql = Math.floor(cur / ups);
      r = cur - ql * ups;
      q = q * 65536 + ql;
      cur = r * 65536 + (lo >>> 16);
      ql = Math.floor(cur / ups);
      r = cur - ql * ups;
      q = q * 65536 + ql;
      cur = r * 65536 + (lo & 0xffff);
      ql = Math.floor(cur / ups);
      r = cur - ql * ups;
      sec = q * 65536 + ql;
      nsec = ups === 1e9 ? r : ups < 1e9 ? Math.round(r * (1e9 / ups)) : Math.floor(r / (ups / 1e9));
    } else {
      const units = (BigInt(hi) << 32n) | BigInt(lo);
      const bups = BigInt(ups);
      const s = units / bups;
      sec = Number(s);
      nsec = Number(((units - s * bups) * 1_000_000_000n) / bups);
    }
    this.packets++;
    sink(ifs.info.linkType, b, at, caplen, origLen, sec + ifs.info.tsOffset, nsec, ifs.global);
  }

  private options(v: DataView, off: number, end: number, at: number): [number, Uint8Array][] {
    const out: [number, Uint8Array][] = [];
    const bytes = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    while (off + 4 <= end) {
      const code = v.getUint16(off, this.le);
      const olen = v.getUint16(off + 2, this.le);
      if (code === OPT_ENDOFOPT) break;
      if (off + 4 + olen > end) {
        this.warn('pcapng-bad-option', `block at byte ${at}: option ${code} overruns the block`);
        break;
      }
      out.push([code, bytes.subarray(off + 4, off + 4 + olen)]);
      off += 4 + ((olen + 3) & ~3);
    }
    return out;
  }

  private fail(code: string, message: string, _at: number): void {
    this.failed = true;
    this.issues.push(issue(code, message, { file: this.file, line: 0 }));
  }

  private warn(code: string, message: string): void {
    this.issues.push(issue(code, message, { file: this.file, line: 0 }, 'warning'));
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** A packet of a pcapng file. */
export interface PcapngPacket {
  /** File-wide interface index (interfaces of later sections follow those of earlier ones). */
  readonly interfaceId: number;
  readonly linkType: number;
  readonly timeNs: bigint;
  /** A view of the input. */
  readonly bytes: Uint8Array;
  readonly originalLength: number;
}

export interface PcapngFile {
  readonly sections: readonly PcapngSection[];
  readonly interfaces: readonly PcapngInterface[];
  readonly packets: readonly PcapngPacket[];
}

/** Incremental reader: `push` chunks, get the packets completed so far; `finish` reports what was left over. */
export class PcapngReader {
  private readonly parser: PcapngParser;
  private pending: Uint8Array = new Uint8Array(0);
  private base = 0;

  constructor(file = '<pcapng>') {
    this.parser = new PcapngParser(file);
  }

  get sections(): readonly PcapngSection[] {
    return this.parser.sections;
  }

  get interfaces(): readonly PcapngInterface[] {
    return this.parser.interfaces;
  }

  get issues(): readonly Issue[] {
    return this.parser.issues;
  }

  push(chunk: Uint8Array): PcapngPacket[] {
    const out: PcapngPacket[] = [];
    if (this.parser.failed) return out;
    const b = joinBytes(this.pending, chunk);
    const sink: PacketSink = (linkType, buf, off, caplen, origLen, sec, nsec, iface) => {
      out.push({
        interfaceId: iface,
        linkType,
        timeNs: BigInt(sec) * 1_000_000_000n + BigInt(nsec),
        bytes: buf.subarray(off, off + caplen),
        originalLength: origLen,
      });
    };
    const used = this.parser.parse(b, 0, b.length, this.base, sink);
    this.pending = b.subarray(used);
    this.base += used;
    return out;
  }

  finish(): readonly Issue[] {
    this.parser.finish(this.pending.length, this.base);
    return this.parser.issues;
  }
}

export function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const j = new Uint8Array(a.length + b.length);
  j.set(a);
  j.set(b, a.length);
  return j;
}

/** Reads a whole pcapng file held in memory. */
export function readPcapng(bytes: Uint8Array, file = '<pcapng>'): ReadResult<PcapngFile> {
  const r = new PcapngReader(file);
  const packets = r.push(bytes);
  const issues = r.finish();
  if (r.sections.length === 0) return { value: undefined, issues };
  return { value: { sections: r.sections, interfaces: r.interfaces, packets }, issues };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing

export interface PcapngInterfaceInput {
  readonly linkType: number;
  readonly snaplen?: number;
  readonly name?: string;
  readonly description?: string;
  /** Decimal exponent of the timestamp unit: 6 = µs (default), 9 = ns. */
  readonly tsresol?: number;
}

export interface PcapngPacketInput {
  /** Index among the interfaces of the same section. */
  readonly interfaceId: number;
  readonly timeNs: bigint;
  readonly bytes: Uint8Array;
  readonly originalLength?: number;
  readonly comment?: string;
}

export interface PcapngSectionOptions {
  readonly bigEndian?: boolean;
  readonly hardware?: string;
  readonly os?: string;
  readonly userAppl?: string;
}

const ENC = new TextEncoder();

class BlockBuilder {
  private readonly parts: Uint8Array[] = [];
  private size = 0;
  constructor(private readonly le: boolean) {}

  u16(n: number): this {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, n, this.le);
    return this.raw(b);
  }

  u32(n: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n >>> 0, this.le);
    return this.raw(b);
  }

  raw(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
    return this;
  }

  padded(b: Uint8Array): this {
    this.raw(b);
    const pad = (4 - (b.length % 4)) % 4;
    if (pad) this.raw(new Uint8Array(pad));
    return this;
  }

  option(code: number, value: Uint8Array): this {
    return this.u16(code).u16(value.length).padded(value);
  }

  /** The block: type, total length, body, total length. */
  block(type: number): Uint8Array {
    const total = this.size + 12;
    const out = new Uint8Array(total);
    const v = new DataView(out.buffer);
    v.setUint32(0, type, this.le);
    v.setUint32(4, total, this.le);
    let off = 8;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    v.setUint32(total - 4, total, this.le);
    return out;
  }
}

/**
 * A streaming pcapng writer for one section: `header()` first, then `interface()` for each interface, then
 * `packet()`/`simplePacket()` in any order. Concatenating the output of several writers gives a multi-section file.
 */
export class PcapngWriter {
  private readonly le: boolean;
  private readonly resol: number[] = [];

  constructor(private readonly options: PcapngSectionOptions = {}) {
    this.le = !options.bigEndian;
  }

  header(): Uint8Array {
    const b = new BlockBuilder(this.le).u32(PCAPNG_BYTE_ORDER_MAGIC).u16(1).u16(0).u32(0xffffffff).u32(0xffffffff);
    const o = this.options;
    let any = false;
    if (o.hardware !== undefined) {
      any = true;
      b.option(SHB_HARDWARE, ENC.encode(o.hardware));
    }
    if (o.os !== undefined) {
      any = true;
      b.option(SHB_OS, ENC.encode(o.os));
    }
    if (o.userAppl !== undefined) {
      any = true;
      b.option(SHB_USERAPPL, ENC.encode(o.userAppl));
    }
    if (any) b.u32(0);
    return b.block(PCAPNG_SHB);
  }

  interface(i: PcapngInterfaceInput): Uint8Array {
    const tsresol = i.tsresol ?? 6;
    this.resol.push(tsresol);
    const b = new BlockBuilder(this.le)
      .u16(i.linkType)
      .u16(0)
      .u32(i.snaplen ?? PCAP_DEFAULT_SNAPLEN);
    let any = false;
    if (i.name !== undefined) {
      any = true;
      b.option(IF_NAME, ENC.encode(i.name));
    }
    if (i.description !== undefined) {
      any = true;
      b.option(IF_DESCRIPTION, ENC.encode(i.description));
    }
    if (tsresol !== 6) {
      any = true;
      b.option(IF_TSRESOL, Uint8Array.of(tsresol));
    }
    if (any) b.u32(0);
    return b.block(PCAPNG_IDB);
  }

  packet(p: PcapngPacketInput): Uint8Array {
    const resol = this.resol[p.interfaceId];
    if (resol === undefined) throw new Error(`pcapng writer: interface ${p.interfaceId} was not written`);
    const t = p.timeNs < 0n ? 0n : p.timeNs;
    const units = resol >= 9 ? t * 10n ** BigInt(resol - 9) : t / 10n ** BigInt(9 - resol);
    const b = new BlockBuilder(this.le)
      .u32(p.interfaceId)
      .u32(Number(units >> 32n))
      .u32(Number(units & 0xffffffffn))
      .u32(p.bytes.length)
      .u32(p.originalLength ?? p.bytes.length)
      .padded(p.bytes);
    if (p.comment !== undefined) b.option(OPT_COMMENT, ENC.encode(p.comment)).u32(0);
    return b.block(PCAPNG_EPB);
  }

  /** A Simple Packet Block (interface 0, no timestamp). */
  simplePacket(bytes: Uint8Array, originalLength = bytes.length): Uint8Array {
    return new BlockBuilder(this.le).u32(originalLength).padded(bytes).block(PCAPNG_SPB);
  }
}

/** One section with its interfaces and packets, as one buffer. */
export function writePcapng(
  interfaces: readonly PcapngInterfaceInput[],
  packets: readonly PcapngPacketInput[],
  options: PcapngSectionOptions = {},
): Uint8Array {
  const w = new PcapngWriter(options);
  const parts = [w.header(), ...interfaces.map((i) => w.interface(i)), ...packets.map((p) => w.packet(p))];
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
