/**
 * Where a scenario's files come from: a directory on disk, or a map of files held in memory (what `lvsdoctor
 * import` builds, so that `diagnose BUNDLE…` loads without writing and re-reading a directory). Paths are relative
 * to the scenario directory, `/`-separated; messages name files as `label/path`.
 */
import { readdirSync, statSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { containedPath, FileError, readInputText } from '../source/files.ts';
import type { ReadResult } from '../source/issue.ts';

/** An XML artifact already parsed by whoever built the files (the import), with the file name it was parsed under. */
export interface PreParsed {
  readonly kind: 'domain' | 'binding' | 'nwfilter';
  /** The exact text that was parsed (the loader uses the result only when the file still holds this text). */
  readonly text: string;
  /** The file name the parse put into positions; the loader replaces it with the scenario file's name. */
  readonly file: string;
  readonly result: ReadResult<unknown>;
}

export interface ScenarioSource {
  /** The scenario directory (`Scenario.dir`). */
  readonly dir: string;
  /** How messages name the scenario directory (`label/host1/vm.xml:3`); '' or '.' for none. */
  readonly label: string;
  /** A file's text, undefined when there is no such file. */
  read(rel: string): string | undefined;
  /** Whether a file or directory exists. */
  exists(rel: string): boolean;
  /** The names in a directory, undefined when it is not a directory. */
  list(rel: string): readonly string[] | undefined;
  /** Parses already done, by file path. */
  readonly preparsed?: ReadonlyMap<string, PreParsed>;
}

/**
 * The scenario directory `dir` on disk; messages name files relative to the working directory. Every path stays
 * inside `dir` (`../../etc/shadow`, an absolute path or a link leading out is refused with a FileError, as is a FIFO,
 * a device or a file over the size limit); a file that does not exist reads as undefined.
 */
export function diskSource(dir: string): ScenarioSource {
  const inside = (rel: string): string => {
    const p = normalize(rel);
    if (p === undefined)
      throw new FileError(
        `${join(dir, rel)}: "${rel}" is outside the scenario directory: only files inside it are read`,
      );
    return p === '' ? '.' : p;
  };
  const stat = (rel: string) => {
    try {
      return statSync(join(dir, inside(rel)), { throwIfNoEntry: false });
    } catch (e) {
      if (e instanceof FileError) throw e;
      return undefined;
    }
  };
  return {
    dir,
    label: relative(process.cwd(), dir) || '.',
    read(rel) {
      if (stat(rel) === undefined) return undefined;
      return readInputText(containedPath(dir, inside(rel)));
    },
    exists(rel) {
      return stat(rel) !== undefined;
    },
    list(rel) {
      if (!stat(rel)?.isDirectory()) return undefined;
      return readdirSync(containedPath(dir, inside(rel), 'directory'));
    },
  };
}

/** Paths that need no normalizing (what an import writes): no `.`/`..` parts, no empty parts, no backslash. */
const CLEAN = /^(?!\.\.?(?:\/|$))(?!.*\/\.\.?(?:\/|$))[^/\\]+(?:\/[^/\\]+)*$/;

/** A path relative to the scenario root, normalized (`./a//b` → `a/b`); undefined when it leaves the root. */
function normalize(rel: string): string | undefined {
  if (CLEAN.test(rel)) return rel;
  const n = posix.normalize(rel.replace(/\\/g, '/'));
  if (n.startsWith('/') || n === '..' || n.startsWith('../')) return undefined;
  return n === '.' ? '' : n.replace(/\/+$/, '');
}

export interface MemorySourceOptions {
  /** `Scenario.dir` (default: the label). */
  readonly dir?: string;
  /** How messages name the scenario directory (default ''): files are then named relative to the scenario. */
  readonly label?: string;
  readonly preparsed?: ReadonlyMap<string, PreParsed>;
}

/** A scenario held in memory: file path (relative to the scenario, `/`-separated) → text. */
export function memorySource(files: ReadonlyMap<string, string>, o: MemorySourceOptions = {}): ScenarioSource {
  let dirs: Map<string, Set<string>> | undefined;
  const tree = (): Map<string, Set<string>> => {
    if (dirs) return dirs;
    dirs = new Map([['', new Set()]]);
    for (const path of files.keys()) {
      const p = normalize(path);
      if (p === undefined || p === '') continue;
      let parent = '';
      for (const part of p.split('/')) {
        const child = parent === '' ? part : `${parent}/${part}`;
        let set = dirs.get(parent);
        if (!set) {
          set = new Set();
          dirs.set(parent, set);
        }
        set.add(part);
        parent = child;
      }
    }
    return dirs;
  };
  const get = (rel: string): string | undefined => {
    const direct = files.get(rel);
    if (direct !== undefined) return direct;
    const p = normalize(rel);
    return p === undefined ? undefined : files.get(p);
  };
  const label = o.label ?? '';
  return {
    dir: o.dir ?? label,
    label,
    read: get,
    exists(rel) {
      if (get(rel) !== undefined) return true;
      const p = normalize(rel);
      return p !== undefined && tree().has(p);
    },
    list(rel) {
      const p = normalize(rel);
      const set = p === undefined ? undefined : tree().get(p);
      return set ? [...set] : undefined;
    },
    ...(o.preparsed ? { preparsed: o.preparsed } : {}),
  };
}

/** A copy of `value` with every position in file `from` moved to file `to` (plain objects, arrays, maps, sets). */
export function relabelPositions<T>(value: T, from: string, to: string): T {
  if (from === to) return value;
  const seen = new Map<unknown, unknown>();
  const walk = (v: unknown): unknown => {
    if (typeof v !== 'object' || v === null) return v;
    const done = seen.get(v);
    if (done !== undefined) return done;
    let out: unknown;
    if (Array.isArray(v)) {
      const a: unknown[] = [];
      seen.set(v, a);
      for (const x of v) a.push(walk(x));
      out = a;
    } else if (v instanceof Map) {
      const m = new Map();
      seen.set(v, m);
      for (const [k, x] of v) m.set(k, walk(x));
      out = m;
    } else if (v instanceof Set) {
      const s = new Set();
      seen.set(v, s);
      for (const x of v) s.add(walk(x));
      out = s;
    } else {
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) return v;
      const o: Record<string, unknown> = {};
      seen.set(v, o);
      for (const k of Object.keys(v)) o[k] = walk((v as Record<string, unknown>)[k]);
      if (o.file === from && typeof o.line === 'number') (o as { file: string }).file = to;
      out = o;
    }
    return out;
  };
  return walk(value) as T;
}

/** A pre-parsed result for `rel` when it matches the text read and the kind, moved to the file name `file`. */
export function preparsedResult<T>(
  src: ScenarioSource,
  rel: string,
  kind: PreParsed['kind'],
  text: string,
  file: string,
): ReadResult<T> | undefined {
  const p = src.preparsed?.get(rel);
  if (!p || p.kind !== kind || p.text !== text) return undefined;
  return relabelPositions(p.result as ReadResult<T>, p.file, file);
}

/** What a load asked of a source and what it answered: enough to load the same scenario again without it. */
export interface RecordedReads {
  /** How messages named the scenario directory. */
  readonly label: string;
  /** `read(rel)` → the text, or null when there was no such file. */
  readonly read: Readonly<Record<string, string | null>>;
  readonly exists: Readonly<Record<string, boolean>>;
  /** `list(rel)` → the names, or null when it was not a directory. */
  readonly list: Readonly<Record<string, readonly string[] | null>>;
}

/**
 * `src` with a log of every question asked of it and its answer (`reads()`), so that the load can be replayed
 * elsewhere (the offline report re-loads the scenario in the page, where there is no file system).
 */
export function recordingSource(src: ScenarioSource): ScenarioSource & { reads(): RecordedReads } {
  const read: Record<string, string | null> = {};
  const exists: Record<string, boolean> = {};
  const list: Record<string, readonly string[] | null> = {};
  return {
    dir: src.dir,
    label: src.label,
    read(rel) {
      const t = src.read(rel);
      read[rel] = t ?? null;
      return t;
    },
    exists(rel) {
      const e = src.exists(rel);
      exists[rel] = e;
      return e;
    },
    list(rel) {
      const l = src.list(rel);
      list[rel] = l ? [...l] : null;
      return l;
    },
    ...(src.preparsed ? { preparsed: src.preparsed } : {}),
    reads: () => ({ label: src.label, read: { ...read }, exists: { ...exists }, list: { ...list } }),
  };
}

/**
 * A source that answers what a recorded load asked, as it was answered; anything else reads as absent. `Scenario.dir`
 * is the label (the replay has no directory).
 */
export function replayedSource(r: RecordedReads): ScenarioSource {
  const own = (o: object, k: string) => Object.hasOwn(o, k);
  return {
    dir: r.label,
    label: r.label,
    read: (rel) => (own(r.read, rel) ? (r.read[rel] ?? undefined) : undefined),
    exists: (rel) => (own(r.exists, rel) ? r.exists[rel]! : own(r.read, rel) && r.read[rel] !== null),
    list: (rel) => (own(r.list, rel) ? (r.list[rel] ?? undefined) : undefined),
  };
}
