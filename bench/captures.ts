/**
 * Capture correlation benchmark (issue 6): two captures of the same traffic at two points (a pcap before a DR MAC
 * rewrite, a pcapng after it, 3.7 ms clock offset, 0.1 % of packets missing from the second), correlated by
 * lvsdoctor and, in the same run, by a tshark pipeline doing the same job (`tshark -T fields` on both, sort, compare).
 * Then the same at 1 GiB per capture without tshark. Memory (issue 15): the peak resident memory of a correlation
 * run in a child process, as a ratio to the capture bytes it read (the baseline, same run) and per packet, for the
 * full-size frames and for a capture of small packets (`--no-memory` skips it). Files go to a temporary directory
 * and are deleted.
 *   node scripts/bench.mjs bench/captures.ts [--mib 256] [--big-mib 1024] [--no-tshark] [--no-big] [--no-memory]
 */
import { execSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { correlateCaptureFiles } from '../src/capture/correlate-files.ts';
import { generate } from './capture-traffic.ts';

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const MIB = arg('--mib', 256);
const BIG_MIB = arg('--big-mib', 1024);
const WITH_TSHARK = !process.argv.includes('--no-tshark');
const WITH_BIG = !process.argv.includes('--no-big');
const WITH_MEMORY = !process.argv.includes('--no-memory');

// Child mode: correlate the files given and report the peak resident memory (KiB) and the sightings.
if (process.argv[2] === '--measure') {
  const files = process.argv.slice(3);
  const r = correlateCaptureFiles(
    files.map((file, k) => ({ file, point: `p${k}:eth0` })),
    { maxFlows: 0 },
  );
  console.log(JSON.stringify({ maxRssKiB: process.resourceUsage().maxRSS, sightings: r.report?.sightings ?? 0 }));
  process.exit(0);
}

/** Peak memory of correlating `files` in a fresh process, against their bytes. */
function memory(label: string, files: readonly string[]): void {
  const r = spawnSync(process.execPath, [process.argv[1]!, '--measure', ...files], { encoding: 'utf8' });
  const m = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { maxRssKiB?: number; sightings?: number };
  if (!m.maxRssKiB || !m.sightings) {
    console.log(`memory, ${label}: could not be measured (${r.stderr.trim().slice(0, 200)})`);
    return;
  }
  const bytes = files.reduce((n, f) => n + statSync(f).size, 0);
  const peak = m.maxRssKiB * 1024;
  console.log(
    `memory, ${label}: peak ${mb(peak).toFixed(0)} MB for ${mb(bytes).toFixed(0)} MB of captures = ${(peak / bytes).toFixed(2)}× the bytes read; ${m.sightings} sightings, ${(peak / m.sightings).toFixed(0)} bytes each`,
  );
}

function lvsdoctor(a: string, b: string): { seconds: number; missing: number } {
  const t0 = performance.now();
  const r = correlateCaptureFiles(
    [
      { file: a, point: 'gateway:eth0' },
      { file: b, point: 'r2-10106:eth0' },
    ],
    { maxFlows: 0 },
  );
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, missing: (r.report?.missing ?? 0) + (r.report?.notCaptured ?? 0) };
}

function tsharkPipeline(a: string, b: string, dir: string): { seconds: number; missing: number } {
  // The fields lvsdoctor keys packets on, except the payload digest (tshark cannot slice a payload; adding the whole
  // `tcp.payload` roughly halves tshark's speed, so leaving it out favours tshark).
  const fields = [
    'ip.src',
    'ip.dst',
    'tcp.srcport',
    'tcp.dstport',
    'ip.id',
    'tcp.seq_raw',
    'tcp.ack_raw',
    'tcp.flags',
    'tcp.options.timestamp.tsval',
    'tcp.len',
  ];
  const ef = fields.map((f) => `-e ${f}`).join(' ');
  const t0 = performance.now();
  execSync(`tshark -n -r ${a} -T fields ${ef} | LC_ALL=C sort > ${dir}/a.txt`, { stdio: 'ignore', shell: '/bin/bash' });
  execSync(`tshark -n -r ${b} -T fields ${ef} | LC_ALL=C sort > ${dir}/b.txt`, { stdio: 'ignore', shell: '/bin/bash' });
  const out = execSync(`LC_ALL=C comm -23 ${dir}/a.txt ${dir}/b.txt | wc -l`, { shell: '/bin/bash' }).toString();
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, missing: Number(out.trim()) };
}

function mb(bytes: number): number {
  return bytes / 1e6;
}

const df = execSync('df -k --output=avail /tmp | tail -1').toString().trim();
const needKiB = (WITH_BIG ? BIG_MIB * 2.1 : MIB * 2.1) * 1024 + 64 * 1024;
if (Number(df) < needKiB) {
  console.error(`not enough space in /tmp (${df} KiB free, need ${Math.round(needKiB)} KiB)`);
  process.exit(2);
}
const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-bench-captures-'));
try {
  console.log(`# captures benchmark (node ${process.version})`);
  const g = generate(dir, MIB, 'mid');
  const bytes = statSync(g.a).size + statSync(g.b).size;
  console.log(
    `generated 2 × ${MIB} MiB: ${g.packets} packets, ${g.dropped} missing from the second capture (${((100 * g.dropped) / g.packets).toFixed(3)} %)`,
  );
  lvsdoctor(g.a, g.b); // warm-up (also warms the page cache)
  const runs = [lvsdoctor(g.a, g.b), lvsdoctor(g.a, g.b), lvsdoctor(g.a, g.b)].sort((x, y) => x.seconds - y.seconds);
  const ours = runs[1]!;
  const ourRate = mb(bytes) / ours.seconds;
  console.log(
    `lvsdoctor captures: ${ours.seconds.toFixed(2)} s for ${mb(bytes).toFixed(0)} MB = ${ourRate.toFixed(0)} MB/s, found ${ours.missing} missing from the second (vanished + not captured; median of 3)`,
  );
  if (WITH_TSHARK) {
    const has = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).status === 0;
    if (!has) console.log('tshark pipeline: skipped (tshark is not installed)');
    else {
      const ts = tsharkPipeline(g.a, g.b, dir);
      const tsRate = mb(bytes) / ts.seconds;
      console.log(
        `tshark pipeline (tshark -T fields on both, sort, comm): ${ts.seconds.toFixed(1)} s = ${tsRate.toFixed(1)} MB/s, found ${ts.missing} missing`,
      );
      console.log(`ratio: lvsdoctor is ${(ourRate / tsRate).toFixed(0)}× the tshark pipeline`);
    }
  }
  if (WITH_MEMORY) {
    memory(`1 × ${MIB} MiB of full-size frames`, [g.a]);
    memory(`2 × ${MIB} MiB of full-size frames`, [g.a, g.b]);
    const small = generate(dir, MIB, 'small', 16);
    memory(`1 × ${MIB} MiB of small packets`, [small.a]);
    rmSync(small.a);
    rmSync(small.b);
  }
  rmSync(g.a);
  rmSync(g.b);
  if (WITH_BIG) {
    const big = generate(dir, BIG_MIB, 'big');
    const bb = statSync(big.a).size + statSync(big.b).size;
    console.log(`generated 2 × ${BIG_MIB} MiB: ${big.packets} packets, ${big.dropped} missing from the second capture`);
    const r = lvsdoctor(big.a, big.b);
    console.log(
      `lvsdoctor captures, 2 × ${BIG_MIB} MiB: ${r.seconds.toFixed(2)} s = ${(mb(bb) / r.seconds).toFixed(0)} MB/s, found ${r.missing} missing`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
