/**
 * The input kinds the fuzz driver covers: where their seeds come from (the project's fixtures and examples) and
 * how a mutated input is given to the CLI. Each case lives in a directory of its own; `outs` are the only paths a
 * command may create there.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
const EX = join(ROOT, 'examples', 'kvm-lvs-dr');
const BUNDLES = join(ROOT, 'fixtures', 'collect', 'founding-real');

export interface CaseSetup {
  readonly argv: readonly string[];
  /** Paths (relative to the case directory) the command may create. */
  readonly outs: readonly string[];
  /** The mutated file, as the command should name it in an error (its base name). */
  readonly file: string;
}

export interface Kind {
  readonly name: string;
  /** Seed files (absolute paths). */
  readonly seeds: () => readonly string[];
  /** Writes the case's inputs into `dir` with `bytes` in place of the seed; returns the command line. */
  readonly setup: (dir: string, bytes: Uint8Array, seed: string) => CaseSetup;
  /** Inputs of growing size k for the linear-time check: the same structure repeated or stretched k times. */
  readonly grow?: (k: number) => Uint8Array;
}

const files = (dir: string, re: RegExp): string[] =>
  readdirSync(dir)
    .filter((f) => re.test(f))
    .sort()
    .map((f) => join(dir, f));

const enc = new TextEncoder();

/** A copy of the example scenario with `rel` replaced by the mutated bytes; `lvsdoctor check DIR`. */
function scenarioCase(rel: string): Kind['setup'] {
  return (dir, bytes) => {
    const scn = join(dir, 'scn');
    cpSync(EX, scn, { recursive: true });
    writeFileSync(join(scn, rel), bytes);
    return { argv: ['check', scn], outs: [], file: rel.split('/').pop()! };
  };
}

/** A copy of host1's bundle with `rel` replaced; `lvsdoctor import BUNDLE -o out`. */
function bundleDirCase(rel: string): Kind['setup'] {
  return (dir, bytes) => {
    const b = join(dir, 'bundle');
    cpSync(join(BUNDLES, 'lvsdoctor-bundle-hypervisor-host1'), b, { recursive: true });
    writeFileSync(join(b, rel), bytes);
    return { argv: ['import', b, '-o', join(dir, 'out')], outs: ['out'], file: rel.split('/').pop()! };
  };
}

let tarSeed: string | undefined;
/** host1's bundle as the collector packs it (.tar.gz), made once with the system tar. */
function bundleTarGz(scratch: string): string {
  if (tarSeed) return tarSeed;
  mkdirSync(scratch, { recursive: true });
  const f = join(scratch, 'lvsdoctor-bundle-hypervisor-host1.tar.gz');
  execFileSync('tar', ['-czf', f, '-C', BUNDLES, 'lvsdoctor-bundle-hypervisor-host1']);
  tarSeed = f;
  return f;
}

const line = (s: string, k: number) => enc.encode(s.repeat(k));

export function kinds(scratch: string): readonly Kind[] {
  return [
    {
      name: 'libvirt-xml',
      seeds: () => [...files(join(ROOT, 'fixtures', 'libvirt', 'cli'), /\.xml$/), join(EX, 'host1', 'r2-10105.xml')],
      setup: (dir, bytes) => {
        const f = join(dir, 'input.xml');
        writeFileSync(f, bytes);
        return { argv: ['nwfilter', 'compile', f], outs: [], file: 'input.xml' };
      },
      grow: (k) =>
        enc.encode(
          `<domain type='kvm'><name>a</name><devices>${"<interface type='bridge'><source bridge='br0'/><mac address='52:54:00:00:00:01'/></interface>".repeat(k)}</devices></domain>`,
        ),
    },
    {
      name: 'domain-xml-in-scenario',
      seeds: () => [join(EX, 'host1', 'r2-10105.xml')],
      setup: scenarioCase('host1/r2-10105.xml'),
      grow: (k) => enc.encode(`<domain type='kvm'><name>r2-10105</name>${'<x a="1"/>'.repeat(k)}</domain>`),
    },
    {
      name: 'scenario-yaml',
      seeds: () => [join(EX, 'scenario.yaml'), join(ROOT, 'examples', 'kvm-lvs-dr-fixed', 'scenario.yaml')],
      setup: scenarioCase('scenario.yaml'),
      grow: (k) => {
        const base = readFileSync(join(EX, 'scenario.yaml'), 'utf8');
        return enc.encode(`${base}${Array.from({ length: k }, (_, i) => `# comment ${i}\n`).join('')}`);
      },
    },
    {
      name: 'ip-addr',
      seeds: () => [join(EX, 'director1', 'ip-addr.txt'), join(EX, 'host1', 'ip-addr.txt')],
      setup: scenarioCase('director1/ip-addr.txt'),
      grow: (k) => enc.encode(`1: lo: <LOOPBACK,UP> mtu 65536${' '.repeat(k * 100)}x\n`),
    },
    {
      name: 'ip-route',
      seeds: () => [join(EX, 'director1', 'ip-route.txt')],
      setup: scenarioCase('director1/ip-route.txt'),
      grow: (k) => line('192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.200 \n', k),
    },
    {
      name: 'sysctl',
      seeds: () => [join(EX, 'director1', 'sysctl.txt')],
      setup: scenarioCase('director1/sysctl.txt'),
      grow: (k) => line('net.ipv4.conf.all.arp_ignore = 1\n', k),
    },
    {
      name: 'ipvsadm',
      seeds: () => [
        ...files(join(ROOT, 'fixtures', 'ipvs', 'listings'), /\.txt$/),
        ...files(join(ROOT, 'fixtures', 'ipvs', 'save'), /\.txt$/),
      ],
      setup: (dir, bytes) => {
        const f = join(dir, 'ipvsadm.txt');
        writeFileSync(f, bytes);
        return { argv: ['ipvs', 'show', f], outs: [], file: 'ipvsadm.txt' };
      },
      grow: (k) =>
        enc.encode(
          `IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  192.0.2.208:80 rr\n${Array.from({ length: k }, (_, i) => `  -> 198.51.${(i >> 8) & 255}.${i & 255}:80  Route   1      0          0\n`).join('')}`,
        ),
    },
    {
      name: 'keepalived',
      seeds: () => files(join(ROOT, 'fixtures', 'ipvs', 'keepalived'), /\.conf$/),
      setup: (dir, bytes) => {
        const f = join(dir, 'keepalived.conf');
        writeFileSync(f, bytes);
        return { argv: ['ipvs', 'show', f], outs: [], file: 'keepalived.conf' };
      },
      grow: (k) =>
        enc.encode(
          `virtual_server_group G {\n${'  192.0.2.208 80\n'.repeat(k)}}\nvirtual_server group G {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server 192.0.2.226 80 {\n    weight 1\n  }\n}\n`,
        ),
    },
    {
      name: 'ebtables-text',
      seeds: () => [join(BUNDLES, 'lvsdoctor-bundle-hypervisor-host1', 'cmd', 'ebtables-nat.out')],
      setup: bundleDirCase('cmd/ebtables-nat.out'),
      grow: (k) =>
        enc.encode(
          `Bridge table: nat\n\nBridge chain: PREROUTING, entries: 1, policy: ACCEPT\n-j ACCEPT ${' '.repeat(k * 100)}x, pcnt = 0 -- bcnt = 0\n`,
        ),
    },
    {
      name: 'iptables-text',
      seeds: () => [join(BUNDLES, 'lvsdoctor-bundle-hypervisor-host1', 'cmd', 'iptables-save.out')],
      setup: bundleDirCase('cmd/iptables-save.out'),
    },
    {
      name: 'bundle-manifest',
      seeds: () => [join(BUNDLES, 'lvsdoctor-bundle-hypervisor-host1', 'manifest.tsv')],
      setup: bundleDirCase('manifest.tsv'),
    },
    {
      name: 'bundle-tar-gz',
      seeds: () => [bundleTarGz(scratch)],
      setup: (dir, bytes) => {
        const f = join(dir, 'bundle.tar.gz');
        writeFileSync(f, bytes);
        return { argv: ['import', f, '-o', join(dir, 'out')], outs: ['out'], file: 'bundle.tar.gz' };
      },
    },
    {
      name: 'pcap',
      seeds: () => [join(ROOT, 'fixtures', 'tcpdump', 'corpus.pcap')],
      setup: (dir, bytes) => {
        const f = join(dir, 'cap.pcap');
        writeFileSync(f, bytes);
        return { argv: ['captures', `${f}@host1:br0`], outs: [], file: 'cap.pcap' };
      },
    },
    {
      name: 'pcapng',
      // Written by the real editcap from corpus.pcap (fixtures/tcpdump/README.md).
      seeds: () => [join(ROOT, 'fixtures', 'tcpdump', 'corpus.pcapng')],
      setup: (dir, bytes) => {
        const f = join(dir, 'cap.pcapng');
        writeFileSync(f, bytes);
        return { argv: ['captures', `${f}@host1:br0`], outs: [], file: 'cap.pcapng' };
      },
    },
    {
      name: 'tcpdump-text',
      seeds: () => [
        join(ROOT, 'fixtures', 'tcpdump', 'corpus.nn.txt'),
        join(ROOT, 'fixtures', 'tcpdump', 'corpus.e-vvv-nnn.txt'),
        ...files(join(ROOT, 'fixtures', 'captures'), /\.txt$/),
      ],
      setup: (dir, bytes) => {
        const f = join(dir, 'cap.txt');
        writeFileSync(f, bytes);
        return { argv: ['captures', `${f}@host1:br0`], outs: [], file: 'cap.txt' };
      },
      grow: (k) =>
        line(
          '11:39:19.372804 IP 192.243.119.145.51643 > 192.0.2.208.80: Flags [S], seq 3639534333, win 14600, length 0\n',
          k,
        ),
    },
  ];
}
