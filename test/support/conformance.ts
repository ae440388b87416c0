/**
 * External suites: files the project did not write and does not ship (libvirt's own nwfilter test inputs, the
 * founding field report), read at run time from a folder beside the repository. A user's clone has no such folder,
 * so every test built on one skips with a one-line reason (counted as skipped by test/count-reporter.ts); in CI the
 * folder is present and test/ci-completeness.test.ts fails the run if it is not.
 *
 * The folder is `$LVSDOCTOR_SHARED_DIR` when set, else `../shared` beside the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { it } from 'vitest';

/** The environment variable naming the folder of external suites. */
export const SHARED_DIR_ENV = 'LVSDOCTOR_SHARED_DIR';

const REPO = new URL('../../', import.meta.url);

/** The folder external suites are read from (it may not exist). */
export function sharedDir(): URL {
  const env = process.env[SHARED_DIR_ENV];
  if (env !== undefined && env !== '') {
    const abs = isAbsolute(env) ? env : resolve(process.cwd(), env);
    return pathToFileURL(abs.endsWith('/') ? abs : `${abs}/`);
  }
  return new URL('../shared/', REPO);
}

/** One external suite: a folder below the shared folder, or why it is not there. */
export interface ExternalSuite {
  /** The suite's folder (ends with `/`). */
  readonly dir: URL;
  /** Why tests on this suite are skipped, or undefined when it is present. */
  readonly skip: string | undefined;
  /** A file of the suite. */
  url(relative: string): URL;
  /** A file of the suite as UTF-8 text. */
  read(relative: string): string;
}

/** The external suite at `relative` (a folder path below the shared folder, e.g. `conformance/libvirt-tests/`). */
export function externalSuite(relative: string): ExternalSuite {
  const dir = new URL(relative.endsWith('/') ? relative : `${relative}/`, sharedDir());
  const skip = existsSync(dir)
    ? undefined
    : `external suite ${relative.replace(/\/$/, '')} is absent (set ${SHARED_DIR_ENV} or put it in ../shared)`;
  return {
    dir,
    skip,
    url: (p) => new URL(p, dir),
    read: (p) => readFileSync(new URL(p, dir), 'utf8'),
  };
}

/** Registers one skipped test whose name carries the reason, so the run shows why (call at a describe's level). */
export function skippedBecause(reason: string | undefined): void {
  if (reason !== undefined) it.skip(`skipped: ${reason}`, () => {});
}

/** The external suites the tests use, so CI can check that every one is present. */
export const EXTERNAL_SUITES = [
  'conformance/libvirt-tests/',
  'conformance/pve-firewall/',
  'conformance/realworld/',
  'seed/',
] as const;
