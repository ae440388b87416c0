/**
 * A director played by a network namespace, for tests that hold lvsdoctor's iptables evaluation to the real kernel:
 * a director namespace (its interface named eth0 as in the scenarios, the VIP on it) and a client namespace joined
 * by a veth pair, rules loaded with iptables-restore, a TCP SYN per port, and the rule counters read back.
 * Root only: `netnsSkip()` gives the one-line reason a test skips with otherwise.
 */
import { spawnSync } from 'node:child_process';
import { ipv4 } from '../../src/addr/ipv4.ts';
import { mac } from '../../src/addr/mac.ts';
import { synFrame } from '../../src/diagnose/facts.ts';
import type { EthernetFrame } from '../../src/wire/types.ts';

const has = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;

/** Why a namespace test cannot run here, or undefined. */
export function netnsSkip(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (needs network namespaces)';
  if (!has('iptables-restore') || !has('ip')) return 'iptables or ip is not installed';
  return undefined;
}

/** A command in a namespace. */
export function nsRun(ns: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', ...(input ? { input } : {}) });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function must(what: string, r: { status: number | null; stderr?: string | Buffer | null }): void {
  if (r.status !== 0) throw new Error(`${what} failed (${r.status}): ${String(r.stderr ?? '')}`);
}

/**
 * The director `d` (eth0 198.51.100.11/24 and the VIP/32) and the client `c` (eth0 198.51.100.50/24) on one veth
 * pair; `veth` is the director end's temporary name (unique per test, renamed eth0 inside its namespace).
 */
export function directorAndClient(d: string, c: string, veth: string, vip: string): void {
  for (const ns of [d, c]) must(`ip netns add ${ns}`, spawnSync('ip', ['netns', 'add', ns]));
  must('veth pair', spawnSync('ip', ['link', 'add', veth, 'netns', d, 'type', 'veth', 'peer', 'eth0', 'netns', c]));
  for (const [ns, dev, addr] of [
    [d, veth, '198.51.100.11/24'],
    [c, 'eth0', '198.51.100.50/24'],
  ] as const) {
    must(`${ns} ${dev} up`, nsRun(ns, ['ip', 'link', 'set', dev, 'up']));
    must(`${ns} ${dev} address`, nsRun(ns, ['ip', 'addr', 'add', addr, 'dev', dev]));
  }
  // The director's interface is eth0 in the scenarios: rename it so that rules naming eth0 mean the same.
  must('down', nsRun(d, ['ip', 'link', 'set', veth, 'down']));
  must('rename', nsRun(d, ['ip', 'link', 'set', veth, 'name', 'eth0']));
  must('up', nsRun(d, ['ip', 'link', 'set', 'eth0', 'up']));
  must('VIP', nsRun(d, ['ip', 'addr', 'add', `${vip}/32`, 'dev', 'eth0']));
  must('lo', nsRun(d, ['ip', 'link', 'set', 'lo', 'up']));
}

export function removeNamespaces(...names: string[]): void {
  for (const n of names) spawnSync('ip', ['netns', 'del', n]);
}

/** The client's SYN to `vip`:`dport` as lvsdoctor models it (the frame the director's PREROUTING sees). */
export function clientSyn(vip: string, dport: number): EthernetFrame {
  return synFrame(mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), ipv4('198.51.100.50'), ipv4(vip), dport);
}

/** `-A …` lines of `iptables-save -c` with their packet counters, keyed `TABLE -A …`, in order. */
function saveCounters(save: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = '';
  for (const l of save.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1);
    const m = /^\[(\d+):\d+\] (-A .*)$/.exec(l);
    if (m) out.set(`${table} ${m[2]}`, Number(m[1]));
  }
  return out;
}

/**
 * One SYN from `client` to `vip`:`port` on the kernel, and what the director's counters say of it: its
 * `iptables-save -c` afterwards and the rules (keyed as `saveCounters` keys them) whose packet counters moved.
 * Nothing listens, so the director answers RST and the connect fails at once (the SYN has passed PREROUTING/INPUT).
 */
export function synCounted(
  director: string,
  client: string,
  vip: string,
  port: number,
): { save: string; counted: string[] } {
  const before = saveCounters(nsRun(director, ['iptables-save', '-c']).stdout);
  nsRun(client, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${vip}/${port}`]);
  const save = nsRun(director, ['iptables-save', '-c']).stdout;
  const counted = [...saveCounters(save)].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k]) => k);
  return { save, counted };
}
