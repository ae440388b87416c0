import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildTcpdumpCorpus } from '../../test/support/tcpdump-corpus.ts';
import { renderTcpdump, TCPDUMP_E_VVV, TCPDUMP_NN, type TcpdumpOptions } from '../wire/tcpdump.ts';
import { writePcap } from './pcap.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/tcpdump/', import.meta.url));
const TCPDUMP = '/usr/bin/tcpdump';
const TCPDUMP_VERSION = '4.99.3';
const MODES: readonly { readonly file: string; readonly args: readonly string[]; readonly options: TcpdumpOptions }[] =
  [
    { file: 'corpus.e-vvv-nnn.txt', args: ['-e', '-vvv', '-nnn'], options: TCPDUMP_E_VVV },
    { file: 'corpus.nn.txt', args: ['-nn'], options: TCPDUMP_NN },
  ];

const corpus = buildTcpdumpCorpus();
const pcap = writePcap(corpus);

function tcpdumpVersion(): string | undefined {
  const r = spawnSync(TCPDUMP, ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return /tcpdump version (\S+)/.exec(r.stdout)?.[1];
}

function runTcpdump(file: string, args: readonly string[]): string {
  const r = spawnSync(TCPDUMP, ['-r', file, ...args], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) throw new Error(`tcpdump failed: ${r.stderr}`);
  return r.stdout;
}

const version = tcpdumpVersion();
const realTcpdump =
  version === undefined
    ? `skipped: ${TCPDUMP} is not installed`
    : version !== TCPDUMP_VERSION
      ? `skipped: ${TCPDUMP} is version ${version}, the golden files come from ${TCPDUMP_VERSION}`
      : undefined;

if (process.env.UPDATE_GOLDEN === '1') {
  if (realTcpdump !== undefined)
    throw new Error(`UPDATE_GOLDEN needs real tcpdump ${TCPDUMP_VERSION} (${realTcpdump})`);
  writeFileSync(join(FIXTURES, 'corpus.pcap'), pcap);
  for (const m of MODES) writeFileSync(join(FIXTURES, m.file), runTcpdump(join(FIXTURES, 'corpus.pcap'), m.args));
}

describe('the tcpdump renderer against real tcpdump', () => {
  it('renders a corpus of at least 30 frames', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(30);
  });

  it('works on the very bytes stored in fixtures/tcpdump/corpus.pcap', () => {
    expect(new Uint8Array(readFileSync(join(FIXTURES, 'corpus.pcap')))).toEqual(pcap);
  });

  for (const m of MODES) {
    it(`matches the stored output of tcpdump -r corpus.pcap ${m.args.join(' ')} byte for byte`, () => {
      const golden = readFileSync(join(FIXTURES, m.file), 'utf8');
      expect(renderTcpdump(corpus, m.options)).toBe(golden);
    });

    it.skipIf(realTcpdump !== undefined)(
      `matches a fresh run of real tcpdump ${m.args.join(' ')}${realTcpdump ? ` (${realTcpdump})` : ''}`,
      () => {
        const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-tcpdump-'));
        try {
          const file = join(dir, 'corpus.pcap');
          writeFileSync(file, pcap);
          expect(renderTcpdump(corpus, m.options)).toBe(runTcpdump(file, m.args));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
    );
  }
});
