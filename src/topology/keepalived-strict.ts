/**
 * What keepalived installs for a `vrrp_instance` in strict mode without `accept` (`vrrp_strict`, `strict_mode`,
 * `no_accept`), as keepalived 2.2.7 does in a namespace (seen with `nft list ruleset` in the lab): a table of its own,
 *
 *   table ip keepalived {
 *     set vips { type ipv4_addr; elements = { VIP… } }
 *     chain in  { type filter hook input  priority filter - 1; policy accept; ip daddr @vips drop }
 *     chain out { type filter hook output priority filter - 1; policy accept; ip saddr @vips drop }
 *   }
 *
 * Priority -1 runs before the iptables filter table (0) and before IPVS at LOCAL_IN (99): nothing accepts the
 * packet first, so it is modelled as an INPUT and an OUTPUT chain whose first rules drop, evaluated before the
 * guest's own filter table. keepalived fills the set while it is master; a member without the VIP receives nothing
 * for it, so the rules are there on every member.
 */
import { formatIpv4 } from '../addr/ipv4.ts';
import type { KeepalivedConfig } from '../ipvs/keepalived.ts';
import type { IptChain, IptRule, IptTable } from '../netfilter/iptables-model.ts';
import type { Origin } from '../source/origin.ts';

export function keepalivedStrictTable(conf: KeepalivedConfig): IptTable | undefined {
  const input: IptRule[] = [];
  const output: IptRule[] = [];
  for (const v of conf.vrrpInstances) {
    if (!v.strict || v.accept) continue;
    const origin: Origin = {
      kind: 'file',
      label: `vrrp_instance ${v.name} (strict, no accept: keepalived's nft table ip keepalived)`,
      pos: v.pos,
    };
    for (const vip of v.virtualIpaddresses) {
      if (vip.address.family !== 'ipv4') continue;
      const addr = { addr: formatIpv4(vip.address.addr), prefixLen: 32, negated: false };
      const drop = { kind: 'verdict', verdict: 'DROP' } as const;
      input.push({
        dst: addr,
        matches: [],
        target: drop,
        origin,
        nft: { chain: 'ip keepalived in', text: 'ip daddr @vips drop' },
      });
      output.push({
        src: addr,
        matches: [],
        target: drop,
        origin,
        nft: { chain: 'ip keepalived out', text: 'ip saddr @vips drop' },
      });
    }
  }
  if (input.length === 0) return undefined;
  const chain = (name: string, rules: IptRule[]): IptChain => ({
    name,
    nft: { chain: `ip keepalived ${name === 'INPUT' ? 'in' : 'out'}` },
    builtin: true,
    policy: 'ACCEPT',
    rules,
    origin: rules[0]!.origin,
  });
  return { family: 'ipv4', name: 'filter', chains: [chain('INPUT', input), chain('OUTPUT', output)] };
}
