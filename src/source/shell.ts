/**
 * Names from configuration (domains, taps, hosts, filters) reach two dangerous places: shell commands lvsdoctor
 * prints or writes, and file names it builds. One helper for each, used everywhere.
 */
import { createHash } from 'node:crypto';

const SHELL_SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

/**
 * `s` as one POSIX shell word: unchanged when it holds only characters no shell treats specially (and does not start
 * with `-` or `~`... a leading `-` stays an option either way, so callers put `--` or `--domain` before names),
 * else in single quotes with each `'` written `'\''`. Control characters are quoted too (a newline inside quotes is
 * still one word).
 */
export function shellQuote(s: string): string {
  if (s !== '' && SHELL_SAFE.test(s) && !s.startsWith('~')) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A command line of words, each quoted as needed. */
export function shellCommand(...words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}

const NAME_SAFE = /^[A-Za-z0-9_.-]+$/;
/** Longest file-name component lvsdoctor builds (bytes); NAME_MAX is 255, room is left for prefixes and suffixes. */
const MAX_NAME = 120;

/**
 * A name as one file-name component: names of `[A-Za-z0-9._-]` (not `.` or `..`, not starting with `.` or `-`) stay
 * as they are; any other byte is written `%XX`, so names that differ anywhere give different files. Long names are
 * cut and end with a hash of the whole name (NAME_MAX is never reached).
 */
export function fileNamePart(name: string): string {
  let out =
    name !== '' && NAME_SAFE.test(name) && !name.startsWith('.') && !name.startsWith('-')
      ? name
      : [...new TextEncoder().encode(name)]
          .map((b, i) => {
            const c = String.fromCharCode(b);
            const ok = /[A-Za-z0-9_]/.test(c) || (i > 0 && (c === '.' || c === '-'));
            return ok ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
          })
          .join('') || '%';
  if (new TextEncoder().encode(out).length > MAX_NAME)
    out = `${out.slice(0, MAX_NAME - 17)}~${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
  return out;
}

/** A name for a `# comment` line of a script: quoted like a word, and no control character can end the comment. */
export function commentName(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return shellQuote(s).replace(/[\x00-\x1f\x7f]/g, '?');
}
