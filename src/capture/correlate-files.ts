/** Reads capture files into a `Correlator` (binary captures first, so pasted text can borrow their date). */
import { closeSync, constants, openSync, readSync } from 'node:fs';
import type { Ipv4 } from '../addr/ipv4.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { type CorrelateOptions, type CorrelationReport, Correlator, MAX_POINTS } from './correlate.ts';
import { type ScanSummary, scanCaptureFile } from './scanner.ts';

export interface CaptureInput {
  readonly file: string;
  readonly point: string;
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

/** `onFile` is told each capture before it is read (the CLI's progress line). */
export function correlateCaptureFiles(
  inputs: readonly CaptureInput[],
  options: CorrelateOptions = {},
  hosts?: ReadonlyMap<string, Ipv4>,
  onFile?: (done: number, total: number, input: CaptureInput) => void,
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
  const scans: ScanSummary[] = new Array(inputs.length);
  let dayNs: bigint | undefined;
  let firstSec: number | undefined;
  const unusable: string[] = [];
  for (const k of order) {
    const input = inputs[k]!;
    onFile?.(scans.filter((x) => x !== undefined).length, inputs.length, input);
    const inner = cor.sink(idx[k]!);
    const sink: Parameters<typeof scanCaptureFile>[1] = (lt, b, o, cl, ol, sec, ns, i) => {
      if (firstSec === undefined) firstSec = sec;
      inner(lt, b, o, cl, ol, sec, ns, i);
    };
    const s = scanCaptureFile(input.file, sink, {
      text: { ...(dayNs === undefined ? {} : { dayNs }), ...(hosts ? { hosts } : {}) },
    });
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
