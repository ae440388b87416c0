/**
 * Colour for the text output: verdicts, marks and drops, painted line by line when stdout is a terminal and colour
 * is allowed (`Io.color`: not NO_COLOR, not --no-color); --json output is never painted.
 */
import { createColors } from 'picocolors';

const BAD =
  /\b(FAILS|DROP|dropped-by-filter|dropped-by-kernel|no-route|no-real-server|arp-unresolved|refused|ttl-exceeded|blackholed|loop|not sufficient)\b|[✗✖]/g;
const GOOD = /\b(OK|replied|verified|healthy)\b|✓/g;

/** Paints one chunk of output. */
export function paint(text: string): string {
  const c = createColors(true);
  return text
    .split('\n')
    .map((line) => line.replace(BAD, (m) => c.bold(c.red(m))).replace(GOOD, (m) => c.green(m)))
    .join('\n');
}

/** Whether a command line asks for plain output: --no-color, or JSON. */
export function plainRequested(argv: readonly string[]): boolean {
  return argv.includes('--no-color') || argv.includes('--json') || argv.includes('--format=json');
}
