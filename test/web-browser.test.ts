/**
 * The web app in a real browser (Debian's chromium through playwright-core): the founding case served on
 * 127.0.0.1, the drop and its origin, the what-if of the safer fix, the offline report from file:// with no
 * network (its what-if — fixes combined, a parameter edited — re-traced in the page, as the server does), an
 * accessibility check with axe-core, and the fleet page of 200 hypervisors × 40 guests.
 */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFleetBundles } from '../bench/fleet-bundles.ts';
import { startServe } from '../src/cli/cmd-serve.ts';
import { main } from '../src/cli/main.ts';
import type { WhatIfRequest, WhatIfResult } from '../src/web/contract.ts';
import type { Running } from '../src/web/server.ts';
import { axeSerious, type Browser, browserSkipReason, forbidNetwork, launch } from './support/browser.ts';
import { bump, carryTrace, FOUNDING_TRACES, staleIpExample, withWindow } from './support/counter-window-bundles.ts';

const EXAMPLE = join(import.meta.dirname, '..', 'examples', 'kvm-lvs-dr');
const skip = browserSkipReason();
const quiet = { stdout: () => {}, stderr: () => {} };

/** The page shows the founding case's drop: rule 3 of I-vnet0-ipv4-ip and its origin line highlighted. */
async function expectDropAndOrigin(page: Page) {
  const inspector = page.locator('[data-inspector-hop]');
  await expect.poll(() => inspector.locator('.chain').first().textContent()).toContain('rule 3 -j DROP');
  const chain = await inspector.locator('.chain').first().textContent();
  expect(chain).toContain('PREROUTING → libvirt-I-vnet0 → I-vnet0-mac → I-vnet0-ipv4-ip');
  expect(await inspector.locator('ol.origin').first().textContent()).toContain(
    'filterref clean-traffic IP=192.0.2.200',
  );
  const hl = inspector.locator('.file .hl');
  expect(await hl.getAttribute('data-line')).toBe('44');
  expect(await hl.textContent()).toContain("<filterref filter='clean-traffic'>");
}

async function probeVerdict(page: Page, probe: string): Promise<string | null> {
  return page.locator(`button.probe[data-probe="${probe}"]`).getAttribute('data-verdict');
}

async function toggleSafestFix(page: Page) {
  const card = page.locator('[data-fix]').filter({ hasText: 'keeps the most protection' }).first();
  await card.locator('input[role="switch"]').check();
  await page.locator('[data-whatif-result]').waitFor();
  for (const p of ['http-to-vip', 'arp-for-vip']) {
    await expect.poll(() => probeVerdict(page, p)).toBe('replied');
    expect(await page.locator(`button.probe[data-probe="${p}"]`).getAttribute('class')).toContain('ok');
    expect(await page.locator(`[data-verdict-probe="${p}"]`).getAttribute('data-after')).toBe('replied');
  }
}

describe.skipIf(skip !== undefined)(`the web app in chromium${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let browser: Browser;
  let server: Running;
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-browser-'));
  beforeAll(async () => {
    browser = await launch();
    server = (await startServe(quiet, [EXAMPLE], { port: 0, captures: [] }))!;
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('opens on the dropping rule and its origin (no interaction), and the other drop is one click away', async () => {
    const page = await browser.page();
    const asked = await forbidNetwork(page, (u) => u.startsWith(server.url));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    await expectDropAndOrigin(page);
    // The drop is drawn on the topology where the path dies.
    await page.locator('svg .drop').waitFor();
    expect(await page.locator('svg polyline.route.request').count()).toBeGreaterThan(0);
    // One click: the ARP probe, whose reply dies on I-vnet0-arp-ip rule 2.
    await page.locator('button.probe[data-probe="arp-for-vip"]').click();
    await expect
      .poll(() => page.locator('[data-inspector-hop] .chain').first().textContent())
      .toContain('I-vnet0-arp-ip, rule 2 -j DROP');
    expect(await page.locator('svg polyline.route.reply').count()).toBeGreaterThan(0);
    expect(asked).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('walks the hops with the keyboard', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    await page.locator('ol.steps button').first().focus();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('ArrowDown');
    expect(await page.locator('[data-inspector-hop]').getAttribute('data-inspector-hop')).toBe('2');
    expect(await page.locator('ol.steps button[aria-current="true"]').getAttribute('data-hop')).toBe('2');
    // The tabs follow the tab pattern: arrows move between them.
    await page.getByRole('tab', { name: 'Diagnosis' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: /Fleet/ }).getAttribute('aria-selected')).toBe('true');
    await page.locator('[data-kpi="guests"]').waitFor();
    await page.close();
  });

  it('toggles the safer fix: both failing probes turn green, re-traced by the server', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    await toggleSafestFix(page);
    // The header says what the what-if gives, beside the diagnosis' own verdict.
    await expect
      .poll(() => page.locator('[data-what-if-verdict]').getAttribute('data-what-if-verdict'))
      .toBe('answered');
    expect(await page.locator('[data-verdict-state]').getAttribute('data-verdict-state')).toBe('broken');
    // Back to the configuration as it is.
    await page.getByRole('button', { name: 'back to the configuration as it is' }).click();
    await expect.poll(() => probeVerdict(page, 'http-to-vip')).toBe('dropped-by-filter');
    expect(await page.locator('[data-what-if-verdict]').count()).toBe(0);
    await page.close();
  });

  it('edits a filter parameter: the VIP added to IP lets the ARP reply out, the forwarded SYN still dies', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    await page.locator('input[data-param-values]').fill('192.0.2.200 192.0.2.208');
    await page.getByRole('button', { name: 're-trace with this value' }).click();
    await expect.poll(() => probeVerdict(page, 'arp-for-vip')).toBe('replied');
    expect(await probeVerdict(page, 'http-to-vip')).toBe('dropped-by-filter');
    await page.close();
  });

  it('has no serious or critical accessibility violations (axe-core)', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    await page.locator('[data-inspector-hop]').waitFor();
    expect(await axeSerious(page)).toEqual([]);
    await page.getByRole('tab', { name: /Fleet/ }).click();
    await page.locator('[data-kpi="guests"]').waitFor();
    expect(await axeSerious(page)).toEqual([]);
    await page.close();
  });

  /** Writes the founding case's report and opens it from file://, recording network requests and page errors. */
  async function openReport(name: string) {
    const out = join(tmp, name);
    expect(await main(['diagnose', EXAMPLE, '--html', out], quiet)).toBe(1);
    const page = await browser.page();
    const asked = await forbidNetwork(page, (u) => u.startsWith('file://'));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(out).href);
    return { page, asked, errors };
  }

  it('opens the offline report from file:// with no network at all, and its what-if re-traces in the page', async () => {
    const { page, asked, errors } = await openReport('report.html');
    await expectDropAndOrigin(page);
    await toggleSafestFix(page);
    // The re-traced SYN passes the fix's own filter: a hop shows that file (not in the model: the what-if brought
    // its lines), the deciding line highlighted.
    await page.locator('button.probe[data-probe="http-to-vip"]').click();
    const fixFile = page.locator(
      '[data-inspector-hop] section.file[aria-label*="nwfilter-lvsdoctor-dr-clean-traffic.xml"]',
    );
    const hops = await page.locator('ol.steps button').count();
    for (let k = 0; k < hops && (await fixFile.count()) === 0; k++)
      await page.locator('ol.steps button').nth(k).click();
    expect(await fixFile.locator('.hl').textContent()).toMatch(/<rule |<filterref filter=/);
    expect(asked).toEqual([]);
    expect(errors).toEqual([]);
    expect(await axeSerious(page)).toEqual([]);
    await page.close();
  });

  /** The server's answer to a what-if, verdict per probe. */
  async function serverVerdicts(req: WhatIfRequest): Promise<Record<string, string>> {
    const r = await fetch(`${server.url}api/what-if`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req),
    });
    const body = (await r.json()) as WhatIfResult;
    return Object.fromEntries(body.verdicts.map((v) => [v.probe, v.after]));
  }

  /** The what-if table in the page, verdict per probe, once it answers `applied`. */
  async function pageVerdicts(page: Page, applied: string): Promise<Record<string, string>> {
    const result = page.locator('[data-whatif-result]');
    await expect.poll(() => result.textContent()).toContain(applied);
    const rows = await result
      .locator('[data-verdict-probe]')
      .evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-verdict-probe')!, tr.getAttribute('data-after')!]));
    return Object.fromEntries(rows);
  }

  it('the offline report combines fixes and edits a filter parameter in the page, as `serve` re-traces them', async () => {
    const { page, asked, errors } = await openReport('report-combine.html');
    await page.locator('[data-inspector-hop]').waitFor();
    const ids = await page.locator('[data-fix]').evaluateAll((cards) => cards.map((c) => c.getAttribute('data-fix')!));
    const addIp = ids.find((id) => id.startsWith('add-ip:'))!;
    const remove = ids.find((id) => id.startsWith('remove-filterref:'))!;
    expect(addIp && remove).toBeTruthy();

    // Two fixes at once: re-traced by the engine embedded in the report, the same verdicts as the server's.
    await page.locator(`input[data-whatif="${addIp}"]`).check();
    const one = await pageVerdicts(page, addIp);
    expect(one).toEqual(await serverVerdicts({ fixes: [addIp], params: [] }));
    await page.locator(`input[data-whatif="${remove}"]`).check();
    const both = await pageVerdicts(page, `${addIp} + ${remove}`);
    expect(both).toEqual(await serverVerdicts({ fixes: [addIp, remove], params: [] }));
    expect(Object.values(both).every((v) => v === 'replied')).toBe(true);
    for (const p of Object.keys(both)) expect(await probeVerdict(page, p)).toBe(both[p]);

    // Back, then a parameter edit: the VIP added to IP lets the ARP reply out, the forwarded SYN still dies.
    await page.getByRole('button', { name: 'back to the configuration as it is' }).click();
    await expect.poll(() => probeVerdict(page, 'arp-for-vip')).toBe('dropped-by-filter');
    await page.locator('input[data-param-values]').fill('192.0.2.200 192.0.2.208');
    await page.getByRole('button', { name: 're-trace with this value' }).click();
    const edit = { host: 'host1', port: 'vnet0', name: 'IP', values: ['192.0.2.200', '192.0.2.208'] };
    const edited = await pageVerdicts(page, 'IP=192.0.2.200 192.0.2.208');
    expect(edited).toEqual(await serverVerdicts({ fixes: [], params: [edit] }));
    expect(edited['arp-for-vip']).toBe('replied');
    expect(edited['http-to-vip']).toBe('dropped-by-filter');
    await expect.poll(() => probeVerdict(page, 'arp-for-vip')).toBe('replied');
    // The still-failing probe's drop is the same rule as the server finds: its path in the page is re-traced.
    await page.locator('button.probe[data-probe="http-to-vip"]').click();
    await expect.poll(() => page.locator('[data-inspector-hop] .chain').first().textContent()).toContain('-j DROP');

    // A bad value is refused with the server's words.
    await page.locator('input[data-param-values]').fill('1.2.3');
    await page.getByRole('button', { name: 're-trace with this value' }).click();
    await expect
      .poll(() => page.locator('.whatif-status .bad').textContent())
      .toContain('"1.2.3" is not an IPv4 address');
    expect(asked).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('says "no verdict" and names the service not checked, with its reason, in words', async () => {
    // fixtures/scenarios/dr-fwmark-only-not-checked: FWM 1 without lb1's mangle rules, diagnose exits 2.
    const out = join(tmp, 'no-verdict.html');
    const dir = join(import.meta.dirname, '..', 'fixtures', 'scenarios', 'dr-fwmark-only-not-checked');
    expect(await main(['diagnose', dir, '--html', out], quiet)).toBe(2);
    const page = await browser.page();
    const asked = await forbidNetwork(page, (u) => u.startsWith('file://'));
    await page.goto(pathToFileURL(out).href);
    const badge = page.locator('[data-verdict-state]');
    await expect.poll(() => badge.getAttribute('data-verdict-state')).toBe('no-verdict');
    expect(await badge.textContent()).toContain('no verdict');
    const missing = page.getByRole('region', { name: 'No verdict' });
    expect(await missing.textContent()).toContain(
      'FWM 1 on lb1 is not checked: a fwmark service takes the packets that iptables mangle rules mark',
    );
    expect(asked).toEqual([]);
    expect(await axeSerious(page)).toEqual([]);
    await page.close();
  });
});

describe.skipIf(skip !== undefined)(`live evidence in chromium${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let browser: Browser;
  let server: Running;
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-evidence-web-'));
  const traces = [
    `host1=${join(FOUNDING_TRACES, 'xtables-monitor-trace.txt')}`,
    `host1=${join(FOUNDING_TRACES, 'nft-ruleset-handles.txt')}`,
    `host1=${join(FOUNDING_TRACES, 'ebtables-nat.txt')}`,
    `host1=${join(FOUNDING_TRACES, 'iptables-save.txt')}`,
    `host1=${join(FOUNDING_TRACES, 'kfree-skb-perf.txt')}`,
  ];
  beforeAll(async () => {
    browser = await launch();
    // The founding bundles: a watch window on host1 in which the drop rule counted and a kernel trace it carried.
    const bundles = withWindow(join(tmp, 'watched'), (nat) =>
      bump(bump(nat, 'I-vnet0-ipv4-ip', 3, 57, 3420), 'PREROUTING', 1, 57, 3420),
    );
    carryTrace(bundles[0]!, readFileSync(join(FOUNDING_TRACES, 'nft-monitor-trace.txt'), 'utf8'));
    let err = '';
    server = (await startServe({ stdout: () => {}, stderr: (x) => (err += x) }, bundles, { port: 0, captures: [] }))!;
    expect(err).not.toContain('does not show');
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('serve: the live verdict beside the model’s, the counter of the drop rule on its hop, its origin one click away', async () => {
    const page = await browser.page();
    const asked = await forbidNetwork(page, (u) => u.startsWith(server.url));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url);
    const panel = page.locator('[data-evidence-probe]');
    await panel.waitFor();
    const probe = (await panel.getAttribute('data-evidence-probe'))!;
    expect(await panel.getAttribute('data-evidence-verdict')).toBe('confirmed');
    expect(
      await page.locator(`button.probe[data-probe="${probe}"] [data-evidence]`).getAttribute('data-evidence'),
    ).toBe('confirmed');
    expect(await panel.textContent()).toContain('model: dropped-by-filter');
    const counter = panel.locator('[data-counter="host1 I-vnet0-ipv4-ip 3"]');
    expect(await counter.textContent()).toMatch(/-j DROP.*counted 57 packets \/ 3,420 bytes in the 10 s window/);
    // The rule's origin: one click opens it, the XML line highlighted as in the hop inspector.
    await counter.locator('summary').click();
    expect(await counter.locator('ol.origin').textContent()).toContain('filterref clean-traffic');
    expect(await counter.locator('.file .hl').textContent()).toContain('clean-traffic');
    // The hop that drops says its rule counted; the overview lists the window.
    expect(await page.locator('ol.steps [data-hop-counted]').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-evidence-overview] [data-window="host1"]').textContent()).toContain(
      'watch window of 10 s, 2 rule counters moved',
    );
    expect(await axeSerious(page)).toEqual([]);
    // A what-if has no live evidence: said in the what-if's result and in the evidence panel, nothing drawn.
    await page
      .locator('[data-fix]')
      .filter({ hasText: 'keeps the most protection' })
      .first()
      .locator('input[role="switch"]')
      .check();
    await page.locator('[data-whatif-result]').waitFor();
    expect(await page.locator('[data-whatif-no-evidence]').textContent()).toContain(
      'Live evidence belongs to the unmodified model',
    );
    await page.locator(`button.probe[data-probe="${probe}"]`).click();
    await page.locator('[data-evidence-what-if]').waitFor();
    expect(await page.locator('ol.steps [data-hop-counted]').count()).toBe(0);
    expect(asked).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('the offline report from file://: kernel events as steps on the path, “the kernel and the model disagree here” on a stale model', async () => {
    // The VIP added to IP in host1's domain XML (a stale filter parameter): the kernel drops the ARP reply the
    // model lets pass.
    const stale = staleIpExample(join(tmp, 'stale'));
    const out = join(tmp, 'stale.html');
    expect(await main(['diagnose', stale, ...traces.flatMap((t) => ['--trace', t]), '--html', out], quiet)).toBe(1);
    expect(statSync(out).size).toBeLessThan(2 * 1024 * 1024);
    const page = await browser.page();
    const asked = await forbidNetwork(page, (u) => u.startsWith('file://'));
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(pathToFileURL(out).href);
    await page.locator('button.probe[data-probe="arp-for-vip"]').click();
    const panel = page.locator('[data-evidence-probe="arp-for-vip"]');
    await expect.poll(() => panel.getAttribute('data-evidence-verdict')).toBe('contradicted');
    const bad = panel.locator('[data-kernel-mark="disagree"]').first();
    expect(await bad.textContent()).toMatch(/the kernel and the model disagree here.*host1:vnet0/);
    // Drawn on the topology and marked on the hop of the path.
    expect(await page.locator('svg g.kmark.disagree').count()).toBeGreaterThan(0);
    expect(await page.locator('svg[aria-label*="the kernel and the model disagree at"]').count()).toBe(1);
    expect(await page.locator('ol.steps [data-hop-kernel="disagree"]').count()).toBeGreaterThan(0);
    // The hop button takes the inspector to that hop.
    const hopButton = bad.getByRole('button', { name: /show hop/ });
    if ((await hopButton.count()) > 0) {
      await hopButton.click();
      const k = Number((await hopButton.textContent())!.replace(/\D+/g, '')) - 1;
      expect(await page.locator('[data-inspector-hop]').getAttribute('data-inspector-hop')).toBe(String(k));
    }
    // The probe the kernel confirms: its marks agree.
    await page.locator('button.probe[data-probe="http-to-vip"]').click();
    await expect
      .poll(() => page.locator('[data-evidence-probe="http-to-vip"]').getAttribute('data-evidence-verdict'))
      .toBe('confirmed');
    expect(await page.locator('svg g.kmark.agree').count()).toBeGreaterThan(0);
    expect(asked).toEqual([]);
    expect(errors).toEqual([]);
    expect(await axeSerious(page)).toEqual([]);
    await page.close();
  });

  it('the fleet tab marks the services not checked, per director, the reason on hover and on keyboard focus', async () => {
    const dir = join(tmp, 'fwmark-plus-ipv6');
    cpSync(join(import.meta.dirname, '..', 'fixtures', 'scenarios', 'dr-fwmark-mangle-healthy'), dir, {
      recursive: true,
    });
    appendFileSync(
      join(dir, 'lb1', 'ipvsadm-Ln.txt'),
      'TCP  [2001:db8::10]:80 wlc\n  -> [2001:db8::21]:80              Route   1      0          0         \n',
    );
    const out = join(tmp, 'unchecked.html');
    expect(await main(['diagnose', dir, '--html', out], quiet)).toBe(0);
    const page = await browser.page();
    await page.goto(pathToFileURL(out).href);
    await page.getByRole('tab', { name: /Fleet/ }).click();
    expect(await page.locator('[data-kpi="unchecked"] b').textContent()).toBe('1');
    expect(await page.locator('[data-director="lb1"]').getAttribute('data-unchecked-count')).toBe('1');
    const row = page.locator('[data-cluster="TCP [2001:db8::10]:80 on lb1"]');
    const tag = row.getByRole('button', { name: 'not checked' });
    const tip = row.getByRole('tooltip');
    expect(await tip.isVisible()).toBe(false);
    // Keyboard: Tab reaches it and focus shows the reason, which describes the button; Escape hides it.
    await page.locator('[data-director="lb1"]').click();
    for (let k = 0; k < 20 && !(await tag.evaluate((el) => el === document.activeElement)); k++)
      await page.keyboard.press('Tab');
    expect(await tag.evaluate((el) => el === document.activeElement)).toBe(true);
    expect(await tip.isVisible()).toBe(true);
    expect(await tip.textContent()).toBe('IPv6 traffic is not traced (its filters are checked statically)');
    expect(await tag.getAttribute('aria-describedby')).toBe(await tip.getAttribute('id'));
    await page.keyboard.press('Escape');
    expect(await tip.isVisible()).toBe(false);
    // Hover shows it too.
    await page.locator('h2').first().click();
    await tag.hover();
    expect(await tip.isVisible()).toBe(true);
    expect(await axeSerious(page)).toEqual([]);
    await page.close();
  });
});

describe.skipIf(skip !== undefined)(`the fleet page in chromium${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let browser: Browser;
  let server: Running;
  const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-fleet-web-'));
  beforeAll(async () => {
    const bundles = writeFleetBundles(tmp, { hosts: 200, guests: 40, clusters: 4 });
    browser = await launch();
    server = (await startServe(quiet, bundles, { port: 0, captures: [] }))!;
    // Diagnosing 8,000 guests before the first page is minutes of CPU on a loaded 2-core machine.
  }, 1_500_000);
  afterAll(async () => {
    await server?.close();
    await browser?.close();
    rmSync(tmp, { recursive: true, force: true });
  }, 600_000);

  it('summarises 8,000 guests without freezing: counts, clusters, findings, a windowed guest list', async () => {
    const page = await browser.page();
    await page.goto(server.url);
    // A fleet opens on the fleet view.
    await page.locator('[data-kpi="guests"]').waitFor({ timeout: 60_000 });
    expect(await page.locator('[data-kpi="guests"] b').textContent()).toBe('8000');
    expect(await page.locator('[data-kpi="hosts"] b').textContent()).toBe('200');
    // Only the rows in view are in the page.
    const rows = await page.locator('.vlist li.row').count();
    expect(rows).toBeGreaterThan(5);
    expect(rows).toBeLessThan(100);
    await page.locator('.vlist').evaluate((el) => {
      el.scrollTop = 28 * 5000;
      el.dispatchEvent(new Event('scroll'));
    });
    await page.locator('.vlist li[data-guest="vm-125-0"]').waitFor();
    // Filtering 8,000 rows answers while the page stays responsive.
    await page.locator('input[data-fleet-filter]').fill('vm-199-39');
    await expect.poll(() => page.locator('[data-fleet-count]').getAttribute('data-fleet-count')).toBe('1');
    expect(await page.evaluate(() => 1 + 1)).toBe(2);
    // The topology of 200 hypervisors is drawn as one card each.
    await page.getByRole('tab', { name: 'Diagnosis' }).click();
    expect(await page.locator('svg g.k-host-summary').count()).toBe(200);
    await page.close();
  }, 300_000);
});
