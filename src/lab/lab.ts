/**
 * Bringing a scenario up on the real kernel and taking it down again. Everything lives in network namespaces
 * named with a per-run prefix (`lvsd-<pid>-<n>-`); the root namespace is never touched. Active labs are removed on
 * exit, SIGINT and SIGTERM; `removeLeftovers` clears what a crashed run left behind.
 */

import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { appendAll } from '../source/arrays.ts';
import { fileNamePart } from '../source/shell.ts';
import { compileHostRules } from '../topology/host-rules.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { type BgProcess, inNs, run, runSync, spawnBg, stopBg } from './exec.ts';
import { type DirectorMode, directorNftReload, ebtablesRestoreText, ipvsadmRestoreText } from './kernel-rules.ts';
import { createBinding, defineFilters, type LibvirtDaemon, startLibvirtd } from './libvirt-daemon.ts';
import { dummyLinkType, kernelCapabilities, LabLimitError, labLimits } from './limits.ts';
import { type HostRulesPlan, type LabPlan, planLab } from './plan.ts';
import { preflight, whichCommand } from './preflight.ts';

export type FilterSource = 'libvirt' | 'compiled';
export type DirectorEngine = 'ipvs' | 'nftables';

export interface LabOptions {
  /** Who installs the guests' filters: a real libvirt (default when available) or the project's compiled rules. */
  readonly filters?: 'auto' | FilterSource;
  /** Where tcpdump writes (default: the lab's temporary directory). */
  readonly pcapDir?: string;
  /** Namespace name prefix (default `lvsd-<pid>-<n>-`). */
  readonly prefix?: string;
  /** Leave processes running after this process exits (`lab up`). */
  readonly detach?: boolean;
  readonly directorMode?: DirectorMode;
  /** Real keepalived runs on the directors (`lab vrrp`): its strict-mode rules need no stand-in. */
  readonly runsKeepalived?: boolean;
  /** Who plays the directors: real IPVS through ipvsadm (`auto` when the kernel has it) or the nftables emulation. */
  readonly directors?: 'auto' | DirectorEngine;
  readonly log?: (line: string) => void;
}

export interface RuleCheck {
  readonly host: string;
  /** True when the kernel's `ebtables -t nat -L` equals the listing of the project's compiled rules. */
  readonly same: boolean;
  readonly kernel: string;
  readonly compiled: string;
}

export interface Lab {
  readonly loaded: LoadedScenario;
  readonly plan: LabPlan;
  readonly prefix: string;
  readonly workDir: string;
  readonly pcapDir: string;
  readonly filterSource: FilterSource;
  readonly directorEngine: DirectorEngine;
  readonly procs: BgProcess[];
  readonly captures: Map<string, { proc: BgProcess; file: string }>;
  readonly daemons: Map<string, LibvirtDaemon>;
  readonly ruleChecks: RuleCheck[];
  readonly warnings: string[];
  readonly timings: Record<string, number>;
  down: boolean;
  /** Set once everything is removed (`down` is set when the removal starts). */
  removed?: boolean;
}

export const LAB_PREFIX = 'lvsd-';
let counter = 0;
const active = new Set<Lab>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of active) destroySync(lab);
  });
  // SIGHUP too: a dropped SSH session must not leave namespaces, processes, mounts or temporary directories.
  const codes = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 } as const;
  for (const sig of ['SIGHUP', 'SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      for (const lab of active) destroySync(lab);
      process.exit(codes[sig]);
    });
}

/** Namespaces of ours, by prefix. */
export function labNamespaces(prefix = LAB_PREFIX): string[] {
  const r = runSync(['ip', 'netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => n.startsWith(prefix));
}

function killNamespaceProcesses(ns: string): void {
  const r = runSync(['ip', 'netns', 'pids', ns]);
  for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
}

function deleteNamespaces(names: readonly string[]): void {
  for (const ns of names) killNamespaceProcesses(ns);
  if (names.length > 0) runSync(['ip', '-force', '-batch', '-'], names.map((n) => `netns del ${n}`).join('\n'));
}

async function deleteNamespacesAsync(names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (ns) => {
      const r = await run(['ip', 'netns', 'pids', ns], { allowFail: true });
      for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number))
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
    }),
  );
  if (names.length > 0)
    await run(['ip', '-force', '-batch', '-'], {
      input: names.map((n) => `netns del ${n}\n`).join(''),
      allowFail: true,
    });
}

/** Removes everything at once, also when an orderly `labDown` was under way (a signal during teardown). */
function destroySync(lab: Lab): void {
  if (lab.removed) return;
  lab.down = true;
  for (const p of lab.procs)
    try {
      p.child.kill('SIGKILL');
    } catch {
      // gone
    }
  deleteNamespaces(lab.plan.namespaces.map((n) => n.ns));
  rmSync(lab.workDir, { recursive: true, force: true });
  lab.removed = true;
  active.delete(lab);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes namespaces of labs whose owner process is gone (crashed runs, `lab up`), with their processes and
 * temporary directories. Returns the namespaces removed. Labs of live processes are left alone.
 */
export function removeLeftovers(): string[] {
  const gone = labNamespaces().filter((ns) => {
    if (ns.startsWith(`${LAB_PREFIX}up`)) return true;
    const m = /^lvsd-(\d+)-/.exec(ns);
    return !m || !pidAlive(Number(m[1]));
  });
  deleteNamespaces(gone);
  const prefixes = new Set(gone.map((ns) => /^(lvsd-(?:up)?\d+-\d+-)/.exec(ns)?.[1]).filter((x): x is string => !!x));
  for (const entry of readdirSync(tmpdir())) {
    // Temporary directories of labs whose namespaces were removed, or whose owner is gone.
    const owner = /^lvsdoctor-lab-(?:differential-)?(?:lvsd-)?(\d+)-/.exec(entry)?.[1];
    const mine = [...prefixes].some((p) => entry.startsWith(`lvsdoctor-lab-${p}`));
    if (mine || (owner !== undefined && !pidAlive(Number(owner))))
      rmSync(join(tmpdir(), entry), { recursive: true, force: true });
  }
  return gone;
}

function group<T>(items: readonly T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const l = m.get(k) ?? [];
    l.push(t);
    m.set(k, l);
  }
  return m;
}

async function batch(ns: string | undefined, lines: readonly string[], warnings: string[]): Promise<void> {
  if (lines.length === 0) return;
  const argv = ns ? ['ip', '-n', ns, '-force', '-batch', '-'] : ['ip', '-force', '-batch', '-'];
  const r = await run(argv, { input: `${lines.join('\n')}\n`, allowFail: true });
  if (r.code !== 0)
    for (const l of r.stderr.split('\n').filter((x) => x.trim() && !/^Command failed/.test(x)))
      warnings.push(`${ns ?? 'ip'}: ${l.trim()}`);
}

/** A tiny HTTP (or UDP echo) server saying which node served; Python starts faster than Node. */
const SERVER_PY = `
import socket, struct, sys, threading
proto, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# A full-size response (several segments), as the simulator's conversation has the server send one.
body = ('served by %s\\n' % name).encode()
body += b'.' * (3000 - len(body)) + b'\\n'
if proto == 'udp':
    # Answers from the address each datagram was sent to (IP_PKTINFO), as DNS servers do: a DR real server answers
    # from the VIP on its lo, not from the address its route would pick.
    PKTINFO = getattr(socket, 'IP_PKTINFO', 8)  # Linux's value; Python < 3.12 does not name it
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IP, PKTINFO, 1)
    u.bind(('0.0.0.0', port))
    print('listening', port, flush=True)
    answer = ('served by %s\\n' % name).encode()
    while True:
        m, anc, _, a = u.recvmsg(2048, 256)
        info = [d for (lvl, t, d) in anc if lvl == socket.IPPROTO_IP and t == PKTINFO]
        dst = info[0][8:12] if info else bytes(4)
        u.sendmsg([answer], [(socket.IPPROTO_IP, PKTINFO, struct.pack('=I4s4s', 0, dst, bytes(4)))], 0, a)
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', port))
s.listen(64)
print('listening', port, flush=True)
def serve(c):
    try:
        c.settimeout(5)
        data = b''
        while b'\\r\\n\\r\\n' not in data:
            d = c.recv(4096)
            if not d:
                break
            data += d
        c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n' % len(body) + body)
    except OSError:
        pass
    finally:
        c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

async function step<T>(lab: Lab, name: string, f: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await f();
  } finally {
    lab.timings[name] = (lab.timings[name] ?? 0) + (performance.now() - t0);
  }
}

/** Flags of an `ip -o link` / `bridge link` line. */
function linkFlags(line: string): string[] {
  return /<([^>]*)>/.exec(line)?.[1]?.split(',') ?? [];
}

/** The first ifindex given to veth ends (above what namespaces number their own interfaces with). */
const VETH_INDEX = 1000;

/**
 * What is still coming up in a namespace (one `ip -d -o link` per call): interfaces set up whose operational state
 * is not up yet although they have carrier, and bridge ports with carrier that do not forward yet.
 *
 * Carrier is `LOWER_UP`, set at once when a veth and its peer are up. `NO-CARRIER` is not the want of it: iproute2
 * prints it for an interface that is up but not `RUNNING`, and `RUNNING` follows the operational state, which (like
 * a bridge port's state) only the kernel's linkwatch sets, later. An interface with carrier whose linkwatch event is
 * still queued therefore shows `NO-CARRIER,…,UP,LOWER_UP … state DOWN` (and, as a port, `state disabled`): it is
 * still coming up. Linkwatch handles a veth's event at once when its ifindex differs from its peer's, and at most
 * once a second otherwise — and the two ends of a veth between namespaces often get the same ifindex (each
 * namespace numbers its own), so such a port can stay disabled for up to a second after everything else is up.
 */
async function pendingLinks(ns: string): Promise<string[]> {
  const r = await run(['ip', '-n', ns, '-d', '-o', 'link', 'show'], { allowFail: true });
  const pending: string[] = [];
  for (const l of r.stdout.split('\n')) {
    const f = linkFlags(l);
    if (!f.includes('UP') || !f.includes('LOWER_UP') || f.includes('NOARP')) continue;
    const port = / bridge_slave state (\S+)/.exec(l)?.[1];
    if (
      f.includes('NO-CARRIER') ||
      / state (DOWN|LOWERLAYERDOWN) /.test(l) ||
      (port !== undefined && port !== 'forwarding')
    )
      pending.push(l.split('\\')[0] + (port ? ` (port ${port})` : ''));
  }
  return pending;
}

async function settle(namespaces: readonly string[], warnings: string[]): Promise<void> {
  const deadline = Date.now() + 5000;
  let left = [...namespaces];
  for (;;) {
    const checks = await Promise.all(left.map(async (ns) => ({ ns, pending: await pendingLinks(ns) })));
    const still = checks.filter((c) => c.pending.length > 0);
    if (still.length === 0) return;
    if (Date.now() > deadline) {
      for (const c of still) warnings.push(`${c.ns}: still coming up after 5 s: ${c.pending.join('; ')}`);
      return;
    }
    left = still.map((c) => c.ns);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Loads a host's own rule set into its namespace as the host has it — every table (filter, nat, mangle, raw),
 * Docker's and libvirt's chains — with `iptables-nft-restore` or `nft -f`; the kernel evaluates it, through
 * br_netfilter for bridged frames where the host's sysctl says so. A rule set this kernel cannot load (a match it
 * lacks, an ipset it does not have) is a limit of the lab, not a verdict.
 */
async function loadHostRules(r: HostRulesPlan): Promise<void> {
  if (r.format === 'pve') {
    const ipt = whichCommand('iptables-nft-restore') ? 'iptables-nft-restore' : 'iptables-restore';
    for (const [argv, input] of [
      [['ipset', 'restore'], r.ipsets],
      [[ipt, '-n'], r.text],
      [['ebtables-restore', '--noflush'], r.ebtables],
    ] as const) {
      if (input.trim() === '') continue;
      const res = await run(inNs(r.ns, [...argv]), { input, allowFail: true });
      if (res.code !== 0)
        throw new LabLimitError([
          `the kernel here does not take ${r.host}'s rules (${r.file}): ${argv[0]}: ${res.stderr.trim().split('\n')[0] ?? `exit ${res.code}`}`,
        ]);
    }
    return;
  }
  const argv =
    r.format === 'nft'
      ? ['nft', '-f', '-']
      : [whichCommand('iptables-nft-restore') ? 'iptables-nft-restore' : 'iptables-restore'];
  const res = await run(inNs(r.ns, argv), { input: r.text, allowFail: true });
  if (res.code !== 0)
    throw new LabLimitError([
      `the kernel here does not take ${r.host}'s rule set (${r.file}): ${argv[0]}: ${res.stderr.trim().split('\n')[0] ?? `exit ${res.code}`}`,
    ]);
}

/** Builds the scenario on the real kernel. On failure everything built so far is removed. */
export async function labUp(loaded: LoadedScenario, o: LabOptions = {}): Promise<Lab> {
  installHandlers();
  const pf = preflight();
  // Labs left running (`lab up`) are marked `up`: `lab down` removes them whoever started them.
  if (o.filters === 'libvirt' && !pf.libvirt)
    throw new Error(`no real libvirt here: missing ${pf.libvirtMissing.join(', ')}`);
  if (o.directors === 'ipvs' && !pf.ipvs) throw new Error(`no IPVS here: ${pf.ipvsMissing}`);
  // What this kernel cannot show is said before anything is built (exit 4 in `lab`, never a made-up verdict).
  const caps = kernelCapabilities();
  const limits = labLimits(
    loaded,
    { ...caps, ipvs: caps.ipvs && o.directors !== 'nftables' },
    { runsKeepalived: o.runsKeepalived === true },
  );
  if (limits.length > 0) throw new LabLimitError(limits);
  const prefix = o.prefix ?? `${LAB_PREFIX}${o.detach ? 'up' : ''}${process.pid}-${counter++}-`;
  const workDir = mkdtempSync(join(tmpdir(), `lvsdoctor-lab-${prefix}`));
  const pcapDir = o.pcapDir ?? join(workDir, 'pcap');
  mkdirSync(pcapDir, { recursive: true });
  const plan = planLab(loaded, prefix);
  const wantLibvirt = o.filters === 'libvirt' || ((o.filters ?? 'auto') === 'auto' && pf.libvirt);
  const directorEngine: DirectorEngine =
    o.directors === 'nftables' || !pf.ipvs || plan.directors.length === 0 ? 'nftables' : 'ipvs';
  const lab: Lab = {
    loaded,
    plan,
    prefix,
    workDir,
    pcapDir,
    filterSource: wantLibvirt ? 'libvirt' : 'compiled',
    directorEngine,
    procs: [],
    captures: new Map(),
    daemons: new Map(),
    ruleChecks: [],
    warnings: [...plan.warnings],
    timings: {},
    down: false,
  };
  active.add(lab);
  const log = o.log ?? (() => {});
  // Everything started in the background, awaited before a failed `up` takes the lab down.
  const pending: Promise<unknown>[] = [];
  try {
    await step(lab, 'namespaces', async () => {
      await batch(
        undefined,
        plan.namespaces.map((n) => `netns add ${n.ns}`),
        lab.warnings,
      );
      const have = new Set(labNamespaces(prefix));
      const missing = plan.namespaces.filter((n) => !have.has(n.ns));
      if (missing.length > 0) throw new Error(`could not create namespaces ${missing.map((n) => n.ns).join(', ')}`);
    });
    // libvirtd needs only its namespace: start it while the links are made (it takes a few hundred ms).
    const hosts = group(plan.bindings, (b) => b.host);
    const daemonStarts = new Map<string, Promise<LibvirtDaemon>>();
    if (lab.filterSource === 'libvirt')
      for (const [host, bs] of hosts) {
        const dir = join(workDir, `libvirt-${host}`);
        mkdirSync(dir, { recursive: true });
        const started = startLibvirtd(bs[0]!.ns, dir, o.detach === true).then((d) => {
          lab.daemons.set(host, d);
          lab.procs.push(d.proc);
          return d;
        });
        started.catch(() => {});
        daemonStarts.set(host, started);
        pending.push(started);
      }
    await step(lab, 'links', async () => {
      const created = new Map<string, string[]>();
      const add = (ns: string, l: string) => created.set(ns, [...(created.get(ns) ?? []), l]);
      for (const b of plan.bridges) add(b.ns, `link add name ${b.name}${b.mac ? ` address ${b.mac}` : ''} type bridge`);
      const dummy = dummyLinkType();
      for (const d of plan.dummies)
        add(d.ns, `link add name ${d.name}${d.mac ? ` address ${d.mac}` : ''} type ${dummy}`);
      // Each veth end gets an ifindex of its own, never its peer's: the kernel's linkwatch handles a veth's carrier
      // event at once only when the two differ, and at most once a second otherwise (namespaces number their
      // interfaces independently, so the automatic numbers often coincide); see pendingLinks.
      for (const [k, v] of plan.veths.entries())
        add(
          v.a.ns,
          `link add name ${v.a.name} index ${VETH_INDEX + 2 * k}${v.a.mac ? ` address ${v.a.mac}` : ''} type veth peer name ${v.b.name} index ${VETH_INDEX + 2 * k + 1}${v.b.mac ? ` address ${v.b.mac}` : ''} netns ${v.b.ns}`,
        );
      await Promise.all([...created].map(([ns, lines]) => batch(ns, lines, lab.warnings)));
      const conf = new Map<string, string[]>();
      const add2 = (ns: string, l: string) => conf.set(ns, [...(conf.get(ns) ?? []), l]);
      for (const n of plan.namespaces) add2(n.ns, 'link set dev lo up');
      for (const d of plan.stacked)
        add2(
          d.ns,
          d.kind === 'vlan'
            ? `link add link ${d.lower} name ${d.name}${d.mac ? ` address ${d.mac}` : ''} type vlan id ${d.vlanId ?? 0}`
            : `link add link ${d.lower} name ${d.name}${d.mac ? ` address ${d.mac}` : ''} type macvlan mode ${d.mode ?? 'private'}`,
        );
      for (const v of plan.veths)
        for (const e of [v.a, v.b]) {
          if (e.master) add2(e.ns, `link set dev ${e.name} master ${e.master}`);
        }
      for (const d of plan.dummies) if (d.master) add2(d.ns, `link set dev ${d.name} master ${d.master}`);
      for (const b of plan.bridges) if (b.up) add2(b.ns, `link set dev ${b.name} up`);
      for (const v of plan.veths) for (const e of [v.a, v.b]) if (e.up) add2(e.ns, `link set dev ${e.name} up`);
      for (const d of plan.dummies) if (d.up) add2(d.ns, `link set dev ${d.name} up`);
      for (const d of plan.stacked) if (d.up) add2(d.ns, `link set dev ${d.name} up`);
      for (const a of plan.addrs) add2(a.ns, `addr add ${a.cidr} dev ${a.dev}${a.label ? ` label ${a.label}` : ''}`);
      for (const r of plan.routes) add2(r.ns, `route replace ${r.args.join(' ')}`);
      for (const r of plan.rules) add2(r.ns, `rule add ${r.args.join(' ')}`);
      for (const n of plan.neighbours) add2(n.ns, `neigh replace ${n.ip} lladdr ${n.mac} dev ${n.dev} nud permanent`);
      // Sysctls and the links' configuration at once: no probe traffic flows before both are done.
      await Promise.all([
        ...[...conf].map(([ns, lines]) => batch(ns, lines, lab.warnings)),
        ...[...plan.sysctls].map(([ns, kv]) =>
          run(inNs(ns, ['sysctl', '-q', '-e', '-w', ...kv.map(([k, v]) => `${k}=${v}`)]), { allowFail: true }).then(
            (r) => {
              if (r.code !== 0) lab.warnings.push(`${ns}: sysctl: ${r.stderr.trim()}`);
            },
          ),
        ),
      ]);
    });
    // Everything else needs only the links, and is independent: run it at once (start-up time is mostly waiting on
    // processes — libvirtd, tcpdump, Python — not CPU). Every part finishes, failed or not, before a failure is
    // reported, so that nothing is started after the lab is taken down.
    // Links come up asynchronously (operational state and bridge port states follow carrier through the kernel's
    // linkwatch, which may lag by up to a second): wait, while the rest is set up, until every interface that is
    // up has carrier and every bridge port with carrier forwards, so that no probe loses packets on a port still
    // coming up.
    const t0 = performance.now();
    const parts: Promise<unknown>[] = [];
    const settled = step(lab, 'settle', () =>
      settle(
        plan.namespaces.map((n) => n.ns),
        lab.warnings,
      ),
    );
    parts.push(settled);
    parts.push(
      step(lab, 'filters', async () => {
        const own = new Map(plan.hostRules.map((r) => [r.host, r]));
        // A host with its own rule set but no filter binding still gets its rules.
        for (const r of plan.hostRules) if (!hosts.has(r.host)) hosts.set(r.host, []);
        await Promise.all(
          [...hosts].map(async ([host, bs]) => {
            const ns = bs[0]?.ns ?? plan.nsOf.get(host)!;
            // The host's own rules first (an `nft list ruleset` may flush everything), then libvirt's.
            const rules = own.get(host);
            if (rules) await loadHostRules(rules);
            if (bs.length === 0) return;
            const compiled = compileHostRules(loaded, host, 'nft');
            const compiledText = renderEbtablesList(compiled.nat, { style: 'nft' });
            if (lab.filterSource === 'libvirt') {
              const d = await daemonStarts.get(host)!;
              await defineFilters(d, loaded.filters.get(host) ?? []);
              for (const b of bs) await createBinding(d, b.binding);
            } else {
              await run(inNs(ns, ['ebtables-restore']), { input: ebtablesRestoreText(compiled.nat) });
            }
            const kernel = (await run(inNs(ns, ['ebtables', '-t', 'nat', '-L']))).stdout;
            lab.ruleChecks.push({ host, same: kernel.trim() === compiledText.trim(), kernel, compiled: compiledText });
          }),
        );
      }),
    );
    parts.push(
      step(lab, 'directors', async () => {
        if (directorEngine === 'ipvs') await ensureIpvsModule();
        await Promise.all(plan.directors.map((d) => loadDirector(lab, d.node, o.directorMode ?? { kind: 'spread' })));
      }),
    );
    parts.push(
      step(lab, 'servers', async () => {
        await Promise.all(
          plan.servers.map(async (s) => {
            const p = await spawnBg(
              `server ${s.node} ${s.protocol}/${s.port}`,
              inNs(s.ns, [pf.python, '-u', '-c', SERVER_PY, s.protocol, String(s.port), s.node]),
              {
                logFile: join(workDir, `server-${s.node}-${s.protocol}-${s.port}.log`),
                ready: /listening/,
                ...(o.detach ? { detach: true } : {}),
              },
            );
            lab.procs.push(p);
          }),
        );
      }),
    );
    parts.push(
      step(lab, 'captures', async () => {
        await Promise.all(
          plan.captures.map(async (c) => {
            const file = join(pcapDir, `${c.point.split(':').map(fileNamePart).join('_')}.pcap`);
            const p = await spawnBg(
              `tcpdump ${c.point}`,
              inNs(c.ns, [
                'tcpdump',
                '-i',
                c.iface,
                '-w',
                file,
                '-U',
                '-n',
                '-Z',
                'root',
                '--time-stamp-precision=nano',
                '--immediate-mode',
                '-s',
                '262144',
              ]),
              {
                logFile: join(workDir, `tcpdump-${c.point.replace(/[^A-Za-z0-9_.-]/g, '_')}.log`),
                ready: /listening on/,
                ...(o.detach ? { detach: true } : {}),
              },
            );
            lab.procs.push(p);
            lab.captures.set(c.point, { proc: p, file });
          }),
        );
      }),
    );
    appendAll(pending, parts);
    const results = await Promise.allSettled(parts);
    lab.timings['rest of up (concurrent)'] = performance.now() - t0;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    writeFileSync(
      join(workDir, 'lab.json'),
      JSON.stringify(
        {
          scenario: loaded.scenario.name,
          prefix,
          namespaces: plan.namespaces,
          pcapDir,
          filterSource: lab.filterSource,
        },
        null,
        2,
      ),
    );
    log(`lab ${prefix}: ${plan.namespaces.length} namespaces, filters by ${lab.filterSource}`);
    return lab;
  } catch (e) {
    await Promise.allSettled(pending);
    await labDown(lab);
    throw e;
  }
}

/** Leaves a lab running after this process exits (`lab up`); `lab down` removes it later. */
export function releaseLab(lab: Lab): void {
  active.delete(lab);
}

/**
 * (Re)loads a director: real IPVS is cleared and programmed anew (a fresh IPVS: the next new flow goes where the
 * scheduler starts); the emulation sends flows where a fresh IPVS would (`fresh`) or spreads them (`spread`).
 */
export async function loadDirector(lab: Lab, director: string, mode: DirectorMode): Promise<void> {
  const d = lab.plan.directors.find((x) => x.node === director);
  if (!d) return;
  if (lab.directorEngine === 'ipvs') {
    await run(inNs(d.ns, ['ipvsadm', '-C']));
    await run(inNs(d.ns, ['ipvsadm', '-R']), { input: ipvsadmRestoreText(d, mode) });
  } else await run(inNs(d.ns, ['nft', '-f', '-']), { input: directorNftReload(d, mode) });
}

/** Real IPVS: the module is loaded once (it is per network namespace once loaded; nothing else changes). */
async function ensureIpvsModule(): Promise<void> {
  if (!existsSync('/proc/net/ip_vs')) await run(['modprobe', 'ip_vs']);
}

/**
 * Before each probe: real IPVS is reset to a fresh state (the emulation needs nothing for that, it is stateless per
 * flow); a probe pinned to one real server gets directors that send its service's new flows there, and the probe
 * after it directors as they were.
 */
export async function freshDirectors(
  lab: Lab,
  mode: DirectorMode = { kind: 'fresh' },
  wasPinned = false,
): Promise<void> {
  if (lab.directorEngine !== 'ipvs' && mode.kind !== 'pinned' && !wasPinned) return;
  await Promise.all(lab.plan.directors.map((d) => loadDirector(lab, d.node, mode)));
}

/**
 * Forgets what the namespaces learned: TCP connections (a half-open one keeps retransmitting its SYN-ACK, and the
 * ARP request sent for it — with the VIP as sender on a real server — teaches the gateway a wrong MAC for the next
 * probe), then ARP/neighbour entries (permanent ones stay) and bridge FDBs. Listening sockets stay.
 */
export async function resetLearnedState(lab: Lab): Promise<void> {
  await Promise.all(
    lab.plan.namespaces
      .filter((n) => n.kind !== 'segment')
      .map((n) => run(inNs(n.ns, ['ss', '-K', '-t', '-n', 'state', 'connected']), { allowFail: true })),
  );
  const lines = new Map<string, string[]>();
  for (const n of lab.plan.namespaces) lines.set(n.ns, ['neigh flush all']);
  for (const b of lab.plan.bridges) lines.get(b.ns)?.push(`link set dev ${b.name} type bridge fdb_flush`);
  await Promise.all([...lines].map(([ns, ls]) => batch(ns, ls, [])));
}

/** Stops the captures (flushing their files). */
export async function stopCaptures(lab: Lab): Promise<void> {
  await Promise.all([...lab.captures.values()].map((c) => stopBg(c.proc, 2000)));
}

/** Removes everything the lab created. Idempotent. */
export async function labDown(lab: Lab, o: { keepWorkDir?: boolean } = {}): Promise<void> {
  if (lab.down) return;
  // tcpdump is stopped gently (it flushes its pcap); servers and libvirtd keep nothing worth a graceful exit —
  // their state lives in the namespaces and the lab's temporary directory, both removed next.
  const captures = new Set([...lab.captures.values()].map((c) => c.proc));
  await Promise.all(lab.procs.map((p) => stopBg(p, captures.has(p) ? 500 : 0)));
  lab.down = true;
  await deleteNamespacesAsync(lab.plan.namespaces.map((n) => n.ns));
  if (!o.keepWorkDir) rmSync(lab.workDir, { recursive: true, force: true });
  lab.removed = true;
  active.delete(lab);
}
