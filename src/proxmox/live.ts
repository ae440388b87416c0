/**
 * A Proxmox node's live firewall — what `iptables-save`, `ebtables -L` and `ipset save` listed on it — beside what
 * its /etc/pve compiles to. pve-firewall owns only its chains (`PVEFW-…`, `GROUP-<name>-IN|OUT`, `tapXiY-IN|OUT`,
 * `vethXiY-…`, in ebtables also `tapXiY-OUT-ARP|-PROTO`), its sets (`PVEFW-…`) and the jumps into them from the
 * built-in chains; everything else on the node (Docker's chains, a hand-made rule in FORWARD) is not its doing.
 *
 * The trace follows the live rules when a scenario has them (the kernel filters with those); each live rule that
 * equals the compiled rule at the same place of its chain is linked to that rule's origin, so a drop names both the
 * listing line and the `.fw`/config line that made it, and the Proxmox findings still find the guest NIC.
 */

import { ebRuleKey, iptRuleKey, lcsPairs } from '../netfilter/drift.ts';
import type { EbChain, EbRule, EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import type { IptChain, IptRule, IptTable } from '../netfilter/iptables-model.ts';
import type { Origin } from '../source/origin.ts';

/** pve-firewall's chain names (Firewall.pm `is_pvefw_chain` and the ebtables chains of `generate_tap_layer2filter`). */
const PVE_CHAIN = /^(PVEFW-\S+|GROUP-[A-Za-z][A-Za-z0-9_-]*-(IN|OUT)|(tap|veth)\d+i\d+-(IN|OUT)(-ARP|-PROTO)?)$/;

export function isPveChain(name: string): boolean {
  return PVE_CHAIN.test(name);
}

/** pve-firewall's set names (`PVEFW-<vmid>-<name>-v4|v6`, or the hashed `PVEFW-<HEX>`). */
export function isPveSet(name: string): boolean {
  return name.startsWith('PVEFW-');
}

function intoPve(t: { readonly kind: string; readonly chain?: string } | undefined): boolean {
  return (t?.kind === 'jump' || t?.kind === 'goto') && t.chain !== undefined && isPveChain(t.chain);
}

/** pve-firewall's part of an iptables table: its chains, and of the built-in chains only the jumps into them. */
export function pveIptPart(t: IptTable): IptTable {
  const chains: IptChain[] = [];
  for (const c of t.chains)
    if (isPveChain(c.name)) chains.push(c);
    else if (c.builtin) chains.push({ ...c, rules: c.rules.filter((r) => intoPve(r.target)) });
  return { ...t, chains };
}

/** pve-firewall's part of an ebtables table (as `pveIptPart`). */
export function pveEbPart(t: EbTable): EbTable {
  const chains: EbChain[] = [];
  for (const c of t.chains)
    if (isPveChain(c.name)) chains.push(c);
    else if (c.builtin)
      chains.push(
        ebChain(
          c,
          c.rules.filter((r) => intoPve(r.target)),
        ),
      );
  return { name: t.name, chains };
}

/** A chain with other rules (built field by field: an ebtables chain may carry a render cache of its rules). */
function ebChain(c: EbChain, rules: readonly EbRule[]): EbChain {
  return { name: c.name, builtin: c.builtin, policy: c.policy, policyOrigin: c.policyOrigin, rules, origin: c.origin };
}

/** The live rule's origin (its listing line) made by the compiled rule's origin (its `.fw`/config line). */
function linked(live: Origin, compiled: Origin): Origin {
  return { ...live, label: `${live.label} (installed by pve-firewall)`, via: compiled };
}

/** Pairs live rules with the compiled rules they equal, chain by chain, in order (a longest common subsequence). */
function linkRules<R extends { readonly origin: Origin }>(
  live: readonly R[],
  compiled: readonly R[] | undefined,
  key: (r: R) => string,
): R[] {
  if (!compiled || compiled.length === 0) return [...live];
  const out = [...live];
  for (const [i, j] of lcsPairs(compiled.map(key), live.map(key)))
    out[j] = { ...live[j]!, origin: linked(live[j]!.origin, compiled[i]!.origin) };
  return out;
}

/** The live iptables table with each rule that pve-firewall's compilation has at that place linked to its origin. */
export function linkIptOrigins(live: IptTable, compiled: IptTable): IptTable {
  const byName = new Map(compiled.chains.map((c) => [c.name, c.rules]));
  return {
    ...live,
    chains: live.chains.map(
      (c): IptChain => ({ ...c, rules: linkRules<IptRule>(c.rules, byName.get(c.name), iptRuleKey) }),
    ),
  };
}

/** The live ebtables table linked to the compiled one's origins (as `linkIptOrigins`). */
export function linkEbOrigins(live: EbTable, compiled: EbTable, style: EbStyle): EbTable {
  const byName = new Map(compiled.chains.map((c) => [c.name, c.rules]));
  return {
    name: live.name,
    chains: live.chains.map((c) =>
      ebChain(
        c,
        linkRules<EbRule>(c.rules, byName.get(c.name), (r) => ebRuleKey(r, style)),
      ),
    ),
  };
}
