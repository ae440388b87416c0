/**
 * Connection tracking of one network namespace, as nf_conntrack keeps it: entries keyed by their original tuple and
 * found by either direction, TCP states moved by the kernel's state table (`tcp_conntracks` in
 * nf_conntrack_proto_tcp.c), and the ctstate a packet gets for iptables' `-m conntrack --ctstate`/`-m state`.
 *
 * What matters for load balancers: a host that sees a connection's SYN but never its SYN-ACK (one-way DR traffic
 * through a host with br_netfilter, or the director itself) tracks it in SYN_SENT, and the client's next packet —
 * its ACK, its request — is an invalid transition (SYN_SENT + ACK in the original direction): ctstate INVALID, which
 * `--ctstate INVALID -j DROP` drops. A host that sees neither the SYN nor the SYN-ACK picks the connection up from the
 * middle (`nf_conntrack_tcp_loose=1`, the default): NEW. Windows and sequence numbers are not tracked
 * (as with `nf_conntrack_tcp_be_liberal=1`); UDP and other protocols are NEW until a reply is seen.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { CtState } from '../netfilter/iptables-model.ts';
import type { Origin } from '../source/origin.ts';
import { type Ipv4Packet, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../wire/types.ts';

export const CT_TCP_STATES = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'LAST_ACK',
  'TIME_WAIT',
  'CLOSE',
  'SYN_SENT2',
] as const;
export type CtTcpState = (typeof CT_TCP_STATES)[number];

const sNO = 0;
const sSS = 1;
const sSR = 2;
const sES = 3;
const sFW = 4;
const sCW = 5;
const sLA = 6;
const sTW = 7;
const sCL = 8;
const sS2 = 9;
const sIV = 10;
const sIG = 11;

/** `tcp_conntracks[dir][index][state]` (index: syn, synack, fin, ack, rst, none). */
const TABLE: readonly (readonly (readonly number[])[])[] = [
  [
    [sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2],
    [sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR],
    [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    [sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV],
    [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
  [
    [sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2],
    [sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR],
    [sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV],
    [sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG],
    [sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL],
    [sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV],
  ],
];

/** `get_conntrack_index`. */
function tcpIndex(flags: number): number {
  if (flags & TCP_RST) return 4;
  if (flags & TCP_SYN) return flags & TCP_ACK ? 1 : 0;
  if (flags & TCP_FIN) return 2;
  if (flags & TCP_ACK) return 3;
  return 5;
}

const INDEX_NAMES = ['SYN', 'SYN-ACK', 'FIN', 'ACK', 'RST', 'no flags'];

interface Entry {
  readonly key: string;
  readonly replyKey: string;
  /** TCP state index (0 for other protocols). */
  state: number;
  seenReply: boolean;
  /** The packet that made the entry (it is still unconfirmed while that packet is in the namespace). */
  readonly by?: Ipv4Packet;
}

/** What conntrack made of one packet. */
export interface CtResult {
  readonly ctState: CtState;
  readonly ctDir: 'ORIGINAL' | 'REPLY';
  /** TCP: the state before and after, e.g. `SYN_SENT → INVALID (ACK in the original direction)`. */
  readonly explanation: string;
}

function tuple(p: Ipv4Packet): { key: string; replyKey: string; tcpFlags?: number } | undefined {
  const l4 = p.payload;
  if (l4.kind === 'tcp')
    return {
      key: `6 ${p.src}:${l4.srcPort} ${p.dst}:${l4.dstPort}`,
      replyKey: `6 ${p.dst}:${l4.dstPort} ${p.src}:${l4.srcPort}`,
      tcpFlags: l4.flags,
    };
  if (l4.kind === 'udp')
    return {
      key: `17 ${p.src}:${l4.srcPort} ${p.dst}:${l4.dstPort}`,
      replyKey: `17 ${p.dst}:${l4.dstPort} ${p.src}:${l4.srcPort}`,
    };
  return { key: `${p.protocol} ${p.src} ${p.dst}`, replyKey: `${p.protocol} ${p.dst} ${p.src}` };
}

/** One side of a NAT manip: the address (and port) a connection's packets get. */
export interface NatManip {
  readonly addr: Ipv4;
  readonly port?: number;
  /** The rule that made the binding. */
  readonly origin: Origin;
}

/** A connection nf_nat has seen (`nf_nat_setup_info`): its tuple as it arrived and the manips bound to it. */
export interface NatBinding {
  readonly proto: number;
  readonly src: Ipv4;
  readonly dst: Ipv4;
  readonly sport?: number;
  readonly dport?: number;
  /** Destination NAT bound in PREROUTING/OUTPUT. */
  dnat?: NatManip;
  /** Source NAT bound in POSTROUTING. */
  snat?: NatManip;
  /** nat POSTROUTING has been consulted (the binding is complete). */
  postDone: boolean;
}

/** Where a packet stands in a connection nf_nat has bound. */
export type NatLookup =
  | { readonly dir: 'original'; readonly binding: NatBinding }
  | { readonly dir: 'reply'; readonly binding: NatBinding };

function endpoints(p: Ipv4Packet): { sport?: number; dport?: number } {
  const l4 = p.payload;
  return l4.kind === 'tcp' || l4.kind === 'udp' ? { sport: l4.srcPort, dport: l4.dstPort } : {};
}

function natKey(proto: number, src: Ipv4, sport: number | undefined, dst: Ipv4, dport: number | undefined): string {
  return `${proto} ${src}:${sport ?? ''} ${dst}:${dport ?? ''}`;
}

/** A packet's tuple as a NAT key. */
function pktNatKey(p: Ipv4Packet): string {
  const e = endpoints(p);
  return natKey(p.protocol, p.src, e.sport, p.dst, e.dport);
}

/** The tuple a binding's packets have after its DNAT (before SNAT), original direction. */
function midKey(b: NatBinding): string {
  return natKey(b.proto, b.src, b.sport, b.dnat?.addr ?? b.dst, b.dnat?.port ?? b.dport);
}

/** The tuple of a binding's replies after their destination was de-SNATed (what POSTROUTING sees). */
function replyMidKey(b: NatBinding): string {
  return natKey(b.proto, b.dnat?.addr ?? b.dst, b.dnat?.port ?? b.dport, b.src, b.sport);
}

/** The tuple of a binding's replies as they arrive (before any un-NAT). */
function replyKeyOf(b: NatBinding): string {
  return natKey(
    b.proto,
    b.dnat?.addr ?? b.dst,
    b.dnat?.port ?? b.dport,
    b.snat?.addr ?? b.src,
    b.snat?.port ?? b.sport,
  );
}

/** The conntrack table of one namespace, for one probe. */
export class Conntrack {
  /** nf_nat bindings by original tuple, by the tuple after DNAT, and by reply tuple. */
  private readonly natOrig = new Map<string, NatBinding>();
  private readonly natMid = new Map<string, NatBinding>();
  private readonly natReply = new Map<string, NatBinding>();
  private readonly natReplyMid = new Map<string, NatBinding>();
  /** Packet marks (skb->mark) a hypervisor's mangle table set, by packet. */
  private readonly marks = new WeakMap<Ipv4Packet, number>();

  /** The mark a packet carries in this namespace (0: none). */
  markOf(pkt: Ipv4Packet): number {
    return this.marks.get(pkt) ?? 0;
  }

  /** The packet carries `mark` from here on. */
  setMark(pkt: Ipv4Packet, mark: number): void {
    if (mark !== 0 || this.marks.has(pkt)) this.marks.set(pkt, mark);
  }

  /** Packets br_netfilter already ran through the IPv4 PRE_ROUTING hooks (`ip_sabotage_in` skips them later). */
  private readonly prerouted = new WeakSet<Ipv4Packet>();

  /**
   * The binding a packet belongs to, by its tuple as it is now: in PREROUTING/OUTPUT (`pre`: an original packet before
   * DNAT, a reply as it arrives) or in POSTROUTING (`post`: after DNAT, a reply after its de-SNAT).
   */
  natLookup(pkt: Ipv4Packet, at: 'pre' | 'post'): NatLookup | undefined {
    const k = pktNatKey(pkt);
    const o = (at === 'pre' ? this.natOrig : this.natMid).get(k);
    if (o) return { dir: 'original', binding: o };
    const r = (at === 'pre' ? this.natReply : this.natReplyMid).get(k);
    return r ? { dir: 'reply', binding: r } : undefined;
  }

  /** A new connection's first packet passed nat PREROUTING/OUTPUT: bind its DNAT (or none). */
  natBegin(pkt: Ipv4Packet, dnat: NatManip | undefined): NatBinding {
    const e = endpoints(pkt);
    const b: NatBinding = {
      proto: pkt.protocol,
      src: pkt.src,
      dst: pkt.dst,
      ...e,
      ...(dnat ? { dnat } : {}),
      postDone: false,
    };
    this.natOrig.set(pktNatKey(pkt), b);
    this.natMid.set(midKey(b), b);
    this.natReply.set(replyKeyOf(b), b);
    this.natReplyMid.set(replyMidKey(b), b);
    return b;
  }

  /** nat POSTROUTING was consulted for a binding's first packet: bind its SNAT (or none). */
  natComplete(b: NatBinding, snat: NatManip | undefined): void {
    if (snat) {
      this.natReply.delete(replyKeyOf(b));
      b.snat = snat;
      this.natReply.set(replyKeyOf(b), b);
    }
    b.postDone = true;
  }

  /** br_netfilter ran the packet through PRE_ROUTING (raw, conntrack, mangle, nat) on the bridge. */
  markPrerouted(pkt: Ipv4Packet): void {
    this.prerouted.add(pkt);
  }

  /** Whether br_netfilter already ran this packet through PRE_ROUTING (the stack does not run it again). */
  wasPrerouted(pkt: Ipv4Packet): boolean {
    return this.prerouted.has(pkt);
  }

  private readonly byKey = new Map<string, Entry>();
  private readonly seen = new WeakMap<Ipv4Packet, CtResult>();
  /** Source NAT bindings: the reply tuple of a translated connection → the source it had before. */
  private readonly snatByReply = new Map<string, { readonly addr: Ipv4; readonly origin: Origin }>();

  /** nf_nat: `translated` left with a rewritten source; replies to it are de-NATed back to `original`. */
  bindSnat(translated: Ipv4Packet, original: Ipv4, origin: Origin): void {
    const t = tuple(translated);
    if (t) this.snatByReply.set(t.replyKey, { addr: original, origin });
  }

  /** The address a reply's destination is de-NATed to (nf_nat at PRE_ROUTING), when it answers a source-NATed flow. */
  unSnat(reply: Ipv4Packet): { readonly addr: Ipv4; readonly origin: Origin } | undefined {
    const t = tuple(reply);
    return t ? this.snatByReply.get(t.key) : undefined;
  }

  /**
   * `track`, once per packet object: the same packet meeting this namespace's hooks again (a DR frame bridged a
   * second time on its way from the director to a real server on the same host) keeps its first classification.
   */
  trackOnce(pkt: Ipv4Packet): CtResult {
    let r = this.seen.get(pkt);
    if (r === undefined) {
      r = this.track(pkt);
      this.seen.set(pkt, r);
    }
    return r;
  }

  /**
   * Tracks `pkt` (nf_conntrack_in at PRE_ROUTING or LOCAL_OUT) and returns its ctstate. A packet already tracked in
   * this namespace (the same packet meeting a second hook) is classified again without a second state change: call
   * it once per packet per namespace.
   */
  track(pkt: Ipv4Packet): CtResult {
    const rel = this.related(pkt);
    if (rel !== undefined) return rel;
    const t = tuple(pkt)!;
    // Entries are filed under both tuples: the packet's own tuple finds its entry in either direction.
    let e = this.byKey.get(t.key);
    const dir: 0 | 1 = e !== undefined && e.key !== t.key ? 1 : 0;
    if (t.tcpFlags === undefined) {
      if (e === undefined) {
        e = { key: t.key, replyKey: t.replyKey, state: 0, seenReply: false, by: pkt };
        this.byKey.set(t.key, e);
        this.byKey.set(t.replyKey, e);
        return { ctState: 'NEW', ctDir: 'ORIGINAL', explanation: 'new entry' };
      }
      if (dir === 1) e.seenReply = true;
      return {
        ctState: dir === 1 || e.seenReply ? 'ESTABLISHED' : 'NEW',
        ctDir: dir === 1 ? 'REPLY' : 'ORIGINAL',
        explanation: dir === 1 ? 'reply of a tracked entry' : 'entry without a reply yet',
      };
    }
    const index = tcpIndex(t.tcpFlags);
    const what = INDEX_NAMES[index]!;
    if (e === undefined) {
      // tcp_new: only a SYN, or (nf_conntrack_tcp_loose=1) an ACK picked up mid-stream, creates an entry.
      const next = TABLE[0]![index]![sNO]!;
      if (next === sIV || next === sIG)
        return {
          ctState: 'INVALID',
          ctDir: 'ORIGINAL',
          explanation: `a ${what} that belongs to no tracked connection cannot start one`,
        };
      e = { key: t.key, replyKey: t.replyKey, state: next, seenReply: false, by: pkt };
      this.byKey.set(t.key, e);
      this.byKey.set(t.replyKey, e);
      return {
        ctState: 'NEW',
        ctDir: 'ORIGINAL',
        explanation:
          next === sSS
            ? 'new entry SYN_SENT'
            : `new entry picked up mid-stream (${what}, nf_conntrack_tcp_loose=1): ${CT_TCP_STATES[next]}`,
      };
    }
    const old = e.state;
    const next = TABLE[dir]![index]![old]!;
    const dirName = dir === 0 ? 'ORIGINAL' : 'REPLY';
    if (next === sIV)
      return {
        ctState: 'INVALID',
        ctDir: dirName,
        explanation: `${CT_TCP_STATES[old]} + ${what} in the ${dir === 0 ? 'original' : 'reply'} direction is an invalid transition${old === sSS && index === 3 && dir === 0 ? ' (this namespace saw the SYN but never the SYN-ACK)' : ''}`,
      };
    if (dir === 1) e.seenReply = true;
    if (next !== sIG) e.state = next;
    const ctState: CtState = dir === 1 || e.seenReply ? 'ESTABLISHED' : 'NEW';
    return {
      ctState,
      ctDir: dirName,
      explanation:
        next === sIG
          ? `${CT_TCP_STATES[old]} + ${what}: ignored, state kept`
          : `${CT_TCP_STATES[old]} → ${CT_TCP_STATES[next]}`,
    };
  }

  /**
   * IPVS takes `pkt` without `net.ipv4.vs.conntrack=1` (`ip_vs_notrack`): the entry conntrack made for it at
   * PRE_ROUTING is never confirmed and goes with it; an entry an earlier packet made stays.
   */
  forget(pkt: Ipv4Packet): void {
    const t = tuple(pkt);
    const e = t && this.byKey.get(t.key);
    if (!e || e.by !== pkt) return;
    this.byKey.delete(e.key);
    this.byKey.delete(e.replyKey);
  }

  /**
   * IPVS NAT with `net.ipv4.vs.conntrack=1` (`ip_vs_update_conntrack`): the entry of `original` (client → VIP) gets
   * the reply tuple of `translated` (client → real server), so the real server's answer belongs to it.
   */
  alterReply(original: Ipv4Packet, translated: Ipv4Packet): void {
    const o = tuple(original);
    const t = tuple(translated);
    const e = o && this.byKey.get(o.key);
    if (!e || !t) return;
    this.byKey.set(t.replyKey, e);
  }

  /**
   * An ICMP error (destination unreachable, time exceeded, parameter problem) quoting a packet of a tracked
   * connection is RELATED to it (`nf_conntrack_icmp_error` looks the quoted tuple up).
   */
  private related(pkt: Ipv4Packet): CtResult | undefined {
    const p = pkt.payload;
    if (p.kind !== 'icmp' || (p.type !== 3 && p.type !== 11 && p.type !== 12) || p.payload.length < 28)
      return undefined;
    const b = p.payload;
    const ihl = (b[0]! & 15) * 4;
    if (b.length < ihl + 4) return undefined;
    const u32 = (o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
    const proto = b[9]!;
    const src = u32(12);
    const dst = u32(16);
    const sport = (b[ihl]! << 8) | b[ihl + 1]!;
    const dport = (b[ihl + 2]! << 8) | b[ihl + 3]!;
    const key = proto === 6 || proto === 17 ? `${proto} ${src}:${sport} ${dst}:${dport}` : `${proto} ${src} ${dst}`;
    const e = this.byKey.get(key);
    if (e === undefined) return undefined;
    return {
      ctState: 'RELATED',
      ctDir: e.key === key ? 'REPLY' : 'ORIGINAL',
      explanation: `an ICMP error about the tracked connection ${formatIpv4(src as never)}:${sport} → ${formatIpv4(dst as never)}:${dport}`,
    };
  }

  /** The entries as `conntrack -L` would list their tuples and states (for notes and tests). */
  list(): string[] {
    const out: string[] = [];
    for (const [k, e] of this.byKey) {
      if (k !== e.key) continue;
      const [proto, a, b] = k.split(' ');
      const fmt = (s: string) => {
        const [ip, port] = s.split(':');
        return `${formatIpv4(Number(ip) as never)}${port !== undefined ? `:${port}` : ''}`;
      };
      out.push(
        `${proto === '6' ? 'tcp' : proto === '17' ? 'udp' : proto} ${proto === '6' ? CT_TCP_STATES[e.state] : ''} ${fmt(a!)} → ${fmt(b!)}${e.seenReply ? '' : ' [UNREPLIED]'}`,
      );
    }
    return out;
  }
}
