// Regenerates the web app's screenshots in docs/screenshots/ (shown in README.md and docs/web.md) with Debian's
// chromium: the founding case (the drop, its rule and origin), the what-if of the safer fix, its kernel traces placed
// on the path (live evidence), the captures, and the fleet view of
// 200 hypervisors × 40 guests. Run: node scripts/screenshots.mjs [--no-fleet]
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';

await build({
  entryPoints: ['test/support/screenshots.ts'],
  outfile: '.bench-out/screenshots.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
process.exitCode =
  spawnSync(process.execPath, ['.bench-out/screenshots.mjs', ...process.argv.slice(2)], { stdio: 'inherit' }).status ??
  1;
