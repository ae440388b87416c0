import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import { listingOrder, renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import { readFilterBindingXml } from './nwfilter-xml.ts';

/** The founding field report (an external suite: the article is not ours to ship). */
const SEED = externalSuite('seed/');

/** The article's legacy listing from CASE.md, split into chains. */
function articleChains(): { header: string; rules: string[] }[] {
  if (SEED.skip !== undefined) return [];
  const md = SEED.read('CASE.md');
  const start = md.indexOf('Bridge chain: PREROUTING');
  const end = md.indexOf('```', start);
  const lines = md
    .slice(start, end)
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const out: { header: string; rules: string[] }[] = [];
  for (const l of lines) {
    if (l.startsWith('Bridge chain:')) out.push({ header: l, rules: [] });
    else out[out.length - 1]!.rules.push(l);
  }
  return out;
}

function parseListing(text: string): Map<string, { header: string; rules: string[] }> {
  const m = new Map<string, { header: string; rules: string[] }>();
  let cur: { header: string; rules: string[] } | undefined;
  for (const l of text.split('\n')) {
    if (l.startsWith('Bridge chain:')) {
      cur = { header: l, rules: [] };
      m.set(/^Bridge chain: ([^,]+),/.exec(l)![1]!, cur);
    } else if (l !== '' && !l.startsWith('Bridge table:') && cur) cur.rules.push(l);
  }
  return m;
}

/** The article's port: clean-traffic with one IP on vnet0. */
const BINDING = `<filterbinding>
  <owner><name>r2-10105</name><uuid>3f0c2b9e-6a41-4d7e-9c55-1b2a3c4d5e6f</uuid></owner>
  <portdev name='vnet0'/>
  <mac address='02:00:73:b6:53:c8'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='192.0.2.200'/>
  </filterref>
</filterbinding>
`;

describe('the legacy listing of s1', () => {
  skippedBecause(SEED.skip);
  const b = readFilterBindingXml(BINDING, 'binding.xml').value!;
  const c = compileBinding(b, filterRegistry(), { style: 'legacy' });
  const text = renderEbtablesList(c.nat, { style: 'legacy' });
  const mine = parseListing(text);

  it.each(articleChains().map((a) => [/^Bridge chain: ([^,]+),/.exec(a.header)![1]!, a] as const))(
    'prints chain %s as the article shows it',
    (name, article) => {
      const got = mine.get(name);
      expect(got).toBeDefined();
      expect(got!.rules).toEqual(article.rules);
      // The article abbreviates I-vnet0-mac (entries: 1 with two rules shown); other headers are exact.
      if (Number(/entries: (\d+)/.exec(article.header)![1]) === article.rules.length) {
        expect(got!.header).toBe(article.header);
      } else {
        expect(got!.header.replace(/entries: \d+/, '')).toBe(article.header.replace(/entries: \d+/, ''));
      }
    },
  );

  it.skipIf(SEED.skip !== undefined)('lists user chains in creation order, as the article does', () => {
    const order = listingOrder(c.nat, 'legacy').map((ch) => ch.name);
    const shown = articleChains().map((a) => /^Bridge chain: ([^,]+),/.exec(a.header)![1]!);
    expect(order.filter((n) => shown.includes(n))).toEqual(shown);
  });

  it('starts with the table header and separates chains with blank lines', () => {
    expect(
      text.startsWith(
        'Bridge table: nat\n\nBridge chain: PREROUTING, entries: 1, policy: ACCEPT\n-i vnet0 -j libvirt-I-vnet0\n\n',
      ),
    ).toBe(true);
  });
});
