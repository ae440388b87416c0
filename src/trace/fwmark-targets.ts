/**
 * What a probe of an IPVS fwmark virtual service (`ipvsadm -A -f N`) is sent to: the director's own mangle
 * PREROUTING rules that set mark N (`-A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1`)
 * name the destination address and TCP ports a packet needs to be marked. Each such rule gives one probe target (its
 * address and first port); a rule without a single destination address or a TCP port names no packet to send.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { parseIpv4 } from '../addr/ipv4.ts';
import type { IptRule, IptTable } from '../netfilter/iptables-model.ts';
import type { Origin } from '../source/origin.ts';

export interface FwmarkTarget {
  readonly vip: Ipv4;
  readonly port: number;
  /** The marking rule. */
  readonly origin: Origin;
}

/** The mark a rule's MARK target leaves on an unmarked packet; undefined when it is not a MARK rule. */
function markOf(rule: IptRule): number | undefined {
  const t = rule.target;
  return t?.kind === 'mark' ? ((0 & ~t.mask) ^ t.value) >>> 0 : undefined;
}

/** The first TCP destination port a rule requires, or undefined when it names none (or only negated ones). */
function tcpPort(rule: IptRule): number | undefined {
  if (rule.proto?.value !== 6 || rule.proto.negated) return undefined;
  for (const m of rule.matches) {
    if (m.kind === 'tcp' && m.dport && !m.dport.negated) return m.dport.lo;
    if (m.kind === 'multiport' && !m.negated && m.which !== 'sports') return m.ranges[0]?.lo;
  }
  return undefined;
}

/**
 * The marking rules (any mark) whose destination address and TCP port take this packet's: when the packet arrived
 * unmarked, these are the rules that should have marked it (e.g. bound to another input interface).
 */
export function markRulesFor(
  mangle: IptTable | undefined,
  dst: Ipv4,
  port: number,
): { readonly rule: IptRule; readonly chain: string; readonly mark: number }[] {
  const out: { rule: IptRule; chain: string; mark: number }[] = [];
  for (const chain of mangle?.chains ?? [])
    for (const rule of chain.rules) {
      const mark = markOf(rule);
      if (mark === undefined || mark === 0 || rule.dst === undefined || rule.dst.negated) continue;
      if (parseIpv4(rule.dst.addr) !== dst || rule.dst.prefixLen !== 32) continue;
      if (!rule.matches.some((m) => tcpPortMatches(m, port))) continue;
      out.push({ rule, chain: chain.name, mark });
    }
  return out;
}

function tcpPortMatches(m: IptRule['matches'][number], port: number): boolean {
  if (m.kind === 'tcp') return m.dport !== undefined && !m.dport.negated && m.dport.lo <= port && port <= m.dport.hi;
  if (m.kind === 'multiport')
    return !m.negated && m.which !== 'sports' && m.ranges.some((r) => r.lo <= port && port <= r.hi);
  return false;
}

/** Probe targets for fwmark `mark` from the mangle PREROUTING chain and the chains it jumps to. */
export function fwmarkTargets(mangle: IptTable | undefined, mark: number): FwmarkTarget[] {
  if (mangle === undefined) return [];
  const out: FwmarkTarget[] = [];
  const seen = new Set<string>();
  const todo = ['PREROUTING'];
  while (todo.length > 0) {
    const name = todo.shift()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const chain = mangle.chains.find((c) => c.name === name);
    for (const rule of chain?.rules ?? []) {
      const t = rule.target;
      if (t?.kind === 'jump' || t?.kind === 'goto') todo.push(t.chain);
      if (markOf(rule) !== mark >>> 0) continue;
      const dst = rule.dst;
      if (dst === undefined || dst.negated || dst.prefixLen !== 32) continue;
      const vip = parseIpv4(dst.addr);
      const port = tcpPort(rule);
      if (vip === undefined || port === undefined) continue;
      out.push({ vip, port, origin: rule.origin });
    }
  }
  return out;
}
