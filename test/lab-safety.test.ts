/** The lab leaves nothing behind: not on SIGINT, and after a crash `lab down` clears what was left. */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labNamespaces, removeLeftovers } from '../src/lab/lab.ts';
import { LAB_SKIP_REASON, rootSnapshot } from './lab-helpers.ts';

const root = join(import.meta.dirname, '..');
const scenario = join(root, 'examples', 'kvm-lvs-dr');

function startChild(): Promise<{ pid: number; prefix: string; exited: Promise<number | null> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'test', 'lab-child.ts'), scenario], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((res) => child.on('close', (c) => res(c)));
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /UP (\S+)/.exec(out);
      if (m) resolve({ pid: child.pid!, prefix: m[1]!, exited });
    });
    child.on('close', (c) => reject(new Error(`child exited (${c}) before the lab was up: ${err}`)));
  });
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('lab safety', () => {
  it('removes every namespace when the run is interrupted with SIGINT', async () => {
    const before = rootSnapshot();
    const c = await startChild();
    expect(labNamespaces(c.prefix).length).toBe(7);
    process.kill(c.pid, 'SIGINT');
    await c.exited;
    expect(labNamespaces(c.prefix)).toEqual([]);
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
