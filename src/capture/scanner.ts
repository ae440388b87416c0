/**
 * One streaming entry point for every capture format: classic pcap, pcapng and pasted tcpdump text, detected from
 * the first bytes. Packets go to a `PacketSink` as views of the input (no copy, no allocation per packet), so the
 * correlation can read hundreds of megabytes per second. Corrupt or truncated input stops reading with an issue
 * naming the file and byte offset; every packet before it has been delivered.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { isSupportedLinkType, LINKTYPE_RAW, linkTypeIssue } from './link.ts';
import {
  LINKTYPE_ETHERNET,
  PCAP_DEFAULT_SNAPLEN,
  PCAP_HEADER_LEN,
  PCAP_MAGIC_MICRO,
  PCAP_MAGIC_NANO,
  PCAP_RECORD_HEADER_LEN,
  pcapLinkType,
  pcapSnapshot,
} from './pcap.ts';
import { type PacketSink, PCAPNG_SHB, PcapngParser } from './pcapng.ts';
import { readTcpdumpText, type TextReadOptions } from './tcpdump-text.ts';

export type { PacketSink } from './pcapng.ts';

export type CaptureFormat = 'pcap' | 'pcapng' | 'tcpdump-text';

/** What a capture can tell: tcpdump text lacks payload bytes, `-nn` text also the IP id and TTL. */
export interface FieldKnowledge {
  /** MAC addresses are real (tcpdump text without `-e` has none; link types may lack them too). */
  readonly link: boolean;
  readonly ipId: boolean;
  readonly ttl: boolean;
  readonly payload: boolean;
}

export const ALL_FIELDS: FieldKnowledge = { link: true, ipId: true, ttl: true, payload: true };

export interface ScanSummary {
  readonly file: string;
  readonly format: CaptureFormat | undefined;
  readonly packets: number;
  readonly bytes: number;
  /** Link types seen (one per pcap file, one per interface for pcapng). */
  readonly linkTypes: readonly number[];
  readonly fields: FieldKnowledge;
  readonly issues: readonly Issue[];
}

/** Incremental scanner; feed chunks with `push`, end with `finish`. */
export class CaptureScanner {
  format: CaptureFormat | undefined;
  packets = 0;
  fields: FieldKnowledge = ALL_FIELDS;
  readonly issues: Issue[] = [];
  readonly linkTypes: number[] = [];
  private pending: Uint8Array = new Uint8Array(0);
  private base = 0;
  private failed = false;
  private ng: PcapngParser | undefined;
  private pcapLe = true;
  private pcapNano = false;
  private pcapLink = LINKTYPE_ETHERNET;
  private pcapLimit = PCAP_DEFAULT_SNAPLEN;
  private pcapSnap = PCAP_DEFAULT_SNAPLEN;
  private text: string[] = [];
  private reportedLinks = new Set<number>();
  private readonly decoder = new TextDecoder();

  constructor(
    readonly file: string,
    private readonly textOptions: TextReadOptions = {},
  ) {}

  /**
   * Scans `b[off, end)` (the caller's buffer; views passed to the sink are only valid during the call) and returns
   * the offset of the first byte not consumed; the caller must present those bytes again, followed by more input.
   */
  scan(b: Uint8Array, off: number, end: number, sink: PacketSink): number {
    if (this.failed) return end;
    if (this.format === undefined) {
      if (end - off < 4) return off;
      const v = new DataView(b.buffer, b.byteOffset + off, end - off);
      const le = v.getUint32(0, true);
      const be = v.getUint32(0, false);
      if (le === PCAPNG_SHB) {
        this.format = 'pcapng';
        this.ng = new PcapngParser(this.file);
      } else if (le === PCAP_MAGIC_MICRO || le === PCAP_MAGIC_NANO || be === PCAP_MAGIC_MICRO || be === PCAP_MAGIC_NANO)
        this.format = 'pcap';
      else if (looksLikeText(b, off, end)) this.format = 'tcpdump-text';
      else {
        this.fail('capture-bad-magic', `byte 0: not a pcap, pcapng or tcpdump text file (magic 0x${hex8(be)})`);
        return end;
      }
    }
    switch (this.format) {
      case 'pcapng':
        return this.scanNg(b, off, end, sink);
      case 'pcap':
        return this.scanPcap(b, off, end, sink);
      case 'tcpdump-text':
        this.text.push(this.decoder.decode(b.subarray(off, end), { stream: true }));
        this.base += end - off;
        return end;
    }
  }

  /** Convenience for chunked input that the scanner buffers itself (the chunks are copied when split). */
  push(chunk: Uint8Array, sink: PacketSink): void {
    const b = this.pending.length ? join(this.pending, chunk) : chunk;
    const used = this.scan(b, 0, b.length, sink);
    this.pending = used < b.length ? b.slice(used) : new Uint8Array(0);
  }

  /** Ends the input; `left` bytes were not consumed by `scan` (when the caller manages the buffer). */
  finish(sink: PacketSink, left = this.pending.length): readonly Issue[] {
    if (this.failed) return this.issues;
    if (this.format === undefined) {
      this.fail('capture-truncated-header', `file ends at byte ${left} before a capture header`);
    } else if (this.format === 'pcapng') {
      this.ng!.finish(left, this.base);
      this.collectNg();
    } else if (this.format === 'pcap') {
      if (this.base === 0 && left < PCAP_HEADER_LEN)
        this.fail('pcap-truncated-header', `file ends at byte ${left} inside the 24-byte header`);
      else if (left > 0)
        this.fail(
          'pcap-truncated-record',
          `record at byte ${this.base} is truncated: ${left} byte(s) left at end of file`,
        );
    } else {
      this.text.push(this.decoder.decode());
      const text = this.text.join('');
      const r = readTcpdumpText(text, this.file, this.textOptions);
      appendAll(this.issues, r.issues);
      this.fields = r.fields;
      this.linkTypes.push(r.fields.link ? LINKTYPE_ETHERNET : LINKTYPE_RAW);
      for (const p of r.packets) {
        const sec = Number(p.timeNs / 1_000_000_000n);
        const nsec = Number(p.timeNs % 1_000_000_000n);
        this.packets++;
        sink(p.linkType, p.bytes, 0, p.bytes.length, p.bytes.length, sec, nsec, 0);
      }
      if (r.packets.length === 0 && !this.issues.some((i) => i.severity === 'error'))
        this.fail(
          'tcpdump-text-empty',
          `no tcpdump packet line found ${text === '' ? '(the file is empty: byte 0)' : `in lines 1-${lineCount(text)}`} (expected 'HH:MM:SS.ffffff …' lines as tcpdump prints them)`,
        );
    }
    return this.issues;
  }

  get consumed(): number {
    return this.base;
  }

  private scanNg(b: Uint8Array, off: number, end: number, sink: PacketSink): number {
    const ng = this.ng!;
    const before = ng.interfaces.length;
    const used = ng.parse(b, off, end, this.base, (lt, buf, o, cl, ol, s, ns, i) => {
      if (!isSupportedLinkType(lt)) {
        if (!this.reportedLinks.has(i)) {
          this.reportedLinks.add(i);
          this.issues.push(linkTypeIssue(this.file, lt, `interface ${i}`));
        }
        return;
      }
      this.packets++;
      sink(lt, buf, o, cl, ol, s, ns, i);
    });
    for (let i = before; i < ng.interfaces.length; i++) this.linkTypes.push(ng.interfaces[i]!.linkType);
    this.base += used - off;
    if (ng.failed) {
      this.collectNg();
      this.failed = true;
      return end;
    }
    return used;
  }

  private collectNg(): void {
    const ng = this.ng!;
    for (const i of ng.issues) if (!this.issues.includes(i)) this.issues.push(i);
  }

  private scanPcap(b: Uint8Array, off: number, end: number, sink: PacketSink): number {
    const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const start = off;
    if (this.base === 0 && this.linkTypes.length === 0) {
      if (end - off < PCAP_HEADER_LEN) return off;
      const m = v.getUint32(off, true);
      this.pcapLe = m === PCAP_MAGIC_MICRO || m === PCAP_MAGIC_NANO;
      const magic = v.getUint32(off, this.pcapLe);
      this.pcapNano = magic === PCAP_MAGIC_NANO;
      const major = v.getUint16(off + 4, this.pcapLe);
      if (major !== 2) this.warn('pcap-version', `byte 4: unexpected version ${major}`);
      const snap = v.getUint32(off + 16, this.pcapLe);
      this.pcapLimit = Math.max(snap, PCAP_DEFAULT_SNAPLEN);
      this.pcapSnap = pcapSnapshot(snap);
      this.pcapLink = pcapLinkType(v.getUint32(off + 20, this.pcapLe));
      this.linkTypes.push(this.pcapLink);
      if (!isSupportedLinkType(this.pcapLink)) {
        this.issues.push(linkTypeIssue(this.file, this.pcapLink, 'byte 20'));
        this.failed = true;
        return end;
      }
      off += PCAP_HEADER_LEN;
    }
    const le = this.pcapLe;
    const nano = this.pcapNano;
    const limit = this.pcapLimit;
    const snapshot = this.pcapSnap;
    const link = this.pcapLink;
    while (off + PCAP_RECORD_HEADER_LEN <= end) {
      const caplen = v.getUint32(off + 8, le);
      if (caplen > limit) {
        this.base += off - start;
        this.fail(
          'pcap-bad-caplen',
          `record at byte ${this.base}: captured length ${caplen} exceeds ${limit} (corrupt from here on)`,
        );
        return end;
      }
      const next = off + PCAP_RECORD_HEADER_LEN + caplen;
      if (next > end) break;
      const frac = v.getUint32(off + 4, le);
      this.packets++;
      sink(
        link,
        b,
        off + PCAP_RECORD_HEADER_LEN,
        Math.min(caplen, snapshot),
        v.getUint32(off + 12, le),
        v.getUint32(off, le),
        nano ? frac : frac * 1000,
        0,
      );
      off = next;
    }
    this.base += off - start;
    return off;
  }

  private fail(code: string, message: string): void {
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

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const j = new Uint8Array(a.length + b.length);
  j.set(a);
  j.set(b, a.length);
  return j;
}

/** tcpdump text starts with a time (`11:39:19.372804`, `1465299559.372804`, `2016-06-07 …`) or blank lines. */
function looksLikeText(b: Uint8Array, off: number, end: number): boolean {
  const n = Math.min(end - off, 256);
  for (let i = 0; i < n; i++) {
    const c = b[off + i]!;
    if (c === 9 || c === 10 || c === 13) continue;
    if (c < 32 || c > 126) return false;
  }
  return true;
}

function summary(s: CaptureScanner, bytes: number): ScanSummary {
  return {
    file: s.file,
    format: s.format,
    packets: s.packets,
    bytes,
    linkTypes: s.linkTypes,
    fields: s.fields,
    issues: s.issues,
  };
}

/** Scans a capture held in memory. */
export function scanCaptureBytes(
  bytes: Uint8Array,
  file: string,
  sink: PacketSink,
  text: TextReadOptions = {},
): ScanSummary {
  const s = new CaptureScanner(file, text);
  const used = s.scan(bytes, 0, bytes.length, sink);
  s.finish(sink, bytes.length - used);
  return summary(s, bytes.length);
}

/**
 * Scans a file from disk in large chunks, reusing one buffer (views given to the sink die after the call).
 * Read errors become issues.
 */
export function scanCaptureFile(
  path: string,
  sink: PacketSink,
  options: {
    readonly chunkSize?: number;
    readonly text?: TextReadOptions;
    /**
     * Told the bytes read so far after each chunk (and the file's size), e.g. for a progress line; returning `false`
     * stops reading there (what was read is kept, as after damage).
     */
    readonly onChunk?: (bytesRead: number, size: number) => boolean | undefined;
  } = {},
): ScanSummary {
  const chunkSize = options.chunkSize ?? 2 * 1024 * 1024;
  const s = new CaptureScanner(path, options.text);
  let fd: number;
  try {
    // Non-blocking, and only a regular file: a FIFO or a device would block or never end.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    s.issues.push(issue('capture-open', `cannot open: ${(e as Error).message}`, { file: path, line: 0 }));
    return summary(s, 0);
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    s.issues.push(
      issue('capture-open', 'not a regular file (a FIFO, device or socket is never read)', { file: path, line: 0 }),
    );
    return summary(s, 0);
  }
  const size = fstatSync(fd).size;
  let stopped = false;
  let buf = new Uint8Array(chunkSize);
  let have = 0;
  let total = 0;
  try {
    for (;;) {
      if (have === buf.length) {
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf);
        buf = bigger;
      }
      const n = readSync(fd, buf, have, buf.length - have, null);
      if (n === 0) break;
      total += n;
      have += n;
      const used = s.scan(buf, 0, have, sink);
      if (used > 0) {
        buf.copyWithin(0, used, have);
        have -= used;
      }
      if (options.onChunk?.(total, size) === false) {
        stopped = true;
        break;
      }
    }
  } catch (e) {
    s.issues.push(
      issue('capture-read', `read error after byte ${total}: ${(e as Error).message}`, { file: path, line: 0 }),
    );
  } finally {
    closeSync(fd);
  }
  // Stopped on purpose: the bytes left are the start of a record not read, not damage.
  if (!stopped) s.finish(sink, have);
  return summary(s, total);
}

/** Lines in `text` (a last line without a newline counts), without splitting it. */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.endsWith('\n') ? n : n + 1;
}
