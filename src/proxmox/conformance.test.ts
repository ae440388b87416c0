/**
 * Proxmox's own firewall test directories (and our LVS examples) through lvsdoctor's Proxmox compiler: the rules
 * generated must equal, byte for byte, what pve-firewall's own generator produced for the same inputs (recorded in
 * ../shared/conformance/pve-firewall/recorded, see its README). Read from ../shared at run time.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import { loadPveConformanceCase, pveConformanceCases } from '../../test/support/pve-conformance.ts';
import { readIpsetSave } from '../netfilter/ipset.ts';
import { renderIptablesSave } from '../netfilter/iptables-render.ts';
import { compilePveFirewall, renderPveEbtablesRestore, renderPveIpsetRestore, renderPveRestore } from './compile.ts';
import { pveFilterTable, pveIpsets } from './model.ts';

const suite = externalSuite('conformance/pve-firewall/');
const cases = pveConformanceCases(suite.dir);

describe('pve-firewall conformance: generated rules', () => {
  skippedBecause(suite.skip);
  if (suite.skip !== undefined) return;
  it('finds all 13 upstream and 4 example directories', () => {
    expect(cases.length).toBe(17);
  });
  for (const c of cases) {
    describe(c.name, () => {
      const { input, issues } = loadPveConformanceCase(c);
      const out = compilePveFirewall(input);
      const rec = (f: string) => suite.read(`recorded/${c.name}/${f}`);
      it('iptables filter equals pve-firewall’s iptables-restore input', () => {
        expect(renderPveRestore(out.filter4, 'filter')).toBe(rec('iptables-filter.restore'));
      });
      it('ip6tables filter equals pve-firewall’s ip6tables-restore input', () => {
        expect(renderPveRestore(out.filter6, 'filter')).toBe(rec('ip6tables-filter.restore'));
      });
      it('raw tables equal the recorded ones', () => {
        expect(renderPveRestore(out.raw4, 'raw')).toBe(rec('iptables-raw.restore'));
        expect(renderPveRestore(out.raw6, 'raw')).toBe(rec('ip6tables-raw.restore'));
      });
      it('ebtables equal pve-firewall’s ebtables-restore input', () => {
        expect(renderPveEbtablesRestore(out.ebtables)).toBe(rec('ebtables.restore'));
      });
      it('ipsets equal pve-firewall’s ipset restore input', () => {
        expect(renderPveIpsetRestore(out.ipsets)).toBe(rec('ipset.restore'));
      });
      it('read into the netfilter model, the rules list as iptables-save / ip6tables-save printed them', () => {
        const t4 = pveFilterTable(out.filter4, 'ipv4');
        const t6 = pveFilterTable(out.filter6, 'ipv6');
        expect([...t4.issues, ...t6.issues]).toEqual([]);
        expect(renderIptablesSave(t4.table)).toBe(rec('iptables-save-filter.txt'));
        expect(renderIptablesSave(t6.table)).toBe(rec('ip6tables-save-filter.txt'));
      });
      it('the ipsets hold what ipset save listed', () => {
        const recorded = readIpsetSave(rec('ipset-save.txt'), 'ipset-save.txt');
        expect(recorded.issues).toEqual([]);
        const norm = (
          m: ReadonlyMap<string, { entries: readonly { addr: string; prefixLen: number; nomatch: boolean }[] }>,
        ) =>
          Object.fromEntries(
            [...m].map(([n, s]) => [
              n,
              s.entries.map((e) => `${e.addr}/${e.prefixLen}${e.nomatch ? ' nomatch' : ''}`).sort(),
            ]),
          );
        expect(norm(pveIpsets(out.ipsets))).toEqual(norm(recorded.value!));
      });
      it('warns where pve-firewall warns, naming file and line', () => {
        const warnFile = suite.url(`recorded/${c.name}/compile-warnings.txt`);
        const expected = existsSync(warnFile)
          ? readFileSync(warnFile, 'utf8')
              .split('\n')
              .filter((l) => /^\S.*\(line \d+\)/.test(l))
              .map((l) => Number(/\(line (\d+)\)/.exec(l)![1]))
          : [];
        const got = [...issues, ...out.issues].filter((i) => i.pos && i.pos.line > 0).map((i) => i.pos!.line);
        expect(got).toEqual(expected);
      });
    });
  }
});
