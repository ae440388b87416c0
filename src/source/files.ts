/**
 * Every file lvsdoctor reads or writes goes through here, so the rules hold everywhere:
 * - inputs are regular files (never a FIFO, a device or a socket) of bounded size, read without blocking;
 * - a file named by an input (a scenario artifact, a bundle's manifest entry) stays inside the directory the user
 *   named, links included;
 * - outputs are created, never overwritten, never through a link, only inside the directory the user named.
 * Failures are `FileError`s with a one-line message naming the path; the CLI turns them into exit code 2.
 */
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readSync,
  realpathSync,
  writeSync,
} from 'node:fs';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { noteReading } from './reading.ts';

const MiB = 1024 * 1024;

/** The limits on inputs and outputs (docs/limits.md states them). */
export const LIMITS = {
  /** One text input: a scenario artifact, a listing, a configuration file. */
  inputFile: 32 * MiB,
  /**
   * All captures given to one `captures` command (pcap, pcapng, tcpdump text). Reading streams (memory follows the
   * packet count, bounded by `MAX_CORRELATED_PACKETS`); this bounds the time (about a minute a GiB of small packets).
   */
  captureTotal: 4096 * MiB,
  /** One pasted tcpdump text given to `captures`: text is read whole (pastes are small; big captures are pcap). */
  captureText: 64 * MiB,
  /** One XML document (domain, nwfilter, binding): a DOM costs ~20 times its text. */
  xmlFile: 4 * MiB,
  /** A bundle archive as stored (compressed). */
  bundleArchive: 256 * MiB,
  /** All members of one bundle, inflated. */
  bundleTotal: 512 * MiB,
  /** One member of a bundle, inflated (or one file of a directory bundle). */
  bundleMember: 64 * MiB,
  /** Files in one bundle. */
  bundleFiles: 200_000,
  /** Issues reported for one input file; the rest are counted in one last issue. */
  issuesPerFile: 100,
} as const;

/** A path that cannot be read or written as asked; the message names it. */
export class FileError extends Error {
  override readonly name = 'FileError';
  /** Why, without the path (`no such file`, `not a regular file …`). */
  readonly reason: string;
  constructor(message: string, reason?: string) {
    super(message);
    this.reason = reason ?? message;
  }
}

function why(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENAMETOOLONG':
      return 'file name too long';
    case 'ENOTDIR':
      return 'a part of the path is not a directory';
    case 'ELOOP':
      return 'it is a symbolic link (or a loop of them)';
    case 'EISDIR':
      return 'it is a directory';
    case 'EEXIST':
      return 'it already exists';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on the device';
    default:
      return code ? `${code}` : String((e as Error).message ?? e);
  }
}

function mib(n: number): string {
  return n >= MiB ? `${Math.round((n / MiB) * 10) / 10} MiB` : `${n} bytes`;
}

export interface ReadOptions {
  /** Largest size accepted (default LIMITS.inputFile). */
  readonly max?: number;
  /** Refuse a symbolic link at the last component. */
  readonly noFollow?: boolean;
}

/** The bytes of the regular file `path`; throws FileError (not a regular file, too big, unreadable). */
export function readInputBytes(path: string, o: ReadOptions = {}): Uint8Array {
  const max = o.max ?? LIMITS.inputFile;
  noteReading(path);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (o.noFollow ? constants.O_NOFOLLOW : 0));
  } catch (e) {
    throw new FileError(`cannot read ${path}: ${why(e)}`, why(e));
  }
  const refuse = (reason: string) => new FileError(`cannot read ${path}: ${reason}`, reason);
  try {
    const st = fstatSync(fd);
    if (st.isDirectory()) throw refuse('it is a directory, not a file');
    if (!st.isFile()) throw refuse('not a regular file (a FIFO, device or socket is never read)');
    if (st.size > max)
      throw refuse(`it is ${mib(st.size)}; the limit is ${mib(max)} (nothing past byte ${max} is read)`);
    const buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > max) throw refuse(`it grew beyond the limit of ${mib(max)}`);
      if (n === buf.length) break;
    }
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  } catch (e) {
    if (e instanceof FileError) throw e;
    throw refuse(why(e));
  } finally {
    closeSync(fd);
  }
}

/** The text (UTF-8) of the regular file `path`; throws FileError. */
export function readInputText(path: string, o: ReadOptions = {}): string {
  return Buffer.from(readInputBytes(path, o)).toString('utf8');
}

/** True when `rel` is a relative path that stays below its root lexically (no absolute path, no `..` part). */
export function isContainedRel(rel: string): boolean {
  if (rel === '' || rel.includes('\0') || isAbsolute(rel) || rel.includes('\\')) return false;
  return rel.split('/').every((p) => p !== '..');
}

/**
 * `root/rel` when it names something inside `root`, links resolved (a link inside pointing inside is fine);
 * throws FileError when `rel` leaves the root (lexically or through a link) or does not exist.
 */
export function containedPath(root: string, rel: string, what = 'file'): string {
  if (!isContainedRel(rel)) throw new FileError(`${what} "${rel}" is outside ${root}: only paths inside it are read`);
  const full = join(root, rel);
  let real: string;
  let realRoot: string;
  try {
    realRoot = realpathSync(root);
    real = realpathSync(full);
  } catch (e) {
    throw new FileError(`cannot read ${full}: ${why(e)}`);
  }
  if (real !== realRoot && !real.startsWith(realRoot.endsWith(sep) ? realRoot : realRoot + sep))
    throw new FileError(`${what} ${full} leads outside ${root} (through a link to ${real}): refused`);
  return full;
}

/** Reads `root/rel` as text when it stays inside `root` (see containedPath); throws FileError. */
export function readContainedText(root: string, rel: string, o: ReadOptions = {}): string {
  return readInputText(containedPath(root, rel), o);
}

/**
 * Makes the output directory `dir` (and its missing parents, one at a time: never a retrying recursive mkdir) or
 * checks the existing one is a directory; throws FileError. '' is refused.
 */
export function prepareOutputDir(dir: string, option: string): void {
  if (dir === '') throw new FileError(`${option} is empty: name the directory to write`);
  if (dir.includes('\0')) throw new FileError(`${option} holds a NUL byte`);
  const full = resolve(dir);
  const parts = full.split(sep).filter((p) => p !== '');
  let p: string = sep;
  for (const part of parts) {
    p = join(p, part);
    const st = lstatMaybe(p);
    if (st === undefined) {
      try {
        mkdirSync(p, { mode: 0o755 });
      } catch (e) {
        throw new FileError(`${option} ${dir}: cannot create ${p}: ${why(e)}`);
      }
      continue;
    }
    if (st.isSymbolicLink()) {
      // The user may name a path through links they own; what it leads to must be a directory.
      let target: ReturnType<typeof lstatSync> | undefined;
      try {
        target = lstatSync(realpathSync(p));
      } catch (e) {
        throw new FileError(`${option} ${dir}: cannot use ${p}: ${why(e)}`);
      }
      if (!target.isDirectory()) throw new FileError(`${option} ${dir}: ${p} is not a directory`);
    } else if (!st.isDirectory()) throw new FileError(`${option} ${dir}: ${p} is not a directory`);
  }
}

function lstatMaybe(p: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    throw new FileError(`cannot use ${p}: ${why(e)}`);
  }
}

/** Checks each part of a relative output path: not empty, not `.`/`..`, no NUL, not longer than NAME_MAX. */
function checkRelOut(rel: string, root: string): string[] {
  const parts = rel.split('/');
  for (const p of parts)
    if (p === '' || p === '.' || p === '..' || p.includes('\0') || Buffer.byteLength(p) > 255)
      throw new FileError(`refusing to write "${rel}" under ${root}: not a plain relative path`);
  return parts;
}

/**
 * Writes a new file `root/rel` (root made by prepareOutputDir): the directories on the way are created or must be
 * real directories (never links), and the file must not exist (O_EXCL, O_NOFOLLOW); throws FileError.
 */
export function writeNewFile(root: string, rel: string, content: string | Uint8Array, mode = 0o644): string {
  const parts = checkRelOut(rel, root);
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    const st = lstatMaybe(dir);
    if (st === undefined)
      try {
        mkdirSync(dir, { mode: 0o755 });
      } catch (e) {
        throw new FileError(`cannot create ${dir}: ${why(e)}`);
      }
    else if (!st.isDirectory())
      throw new FileError(
        `refusing to write under ${dir}: it is ${st.isSymbolicLink() ? 'a link' : 'not a directory'}`,
      );
  }
  const full = join(dir, parts.at(-1)!);
  let fd: number;
  try {
    fd = openSync(full, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new FileError(`refusing to overwrite ${full}: it exists (lvsdoctor writes only new files)`);
    throw new FileError(`cannot write ${full}: ${why(e)}`);
  }
  try {
    const data = typeof content === 'string' ? Buffer.from(content, 'utf8') : content;
    let off = 0;
    while (off < data.length) off += writeSync(fd, data, off, data.length - off);
  } catch (e) {
    throw new FileError(`cannot write ${full}: ${why(e)}`);
  } finally {
    closeSync(fd);
  }
  return full;
}

/** Fails (FileError) when any of `rels` exists under `root`, so a set of files is written entirely or not at all. */
export function checkNoneExist(root: string, rels: Iterable<string>): void {
  for (const rel of rels) {
    checkRelOut(rel, root);
    const full = join(root, rel);
    if (lstatMaybe(full) !== undefined)
      throw new FileError(`refusing to overwrite ${full}: it exists (lvsdoctor writes only new files)`);
  }
}
