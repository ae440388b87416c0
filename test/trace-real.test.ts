/**
 * Kernel traces on a real kernel: the founding case built in network namespaces (a real libvirt nwfilter driver
 * installs clean-traffic on host1's vnet0 where the machine has one), the operator's tracing rule
 * (`meta nftrace set 1` in a bridge table of host1), real `nft monitor trace` and `xtables-monitor --trace` and the
 * `skb:kfree_skb` tracepoint (tracefs, and `perf` when installed) while the real founding request and ARP probe run.
 * Every traced event must join a model rule with its origin, the founding drop is confirmed by the trace, and two
 * wrong models — the fix applied (no binding on vnet0) and a stale filter parameter (the VIP added to IP) — are
 * contradicted. With UPDATE_GOLDEN=1 the outputs are stored under fixtures/kernel-traces/founding-real/
 * (scripts/record-kernel-traces.sh) for the tests without root (src/collect/trace-join.test.ts).
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readKernelDrops } from '../src/collect/kernel-drops.ts';
import { joinKernelTraces, type KernelTraceInput, type NodeListings } from '../src/collect/trace-join.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { findFix } from '../src/diagnose/fix-list.ts';
import { stopBg } from '../src/lab/exec.ts';
import { freshDirectors, type Lab, labDown, labNamespaces, labUp, resetLearnedState } from '../src/lab/lab.ts';
import { labProbes, runRealProbe } from '../src/lab/probes.ts';
import { readEbtablesCounters, readNftRules, readSaveCounters } from '../src/netfilter/counter-read.ts';
import { readNftMonitorTrace, readXtablesMonitorTrace } from '../src/netfilter/trace-read.ts';
import { renderOriginChain } from '../src/source/origin.ts';
import { compileAllHostRules } from '../src/topology/host-rules.ts';
import type { LoadedScenario } from '../src/topology/load-scenario.ts';
import { load } from './lab-helpers.ts';
import { natBaseSpec, writeScenario } from './scenario-builder.ts';
import { has, sh, TRACE_SKIP_REASON } from './support/layout-traces.ts';

const ROOT = join(import.meta.dirname, '..');
const EXAMPLE = join(ROOT, 'examples', 'kvm-lvs-dr');
const FIXTURE = join(ROOT, 'fixtures', 'kernel-traces', 'founding-real');

const SKIP = TRACE_SKIP_REASON;

/**
 * The kfree_skb tracepoint in a tracefs instance of its own, mounted in a private mount namespace (the machine's
 * mounts are left alone); `perf record` of the same tracepoint beside it when perf exists. Stops when STOP exists.
 */
const KFREE_SH = `
set -u
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing/instances/$NAME
if [ ! -d /sys/kernel/tracing/events/skb/kfree_skb ]; then echo "no skb:kfree_skb tracepoint in tracefs" > "$OUT.why"; touch "$READY"; exit 0; fi
mkdir "$T" || { echo "cannot make a tracefs instance" > "$OUT.why"; touch "$READY"; exit 0; }
trap 'echo 0 > "$T/events/skb/kfree_skb/enable"; rmdir "$T"' EXIT
echo 'protocol==2048 || protocol==2054' > "$T/events/skb/kfree_skb/filter"
echo 1 > "$T/events/skb/kfree_skb/enable"
wait_stop() { while [ ! -e "$STOP" ]; do sleep 0.1; done; }
if command -v perf >/dev/null 2>&1; then
  perf record -q -e skb:kfree_skb --filter 'protocol==2048 || protocol==2054' -a -o "$PERFDATA" -- sh -c "touch '$READY'; while [ ! -e '$STOP' ]; do sleep 0.1; done" 2>"$PERFDATA.err"
  perf script -i "$PERFDATA" > "$PERFOUT" 2>>"$PERFDATA.err"
else
  touch "$READY"; wait_stop
fi
echo 0 > "$T/events/skb/kfree_skb/enable"
grep -v '^#' "$T/trace" > "$OUT"
`;

interface Captured {
  nft: string;
  xt: string;
  tracefs?: string;
  perf?: string;
  kfreeWhy?: string;
  handles: string;
  ebtablesNat: string;
  iptables: string;
  versions: string;
}

describe.skipIf(SKIP !== undefined)('kernel traces of the founding case on a real kernel', () => {
  let lab: Lab | undefined;
  let work = '';
  let got: Captured | undefined;
  let loaded: LoadedScenario;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'lvsdoctor-trace-real-'));
    loaded = load(EXAMPLE);
    lab = await labUp(loaded, { filters: 'auto', directorMode: { kind: 'fresh' } });
    const host1 = lab.plan.nsOf.get('host1')!;
    const inHost = (...a: string[]) => ['ip', 'netns', 'exec', host1, ...a];
    // The operator's tracing rule: every bridged frame of host1 traced from before libvirt's chains.
    execFileSync('ip', ['netns', 'exec', host1, 'nft', '-f', '-'], {
      input:
        'table bridge lvsdoctor_trace {\n  chain pre {\n    type filter hook prerouting priority -400; policy accept;\n    meta nftrace set 1\n  }\n}\n',
    });
    const bg = (argv: string[], file: string) => {
      const fd = openSync(file, 'w');
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', fd, fd] });
      closeSync(fd);
      return child;
    };
    const nftOut = join(work, 'nft-monitor-trace.txt');
    const xtOut = join(work, 'xtables-monitor-trace.txt');
    const nft = bg(inHost('nft', 'monitor', 'trace'), nftOut);
    const xt = bg(inHost('xtables-monitor', '--trace'), xtOut);
    const env = {
      NAME: `lvsd-trace-${process.pid}`,
      OUT: join(work, 'kfree-skb-tracefs.txt'),
      READY: join(work, 'kfree.ready'),
      STOP: join(work, 'kfree.stop'),
      PERFDATA: join(work, 'perf.data'),
      PERFOUT: join(work, 'kfree-skb-perf.txt'),
    };
    const kfree = spawn('unshare', ['-m', 'sh', '-c', KFREE_SH], { stdio: 'ignore', env: { ...process.env, ...env } });
    const kfreeDone = new Promise<void>((res) => kfree.on('exit', () => res()));
    for (let t = 0; t < 100 && !existsSync(env.READY); t++) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500)); // the monitors subscribe
    const probes = labProbes(loaded).filter((p) => p.name === 'http-to-vip' || p.name === 'arp-for-vip');
    expect(probes.map((p) => p.name).sort()).toEqual(['arp-for-vip', 'http-to-vip']);
    for (const [k, p] of probes.entries()) {
      if (k > 0) await Promise.all([resetLearnedState(lab), freshDirectors(lab)]);
      const r = await runRealProbe(lab, p, { timeoutMs: 2500 });
      expect(r.ok, `${p.name}: ${r.detail}`).toBe(false);
    }
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(env.STOP, '');
    for (const c of [nft, xt]) c.kill('SIGINT');
    await Promise.race([kfreeDone, new Promise((r) => setTimeout(r, 20_000))]);
    await new Promise((r) => setTimeout(r, 300));
    const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : undefined);
    const tool = (argv: string[]) => {
      try {
        return sh(argv).trim();
      } catch (e) {
        return `(${(e as Error).message.split('\n')[0]})`;
      }
    };
    got = {
      nft: read(nftOut)!,
      xt: read(xtOut)!,
      ...(read(env.OUT) !== undefined ? { tracefs: read(env.OUT)! } : {}),
      ...(read(env.PERFOUT) ? { perf: read(env.PERFOUT)! } : {}),
      ...(read(`${env.OUT}.why`) ? { kfreeWhy: read(`${env.OUT}.why`)!.trim() } : {}),
      handles: sh(inHost('nft', '-a', 'list', 'ruleset')),
      ebtablesNat: sh(inHost('ebtables', '-t', 'nat', '-L', '--Lc')),
      iptables: sh(inHost('iptables-save', '-c')),
      versions: [
        `kernel: ${tool(['uname', '-r'])}`,
        `nft: ${tool(['nft', '--version'])}`,
        `xtables-monitor: ${tool(['xtables-monitor', '--version'])}`,
        `ebtables: ${tool(['ebtables', '--version'])}`,
        `perf: ${has('perf') ? tool(['perf', '--version']) : 'not installed'}`,
        `libvirt: ${lab.filterSource === 'libvirt' ? tool(['libvirtd', '--version']) : 'not used (rules compiled by lvsdoctor)'}`,
      ].join('\n'),
    };
    if (process.env.UPDATE_GOLDEN) {
      mkdirSync(FIXTURE, { recursive: true });
      const files: Record<string, string | undefined> = {
        'nft-monitor-trace.txt': got.nft,
        'xtables-monitor-trace.txt': got.xt,
        'kfree-skb-tracefs.txt': got.tracefs,
        'kfree-skb-perf.txt': got.perf,
        'nft-ruleset-handles.txt': got.handles,
        'ebtables-nat.txt': got.ebtablesNat,
        'iptables-save.txt': got.iptables,
      };
      for (const [name, text] of Object.entries(files))
        if (text !== undefined) writeFileSync(join(FIXTURE, name), text);
      writeFileSync(
        join(FIXTURE, 'RECORDED.md'),
        `# Recorded by scripts/record-kernel-traces.sh (test/trace-real.test.ts with UPDATE_GOLDEN=1)\n\n` +
          "The founding case (examples/kvm-lvs-dr) in network namespaces; in host1's namespace the tracing rule\n" +
          '`table bridge lvsdoctor_trace { chain pre { type filter hook prerouting priority -400; meta nftrace set 1 } }`;\n' +
          'then the real probes http-to-vip (a TCP connection from the client to the VIP) and arp-for-vip.\n\n' +
          "| file | command (in host1's namespace unless said) |\n| --- | --- |\n" +
          '| nft-monitor-trace.txt | `nft monitor trace` |\n' +
          '| xtables-monitor-trace.txt | `xtables-monitor --trace` |\n' +
          "| kfree-skb-tracefs.txt | tracefs instance, `events/skb/kfree_skb` with filter `protocol==2048 \\|\\| protocol==2054` (whole machine), `trace` without '#' lines |\n" +
          "| kfree-skb-perf.txt | `perf record -e skb:kfree_skb --filter 'protocol==2048 \\|\\| protocol==2054' -a`, then `perf script` (whole machine) |\n" +
          '| nft-ruleset-handles.txt | `nft -a list ruleset` |\n| ebtables-nat.txt | `ebtables -t nat -L --Lc` |\n' +
          '| iptables-save.txt | `iptables-save -c` |\n\n' +
          `Filters installed by: ${lab.filterSource}\n\n\`\`\`\n${got.versions}\n\`\`\`\n` +
          '\nThe kfree_skb recordings cover the whole machine: drops of other namespaces may appear in them.\n',
      );
    }
  }, 240_000);

  afterAll(async () => {
    if (lab) {
      for (const p of lab.procs) await stopBg(p, 500).catch(() => {});
      const prefix = lab.prefix;
      await labDown(lab);
      expect(labNamespaces(prefix)).toEqual([]);
    }
    if (work) rmSync(work, { recursive: true, force: true });
  });

  function join1(model: LoadedScenario) {
    const c = got!;
    const nft = readNftMonitorTrace(c.nft, 'nft-monitor-trace.txt');
    const xt = readXtablesMonitorTrace(c.xt, 'xtables-monitor-trace.txt');
    const drops = c.tracefs !== undefined ? readKernelDrops(c.tracefs, 'kfree-skb-tracefs.txt') : undefined;
    expect([...nft.issues, ...xt.issues, ...(drops?.issues ?? [])]).toEqual([]);
    const listings: NodeListings = {
      xtables: [
        ...readEbtablesCounters(c.ebtablesNat, 'ebtables-nat.txt', 'nat').value!,
        ...readSaveCounters(c.iptables, 'iptables-save.txt', 'iptables').value!,
      ],
      nft: readNftRules(c.handles, 'nft-ruleset-handles.txt').value!,
    };
    const inputs: KernelTraceInput[] = [
      { node: 'host1', file: 'nft-monitor-trace.txt', events: nft.value!, drops: [] },
      { node: 'host1', file: 'xtables-monitor-trace.txt', events: xt.value!, drops: [] },
      ...(drops ? [{ node: 'host1', file: 'kfree-skb-tracefs.txt', events: [], drops: drops.value! }] : []),
    ];
    const report = diagnose(model);
    return joinKernelTraces(
      report,
      inputs,
      compileAllHostRules(model).hostRules,
      new Map([['host1', listings]]),
      model.scenario,
    );
  }

  it('joins every traced event of libvirt’s rules to a model rule with its origin, and confirms the founding drop', () => {
    const k = join1(loaded);
    expect(got!.nft).toContain('(verdict drop)');
    expect(k.unmapped.map((u) => `${u.event.pos.file}:${u.event.pos.line} ${u.why}`)).toEqual([]);
    expect(k.joined.length).toBeGreaterThan(10);
    for (const j of k.joined) expect(j.rule!.origin.label, j.event.pos.line.toString()).toBeTruthy();
    const drop = k.joined.find((j) => j.event.verdict === 'drop' && j.rule!.chain === 'I-vnet0-ipv4-ip')!;
    expect(drop.rule!.ruleNumber).toBe(3);
    expect(renderOriginChain(drop.rule!.origin)).toContain('no-ip-spoofing');
    expect(drop.where).toBe('port vnet0 of bridge br0');
    const http = k.probes.find((p) => p.probe === 'http-to-vip')!;
    expect(http.verdict, http.facts.join('\n')).toBe('confirmed');
    expect(http.facts.join('\n')).toMatch(
      /the kernel drops http-to-vip at host1 vnet0 I-vnet0-ipv4-ip rule 3 as the model does/,
    );
    const arp = k.probes.find((p) => p.probe === 'arp-for-vip')!;
    expect(arp.verdict, arp.facts.join('\n')).toBe('confirmed');
    expect(arp.facts.join('\n')).toMatch(
      /the kernel drops arp-for-vip at host1 vnet0 I-vnet0-arp-ip rule \d+ as the model does/,
    );
  });

  it('reads the kernel’s drop reasons: NETFILTER_DROP where the model drops by filter (or says why it cannot)', () => {
    if (got!.tracefs === undefined) {
      expect(got!.kfreeWhy).toBeTruthy();
      return;
    }
    const k = join1(loaded);
    const nf = k.drops.filter((d) => d.event.reason === 'NETFILTER_DROP' && d.event.protocol === 2048);
    expect(nf.length).toBeGreaterThan(0);
    expect(nf[0]!.probes).toContain('http-to-vip');
    expect(k.probes.find((p) => p.probe === 'http-to-vip')!.facts.join('\n')).toMatch(/NETFILTER_DROP/);
  });

  it('contradicts a model with the fix applied (no binding on vnet0) and one with a stale IP parameter', () => {
    const fixed = join1(findFix(loaded, 'remove-filterref').fix!.apply(loaded));
    const http = fixed.probes.find((p) => p.probe === 'http-to-vip')!;
    expect(http.verdict, http.facts.join('\n')).toBe('contradicted');
    expect(http.facts.join('\n')).toMatch(/the kernel and the model disagree at host1 vnet0/);
    expect(fixed.unmapped.length).toBeGreaterThan(0);
    const { fix } = findFix(loaded, 'add-ip');
    const stale = join1(fix!.apply(loaded));
    const arp = stale.probes.find((p) => p.probe === 'arp-for-vip')!;
    expect(arp.verdict, arp.facts.join('\n')).toBe('contradicted');
    expect(arp.facts.join('\n')).toMatch(/the kernel and the model disagree at host1 vnet0/);
  });
});

describe.skipIf(SKIP !== undefined)('kernel traces of an LVS-NAT layout on a real kernel', () => {
  it('joins every traced event of both hosts to a model rule with its origin; the probes that pass are confirmed', async () => {
    const work = mkdtempSync(join(tmpdir(), 'lvsdoctor-trace-nat-'));
    const base = natBaseSpec();
    // The real servers behind clean-traffic with their own address (their replies pass it); the director unfiltered.
    const spec = {
      ...base,
      realServers: base.realServers.map((r) => ({
        ...r,
        filter: { name: 'clean-traffic', params: [['IP', r.ip]] as const },
      })),
      name: 'trace-nat',
      probes: ['probes:', '  - name: to-vip', '    tcp: 198.51.100.100:443', '    sport: 41001'].join('\n'),
    };
    writeScenario(join(work, 'scenario'), spec);
    const model = load(join(work, 'scenario'));
    const lab = await labUp(model, { filters: 'auto', directorMode: { kind: 'fresh' } });
    const hosts = ['kvm1', 'kvm2'];
    const texts = new Map<string, { trace: string; handles: string; eb: string }>();
    try {
      const monitors = hosts.map((h) => {
        const ns = lab.plan.nsOf.get(h)!;
        execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], {
          input:
            'table bridge t {\n  chain pre {\n    type filter hook prerouting priority -400;\n    meta nftrace set 1\n  }\n}\n',
        });
        const file = join(work, `${h}.trace`);
        const fd = openSync(file, 'w');
        const child = spawn('ip', ['netns', 'exec', ns, 'nft', 'monitor', 'trace'], { stdio: ['ignore', fd, fd] });
        closeSync(fd);
        return { h, ns, file, child };
      });
      await new Promise((r) => setTimeout(r, 500));
      const probe = labProbes(model).find((p) => p.name === 'to-vip')!;
      const real = await runRealProbe(lab, probe, { timeoutMs: 3000 });
      expect(real.ok, real.detail).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      for (const m of monitors) {
        m.child.kill('SIGINT');
        texts.set(m.h, {
          trace: readFileSync(m.file, 'utf8'),
          handles: sh(['ip', 'netns', 'exec', m.ns, 'nft', '-a', 'list', 'ruleset']),
          eb: sh(['ip', 'netns', 'exec', m.ns, 'ebtables', '-t', 'nat', '-L', '--Lc']),
        });
      }
    } finally {
      await labDown(lab);
      rmSync(work, { recursive: true, force: true });
    }
    const inputs: KernelTraceInput[] = [];
    const listings = new Map<string, NodeListings>();
    for (const [h, t] of texts) {
      const r = readNftMonitorTrace(t.trace, `${h}.trace`);
      expect(r.issues).toEqual([]);
      inputs.push({ node: h, file: `${h}.trace`, events: r.value!, drops: [] });
      listings.set(h, {
        xtables: readEbtablesCounters(t.eb, `${h}-eb.txt`, 'nat').value!,
        nft: readNftRules(t.handles, `${h}-nft.txt`).value!,
      });
    }
    const k = joinKernelTraces(diagnose(model), inputs, compileAllHostRules(model).hostRules, listings, model.scenario);
    expect(k.unmapped.map((u) => `${u.event.pos.file}:${u.event.pos.line} ${u.why}`)).toEqual([]);
    expect(k.joined.length).toBeGreaterThan(0);
    for (const j of k.joined) expect(j.rule!.origin.label).toBeTruthy();
    const p = k.probes.find((x) => x.probe === 'to-vip')!;
    expect(p.verdict, p.facts.join('\n')).toBe('confirmed');
    expect(p.facts.join('\n')).toMatch(/the kernel passes to-vip at kvm1 /);
  }, 240_000);
});
