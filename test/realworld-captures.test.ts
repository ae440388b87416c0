/**
 * Real-world captures nobody here wrote (tcpdump's own test captures, the pcapng test generator's files; see
 * ../shared/conformance/realworld/README.md): `captures` on each one alone must end, count the packets libpcap
 * reads, report nothing as vanished (one point cannot say where a packet went next) and refuse the link types it
 * does not decode with one clear `unsupported` issue.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { correlateCaptureFiles } from '../src/capture/correlate-files.ts';
import { timeOfDay } from '../src/capture/render-correlation.ts';
import { scanCaptureFile } from '../src/capture/scanner.ts';
import { localInterfaceName, showCapture } from '../src/capture/show.ts';
import { TCPDUMP_E_VVV, TCPDUMP_LINK_TYPES, TCPDUMP_NN } from '../src/wire/tcpdump.ts';
import { externalSuite, skippedBecause } from './support/conformance.ts';
import { tcpdumpFrames } from './support/tcpdump-frames.ts';

const SUITE = externalSuite('conformance/realworld/');
const DIR = fileURLToPath(SUITE.dir);
const SKIP = SUITE.skip;
skippedBecause(SKIP);

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

describe.skipIf(SKIP !== undefined)('captures show against what tcpdump 4.99.3 printed for the same captures', () => {
  const expected = SKIP ? [] : readdirSync(join(DIR, 'pcaps', 'expected')).filter((f) => f.endsWith('.txt'));
  const totals = { frames: 0, identical: 0, undecoded: 0, files: 0 };
  it.each(expected)('%s: every frame it says it decodes is byte-identical', (name) => {
    const [, capture, mode] = /^(.*)\.(evvv|nn)\.txt$/.exec(name)!;
    const file = join(DIR, 'pcaps', 'files', capture!);
    let text = '';
    const r = showCapture(file, mode === 'evvv' ? TCPDUMP_E_VVV : TCPDUMP_NN, (t) => {
      text += t;
    });
    const want = tcpdumpFrames(readFileSync(join(DIR, 'pcaps', 'expected', name), 'utf8'));
    if (r.notRendered.size > 0 || r.issues.some((i) => i.severity === 'error')) {
      // Link types lvsdoctor does not read: said, not printed.
      expect(r.notRendered.size + r.issues.length).toBeGreaterThan(0);
      return;
    }
    const got = tcpdumpFrames(text);
    expect(got.length).toBe(want.length);
    const undecoded = new Set([...r.undecoded.values()].flat());
    let identical = 0;
    for (let k = 0; k < want.length; k++) {
      if (got[k] === want[k]) identical++;
      else expect(undecoded.has(k + 1), `frame ${k + 1} is said to be decoded:\n${got[k]}\n${want[k]}`).toBe(true);
    }
    expect(r.decoded + undecoded.size).toBe(want.length);
    totals.frames += want.length;
    totals.identical += identical;
    totals.undecoded += undecoded.size;
    totals.files++;
  });
  it('reports the counts', () => {
    // Printed for the closing note: frames identical to tcpdump out of all frames of Ethernet captures (both modes).
    console.log(
      `captures show: ${totals.identical}/${totals.frames} frames identical to tcpdump in ${totals.files} outputs; ${totals.undecoded} frames named as not decoded`,
    );
    expect(totals.identical).toBeGreaterThanOrEqual(totals.frames - totals.undecoded);
  });
});

/** tcpdump 4.99.3 as installed here, else why the comparison with a fresh run is skipped. */
function liveTcpdump(): string | undefined {
  const r = spawnSync('/usr/bin/tcpdump', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return 'skipped: /usr/bin/tcpdump is not installed';
  const v = /tcpdump version (\S+)/.exec(r.stdout)?.[1];
  return v === '4.99.3' ? undefined : `skipped: /usr/bin/tcpdump is version ${v}, not 4.99.3`;
}
const NO_TCPDUMP = SKIP ?? liveTcpdump();

describe.skipIf(NO_TCPDUMP !== undefined)(
  `captures show on the suite's captures of other link types (Linux cooked, raw IP, null), against a fresh run of tcpdump 4.99.3${NO_TCPDUMP ? ` (${NO_TCPDUMP})` : ''}`,
  () => {
    const files = NO_TCPDUMP
      ? []
      : readdirSync(join(DIR, 'pcaps', 'files')).filter((f) => {
          let lt = -1;
          scanCaptureFile(join(DIR, 'pcaps', 'files', f), (t) => {
            lt = t;
          });
          return lt !== 1 && TCPDUMP_LINK_TYPES.has(lt);
        });
    const totals = { frames: 0, identical: 0, undecoded: 0, files: 0 };
    const modes = [
      { args: ['-nn'], options: TCPDUMP_NN },
      { args: ['-e', '-vvv', '-nnn'], options: TCPDUMP_E_VVV },
    ];
    it('has such captures', () => expect(files.length).toBeGreaterThanOrEqual(5));
    it.each(files.flatMap((f) => modes.map((m) => [f, m.args.join(' '), m] as const)))(
      '%s %s: every frame it says it decodes is byte-identical',
      (name, _args, m) => {
        const file = join(DIR, 'pcaps', 'files', name);
        let text = '';
        const r = showCapture(file, { ...m.options, interfaceName: localInterfaceName }, (t) => {
          text += t;
        });
        expect(r.notRendered.size).toBe(0);
        const run = spawnSync('/usr/bin/tcpdump', ['-r', file, ...m.args], {
          encoding: 'utf8',
          env: { ...process.env, TZ: 'UTC' },
        });
        const want = tcpdumpFrames(run.stdout);
        const got = tcpdumpFrames(text);
        expect(got.length).toBe(want.length);
        const undecoded = new Set([...r.undecoded.values()].flat());
        for (let k = 0; k < want.length; k++) {
          if (got[k] === want[k]) totals.identical++;
          else expect(undecoded.has(k + 1), `frame ${k + 1} is said to be decoded:\n${got[k]}\n${want[k]}`).toBe(true);
        }
        totals.frames += want.length;
        totals.undecoded += undecoded.size;
        totals.files++;
      },
    );
    it('reports the counts', () => {
      console.log(
        `captures show, other link types: ${totals.identical}/${totals.frames} frames identical to tcpdump in ${totals.files} outputs; ${totals.undecoded} frames named as not decoded`,
      );
      expect(totals.identical).toBeGreaterThanOrEqual(totals.frames - totals.undecoded);
    });
  },
);
