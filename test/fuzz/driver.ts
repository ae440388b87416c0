/**
 * The fuzz driver (issue 15): mutates seeds of every input kind, runs each case through the CLI in a child process
 * with a memory limit (--max-old-space-size) and a per-case time limit, and checks what a user must always get:
 * exit 0, 1 or 2; no stack trace and no internal error; a bad input named in the error; nothing created outside the
 * named output; and time that grows linearly with the input (a ratio between two sizes, measured in the same run).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CaseSetup, type Kind, kinds, ROOT } from './kinds.ts';
import { mutate, Rng } from './mutate.ts';

export interface FuzzOptions {
  /** Cases per input kind. */
  readonly cases: number;
  readonly seed?: number;
  /** Per-case time limit (ms). */
  readonly timeoutMs?: number;
  /** Heap limit of the child (MB). */
  readonly memoryMb?: number;
  /** Only these kinds. */
  readonly only?: readonly string[];
  /** Run the linear-time checks (default true). */
  readonly scaling?: boolean;
  readonly log?: (s: string) => void;
}

export interface Failure {
  readonly kind: string;
  readonly what: string;
  readonly detail: string;
  /** Where the failing input is kept (under the scratch directory, when kept). */
  readonly input?: string;
}

export interface FuzzReport {
  readonly cases: number;
  readonly byKind: Record<string, { cases: number; exit: Record<string, number> }>;
  readonly failures: readonly Failure[];
  readonly scaling: readonly { kind: string; small: number; big: number; ratio: number }[];
}

interface PlannedCase {
  readonly i: number;
  readonly kind: string;
  readonly dir: string;
  readonly setup: CaseSetup;
  readonly before: readonly string[];
  readonly ops: string;
}

interface Result {
  readonly i: number;
  readonly code?: number;
  readonly ms?: number;
  readonly stderr?: string;
  readonly died?: string;
}

const STACK = /\n\s+at .+[:(].*\d+:\d+\)?/;

/** Runs cases in child processes, restarting after a hang or a crash; one result per case. */
async function runAll(
  cases: readonly { i: number; argv: readonly string[] }[],
  scratch: string,
  timeoutMs: number,
  memoryMb: number,
): Promise<Map<number, Result>> {
  const results = new Map<number, Result>();
  let rest = [...cases];
  while (rest.length > 0) {
    const file = join(scratch, `batch-${rest[0]!.i}.json`);
    writeFileSync(file, JSON.stringify(rest));
    const child = spawn(
      process.execPath,
      [
        `--max-old-space-size=${memoryMb}`,
        '--stack-size=984',
        '--import',
        'tsx',
        join(import.meta.dirname, 'runner.ts'),
        file,
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LVSDOCTOR_DEBUG: '' } },
    );
    let current: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    let killedFor: string | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        killedFor = `no result within ${timeoutMs} ms (a hang or superlinear time)`;
        child.kill('SIGKILL');
      }, timeoutMs);
    };
    let buf = '';
    let childErr = '';
    child.stderr.on('data', (d: Buffer) => {
      if (childErr.length < 20_000) childErr += d.toString();
    });
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const m = JSON.parse(line) as { start?: number } & Result;
        if (m.start !== undefined) {
          current = m.start;
          arm();
        } else {
          results.set(m.i, m);
          current = undefined;
          clearTimeout(timer);
        }
      }
    });
    const exit = await new Promise<string>((resolve) =>
      child.on('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`)),
    );
    clearTimeout(timer);
    if (current !== undefined && !results.has(current))
      results.set(current, {
        i: current,
        died: killedFor ?? `the process died (${exit}): ${childErr.split('\n').slice(0, 3).join(' | ').slice(0, 300)}`,
      });
    rest = rest.filter((c) => !results.has(c.i));
    if (current === undefined && rest.length > 0 && exit !== 'exit 0') {
      // Died between cases: count the next one as the culprit rather than looping.
      results.set(rest[0]!.i, { i: rest[0]!.i, died: `the runner died (${exit}): ${childErr.slice(0, 300)}` });
      rest = rest.slice(1);
    }
  }
  return results;
}

function listing(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/** What the output of one case must satisfy; undefined when it does. */
function check(c: PlannedCase, r: Result): { what: string; detail: string } | undefined {
  if (r.died) return { what: 'died', detail: r.died };
  if (r.code !== 0 && r.code !== 1 && r.code !== 2)
    return { what: `exit ${r.code}`, detail: (r.stderr ?? '').slice(0, 600) };
  const err = r.stderr ?? '';
  if (STACK.test(err) || /internal error/.test(err)) return { what: 'stack trace', detail: err.slice(0, 600) };
  if (r.code === 2) {
    const lines = err.split('\n').filter((l) => /error|unsupported|cannot|refus|lvsdoctor:/.test(l));
    if (lines.length === 0) return { what: 'exit 2 without an error line', detail: err.slice(0, 600) };
    // The bad file itself, or the file an import made from it (or the case directory), AND where in it: `FILE:LINE`,
    // or a line or byte named in the message. A file-level complaint with no place is not enough.
    const namesFile = (l: string): boolean =>
      l.includes(c.setup.file) || l.includes(c.dir) || /^[^\s:]+:\d+(:\d+)?: (error|unsupported)/.test(l);
    const namesPlace = (l: string): boolean =>
      /^[^\s:]+:\d+(:\d+)?: /.test(l) || /\b(line|lines|byte|bytes|offset) \d+/.test(l);
    if (!lines.some(namesFile))
      return { what: `no error names ${c.setup.file}`, detail: lines.slice(0, 3).join('\n').slice(0, 600) };
    if (!lines.some((l) => namesFile(l) && namesPlace(l)))
      return {
        what: `no error names a line or byte of ${c.setup.file}`,
        detail: lines.slice(0, 3).join('\n').slice(0, 600),
      };
  }
  const after = listing(c.dir);
  const allowed = new Set([...c.before, ...c.setup.outs]);
  const extra = after.filter((f) => !allowed.has(f));
  if (extra.length > 0) return { what: 'created outside the named output', detail: extra.join(', ') };
  return undefined;
}

/** Runs the fuzz suite. */
export async function fuzz(o: FuzzOptions): Promise<FuzzReport> {
  const log = o.log ?? (() => {});
  const scratch = mkdtempSync(join(tmpdir(), 'lvsdoctor-fuzz-'));
  const keep = join(scratch, 'failing');
  try {
    const rng = new Rng(o.seed ?? 1);
    const all = kinds(join(scratch, 'seeds')).filter((k) => !o.only || o.only.includes(k.name));
    const planned: PlannedCase[] = [];
    let i = 0;
    for (const k of all) {
      const seeds = k.seeds().map((f) => ({ f, bytes: new Uint8Array(readFileSync(f)) }));
      for (let n = 0; n < o.cases; n++) {
        const s = seeds[n % seeds.length]!;
        const m = mutate(s.bytes, rng);
        const dir = join(scratch, `case-${i}`);
        mkdirSync(dir);
        const setup = k.setup(dir, m.bytes, s.f);
        planned.push({
          i,
          kind: k.name,
          dir,
          setup,
          before: listing(dir),
          ops: `${m.ops.join('+')} of ${s.f.slice(ROOT.length + 1)}`,
        });
        i++;
      }
    }
    log(`fuzz: ${planned.length} cases over ${all.length} input kinds (seed ${o.seed ?? 1})`);
    const results = await runAll(
      planned.map((c) => ({ i: c.i, argv: c.setup.argv })),
      scratch,
      o.timeoutMs ?? 20_000,
      o.memoryMb ?? 512,
    );
    const failures: Failure[] = [];
    const byKind: FuzzReport['byKind'] = {};
    for (const c of planned) {
      const r = results.get(c.i) ?? { i: c.i, died: 'no result' };
      byKind[c.kind] ??= { cases: 0, exit: {} };
      const k = byKind[c.kind]!;
      k.cases++;
      const e = r.died ? 'died' : String(r.code);
      k.exit[e] = (k.exit[e] ?? 0) + 1;
      const bad = check(c, r);
      if (bad) {
        const input = join(keep, `case-${c.i}`);
        failures.push({ kind: c.kind, what: bad.what, detail: `${c.ops}: ${bad.detail}`, input });
      }
      if (!bad) rmSync(c.dir, { recursive: true, force: true });
    }
    const scaling = o.scaling === false ? [] : await scalingChecks(all, scratch, o, failures);
    return { cases: planned.length, byKind, failures, scaling };
  } finally {
    if (process.env.LVSDOCTOR_FUZZ_KEEP !== '1') rmSync(scratch, { recursive: true, force: true });
    else log(`fuzz: inputs kept in ${scratch}`);
  }
}

/** Linear time: the same input structure at size k and 8k must not take more than ~20 times as long. */
async function scalingChecks(
  all: readonly Kind[],
  scratch: string,
  o: FuzzOptions,
  failures: Failure[],
): Promise<FuzzReport['scaling']> {
  const out: { kind: string; small: number; big: number; ratio: number }[] = [];
  const plan: { i: number; argv: readonly string[]; kind: string; size: 'small' | 'big' }[] = [];
  let i = 1_000_000;
  for (const k of all) {
    if (!k.grow) continue;
    // Sizes large enough that the parse dominates the fixed cost of a command (tens of ms).
    for (const [size, n] of [
      ['small', 1000],
      ['big', 8000],
    ] as const)
      for (let rep = 0; rep < 3; rep++) {
        const dir = join(scratch, `scale-${i}`);
        mkdirSync(dir);
        const setup = k.setup(dir, k.grow(n), '');
        plan.push({ i: i++, argv: setup.argv, kind: k.name, size });
      }
  }
  const results = await runAll(plan, scratch, (o.timeoutMs ?? 20_000) * 3, o.memoryMb ?? 512);
  for (const k of all) {
    if (!k.grow) continue;
    const best = (size: string) =>
      Math.min(
        ...plan.filter((p) => p.kind === k.name && p.size === size).map((p) => results.get(p.i)?.ms ?? Infinity),
      );
    const small = Math.max(best('small'), 5);
    const big = best('big');
    const ratio = big / small;
    out.push({ kind: k.name, small, big, ratio });
    // 8 times the input: linear is ~8, quadratic ~64. The fixed cost of a command makes small inputs look slow, so
    // a linear parse stays well under the bound; the best of three runs of each size takes out most noise of a
    // shared machine (the JIT warming up, a collection).
    if (!(ratio < 32))
      failures.push({
        kind: k.name,
        what: 'superlinear time',
        detail: `8 times the input took ${ratio.toFixed(1)} times as long (${small.toFixed(0)} ms → ${big.toFixed(0)} ms)`,
      });
  }
  return out;
}
