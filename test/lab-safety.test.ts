/** The lab leaves nothing behind: not on SIGINT, and after a crash `lab down` clears what was left. */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labNamespaces, removeLeftovers } from '../src/lab/lab.ts';
import { LAB_SKIP_REASON, rootSnapshot } from './lab-helpers.ts';

const root = join(import.meta.dirname, '..');
const scenario = join(root, 'examples', 'kvm-lvs-dr');

interface Child {
  pid: number;
  prefix: string;
  workDir: string;
  exited: Promise<number | null>;
  stdout: () => string;
}

function startChild(mode = ''): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'lab-child.ts'), scenario, mode], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((res) =>
      child.on('close', (c, sig) => res(c ?? (sig ? 128 + (osConstants.signals[sig] ?? 0) : null))),
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /UP (\S+) (\S+)/.exec(out);
      if (m) resolve({ pid: child.pid!, prefix: m[1]!, workDir: m[2]!, exited, stdout: () => out });
    });
    child.on('close', (c) => {
      if (!/UP /.test(out)) reject(new Error(`child exited (${c}) before the lab was up: ${err}`));
    });
  });
}

/** Nothing of the lab `c` is left: namespaces, processes, namespace mounts, its temporary directory. */
function nothingLeft(c: Child): void {
  expect(labNamespaces(c.prefix)).toEqual([]);
  expect(existsSync(c.workDir)).toBe(false);
  expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(c.prefix);
  const procs = readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(c.prefix);
      } catch {
        return false;
      }
    });
  expect(procs).toEqual([]);
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('lab safety', () => {
  it('leaves nothing when the session is dropped (SIGHUP)', async () => {
    const before = rootSnapshot();
    const c = await startChild();
    expect(labNamespaces(c.prefix).length).toBe(7);
    process.kill(c.pid, 'SIGHUP');
    expect(await c.exited).toBe(129);
    nothingLeft(c);
    expect(rootSnapshot()).toEqual(before);
  }, 120_000);

  it('leaves nothing when interrupted during teardown (SIGINT while the namespaces are being removed)', async () => {
    const before = rootSnapshot();
    const c = await startChild('teardown');
    expect(await c.exited).toBe(130);
    expect(c.stdout()).toContain('TEARDOWN');
    nothingLeft(c);
    expect(rootSnapshot()).toEqual(before);
  }, 120_000);

  it('removes every namespace when the run is interrupted with SIGINT', async () => {
    const before = rootSnapshot();
    const c = await startChild();
    expect(labNamespaces(c.prefix).length).toBe(7);
    process.kill(c.pid, 'SIGINT');
    expect(await c.exited).toBe(130);
    nothingLeft(c);
    expect(rootSnapshot()).toEqual(before);
  }, 120_000);

  it('lets lab down remove what a crashed run left, and is idempotent', async () => {
    const c = await startChild();
    process.kill(c.pid, 'SIGKILL');
    await c.exited;
    expect(labNamespaces(c.prefix).length).toBe(7);
    const gone = removeLeftovers();
    expect(gone.filter((n) => n.startsWith(c.prefix)).length).toBe(7);
    expect(labNamespaces(c.prefix)).toEqual([]);
    expect(removeLeftovers().filter((n) => n.startsWith(c.prefix))).toEqual([]);
  }, 120_000);
});
