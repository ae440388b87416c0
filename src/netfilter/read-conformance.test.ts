/**
 * Readers against the compiler on libvirt's conformance inputs: what lvsdoctor reads from each recorded output of a
 * real libvirt 9.0.0 shows no drift against what it compiles from the same XML (files read from the shared folder,
 * test/support/conformance.ts; absent, the tests skip).
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import type { Mac } from '../addr/mac.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBinding } from '../libvirt/compile.ts';
import { readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { compareRulesets } from './drift.ts';
import { readEbtablesList } from './ebtables-read.ts';
import { readIptablesSave } from './iptables-read.ts';

const SUITE = externalSuite('conformance/libvirt-tests/');
const cases =
  SUITE.skip === undefined
    ? readdirSync(SUITE.url('inputs/'))
        .filter((f) => f.endsWith('.xml'))
        .map((f) => f.replace(/\.xml$/, ''))
        .sort()
    : [];

function compile(name: string) {
  const f = readNwfilterXml(SUITE.read(`inputs/${name}.xml`), `${name}.xml`);
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

describe('reading the conformance outputs', () => {
  skippedBecause(SUITE.skip);
  it.each(cases)(
    '%s: the read ebtables, iptables and ip6tables tables show no drift from the compiled ones',
    (name) => {
      const c = compile(name);
      const text = (f: string) => SUITE.read(`expected/${name}/${f}`);
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
