/**
 * The page: one HTML document with its style and the client bundle (Preact, built by esbuild). The server sends
 * it with the bundle inline and fetches the model from /api/model; the offline report embeds the model too, so it
 * opens from disk with no server and no network. Nothing is loaded from anywhere else (the CSP says so).
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { WebModel } from './contract.ts';
import { PAGE_CSS } from './page-style.ts';

let cached: string | undefined;
let entryOverride: string | undefined;

/**
 * Where to build the page script from when this module runs from a bundle other than dist/cli.mjs (the benchmark
 * and the screenshot script bundle the sources): the path of src/web/client/main.tsx.
 */
export function setClientEntry(entry: string): void {
  entryOverride = entry;
  cached = undefined;
}

/**
 * The client bundle: dist/web-app.js beside the bundled CLI (scripts/build.mjs writes it), or — when running from
 * the TypeScript sources (tests, tsx) — built in memory with esbuild from src/web/client/main.tsx.
 */
export async function clientBundle(): Promise<string> {
  if (cached !== undefined) return cached;
  const built = fileURLToPath(new URL('./web-app.js', import.meta.url));
  if (entryOverride === undefined && existsSync(built)) {
    cached = readFileSync(built, 'utf8');
    return cached;
  }
  const entry = entryOverride ?? fileURLToPath(new URL('./client/main.tsx', import.meta.url));
  if (!existsSync(entry)) throw new Error(`the web app is not built: ${built} is missing (run npm run build)`);
  const { build } = await import('esbuild');
  const r = await build(clientBuildOptions(entry));
  cached = r.outputFiles?.[0]?.text ?? '';
  return cached;
}

/** esbuild options of the client bundle, shared with scripts/build.mjs through the same values. */
export function clientBuildOptions(entry: string) {
  return {
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: 'iife' as const,
    platform: 'browser' as const,
    target: 'es2020',
    minify: true,
    jsx: 'automatic' as const,
    jsxImportSource: 'preact',
    legalComments: 'none' as const,
    logLevel: 'warning' as const,
  };
}

/** JSON safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export interface PageOptions {
  readonly title: string;
  readonly script: string;
  /** Embedded model (the offline report); without it the page fetches /api/model. */
  readonly model?: WebModel;
}

export function pageHtml(o: PageOptions): string {
  const csp = [
    "default-src 'none'",
    "style-src 'unsafe-inline'",
    "script-src 'unsafe-inline'",
    'img-src data:',
    o.model ? "connect-src 'none'" : "connect-src 'self'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>${escapeHtml(o.title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<div id="app"><p class="loading">Loading the diagnosis…</p></div>
${o.model ? `<script id="lvsdoctor-model" type="application/json">${scriptJson(o.model)}</script>\n` : ''}<script>${o.script.replace(/<\/script/gi, '<\\/script')}</script>
</body>
</html>
`;
}
