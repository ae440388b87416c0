import { LIMITS } from '../source/files.ts';
import { formatIssue, type Issue } from '../source/issue.ts';

export { currentInput, resetCurrentInput } from '../source/reading.ts';

/** Where a command writes: injected so the CLI can run in-process in tests. */
export interface Io {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly cwd?: string;
  /** stderr is a terminal: progress lines are shown (never when it is a pipe or a file). */
  readonly stderrIsTTY?: boolean;
  /** stdout is a terminal and colour is allowed (not NO_COLOR, not --no-color). */
  readonly color?: boolean;
}

/** Bad usage detected after parsing (an unknown probe, a bad --format value). */
export class UsageError extends Error {}

/**
 * Prints input issues, at most LIMITS.issuesPerFile errors and as many warnings per file (then one line counting
 * the rest: errors are never crowded out by notes); returns true when any is an error (the command must stop with
 * exit 2).
 */
/** One printed issue at most this long: a message quoting a megabyte of input must not bury the next ones. */
const LINE_MAX = 1000;

function cut(line: string): string {
  return line.length <= LINE_MAX ? line : `${line.slice(0, LINE_MAX)}… (${line.length - LINE_MAX} more characters)`;
}

export function reportIssues(io: Io, issues: readonly Issue[]): boolean {
  let bad = false;
  const shown = new Map<string, number>();
  for (const i of issues) {
    if (i.severity === 'error') bad = true;
    const key = `${i.severity === 'error' ? 'errors' : 'warnings and notes'}\0${i.pos?.file ?? ''}`;
    const n = (shown.get(key) ?? 0) + 1;
    shown.set(key, n);
    if (n <= LIMITS.issuesPerFile) io.stderr(`${cut(formatIssue(i))}\n`);
  }
  for (const [key, n] of shown)
    if (n > LIMITS.issuesPerFile) {
      const [what, file] = key.split('\0') as [string, string];
      io.stderr(
        `${file || 'lvsdoctor'}: ${n - LIMITS.issuesPerFile} more ${what} not shown (the first ${LIMITS.issuesPerFile} are above)\n`,
      );
    }
  return bad;
}
