/** The screenshot run behind scripts/screenshots.mjs (bundled by it; not a test file). */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeFleetBundles } from '../../bench/fleet-bundles.ts';
import { startServe } from '../../src/cli/cmd-serve.ts';
import { loadScenario } from '../../src/topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../../src/trace/session.ts';
import { capturesToPcaps } from '../../src/trace/tcpdump-lines.ts';
import { setWebSources } from '../../src/web/page.ts';
import { browserSkipReason, launch } from './browser.ts';

const OUT = resolve('docs/screenshots');
const skip = browserSkipReason();
if (skip) {
  console.log(`screenshots: skipped: ${skip}`);
  process.exit(0);
}
setWebSources(resolve('src/web'));
const quiet = { stdout: () => {}, stderr: () => {} };
const browser = await launch({ width: 1440, height: 900 });
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-shots-'));
try {
  const server = (await startServe(quiet, ['examples/kvm-lvs-dr'], { port: 0, captures: [] }))!;
  const page = await browser.page();
  await page.goto(server.url);
  await page.locator('[data-inspector-hop] .file .hl').waitFor();
  await page.screenshot({ path: join(OUT, 'diagnosis.png') });
  console.log('docs/screenshots/diagnosis.png: the founding case, the drop, its rule and origin');
  const card = page.locator('[data-fix]').filter({ hasText: 'keeps the most protection' }).first();
  await card.locator('input[role="switch"]').check();
  await page.locator('[data-whatif-result]').waitFor();
  await page.locator('[data-whatif-result]').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, 'what-if.png') });
  console.log('docs/screenshots/what-if.png: the safer fix applied, both probes answered');
  await page.close();
  await server.close();

  // Live evidence: the founding case with the kernel traces recorded on a real kernel (fixtures/kernel-traces).
  const traces = ['xtables-monitor-trace.txt', 'nft-ruleset-handles.txt', 'ebtables-nat.txt', 'kfree-skb-perf.txt'].map(
    (f) => `host1=fixtures/kernel-traces/founding-real/${f}`,
  );
  const traced = (await startServe(quiet, ['examples/kvm-lvs-dr'], { port: 0, captures: [], traces }))!;
  const ep = await browser.page();
  await ep.goto(traced.url);
  await ep.locator('[data-evidence-probe] [data-kernel-mark]').first().waitFor();
  await ep.locator('[data-evidence-probe]').scrollIntoViewIfNeeded();
  await ep.screenshot({ path: join(OUT, 'evidence.png') });
  console.log('docs/screenshots/evidence.png: kernel traces of the founding case placed on the path, confirmed');
  await ep.close();
  await traced.close();

  // Captures: the pcaps the model writes at the director's NIC and the host's bridge (as in the founding report).
  const loaded = loadScenario('examples/kvm-lvs-dr').value!;
  const session = openSession(loaded);
  const pcaps = capturesToPcaps(probesOf(loaded).flatMap((p) => runProbe(session, p).captures));
  const specs = ['r2-10105:eth0', 'host1:br0'].map((point) => {
    const file = join(tmp, `${point.replace(/[^A-Za-z0-9_.-]/g, '_')}.pcap`);
    writeFileSync(file, pcaps.get(`${point.replace(/[^A-Za-z0-9_.-]/g, '_')}.pcap`) ?? new Uint8Array(0));
    return `${file}@${point}`;
  });
  const withCaptures = (await startServe(quiet, ['examples/kvm-lvs-dr'], { port: 0, captures: specs }))!;
  const cp = await browser.page();
  await cp.goto(withCaptures.url);
  await cp.getByRole('tab', { name: 'Captures' }).click();
  await cp.locator('svg .capmark').first().waitFor();
  await cp.screenshot({ path: join(OUT, 'captures.png') });
  console.log('docs/screenshots/captures.png: captures at r2-10105:eth0 and host1:br0 on the topology');
  await cp.close();
  await withCaptures.close();

  // --no-fleet: only the founding case's views (the fleet takes minutes to import and diagnose).
  if (!process.argv.includes('--no-fleet')) {
    const bundles = writeFleetBundles(join(tmp, 'bundles'), { hosts: 200, guests: 40, clusters: 4 });
    const fleet = (await startServe(quiet, bundles, { port: 0, captures: [] }))!;
    const fp = await browser.page();
    await fp.goto(fleet.url);
    await fp.locator('[data-kpi="guests"]').waitFor({ timeout: 120_000 });
    await fp.screenshot({ path: join(OUT, 'fleet.png') });
    console.log('docs/screenshots/fleet.png: 200 hypervisors × 40 guests');
    await fp.getByRole('tab', { name: 'Diagnosis' }).click();
    await fp.locator('svg g.k-host-summary').first().waitFor();
    await fp.screenshot({ path: join(OUT, 'fleet-topology.png') });
    console.log('docs/screenshots/fleet-topology.png: the topology of 200 hypervisors, one card each');
    await fp.close();
    await fleet.close();
  }
} finally {
  await browser.close();
  rmSync(tmp, { recursive: true, force: true });
}
