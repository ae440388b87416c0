/**
 * Bulk compiles (`compileBindings` with `commands: false`) share one plan between bindings of the same shape; they
 * must give exactly what `compileBinding` gives for each binding — the same tables, rules and origins — for every
 * input we have: libvirt's conformance inputs (an external suite read at run time, skipped when absent), the differential test's recorded
 * disagreements, and bindings of one shape whose values differ (bad values, failing rules, lists with repeats).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import type { Mac } from '../addr/mac.ts';
import { type EbTable, RULES_ONCE } from '../netfilter/ebtables-model.ts';
import { renderEbtablesSave } from '../netfilter/ebtables-render.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding, compileBindings } from './compile.ts';
import type { NwFilter, NwFilterBinding } from './nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from './nwfilter-xml.ts';

const SUITE = externalSuite('conformance/libvirt-tests/');
const CONFORMANCE = SUITE.url('inputs/');
const DIFFERENTIAL = new URL('../../fixtures/libvirt/differential/', import.meta.url);

function filter(xml: string, file = 'f.xml'): NwFilter {
  const r = readNwfilterXml(xml, file);
  if (!r.value) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.value;
}

function bind(i: number, filterName: string, params: Record<string, string[]>, mac?: string): NwFilterBinding {
  return {
    portdev: `vnet${i}`,
    mac: (mac ?? `52:54:00:00:00:${i.toString(16).padStart(2, '0')}`) as Mac,
    filter: filterName,
    params: new Map(Object.entries(params)),
    origin: { kind: 'binding', label: `test binding vnet${i}` },
  };
}

/**
 * A table as plain data, origins included: bulk-compiled rules and chains make their origins on first read (a getter,
 * which a deep comparison of the objects themselves would not see); `toJSON` gives them as plain properties.
 */
function plain(t: EbTable): unknown {
  return JSON.parse(JSON.stringify(t));
}

/** Every binding compiled on its own (the general path), merged as compileBindings merges. */
function expectSameAsOneByOne(bindings: readonly NwFilterBinding[], registry: ReadonlyMap<string, NwFilter>): void {
  const bulk = compileBindings(bindings, registry, { commands: false });
  const general = compileBindings(bindings, registry, { commands: true });
  // Rendered through the rules each chain gives for one pass (RULES_ONCE) first, then through the kept rules.
  expect(renderEbtablesSave(bulk.nat)).toBe(renderEbtablesSave(general.nat));
  expect(plain(bulk.nat)).toEqual(plain(general.nat));
  for (const c of bulk.nat.chains) {
    const once = c[RULES_ONCE];
    if (once !== undefined) expect(JSON.parse(JSON.stringify(once))).toEqual(JSON.parse(JSON.stringify(c.rules)));
    expect(c.rules).toBe(c.rules);
  }
  // Every origin read through the model (not only through toJSON) is the general path's, and the same on each read.
  const generalChains = new Map(general.nat.chains.map((c) => [c.name, c]));
  for (const c of bulk.nat.chains) {
    const g = generalChains.get(c.name)!;
    expect(c.origin).toEqual(g.origin);
    expect(c.origin).toBe(c.origin);
    for (const [k, r] of c.rules.entries()) {
      expect(r.origin).toEqual(g.rules[k]!.origin);
      expect(r.origin).toBe(r.origin);
    }
  }
  expect(bulk.filter4).toEqual(general.filter4);
  expect(bulk.filter6).toEqual(general.filter6);
  expect(bulk.issues).toEqual(general.issues);
  for (const [i, b] of bindings.entries()) {
    const one = compileBinding(b, registry, { commands: false });
    const r = bulk.results[i]!;
    expect(r.mode).toBe(one.mode);
    expect(plain(r.nat)).toEqual(plain(one.nat));
    expect(r.filter4).toEqual(one.filter4);
    expect(r.filter6).toEqual(one.filter6);
    expect(r.failure).toBe(one.failure);
    expect(r.instances.length).toBe(one.instances.length);
  }
}

const conformance =
  SUITE.skip === undefined
    ? readdirSync(CONFORMANCE)
        .filter((f) => f.endsWith('.xml'))
        .sort()
    : [];

describe('bulk compiles with shared plans', () => {
  skippedBecause(SUITE.skip);
  it.each(conformance)('%s: same result as compiling each binding', (file) => {
    const f = filter(readFileSync(new URL(file, CONFORMANCE), 'utf8'), file);
    const params = (a: string[]) => ({
      IPSETNAME: ['tck_test'],
      A: a,
      B: ['80', '90', '80', '80'],
      C: ['1080', '1090', '1100', '1110'],
    });
    expectSameAsOneByOne(
      [
        bind(1, 'tck-testcase', params(['192.0.2.1', '192.0.2.2', '192.0.2.3', '192.0.2.3'])),
        bind(2, 'tck-testcase', params(['198.51.100.1', '198.51.100.2', '198.51.100.3', '198.51.100.3'])),
        // Same shape, an illegal value: this binding falls back and fails as on its own.
        bind(3, 'tck-testcase', params(['192.0.2.1', 'not-an-address', '192.0.2.3', '192.0.2.3'])),
        bind(4, 'tck-testcase', params(['203.0.113.1', '203.0.113.2', '203.0.113.3', '203.0.113.3'])),
      ],
      filterRegistry([f]),
    );
  });

  const fixtures = existsSync(DIFFERENTIAL)
    ? readdirSync(DIFFERENTIAL)
        .filter((d) => existsSync(new URL(`${d}/binding.xml`, DIFFERENTIAL)))
        .sort()
    : [];
  it.each(fixtures)('differential fixture %s: same result as compiling the binding', (name) => {
    const dir = new URL(`${name}/`, DIFFERENTIAL);
    const customs: NwFilter[] = [];
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.xml') && x !== 'binding.xml')) {
      const r = readNwfilterXml(readFileSync(new URL(f, dir), 'utf8'), f);
      if (r.value && !r.issues.some((i) => i.severity === 'error')) customs.push(r.value);
    }
    const b = readFilterBindingXml(readFileSync(new URL('binding.xml', dir), 'utf8'), 'binding.xml').value!;
    const again = { ...b, portdev: `${b.portdev}x`, mac: '52:54:00:aa:bb:cc' as Mac };
    expectSameAsOneByOne([b, again, b], filterRegistry(customs));
  });

  it('clean-traffic for many ports, with learning, DHCP-only and missing-filter ports among them', () => {
    const bindings = [
      bind(1, 'clean-traffic', { IP: ['192.0.2.1'] }),
      bind(2, 'clean-traffic', {}),
      bind(3, 'clean-traffic', { IP: ['192.0.2.3', '192.0.2.33'] }),
      bind(4, 'clean-traffic', { CTRL_IP_LEARNING: ['dhcp'] }),
      bind(5, 'no-such-filter', {}),
      bind(6, 'clean-traffic', { IP: ['192.0.2.6'] }),
      bind(7, 'clean-traffic', { IP: ['192.0.2.7', '192.0.2.7'] }),
      bind(8, 'clean-traffic', { IP: ['192.0.2.8'], MAC: ['52:54:00:00:00:99'] }),
      bind(9, 'clean-traffic', { IP: ['not-an-address'] }),
      bind(1, 'clean-traffic', { IP: ['192.0.2.101'] }),
    ];
    expectSameAsOneByOne(bindings, filterRegistry());
  });

  it('lists with repeated values are iterated alike only when they repeat at the same positions', () => {
    const f = filter(`<filter name='lists' chain='ipv4'>
      <rule action='accept' direction='out'><ip srcipaddr='$A' dstipaddr='$B'/></rule>
      <rule action='drop' direction='inout'><ip srcipaddr='$A[@1]' dstipaddr='$B[@1]'/></rule>
      <rule action='accept' direction='in'><tcp srcipaddr='$A' dstportstart='$P'/></rule>
      <rule action='drop' direction='in'><ipv6 type='5' typeend='$T'/></rule>
    </filter>`);
    const ab = (a: string[], b: string[], t = '9') => ({ A: a, B: b, P: ['80'], T: [t] });
    expectSameAsOneByOne(
      [
        bind(1, 'lists', ab(['192.0.2.1', '192.0.2.2'], ['198.51.100.1', '198.51.100.1'])),
        bind(2, 'lists', ab(['192.0.2.1', '192.0.2.1'], ['198.51.100.1', '198.51.100.2'])),
        bind(3, 'lists', ab(['192.0.2.5', '192.0.2.6'], ['198.51.100.7', '198.51.100.7'])),
        // An ICMPv6 type range with lo > hi: ebtables refuses this port's rule (the others are fine).
        bind(4, 'lists', ab(['192.0.2.5', '192.0.2.6'], ['198.51.100.7', '198.51.100.7'], '2')),
        bind(5, 'lists', ab(['192.0.2.5', '192.0.2.6'], ['198.51.100.8', '198.51.100.8'])),
      ],
      filterRegistry([f]),
    );
  });

  it('a port compiled in bulk keeps its origin chain: rule ← filter ← filterref ← binding', () => {
    const b = bind(1, 'clean-traffic', { IP: ['192.0.2.1'] });
    const r = compileBindings([b], filterRegistry(), { commands: false });
    const rule = r.nat.chains.find((c) => c.name === 'I-vnet1-mac')!.rules[0]!;
    const kinds: string[] = [];
    for (let o: typeof rule.origin | undefined = rule.origin; o; o = o.via) kinds.push(o.kind);
    expect(kinds).toEqual(['nwfilter-rule', 'nwfilter-filter', 'filterref', 'nwfilter-filter', 'binding']);
    expect(r.results[0]!.commands).toEqual(compileBinding(b, filterRegistry(), { commands: false }).commands);
  });
});
