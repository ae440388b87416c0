import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { loadScenario } from '../topology/load-scenario.ts';
import type { DiagnosisSession } from './diagnose.ts';
import { findFix, findProposedFix, fixesToApply } from './fix-list.ts';
import type { FixProposal } from './types.ts';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');

/** A fix that records its id in the scenario's name, so the order fixes were applied in shows. */
function fakeFix(id: string): FixProposal {
  return {
    id,
    title: id,
    keeps: '',
    protectionRank: 0,
    artifacts: [],
    commands: [],
    apply: (s) => ({ ...s, scenario: { ...s.scenario, name: `${s.scenario.name}+${id}` } }),
  };
}

function session(entries: [FixProposal, FixProposal[]][]): DiagnosisSession {
  return {
    proposals: new Map(entries.map(([fix, prereqs]) => [fix.id, { fix, prereqs }])),
  } as unknown as DiagnosisSession;
}

describe('the one fix list', () => {
  const a = fakeFix('a:host1:vnet0');
  const b = fakeFix('b:host1:vnet0');
  const d = session([
    [a, []],
    [b, [a]],
  ]);
  const base = { scenario: { name: 's' } } as unknown as LoadedScenario;

  it('finds a fix by its id or by the prefix before a colon, and lists every id otherwise', () => {
    expect(findProposedFix(d, 'a:host1:vnet0').fix).toBe(a);
    expect(findProposedFix(d, 'a').fix).toBe(a);
    expect(findProposedFix(d, 'a:host1')).toEqual({ fix: a, known: ['a:host1:vnet0', 'b:host1:vnet0'] });
    expect(findProposedFix(d, 'c')).toEqual({ known: ['a:host1:vnet0', 'b:host1:vnet0'] });
  });

  it('applies the fixes a fix was verified after before the fix itself', () => {
    expect(findProposedFix(d, 'b').fix!.apply(base).scenario.name).toBe('s+a:host1:vnet0+b:host1:vnet0');
  });

  it('orders chosen fixes after their prerequisites, each once, and names the first unknown id', () => {
    expect(fixesToApply(d, ['b:host1:vnet0', 'a:host1:vnet0'])).toEqual({ fixes: [a, b] });
    expect(fixesToApply(d, ['a:host1:vnet0', 'x', 'y'])).toEqual({ unknown: 'x' });
  });

  it('offers on the founding case the fixes diagnose proposes', () => {
    const loaded = loadScenario(join(EXAMPLES, 'kvm-lvs-dr')).value!;
    const f = findFix(loaded, 'dr-director-filter');
    expect(f.fix?.id).toBe('dr-director-filter:host1:vnet0');
    expect(f.known).toEqual([
      'dr-director-filter:host1:vnet0',
      'remove-filterref:host1:vnet0',
      'add-ip:host1:vnet0:192.0.2.208',
    ]);
  });
});
