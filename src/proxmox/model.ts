/**
 * The compiled Proxmox rules as lvsdoctor's netfilter model: iptables tables (read back from the generated rule text
 * with the same reader as `iptables-save` listings, so what is evaluated is what the kernel would be given, each rule
 * keeping its Proxmox origin) and the ipsets with `hash:net` semantics.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { type IpsetSet, ipsetContains, ipsetFromEntries } from '../netfilter/ipset.ts';
import type { IptChain, IptFamily, IptRule, IptTable } from '../netfilter/iptables-model.ts';
import { readIptablesRuleText } from '../netfilter/iptables-read.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit } from '../source/origin.ts';
import { type PveIpset, type PveRuleset, pveChainDigest } from './compile.ts';

const HOOKS: readonly (readonly [string, string])[] = [
  ['INPUT', 'PVEFW-INPUT'],
  ['FORWARD', 'PVEFW-FORWARD'],
  ['OUTPUT', 'PVEFW-OUTPUT'],
];

/** The filter table pve-firewall's rules make on a host whose built-in chains were empty, with policy ACCEPT. */
export function pveFilterTable(rs: PveRuleset, family: IptFamily): { table: IptTable; issues: Issue[] } {
  const issues: Issue[] = [];
  const names = new Set([...HOOKS.map(([b]) => b), ...rs.keys()]);
  const builtins: IptChain[] = HOOKS.map(([b, pve]) => {
    const hook = rs.has(pve)
      ? readIptablesRuleText(`-A ${b} -j ${pve}`, family, names, implicit(`pve-firewall hook ${b} → ${pve}`))
      : undefined;
    return {
      name: b,
      builtin: true,
      policy: 'ACCEPT',
      policyOrigin: implicit(`${b} policy ACCEPT (pve-firewall leaves built-in policies alone)`),
      rules: hook && 'rule' in hook ? [hook.rule] : [],
      origin: implicit(`built-in chain ${b}`),
    };
  });
  const user: IptChain[] = [];
  for (const [name, rules] of rs) {
    const out: IptRule[] = [];
    for (const r of rules) {
      const res = readIptablesRuleText(r.text, family, names, r.origin);
      if ('error' in res) {
        issues.push(
          issue(
            'pve-rule-not-modelled',
            `${r.text}: ${res.error}`,
            r.origin.pos,
            res.unsupported ? 'warning' : 'error',
          ),
        );
        continue;
      }
      out.push(res.rule);
    }
    const sig = `PVESIG:${pveChainDigest(rules)}`;
    out.push({ matches: [{ kind: 'comment', text: sig }], origin: implicit(`pve-firewall change digest of ${name}`) });
    user.push({ name, builtin: false, rules: out, origin: implicit(`pve-firewall chain ${name}`) });
  }
  return { table: { family, name: 'filter', chains: [...builtins, ...user] }, issues };
}

/** The compiled ipsets as sets to match against. */
export function pveIpsets(sets: ReadonlyMap<string, PveIpset>): Map<string, IpsetSet> {
  const out = new Map<string, IpsetSet>();
  for (const [name, s] of sets) out.set(name, ipsetFromEntries(name, s.family, s.entries));
  return out;
}

/** `ipsetContains` for the evaluator's context. */
export function ipsetLookup(sets: ReadonlyMap<string, IpsetSet>): (name: string, addr: Ipv4) => boolean | undefined {
  return (name, addr) => {
    const s = sets.get(name);
    return s === undefined ? undefined : ipsetContains(s, addr);
  };
}
