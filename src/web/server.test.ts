import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { correlateCaptureFiles } from '../capture/correlate-files.ts';
import { main } from '../cli/main.ts';
import { loadScenario } from '../topology/load-scenario.ts';
import { diskSource } from '../topology/scenario-source.ts';
import { openSession, probesOf, runProbe } from '../trace/session.ts';
import { capturesToPcaps } from '../trace/tcpdump-lines.ts';
import { REPORT_ENGINE_GLOBAL, type ReportInputs, type WebModel, type WhatIfResult } from './contract.ts';
import { listen, type Running, webApp } from './server.ts';
import { buildWebModel } from './view-model.ts';
import { openWebSession } from './what-if.ts';

const EXAMPLE = join(import.meta.dirname, '..', '..', 'examples', 'kvm-lvs-dr');
const SCENARIOS = join(import.meta.dirname, '..', '..', 'fixtures', 'scenarios');

/** The report `--html` writes, and the model embedded in it. */
function embeddedModel(html: string): WebModel {
  return JSON.parse(
    html.match(/<script id="lvsdoctor-model" type="application\/json">([^<]*)<\/script>/)![1]!,
  ) as WebModel;
}

describe('the web server on the founding case', () => {
  let running: Running;
  let model: WebModel;
  beforeAll(async () => {
    const loaded = loadScenario(EXAMPLE).value!;
    const session = openWebSession(loaded, diskSource(EXAMPLE));
    model = await buildWebModel(session, { live: true });
    running = await listen(webApp(session, model), 0);
  });
  afterAll(() => running.close());

  const whatIf = async (body: unknown) => {
    const r = await fetch(`${running.url}api/what-if`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as WhatIfResult & { error?: string } };
  };

  it('listens on 127.0.0.1 only and serves the page with its script inline', async () => {
    expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(running.url)).text();
    expect(html).toContain('<div id="app">');
    expect(html).not.toMatch(/<script[^>]+src=/);
    expect(html).toContain("default-src 'none'");
  });

  it('sends the model the CLI computes: the drop at host1:vnet0 by rule 3 and its origin to the XML line', async () => {
    const m = (await (await fetch(`${running.url}api/model`)).json()) as WebModel;
    expect(m.verdict).toBe('broken');
    expect(m.healthy).toBe(false);
    expect(m.noVerdict).toBeUndefined();
    expect(m.unchecked).toEqual([]);
    const http = m.probes.find((p) => p.name === 'http-to-vip')!;
    expect(http.disposition).toBe('dropped-by-filter');
    const drop = http.path[http.decisive!]!;
    expect(drop.element).toBe('if:host1:vnet0');
    const nf = drop.steps.find((s) => s.kind === 'netfilter')!;
    expect(nf.ruleNumber).toBe(3);
    expect(nf.path).toEqual(['PREROUTING', 'libvirt-I-vnet0', 'I-vnet0-mac', 'I-vnet0-ipv4-ip']);
    const filterref = nf.origin!.find((o) => o.kind === 'filterref' && o.file)!;
    expect(m.files[filterref.file!]![filterref.line! - 1]).toContain("<filterref filter='clean-traffic'>");
    expect(m.probes.find((p) => p.name === 'tcp-rs-192.0.2.226-80')!.ok).toBe(true);
    // Request and reply legs: the answered probe's SYN-ACK hops are the reply.
    const rs = m.probes.find((p) => p.ok)!;
    expect(rs.path[0]!.leg).toBe('request');
    expect(rs.path.at(-1)!.leg).toBe('reply');
    // Every hop lands on an element of the drawing.
    const ids = new Set(m.topology.nodes.map((n) => n.id));
    for (const p of m.probes) for (const h of p.path) expect(ids.has(h.element), h.element).toBe(true);
  });

  it('re-traces the safest fix: both failing probes are answered', async () => {
    const safest = model.fixes.find((f) => f.safest)!;
    const r = await whatIf({ fixes: [safest.id], params: [] });
    expect(r.status).toBe(200);
    expect(r.body.verdicts.every((v) => v.after === 'replied')).toBe(true);
    expect(r.body.verdicts.filter((v) => v.before !== 'replied').map((v) => v.probe)).toEqual([
      'http-to-vip',
      'arp-for-vip',
    ]);
  });

  it('re-traces a parameter edit: the VIP in IP lets the ARP reply out, the forwarded SYN is still dropped', async () => {
    const r = await whatIf({
      fixes: [],
      params: [{ host: 'host1', port: 'vnet0', name: 'IP', values: ['192.0.2.200', '192.0.2.208'] }],
    });
    expect(r.status).toBe(200);
    const after = Object.fromEntries(r.body.verdicts.map((v) => [v.probe, v.after]));
    expect(after['arp-for-vip']).toBe('replied');
    expect(after['http-to-vip']).toBe('dropped-by-filter');
  });

  it('answers bad what-ifs with 400 and a reason', async () => {
    expect((await whatIf({ fixes: ['no-such-fix'], params: [] })).body.error).toContain('no-such-fix');
    const bad = await whatIf({ fixes: [], params: [{ host: 'host1', port: 'vnet0', name: 'IP', values: ['1.2.3'] }] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain('"1.2.3" is not an IPv4 address');
    expect((await whatIf({ fixes: 'x' })).status).toBe(400);
    const notJson = await fetch(`${running.url}api/what-if`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
  });

  it("downloads a fix's file", async () => {
    const f = model.fixes[0]!;
    const a = f.artifacts[0]!;
    const r = await fetch(`${running.url}api/file?fix=${encodeURIComponent(f.id)}&path=${encodeURIComponent(a.path)}`);
    expect(r.headers.get('content-disposition')).toContain('attachment');
    expect(await r.text()).toBe(a.content);
  });
});

describe('lvsdoctor diagnose --html and serve (command line)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-web-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('writes one self-contained file under 2 MB with the model, the scenario as loaded and the what-if engine embedded', async () => {
    const out = join(tmp, 'report.html');
    let stdout = '';
    let stderr = '';
    const code = await main(['diagnose', EXAMPLE, '--html', out], {
      stdout: (s) => (stdout += s),
      stderr: (s) => (stderr += s),
    });
    expect(code).toBe(1);
    expect(stdout).toContain('lvsdoctor diagnose: kvm-lvs-dr');
    expect(stderr).toContain(`wrote ${out}`);
    expect(statSync(out).size).toBeLessThan(2 * 1024 * 1024);
    const html = readFileSync(out, 'utf8');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
    const m = embeddedModel(html);
    expect(m.live).toBe(false);
    // The what-if engine and the scenario as the load read it are embedded: the page re-traces itself.
    const inputs = JSON.parse(
      html.match(/<script id="lvsdoctor-inputs" type="application\/json">([^<]*)<\/script>/)![1]!,
    ) as ReportInputs;
    expect(inputs.read['scenario.yaml']).toContain('probes:');
    expect(html).toContain(REPORT_ENGINE_GLOBAL);
  });

  it('refuses a bad --port and a missing scenario with exit 2', async () => {
    let err = '';
    const io = { stdout: () => {}, stderr: (s: string) => (err += s) };
    expect(await main(['serve', EXAMPLE, '--port', 'eighty'], io)).toBe(2);
    expect(err).toContain('--port must be a port number');
    expect(await main(['serve', join(tmp, 'nothing-here')], io)).toBe(2);
    expect(err).toContain('does not exist');
  });
});

describe('captures on the topology', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-web-captures-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("places each flow where it was last seen: the founding case's SYN dies after r2-10105:eth0", async () => {
    const loaded = loadScenario(EXAMPLE).value!;
    // The pcaps `trace --pcap-dir` writes, at the director's NIC and the host's bridge (as in the founding report).
    const session = openSession(loaded);
    const pcaps = capturesToPcaps(probesOf(loaded).flatMap((p) => runProbe(session, p).captures));
    const inputs = ['r2-10105:eth0', 'host1:br0'].map((point) => {
      const file = join(tmp, `${point.replace(/\W/g, '_')}.pcap`);
      writeFileSync(file, pcaps.get(`${point.replace(/[^A-Za-z0-9_.-]/g, '_')}.pcap`) ?? new Uint8Array(0));
      return { file, point };
    });
    const correlation = correlateCaptureFiles(inputs).report!;
    const m = await buildWebModel(openWebSession(loaded, diskSource(EXAMPLE)), { live: true, captures: correlation });
    const syn = m.captures!.flows.find(
      (f) => f.endpoints.includes('192.0.2.208.80') || f.endpoints.includes('192.0.2.208:80'),
    )!;
    expect(syn.lastPoint).toBe('r2-10105:eth0');
    expect(syn.element).toBe('n:r2-10105');
    expect(syn.missing).toBeGreaterThan(0);
    expect(m.captures!.vanished.some((v) => v.after === 'r2-10105:eth0' && v.expected === 'host1:br0')).toBe(true);
  });
});

describe('the verdict the page shows: no verdict, and the services no probe exercised', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-web-verdict-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** `diagnose --json` of a scenario: its exit code and report, as the CLI prints them. */
  async function diagnoseJson(dir: string) {
    let out = '';
    const code = await main(['diagnose', dir, '--json'], { stdout: (s) => (out += s), stderr: () => {} });
    return { code, report: JSON.parse(out) as { unchecked: unknown; noVerdict?: unknown } };
  }

  it('a fwmark-only cluster without mangle rules: no verdict (not healthy, not broken), FWM 1 not checked and why', async () => {
    // fixtures/scenarios/dr-fwmark-only-not-checked/expect.yaml: exit 2, unchecked FWM 1 on lb1 (no mangle rules).
    const dir = join(SCENARIOS, 'dr-fwmark-only-not-checked');
    const loaded = loadScenario(dir).value!;
    const session = openWebSession(loaded, diskSource(dir));
    const model = await buildWebModel(session, { live: true });
    const running = await listen(webApp(session, model), 0);
    try {
      const m = (await (await fetch(`${running.url}api/model`)).json()) as WebModel;
      expect(m.verdict).toBe('no-verdict');
      expect(m.healthy).toBe(false);
      expect(m.unchecked.map((u) => u.what)).toEqual(['FWM 1 on lb1']);
      expect(m.unchecked[0]!.why).toMatch(/^a fwmark service takes the packets that iptables mangle rules mark/);
      expect(m.noVerdict).toContain(`FWM 1 on lb1 is not checked: ${m.unchecked[0]!.why}`);
      // The same words as `diagnose --json`, which exits 2.
      const cli = await diagnoseJson(dir);
      expect(cli.code).toBe(2);
      expect(m.unchecked).toEqual(cli.report.unchecked);
      expect(m.noVerdict).toEqual(cli.report.noVerdict);
    } finally {
      await running.close();
    }
    // The offline report carries them too, and `diagnose --html` exits 2 as `diagnose` does.
    const out = join(tmp, 'fwmark.html');
    expect(await main(['diagnose', dir, '--html', out], { stdout: () => {}, stderr: () => {} })).toBe(2);
    const r = embeddedModel(readFileSync(out, 'utf8'));
    expect(r.verdict).toBe('no-verdict');
    expect(r.unchecked.map((u) => u.what)).toEqual(['FWM 1 on lb1']);
    // The fleet tab lists the fwmark service (no probe reaches it) with the reason, rather than leaving it out.
    expect(
      r.fleet.clusters.filter((c) => c.unchecked !== undefined).map((c) => `${c.service} on ${c.director}`),
    ).toEqual(r.unchecked.map((u) => u.what));
  });

  it('a healthy cluster with an IPv6 service beside it: healthy, the IPv6 service listed as not checked', async () => {
    // dr-fwmark-mangle-healthy (exit 0), plus an IPv6 virtual service on lb1, which no probe traces.
    const dir = join(tmp, 'fwmark-plus-ipv6');
    cpSync(join(SCENARIOS, 'dr-fwmark-mangle-healthy'), dir, { recursive: true });
    appendFileSync(
      join(dir, 'lb1', 'ipvsadm-Ln.txt'),
      'TCP  [2001:db8::10]:80 wlc\n  -> [2001:db8::21]:80              Route   1      0          0         \n',
    );
    const loaded = loadScenario(dir);
    expect(loaded.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const m = await buildWebModel(openWebSession(loaded.value!, diskSource(dir)), { live: true });
    expect(m.verdict).toBe('healthy');
    expect(m.healthy).toBe(true);
    expect(m.noVerdict).toBeUndefined();
    expect(m.unchecked).toEqual([
      { what: 'TCP [2001:db8::10]:80 on lb1', why: 'IPv6 traffic is not traced (its filters are checked statically)' },
    ]);
    const cli = await diagnoseJson(dir);
    expect(cli.code).toBe(0);
    expect(m.unchecked).toEqual(cli.report.unchecked);
    // The fleet view marks it in its cluster (lb1's IPVS table), with the reason, and counts it per director.
    const row = m.fleet.clusters.find((c) => c.service === 'TCP [2001:db8::10]:80')!;
    expect(row).toMatchObject({ director: 'lb1', unchecked: m.unchecked[0]!.why, probes: [] });
    const checked = m.fleet.clusters.filter((c) => c.director === 'lb1' && c.unchecked === undefined);
    expect(checked.map((c) => c.service)).toEqual(['FWM 1']);
    expect(m.fleet.directors.find((d) => d.name === 'lb1')).toEqual({
      name: 'lb1',
      services: checked.length + 1,
      unchecked: 1,
    });
  });
});
