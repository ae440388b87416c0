/**
 * `diagnose BUNDLE…` imports in memory and loads the scenario from the files the import built, reusing the
 * import's XML parses; `import -o DIR` writes the same files. Both ways must give the same scenario, the same
 * issues (file:line) and the same diagnosis. Built from the real-kernel bundles in fixtures/collect/founding-real,
 * whole and partial (as in collect-import and collect-partial).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDiagnose, runDiagnoseInputs } from '../src/cli/cmd-diagnose.ts';
import { IMPORT_LIST, importBundles, importedSource, importToMemory } from '../src/collect/import.ts';
import { readDomainXml } from '../src/libvirt/domain-xml.ts';
import { readFilterBindingXml, readNwfilterXml } from '../src/libvirt/nwfilter-xml.ts';
import { type LoadResult, loadScenario, loadScenarioFrom } from '../src/topology/load-scenario.ts';
import { memorySource, relabelPositions } from '../src/topology/scenario-source.ts';
import { bundleCopies, edit, fail, type Name } from './bundle-fixtures.ts';

const { tmp, bundles, done } = bundleCopies('collect-memory');
afterAll(done);

function filesUnder(root: string, sub = ''): string[] {
  return readdirSync(join(root, sub)).flatMap((n) => {
    const rel = sub ? `${sub}/${n}` : n;
    return statSync(join(root, rel)).isDirectory() ? filesUnder(root, rel) : [rel];
  });
}

const capture = () => {
  const o = { out: '', err: '' };
  return { o, io: { stdout: (s: string) => (o.out += s), stderr: (s: string) => (o.err += s) } };
};

/** The loaded scenario without `dir` (a directory on disk, a label in memory). */
const comparable = (r: LoadResult) => ({
  issues: r.issues,
  value: r.value && { ...r.value, scenario: { ...r.value.scenario, dir: undefined } },
});

const CASES: [string, () => Record<Name, string>, Name[]?][] = [
  ['the whole founding cluster', () => bundles()],
  [
    'a live binding that drifted from the domain XML',
    () =>
      bundles((d) => edit(join(d('host1'), 'cmd', 'binding-vnet0.out'), "value='192.0.2.200'", "value='192.0.2.201'")),
  ],
  [
    'an interface type the model does not cover (a warning naming the domain file)',
    () =>
      bundles((d) =>
        edit(
          join(d('host2'), 'cmd', 'domain-r2-10106.out'),
          /( *)<interface type='bridge'>/,
          "$1<interface type='direct'>\n$1  <mac address='02:00:5e:00:53:01'/>\n$1  <source dev='eth1' mode='vepa'/>\n$1  <target dev='macvtap0'/>\n$1</interface>\n$1<interface type='bridge'>",
        ),
      ),
  ],
  [
    'virsh missing on host1',
    () =>
      bundles((d) => {
        for (const id of ['virsh-list', 'virsh-nwfilter-list', 'virsh-binding-list', 'version-virsh', 'virsh-uri'])
          fail(d('host1'), id, 'missing', '127', 'virsh: command not found\n');
      }),
  ],
  ['the real server not collected', () => bundles(), ['host1', 'host2', 'director', 'router']],
  ['no router bundle', () => bundles(), ['host1', 'host2', 'director', 'rs']],
  ['only guest bundles', () => bundles(), ['director', 'rs']],
];

let outs = 0;
describe('import in memory and import -o DIR give the same scenario', () => {
  it.each(CASES)('%s', (name, make, only) => {
    const b = make();
    const paths = Object.entries(b)
      .filter(([k]) => !only || only.includes(k as Name))
      .map(([, v]) => v);
    const out = join(tmp, `out-${outs++}`);
    const disk = importBundles(paths, { out, name: 'imported' });
    expect(disk.dir).toBe(out);
    // The directory holds exactly the files of the map, byte for byte, and their list (for a later import).
    expect(filesUnder(out).sort()).toEqual([...disk.files!.keys(), IMPORT_LIST].sort());
    for (const [rel, text] of disk.files!) expect(readFileSync(join(out, rel), 'utf8'), rel).toBe(text);

    // In memory, named like the directory: the same files, nothing written.
    const label = relative(process.cwd(), out);
    const mem = importToMemory(paths, { label });
    expect([...mem.files!.keys()]).toEqual([...disk.files!.keys()]);
    for (const [rel, text] of mem.files!)
      expect(text, rel).toBe(
        rel === 'import-report.txt' ? disk.files!.get(rel)!.replace(out, label) : disk.files!.get(rel),
      );
    expect(mem.drift).toEqual(disk.drift);
    expect(mem.assumptions).toEqual(disk.assumptions);

    const fromDisk = loadScenario(out);
    const fromMemory = loadScenarioFrom(importedSource(mem)!);
    expect(
      fromDisk.issues.filter((i) => i.severity === 'error'),
      name,
    ).toEqual([]);
    expect(comparable(fromMemory)).toEqual(comparable(fromDisk));

    // The diagnosis, as --json prints it: from the directory, from memory, and through `diagnose BUNDLE…`.
    const a = capture();
    const codeDisk = runDiagnose(a.io, out, { json: true });
    const m = capture();
    const codeMem = runDiagnose(m.io, importedSource(mem)!, { json: true });
    expect(codeMem).toBe(codeDisk);
    expect(m.o.out).toBe(a.o.out);
    expect(m.o.err).toBe(a.o.err);
    const c = capture();
    expect(runDiagnoseInputs(c.io, paths, { json: true })).toBe(codeDisk);
    // There files are named relative to the scenario (nothing was written anywhere).
    expect(c.o.out).toBe(a.o.out.replaceAll(`${label}/`, ''));
  });
});

describe('loading from memory', () => {
  it('reuses the import’s XML parses only as if the loader had parsed the file itself', () => {
    const mem = importToMemory(Object.values(bundles()), { label: 'cluster' });
    expect(mem.preparsed!.size).toBeGreaterThan(0);
    const parse = { domain: readDomainXml, binding: readFilterBindingXml, nwfilter: readNwfilterXml };
    for (const [rel, p] of mem.preparsed!) {
      expect(p.text).toBe(mem.files!.get(rel));
      expect(p.file).not.toBe(`cluster/${rel}`);
      expect(relabelPositions(p.result, p.file, `cluster/${rel}`)).toEqual(parse[p.kind](p.text, `cluster/${rel}`));
    }
  });

  it('a file edited after the import is parsed again, not taken from the import', () => {
    const mem = importToMemory(Object.values(bundles()));
    const files = new Map(mem.files!);
    const rel = 'host1/r2-10105.xml';
    files.set(rel, files.get(rel)!.replace("<target dev='vnet0'/>", "<target dev='vnet7'/>"));
    const l = loadScenarioFrom(memorySource(files, { preparsed: mem.preparsed! }));
    expect(l.value!.scenario.nodes.get('host1')!.interfaces.has('vnet7')).toBe(true);
  });

  it('names bad and missing files relative to the scenario, with their line', () => {
    const mem = importToMemory(Object.values(bundles()));
    const files = new Map(mem.files!);
    files.set('host1/r2-10105.xml', '<domain>\n  <name>r2-10105</name>\n  <devices>\n</domain>\n');
    files.delete('guests/r2-10106/ip-route.txt');
    const l = loadScenarioFrom(memorySource(files, { preparsed: mem.preparsed! }));
    const xml = l.issues.find((i) => i.pos?.file === 'host1/r2-10105.xml');
    expect(xml?.severity).toBe('error');
    expect(xml?.pos?.line).toBeGreaterThan(0);
    const missing = l.issues.find((i) => i.code === 'scenario.missing-file')!;
    expect(missing.message).toBe(
      'file "guests/r2-10106/ip-route.txt" does not exist (looked in guests/r2-10106/ip-route.txt)',
    );
    expect(missing.pos?.file).toBe('scenario.yaml');
    const lines = files.get('scenario.yaml')!.split('\n');
    expect(lines[missing.pos!.line - 1]).toContain('ip-route: guests/r2-10106/ip-route.txt');
  });

  it('a memory source lists directories and refuses paths outside the scenario', () => {
    const src = memorySource(
      new Map([
        ['a/b.xml', 'B'],
        ['a/c/d.xml', 'D'],
      ]),
    );
    expect([...(src.list('a') ?? [])].sort()).toEqual(['b.xml', 'c']);
    expect([...(src.list('./a/') ?? [])].sort()).toEqual(['b.xml', 'c']);
    expect(src.list('a/b.xml')).toBeUndefined();
    expect(src.read('./a//b.xml')).toBe('B');
    expect(src.read('../a/b.xml')).toBeUndefined();
    expect(src.exists('a/c')).toBe(true);
    expect(src.exists('x')).toBe(false);
  });
});
