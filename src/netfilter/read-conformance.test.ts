/**
 * Readers against the compiler on libvirt's conformance inputs: what lvsdoctor reads from each recorded output of a
 * real libvirt 9.0.0 shows no drift against what it compiles from the same XML (files read from ../shared).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Mac } from '../addr/mac.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBinding } from '../libvirt/compile.ts';
import { readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { compareRulesets } from './drift.ts';
import { readEbtablesList } from './ebtables-read.ts';
import { readIptablesSave } from './iptables-read.ts';

const DIR = new URL('../../../shared/conformance/libvirt-tests/', import.meta.url);
const cases = existsSync(DIR)
  ? readdirSync(new URL('inputs/', DIR))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => f.replace(/\.xml$/, ''))
      .sort()
  : [];

function compile(name: string) {
  const f = readNwfilterXml(readFileSync(new URL(`inputs/${name}.xml`, DIR), 'utf8'), `${name}.xml`);
  return compileBinding(
    {
      ownerName: `vm-${name}`,
      portdev: 'vnet0',
      mac: '52:54:00:12:34:56' as Mac,
      filter: 'tck-testcase',
      params: new Map([
        ['IPSETNAME', ['tck_test']],
        ['A', ['1.1.1.1', '2.2.2.2', '3.3.3.3', '3.3.3.3']],
        ['B', ['80', '90', '80', '80']],
        ['C', ['1080', '1090', '1100', '1110']],
      ]),
      origin: { kind: 'binding', label: `conformance binding vm-${name}` },
    },
    filterRegistry([f.value!]),
  );
}

describe.skipIf(cases.length === 0)('reading the conformance outputs', () => {
  it.each(cases)(
    '%s: the read ebtables, iptables and ip6tables tables show no drift from the compiled ones',
    (name) => {
      const c = compile(name);
      const text = (f: string) => readFileSync(new URL(`expected/${name}/${f}`, DIR), 'utf8');
      const eb = readEbtablesList(text('ebtables-nat-L.txt'), 'ebtables-nat-L.txt');
      const v4 = readIptablesSave(text('iptables-save.txt'), 'iptables-save.txt', 'ipv4');
      const v6 = readIptablesSave(text('ip6tables-save.txt'), 'ip6tables-save.txt', 'ipv6');
      expect([...eb.issues, ...v4.issues, ...v6.issues]).toEqual([]);
      const drift = [
        ...compareRulesets(c.nat, eb.value!),
        ...compareRulesets(c.filter4, v4.value![0]!),
        ...compareRulesets(c.filter6, v6.value![0]!),
      ];
      expect(drift.map((d) => d.message)).toEqual([]);
    },
  );
});
