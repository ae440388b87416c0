/**
 * The page: one HTML document with its style and the client bundle (Preact, built by esbuild). The server sends
 * it with the bundle inline and fetches the model from /api/model; the offline report embeds the model too, so it
 * opens from disk with no server and no network. Nothing is loaded from anywhere else (the CSP says so).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPORT_INPUTS_ID, type ReportInputs, type WebModel } from './contract.ts';
import { PAGE_CSS } from './page-style.ts';

/** The page's two scripts: the app (src/web/client/) and the offline report's what-if engine (report-engine.ts). */
export type WebScript = 'app' | 'engine';

/** Per script: its entry below src/web/, and the file scripts/build.mjs writes beside dist/cli.mjs. */
const SCRIPTS: Readonly<Record<WebScript, { readonly entry: string; readonly built: string }>> = {
  app: { entry: 'client/main.tsx', built: 'web-app.js' },
  engine: { entry: 'report-engine.ts', built: 'web-engine.js' },
};

const cached = new Map<WebScript, string>();
let sourcesOverride: string | undefined;

/**
 * Where to build the scripts from when this module runs from a bundle other than dist/cli.mjs (the benchmark and
 * the screenshot script bundle the sources): the path of src/web/.
 */
export function setWebSources(dir: string): void {
  sourcesOverride = dir;
  cached.clear();
}

/**
 * A page script: dist/web-app.js or dist/web-engine.js beside the bundled CLI (scripts/build.mjs writes them), or —
 * when running from the TypeScript sources (tests, tsx) — built in memory with esbuild.
 */
export async function webScript(kind: WebScript): Promise<string> {
  const hit = cached.get(kind);
  if (hit !== undefined) return hit;
  const built = fileURLToPath(new URL(`./${SCRIPTS[kind].built}`, import.meta.url));
  if (sourcesOverride === undefined && existsSync(built)) {
    const text = readFileSync(built, 'utf8');
    cached.set(kind, text);
    return text;
  }
  const webDir = sourcesOverride ?? dirname(fileURLToPath(import.meta.url));
  const entry = join(webDir, SCRIPTS[kind].entry);
  if (!existsSync(entry)) throw new Error(`the web app is not built: ${built} is missing (run npm run build)`);
  const { build } = await import('esbuild');
  const r = await build(webBuildOptions(kind, entry, webDir));
  const text = r.outputFiles?.[0]?.text ?? '';
  cached.set(kind, text);
  return text;
}

/** The page script (Preact, src/web/client/). */
export const clientBundle = (): Promise<string> => webScript('app');

/** The `node:` modules the domain code imports, and their stand-ins in the page (src/web/browser/; `Buffer` too). */
const NODE_SHIMS: Readonly<Record<string, string>> = {
  'node:fs': 'node-fs.ts',
  'node:path': 'node-path.ts',
  'node:crypto': 'node-crypto.ts',
};

/**
 * esbuild options of a page script; scripts/build.mjs uses the same values. The engine bundles the domain code for
 * the browser: its `node:` imports resolve to the stand-ins in `webDir`/browser/, any other one fails the build.
 */
export function webBuildOptions(kind: WebScript, entry: string, webDir: string) {
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
    // Node's `Buffer` global, where the domain code names it.
    inject: kind === 'engine' ? [join(webDir, 'browser', 'buffer.ts')] : [],
    plugins:
      kind === 'engine'
        ? [
            {
              name: 'node-shims',
              setup(b: {
                onResolve(
                  o: { filter: RegExp },
                  f: (a: { path: string }) => { path?: string; errors?: { text: string }[] },
                ): void;
              }) {
                b.onResolve({ filter: /^node:/ }, (a) => {
                  const shim = NODE_SHIMS[a.path];
                  return shim
                    ? { path: join(webDir, 'browser', shim) }
                    : { errors: [{ text: `${a.path} has no stand-in in the offline report (src/web/browser/)` }] };
                });
              },
            },
          ]
        : [],
  };
}

/** JSON safe inside a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * A script element with `text` inline: a `</script` inside it cannot end the element. `<!--` followed by `<script`
 * would put the HTML parser in a state where the closing tag no longer closes: refused (no bundle holds it).
 */
function inlineScript(text: string): string {
  if (/<!--[\s\S]*<script/i.test(text))
    throw new Error('a page script holds "<!--" then "<script": it cannot be inlined');
  return `<script>${text.replace(/<\/script/gi, '<\\/script')}</script>`;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export interface PageOptions {
  readonly title: string;
  readonly script: string;
  /** Embedded model (the offline report); without it the page fetches /api/model. */
  readonly model?: WebModel;
  /** The offline report's what-if: the scenario as loaded, and the engine script that re-traces it in the page. */
  readonly engine?: { readonly inputs: ReportInputs; readonly script: string };
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
${o.model ? `<script id="lvsdoctor-model" type="application/json">${scriptJson(o.model)}</script>\n` : ''}${
  o.engine
    ? `<script id="${REPORT_INPUTS_ID}" type="application/json">${scriptJson(o.engine.inputs)}</script>\n${inlineScript(o.engine.script)}\n`
    : ''
}${inlineScript(o.script)}
</body>
</html>
`;
}
