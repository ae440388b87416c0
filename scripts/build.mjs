// Bundles the CLI into dist/cli.mjs so that `npx lvsdoctor` starts fast without a TypeScript loader, and the web
// app's page script (Preact, src/web/client/) into dist/web-app.js, which `serve` and `diagnose --html` inline.
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli/main.ts'],
  outfile: 'dist/cli.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
});

// The same options as src/web/page.ts uses when it builds the page script from the sources.
const web = await build({
  entryPoints: ['src/web/client/main.tsx'],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync('dist/web-app.js', web.outputFiles[0].text);
