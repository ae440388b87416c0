import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manyTcpRecords } from '../../test/support/synthetic-captures.ts';
import { writePcap } from '../capture/pcap.ts';
import { type Io, main } from './main.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'kvm-lvs-dr');
const ESC = '\x1b[';

async function run(argv: string[], extra: Partial<Io> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (s) => (stdout += s), stderr: (s) => (stderr += s), ...extra });
  return { code, stdout, stderr };
}

describe('the terminal', () => {
  it('prints completion scripts for bash, zsh and fish that call lvsdoctor back', async () => {
    for (const shell of ['bash', 'zsh', 'fish']) {
      const r = await run(['completion', shell]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('lvsdoctor');
      expect(r.stdout).toContain('complete --');
    }
    expect((await run(['completion', 'tcsh'])).code).toBe(2);
  });

  it('completes commands and their options from the command definitions', async () => {
    expect((await run(['complete', '--', 'se'])).stdout).toMatch(/^serve\t/m);
    const opts = (await run(['complete', '--', 'serve', 'x', '--'])).stdout;
    expect(opts).toMatch(/^--port\t/m);
    expect(opts).toMatch(/^--capture\t/m);
    expect((await run(['complete', '--', 'diagnose', 'x', '--h'])).stdout).toMatch(/^--html\t/m);
  });

  it('paints verdicts and drops only when colour is allowed', async () => {
    const coloured = await run(['diagnose', EXAMPLE], { color: true });
    expect(coloured.stdout).toContain(ESC);
    expect(coloured.stdout).toMatch(/\x1b\[[0-9;]*m(\x1b\[[0-9;]*m)?FAILS/);
    expect((await run(['diagnose', EXAMPLE, '--no-color'], { color: true })).stdout).not.toContain(ESC);
    expect((await run(['diagnose', EXAMPLE, '--json'], { color: true })).stdout).not.toContain(ESC);
    expect((await run(['diagnose', EXAMPLE])).stdout).not.toContain(ESC);
    const saved = process.env.NO_COLOR;
    process.env.NO_COLOR = '1';
    try {
      expect((await run(['diagnose', EXAMPLE], { color: true })).stdout).not.toContain(ESC);
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });

  it('shows progress on stderr only when it is a terminal', async () => {
    const tty = await run(['diagnose', EXAMPLE], { stderrIsTTY: true });
    expect(tty.stderr).toMatch(/lvsdoctor: diagnosing \(\d+\.\d s\)/);
    const piped = await run(['diagnose', EXAMPLE]);
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe(tty.stdout);
    const corpus = join(import.meta.dirname, '..', '..', 'fixtures', 'tcpdump', 'corpus.pcap');
    const caps = await run(['captures', `${corpus}@host1:br0`], { stderrIsTTY: true });
    expect(caps.stderr).toMatch(/lvsdoctor: reading the captures 1\/1: host1:br0…/);
    expect(caps.stderr).toMatch(/lvsdoctor: reading the captures \(\d+\.\d s\)/);
    expect((await run(['captures', `${corpus}@host1:br0`])).stderr).toBe('');
  });

  it('shows how far it read a big capture, by bytes, only on a terminal', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-progress-'));
    try {
      const file = join(dir, 'big.pcap');
      writeFileSync(file, writePcap(manyTcpRecords(60_000, 60)));
      const tty = await run(['captures', `${file}@a:eth0`], { stderrIsTTY: true });
      const pcts = [...tty.stderr.matchAll(/1\/1: a:eth0 [\d.]+ (?:KiB|MiB) of [\d.]+ MiB \((\d+) %\)/g)].map((m) =>
        Number(m[1]),
      );
      expect(pcts.length).toBeGreaterThanOrEqual(2);
      expect(pcts.at(-1)).toBe(100);
      expect([...pcts].sort((a, b) => a - b)).toEqual(pcts);
      const piped = await run(['captures', `${file}@a:eth0`]);
      expect(piped.stderr).toBe('');
      expect(piped.stdout).toBe(tty.stdout);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
