/**
 * `diagnose` on collector bundles with counter windows: the founding case's bundles (recorded from a real kernel,
 * fixtures/collect/founding-real) given a watch window in which the model's drop rule counted, or another rule did.
 */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDiagnoseInputs } from '../src/cli/cmd-diagnose.ts';
import { startServe } from '../src/cli/cmd-serve.ts';
import { joinEvidence } from '../src/collect/counter-join.ts';
import { counterWindow } from '../src/collect/counter-window.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { renderEbtablesList } from '../src/netfilter/ebtables-render.ts';
import { renderOriginChain } from '../src/source/origin.ts';
import { modelHostRules } from '../src/topology/host-rules.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { runCli } from './run-cli.ts';
import { bump, carryTrace, staleIpExample, withWindow as windowBundles } from './support/counter-window-bundles.ts';
import { joinLayout, readRecording } from './support/layout-traces.ts';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'collect', 'founding-real');
const TRACES = join(import.meta.dirname, '..', 'fixtures', 'kernel-traces', 'founding-real');
const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'kvm-lvs-dr');
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-evidence-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The founding bundles with a watch window on host1 (test/support/counter-window-bundles.ts), under `tmp`. */
const withWindow = (name: string, end: (nat: string) => string, extra: Record<string, [string, string]> = {}) =>
  windowBundles(join(tmp, name), end, extra);

function diagnoseJson(bundles: string[]) {
  let out = '';
  let err = '';
  const code = runDiagnoseInputs({ stdout: (s) => (out += s), stderr: (s) => (err += s) }, bundles, { json: true });
  expect(err).not.toContain('error');
  return { code, json: JSON.parse(out) };
}

describe('live counters joined to the model', () => {
  it('confirms the founding drop when the rule the model names counted, with its origin', () => {
    const { code, json } = diagnoseJson(
      withWindow('confirmed', (nat) => bump(bump(nat, 'I-vnet0-ipv4-ip', 3, 57, 3420), 'PREROUTING', 1, 57, 3420)),
    );
    expect(code).toBe(1);
    const ev = json.evidence;
    expect(ev.windows).toEqual([{ node: 'host1', from: 'watch', seconds: 10, moved: 2 }]);
    expect(ev.unmapped).toEqual([]);
    expect(ev.joined).toHaveLength(2);
    const drop = ev.joined.find((j: { rule: { chain: string } }) => j.rule.chain === 'I-vnet0-ipv4-ip');
    expect(drop.rule).toMatchObject({ ruleNumber: 3, text: '-j DROP' });
    expect(JSON.stringify(drop.rule.origin)).toContain('no-ip-spoofing');
    const dropped = ev.probes.filter((p: { verdict: string }) => p.verdict === 'confirmed');
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped[0].facts[0]).toMatch(
      /^the model drops \S+ at host1 vnet0 I-vnet0-ipv4-ip rule 3; that rule counted 57 packets \/ 3,420 bytes in the 10 s window/,
    );
  });

  it('says contradicted when the drop rule stood still while another drop of its chains counted', () => {
    const { json } = diagnoseJson(withWindow('contradicted', (nat) => bump(nat, 'I-vnet0-mac', 2, 5, 300)));
    const probes = json.evidence.probes as { probe: string; verdict: string; facts: string[] }[];
    const c = probes.filter((p) => p.verdict === 'contradicted');
    expect(c.length).toBeGreaterThan(0);
    expect(c[0]!.facts.join('\n')).toMatch(/I-vnet0-mac rule 2 .*counted 5 packets \/ 300 bytes/);
  });

  it('lists moved counters the model cannot map, never dropping them', () => {
    const filter =
      'Bridge table: filter\n\nBridge chain: FORWARD, entries: 1, policy: ACCEPT\n-p IPv4 -j DROP , pcnt = 0 -- bcnt = 0\n';
    const ip6 = '*filter\n:FORWARD ACCEPT [0:0]\n[0:0] -A FORWARD -p ipv6-icmp -j DROP\nCOMMIT\n';
    const { json } = diagnoseJson(
      withWindow('unmapped', (nat) => nat, {
        'ebtables-filter': [filter, filter.replace('pcnt = 0 -- bcnt = 0', 'pcnt = 3 -- bcnt = 180')],
        'ip6tables-save': [ip6, ip6.replace('[0:0] -A', '[2:208] -A')],
      }),
    );
    expect(json.evidence.unmapped).toEqual([
      expect.objectContaining({
        node: 'host1',
        counted: expect.objectContaining({ table: 'filter', chain: 'FORWARD', ruleNumber: 1, packets: 3 }),
        why: expect.stringContaining(
          "the model has no ebtables filter rules: libvirt installs none there and the walk does not evaluate a libvirt host's own",
        ),
      }),
      expect.objectContaining({
        node: 'host1',
        counted: expect.objectContaining({ source: 'ip6tables', chain: 'FORWARD', ruleNumber: 1, packets: 2 }),
        why: expect.stringContaining('the model walks IPv4 only: ip6tables rules are not evaluated'),
      }),
    ]);
    for (const p of json.evidence.probes) expect(p.verdict).not.toBe('confirmed');
  });
});

describe('the ebtables filter table the model evaluates (pve-firewall on a Proxmox host)', () => {
  it('joins its counters to the rule and origin, and confirms the drop the model takes there', () => {
    const loaded = loadScenario(join(import.meta.dirname, '..', 'examples', 'proxmox-lvs-dr')).value!;
    const report = diagnose(loaded);
    const rules = modelHostRules(loaded);
    const eb = rules.get('pve1')?.ebFilter;
    expect(eb?.chains.map((c) => c.name)).toContain('tap100i0-OUT-ARP');
    // The probe the walk drops in pve-firewall's ARP chain of lb1's tap (its rule 2).
    const drop = report.traces.find((t) =>
      t.hops.some((h) =>
        h.steps.some((x) => x.kind === 'netfilter' && x.chain === 'tap100i0-OUT-ARP' && x.verdict === 'DROP'),
      ),
    );
    expect(drop).toBeDefined();
    const start = renderEbtablesList(eb!, { style: 'nft', counters: true });
    // End: that rule counted 5 packets; and PVEFW-FORWARD rule 1 counted 40 (the model decides there for others).
    let chain = '';
    let n = 0;
    const end = start
      .split('\n')
      .map((line) => {
        const c = /^Bridge chain: (\S+?),/.exec(line);
        if (c) {
          chain = c[1]!;
          n = 0;
          return line;
        }
        if (!line.includes('pcnt = ')) return line;
        n++;
        if (chain === 'tap100i0-OUT-ARP' && n === 2)
          return line.replace(/pcnt = 0 -- bcnt = 0$/, 'pcnt = 5 -- bcnt = 210');
        if (chain === 'PVEFW-FORWARD' && n === 1)
          return line.replace(/pcnt = 0 -- bcnt = 0$/, 'pcnt = 40 -- bcnt = 3200');
        return line;
      })
      .join('\n');
    const get = (text: string, file: string) => (id: string) => (id === 'ebtables-filter' ? { text, file } : undefined);
    const w = counterWindow('pve1', 'pve1-bundle', 'watch', get(start, 'start.txt'), get(end, 'end.txt'), 10);
    expect(w.issues).toEqual([]);
    expect(w.value.rules.map((d) => `${d.chain} ${d.ruleNumber} +${d.packets}`).sort()).toEqual([
      'PVEFW-FORWARD 1 +40',
      'tap100i0-OUT-ARP 2 +5',
    ]);
    const ev = joinEvidence(report, new Map([['pve1', w.value]]), rules);
    expect(ev.unmapped).toEqual([]);
    expect(ev.joined.map((j) => [j.rule.chain, j.rule.ruleNumber, j.by, j.rule.origin])).toEqual(
      w.value.rules.map((d) => [
        d.chain,
        d.ruleNumber,
        'position',
        eb!.chains.find((c) => c.name === d.chain)!.rules[d.ruleNumber! - 1]!.origin,
      ]),
    );
    const p = ev.probes.find((x) => x.probe === drop!.probe.name)!;
    expect(p.verdict).toBe('confirmed');
    expect(p.facts.join('\n')).toMatch(
      /the model drops .* tap100i0-OUT-ARP rule 2; that rule counted 5 packets \/ 210 bytes in the 10 s window/,
    );
  });
});

describe('two plain bundles of one host taken minutes apart', () => {
  it('give the window between them: the later bundle is the model, the earlier one the start', () => {
    const dir = join(tmp, 'two');
    cpSync(FIXTURE, dir, { recursive: true });
    const first = join(dir, 'lvsdoctor-bundle-hypervisor-host1');
    const later = join(dir, 'lvsdoctor-bundle-hypervisor-host1-later');
    cpSync(first, later, { recursive: true });
    const nat = join(later, 'cmd', 'ebtables-nat.out');
    writeFileSync(nat, bump(readFileSync(nat, 'utf8'), 'I-vnet0-ipv4-ip', 3, 4, 240));
    const manifest = join(later, 'manifest.tsv');
    writeFileSync(
      manifest,
      readFileSync(manifest, 'utf8').replace('date\t2026-11-25T20:26:23Z', 'date\t2026-11-25T20:31:23Z'),
    );
    const { json } = diagnoseJson([
      first,
      later,
      ...['hypervisor-host2', 'guest-director1', 'guest-rs2', 'guest-router'].map((b) =>
        join(dir, `lvsdoctor-bundle-${b}`),
      ),
    ]);
    expect(json.evidence.windows).toEqual([{ node: 'host1', from: 'bundles', seconds: 300, moved: 1 }]);
    const c = json.evidence.probes.find((p: { verdict: string }) => p.verdict === 'confirmed');
    expect(c.facts[0]).toMatch(/I-vnet0-ipv4-ip rule 3; that rule counted 4 packets \/ 240 bytes in the 300 s window/);
  });
});

describe('serve and diagnose --html with live evidence', () => {
  type Model = import('../src/web/contract.ts').WebModel;
  const modelOf = (html: string): Model =>
    JSON.parse(/<script id="lvsdoctor-model" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!) as Model;

  it('serve puts the counter window in the page model: per probe the verdict, the moved counters on its hops with their origin', async () => {
    const watched = withWindow('serve-watch', (nat) =>
      bump(bump(nat, 'I-vnet0-ipv4-ip', 3, 57, 3420), 'PREROUTING', 1, 57, 3420),
    );
    let err = '';
    const running = await startServe({ stdout: () => {}, stderr: (s) => (err += s) }, watched, {
      port: 0,
      captures: [],
    });
    try {
      expect(running).toBeDefined();
      expect(err).not.toContain('does not show');
      const m = (await (await fetch(`${running!.url}api/model`)).json()) as Model;
      const e = m.evidence!;
      expect(e.windows).toEqual([{ node: 'host1', from: 'watch', seconds: 10, moved: 2 }]);
      expect(e.joined).toHaveLength(2);
      const confirmed = e.probes.filter((p) => p.verdict === 'confirmed');
      expect(confirmed.length).toBeGreaterThan(0);
      const p = confirmed[0]!;
      const probe = m.probes.find((x) => x.name === p.probe)!;
      expect(probe.ok).toBe(false);
      expect(p.counters!.facts[0]).toMatch(/that rule counted 57 packets \/ 3,420 bytes in the 10 s window/);
      // The deciding rule's counter, placed on the hop that decides (the drop) and joined with its origin.
      const decides = p.moved.find((x) => x.decides)!;
      expect(decides.hop).toBe(probe.decisive);
      const c = e.joined[decides.counter]!;
      expect(c).toMatchObject({ node: 'host1', chain: 'I-vnet0-ipv4-ip', ruleNumber: 3, packets: 57, bytes: 3420 });
      expect(c.rule!.text).toBe('-j DROP');
      expect(c.rule!.origin.map((o) => o.label).join(' ← ')).toMatch(/no-ip-spoofing.*clean-traffic/);
      // The origin's files are in the page (its line shown as for the hop inspector's origin chain).
      expect(c.rule!.origin.some((o) => o.file !== undefined && m.files[o.file] !== undefined)).toBe(true);
    } finally {
      await running?.close();
    }
  });

  it('--html writes the report with the evidence: a watch window, two bundles of one host, a carried kernel trace, unmapped counters with the reason', async () => {
    const filter =
      'Bridge table: filter\n\nBridge chain: FORWARD, entries: 1, policy: ACCEPT\n-p IPv4 -j DROP , pcnt = 0 -- bcnt = 0\n';
    const watched = withWindow('html-watch', (nat) => bump(nat, 'I-vnet0-ipv4-ip', 3, 57, 3420), {
      'ebtables-filter': [filter, filter.replace('pcnt = 0 -- bcnt = 0', 'pcnt = 3 -- bcnt = 180')],
    });
    const out = join(tmp, 'watched.html');
    const r = await runCli('diagnose', ...watched, '--html', out);
    expect(r.code).toBe(1);
    expect(r.stderr).not.toContain('does not show');
    // The text report says the evidence too (as diagnose without --html).
    expect(r.stdout).toContain('Live evidence (counter windows):');
    const m = modelOf(readFileSync(out, 'utf8'));
    expect(m.evidence!.probes.some((p) => p.verdict === 'contradicted' || p.verdict === 'confirmed')).toBe(true);
    expect(m.evidence!.unmapped).toEqual([
      expect.objectContaining({
        node: 'host1',
        table: 'filter',
        chain: 'FORWARD',
        packets: 3,
        why: expect.stringContaining('the model has no ebtables filter rules'),
      }),
    ]);

    // Two bundles of one host: the window between them, the later one the model.
    const twoDir = join(tmp, 'html-two');
    cpSync(FIXTURE, twoDir, { recursive: true });
    const plain = ['hypervisor-host1', 'hypervisor-host2', 'guest-director1', 'guest-rs2', 'guest-router'].map((b) =>
      join(twoDir, `lvsdoctor-bundle-${b}`),
    );
    const later = join(twoDir, 'lvsdoctor-bundle-hypervisor-host1-later');
    cpSync(plain[0]!, later, { recursive: true });
    const nat = join(later, 'cmd', 'ebtables-nat.out');
    writeFileSync(nat, bump(readFileSync(nat, 'utf8'), 'I-vnet0-ipv4-ip', 3, 4, 240));
    const manifest = join(later, 'manifest.tsv');
    writeFileSync(
      manifest,
      readFileSync(manifest, 'utf8').replace('date\t2026-11-25T20:26:23Z', 'date\t2026-11-25T20:31:23Z'),
    );
    const out2 = join(tmp, 'two.html');
    const r2 = await runCli('diagnose', ...plain, later, '--html', out2);
    expect(r2.stderr).not.toContain('error');
    const w2 = modelOf(readFileSync(out2, 'utf8')).evidence!.windows;
    expect(w2).toEqual([{ node: 'host1', from: 'bundles', seconds: 300, moved: 1 }]);

    // A kernel trace the collector carried: its events joined (the bundles' own listings place them).
    const traced = withWindow('html-traced', (nat) => nat);
    carryTrace(traced[0]!, readFileSync(join(TRACES, 'nft-monitor-trace.txt'), 'utf8'));
    const out3 = join(tmp, 'traced.html');
    await runCli('diagnose', ...traced, '--html', out3);
    const k = modelOf(readFileSync(out3, 'utf8')).evidence!.kernel!;
    expect(k.files).toEqual([expect.objectContaining({ node: 'host1', events: 69 })]);
    expect(k.unmapped).toEqual([]);
    expect(k.joined.find((j) => j.verdict === 'drop')!.rule!.origin.length).toBeGreaterThan(1);
  });

  it('--html with --trace places the kernel events on the probes’ paths; a stale model shows where the kernel disagrees', async () => {
    const traces = [
      `host1=${join(TRACES, 'xtables-monitor-trace.txt')}`,
      `host1=${join(TRACES, 'nft-ruleset-handles.txt')}`,
      `host1=${join(TRACES, 'ebtables-nat.txt')}`,
      `host1=${join(TRACES, 'iptables-save.txt')}`,
    ].flatMap((t) => ['--trace', t]);
    const out = join(tmp, 'kernel.html');
    expect((await runCli('diagnose', EXAMPLE, ...traces, '--html', out)).code).toBe(1);
    const m = modelOf(readFileSync(out, 'utf8'));
    const http = m.evidence!.probes.find((p) => p.probe === 'http-to-vip')!;
    expect(http.verdict).toBe('confirmed');
    const probe = m.probes.find((p) => p.name === 'http-to-vip')!;
    const drop = http.marks.find((x) => x.rule?.chain === 'I-vnet0-ipv4-ip')!;
    expect(drop).toMatchObject({ node: 'host1', iface: 'vnet0', agree: true, element: 'if:host1:vnet0' });
    expect(drop.hops).toContain(probe.decisive);
    expect(drop.rule!.ruleNumber).toBe(3);

    // The VIP added to IP in the domain XML (a stale filter parameter): the kernel drops the ARP reply the model
    // lets pass.
    const stale = staleIpExample(join(tmp, 'stale'));
    const out2 = join(tmp, 'stale.html');
    await runCli('diagnose', stale, ...traces, '--html', out2);
    const s = modelOf(readFileSync(out2, 'utf8'));
    const arp = s.evidence!.probes.find((p) => p.probe === 'arp-for-vip')!;
    expect(arp.verdict).toBe('contradicted');
    const bad = arp.marks.filter((x) => !x.agree);
    expect(bad.length).toBeGreaterThan(0);
    expect(bad[0]!.text).toMatch(/^the kernel and the model disagree at host1 vnet0/);
    expect(bad[0]!.element).toBe('if:host1:vnet0');
  });
});

describe('kernel traces given to diagnose', () => {
  it('--trace NODE=FILE with the node’s listings: every event joined, the founding drop confirmed (text and JSON)', async () => {
    const args = [
      'diagnose',
      EXAMPLE,
      '--trace',
      `host1=${join(TRACES, 'nft-monitor-trace.txt')}`,
      '--trace',
      `host1=${join(TRACES, 'nft-ruleset-handles.txt')}`,
      '--trace',
      `host1=${join(TRACES, 'ebtables-nat.txt')}`,
      '--trace',
      `host1=${join(TRACES, 'kfree-skb-perf.txt')}`,
    ];
    const json = await runCli(...args, '--json');
    expect(json.stderr).toBe('');
    const k = JSON.parse(json.stdout).kernelTraces;
    expect(k.unmapped).toEqual([]);
    expect(k.joined.length).toBeGreaterThan(20);
    expect(k.joined[0].rule.origin).toBeDefined();
    expect(k.probes.find((p: { probe: string }) => p.probe === 'http-to-vip').verdict).toBe('confirmed');
    expect(
      k.drops.some(
        (d: { reason?: string; probes?: string[] }) =>
          d.reason === 'NETFILTER_DROP' && d.probes?.includes('http-to-vip'),
      ),
    ).toBe(true);
    const text = await runCli(...args);
    expect(text.stdout).toContain('Live evidence (kernel traces):');
    expect(text.stdout).toMatch(/http-to-vip: confirmed\n {4}- the kernel passes http-to-vip at host1 eth0/);
  });

  it('without the node’s listings, rules named only by nft text are listed as unmapped with what to collect', async () => {
    const r = await runCli(
      'diagnose',
      EXAMPLE,
      '--trace',
      `host1=${join(TRACES, 'xtables-monitor-trace.txt')}`,
      '--json',
    );
    const k = JSON.parse(r.stdout).kernelTraces;
    expect(k.unmapped.length).toBeGreaterThan(0);
    expect(k.unmapped.find((u: { table: string }) => u.table === 'nat').why).toMatch(/collect 'nft -a list ruleset'/);
  });

  it('refuses --trace without NODE= or for a node the scenario lacks, and names a bad line of a trace', async () => {
    expect((await runCli('diagnose', EXAMPLE, '--trace', 'x.txt')).stderr).toContain('--trace wants NODE=FILE');
    expect((await runCli('diagnose', EXAMPLE, '--trace', 'nohost=x.txt')).stderr).toContain(
      'the scenario has no node nohost',
    );
    const bad = join(tmp, 'bad-trace.txt');
    writeFileSync(
      bad,
      'trace id 0a bridge nat PREROUTING policy accept\ntrace id 0a bridge nat PREROUTING rule drop (verdict maybe)\n',
    );
    const r = await runCli('diagnose', EXAMPLE, '--trace', `host1=${bad}`);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad-trace.txt:2');
  });

  it('reads a trace the collector carried (collect.sh --trace FILE) and places it with the bundle’s own listings', () => {
    const bundles = withWindow('carried', (nat) => nat);
    const h1 = bundles[0]!;
    writeFileSync(join(h1, 'cmd', 'kernel-trace-1.out'), readFileSync(join(TRACES, 'nft-monitor-trace.txt'), 'utf8'));
    writeFileSync(join(h1, 'cmd', 'kernel-trace-1.err'), '');
    appendFileSync(
      join(h1, 'manifest.tsv'),
      'cmd\tkernel-trace-1\tok\t0\tcmd/kernel-trace-1.out\tcmd/kernel-trace-1.err\tcat /root/nft-trace.txt\n',
    );
    const { json } = diagnoseJson(bundles);
    const k = json.kernelTraces;
    expect(k.files).toEqual([expect.objectContaining({ node: 'host1', events: 69 })]);
    expect(k.unmapped).toEqual([]);
    expect(k.joined.find((j: { verdict: string }) => j.verdict === 'drop').at).toMatch(
      /lvsdoctor-bundle-hypervisor-host1\/cmd\/kernel-trace-1.out:40$/,
    );
    // The imported scenario's client is an assumed address (203.0.113.10), not the one that sent the traced
    // packets: no probe is contradicted, and the probe to the VIP says that no traced packet is its own.
    for (const p of k.probes) expect(p.verdict).not.toBe('contradicted');
    const vip = k.probes.find((p: { probe: string }) => p.probe === 'tcp-192.0.2.208-80');
    expect(vip.facts.join('\n')).toContain("no traced packet is tcp-192.0.2.208-80's");
  });
});

describe('IPVS totals of a director (/proc/net/ip_vs_stats) in a watch window', () => {
  const stats = (conns: string, inPkts: string) =>
    `   Total Incoming Outgoing         Incoming         Outgoing\n   Conns  Packets  Packets            Bytes            Bytes\n${conns.padStart(8)} ${inPkts.padStart(8)}        0 ${'3C0'.padStart(16)}                0\n\n Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n       0        0        0                0                0\n`;

  function directorWatch(name: string, end: string): string[] {
    const bundles = withWindow(name, (nat) => nat);
    const d1 = bundles.find((b) => b.endsWith('guest-director1'))!;
    let m =
      'watch-seconds\t10\nwatch-start\t2026-11-25T20:26:00Z 1795638360\nwatch-end\t2026-11-25T20:26:10Z 1795638370\n';
    for (const [phase, text] of [
      ['start', stats('1A', '2F0')],
      ['end', end],
    ] as const) {
      const id = `counters-${phase}-proc-ip-vs-stats`;
      writeFileSync(join(d1, 'cmd', `${id}.out`), text);
      writeFileSync(join(d1, 'cmd', `${id}.err`), '');
      m += `cmd\t${id}\tok\t0\tcmd/${id}.out\tcmd/${id}.err\tcat /proc/net/ip_vs_stats\n`;
    }
    appendFileSync(join(d1, 'manifest.tsv'), m);
    return bundles;
  }

  it('confirms the director the model schedules on when its totals moved (hexadecimal, as the kernel prints them)', () => {
    const { json } = diagnoseJson(directorWatch('ipvs-moved', stats('1D', '2FC')));
    expect(json.evidence.stack).toEqual(
      expect.arrayContaining([
        { node: 'r2-10105', name: 'IpVsConns', delta: 3 },
        { node: 'r2-10105', name: 'IpVsInPkts', delta: 12 },
      ]),
    );
    const facts = json.evidence.probes.flatMap((p: { facts: string[] }) => p.facts).join('\n');
    expect(facts).toMatch(
      /the model has r2-10105 schedule \S+ on TCP 192\.0\.2\.208:80; its IPVS totals moved: IpVsConns \+3, IpVsInPkts \+12 in the 10 s window/,
    );
  });

  it('the page shows them: the counters that moved and the probe’s IPVS fact, in the report --html writes', async () => {
    const out = join(tmp, 'ipvs.html');
    expect((await runCli('diagnose', ...directorWatch('ipvs-html', stats('1D', '2FC')), '--html', out)).code).toBe(1);
    const html = readFileSync(out, 'utf8');
    const m = JSON.parse(/<script id="lvsdoctor-model" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!);
    const e = m.evidence as import('../src/web/contract.ts').EvidenceView;
    expect(e.stack).toEqual(
      expect.arrayContaining([
        { node: 'r2-10105', name: 'IpVsConns', delta: 3 },
        { node: 'r2-10105', name: 'IpVsInPkts', delta: 12 },
      ]),
    );
    const facts = e.probes.flatMap((p) => p.counters?.facts ?? []).join('\n');
    expect(facts).toMatch(/its IPVS totals moved: IpVsConns \+3, IpVsInPkts \+12 in the 10 s window/);
  });

  it('says so when they stood still, and names the line of a listing it cannot read', () => {
    const still = diagnoseJson(directorWatch('ipvs-still', stats('1A', '2F0'))).json;
    expect(still.evidence.probes.flatMap((p: { facts: string[] }) => p.facts).join('\n')).toMatch(
      /its IPVS totals did not move in the 10 s window/,
    );
    let err = '';
    runDiagnoseInputs({ stdout: () => {}, stderr: (s) => (err += s) }, directorWatch('ipvs-bad', 'garbage\n'), {
      json: true,
    });
    expect(err).toMatch(
      /counters-end-proc-ip-vs-stats\.out:1: error: expected the 'Conns Packets Packets Bytes Bytes' header/,
    );
  });
});

describe('nft counters of the tables ebtables-nft keeps', () => {
  it('join the same model rule as the ebtables listing (counted once), the last policy rule the chain policy', () => {
    const h1nft = (text: string) =>
      text
        .replace(
          /(ether type ip counter packets )(\d+)( bytes )(\d+)( jump I-vnet0-ipv4-ip)/,
          (_, a, p, b, y, c) => `${a}${Number(p) + 57}${b}${Number(y) + 3420}${c}`,
        )
        .replace(
          /(chain I-vnet0-ipv4-ip \{[\s\S]*?counter packets )(\d+)( bytes )(\d+)( drop)/,
          (_, a, p, b, y, c) => `${a}${Number(p) + 57}${b}${Number(y) + 3420}${c}`,
        );
    const nft = readFileSync(join(FIXTURE, 'lvsdoctor-bundle-hypervisor-host1', 'cmd', 'nft-ruleset.out'), 'utf8');
    const bumped = h1nft(nft);
    expect(bumped).not.toBe(nft);
    const { json } = diagnoseJson(
      withWindow('nft', (nat) => bump(bump(nat, 'I-vnet0-ipv4-ip', 3, 57, 3420), 'libvirt-I-vnet0', 2, 57, 3420), {
        'nft-ruleset': [
          nft,
          // ebtables-nft's policy rule of libvirt-I-vnet0 (its 10th nft rule; ebtables -L lists 9 and the policy).
          bumped.replace(/(\t\tcounter packets )0( bytes )0( accept\n\t\})/, '$13$2180$3'),
        ],
      }),
    );
    const ev = json.evidence;
    const nftJoined = ev.joined.filter((j: { by: string }) => j.by === 'nft');
    expect(
      nftJoined.map((j: { rule: { chain: string; ruleNumber?: number } }) => `${j.rule.chain} ${j.rule.ruleNumber}`),
    ).toEqual(expect.arrayContaining(['I-vnet0-ipv4-ip 3', 'libvirt-I-vnet0 2', 'libvirt-I-vnet0 undefined']));
    expect(ev.unmapped.filter((u: { counted: { source: string } }) => u.counted.source === 'nft')).toEqual([]);
    const c = ev.probes.find((p: { verdict: string }) => p.verdict === 'confirmed');
    expect(c.facts[0]).toMatch(/I-vnet0-ipv4-ip rule 3; that rule counted 57 packets/);
  });
});

describe('hostile kernel trace files', () => {
  const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'kvm-lvs-dr');
  const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at |internal error|RangeError|TypeError/);

  it('a directory, a megabyte line and 20,000 bad lines are bad input naming file and line, never a crash', async () => {
    const dir = await runCli('diagnose', EXAMPLE, '--trace', `host1=${tmp}`);
    expect(dir.code).toBe(2);
    noStack(dir.stderr);
    expect(dir.stderr).toContain('directory');
    const long = join(tmp, 'long-trace.txt');
    writeFileSync(long, `trace id 0a bridge nat PREROUTING ${'x'.repeat(1_000_000)}\n`);
    const l = await runCli('diagnose', EXAMPLE, '--trace', `host1=${long}`);
    expect(l.code).toBe(2);
    noStack(l.stderr);
    expect(l.stderr.length).toBeLessThan(2000);
    expect(l.stderr).toContain('long-trace.txt:1');
    const many = join(tmp, 'many-drops.txt');
    writeFileSync(
      many,
      'python3 1 [000] 1.0: skb:kfree_skb: protocol=2048 reason: NETFILTER_DROP\n'.repeat(20_000) + 'what\n',
    );
    const m = await runCli('diagnose', EXAMPLE, '--trace', `host1=${many}`);
    expect(m.code).toBe(2);
    noStack(m.stderr);
    expect(m.stderr).toContain('many-drops.txt:20001');
  });
});

describe("a hypervisor's nat table in a counter window (the Docker layouts recorded on a real kernel)", () => {
  const REC = join(import.meta.dirname, '..', 'fixtures', 'kernel-traces');
  const SCEN = join(import.meta.dirname, '..', 'fixtures', 'scenarios');
  /** The layout's recording with kvm1's end listing `file` edited by `edit` (as if the rule had counted). */
  const edited = (scenario: string, file: string, edit: (s: string) => string) => {
    const rec = readRecording(join(REC, scenario), scenario);
    return {
      ...rec,
      hosts: rec.hosts.map((h) => {
        if (h.node !== 'kvm1') return h;
        const files = new Map(h.files);
        const was = files.get(`end/${file}`)!;
        files.set(`end/${file}`, edit(was));
        expect(files.get(`end/${file}`)).not.toBe(was);
        return { ...h, files };
      }),
    };
  };
  const natJoined = (scenario: string, rec: ReturnType<typeof readRecording>) => {
    const j = joinLayout(loadScenario(join(SCEN, scenario)).value!, rec);
    expect(j.counters.unmapped.map((u) => u.why)).toEqual([]);
    return j.counters.joined.filter((c) => c.table === 'nat');
  };

  it('iptables-save: a nat PREROUTING rule that counted joins the model’s nat rule at its position, with its origin', () => {
    const nat = natJoined(
      'dr-docker-forward-drop',
      edited('dr-docker-forward-drop', 'iptables-save.txt', (s) =>
        s.replace(
          '[0:0] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
          '[3:180] -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
        ),
      ),
    );
    const rule = nat.find((c) => c.node === 'kvm1' && c.rule.ruleNumber === 1)!;
    expect(rule.rule.chain).toBe('PREROUTING');
    expect(rule.by).toBe('position');
    expect(rule.delta.packets).toBe(3);
    expect(renderOriginChain(rule.rule.origin)).toMatch(/kvm1\/iptables-save\.txt:\d+/);
    // The chain's policy counted as recorded (the bridged SYNs nat PREROUTING saw).
    expect(nat.some((c) => c.node === 'kvm1' && c.rule.text === 'policy: ACCEPT')).toBe(true);
  });

  it('nft: a native ip nat rule that counted joins the model’s nat rule by its nft text', () => {
    const nat = natJoined(
      'dr-nft-docker-libvirt-brnf-forward-drop',
      edited('dr-nft-docker-libvirt-brnf-forward-drop', 'nft-ruleset.txt', (s) =>
        s.replace(
          /fib daddr type local counter packets (\d+) bytes (\d+) jump DOCKER/,
          (_, p, b) => `fib daddr type local counter packets ${Number(p) + 3} bytes ${Number(b) + 180} jump DOCKER`,
        ),
      ),
    );
    expect(nat.map((c) => `${c.node} ${c.delta.table} ${c.rule.chain} ${c.rule.ruleNumber} ${c.by}`)).toEqual([
      'kvm1 ip nat PREROUTING 1 text',
    ]);
    expect(renderOriginChain(nat[0]!.rule.origin)).toMatch(/kvm1\/nft-ruleset\.txt:\d+/);
  });
});
