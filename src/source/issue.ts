import { formatPosition, type Position } from './origin.ts';

export type Severity = 'error' | 'warning' | 'info';

/**
 * Bad input is data: readers return issues instead of throwing. `unsupported` marks a construct that is valid
 * for the real tool but that lvsdoctor does not model — never silently skipped.
 */
export interface Issue {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly pos?: Position;
  readonly unsupported?: boolean;
}

export interface ReadResult<T> {
  /** Undefined only when nothing usable could be read. */
  readonly value: T | undefined;
  readonly issues: readonly Issue[];
}

export function issue(code: string, message: string, pos?: Position, severity: Severity = 'error'): Issue {
  return pos === undefined ? { code, severity, message } : { code, severity, message, pos };
}

export function unsupported(code: string, message: string, pos?: Position): Issue {
  const base = { code, severity: 'error' as const, message, unsupported: true };
  return pos === undefined ? base : { ...base, pos };
}

export function hasErrors(issues: readonly Issue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}

/** One line: `file:line: error: message [code]`. */
export function formatIssue(i: Issue): string {
  const where = i.pos ? `${formatPosition(i.pos)}: ` : '';
  const kind = i.unsupported ? 'unsupported' : i.severity;
  return `${where}${kind}: ${i.message} [${i.code}]`;
}

/** Converts a character offset into 1-based line and column. */
export function lineColumnAt(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}
