/**
 * The output formats of `lvsdoctor nwfilter compile`: what the host shows after libvirt instantiated the bindings,
 * in the text of each tool, or everything as JSON with origins.
 */
import type { EbTable } from '../netfilter/ebtables-model.ts';
import {
  listingOrder,
  renderEbtablesList,
  renderEbtablesRule,
  renderEbtablesSave,
} from '../netfilter/ebtables-render.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import {
  iptablesListingOrder,
  renderIptablesRuleBody,
  renderIptablesS,
  renderIptablesSave,
} from '../netfilter/iptables-render.ts';
import { formatIssue, type Issue } from '../source/issue.ts';
import { type Origin, renderOriginChain } from '../source/origin.ts';

export const OUTPUT_FORMATS = [
  'ebtables-nat-L',
  'ebtables-legacy-L',
  'ebtables-save',
  'iptables-save',
  'ip6tables-save',
  'iptables-S',
  'ip6tables-S',
  'json',
] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function isOutputFormat(s: string): s is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(s);
}

export interface CompiledTables {
  readonly nat: EbTable;
  readonly filter4: IptTable;
  readonly filter6: IptTable;
  readonly mode?: string;
  readonly failure?: string;
  readonly issues?: readonly Issue[];
}

/** User chains made with a plain `-N` list as policy ACCEPT with ebtables-legacy. */
function legacyPolicies(nat: EbTable): EbTable {
  return {
    ...nat,
    // Each property named: a chain may give its rules and origin through getters, which a spread would not copy.
    chains: nat.chains.map((c) =>
      !c.builtin && c.policy === 'RETURN'
        ? {
            name: c.name,
            builtin: c.builtin,
            policy: 'ACCEPT',
            policyOrigin: c.policyOrigin,
            rules: c.rules,
            origin: c.origin,
          }
        : c,
    ),
  };
}

function originText(o: Origin): string {
  return renderOriginChain(o);
}

function jsonTables(c: CompiledTables): unknown {
  const eb = listingOrder(c.nat, 'nft').map((ch) => ({
    name: ch.name,
    builtin: ch.builtin,
    policy: ch.policy,
    rules: ch.rules.map((r) => ({ rule: renderEbtablesRule(r, { style: 'nft' }), origin: originText(r.origin) })),
  }));
  const ipt = (t: IptTable) =>
    iptablesListingOrder(t).map((ch) => ({
      name: ch.name,
      builtin: ch.builtin,
      ...(ch.policy ? { policy: ch.policy } : {}),
      rules: ch.rules.map((r) => ({
        rule: renderIptablesRuleBody(r, t.family).trimStart(),
        origin: originText(r.origin),
      })),
    }));
  return {
    ...(c.mode !== undefined ? { mode: c.mode } : {}),
    ...(c.failure !== undefined ? { failure: c.failure } : {}),
    issues: (c.issues ?? []).map((i) => ({ ...i, text: formatIssue(i) })),
    ebtables: { nat: eb },
    iptables: { filter: ipt(c.filter4) },
    ip6tables: { filter: ipt(c.filter6) },
  };
}

/** Renders compiled tables in one of the output formats (text ends with a newline). */
export function renderCompiled(c: CompiledTables, format: OutputFormat): string {
  switch (format) {
    case 'ebtables-nat-L':
      return renderEbtablesList(c.nat, { style: 'nft' });
    case 'ebtables-legacy-L':
      return renderEbtablesList(legacyPolicies(c.nat), { style: 'legacy' });
    case 'ebtables-save':
      return renderEbtablesSave(c.nat);
    case 'iptables-save':
      return renderIptablesSave(c.filter4);
    case 'ip6tables-save':
      return renderIptablesSave(c.filter6);
    case 'iptables-S':
      return renderIptablesS(c.filter4);
    case 'ip6tables-S':
      return renderIptablesS(c.filter6);
    case 'json':
      return `${JSON.stringify(jsonTables(c), null, 2)}\n`;
  }
}
