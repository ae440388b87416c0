/**
 * `node:path` for the offline report's what-if engine (report-engine.ts): the POSIX functions the domain code calls,
 * with Node's semantics (path.test.ts compares them with node:path). The page has no working directory: `resolve`
 * starts from `/`.
 */

export const sep = '/';
export const delimiter = ':';

export function isAbsolute(p: string): boolean {
  return p.startsWith('/');
}

/** Node's `normalizeString`: resolves `.` and `..` parts; `..` above the start is kept when `aboveRoot`. */
function normalizeParts(p: string, aboveRoot: boolean): string {
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (aboveRoot) out.push('..');
      continue;
    }
    out.push(part);
  }
  return out.join('/');
}

export function normalize(p: string): string {
  if (p === '') return '.';
  const abs = isAbsolute(p);
  const trailing = p.endsWith('/');
  let n = normalizeParts(p, !abs);
  if (n === '' && !abs) n = '.';
  if (n !== '' && trailing) n += '/';
  return abs ? `/${n}` : n;
}

export function join(...parts: string[]): string {
  const joined = parts.filter((x) => x !== '').join('/');
  return joined === '' ? '.' : normalize(joined);
}

export function resolve(...parts: string[]): string {
  let p = '';
  for (let k = parts.length - 1; k >= 0 && !isAbsolute(p); k--)
    if (parts[k] !== '') p = p === '' ? parts[k]! : `${parts[k]}/${p}`;
  if (!isAbsolute(p)) p = `/${p}`;
  return `/${normalizeParts(p, false)}`;
}

export function relative(from: string, to: string): string {
  const a = resolve(from).split('/').filter(Boolean);
  const b = resolve(to).split('/').filter(Boolean);
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return [...a.slice(k).map(() => '..'), ...b.slice(k)].join('/');
}

/** What the domain code imports; a name missing here fails the engine's build (esbuild: no matching export). */
export const posix = { sep, delimiter, isAbsolute, normalize, join, resolve, relative };
export default posix;
