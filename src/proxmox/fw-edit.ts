/**
 * Edits of a `.fw` file's text, as a person would make them in /etc/pve/firewall: set an option, add an entry to an
 * `[IPSET]`, remove an `[IPSET]` section, add a rule. Everything else (comments, order, blank lines) is kept, so the
 * result reads as a small diff of the original.
 */

const HEADER = /^\s*\[([^\]]+)\]/;

function lines(text: string): string[] {
  const l = text.split('\n');
  if (l.length > 0 && l[l.length - 1] === '') l.pop();
  return l;
}

function join(l: readonly string[]): string {
  return `${l.join('\n')}\n`;
}

/** Index of the section header matching `re` (e.g. /^options$/i), or -1. */
function findSection(l: readonly string[], re: RegExp): number {
  return l.findIndex((x) => {
    const m = HEADER.exec(x);
    return m !== null && re.test(m[1]!.trim().replace(/\s+/g, ' '));
  });
}

/** Index just after the last non-blank line of the section starting at `h`. */
function sectionEnd(l: readonly string[], h: number): number {
  let end = h + 1;
  for (let i = h + 1; i < l.length && !HEADER.test(l[i]!); i++) if (l[i]!.trim() !== '') end = i + 1;
  return end;
}

export function setFwOption(text: string, key: string, value: string): string {
  const l = lines(text);
  const h = findSection(l, /^options$/i);
  if (h < 0) return join(['[OPTIONS]', '', `${key}: ${value}`, '', ...l]);
  const re = new RegExp(`^\\s*${key}\\s*:`, 'i');
  for (let i = h + 1; i < l.length && !HEADER.test(l[i]!); i++) {
    if (re.test(l[i]!)) {
      l[i] = `${key}: ${value}`;
      return join(l);
    }
  }
  l.splice(sectionEnd(l, h), 0, `${key}: ${value}`);
  return join(l);
}

export function addFwIpsetEntry(text: string, set: string, entry: string, comment?: string): string {
  const l = lines(text);
  const line = comment ? `${entry} # ${comment}` : entry;
  const h = findSection(l, new RegExp(`^ipset ${set}$`, 'i'));
  if (h < 0) return join([...l, ...(l.length > 0 && l[l.length - 1] !== '' ? [''] : []), `[IPSET ${set}]`, '', line]);
  l.splice(sectionEnd(l, h), 0, line);
  return join(l);
}

export function removeFwIpset(text: string, set: string): string {
  const l = lines(text);
  const h = findSection(l, new RegExp(`^ipset ${set}$`, 'i'));
  if (h < 0) return join(l);
  let e = h + 1;
  while (e < l.length && !HEADER.test(l[e]!)) e++;
  l.splice(h, e - h);
  return join(l);
}

/** Adds a rule as the first of `[RULES]` (rules match in order). */
export function addFwRule(text: string, rule: string): string {
  const l = lines(text);
  const h = findSection(l, /^rules$/i);
  if (h < 0) return join([...l, ...(l.length > 0 && l[l.length - 1] !== '' ? [''] : []), '[RULES]', '', rule]);
  let at = h + 1;
  while (at < l.length && l[at]!.trim() === '') at++;
  l.splice(at, 0, rule);
  return join(l);
}

/** A unified diff of two texts (whole-file hunk with three lines of context around changes), for reports. */
export function fwDiff(file: string, before: string, after: string): string {
  const a = lines(before);
  const b = lines(after);
  // longest common subsequence on lines (files are small)
  const n = a.length;
  const m = b.length;
  const dp: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
  const ops: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push(` ${a[i]}`);
      i++;
      j++;
    } else if (j < m && (i >= n || dp[i]![j + 1]! > dp[i + 1]![j]!)) ops.push(`+${b[j++]}`);
    else ops.push(`-${a[i++]}`);
  }
  return [`--- ${file}`, `+++ ${file}`, `@@ -1,${n} +1,${m} @@`, ...ops].join('\n');
}
