/**
 * A real browser for the web app's tests, screenshots and benchmark: Debian's chromium driven by playwright-core
 * (no browser download: scripts/install-test-deps.sh installs the chromium package). Headless, no sandbox (root),
 * no network of its own, a fresh profile per launch.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** Why browser tests cannot run here, or undefined when they can. */
export function browserSkipReason(): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install chromium)`;
}

export interface Browser {
  readonly context: BrowserContext;
  page(): Promise<Page>;
  close(): Promise<void>;
}

export async function launch(viewport = { width: 1440, height: 900 }): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'lvsdoctor-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    page: () => context.newPage(),
    close: async () => {
      // Chromium may already have gone away with its last page; the profile is removed either way.
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Records what the page asked of the network other than `allowed` (and fails those requests). */
export async function forbidNetwork(page: Page, allowed: (url: string) => boolean): Promise<string[]> {
  const asked: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (allowed(url)) return route.continue();
    asked.push(url);
    return route.abort();
  });
  return asked;
}

export interface AxeViolation {
  readonly id: string;
  readonly impact: string | null;
  readonly help: string;
  readonly nodes: readonly { readonly target: readonly string[] }[];
}

/** Runs axe-core (the npm package's own build) in the page; the serious and critical violations. */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  const axePath = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
  // Evaluated through the debugger protocol: the page's Content-Security-Policy does not apply to it.
  await page.evaluate(readFileSync(axePath, 'utf8'));
  const violations = (await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run(ctx: unknown, o: unknown): Promise<{ violations: unknown[] }> } }
    ).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations;
  })) as AxeViolation[];
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}
