// Runs a benchmark from bench/ as the CLI runs: bundled by esbuild (no TypeScript loader in the measured process).
//   node scripts/bench.mjs [bench/run.ts] [args...]
import { spawnSync } from 'node:child_process';
import { basename } from 'node:path';
import { build } from 'esbuild';

const [entry = 'bench/run.ts', ...args] = process.argv.slice(2);
const outfile = `.bench-out/${basename(entry, '.ts')}.mjs`;
await build({
  entryPoints: [entry],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
const r = spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' });
process.exitCode = r.status ?? 1;
