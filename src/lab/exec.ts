/**
 * Running the commands that build a lab: every command goes through here, so that failures carry the command line
 * and so that background processes (tcpdump, servers, libvirtd) are tracked and can be stopped by their id.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Resolve with the failure instead of throwing. */
  readonly allowFail?: boolean;
  /** Kills the command (SIGKILL) when aborted. */
  readonly signal?: AbortSignal;
}

export class LabCommandError extends Error {
  constructor(
    readonly argv: readonly string[],
    readonly result: RunResult,
  ) {
    super(`command failed (exit ${result.code}): ${argv.join(' ')}\n${result.stderr.trim()}`);
  }
}

/** Runs a command to completion. */
export function run(argv: readonly string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(o.signal ? { signal: o.signal, killSignal: 'SIGKILL' as const } : {}),
    });
    let stdout = '';
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    if (o.timeoutMs !== undefined) timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      if (e.name === 'AbortError') return; // 'close' follows with the signal
      const r = { code: 127, stdout, stderr: `${stderr}${e.message}` };
      if (o.allowFail) resolve(r);
      else reject(new LabCommandError(argv, r));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const r = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (r.code !== 0 && !o.allowFail) reject(new LabCommandError(argv, r));
      else resolve(r);
    });
    child.stdin.on('error', () => {});
    child.stdin.end(o.input ?? '');
  });
}

/**
 * Runs argv in the named network namespace. `nsenter --net` is used rather than `ip netns exec` (which also
 * remounts /sys, ten times slower); what runs here reads the network namespace only through netlink and /proc.
 */
export function inNs(ns: string, argv: readonly string[]): string[] {
  return ['nsenter', `--net=/run/netns/${ns}`, ...argv];
}

/** `ip netns exec NS argv…`, for programs that read /sys/class/net (libvirtd). */
export function inNsWithSys(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

/** Synchronous variant for exit handlers (never throws). */
export function runSync(argv: readonly string[], input?: string): RunResult {
  try {
    const out = execFileSync(argv[0]!, argv.slice(1), {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      timeout: 10_000,
      ...(input !== undefined ? { input } : {}),
    });
    return { code: 0, stdout: out.toString(), stderr: '' };
  } catch (e) {
    const err = e as { status?: number; stdout?: Buffer; stderr?: Buffer };
    return { code: err.status ?? 1, stdout: err.stdout?.toString() ?? '', stderr: err.stderr?.toString() ?? '' };
  }
}

/** A background process started by the lab; its output goes to a log file. */
export interface BgProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<number>;
}

export function readLog(p: BgProcess): string {
  try {
    return readFileSync(p.logFile, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Starts a background process writing to `logFile`; resolves once `ready` matches the log (or once spawned without
 * `ready`). With `detach`, the process survives this one (for `lab up`).
 */
export function spawnBg(
  name: string,
  argv: readonly string[],
  o: { logFile: string; ready?: RegExp; readyTimeoutMs?: number; detach?: boolean },
): Promise<BgProcess> {
  return new Promise((resolve, reject) => {
    const [cmd, ...args] = argv;
    const fd = openSync(o.logFile, 'a');
    const child = spawn(cmd!, args, { stdio: ['ignore', fd, fd], detached: o.detach === true });
    closeSync(fd);
    if (o.detach) child.unref();
    const exited = new Promise<number>((res) => child.on('close', (code, sig) => res(code ?? (sig ? 128 : 1))));
    const bg: BgProcess = { name, child, pid: child.pid ?? -1, logFile: o.logFile, exited };
    let settled = false;
    const t0 = Date.now();
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve(bg);
    };
    child.on('error', (e) => finish(new Error(`${name}: ${e.message}`)));
    child.on('spawn', () => {
      if (!o.ready) return finish();
      const poll = () => {
        if (settled) return;
        const log = readLog(bg);
        if (o.ready!.test(log)) return finish();
        if (child.exitCode !== null || child.signalCode !== null)
          return finish(new Error(`${name} exited before it was ready: ${log.trim()}`));
        if (Date.now() - t0 > (o.readyTimeoutMs ?? 5000)) {
          child.kill('SIGKILL');
          return finish(new Error(`${name} was not ready within ${o.readyTimeoutMs ?? 5000} ms: ${log.trim()}`));
        }
        setTimeout(poll, 10);
      };
      poll();
    });
  });
}

/** Stops a process by its id (SIGINT, then SIGKILL after `graceMs`; at once with 0) and waits for it. */
export async function stopBg(p: BgProcess, graceMs = 1000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  if (graceMs <= 0) {
    p.child.kill('SIGKILL');
    await p.exited;
    return;
  }
  p.child.kill('SIGINT');
  const t = setTimeout(() => p.child.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(t);
}
