import { describe, expect, it } from 'vitest';
import { readRecording as read } from '../../test/support/recordings.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBinding } from '../libvirt/compile.ts';
import { readFilterBindingXml, readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { compareEbRulesets, compareIptRulesets, compareRulesets, ebRuleKey } from './drift.ts';
import type { EbTable } from './ebtables-model.ts';
import { readEbtablesList } from './ebtables-read.ts';
import { renderEbtablesList } from './ebtables-render.ts';
import type { IptTable } from './iptables-model.ts';
import { readIptablesSave } from './iptables-read.ts';

function compiled(dir: string, filters: string[] = []) {
  const b = readFilterBindingXml(read(`${dir}/binding.xml`), `${dir}/binding.xml`).value!;
  const custom = filters.map((f) => readNwfilterXml(read(`${dir}/${f}`), f).value!);
  return compileBinding(b, filterRegistry(custom));
}

/** Edits one line of a listing (1-based line numbers), for made-up drift. */
function editLines(text: string, edit: (lines: string[]) => void): string {
  const lines = text.split('\n');
  edit(lines);
  return lines.join('\n');
}

function installed(text: string): EbTable {
  const r = readEbtablesList(text, 'host/ebtables-t-nat-L.txt');
  expect(r.issues.filter((i) => i.code !== 'ebtables-entries-mismatch')).toEqual([]);
  return r.value!;
}

describe('compareRulesets on ebtables', () => {
  const c = compiled('s2-clean-traffic-ip-plus-vip');
  const listing = read('s2-clean-traffic-ip-plus-vip/ebtables-t-nat-L.txt');

  it('finds no drift between the compiled binding and the recorded host listing', () => {
    expect(compareRulesets(c.nat, installed(listing))).toEqual([]);
  });

  it('ignores counters', () => {
    const counted = renderEbtablesList(installed(listing), { style: 'nft', counters: true }).replace(
      /pcnt = 0 -- bcnt = 0/,
      'pcnt = 17 -- bcnt = 1020',
    );
    expect(counted).toContain('pcnt = 17');
    expect(compareRulesets(c.nat, installed(counted))).toEqual([]);
  });

  it('reports a deleted rule as missing, with the expected rule and its XML origin', () => {
    const text = editLines(listing, (l) => {
      const k = l.indexOf('-p ARP --arp-ip-src 192.0.2.100 -j RETURN');
      l.splice(k, 1);
    });
    const d = compareRulesets(c.nat, installed(text));
    expect(d.map((x) => x.message)).toEqual([
      'rule 2 of I-vnet0-arp-ip is missing: -p ARP --arp-ip-src 192.0.2.100 -j RETURN',
    ]);
    expect(d[0]!.kind).toBe('rule-missing');
    expect(d[0]!.expectedIndex).toBe(2);
    expect(d[0]!.expected?.kind).toBe('nwfilter-rule');
  });

  it('reports an added rule as extra, with its listing line', () => {
    const text = editLines(listing, (l) => {
      const k = l.indexOf('-p IPv4 --ip-src 192.0.2.100 -j RETURN');
      l.splice(k + 1, 0, '-p IPv4 --ip-src 192.0.2.150 -j RETURN');
    });
    const d = compareRulesets(c.nat, installed(text));
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({
      kind: 'rule-extra',
      chain: 'I-vnet0-ipv4-ip',
      installedIndex: 4,
      rule: '-p IPv4 --ip-src 192.0.2.150 -j RETURN',
    });
    expect(d[0]!.installed?.pos?.line).toBe(listing.split('\n').indexOf('-p IPv4 --ip-src 192.0.2.100 -j RETURN') + 2);
  });

  it('reports a missing chain once, and the jump into it as a missing rule', () => {
    const text = editLines(listing, (l) => {
      const k = l.indexOf('Bridge chain: I-vnet0-rarp, entries: 2, policy: RETURN');
      l.splice(k, 4);
      l.splice(l.indexOf('-p RARP -j I-vnet0-rarp'), 1);
    });
    const d = compareRulesets(c.nat, installed(text));
    // Items follow the expected table's chain order (creation order: libvirt-I-vnet0 first).
    expect(d.map((x) => [x.kind, x.chain])).toEqual([
      ['rule-missing', 'libvirt-I-vnet0'],
      ['chain-missing', 'I-vnet0-rarp'],
    ]);
    expect(d[1]!.message).toBe('chain I-vnet0-rarp (2 rules) is not installed');
  });

  it('lists the rules of a missing chain on request', () => {
    const noRarp = { ...c.nat, chains: c.nat.chains.filter((x) => x.name !== 'O-vnet0-rarp') };
    const d = compareEbRulesets(c.nat, noRarp, { chainRules: true });
    expect(d.map((x) => x.kind)).toEqual(['chain-missing', 'rule-missing', 'rule-missing']);
  });

  it('reports an extra chain and reordered rules', () => {
    const text = editLines(listing, (l) => {
      const k = l.indexOf('-p IPv4 --ip-src 192.0.2.200 -j RETURN');
      [l[k], l[k + 1]] = [l[k + 1]!, l[k]!];
      l.push('Bridge chain: my-chain, entries: 1, policy: RETURN', '-j ACCEPT', '');
    });
    const d = compareRulesets(c.nat, installed(text));
    expect(d.map((x) => x.message)).toEqual([
      'rule 2 of I-vnet0-ipv4-ip is installed at position 3: -p IPv4 --ip-src 192.0.2.200 -j RETURN',
      'chain my-chain (1 rules) is installed but not expected',
    ]);
  });

  it('reports policy differences unless told to ignore them, and can restrict the chains', () => {
    const text = listing.replace(
      'Bridge chain: PREROUTING, entries: 1, policy: ACCEPT',
      'Bridge chain: PREROUTING, entries: 1, policy: DROP',
    );
    const t = installed(text);
    expect(compareRulesets(c.nat, t).map((x) => [x.kind, x.expectedPolicy, x.installedPolicy])).toEqual([
      ['policy', 'ACCEPT', 'DROP'],
    ]);
    expect(compareRulesets(c.nat, t, { ignorePolicies: true })).toEqual([]);
    expect(compareRulesets(c.nat, t, { chains: (n) => n.startsWith('I-') })).toEqual([]);
  });

  it('treats an all-ones MAC mask as no mask', () => {
    const r = c.nat.chains.find((x) => x.name === 'I-vnet0-mac')!.rules[0]!;
    expect(ebRuleKey({ ...r, src: { ...r.src!, mask: 'ff:ff:ff:ff:ff:ff' as never } })).toBe(ebRuleKey(r));
  });
});

describe('compareRulesets on iptables', () => {
  const c = compiled('s4-custom-director-filter', ['filter-lvs-director-traffic.xml']);
  const s = read('s4-custom-director-filter/iptables-S.txt');
  const lines = s.trimEnd().split('\n');
  const save = (extra: (rules: string[]) => void = () => {}) => {
    const rules = lines.filter((l) => l.startsWith('-A'));
    extra(rules);
    return [
      '*filter',
      ...lines.flatMap((l) => {
        const p = /^-P (\S+) (\S+)$/.exec(l);
        if (p) return [`:${p[1]} ${p[2]} [0:0]`];
        const n = /^-N (\S+)$/.exec(l);
        return n ? [`:${n[1]} - [0:0]`] : [];
      }),
      ...rules,
      'COMMIT',
      '',
    ].join('\n');
  };
  const host = (text: string): IptTable => {
    const r = readIptablesSave(text, 'host/iptables-save.txt', 'ipv4');
    expect(r.issues).toEqual([]);
    return r.value![0]!;
  };

  it('finds no drift between the compiled s4 binding and the recorded iptables -S', () => {
    expect(compareRulesets(c.filter4, host(save()))).toEqual([]);
  });

  it('reports deleted, added and reordered rules per chain', () => {
    const text = save((rules) => {
      const fo = rules.findIndex((r) => r.startsWith('-A FO-vnet0'));
      const [gone] = rules.splice(fo, 1);
      rules.push('-A FO-vnet0 -p udp -j ACCEPT');
      expect(gone).toBeDefined();
    });
    const d = compareIptRulesets(c.filter4, host(text));
    expect(d.map((x) => [x.kind, x.chain, x.expectedIndex ?? x.installedIndex])).toEqual([
      ['rule-extra', 'FO-vnet0', 1],
      ['rule-missing', 'FO-vnet0', 1],
    ]);
    expect(d[0]!.rule).toBe('-A FO-vnet0 -p udp -j ACCEPT');
  });

  it('reports a missing FI- chain and its jump', () => {
    const text = save((rules) => {
      for (let k = rules.length - 1; k >= 0; k--) if (/FI-vnet0/.test(rules[k]!)) rules.splice(k, 1);
    }).replace(':FI-vnet0 - [0:0]\n', '');
    const d = compareIptRulesets(c.filter4, host(text));
    expect(d.map((x) => [x.kind, x.chain]).sort()).toEqual([
      ['chain-missing', 'FI-vnet0'],
      ['rule-missing', 'libvirt-in'],
    ]);
  });

  it('refuses to compare an ebtables table with an iptables table', () => {
    const mixed = compareRulesets as unknown as (a: unknown, b: unknown) => { kind: string }[];
    expect(mixed(c.nat, c.filter4).map((x) => x.kind)).toEqual(['table-mismatch']);
  });
});
