/**
 * Real-world IPVS and nwfilter inputs nobody here wrote (../shared/conformance/realworld/): keepalived's sample
 * configurations and configs from write-ups must give the IPVS table keepalived programs (as `ipvsadm -Ln` prints
 * it), or be refused with the reason when keepalived's meaning cannot be known offline.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeIpvsadmList } from '../src/ipvs/ipvsadm-list-writer.ts';
import { readKeepalivedConf } from '../src/ipvs/keepalived.ts';
import { filterRegistry } from '../src/libvirt/builtin-filters.ts';
import { compileBinding } from '../src/libvirt/compile.ts';
import type { NwFilter } from '../src/libvirt/nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from '../src/libvirt/nwfilter-xml.ts';
import { renderCompiled } from '../src/libvirt/render-outputs.ts';
import { externalSuite, skippedBecause } from './support/conformance.ts';

const SUITE = externalSuite('conformance/realworld/');
const DIR = fileURLToPath(SUITE.dir);
const SKIP = SUITE.skip;
skippedBecause(SKIP);

describe.skipIf(SKIP !== undefined)('keepalived configurations: the table keepalived programs', () => {
  const rows = SKIP
    ? []
    : readFileSync(join(DIR, 'keepalived', 'manifest.tsv'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.split('\t') as [string, string]);
  let identical = 0;
  it.each(rows)('%s (%s)', (name, kind) => {
    const r = readKeepalivedConf(readFileSync(join(DIR, 'keepalived', name), 'utf8'), name);
    const errors = r.issues.filter((i) => i.severity === 'error');
    if (kind !== 'table') {
      // Refused clearly: at least one error naming its line.
      expect(errors.length).toBeGreaterThan(0);
      for (const e of errors) expect(e.pos?.line).toBeGreaterThan(0);
      return;
    }
    expect(errors.map((e) => `${e.pos?.line}: ${e.message}`)).toEqual([]);
    const want = readFileSync(join(DIR, 'keepalived', 'expected', `${name}.out`), 'utf8');
    expect(writeIpvsadmList(r.value!.table, { header: { version: '1.2.1', size: 4096 } })).toBe(want);
    identical++;
  });
  it('accepts what keepalived accepts with a warning, on its line (persistence_timeout 0)', () => {
    const r = readKeepalivedConf(readFileSync(join(DIR, 'keepalived', 'blog-lvs-keepalived-dr.conf'), 'utf8'), 'x');
    const w = r.issues.find((i) => i.message.startsWith('persistence_timeout invalid'));
    expect(w).toMatchObject({ severity: 'warning', pos: { line: 27 } });
  });
  it('reports the count', () => {
    console.log(
      `keepalived: ${identical}/${rows.filter((r) => r[1] === 'table').length} tables identical to what keepalived programs`,
    );
  });
});

describe.skipIf(SKIP !== undefined)(
  'nwfilters from libvirt tests and operators: what a real libvirt 9.0 makes of them',
  () => {
    const root = join(DIR, 'nwfilter');
    const cases = SKIP ? [] : readdirSync(root).filter((d) => existsSync(join(root, d, 'binding.xml')));
    const FORMATS = ['ebtables-nat-L', 'ebtables-save', 'iptables-save', 'ip6tables-save'] as const;
    it.each(cases)('%s', (name) => {
      const dir = join(root, name);
      const customs: NwFilter[] = [];
      const ours: string[] = [];
      for (const f of readdirSync(join(dir, 'filters'))) {
        const r = readNwfilterXml(readFileSync(join(dir, 'filters', f), 'utf8'), f);
        const err = r.issues.find((i) => i.severity === 'error');
        if (err) ours.push(err.message);
        else if (r.value) customs.push(r.value);
      }
      const errorFile = join(dir, 'expected', 'error.txt');
      if (ours.length === 0) {
        const b = readFilterBindingXml(readFileSync(join(dir, 'binding.xml'), 'utf8'), 'binding.xml');
        expect(b.value).toBeDefined();
        const c = compileBinding(b.value!, filterRegistry(customs));
        if (c.mode === 'failed') ours.push(c.failure ?? 'failed');
        else if (!existsSync(errorFile))
          for (const fmt of FORMATS)
            expect(renderCompiled(c, fmt), fmt).toBe(readFileSync(join(dir, 'expected', `${fmt}.txt`), 'utf8'));
      }
      if (existsSync(errorFile)) {
        // libvirt's last line: `error: internal error: MESSAGE`; lvsdoctor refuses with the same message.
        const last = readFileSync(errorFile, 'utf8').trim().split('\n').at(-1)!;
        const want = last.replace(/^error: /, '').replace(/^internal error: /, '');
        expect(ours.map((m) => m.replace(/^internal error: /, ''))).toContain(want);
      } else expect(ours).toEqual([]);
    });
  },
);
