/**
 * Real-world captures nobody here wrote (tcpdump's own test captures, the pcapng test generator's files; see
 * ../shared/conformance/realworld/README.md): `captures` on each one alone must end, count the packets libpcap
 * reads, report nothing as vanished (one point cannot say where a packet went next) and refuse the link types it
 * does not decode with one clear `unsupported` issue.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { correlateCaptureFiles } from '../src/capture/correlate-files.ts';
import { timeOfDay } from '../src/capture/render-correlation.ts';
import { scanCaptureFile } from '../src/capture/scanner.ts';

const DIR = join(import.meta.dirname, '..', '..', 'shared', 'conformance', 'realworld');
const SKIP = existsSync(DIR) ? undefined : `${DIR} is absent (the real-world suite lives beside the repository)`;

function tsv(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => l.split('\t'));
}

describe.skipIf(SKIP !== undefined)('tcpdump test captures, each one capture point alone', () => {
  const rows = SKIP ? [] : tsv(join(DIR, 'pcaps', 'captures-manifest.tsv'));
  let read = 0;
  let refused = 0;
  it.each(rows.map((r) => [r[0]!, r[1]!, r[2]!, r[3] ?? '']))('%s (%s, %s packets: %s)', (name, kind, count) => {
    const file = join(DIR, 'pcaps', 'files', name);
    const r = correlateCaptureFiles([{ file, point: 'p' }]);
    if (kind === 'unsupported') {
      expect(r.report).toBeUndefined();
      const errors = r.issues.filter((i) => i.severity === 'error');
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatchObject({ code: 'capture-linktype', unsupported: true });
      expect(errors[0]!.message).toMatch(/link type \d+ \(LINKTYPE_[A-Z0-9_]+\) is not supported/);
      refused++;
      return;
    }
    expect(r.report, r.issues.map((i) => i.message).join('; ')).toBeDefined();
    expect(r.report!.sightings).toBe(Number(count));
    expect(r.report!.missing).toBe(0);
    expect(r.report!.vanished).toEqual([]);
    read++;
  });
  it('counts what it read and refused', () => {
    expect(read + refused).toBe(rows.length);
    expect(refused).toBe(rows.filter((r) => r[1] === 'unsupported').length);
  });
});

describe.skipIf(SKIP !== undefined)('pcapng test-generator files', () => {
  const rows = SKIP ? [] : tsv(join(DIR, 'pcapng', 'expected.tsv'));
  it('has files to read', () => expect(rows.length).toBeGreaterThan(40));
  it.each(rows.map((r) => [r[0]!, r[1]!, r[2] ?? '']))(
    '%s: %s packets at the times tshark reads',
    (name, count, times) => {
      const file = join(DIR, 'pcapng', name);
      const seen: string[] = [];
      const s = scanCaptureFile(file, (_lt, _b, _o, _cl, _ol, sec, ns) => {
        seen.push(timeOfDay(BigInt(sec) * 1_000_000_000n + BigInt(ns)).slice(0, 15));
      });
      expect(s.packets).toBe(Number(count));
      expect(seen.join(',')).toBe(times);
      const r = correlateCaptureFiles([{ file, point: 'p' }]);
      if (Number(count) > 0) expect(r.report?.sightings).toBe(Number(count));
    },
  );
});
