/**
 * Memory of the correlation follows the packets, not the bytes (issue 15): captures are read in chunks, every packet
 * keeps a fixed row of key fields, the rows are sized from the bytes still to read (not doubled), and a run stops with
 * a clear refusal past `MAX_CORRELATED_PACKETS`. Peak memory per input size is measured in bench/captures.ts and
 * stated in docs/limits.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { manyTcpRecords } from '../../test/support/synthetic-captures.ts';
import { Correlator } from './correlate.ts';
import { correlateCaptureFiles } from './correlate-files.ts';
import { writePcap } from './pcap.ts';
import { scanCaptureFile } from './scanner.ts';

const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-capmem-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `n` packets of a few flows, `payload` bytes each. */
function capture(name: string, n: number, payload: number): string {
  const file = join(dir, name);
  writeFileSync(file, writePcap(manyTcpRecords(n, payload)));
  return file;
}

describe('correlation memory follows the packets', () => {
  it('sizes its rows from the bytes to read: small and large packets alike, within a few percent of the count', () => {
    for (const [name, n, payload] of [
      ['small.pcap', 60_000, 10],
      ['large.pcap', 8_000, 1400],
    ] as const) {
      const file = capture(name, n, payload);
      const cor = new Correlator();
      cor.addPoint('a:eth0', file);
      const size = scanCaptureFile(file, () => {}).bytes;
      cor.expectBytes(size, 16);
      const s = scanCaptureFile(file, cor.sink(0));
      expect(s.packets).toBe(n);
      expect(cor.sightingCount).toBe(n);
      expect(cor.rowCapacity, name).toBeLessThanOrEqual(Math.ceil(n * 1.1));
    }
  });

  it('without a size to go by it grows by half, not by doubling', () => {
    const file = capture('grow.pcap', 20_000, 10);
    const cor = new Correlator();
    cor.addPoint('a:eth0', file);
    scanCaptureFile(file, cor.sink(0));
    expect(cor.rowCapacity).toBeLessThanOrEqual(Math.ceil(20_000 * 1.5));
  });

  it('refuses a run past the packet limit, naming the file and how to cut it, without a damage issue', () => {
    // More than one 2 MiB chunk, so reading stops before the end of the file.
    const file = capture('many.pcap', 50_000, 40);
    const r = correlateCaptureFiles([{ file, point: 'a:eth0' }], {}, undefined, undefined, 1000);
    expect(r.report).toBeUndefined();
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]).toMatchObject({ code: 'captures-too-many-packets', severity: 'error', pos: { file } });
    expect(r.issues[0]!.message).toMatch(/more than 1000 packets .* editcap -A\/-B/);
    const all = correlateCaptureFiles([{ file, point: 'a:eth0' }]);
    expect(all.report?.sightings).toBe(50_000);
  });

  it('tells progress per chunk read, up to the whole file', () => {
    const file = capture('progress.pcap', 50_000, 40);
    const seen: [number, number][] = [];
    correlateCaptureFiles([{ file, point: 'a:eth0' }], {}, undefined, (_d, _t, _i, bytes, size) => {
      seen.push([bytes, size]);
    });
    const size = scanCaptureFile(file, () => {}).bytes;
    expect(seen.length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toEqual([size, size]);
    for (let k = 1; k < seen.length; k++) expect(seen[k]![0]).toBeGreaterThanOrEqual(seen[k - 1]![0]);
  });
});
