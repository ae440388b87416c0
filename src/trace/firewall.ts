/** Adapts the ebtables evaluator to the walker: one NetfilterStep per hook that had something to say. */
import { evaluateEbtables } from '../netfilter/ebtables-eval.ts';
import type { EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { BridgeFirewall, BridgeHook } from './engines.ts';
import type { NetfilterStep } from './types.ts';

export interface BridgeTables {
  readonly nat?: EbTable;
  readonly filter?: EbTable;
}

export function makeBridgeFirewall(tables: BridgeTables, style: EbStyle): BridgeFirewall {
  // Hooks that hold no rule and accept by policy cannot change anything: skip them without evaluating.
  const quiet = new Set<string>();
  for (const [name, t] of Object.entries(tables) as [string, EbTable | undefined][]) {
    if (!t) continue;
    for (const c of t.chains)
      if (c.builtin && c.rules.length === 0 && c.policy === 'ACCEPT') quiet.add(`${name}:${c.name}`);
  }
  return {
    evaluate(table: 'nat' | 'filter', hook: BridgeHook, frame: EthernetFrame, ctx): NetfilterStep | undefined {
      const t = tables[table];
      if (!t || quiet.has(`${table}:${hook}`)) return undefined;
      if (!t.chains.some((c) => c.name === hook)) return undefined;
      const r = evaluateEbtables(t, hook, frame, ctx);
      const matchedAny = r.visited.some((v) => v.matched);
      if (!matchedAny && r.verdict === 'ACCEPT') return undefined;
      const path = [hook, ...r.events.filter((e) => e.kind === 'jump').map((e) => (e.kind === 'jump' ? e.to : ''))];
      const d = r.decidedBy;
      if (d.kind === 'rule')
        return {
          kind: 'netfilter',
          family: 'bridge',
          table,
          hook,
          verdict: r.verdict,
          chain: d.chain,
          ruleNumber: d.index + 1,
          ruleText: renderEbtablesRule(d.rule, { style }),
          origin: d.rule.origin,
          path,
          rulesVisited: r.visited.length,
        };
      return {
        kind: 'netfilter',
        family: 'bridge',
        table,
        hook,
        verdict: r.verdict,
        chain: d.chain,
        ruleText: `policy: ${d.policy}`,
        origin: d.origin,
        path,
        rulesVisited: r.visited.length,
      };
    },
  };
}
