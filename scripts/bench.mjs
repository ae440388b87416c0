// Runs benchmarks from bench/ as the CLI runs: bundled by esbuild (no TypeScript loader in the measured process).
//   node scripts/bench.mjs                      every benchmark in bench/, one after the other
//   node scripts/bench.mjs bench/X.ts [args...] one benchmark, with its own arguments
// Benchmarks that need root or Debian packages print why they skip a part; each prints its own figures and the
// baseline they are compared with.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { build } from 'esbuild';

async function run(entry, args) {
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
  return spawnSync(process.execPath, [outfile, ...args], { stdio: 'inherit' }).status ?? 1;
}

const [entry, ...args] = process.argv.slice(2);
if (entry) process.exitCode = await run(entry, args);
else {
  let failed = 0;
  const all = readdirSync('bench')
    .filter((f) => f.endsWith('.ts'))
    .sort();
  for (const f of all) {
    console.log(`\n=== bench/${f}`);
    if ((await run(`bench/${f}`, [])) !== 0) {
      failed++;
      console.log(`=== bench/${f} exited non-zero`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}
