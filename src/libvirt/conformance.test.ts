/**
 * libvirt's own nwfilter test inputs run through a real libvirt 9.0.0 (see
 * ../shared/conformance/libvirt-tests/README.md): the `ebtables -t nat -L` part is compared byte for byte.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Mac } from '../addr/mac.ts';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import type { NwFilterBinding } from './nwfilter-model.ts';
import { readNwfilterXml } from './nwfilter-xml.ts';

const DIR = new URL('../../../shared/conformance/libvirt-tests/', import.meta.url);
const cases = existsSync(DIR)
  ? readdirSync(new URL('inputs/', DIR))
      .filter((f) => f.endsWith('.xml'))
      .map((f) => f.replace(/\.xml$/, ''))
      .sort()
  : [];

/** Cases whose ebtables listing lvsdoctor does not reproduce yet, with the reason. */
const KNOWN_DIFFERENT: Readonly<Record<string, string>> = {};

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

describe('libvirt conformance inputs (ebtables nat listing)', () => {
  it.each(cases)('%s compiles to the listing libvirt 9.0.0 produced', (name) => {
    const f = readNwfilterXml(readFileSync(new URL(`inputs/${name}.xml`, DIR), 'utf8'), `${name}.xml`);
    expect(f.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const c = compileBinding(bindingFor(name), filterRegistry([f.value!]));
    const want = readFileSync(new URL(`expected/${name}/ebtables-nat-L.txt`, DIR), 'utf8');
    const got = renderEbtablesList(c.nat, { style: 'nft' });
    if (KNOWN_DIFFERENT[name]) expect(got).not.toBe(want);
    else expect(got).toBe(want);
  });
});
