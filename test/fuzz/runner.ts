/**
 * The fuzz driver's child process: runs cases through the CLI in-process (one Node start for many cases) and
 * prints one JSON line per case on stdout (`{"start":i}` before, the result after), so the parent can attribute a
 * hang or a crash (out of memory, stack overflow in native code) to the case that was running and kill it.
 * Usage: node --import tsx --max-old-space-size=MB runner.ts CASES.json
 */
import { readFileSync, writeSync } from 'node:fs';
import { main } from '../../src/cli/main.ts';

interface RunnerCase {
  readonly i: number;
  readonly argv: readonly string[];
}

const cases = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as RunnerCase[];
const say = (o: unknown) => writeSync(1, `${JSON.stringify(o)}\n`);
for (const c of cases) {
  say({ start: c.i });
  let stdout = 0;
  let stderr = '';
  const t = performance.now();
  const code = await main(c.argv, {
    stdout: (s) => {
      stdout += s.length;
    },
    stderr: (s) => {
      if (stderr.length < 400_000) stderr += s;
    },
  });
  say({
    i: c.i,
    code,
    ms: performance.now() - t,
    stdout,
    stderr: stderr.slice(0, 400_000),
    heapMb: process.memoryUsage().rss / 1048576,
  });
}
