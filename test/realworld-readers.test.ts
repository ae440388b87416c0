/**
 * Real-world IPVS and nwfilter inputs nobody here wrote (../shared/conformance/realworld/): keepalived's sample
 * configurations and configs from write-ups must give the IPVS table keepalived programs (as `ipvsadm -Ln` prints
 * it), or be refused with the reason when keepalived's meaning cannot be known offline.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeIpvsadmList } from '../src/ipvs/ipvsadm-list-writer.ts';
import { readKeepalivedConf } from '../src/ipvs/keepalived.ts';

const DIR = join(import.meta.dirname, '..', '..', 'shared', 'conformance', 'realworld');
const SKIP = existsSync(DIR) ? undefined : `${DIR} is absent (the real-world suite lives beside the repository)`;

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
