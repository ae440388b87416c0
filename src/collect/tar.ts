/**
 * A minimal reader for the `.tar.gz` bundles the collector writes (POSIX ustar and GNU tar: regular files,
 * directories, `L` long names and `x` pax headers with `path`). Only what a bundle needs; never throws.
 */
import { gunzipSync } from 'node:zlib';
import { LIMITS } from '../source/files.ts';

/** Limits of one archive (inflated size, one member's size, number of members). */
export interface TarLimits {
  readonly total: number;
  readonly member: number;
  readonly members: number;
}

export interface TarEntry {
  readonly path: string;
  readonly data: Uint8Array;
}

export interface TarResult {
  readonly entries: readonly TarEntry[];
  readonly error?: string;
}

const BLOCK = 512;

function cString(b: Uint8Array, from: number, len: number): string {
  let end = from;
  while (end < from + len && b[end] !== 0) end++;
  return Buffer.from(b.subarray(from, end)).toString('utf8');
}

function octal(b: Uint8Array, from: number, len: number): number {
  // GNU base-256 for large sizes: high bit set.
  if ((b[from]! & 0x80) !== 0) {
    let n = 0;
    for (let i = from + 1; i < from + len; i++) n = n * 256 + b[i]!;
    return n;
  }
  const t = cString(b, from, len).trim();
  return t === '' ? 0 : Number.parseInt(t, 8);
}

function paxPath(data: Uint8Array): string | undefined {
  const text = Buffer.from(data).toString('utf8');
  for (const rec of text.split('\n')) {
    const m = /^\d+ path=(.*)$/.exec(rec);
    if (m) return m[1];
  }
  return undefined;
}

/** Regular files of a tar archive (gzip-compressed when it starts with the gzip magic). */
const DEFAULT_LIMITS: TarLimits = {
  total: LIMITS.bundleTotal,
  member: LIMITS.bundleMember,
  members: LIMITS.bundleFiles,
};

/**
 * Where a gzip stream goes bad (zlib reads a field or two before it can tell, so "by" this byte): the shortest prefix of `input` that fails with something other than "unexpected end
 * of file" (a prefix of a good stream only ends early; once the bad byte is in, it fails for what it is). Binary
 * search, so about log2(size) bounded inflations, and only on the error path.
 */
function gzipErrorByte(input: Uint8Array, limit: number): number {
  const badPrefix = (k: number): boolean => {
    try {
      gunzipSync(input.subarray(0, k), { maxOutputLength: limit });
      return false;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code !== 'ERR_BUFFER_TOO_LARGE' && !/unexpected end of file/i.test((e as Error).message);
    }
  };
  let lo = 0; // a prefix this long is not (yet) bad
  let hi = input.length; // the whole input is bad
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (badPrefix(mid)) hi = mid;
    else lo = mid;
  }
  return hi - 1;
}

/** Member types a bundle never holds, by tar type flag. */
const MEMBER_KINDS: Readonly<Record<string, string>> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a character device',
  '4': 'a block device',
  '6': 'a FIFO',
};

export function readTar(input: Uint8Array, limits: TarLimits = DEFAULT_LIMITS): TarResult {
  let b: Uint8Array;
  try {
    // Inflated with a cap: a gzip bomb stops at the limit instead of filling the memory.
    b =
      input[0] === 0x1f && input[1] === 0x8b
        ? new Uint8Array(gunzipSync(input, { maxOutputLength: limits.total }))
        : input;
    if (b.length < BLOCK)
      return {
        entries: [],
        error: `not a .tar.gz (nor a tar) archive: ${b === input ? '' : 'inflated, '}it ends at byte ${b.length}, inside the first 512-byte header`,
      };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
      return {
        entries: [],
        error: `it inflates past byte ${limits.total} (${limits.total / 1024 / 1024} MiB, the limit of a bundle)`,
      };
    return {
      entries: [],
      error: `not a gzip file: ${(e as Error).message} (by byte ${gzipErrorByte(input, limits.total)} of ${input.length})`,
    };
  }
  if (b.length > limits.total)
    return {
      entries: [],
      error: `it goes past byte ${limits.total} (${limits.total / 1024 / 1024} MiB, the limit of a bundle)`,
    };
  if (b.length >= BLOCK && !cString(b, 257, 6).startsWith('ustar') && !b.subarray(0, BLOCK).every((x) => x === 0))
    return {
      entries: [],
      error: `not a .tar.gz (nor a tar) archive: no "ustar" magic at byte 257${b === input ? '' : ' of the inflated data'}`,
    };
  const entries: TarEntry[] = [];
  const seen = new Set<string>();
  let off = 0;
  let longName: string | undefined;
  while (off + BLOCK <= b.length) {
    const header = b.subarray(off, off + BLOCK);
    if (header.every((x) => x === 0)) break;
    const name = cString(header, 0, 100);
    const size = octal(header, 124, 12);
    if (Number.isNaN(size))
      return { entries, error: `bad tar header at byte ${off}${b === input ? '' : ' of the inflated data'}` };
    const type = String.fromCharCode(header[156] || 0x30);
    const magic = cString(header, 257, 6);
    const prefix = magic.startsWith('ustar') ? cString(header, 345, 155) : '';
    const dataStart = off + BLOCK;
    if (size > limits.member)
      return {
        entries,
        error: `member ${name} (header at byte ${off}) is ${size} bytes; the limit of one member is ${limits.member / 1024 / 1024} MiB`,
      };
    if (entries.length >= limits.members)
      return { entries, error: `more than ${limits.members} members (the limit of a bundle), at byte ${off}` };
    if (dataStart + size > b.length)
      return {
        entries,
        error: `truncated tar archive: member ${name} needs bytes ${dataStart}-${dataStart + size - 1} of the inflated data, which ends at byte ${b.length}`,
      };
    const data = b.subarray(dataStart, dataStart + size);
    off = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'L') {
      longName = cString(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      longName = paxPath(data) ?? longName;
      continue;
    }
    if (type === 'g') continue;
    const path = longName ?? (prefix ? `${prefix}/${name}` : name);
    longName = undefined;
    const at = `(header at byte ${off - BLOCK - Math.ceil(size / BLOCK) * BLOCK}${b === input ? '' : ' of the inflated data'})`;
    // A bundle is regular files and directories (what the collector's tar makes). Anything else is refused, never
    // skipped: a link or a device in its place would hide what the manifest names, and tar would follow it.
    const kind = MEMBER_KINDS[type];
    if (kind !== undefined)
      return { entries, error: `member ${JSON.stringify(path)} ${at} is ${kind}: a bundle holds only regular files` };
    if (path.startsWith('/') || path.split('/').includes('..'))
      return {
        entries,
        error: `member ${JSON.stringify(path)} ${at} ${path.startsWith('/') ? 'is an absolute path' : "has a '..' part"}: a bundle's members stay inside it`,
      };
    if (type === '0' || type === '\0' || type === '7') {
      const key = path.replace(/^(\.\/)+/, '');
      if (seen.has(key))
        return {
          entries,
          error: `member ${JSON.stringify(path)} ${at} is in the archive twice: which one is meant is ambiguous`,
        };
      seen.add(key);
      entries.push({ path, data });
    } else if (type !== '5')
      return { entries, error: `member ${JSON.stringify(path)} ${at} has the unknown type ${JSON.stringify(type)}` };
  }
  return { entries };
}
