/**
 * A node's own iptables filter and raw tables evaluated at one hook (the answer to the `node-table` question of
 * `decisions.ts`); where the hooks are and what conntrack state they see is `node-filter.ts`.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { evaluateIptables, type IptEvalContext } from '../netfilter/iptables-eval.ts';
import type { CtState, IptTable } from '../netfilter/iptables-model.ts';
import type { Node } from '../topology/model.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { evaluationStep } from './firewall.ts';
import { localAddress } from './node-config.ts';
import type { NetfilterStep } from './types.ts';

export type NodeHook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT';

/** What conntrack made of a packet in the node: the state `--ctstate` / `--state` rules match. */
export interface NodeCt {
  readonly ctState: CtState;
  readonly ctDir: 'ORIGINAL' | 'REPLY';
}

/** The interfaces and conntrack state a packet has at one of the node's hooks. */
export interface NodeHookCtx {
  readonly inIface?: string;
  readonly outIface?: string;
  readonly ct?: NodeCt;
}

export const UNTRACKED: NodeCt = { ctState: 'UNTRACKED', ctDir: 'ORIGINAL' };

/** True when the node has a filter or raw table of its own to evaluate. */
export function hasNodeTables(node: Node): boolean {
  return node.filter !== undefined || node.raw !== undefined || node.keepalivedDrops !== undefined;
}

/** Which of the node's tables a question names: its filter and raw tables, or keepalived's strict-mode drops. */
export type NodeTable = 'filter' | 'raw' | 'keepalived';

function tableOf(node: Node, t: NodeTable): IptTable | undefined {
  return t === 'keepalived' ? node.keepalivedDrops : node[t];
}

/** `-m addrtype` as the node's routing sees an address. */
function addrTypeOf(node: Node): (addr: Ipv4, which: 'src' | 'dst') => string {
  return (addr) => {
    if (addr >>> 28 === 0xe) return 'MULTICAST';
    if (addr === 0xffffffff) return 'BROADCAST';
    if (localAddress(node, addr)) return 'LOCAL';
    for (const i of node.interfaces.values())
      for (const a of i.addrs) {
        const mask = a.prefix.len === 0 ? 0 : (0xffffffff << (32 - a.prefix.len)) >>> 0;
        if (a.prefix.len < 31 && ((a.prefix.addr & mask) | (~mask >>> 0)) >>> 0 === addr) return 'BROADCAST';
      }
    return 'UNICAST';
  };
}

/**
 * One of the node's own tables at `hook`: the step (undefined when no rule matched and the policy accepts). In raw,
 * a NOTRACK rule (`-j NOTRACK`, `-j CT --notrack`: non-terminal) is named by the step and sets `notrack`.
 */
export function nodeTableStep(
  node: Node,
  table: NodeTable,
  hook: NodeHook,
  frame: EthernetFrame,
  ctx: NodeHookCtx,
): NetfilterStep | undefined {
  const t = tableOf(node, table);
  if (!t || frame.payload.kind !== 'ipv4') return undefined;
  const ectx: IptEvalContext = {
    ...(ctx.inIface !== undefined ? { inIface: ctx.inIface } : {}),
    ...(ctx.outIface !== undefined ? { outIface: ctx.outIface } : {}),
    ...(ctx.ct ? { ctState: ctx.ct.ctState, ctDir: ctx.ct.ctDir } : {}),
    addrType: addrTypeOf(node),
  };
  const r = evaluateIptables(t, hook, frame, ectx);
  const marker = table === 'raw' ? r.visited.find((v) => v.matched && v.rule.target?.kind === 'notrack') : undefined;
  if (!marker && !r.visited.some((v) => v.matched) && r.verdict === 'ACCEPT') return undefined;
  const d = r.decidedBy;
  // A DROP (or an ACCEPT by a rule) decides; a NOTRACK that let the packet go on is named when nothing else matched.
  const deciding =
    d.kind === 'rule'
      ? { chain: d.chain, index: d.index, rule: d.rule }
      : marker
        ? { chain: marker.chain, index: marker.index, rule: marker.rule }
        : undefined;
  return {
    ...evaluationStep(table === 'keepalived' ? 'filter' : table, hook, r, deciding, {
      text: d.kind === 'policy' && d.nft ? `policy ${d.policy.toLowerCase()}` : `policy ${r.verdict}`,
      nft: true,
    }),
    ...(marker ? { notrack: true } : {}),
  };
}
