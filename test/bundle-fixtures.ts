/** Shared by the collect tests: private, editable copies of the collector bundles recorded from real hosts. */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export const ROOT = join(import.meta.dirname, '..');
/** Bundles collected from the founding case built on a real kernel with a real libvirt (fixtures/collect). */
export const FIXTURE = join(ROOT, 'fixtures', 'collect', 'founding-real');

export const NAMES = {
  host1: 'lvsdoctor-bundle-hypervisor-host1',
  host2: 'lvsdoctor-bundle-hypervisor-host2',
  director: 'lvsdoctor-bundle-guest-director1',
  rs: 'lvsdoctor-bundle-guest-rs2',
  router: 'lvsdoctor-bundle-guest-router',
} as const;
export type Name = keyof typeof NAMES;

/** A temporary directory for one test file (remove it with `done` in afterAll) and copies of the bundles in it. */
export function bundleCopies(tag: string): {
  tmp: string;
  bundles: (edit?: (dir: (k: Name) => string) => void) => Record<Name, string>;
  done: () => void;
} {
  const tmp = mkdtempSync(join(tmpdir(), `lvsdoctor-${tag}-`));
  let copies = 0;
  return {
    tmp,
    bundles(edit = () => {}) {
      const root = join(tmp, `set-${copies++}`);
      cpSync(FIXTURE, root, { recursive: true });
      const dir = (k: Name) => join(root, NAMES[k]);
      edit(dir);
      return Object.fromEntries(Object.keys(NAMES).map((k) => [k, dir(k as Name)])) as Record<Name, string>;
    },
    done: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** Replaces text in a file; the file must contain it. */
export function edit(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  const out = text.replace(from, to);
  expect(out, `${file} should contain ${from}`).not.toBe(text);
  writeFileSync(file, out);
}

/** Rewrites a command's manifest record (status, exit) and its stderr, emptying its output. */
export function fail(bundle: string, id: string, status: string, exit: string, stderr: string): void {
  const m = join(bundle, 'manifest.tsv');
  const lines = readFileSync(m, 'utf8')
    .split('\n')
    .map((l) => {
      const f = l.split('\t');
      if (f[0] !== 'cmd' || f[1] !== id) return l;
      writeFileSync(join(bundle, f[4]!), '');
      writeFileSync(join(bundle, f[5]!), stderr);
      f[2] = status;
      f[3] = exit;
      return f.join('\t');
    });
  writeFileSync(m, lines.join('\n'));
}
