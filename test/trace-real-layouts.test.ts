/**
 * Live evidence on the lab's other layouts (issue 18; the founding case and an LVS-NAT pair are in
 * test/trace-real.test.ts): a healthy control, routed real servers, a keepalived HA pair, keepalived VMAC whose VIP
 * ARP reply no-mac-spoofing drops, and host firewalls (Docker's FORWARD DROP with br_netfilter, conntrack INVALID).
 * Each corpus scenario is built in network namespaces (real libvirt bindings where libvirt is installed), the
 * operator's tracing rules are set in every hypervisor's namespace, the collector's counter listings are taken before
 * and after, and `nft monitor trace` and `xtables-monitor --trace` run while the real probes do. Then: every trace
 * event and every moved counter is joined to a model rule with its origin, every probe the traces cover is confirmed,
 * and a deliberately wrong model of the layout (the proposed fix applied though the host still has the fault, or a
 * stale clean-traffic IP parameter on the directors) is contradicted. With UPDATE_GOLDEN=1 the outputs are stored
 * under fixtures/kernel-traces/<scenario>/ (scripts/record-kernel-traces.sh); the same checks run on those files
 * without root.
 *
 * Not shown here: LVS-TUN (this kernel has no IPIP); kfree_skb (it names no network namespace, and every node of
 * the lab shares one kernel, so a drop cannot be placed on a node — test/trace-real.test.ts reads it for the
 * founding case, whose drop is the only filter drop of its run).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagnoseSession } from '../src/diagnose/diagnose.ts';
import { findProposedFix } from '../src/diagnose/fix-list.ts';
import { runLabScenario } from '../src/lab/run.ts';
import { renderOriginChain } from '../src/source/origin.ts';
import { compileAllHostRules } from '../src/topology/host-rules.ts';
import type { LoadedScenario } from '../src/topology/load-scenario.ts';
import { load } from './lab-helpers.ts';
import { writeVmacScenario } from './scenario-builder.ts';
import {
  type HostRecording,
  hasRecording,
  joinLayout,
  type LayoutJoin,
  type LayoutRecording,
  readRecording,
  sh,
  share,
  staleDirectorFilter,
  TRACE_SKIP_REASON,
  TRACING_RULESET,
  WINDOW_LISTINGS,
  writeRecording,
} from './support/layout-traces.ts';

const ROOT = join(import.meta.dirname, '..');
const SCENARIOS = join(ROOT, 'fixtures', 'scenarios');
const FIXTURES = join(ROOT, 'fixtures', 'kernel-traces');
const STALE_IP = '203.0.113.254';

interface Layout {
  /** A scenario of the corpus (fixtures/scenarios), or the name of one `build` writes. */
  readonly scenario: string;
  readonly build?: (dir: string) => void;
  readonly layout: string;
  /**
   * The wrong model: the diagnosis's fix with this id applied, a stale clean-traffic IP on the directors, or the
   * directors' filters gone.
   */
  readonly wrong: { readonly fix: string } | 'stale-director-filter' | 'no-director-filter';
  /**
   * Tables of the hosts' own beyond filter whose trace events (and moved counters, `counters`) the layout must join to
   * the model's rules: Docker's `ip nat` (its PREROUTING policy passes every new bridged connection).
   */
  readonly natJoined?: { readonly events: string; readonly counters?: true };
  /** The hosts have no filter and no firewall of their own: only the tracing rule traces, no counter exists. */
  readonly noRules?: true;
  /** The hosts' mangle base chains (firewalld's `mangle_PREROUTING`) trace events the layout must join. */
  readonly mangleJoined?: true;
  /** The hosts' rules carry no `counter` statement (firewalld's nft rule set): no rule counter exists to move. */
  readonly noCounters?: true;
  /** xtables-monitor overflows (ENOBUFS) and stops during this layout's probes; nft monitor trace holds them. */
  readonly xtablesMonitorStops?: true;
}

const LAYOUTS: readonly Layout[] = [
  {
    scenario: 'dr-rs-clean-traffic-with-vip-healthy',
    layout: 'healthy control (DR, real servers behind clean-traffic that passes them)',
    wrong: 'stale-director-filter',
  },
  {
    scenario: 'dr-routed-rs-across-l3',
    layout: 'routed real servers (one behind a router)',
    wrong: 'stale-director-filter',
    noRules: true,
    xtablesMonitorStops: true,
  },
  {
    scenario: 'ha-dr-pair-three-hosts-clean-traffic-healthy',
    layout: 'keepalived HA pair (DR, clean-traffic on the real servers)',
    wrong: 'stale-director-filter',
  },
  {
    scenario: 'vmac-no-mac-spoofing',
    build: (dir) => writeVmacScenario(dir, 'vmac-no-mac-spoofing', 'no-mac-spoofing'),
    layout: 'keepalived VMAC (vrrp.51@eth0) behind no-mac-spoofing, which drops its VIP ARP reply',
    wrong: 'no-director-filter',
  },
  {
    scenario: 'dr-docker-forward-drop',
    layout: "host firewall: Docker's FORWARD DROP with br_netfilter",
    wrong: { fix: 'sysctl' },
    natJoined: { events: 'ip nat', counters: true },
  },
  {
    scenario: 'dr-conntrack-invalid-director-host',
    layout: 'host firewall: conntrack INVALID dropped in FORWARD',
    wrong: { fix: 'sysctl' },
  },
  {
    scenario: 'nat-one-armed-rs-via-router',
    layout: 'LVS-NAT with a real server routed past the director',
    wrong: 'stale-director-filter',
    noRules: true,
  },
  {
    scenario: 'ha-failover-backup-clean-traffic',
    layout: 'keepalived HA pair, the backup behind clean-traffic',
    wrong: 'no-director-filter',
  },
  {
    scenario: 'ha-unicast-no-ip-multicast-healthy',
    layout: 'keepalived unicast pair behind no-ip-multicast',
    wrong: 'stale-director-filter',
  },
  {
    scenario: 'dr-nft-docker-libvirt-brnf-forward-drop',
    layout: "host firewall in native nftables: Docker's and libvirt's forward chains with br_netfilter",
    wrong: { fix: 'sysctl' },
    natJoined: { events: 'ip nat' },
    xtablesMonitorStops: true,
  },
  {
    scenario: 'dr-firewalld-nft-brnf-on',
    layout: "host firewall: firewalld's nftables (its mangle_PREROUTING and forward chains) with br_netfilter",
    wrong: { fix: 'sysctl' },
    mangleJoined: true,
    noCounters: true,
    xtablesMonitorStops: true,
  },
];

const SKIP = TRACE_SKIP_REASON;

/** The layout's scenario folder (a corpus one, or written into `work`). */
function scenarioDir(l: Layout, work: string): string {
  if (!l.build) return join(SCENARIOS, l.scenario);
  const dir = join(work, l.scenario);
  if (!existsSync(dir)) l.build(dir);
  return dir;
}

/** The wrong model of a layout, and what it is. */
function wrongModel(l: Layout, model: LoadedScenario, work: string): { model: LoadedScenario; what: string } {
  if (l.wrong === 'stale-director-filter') {
    const dir = staleDirectorFilter(scenarioDir(l, work), join(work, `${l.scenario}-stale`), STALE_IP);
    return { model: load(dir), what: `clean-traffic with a stale IP (${STALE_IP}) on the directors` };
  }
  if (l.wrong === 'no-director-filter') {
    const dir = staleDirectorFilter(scenarioDir(l, work), join(work, `${l.scenario}-nofilter`), undefined);
    return { model: load(dir), what: "the directors' filters gone (a bundle from after the fix)" };
  }
  const d = diagnoseSession(model);
  const found = findProposedFix(d, l.wrong.fix);
  if (!found.fix) throw new Error(`${l.scenario}: no proposed fix ${l.wrong.fix} (known: ${found.known.join(', ')})`);
  return {
    model: found.fix.apply(model),
    what: `the fix ${found.fix.id} applied, though the host still has the fault`,
  };
}

/** Runs the layout in the lab, recording the hypervisors' traces and counter windows. */
async function record(l: Layout, model: LoadedScenario): Promise<LayoutRecording> {
  const hosts = [...compileAllHostRules(model).hostRules.keys()];
  const files = new Map<string, Map<string, string>>(hosts.map((h) => [h, new Map()]));
  const monitors: { host: string; name: string; argv: string[]; out: string; child?: ReturnType<typeof spawn> }[] = [];
  // Read through pipes (a monitor that gives up still has what it printed before).
  const start = (m: (typeof monitors)[number]) => {
    m.out = '';
    const child = spawn(m.argv[0]!, m.argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d: Buffer) => {
      m.out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      m.out += d.toString();
    });
    m.child = child;
  };
  const snapshot = (ns: string, host: string, end: 'start' | 'end') => {
    for (const [id, cmd] of WINDOW_LISTINGS)
      files.get(host)!.set(`${end}/${id}.txt`, sh(['ip', 'netns', 'exec', ns, ...cmd.split(' ')]));
  };
  const r = await runLabScenario(model, {
    timeoutMs: 2500,
    afterUp: async (lab) => {
      for (const h of hosts) {
        const ns = lab.plan.nsOf.get(h)!;
        execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: TRACING_RULESET });
        snapshot(ns, h, 'start');
        // The handles the traces will name: listed after the start snapshot, since ebtables-nft's `ebtables -L`
        // re-adds every user chain's policy rule with a new handle.
        files.get(h)!.set('nft-ruleset-handles.txt', sh(['ip', 'netns', 'exec', ns, 'nft', '-a', 'list', 'ruleset']));
        for (const [name, argv] of [
          ['nft-monitor-trace.txt', ['nft', 'monitor', 'trace']],
          ['xtables-monitor-trace.txt', ['xtables-monitor', '--trace']],
        ] as const)
          monitors.push({ host: h, name, argv: ['ip', 'netns', 'exec', ns, ...argv], out: '' });
      }
      for (const m of monitors) start(m);
      await new Promise((res) => setTimeout(res, 500)); // the monitors subscribe
      // xtables-monitor gives up when its socket overflows (ENOBUFS) in a burst of events: started again, before
      // the first probe (what it printed then is lost; nothing of the probes is).
      for (let k = 0; k < 3 && monitors.some((m) => m.child!.exitCode !== null); k++) {
        for (const m of monitors.filter((x) => x.child!.exitCode !== null)) start(m);
        await new Promise((res) => setTimeout(res, 500));
      }
    },
    beforeDown: async (lab) => {
      await new Promise((res) => setTimeout(res, 300));
      for (const m of monitors) m.child!.kill('SIGINT');
      await Promise.all(
        monitors.map((m) => new Promise((res) => (m.child!.exitCode !== null ? res(0) : m.child!.on('exit', res)))),
      );
      for (const h of hosts) {
        const ns = lab.plan.nsOf.get(h)!;
        snapshot(ns, h, 'end');
      }
      for (const m of monitors) files.get(m.host)!.set(m.name, m.out);
    },
  });
  expect(
    r.probes.filter((p) => !p.agree).map((p) => `${p.probe}: ${p.difference}`),
    `${l.scenario}: the kernel and the simulator disagree`,
  ).toEqual([]);
  const rec: LayoutRecording = {
    scenario: l.scenario,
    hosts: hosts.map((node): HostRecording => ({ node, files: files.get(node)! })),
    outcomes: r.probes.map((p) => `${p.probe} ${p.real.ok ? 'ok' : 'fails'} ${p.real.detail}\n`).join(''),
  };
  if (process.env.UPDATE_GOLDEN) {
    const tool = (argv: string[]) => {
      try {
        return sh(argv).trim();
      } catch (e) {
        return `(${(e as Error).message.split('\n')[0]})`;
      }
    };
    const versions = [
      `kernel: ${tool(['uname', '-r'])}`,
      `nft: ${tool(['nft', '--version'])}`,
      `xtables-monitor: ${tool(['xtables-monitor', '--version'])}`,
      `ebtables: ${tool(['ebtables', '--version'])}`,
      `libvirt: ${r.filterSource === 'libvirt' ? tool(['libvirtd', '--version']) : 'not used (rules compiled by lvsdoctor)'}`,
    ].join('\n');
    const dir = join(FIXTURES, l.scenario);
    rmSync(dir, { recursive: true, force: true });
    writeRecording(
      dir,
      rec,
      `# Recorded by scripts/record-kernel-traces.sh (test/trace-real-layouts.test.ts with UPDATE_GOLDEN=1)\n\n` +
        `${l.build ? `${l.scenario} (written by test/trace-real-layouts.test.ts)` : `fixtures/scenarios/${l.scenario}`} — ${l.layout} — built by the lab in network namespaces ` +
        `(\`lvsdoctor lab run\`: directors emulated by ${r.directorEngine}, filters installed by ${r.filterSource}); ` +
        `in every hypervisor's namespace the tracing rules\n\n\`\`\`\n${TRACING_RULESET}\`\`\`\n\n` +
        'then the real probes of the scenario, one at a time (outcomes.txt: each probe, whether it succeeded on the kernel).\n\n' +
        "| file (per hypervisor `<host>/`) | command (in that host's namespace) |\n| --- | --- |\n" +
        '| nft-monitor-trace.txt | `nft monitor trace`, from before the first probe to after the last |\n' +
        '| xtables-monitor-trace.txt | `xtables-monitor --trace`, the same span |\n' +
        "| nft-ruleset-handles.txt | `nft -a list ruleset`, after the start snapshot, before the monitors start (ebtables-nft 1.8.9 re-adds each user chain's policy rule with a new handle at every `ebtables -L`) |\n" +
        WINDOW_LISTINGS.map(
          ([id, cmd]) =>
            `| start/${id}.txt, end/${id}.txt | \`${cmd}\` before the monitors start and after they stop |\n`,
        ).join('') +
        `\n\`\`\`\n${versions}\n\`\`\`\n`,
    );
  }
  return rec;
}

/** The checks of a layout on its recording (real now, or read from the fixtures). */
function check(l: Layout, model: LoadedScenario, rec: LayoutRecording, work: string): string {
  const j: LayoutJoin = joinLayout(model, rec);
  // xtables-monitor may give up in a burst (ENOBUFS; said by its reader): only where the layout says so.
  const stopped = j.issues.filter(
    (i) => i.startsWith('trace-monitor-stopped ') && i.includes('/xtables-monitor-trace.txt:') && l.xtablesMonitorStops,
  );
  expect(
    j.issues.filter((i) => !stopped.includes(i)),
    `${l.scenario}: reader issues`,
  ).toEqual([]);
  const t = j.traces;
  const c = j.counters;
  // Every trace event of a rule, and every moved counter, joined to a model rule with its origin.
  const tableOf = (u: { event: { family: string; table: string } }) => `${u.event.family} ${u.event.table}`;
  expect(t.unmapped.map((u) => `${u.event.pos.file}:${u.event.pos.line} ${u.why}`)).toEqual([]);
  expect(
    c.unmapped.map(
      (u) =>
        `${u.node} ${u.delta.source} ${u.delta.table} ${u.delta.chain} ${u.delta.ruleNumber ?? 'policy'}: ${u.why}`,
    ),
  ).toEqual([]);
  // The hosts' nat tables: their events and counters joined to the model's nat rules (with their origin).
  const natT = t.joined.filter((e) => tableOf(e) === l.natJoined?.events);
  const natC = c.joined.filter((j) => j.table === 'nat' && j.by !== 'nft');
  if (l.natJoined) {
    expect(natT.length, `${l.scenario}: no ${l.natJoined.events} event joined`).toBeGreaterThan(0);
    for (const e of [...natT, ...natC])
      expect(renderOriginChain(e.rule!.origin)).toMatch(/kvm\d\/(?:iptables-save|nft-ruleset)\.txt:\d+/);
    if (l.natJoined.counters) expect(natC.length, `${l.scenario}: no nat counter joined`).toBeGreaterThan(0);
  }
  const mangleT = t.joined.filter((e) => e.modelHook?.table === 'mangle');
  if (l.mangleJoined) expect(mangleT.length, `${l.scenario}: no mangle base chain event joined`).toBeGreaterThan(0);
  if (l.noRules) {
    // Nothing of the hosts' own decides: the traces hold the tracing rule's events only, no counter exists.
    expect(j.events).toBe(0);
    expect(t.setup, `${l.scenario}: nothing traced`).toBeGreaterThan(0);
  } else {
    expect(j.events, `${l.scenario}: no traced rule event`).toBeGreaterThan(0);
    if (l.noCounters) expect(c.joined.length + c.unmapped.length, `${l.scenario}: a counter moved`).toBe(0);
    else expect(c.joined.length, `${l.scenario}: no moved counter`).toBeGreaterThan(0);
  }
  for (const e of t.joined) expect(renderOriginChain(e.rule!.origin), e.event.pos.line.toString()).toBeTruthy();
  for (const e of c.joined) expect(renderOriginChain(e.rule.origin)).toBeTruthy();
  // Every probe the traces cover is confirmed; none is contradicted by the counters.
  const covered = t.probes.filter((p) => p.verdict !== 'no-evidence');
  expect(covered.length, `${l.scenario}: no probe covered by the traces`).toBeGreaterThan(0);
  for (const p of t.probes)
    expect(p.verdict, `${l.scenario} ${p.probe} (traces):\n${p.facts.join('\n')}`).not.toBe('contradicted');
  for (const p of c.probes)
    expect(p.verdict, `${l.scenario} ${p.probe} (counters):\n${p.facts.join('\n')}`).not.toBe('contradicted');
  // The deliberately wrong model is contradicted.
  const wrong = wrongModel(l, model, work);
  const w = joinLayout(wrong.model, rec);
  const contradicted = [...w.traces.probes, ...w.counters.probes].filter((p) => p.verdict === 'contradicted');
  expect(contradicted.length, `${l.scenario}: ${wrong.what} is not contradicted`).toBeGreaterThan(0);
  const confirmed = (ps: readonly { verdict: string }[]) => ps.filter((p) => p.verdict === 'confirmed').length;
  const unconfirmed = (ps: readonly { probe: string; verdict: string }[]) => {
    const rest = ps.filter((p) => p.verdict !== 'confirmed').map((p) => `${p.probe}: ${p.verdict}`);
    return rest.length > 0 ? ` (${rest.join(', ')})` : '';
  };
  const of = (n: number, what: string) => (n > 0 ? `, ${n} of them ${what}` : '');
  return [
    `${l.scenario} (${l.layout}):`,
    ...stopped.map((i) => `  ${i.split(' ')[1]} xtables-monitor stopped (ENOBUFS); nft monitor trace is whole`),
    `  trace events joined ${share(t.joined.length, j.events)}${of(natT.length, 'of the hosts’ nat tables')}${of(mangleT.length, 'of their mangle base chains')} (+${t.setup} of the tracing rule)`,
    `  moved counters joined ${share(c.joined.length, c.joined.length + c.unmapped.length)}${of(natC.length, 'of the hosts’ nat tables')}`,
    `  probes confirmed by traces ${confirmed(t.probes)}/${t.probes.length}${unconfirmed(t.probes)}, by counters ${confirmed(c.probes)}/${c.probes.length}${unconfirmed(c.probes)}`,
    `  wrong model (${wrong.what}): contradicted ${[...new Set(contradicted.map((p) => p.probe))].join(', ')}`,
  ].join('\n');
}

describe.skipIf(SKIP !== undefined)('live evidence of the lab layouts on a real kernel', () => {
  for (const l of LAYOUTS)
    it(`${l.layout} (${l.scenario}): every trace event and moved counter joined, probes confirmed, a wrong model contradicted`, async () => {
      const work = mkdtempSync(join(tmpdir(), 'lvsdoctor-trace-layouts-'));
      try {
        const model = load(scenarioDir(l, work));
        const rec = await record(l, model);
        console.info(check(l, model, rec, work));
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    }, 240_000);
});

describe('live evidence of the lab layouts, recorded (fixtures/kernel-traces)', () => {
  for (const l of LAYOUTS)
    it(`${l.scenario}: the recorded traces and counters join the model, a wrong model is contradicted`, () => {
      const dir = join(FIXTURES, l.scenario);
      expect(hasRecording(dir), `${dir} is missing: run scripts/record-kernel-traces.sh`).toBe(true);
      const work = mkdtempSync(join(tmpdir(), 'lvsdoctor-trace-layouts-'));
      try {
        console.info(check(l, load(scenarioDir(l, work)), readRecording(dir, l.scenario), work));
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    });
});
