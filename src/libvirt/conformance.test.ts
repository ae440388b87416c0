/**
 * libvirt's own nwfilter test inputs run through a real libvirt 9.0.0 (see
 * the external suite conformance/libvirt-tests, its README.md): every recorded output — `ebtables -t nat -L`, `ebtables-save`,
 * `iptables-save`, `ip6tables-save` — is compared byte for byte (the `-save` files have their comment lines removed).
 * The files are read at run time from the shared folder (test/support/conformance.ts); absent, the tests skip.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import type { Mac } from '../addr/mac.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import type { NwFilterBinding } from './nwfilter-model.ts';
import { readNwfilterXml } from './nwfilter-xml.ts';
import { type OutputFormat, renderCompiled } from './render-outputs.ts';

const SUITE = externalSuite('conformance/libvirt-tests/');
const cases =
  SUITE.skip === undefined
    ? readdirSync(SUITE.url('inputs/'))
        .filter((f) => f.endsWith('.xml'))
        .map((f) => f.replace(/\.xml$/, ''))
        .sort()
    : [];

const FILES: readonly (readonly [string, OutputFormat])[] = [
  ['ebtables-nat-L.txt', 'ebtables-nat-L'],
  ['ebtables-save.txt', 'ebtables-save'],
  ['iptables-save.txt', 'iptables-save'],
  ['ip6tables-save.txt', 'ip6tables-save'],
];

function bindingFor(name: string): NwFilterBinding {
  return {
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
  };
}

const table = cases.flatMap((name) => FILES.map(([file, format]) => [name, file, format] as const));

describe('libvirt conformance inputs (all recorded outputs)', () => {
  skippedBecause(SUITE.skip);
  it.each(table)('%s compiles to the %s libvirt 9.0.0 produced', (name, file, format) => {
    const f = readNwfilterXml(SUITE.read(`inputs/${name}.xml`), `${name}.xml`);
    expect(f.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const c = compileBinding(bindingFor(name), filterRegistry([f.value!]));
    const want = SUITE.read(`expected/${name}/${file}`);
    expect(renderCompiled(c, format)).toBe(want);
  });
});
