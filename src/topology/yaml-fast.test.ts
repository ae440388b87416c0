import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isMap, isSeq, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { PATH_SEP, parseFastYaml } from './yaml-fast.ts';
import { parseYaml, positionOf } from './yaml-source.ts';

/** What the `yaml` library gives: the data and the position of every node (value, else key). */
function reference(text: string) {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  const positions = new Map<string, readonly [number, number]>();
  const at = (n: YamlNode | null | undefined) => {
    const lp = lines.linePos(n?.range?.[0] ?? 0);
    return [lp.line, lp.col] as const;
  };
  const walk = (node: unknown, path: string) => {
    const sub = (seg: string | number) => (path === '' ? String(seg) : `${path}${PATH_SEP}${seg}`);
    if (isMap(node))
      for (const p of node.items) {
        const k = sub(String((p.key as { value: unknown }).value));
        positions.set(k, at((p.value ?? p.key) as YamlNode));
        walk(p.value, k);
      }
    else if (isSeq(node))
      node.items.forEach((it, i) => {
        positions.set(sub(i), at(it as YamlNode));
        walk(it, sub(i));
      });
  };
  positions.set('', at(doc.contents as YamlNode));
  walk(doc.contents, '');
  return { value: doc.toJS(), positions };
}

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
// Examples of other platforms (a copy of /etc/pve) have no scenario.yaml.
const examples = readdirSync(EXAMPLES)
  .map((d) => join(EXAMPLES, d, 'scenario.yaml'))
  .filter((f) => existsSync(f));

const SUBSET = `# a comment
name: t
description: free text, with an apostrophe's and a colon:in it  # and a comment
n: 42
neg: -1
yes-ish: yes
flag: true
nothing:
tilde: ~
list:
- a
- "b # not a comment"
nested:
  flow: [host1:eth0, "x y", 198.51.100.7]
  empty-list: []
  empty-map: {}
  "quoted key": "line\\nbreak"
  192.0.2.208: 02:00:5e:00:53:01
probes:
  - name: p1
    tcp: 203.0.113.5:80
  - name: p2
    arp: 203.0.113.5
`;

describe('the fast YAML reader', () => {
  it.each<[string, string]>([
    ['the subset', SUBSET],
    ...examples.map((f): [string, string] => [f.split('/').slice(-2).join('/'), readFileSync(f, 'utf8')]),
  ])('gives the yaml library’s values and positions for %s', (_name, text) => {
    const fast = parseFastYaml(text);
    if (!fast) {
      // Some hand-written examples use more than the subset; the library then reads them.
      expect(_name).not.toBe('the subset');
      return;
    }
    const ref = reference(text);
    expect(fast.value).toEqual(ref.value);
    expect(Object.fromEntries(fast.positions)).toEqual(Object.fromEntries(ref.positions));
  });

  it.each([
    ['a float', 'a: 0.5\n'],
    ['an octal-looking number', 'a: 012\n'],
    ['a continued plain scalar', 'a: b\n  c\n'],
    ['a duplicate key', 'a: 1\na: 2\n'],
    ['an anchor', 'a: &x 1\nb: *x\n'],
    ['a single-quoted scalar', "a: 'x'\n"],
    ['a block scalar', 'a: |\n  x\n'],
    ['a flow map', 'a: {b: 1}\n'],
    ['a tab in the indentation', 'a:\n\tb: 1\n'],
    ['a document marker', '---\na: 1\n'],
    ['a nested flow sequence', 'a: [[1]]\n'],
    ['a bad indentation', 'a:\n    b: 1\n  c: 2\n'],
  ])('leaves %s to the yaml library', (_name, text) => {
    expect(parseFastYaml(text)).toBeUndefined();
  });

  it('still reports errors through the yaml library, with their line', () => {
    const { issues } = parseYaml('a: 1\na: 2\n', 'x.yaml');
    expect(issues.map((i) => `${i.pos?.file}:${i.pos?.line} ${i.code}`)).toEqual(['x.yaml:2 yaml.syntax']);
  });

  it('positions name the nearest node that exists', () => {
    const { source } = parseYaml(SUBSET, 's.yaml');
    expect(source.fast).toBeDefined();
    expect(positionOf(source, ['probes', 1, 'arp'])).toMatchObject({ file: 's.yaml', line: 23, column: 10 });
    expect(positionOf(source, ['probes', 1, 'nope'])).toMatchObject({ line: 22, column: 5 });
    expect(positionOf(source, ['nested', 'flow', 2])).toMatchObject({ line: 14, column: 29 });
  });
});
