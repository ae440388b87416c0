/**
 * Reads a bundle written by the collector (a `.tar.gz`, or a directory) into memory: its manifest (hostname,
 * kernel, tools, every command with status, exit code, output and stderr files) and the files it holds.
 * Never throws: a missing manifest or unreadable archive is an issue.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { FileError, isContainedRel, LIMITS, readContainedText, readInputBytes } from '../source/files.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { type BundleKind, MANIFEST_FILE } from './collector-script.ts';
import { readTar } from './tar.ts';

/** ok: exit 0; failed: another exit code; denied: refused for lack of permission; missing: tool not installed;
 * skipped: deliberately not run (it would have changed the machine); absent: a file that does not exist. */
export type CommandStatus = 'ok' | 'failed' | 'denied' | 'missing' | 'skipped' | 'absent';

export interface CommandRecord {
  readonly id: string;
  readonly status: CommandStatus;
  readonly exit?: number;
  /** Output and stderr files, relative to the bundle root. */
  readonly out: string;
  readonly err: string;
  readonly command: string;
  /** Line of the manifest that records it. */
  readonly pos: Position;
}

export interface Bundle {
  /** As the user named it. */
  readonly path: string;
  /** The bundle's own name (`lvsdoctor-bundle-hypervisor-host1-…`). */
  readonly name: string;
  readonly kind: BundleKind;
  readonly hostname: string;
  readonly kernel?: string;
  readonly meta: ReadonlyMap<string, string>;
  /** Tool name → its path, undefined when not installed. */
  readonly tools: ReadonlyMap<string, string | undefined>;
  readonly commands: ReadonlyMap<string, CommandRecord>;
  /** Every file of the bundle, relative to its root (a directory bundle's files are read when first asked for). */
  readonly files: ReadonlyMap<string, string>;
  /** For a directory bundle: its root on disk. */
  readonly root?: string;
}

const STATUSES = new Set<CommandStatus>(['ok', 'failed', 'denied', 'missing', 'skipped', 'absent']);

/** Where a bundle's file is, for messages (`bundle.tar.gz/cmd/ip-addr.out`). */
export function bundleFile(b: Bundle, rel: string): string {
  return `${b.path}/${rel}`;
}

/** The output of a command that succeeded, else undefined. */
export function outputOf(b: Bundle, id: string): string | undefined {
  const c = b.commands.get(id);
  if (c?.status !== 'ok') return undefined;
  return b.files.get(c.out);
}

/** Why a command's output is not usable (`ebtables -t nat -L --Lc: permission denied: …`), or undefined. */
export function whyUnavailable(b: Bundle, id: string): string | undefined {
  const c = b.commands.get(id);
  if (!c) return `not collected (no "${id}" in the manifest)`;
  if (c.status === 'ok') return undefined;
  const err = (b.files.get(c.err) ?? '').trim().split('\n')[0] ?? '';
  const what: Record<CommandStatus, string> = {
    ok: 'ok',
    failed: `failed with exit code ${c.exit ?? '?'}`,
    denied: 'permission denied',
    missing: 'tool not installed',
    skipped: 'not run',
    absent: 'no such file',
  };
  return `${c.command}: ${what[c.status]}${err ? ` (${err})` : ''}`;
}

/** Every file name under `root`, relative to it. */
function listDir(root: string): string[] {
  const names: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, e.name);
      // Links are not followed (a directory link could lead anywhere); only regular files are listed.
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) names.push(relative(root, full).split('\\').join('/'));
      if (names.length > LIMITS.bundleFiles)
        throw new FileError(`${root}: more than ${LIMITS.bundleFiles} files (the limit of a bundle)`);
    }
  };
  walk(root);
  return names;
}

/**
 * A directory bundle's files, read on first use: an import needs a few outputs of each bundle, not every output and
 * stderr file, and reading 150 000 small files costs more than parsing them. Enumeration walks the directory.
 */
class DirFiles implements ReadonlyMap<string, string> {
  private readonly cache = new Map<string, string | undefined>();
  private names: string[] | undefined;
  constructor(readonly root: string) {}
  get(key: string): string | undefined {
    if (this.cache.has(key)) return this.cache.get(key);
    let text: string | undefined;
    // Only regular files inside the bundle, of bounded size: a link leading out of it, a FIFO or a device is
    // refused (FileError: exit 2 naming the file), never read.
    if (!isContainedRel(key))
      throw new FileError(`${this.root}: "${key}" is outside the bundle: only files inside it are read`);
    if (existsSync(join(this.root, key))) text = readContainedText(this.root, key, { max: LIMITS.bundleMember });
    this.cache.set(key, text);
    return text;
  }
  has(key: string): boolean {
    return this.get(key) !== undefined;
  }
  private all(): string[] {
    this.names ??= listDir(this.root);
    return this.names;
  }
  get size(): number {
    return this.all().length;
  }
  *keys(): MapIterator<string> {
    yield* this.all();
  }
  *values(): MapIterator<string> {
    for (const k of this.all()) yield this.get(k) ?? '';
  }
  *entries(): MapIterator<[string, string]> {
    for (const k of this.all()) yield [k, this.get(k) ?? ''];
  }
  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.entries();
  }
  forEach(fn: (value: string, key: string, map: ReadonlyMap<string, string>) => void): void {
    for (const [k, v] of this.entries()) fn(v, k, this);
  }
}

/** A directory bundle: the manifest at its root or one directory down. */
function readDirBundle(path: string): ReadResult<Bundle> {
  let root = path;
  if (!existsSync(join(root, MANIFEST_FILE))) {
    const sub = readdirSync(path, { withFileTypes: true })
      .filter((e) => e.isDirectory() && existsSync(join(path, e.name, MANIFEST_FILE)))
      .map((e) => e.name)
      .sort()[0];
    if (sub === undefined)
      return {
        value: undefined,
        issues: [
          issue('bundle.manifest', `${path} is not an lvsdoctor bundle: no ${MANIFEST_FILE} in it`, filePos(path, 0)),
        ],
      };
    root = join(path, sub);
  }
  return fromFiles(path, basename(root), new DirFiles(root), [], root);
}

function filesOf(path: string): { files: Map<string, string>; issues: Issue[] } {
  const issues: Issue[] = [];
  if (!existsSync(path)) {
    issues.push(issue('bundle.not-found', `bundle "${path}" does not exist`));
    return { files: new Map(), issues };
  }
  let bytes: Uint8Array;
  try {
    bytes = readInputBytes(path, { max: LIMITS.bundleArchive });
  } catch (e) {
    if (!(e instanceof FileError)) throw e;
    issues.push(issue('bundle.archive', e.message, filePos(path, 0)));
    return { files: new Map(), issues };
  }
  const tar = readTar(bytes);
  if (tar.error) issues.push(issue('bundle.archive', `cannot read ${path}: ${tar.error}`, filePos(path, 0)));
  const files = new Map<string, string>();
  for (const e of tar.entries) files.set(e.path.replace(/^\.\//, ''), Buffer.from(e.data).toString('utf8'));
  return { files, issues };
}

/** Reads a bundle (`.tar.gz` or directory). */
export function readBundle(path: string): ReadResult<Bundle> {
  if (existsSync(path) && statSync(path).isDirectory()) return readDirBundle(path);
  const { files: raw, issues } = filesOf(path);
  if (issues.some((i) => i.severity === 'error')) return { value: undefined, issues };
  // The manifest may sit at the root or one directory down (the archive holds the bundle directory).
  const manifestKey = [...raw.keys()]
    .filter((k) => k === MANIFEST_FILE || k.endsWith(`/${MANIFEST_FILE}`))
    .sort((a, b) => a.length - b.length)[0];
  if (manifestKey === undefined) {
    issues.push(
      issue('bundle.manifest', `${path} is not an lvsdoctor bundle: no ${MANIFEST_FILE} in it`, filePos(path, 0)),
    );
    return { value: undefined, issues };
  }
  const prefix = manifestKey.slice(0, manifestKey.length - MANIFEST_FILE.length);
  const files = new Map<string, string>();
  for (const [k, v] of raw) if (k.startsWith(prefix)) files.set(k.slice(prefix.length), v);
  return fromFiles(path, basename(prefix.replace(/\/$/, '') || path).replace(/\.tar\.gz$/, ''), files, issues);
}

/** The bundle described by the manifest among `files`. */
function fromFiles(
  path: string,
  name: string,
  files: ReadonlyMap<string, string>,
  issues: Issue[],
  root?: string,
): ReadResult<Bundle> {
  const manifestName = `${path}/${MANIFEST_FILE}`;
  const meta = new Map<string, string>();
  const tools = new Map<string, string | undefined>();
  const commands = new Map<string, CommandRecord>();
  (files.get(MANIFEST_FILE) ?? '').split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const pos = filePos(manifestName, i + 1);
    const f = line.split('\t');
    if (f[0] === 'cmd') {
      const [, id, status, exit, out, err, ...cmd] = f;
      if (!id || !status || !STATUSES.has(status as CommandStatus) || out === undefined || err === undefined) {
        issues.push(issue('bundle.manifest', `malformed command record "${line.slice(0, 200)}"`, pos, 'warning'));
        return;
      }
      for (const f of [out, err])
        if (f !== '' && f !== '-' && !isContainedRel(f)) {
          issues.push(
            issue('bundle.outside', `command ${id} names "${f.slice(0, 200)}", outside the bundle: refused`, pos),
          );
          return;
        }
      const again = commands.get(id);
      if (again !== undefined) {
        issues.push(
          issue(
            'bundle.manifest',
            `command ${id} is recorded twice (first at line ${again.pos.line}): which record holds is ambiguous`,
            pos,
          ),
        );
        return;
      }
      if (status === 'ok' && out !== '' && out !== '-' && !files.has(out)) {
        issues.push(
          issue(
            'bundle.member',
            `command ${id} names ${JSON.stringify(out.slice(0, 200))}, which the bundle does not hold as a file`,
            pos,
          ),
        );
        return;
      }
      const code = Number(exit);
      commands.set(id, {
        id,
        status: status as CommandStatus,
        ...(exit !== '-' && !Number.isNaN(code) ? { exit: code } : {}),
        out,
        err,
        command: cmd.join('\t'),
        pos,
      });
      return;
    }
    if (f[0] === 'tool') {
      const [name, p] = (f[1] ?? '').split(' ');
      if (name) tools.set(name, p && p !== '-' ? p : undefined);
      return;
    }
    if (f[0] !== undefined && f.length >= 2) meta.set(f[0], f.slice(1).join('\t'));
  });
  const kind = meta.get('kind');
  if (kind !== 'hypervisor' && kind !== 'guest') {
    issues.push(
      issue(
        'bundle.manifest',
        `expected "kind hypervisor" or "kind guest" in the manifest, found "${kind ?? ''}"`,
        filePos(manifestName, 1),
      ),
    );
    return { value: undefined, issues };
  }
  const kernel = meta.get('kernel');
  return {
    value: {
      path,
      name,
      kind,
      hostname: meta.get('hostname') || 'unknown',
      ...(kernel ? { kernel } : {}),
      meta,
      tools,
      commands,
      files,
      ...(root !== undefined ? { root } : {}),
    },
    issues,
  };
}
