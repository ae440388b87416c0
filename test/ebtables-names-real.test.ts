/**
 * ebtables-nft as the oracle for the names `ebtables -L` prints (protocols from /etc/ethertypes, `--arp-ptype` in hex,
 * STP types and flags by name, VLAN encapsulation, IP protocols): each rule is added to a chain of the nat table in a
 * network namespace created here, and the real listing must be what lvsdoctor reads back from the command line and
 * renders. Root only; skipped with the reason otherwise. The namespace is removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { readEbtablesList } from '../src/netfilter/ebtables-read.ts';
import { renderEbtablesList } from '../src/netfilter/ebtables-render.ts';

const NS = `lvsdeb${process.pid}`;
const has = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const SKIP =
  process.getuid?.() !== 0
    ? 'not root (needs a network namespace)'
    : !has('ebtables') || !has('ip')
      ? 'ebtables or ip is not installed'
      : !/nf_tables/.test(spawnSync('ebtables', ['--version'], { encoding: 'utf8' }).stdout ?? '')
        ? 'ebtables is not ebtables-nft'
        : undefined;

const RULES = [
  '-p 0x88cc -j ACCEPT',
  '-p 0x0800 -j ACCEPT',
  '-p 0x8035 -j ACCEPT',
  '-p 0x88a8 -j ACCEPT',
  '-p 0x888e -j ACCEPT',
  '-p 0x8847 -j ACCEPT',
  '-p 0x9000 -j ACCEPT',
  '-p 0x88f7 -j ACCEPT',
  '-p 0x1234 -j DROP',
  '-p ! 0x86dd -j DROP',
  '-p ARP --arp-ptype 0x800 -j ACCEPT',
  '-p ARP --arp-ptype ! 0x86dd -j ACCEPT',
  '-p ARP --arp-op 1 --arp-htype 1 -j ACCEPT',
  '-p ARP --arp-op 2 -j DROP',
  '-d 01:80:c2:00:00:00 --stp-type 0x80 -j ACCEPT',
  '-d 01:80:c2:00:00:00 --stp-type 0 -j ACCEPT',
  '-d 01:80:c2:00:00:00 --stp-type 5 -j ACCEPT',
  '-d 01:80:c2:00:00:00 --stp-flags 1 -j ACCEPT',
  '-d 01:80:c2:00:00:00 --stp-flags 0x80 -j ACCEPT',
  '-d 01:80:c2:00:00:00 --stp-flags 68 -j ACCEPT',
  '-p 802_1Q --vlan-id 42 --vlan-encap 0x0800 -j ACCEPT',
  '-p 802_1Q --vlan-encap 0x88cc -j ACCEPT',
  '-p IPv4 --ip-proto 17 -j ACCEPT',
  '-p IPv4 --ip-proto 112 -j ACCEPT',
  '-p IPv6 --ip6-proto 58 -j ACCEPT',
];

function sh(args: string[]): string {
  const r = spawnSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describe.skipIf(SKIP !== undefined)(`ebtables -L names, held to ebtables-nft${SKIP ? ` (${SKIP})` : ''}`, () => {
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', NS]);
  });

  it('prints every rule as ebtables-nft lists it, after reading the command line back', () => {
    expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
    sh(['ebtables', '-t', 'nat', '-N', 'T']);
    for (const r of RULES) sh(['ebtables', '-t', 'nat', '-A', 'T', ...r.split(' ')]);
    const real = sh(['ebtables', '-t', 'nat', '-L']);
    const typed = real.replace(/(Bridge chain: T, entries: \d+, policy: RETURN\n)[\s\S]*$/, `$1${RULES.join('\n')}\n`);
    const read = readEbtablesList(typed, 'typed.txt', { style: 'nft' });
    expect(read.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(renderEbtablesList(read.value!, { style: 'nft' })).toBe(real);
  });
});
