/**
 * Peak memory per input kind (issue 15): for each text input kind, a generated input of N MB is given to the
 * bundled CLI (`bin/lvsdoctor.mjs`, built first with `npm run build`) under `/usr/bin/time -f %M`, and the peak
 * resident set is reported as a ratio to the input's size, beside the baseline of the same CLI on the founding case
 * measured in the same run. Inputs over a limit of docs/limits.md are refused before they are read (that figure
 * is the refusal's). Files go to a temporary directory and are deleted.
 *   npx tsx bench/memory-inputs.ts [--mb 30] [--only ipvsadm,keepalived,…]
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const MB = Number(arg('--mb') ?? 30);
const ONLY = arg('--only')?.split(',');
const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'bin', 'lvsdoctor.mjs');
const EX = join(ROOT, 'examples', 'kvm-lvs-dr');
const BUNDLE = join(ROOT, 'fixtures', 'collect', 'founding-real', 'lvsdoctor-bundle-hypervisor-host1');
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-mem-'));

/** Lines from `line(i)` until `bytes` are written. */
function fill(bytes: number, head: string, line: (i: number) => string, tail = ''): string {
  const parts = [head];
  let n = head.length;
  for (let i = 0; n < bytes; i++) {
    const l = line(i);
    parts.push(l);
    n += l.length;
  }
  parts.push(tail);
  return parts.join('');
}

const q = (i: number) => `${(i >> 8) & 255}.${i & 255}`;

interface Kind {
  readonly name: string;
  /** Writes the input of `bytes` under `dir`; returns the CLI arguments and the input file. */
  readonly make: (dir: string, bytes: number) => { argv: string[]; file: string };
}

/** A copy of the example with `rel` replaced, checked with `check`. */
function inScenario(rel: string, text: (bytes: number) => string): Kind['make'] {
  return (dir, bytes) => {
    const scn = join(dir, 'scn');
    cpSync(EX, scn, { recursive: true });
    writeFileSync(join(scn, rel), text(bytes));
    return { argv: ['check', scn], file: join(scn, rel) };
  };
}

/** A copy of the founding bundle with `rel` replaced, imported. */
function inBundle(rel: string, text: (bytes: number) => string): Kind['make'] {
  return (dir, bytes) => {
    const b = join(dir, 'bundle');
    cpSync(BUNDLE, b, { recursive: true });
    writeFileSync(join(b, rel), text(bytes));
    return { argv: ['import', b, '-o', join(dir, 'out')], file: join(b, rel) };
  };
}

const KINDS: Kind[] = [
  {
    name: 'ipvsadm',
    make: (dir, bytes) => {
      const f = join(dir, 'ipvsadm.txt');
      writeFileSync(
        f,
        fill(
          bytes,
          'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n',
          (i) =>
            i % 9 === 0
              ? `TCP  198.51.${q(Math.floor(i / 9))}:${1000 + (Math.floor(i / 9) >> 16)} wlc\n`
              : `  -> 203.0.113.${i % 9}:${80 + (i % 9)}            Route   1      0          0\n`,
        ),
      );
      return { argv: ['ipvs', 'show', f], file: f };
    },
  },
  {
    name: 'keepalived',
    make: (dir, bytes) => {
      const f = join(dir, 'keepalived.conf');
      writeFileSync(
        f,
        fill(
          bytes,
          '',
          (i) =>
            `virtual_server 198.51.${q(i)} ${1000 + (i >> 16)} {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n${[
              1, 2, 3, 4,
            ]
              .map((d) => `  real_server 203.0.113.${d} ${1000 + (i >> 16)} {\n    weight 1\n  }\n`)
              .join('')}}\n`,
        ),
      );
      return { argv: ['ipvs', 'show', f], file: f };
    },
  },
  {
    name: 'sysctl',
    make: inScenario('director1/sysctl.txt', (bytes) =>
      fill(bytes, '', (i) => `net.ipv4.conf.eth${i % 1000}.x${i} = ${i % 2}\n`),
    ),
  },
  {
    name: 'ip-addr',
    make: inScenario('director1/ip-addr.txt', (bytes) =>
      fill(
        bytes,
        '',
        (i) =>
          `${i + 1}: d${i}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n    link/ether 52:54:00:00:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')} brd ff:ff:ff:ff:ff:ff\n    inet 10.${q(i)}.1/32 scope global d${i}\n       valid_lft forever preferred_lft forever\n`,
      ),
    ),
  },
  {
    name: 'iptables-save',
    make: inBundle('cmd/iptables-save.out', (bytes) =>
      fill(
        bytes,
        '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n',
        (i) => `[${i}:${i * 60}] -A INPUT -s 198.51.${q(i)}/32 -p tcp -m tcp --dport ${i % 65535} -j ACCEPT\n`,
        'COMMIT\n',
      ),
    ),
  },
  {
    name: 'ebtables',
    make: inBundle('cmd/ebtables-nat.out', (bytes) =>
      fill(
        bytes,
        'Bridge table: nat\n\nBridge chain: PREROUTING, entries: 0, policy: ACCEPT\n',
        (i) => `-p IPv4 --ip-src 198.51.${q(i)} -j ACCEPT , pcnt = ${i} -- bcnt = ${i * 60}\n`,
        '\nBridge chain: OUTPUT, entries: 0, policy: ACCEPT\n\nBridge chain: POSTROUTING, entries: 0, policy: ACCEPT\n',
      ),
    ),
  },
  {
    name: 'tcpdump-text',
    make: (dir, bytes) => {
      const f = join(dir, 'cap.txt');
      writeFileSync(
        f,
        fill(bytes, '', (i) => {
          const us = i * 37;
          const t = `${String(Math.floor(us / 3_600_000_000) % 24).padStart(2, '0')}:${String(Math.floor(us / 60_000_000) % 60).padStart(2, '0')}:${String(Math.floor(us / 1_000_000) % 60).padStart(2, '0')}.${String(us % 1_000_000).padStart(6, '0')}`;
          return `${t} IP 198.51.${q(i >> 4)}.${40000 + (i % 16)} > 192.0.2.208.80: Flags [S], seq ${i}, win 64240, options [mss 1460,sackOK,TS val ${i} ecr 0,nop,wscale 7], length 0\n`;
        }),
      );
      return { argv: ['captures', `${f}@host1:br0`], file: f };
    },
  },
];

function peak(argv: string[]): { kb: number; code: number; seconds: number; err: string } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, CLI, ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  const lines = r.stderr.trim().split('\n');
  return {
    kb: Number(lines.at(-1)),
    code: r.status ?? -1,
    seconds: (performance.now() - t0) / 1000,
    err: lines.slice(0, -1).slice(-1)[0] ?? '',
  };
}

try {
  const base = peak(['check', EX]);
  console.log(`baseline: check of the founding case: ${(base.kb / 1024).toFixed(0)} MB peak`);
  console.log('kind           input MB  peak MB  peak/input  exit  seconds  (last line of stderr)');
  for (const k of KINDS) {
    if (ONLY && !ONLY.includes(k.name)) continue;
    const dir = join(tmp, k.name);
    mkdirSync(dir);
    const { argv, file } = k.make(dir, MB * 1e6);
    const size = statSync(file).size;
    const r = peak(argv);
    const mb = r.kb / 1024;
    console.log(
      `${k.name.padEnd(14)} ${(size / 1e6).toFixed(1).padStart(8)} ${mb.toFixed(0).padStart(8)} ${(mb / (size / 1e6)).toFixed(1).padStart(11)} ${String(r.code).padStart(5)} ${r.seconds.toFixed(1).padStart(8)}  ${r.err.slice(0, 100)}`,
    );
    rmSync(dir, { recursive: true, force: true });
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
