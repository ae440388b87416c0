/**
 * Readers for the kernel's own account of dropped packets, and what each drop reason means in the model:
 *
 * - the `skb:kfree_skb` tracepoint as `perf script` prints it
 *   (`COMM PID [CPU] TIME: skb:kfree_skb: skbaddr=0x… rx_sk=(nil) protocol=2048 location=nft_do_chain+0x46f reason: NETFILTER_DROP`)
 *   and as tracefs prints it (`/sys/kernel/tracing/trace`: `COMM-PID [CPU] FLAGS TIME: kfree_skb: skbaddr=… reason: …`);
 *   kernels before 5.17 print no `reason:` (the location then says what it can);
 * - dropwatch (`dropwatch -l kas`): `N drops at SYMBOL+OFF (0xADDR) …` or `N drops at location 0xADDR`;
 * - pwru's default text output (a header `SKB CPU PROCESS [TIMESTAMP] NETNS MARK/x IFACE PROTO MTU LEN TUPLE FUNC`,
 *   then one line per kernel function an skb passed: `0xffff… 1 ~bin/curl:1234 4026531840 0 eth0:2 0x0800 1500 60
 *   192.0.2.1:5000->192.0.2.2:80(tcp) kfree_skb_reason(SKB_DROP_REASON_NETFILTER_DROP)`); its drop events are
 *   the `kfree_skb_reason(…)` / `sk_skb_reason_drop(…)` lines, the others are where the packet went.
 *
 * Lines that are none of these are issues naming file and line.
 */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import type { Disposition, EndCause } from '../trace/types.ts';

export type DropTool = 'perf' | 'tracefs' | 'dropwatch' | 'pwru';

export interface KernelPacketEvent {
  readonly tool: DropTool;
  /** `NETFILTER_DROP` (without `SKB_DROP_REASON_`), when the kernel said; undefined for a pwru path event. */
  readonly reason?: string;
  /** True for a drop (kfree_skb), false for a pwru event on the packet's way. */
  readonly drop: boolean;
  /** `nft_do_chain+0x46f` (the freeing site) or the pwru function. */
  readonly location?: string;
  /** Ether type as a number (2048 = IPv4, 2054 = ARP). */
  readonly protocol?: number;
  readonly skb?: string;
  readonly netns?: string;
  readonly iface?: string;
  readonly tuple?: {
    readonly src: string;
    readonly sport: number;
    readonly dst: string;
    readonly dport: number;
    readonly proto: string;
  };
  /** dropwatch aggregates: how many drops the line stands for. */
  readonly count: number;
  readonly pos: Position;
}

const KFREE = /\b(?:skb:)?kfree_skb:\s+(.*)$/;

function kv(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const x of text.matchAll(/(\w+)=(\S+)/g)) m.set(x[1]!, x[2]!);
  return m;
}

function fromTracepoint(line: string, tool: DropTool, pos: Position): KernelPacketEvent | undefined {
  const m = KFREE.exec(line);
  if (!m) return undefined;
  const f = kv(m[1]!);
  const reason = /\breason:\s*(\S+)/.exec(m[1]!)?.[1];
  const proto = Number(f.get('protocol'));
  return {
    tool,
    drop: true,
    ...(reason ? { reason: reason.replace(/^SKB_DROP_REASON_/, '') } : {}),
    ...(f.get('location') ? { location: f.get('location')!.replace(/\/0x[0-9a-f]+$/, '') } : {}),
    ...(Number.isInteger(proto) ? { protocol: proto } : {}),
    ...(f.get('skbaddr') ? { skb: f.get('skbaddr')! } : {}),
    count: 1,
    pos,
  };
}

const PWRU_TUPLE = /^(\[[^\]]*\]|[0-9.]*):(\d+)->(\[[^\]]*\]|[0-9.]*):(\d+)\(([^)]*)\)$/;

/** Reads any of the four forms (one file holds one of them). */
export function readKernelDrops(text: string, file: string): ReadResult<KernelPacketEvent[]> {
  const out: KernelPacketEvent[] = [];
  const issues: Issue[] = [];
  const lines = text.split('\n');
  let pwruCols: string[] | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const pos = filePos(file, i + 1);
    if (/^(TIME\s+)?SKB\s+CPU\s+PROCESS\b/.test(line)) {
      pwruCols = line.replace('MARK/x', 'MARK').split(/\s+/);
      continue;
    }
    if (pwruCols) {
      const e = pwruLine(line, pwruCols, pos);
      if (typeof e === 'string') issues.push(issue('drops-bad-line', e, pos));
      else out.push(e);
      continue;
    }
    const tp = fromTracepoint(line, line.includes('skb:kfree_skb:') ? 'perf' : 'tracefs', pos);
    if (tp) {
      out.push(tp);
      continue;
    }
    const dw = /^(\d+) drops? at (?:location )?(\S+)(?:\s+\((0x[0-9a-f]+)\))?(.*)$/.exec(line);
    if (dw) {
      const reason = /\breason:?\s*([A-Z_]+)/.exec(dw[4]!)?.[1];
      out.push({
        tool: 'dropwatch',
        drop: true,
        location: dw[2]!,
        ...(reason ? { reason: reason.replace(/^SKB_DROP_REASON_/, '') } : {}),
        count: Number(dw[1]),
        pos,
      });
      continue;
    }
    // dropwatch's own chatter.
    if (
      /^(Initializing|Initalizing|dropwatch>|Enabling|Kernel monitoring|Issue Ctrl-C|Got a stop|Deactivation)/.test(
        line,
      )
    )
      continue;
    issues.push(
      issue(
        'drops-bad-line',
        `expected a kfree_skb tracepoint line (perf script or tracefs), 'N drops at LOCATION' (dropwatch) or pwru's header, got '${line.length > 160 ? `${line.slice(0, 157)}…` : line}'`,
        pos,
      ),
    );
  }
  return { value: out, issues };
}

function pwruLine(line: string, cols: readonly string[], pos: Position): KernelPacketEvent | string {
  const w = line.split(/\s+/);
  // FUNC is last (and may be followed by CALLER/TUNNEL, not read); TUPLE is the word with '->'.
  const ti = w.findIndex((x) => x.includes('->'));
  const at = (name: string) => {
    const k = cols.indexOf(name);
    return k < 0 ? undefined : w[k];
  };
  const skb = at('SKB');
  if (skb === undefined || !/^0x[0-9a-f]+$/.test(skb))
    return `expected a pwru line starting with the skb address (0x…) under the header's SKB column, got '${line.slice(0, 120)}'`;
  const func = ti >= 0 ? w[ti + 1] : w[cols.indexOf('FUNC')];
  if (func === undefined) return 'a pwru line without its FUNC column';
  const tm = ti >= 0 ? PWRU_TUPLE.exec(w[ti]!) : null;
  const r = /^(?:kfree_skb_reason|sk_skb_reason_drop)\((?:SKB_DROP_REASON_)?([A-Z0-9_]+)\)$/.exec(func);
  const proto = Number(at('PROTO'));
  const iface = at('IFACE');
  return {
    tool: 'pwru',
    drop: r !== null || /^kfree_skb\b/.test(func),
    ...(r ? { reason: r[1]! } : {}),
    location: func.replace(/\(.*$/, ''),
    ...(Number.isInteger(proto) ? { protocol: proto } : {}),
    skb,
    ...(at('NETNS') !== undefined ? { netns: at('NETNS')! } : {}),
    ...(iface !== undefined && iface !== '0' ? { iface: iface.replace(/:\d+$/, '') } : {}),
    ...(tm
      ? {
          tuple: {
            src: tm[1]!.replace(/^\[|\]$/g, ''),
            sport: Number(tm[2]),
            dst: tm[3]!.replace(/^\[|\]$/g, ''),
            dport: Number(tm[4]),
            proto: tm[5]!.replace(/:.*$/, ''),
          },
        }
      : {}),
    count: 1,
    pos,
  };
}

/** What a kernel drop is in the model's words: the disposition and end causes a trace would show. */
export interface DropKind {
  readonly kind: string;
  readonly dispositions: readonly Disposition[];
  readonly causes?: readonly EndCause[];
}

const FILTER: DropKind = { kind: 'netfilter drop', dispositions: ['dropped-by-filter'] };

/** Drop reasons (include/net/dropreason-core.h) the model has a counterpart for. */
export const DROP_REASONS: Readonly<Record<string, DropKind>> = {
  NETFILTER_DROP: FILTER,
  IP_RPFILTER: { kind: 'reverse-path filter', dispositions: ['dropped-by-kernel'], causes: ['rp-filter'] },
  IP_INADDRERRORS: {
    kind: 'not forwarded (forwarding off or not a local address)',
    dispositions: ['dropped-by-kernel'],
    causes: ['ip-forward-off', 'not-local'],
  },
  IP_INVALID_SOURCE: { kind: 'martian source', dispositions: ['dropped-by-kernel'], causes: ['martian-source'] },
  IP_LOCAL_SOURCE: { kind: 'martian source', dispositions: ['dropped-by-kernel'], causes: ['martian-source'] },
  IP_LOCALNET: { kind: 'martian source', dispositions: ['dropped-by-kernel'], causes: ['martian-source'] },
  IP_INNOROUTES: { kind: 'no route', dispositions: ['no-route'] },
  IP_OUTNOROUTES: { kind: 'no route', dispositions: ['no-route'] },
  OTHERHOST: { kind: 'frame not for this host', dispositions: ['discarded'] },
  NO_SOCKET: { kind: 'no socket (refused)', dispositions: ['refused'] },
  NEIGH_FAILED: { kind: 'neighbour unresolved', dispositions: ['arp-unresolved'] },
  NEIGH_QUEUEFULL: { kind: 'neighbour unresolved', dispositions: ['arp-unresolved'] },
  PKT_TOO_BIG: { kind: 'too big', dispositions: ['dropped-by-kernel'], causes: ['frag-needed', 'too-big-for-port'] },
  IP_NOPROTO: { kind: 'no IPIP tunnel', dispositions: ['dropped-by-kernel'], causes: ['no-ipip'] },
};

/** Freeing sites that mean a netfilter verdict on kernels that print no reason. */
const NETFILTER_SITES = /^(nf_hook_slow|nft_do_chain|ebt_do_table|ipt_do_table|ip6t_do_table|br_nf_)/;

/** The model's kind of a kernel drop, or undefined when the model has none (then it is listed as such). */
export function dropKindOf(e: KernelPacketEvent): DropKind | undefined {
  if (e.reason !== undefined && e.reason !== 'NOT_SPECIFIED') return DROP_REASONS[e.reason];
  if (e.location !== undefined && NETFILTER_SITES.test(e.location)) return FILTER;
  return undefined;
}
