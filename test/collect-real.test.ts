/**
 * The collector on a real kernel: the founding case built as network namespaces (a real libvirt nwfilter driver
 * installs clean-traffic on host1's vnet0), the collector run inside every host and guest and on the router,
 * the bundles imported and diagnosed. The diagnosis must match the hand-written founding case, and the collector
 * must leave rulesets, counters, links and sysctls exactly as they were.
 *
 * There are no real VMs: `virsh list`/`virsh dumpxml` come from a PATH shim serving the example's domain XML, and
 * the kernel has no IPVS, so `ipvsadm` is a shim serving the example's listing. Everything else (virsh nwfilter-*,
 * ebtables, iptables-save, nft, ip, bridge, sysctl, ss) is the real tool.
 * With UPDATE_GOLDEN=1 the bundles are stored under fixtures/collect/founding-real/ for the tests without root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importedWindows } from '../src/cli/cmd-diagnose.ts';
import { readBundle } from '../src/collect/bundle.ts';
import { collectorScript } from '../src/collect/collector-script.ts';
import { joinEvidence } from '../src/collect/counter-join.ts';
import { importBundles, importedSource, importToMemory } from '../src/collect/import.ts';
import { readTar } from '../src/collect/tar.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { stopBg } from '../src/lab/exec.ts';
import { type Lab, labDown, labNamespaces, labUp } from '../src/lab/lab.ts';
import { type LibvirtDaemon, startLibvirtd } from '../src/lab/libvirt-daemon.ts';
import { preflight } from '../src/lab/preflight.ts';
import { renderOriginChain } from '../src/source/origin.ts';
import { compileAllHostRules } from '../src/topology/host-rules.ts';
import { loadScenarioFrom } from '../src/topology/load-scenario.ts';
import { LAB_SKIP_REASON, load } from './lab-helpers.ts';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLE = join(ROOT, 'examples', 'kvm-lvs-dr');
const FIXTURE = join(ROOT, 'fixtures', 'collect', 'founding-real');

function skipReason(): string | undefined {
  if (LAB_SKIP_REASON) return LAB_SKIP_REASON;
  const pf = preflight();
  if (!pf.libvirt) return `no real libvirt: missing ${pf.libvirtMissing.join(', ')}`;
  return undefined;
}
const SKIP = skipReason();

function sh(argv: readonly string[], env: Record<string, string> = {}): string {
  return execFileSync(argv[0]!, argv.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
    timeout: 120_000,
  }).toString();
}

function shOk(argv: readonly string[]): string {
  try {
    return sh(argv);
  } catch (e) {
    return `failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

/** What a read-only run must not change in a namespace (entered by `enter`). */
function snapshot(enter: readonly string[]): Record<string, string> {
  const run = (...a: string[]) => shOk([...enter, ...a]);
  return {
    ebtablesNat: run('ebtables', '-t', 'nat', '-L', '--Lc'),
    ebtablesFilter: run('ebtables', '-t', 'filter', '-L', '--Lc'),
    iptables: run('iptables-save', '-c').replace(/^#.*\n/gm, ''),
    ip6tables: run('ip6tables-save', '-c').replace(/^#.*\n/gm, ''),
    nft: run('nft', 'list', 'ruleset'),
    // Bridge timers run by themselves; everything else, counters included, must stay.
    links: run('ip', '-s', '-d', 'link', 'show').replace(/(\w+_timer)\s+[\d.]+/g, '$1'),
    addrs: run('ip', 'addr', 'show'),
    routes: run('ip', 'route', 'show', 'table', 'all'),
    sysctl: run('sysctl', '-e', '-a')
      .split('\n')
      .filter((l) => l.startsWith('net.') && !/nf_conntrack_count|\.stable_secret/.test(l))
      .join('\n'),
  };
}

const IPVSADM_SHIM = (listing: string) => `#!/bin/sh
case "$*" in
  "-Ln") cat '${listing}' ;;
  "-Sn") printf -- '-A -t 192.0.2.208:80 -s rr\\n-a -t 192.0.2.208:80 -r 192.0.2.226:80 -g -w 2\\n' ;;
  "-Lnc") printf 'IPVS connection entries\\npro expire state       source             virtual            destination\\n' ;;
  "-Ln --stats") printf 'IP Virtual Server version 1.2.1 (size=4096)\\nProt LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\\n  -> RemoteAddress:Port\\nTCP  192.0.2.208:80                       0        0        0        0        0\\n  -> 192.0.2.226:80                      0        0        0        0        0\\n' ;;
  "-L --timeout") echo 'Timeout (tcp tcpfin udp): 900 120 300' ;;
  "--version") echo 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)' ;;
  *) echo "ipvsadm shim: unsupported $*" >&2; exit 2 ;;
esac
`;

const VIRSH_SHIM = (domains: string) => `#!/bin/sh
case "$1" in
  list) for f in '${domains}'/*.xml; do [ -e "$f" ] && basename "$f" .xml; done; echo; exit 0 ;;
  dumpxml) [ "$2" = --domain ] && shift; exec cat '${domains}'/"$2".xml ;;
  *) exec /usr/bin/virsh "$@" ;;
esac
`;

describe.skipIf(SKIP !== undefined)('the collector on the founding case built in network namespaces', () => {
  let lab: Lab | undefined;
  let d2: LibvirtDaemon | undefined;
  let work = '';
  let bundles: string[] = [];
  const before = new Map<string, Record<string, string>>();
  const after = new Map<string, Record<string, string>>();
  const beforeBindings: string[] = [];
  const afterBindings: string[] = [];
  let outDirBefore: string[] = [];
  let host1Enter: string[] = [];
  let host1Env = '';
  let directorNs = '';

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lvsdoctor-collect-real-'));
    lab = await labUp(load(EXAMPLE), { filters: 'libvirt' });
    const nsOf = (node: string) => lab!.plan.namespaces.find((n) => n.node === node)!.ns;
    d2 = await startLibvirtd(nsOf('host2'), join(work, 'libvirt-host2'));
    const d1 = lab.daemons.get('host1')!;

    // Traffic, so that bridges and neighbour tables learn (as on any live LAN).
    // A datagram to the discard port makes the kernel resolve (and the peer learn) the neighbour.
    for (const [node, dst] of [
      ['r2-10105', '192.0.2.1'],
      ['r2-10106', '192.0.2.1'],
      ['gateway', '192.0.2.200'],
      ['host1', '192.0.2.71'],
      ['host2', '192.0.2.70'],
    ] as const)
      shOk([
        'ip',
        'netns',
        'exec',
        nsOf(node),
        preflight().python,
        '-c',
        `import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.sendto(b'x', ('${dst}', 9))\ntime.sleep(0.3)`,
      ]);

    // The neighbour machinery answers late (a STALE entry used once is probed ~5 s later): wait until every
    // counter has stood still for a while, so that the read-only comparison sees only what the collector does.
    const quiet = () =>
      lab!.plan.namespaces.map((n) => shOk(['ip', '-n', n.ns, '-s', 'link', 'show'])).join('\n') +
      shOk(['ip', 'netns', 'exec', nsOf('host1'), 'ebtables', '-t', 'nat', '-L', '--Lc']);
    let last = quiet();
    for (let stable = 0, t0 = Date.now(); stable < 3 && Date.now() - t0 < 30_000; ) {
      await new Promise((res) => setTimeout(res, 1500));
      const now = quiet();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }

    // The collector scripts and the shims.
    writeFileSync(join(work, 'collect.sh'), collectorScript({ guest: false }));
    writeFileSync(join(work, 'collect-guest.sh'), collectorScript({ guest: true }));
    for (const [host, xml] of [
      ['host1', 'r2-10105.xml'],
      ['host2', 'r2-10106.xml'],
    ] as const) {
      mkdirSync(join(work, `domains-${host}`), { recursive: true });
      cpSync(join(EXAMPLE, host, xml), join(work, `domains-${host}`, xml));
      mkdirSync(join(work, `shim-${host}`), { recursive: true });
      writeFileSync(join(work, `shim-${host}`, 'virsh'), VIRSH_SHIM(join(work, `domains-${host}`)));
      chmodSync(join(work, `shim-${host}`, 'virsh'), 0o755);
    }
    mkdirSync(join(work, 'shim-director'), { recursive: true });
    writeFileSync(join(work, 'shim-director', 'ipvsadm'), IPVSADM_SHIM(join(EXAMPLE, 'director1', 'ipvsadm-Ln.txt')));
    chmodSync(join(work, 'shim-director', 'ipvsadm'), 0o755);
    writeFileSync(join(work, 'fake-ip_vs'), 'IP Virtual Server version 1.2.1 (size=4096)\n');

    const out = join(work, 'bundles');
    mkdirSync(out);
    // Hosts are entered through their libvirtd (its private /run holds the libvirt socket).
    const runs: { name: string; enter: string[]; script: string; hostname: string; env: string }[] = [
      {
        name: 'host1',
        enter: ['nsenter', '-t', String(d1.proc.pid), '-m', '-n'],
        script: 'collect.sh',
        hostname: 'host1',
        env: `PATH=${join(work, 'shim-host1')}:$PATH LIBVIRT_DEFAULT_URI=nwfilter:///system`,
      },
      {
        name: 'host2',
        enter: ['nsenter', '-t', String(d2.proc.pid), '-m', '-n'],
        script: 'collect.sh',
        hostname: 'host2',
        env: `PATH=${join(work, 'shim-host2')}:$PATH LIBVIRT_DEFAULT_URI=nwfilter:///system`,
      },
      {
        name: 'r2-10105',
        enter: ['ip', 'netns', 'exec', nsOf('r2-10105')],
        script: 'collect-guest.sh',
        hostname: 'director1',
        env: `PATH=${join(work, 'shim-director')}:$PATH LVSDOCTOR_IPVS_PROC=${join(work, 'fake-ip_vs')}`,
      },
      {
        name: 'r2-10106',
        enter: ['ip', 'netns', 'exec', nsOf('r2-10106')],
        script: 'collect-guest.sh',
        hostname: 'rs2',
        env: '',
      },
      {
        name: 'gateway',
        enter: ['ip', 'netns', 'exec', nsOf('gateway')],
        script: 'collect-guest.sh',
        hostname: 'router',
        env: '',
      },
    ];
    const virsh = (enter: string[]) =>
      shOk([...enter, 'virsh', '-q', '-c', 'nwfilter:///system', 'nwfilter-binding-list']);
    host1Enter = runs[0]!.enter;
    host1Env = runs[0]!.env;
    directorNs = nsOf('r2-10105');
    for (const r of runs) before.set(r.name, snapshot(r.enter));
    beforeBindings.push(virsh(runs[0]!.enter), virsh(runs[1]!.enter));
    outDirBefore = readdirSync(out);
    for (const r of runs) {
      const t0 = Date.now();
      sh([
        ...r.enter,
        'unshare',
        '--uts',
        'sh',
        '-c',
        // --watch 1: the watch mode's counter listings are covered by the read-only comparison too.
        `hostname ${r.hostname} && cd '${out}' && ${r.env} sh '${join(work, r.script)}' --watch 1`,
      ]);
      if (process.env.COLLECT_TIMING) console.log(`collector on ${r.name}: ${Date.now() - t0} ms`);
    }
    for (const r of runs) after.set(r.name, snapshot(r.enter));
    afterBindings.push(virsh(runs[0]!.enter), virsh(runs[1]!.enter));
    bundles = readdirSync(out)
      .filter((f) => !outDirBefore.includes(f))
      .map((f) => join(out, f));
    if (process.env.UPDATE_GOLDEN) {
      rmSync(FIXTURE, { recursive: true, force: true });
      for (const b of bundles) {
        const tar = readTar(readFileSync(b));
        for (const e of tar.entries) {
          const p = join(FIXTURE, e.path.replace(/-\d{8}T\d{6}Z/, ''));
          mkdirSync(join(p, '..'), { recursive: true });
          writeFileSync(p, e.data);
        }
      }
    }
  }, 300_000);

  afterAll(async () => {
    if (d2) await stopBg(d2.proc, 1000);
    if (lab) {
      const prefix = lab.prefix;
      await labDown(lab);
      expect(labNamespaces(prefix)).toEqual([]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('writes one .tar.gz bundle per machine and nothing else', () => {
    expect(bundles).toHaveLength(5);
    for (const b of bundles) expect(b).toMatch(/lvsdoctor-bundle-(hypervisor|guest)-[a-z0-9]+-\d{8}T\d{6}Z\.tar\.gz$/);
  });

  it('changes nothing: rulesets, counters, links, addresses, routes, sysctls and bindings are identical', () => {
    for (const [name, snap] of before) expect(after.get(name), name).toEqual(snap);
    expect(afterBindings).toEqual(beforeBindings);
    // The filter really is there (the comparison is not between two empty listings).
    expect(before.get('host1')!.ebtablesNat).toContain('I-vnet0-ipv4-ip');
  });

  it('lists every counter at the start and the end of the watch window', () => {
    const b = readBundle(bundles.find((x) => x.includes('hypervisor-host1'))!).value!;
    expect(b.meta.get('watch-seconds')).toBe('1');
    for (const id of ['ebtables-nat', 'iptables-save', 'nft-ruleset', 'ip-s-link', 'proc-snmp'])
      for (const phase of ['start', 'end']) expect(b.commands.get(`counters-${phase}-${id}`)?.status, id).toBe('ok');
  });

  it('joins the counters of real traffic in a watch window to the model: the founding drop confirmed, a stale model contradicted', async () => {
    // A second collection of host1, with the director sending from its VIP during the window (as it answers for
    // the VIP): frames from vnet0 whose source is not the binding's IP, which no-ip-spoofing drops.
    const out = join(work, 'watch');
    mkdirSync(out);
    const child = spawn(
      host1Enter[0]!,
      [
        ...host1Enter.slice(1),
        'unshare',
        '--uts',
        'sh',
        '-c',
        `hostname host1 && cd '${out}' && ${host1Env} sh '${join(work, 'collect.sh')}' --watch 3`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const started = new Promise<void>((res) =>
      child.stderr.on('data', (d) => {
        stderr += d;
        if (stderr.includes('reproduce the failing request now')) res();
      }),
    );
    const exited = new Promise<number>((res) => child.on('exit', (c) => res(c ?? -1)));
    await started;
    const sent = 20;
    const said = shOk([
      'ip',
      'netns',
      'exec',
      directorNs,
      preflight().python,
      '-c',
      `import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('192.0.2.208', 0))\nfor i in range(${sent}): s.sendto(b'y' * 32, ('192.0.2.1', 9))`,
    ]);
    expect(said).not.toMatch(/^failed/);
    expect(await exited).toBe(0);
    const watched = join(out, stdout.trim());
    const inputs = [watched, ...bundles.filter((b) => !b.includes('hypervisor-host1'))];
    const imported = importToMemory(inputs);
    const windows = importedWindows(
      imported,
      inputs.map((i) => readBundle(i).value!),
    );
    expect(windows.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const w = windows.windows.get('host1')!;
    expect(w.from).toBe('watch');
    const loaded = loadScenarioFrom(importedSource(imported)!).value!;
    const report = diagnose(loaded);
    const ev = joinEvidence(report, windows.windows, compileAllHostRules(loaded).hostRules);
    // Every moved counter of host1's libvirt rules is joined to a model rule with its origin; nothing else moved
    // in ebtables nat, and the drop rule counted exactly the datagrams sent.
    expect(ev.unmapped.filter((u) => u.delta.source === 'ebtables' && u.delta.table === 'nat')).toEqual([]);
    expect(ev.joined.length).toBeGreaterThan(0);
    for (const j of ev.joined) expect(j.rule.origin.label).toBeTruthy();
    const drop = ev.joined.find((j) => j.rule.chain === 'I-vnet0-ipv4-ip' && j.rule.text === '-j DROP')!;
    expect(drop.delta.packets).toBe(sent);
    expect(renderOriginChain(drop.rule.origin)).toContain('no-ip-spoofing');
    const confirmed = ev.probes.find((p) => p.verdict === 'confirmed' && /I-vnet0-ipv4-ip rule 3/.test(p.facts[0]!));
    expect(confirmed, JSON.stringify(ev.probes, null, 1)).toBeDefined();

    // A stale model: the binding's IP parameter says the VIP (as if the filter were the one the fix installs).
    const dir = join(work, 'stale');
    importBundles(inputs, { out: dir });
    const binding = join(dir, 'host1', 'bindings', 'vnet0.xml');
    writeFileSync(
      binding,
      readFileSync(binding, 'utf8')
        .replace("value='192.0.2.200'", "value='192.0.2.208'")
        .replace('value="192.0.2.200"', 'value="192.0.2.208"'),
    );
    const stale = load(dir);
    const staleEv = joinEvidence(diagnose(stale), windows.windows, compileAllHostRules(stale).hostRules);
    const contradicted = staleEv.probes.filter((p) => p.verdict === 'contradicted');
    expect(contradicted.length, JSON.stringify(staleEv.probes, null, 1)).toBeGreaterThan(0);
    expect(contradicted.flatMap((p) => p.facts).join('\n')).toMatch(
      /I-vnet0-ipv4-ip rule 3 on host1 \(-j DROP\) counted 20 packets/,
    );
  }, 120_000);

  it('imports the bundles into the founding cluster and diagnoses the same findings as the hand-written case', () => {
    const dir = join(work, 'scenario');
    const r = importBundles(bundles, { out: dir });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.cluster!.guests.map((g) => `${g.node}@${g.host}:${g.ev ? 'collected' : '-'}`).sort()).toEqual([
      'r2-10105@host1:collected',
      'r2-10106@host2:collected',
    ]);
    expect(r.cluster!.segments.map((s) => s.members.map((u) => `${u.host}:${u.iface}`))).toEqual([
      ['host1:eth0', 'host2:eth0'],
    ]);
    expect(r.cluster!.gateway).toMatchObject({ mac: '84:78:ac:27:6c:41', segment: 'lan' });
    // libvirt installed exactly what the domain XML compiles to.
    expect(r.drift).toEqual([]);
    const loaded = load(dir);
    const imported = diagnose(loaded);
    const founding = diagnose(load(EXAMPLE));
    const key = (f: { code: string; where: string }) => `${f.code} at ${f.where}`;
    expect(imported.findings.map(key).sort()).toEqual(founding.findings.map(key).sort());
    expect(imported.findings.map(key)).toContain('director-anti-spoofing at host1:vnet0');
    expect(imported.findings.map((f) => f.code)).toContain('vip-arp-blocked');
  });
});

if (SKIP !== undefined)
  describe('the collector on the founding case built in network namespaces', () => {
    it.skip(`skipped: ${SKIP}`, () => {});
  });
