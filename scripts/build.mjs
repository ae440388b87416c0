// Bundles the CLI into dist/cli.mjs so that `npx lvsdoctor` starts fast without a TypeScript loader, and the web
// app's page scripts (below), which `serve` and `diagnose --html` inline.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { tsImport } from 'tsx/esm/api';

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

// The page's scripts, with the options src/web/page.ts uses when it builds them from the sources: the app
// (src/web/client/) into dist/web-app.js, and the offline report's what-if engine (the domain code, with stand-ins
// for its node: imports) into dist/web-engine.js.
const { webBuildOptions } = await tsImport('../src/web/page.ts', import.meta.url);
const webDir = fileURLToPath(new URL('../src/web/', import.meta.url));
for (const [kind, entry, out] of [
  ['app', 'client/main.tsx', 'dist/web-app.js'],
  ['engine', 'report-engine.ts', 'dist/web-engine.js'],
]) {
  const r = await build(webBuildOptions(kind, join(webDir, entry), webDir));
  writeFileSync(out, r.outputFiles[0].text);
}
