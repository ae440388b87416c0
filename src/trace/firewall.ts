/** Adapts the ebtables evaluator to the walker: one NetfilterStep per hook that had something to say. */
import { evaluateEbtables } from '../netfilter/ebtables-eval.ts';
import type { EbRule, EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { BridgeFirewall, BridgeHook } from './engines.ts';
import type { NetfilterStep } from './types.ts';

export interface BridgeTables {
  readonly nat?: EbTable;
  readonly filter?: EbTable;
}

const RULE_TEXT = { nft: new WeakMap<EbRule, string>(), legacy: new WeakMap<EbRule, string>() };

/** A rule as `ebtables -L` prints it, rendered once per rule. */
function ruleText(rule: EbRule, style: EbStyle): string {
  let t = RULE_TEXT[style].get(rule);
  if (t === undefined) {
    t = renderEbtablesRule(rule, { style });
    RULE_TEXT[style].set(rule, t);
  }
  return t;
}

function liveHooks(t: EbTable | undefined): Set<string> {
  const out = new Set<string>();
  for (const c of t?.chains ?? []) if (c.builtin && (c.rules.length > 0 || c.policy !== 'ACCEPT')) out.add(c.name);
  return out;
}

export function makeBridgeFirewall(tables: BridgeTables, style: EbStyle): BridgeFirewall {
  // Hooks that hold no rule and accept by policy cannot change anything: skip them without evaluating.
  const live = { nat: liveHooks(tables.nat), filter: liveHooks(tables.filter) };
  return {
    evaluate(table: 'nat' | 'filter', hook: BridgeHook, frame: EthernetFrame, ctx): NetfilterStep | undefined {
      const t = tables[table];
      if (!t || !live[table].has(hook)) return undefined;
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
          ruleText: ruleText(d.rule, style),
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
