import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import { RECORDINGS as REC } from '../../test/support/recordings.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBinding } from '../libvirt/compile.ts';
import type { NwFilter } from '../libvirt/nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { formatIssue } from '../source/issue.ts';
import type { EbTable } from './ebtables-model.ts';
import { guessEbStyle, readEbtablesList, readEbtablesSave } from './ebtables-read.ts';
import { renderEbtablesList, renderEbtablesSave } from './ebtables-render.ts';

const SUITE = externalSuite('conformance/libvirt-tests/');
const EXPECTED = SUITE.url('expected/');

function cases(file: string): string[] {
  if (SUITE.skip !== undefined) return [];
  return readdirSync(EXPECTED)
    .filter((d) => existsSync(new URL(`${d}/${file}`, EXPECTED)))
    .sort();
}

const read = (u: URL) => readFileSync(u, 'utf8');
const withoutComments = (text: string) =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');

/** The table without origins and counters, for structural comparison. */
function stripEb(t: EbTable): unknown {
  return {
    name: t.name,
    chains: t.chains.map((c) => ({
      name: c.name,
      builtin: c.builtin,
      policy: c.policy,
      rules: c.rules.map(({ origin: _o, counters: _c, ...r }) => r),
    })),
  };
}

describe('readEbtablesList on the libvirt conformance outputs', () => {
  skippedBecause(SUITE.skip);
  it.each(cases('ebtables-nat-L.txt'))('reads and re-renders %s byte for byte', (name) => {
    const text = read(new URL(`${name}/ebtables-nat-L.txt`, EXPECTED));
    const r = readEbtablesList(text, `${name}/ebtables-nat-L.txt`);
    expect(r.issues.map(formatIssue)).toEqual([]);
    expect(renderEbtablesList(r.value!, { style: 'nft' })).toBe(text);
  });
});

describe('readEbtablesList in legacy style', () => {
  skippedBecause(SUITE.skip);
  it.each(cases('ebtables-nat-L.txt'))('reads back the legacy rendering of %s, with counters', (name) => {
    const nft = readEbtablesList(read(new URL(`${name}/ebtables-nat-L.txt`, EXPECTED)), 'nft.txt').value!;
    const legacy = renderEbtablesList(nft, { style: 'legacy', counters: true });
    const r = readEbtablesList(legacy, 'legacy.txt', { style: 'legacy' });
    expect(r.issues.map(formatIssue)).toEqual([]);
    expect(stripEb(r.value!)).toEqual(stripEb(nft));
    expect(renderEbtablesList(r.value!, { style: 'legacy', counters: true })).toBe(legacy);
  });
});

describe('readEbtablesSave on the libvirt conformance outputs', () => {
  skippedBecause(SUITE.skip);
  it.each(cases('ebtables-save.txt'))('reads and re-renders %s byte for byte', (name) => {
    const text = read(new URL(`${name}/ebtables-save.txt`, EXPECTED));
    const r = readEbtablesSave(text, `${name}/ebtables-save.txt`);
    expect(r.issues.map(formatIssue)).toEqual([]);
    expect(r.value!.map((t) => renderEbtablesSave(t)).join('')).toBe(withoutComments(text));
  });
});

const recordings = readdirSync(REC)
  .filter((d) => /^s\d/.test(d))
  .flatMap((d) =>
    readdirSync(new URL(`${d}/`, REC))
      .filter((f) => f.startsWith('ebtables-t-nat-L'))
      .map((f) => `${d}/${f}`),
  )
  .sort();

describe('readEbtablesList on the libvirt 9.0 recordings', () => {
  it('finds the recordings', () => {
    expect(recordings.length).toBeGreaterThanOrEqual(6);
  });

  it.each(recordings)('reads and re-renders %s byte for byte, also with counters', (p) => {
    const text = read(new URL(p, REC));
    const r = readEbtablesList(text, p);
    expect(r.issues).toEqual([]);
    expect(renderEbtablesList(r.value!, { style: 'nft' })).toBe(text);
    const counted = renderEbtablesList(r.value!, { style: 'nft', counters: true });
    const again = readEbtablesList(counted, p);
    expect(again.issues).toEqual([]);
    expect(stripEb(again.value!)).toEqual(stripEb(r.value!));
    expect(renderEbtablesList(again.value!, { style: 'nft', counters: true })).toBe(counted);
  });
});

function binding(p: string) {
  const r = readFilterBindingXml(read(new URL(p, REC)), p);
  expect(r.issues).toEqual([]);
  return r.value!;
}

function filter(p: string): NwFilter {
  const r = readNwfilterXml(read(new URL(p, REC)), p);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}

describe('a read listing equals the compiled table', () => {
  const scenarios: [string, string[]][] = [
    ['s1-clean-traffic-one-ip', []],
    ['s2-clean-traffic-ip-plus-vip', []],
    [
      's6-lvs-dr-director-workaround',
      ['filter-clean-traffic-lvs-dr.xml', 'filter-no-ip-spoofing-lvs-dr.xml'].map(
        (f) => `s6-lvs-dr-director-workaround/${f}`,
      ),
    ],
  ];
  it.each(scenarios)('for %s, ignoring origins', (dir, filters) => {
    const c = compileBinding(binding(`${dir}/binding.xml`), filterRegistry(filters.map(filter)));
    const r = readEbtablesList(read(new URL(`${dir}/ebtables-t-nat-L.txt`, REC)), 'listing.txt');
    expect(r.issues).toEqual([]);
    // The listing orders user chains by name; the model keeps creation order — compare chain by chain.
    const byName = (t: EbTable) => {
      const s = stripEb(t) as { chains: { name: string }[] };
      return [...s.chains].sort((a, b) => (a.name < b.name ? -1 : 1));
    };
    expect(byName(r.value!)).toEqual(byName(c.nat));
  });
});

describe('readEbtablesList details', () => {
  const legacy = [
    'Bridge table: nat',
    '',
    'Bridge chain: PREROUTING, entries: 1, policy: ACCEPT',
    '-i vnet0 -j libvirt-I-vnet0 , pcnt = 12 -- bcnt = 840',
    '',
    'Bridge chain: libvirt-I-vnet0, entries: 3, policy: ACCEPT',
    '-s ! 2:0:73:b6:53:c8 -j DROP , pcnt = 0 -- bcnt = 0',
    '-p 0x8035 -j ACCEPT , pcnt = 1 -- bcnt = 60',
    '-p 802_1Q --vlan-encap ARP -j DROP , pcnt = 0 -- bcnt = 0',
    '',
  ].join('\n');

  it('reads a legacy listing with --Lc counters and re-renders it', () => {
    expect(guessEbStyle(legacy)).toBe('legacy');
    const r = readEbtablesList(legacy, 'host.txt');
    expect(r.issues).toEqual([]);
    const t = r.value!;
    expect(t.chains[0]!.rules[0]!.counters).toEqual({ packets: 12, bytes: 840 });
    expect(t.chains[1]!.rules[0]!.src).toEqual({ addr: '02:00:73:b6:53:c8', negated: true });
    expect(t.chains[1]!.rules[2]!.matches).toEqual([{ kind: 'vlan', encap: { value: 0x0806, negated: false } }]);
    expect(renderEbtablesList(t, { style: 'legacy', counters: true })).toBe(legacy);
  });

  it('gives every rule its listing line as origin', () => {
    const r = readEbtablesList(legacy, 'host.txt');
    const rule = r.value!.chains[1]!.rules[1]!;
    expect(rule.origin.kind).toBe('file');
    expect(rule.origin.pos).toEqual({ file: 'host.txt', line: 8 });
  });

  it('reports an unknown option with file:line and keeps reading', () => {
    const text = [
      'Bridge table: filter',
      '',
      'Bridge chain: FORWARD, entries: 3, policy: DROP',
      '-p IPv4 --mark 0x1 -j ACCEPT',
      '-p IPv4 --ip-src 10.0.0.0/8 -j ACCEPT',
      '-j mark --mark-set 0x2',
      '',
    ].join('\n');
    const r = readEbtablesList(text, 'fw.txt');
    expect(r.value!.name).toBe('filter');
    expect(r.value!.chains[0]!.rules).toHaveLength(1);
    expect(r.value!.chains[0]!.policy).toBe('DROP');
    expect(r.issues.map(formatIssue)).toEqual([
      'fw.txt:4: unsupported: option --mark is not modelled (expected -p, -s, -d, -i, -o, --logical-in/out, --ip-*, --ip6-*, --arp-*, --vlan-*, --stp-* or -j); rule left out of the model [ebtables-unsupported]',
      'fw.txt:6: unsupported: target mark is not modelled (expected ACCEPT, DROP, RETURN, CONTINUE or a chain); rule left out of the model [ebtables-unsupported]',
    ]);
  });

  it('reports bad values and stray lines without throwing', () => {
    const text = 'Bridge table: nat\nhello\nBridge chain: PREROUTING, entries: 1, policy: ACCEPT\n-s zz -j DROP\n';
    const r = readEbtablesList(text, 'x.txt');
    expect(r.issues.map((i) => `${i.pos?.line} ${i.code}`)).toEqual(['2 ebtables-stray-line', '4 ebtables-bad-rule']);
  });

  it('guesses the legacy style of a compiled legacy listing and the nft style of a recording', () => {
    const b = binding('s1-clean-traffic-one-ip/binding.xml');
    const legacyText = renderEbtablesList(compileBinding(b, filterRegistry(), { style: 'legacy' }).nat, {
      style: 'legacy',
    });
    expect(guessEbStyle(legacyText)).toBe('legacy');
    expect(guessEbStyle(read(new URL('s1-clean-traffic-one-ip/ebtables-t-nat-L.txt', REC)))).toBe('nft');
    const r = readEbtablesList(legacyText, 'legacy.txt');
    expect(r.issues).toEqual([]);
    expect(renderEbtablesList(r.value!, { style: 'legacy' })).toBe(legacyText);
  });

  it('reads --Ln rule numbers and a listing of the broute table', () => {
    const text = 'Bridge table: broute\n\nBridge chain: BROUTING, entries: 1, policy: ACCEPT\n1. -p IPv6 -j DROP \n';
    const r = readEbtablesList(text, 'b.txt');
    expect(r.issues).toEqual([]);
    expect(r.value!.chains[0]!.builtin).toBe(true);
    expect(r.value!.chains[0]!.rules[0]!.proto).toEqual({ kind: 'ethertype', value: 0x86dd, negated: false });
  });

  it('reads every table of an ebtables-save and gives user chains the ebtables-nft policy', () => {
    const text = [
      '# Generated by ebtables-save v1.8.9 (nf_tables)',
      '*filter',
      ':INPUT ACCEPT',
      ':FORWARD DROP',
      ':OUTPUT ACCEPT',
      ':mine ACCEPT',
      '-A FORWARD -j mine -c 5 300',
      '-A mine -p ARP -j ACCEPT',
      '*nat',
      ':PREROUTING ACCEPT',
      '-A PREROUTING -i vnet0 -j nowhere',
      '*bogus',
      ':X ACCEPT',
    ].join('\n');
    const r = readEbtablesSave(text, 's.txt');
    expect(r.value!.map((t) => t.name)).toEqual(['filter', 'nat']);
    const [f] = r.value!;
    expect(f!.chains.map((c) => [c.name, c.policy, c.policyOrigin.kind])).toEqual([
      ['INPUT', 'ACCEPT', 'file'],
      ['FORWARD', 'DROP', 'file'],
      ['OUTPUT', 'ACCEPT', 'file'],
      ['mine', 'RETURN', 'implicit'],
    ]);
    expect(f!.chains[1]!.rules[0]!.counters).toEqual({ packets: 5, bytes: 300 });
    expect(r.issues.map((i) => `${i.pos?.line} ${i.code}`)).toEqual(['12 ebtables-bad-table']);
  });

  it('reads the well-known MAC names and masks', () => {
    const text =
      'Bridge table: nat\n\nBridge chain: OUTPUT, entries: 2, policy: ACCEPT\n-d Multicast -j DROP\n-s 02:00:00:00:00:00/ff:ff:ff:00:00:00 --ip-src 10.1.2.2/255.0.255.0 -j ACCEPT\n';
    const r = readEbtablesList(text, 'x.txt');
    expect(r.issues).toEqual([]);
    expect(renderEbtablesList(r.value!, { style: 'nft' })).toBe(text);
  });
});
