/** Reads capture files into a `Correlator` (binary captures first, so pasted text can borrow their date). */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import type { Ipv4 } from '../addr/ipv4.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { type CorrelateOptions, type CorrelationReport, Correlator, MAX_POINTS } from './correlate.ts';
import { type ScanSummary, scanCaptureFile } from './scanner.ts';
import type { TextNames } from './tcpdump-text.ts';

export interface CaptureInput {
  readonly file: string;
  readonly point: string;
  /**
   * Names a paste of this point printed without `-n` (the capturing guest's /etc/hosts and /etc/services first):
   * used instead of the run's `hosts` for this file.
   */
  readonly names?: TextNames;
}

export interface CorrelatedFiles {
  /** Undefined when nothing usable was read (then `issues` says why). */
  readonly report: CorrelationReport | undefined;
  readonly scans: readonly ScanSummary[];
  readonly issues: readonly Issue[];
  /** A capture had errors and yielded no packet at all. */
  readonly unusable: readonly string[];
}

/** Whether a capture file is text (pasted tcpdump output) rather than pcap or pcapng, from its first bytes. */
export function isText(file: string): boolean {
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const b = new Uint8Array(64);
      const n = readSync(fd, b, 0, 64, 0);
      for (let i = 0; i < n; i++) {
        const c = b[i]!;
        if ((c < 32 || c > 126) && c !== 9 && c !== 10 && c !== 13) return false;
      }
      return n > 0;
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** The size of a pcap or pcapng file and the bytes its format adds to each record; 0 bytes for text or unreadable. */
function binaryCaptureSize(file: string): { bytes: number; recordOverhead: number } {
  try {
    const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) return { bytes: 0, recordOverhead: 16 };
      const b = new Uint8Array(4);
      const n = readSync(fd, b, 0, 4, 0);
      if (n < 4) return { bytes: 0, recordOverhead: 16 };
      const magic = ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
      if (magic === 0x0a0d0d0a) return { bytes: st.size, recordOverhead: 32 };
      const pcap = [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1].includes(magic);
      return { bytes: pcap ? st.size : 0, recordOverhead: 16 };
    } finally {
      closeSync(fd);
    }
  } catch {
    return { bytes: 0, recordOverhead: 16 };
  }
}

/**
 * Sightings one run correlates at most: memory is about 120 bytes a packet whatever its size (docs/limits.md), so
 * this bounds a run to about 2 GB. Past it, reading stops and the run is refused (exit 2) with how to cut the captures.
 */
export const MAX_CORRELATED_PACKETS = 16_000_000;

/** Where reading the captures is: the capture being read (`done` before it), and the bytes read of it. */
export type CaptureProgress = (
  done: number,
  total: number,
  input: CaptureInput,
  bytesRead: number,
  size: number,
) => void;

/**
 * `onProgress` is told each capture before it is read and the bytes read of it after each chunk (the CLI's
 * progress line). `maxPackets` (default `MAX_CORRELATED_PACKETS`) bounds the sightings of the run.
 */
export function correlateCaptureFiles(
  inputs: readonly CaptureInput[],
  options: CorrelateOptions = {},
  hosts?: ReadonlyMap<string, Ipv4>,
  onProgress?: CaptureProgress,
  maxPackets = MAX_CORRELATED_PACKETS,
): CorrelatedFiles {
  const issues: Issue[] = [];
  if (inputs.length > MAX_POINTS) {
    issues.push(issue('captures-too-many', `at most ${MAX_POINTS} capture points (got ${inputs.length})`));
    return { report: undefined, scans: [], issues, unusable: [] };
  }
  const cor = new Correlator(options);
  const idx = inputs.map((i) => cor.addPoint(i.point, i.file));
  const order = inputs
    .map((_, k) => k)
    .sort((a, b) => Number(isText(inputs[a]!.file)) - Number(isText(inputs[b]!.file)));
  // Binary captures are read first: their sizes (with the record overhead of their format) size the columns once.
  let binary = 0;
  let overhead = 0;
  for (const i of inputs) {
    const size = binaryCaptureSize(i.file);
    binary += size.bytes;
    overhead += size.bytes * size.recordOverhead;
  }
  if (binary > 0) cor.expectBytes(binary, overhead / binary);
  const scans: ScanSummary[] = new Array(inputs.length);
  let dayNs: bigint | undefined;
  let firstSec: number | undefined;
  const unusable: string[] = [];
  let done = 0;
  let tooMany = false;
  for (const k of order) {
    const input = inputs[k]!;
    onProgress?.(done, inputs.length, input, 0, 0);
    const inner = cor.sink(idx[k]!);
    const sink: Parameters<typeof scanCaptureFile>[1] = (lt, b, o, cl, ol, sec, ns, i) => {
      if (firstSec === undefined) firstSec = sec;
      inner(lt, b, o, cl, ol, sec, ns, i);
    };
    const s = scanCaptureFile(input.file, sink, {
      text: {
        ...(dayNs === undefined ? {} : { dayNs }),
        ...(input.names?.hosts ? { hosts: input.names.hosts } : hosts ? { hosts } : {}),
        ...(input.names?.services ? { services: input.names.services } : {}),
      },
      onChunk: (bytes, size) => {
        onProgress?.(done, inputs.length, input, bytes, size);
        if (cor.sightingCount > maxPackets) tooMany = true;
        return !tooMany;
      },
    });
    done++;
    if (tooMany) {
      issues.push(
        issue(
          'captures-too-many-packets',
          `more than ${maxPackets} packets in the captures together (read up to byte ${s.bytes} of this one); at most ${maxPackets} are correlated at once (about 120 bytes of memory each): cut them to the time of interest, e.g. editcap -A/-B, or tcpdump -r with a filter`,
          { file: input.file, line: 0 },
        ),
      );
      return { report: undefined, scans, issues, unusable: [] };
    }
    if (dayNs === undefined && firstSec !== undefined) dayNs = (BigInt(firstSec) / 86_400n) * 86_400_000_000_000n;
    scans[k] = s;
    cor.setPointKnowledge(idx[k]!, s.fields, s.linkTypes);
    appendAll(issues, s.issues);
    if (s.packets === 0 && s.issues.some((i) => i.severity === 'error')) unusable.push(input.file);
  }
  cor.addIssues([]);
  const report = unusable.length === 0 ? cor.finish() : undefined;
  return { report, scans, issues, unusable };
}
