/**
 * The iptables/ip6tables rule model (the `filter` table libvirt's nwfilter driver fills: `libvirt-in`, `libvirt-out`,
 * `libvirt-in-post`, `libvirt-host-in`, `FI-`/`FO-`/`HI-` chains). A compiled nwfilter and an `iptables-save` read
 * from a host both end up here, so they can be rendered, compared and evaluated. Matches keep the order iptables
 * keeps (the order they were given on the command line), which is also the order `iptables-save` prints them in.
 */
import type { Mac } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';

export type IptFamily = 'ipv4' | 'ipv6';
/**
 * `mangle` and `raw` are read where they are evaluated: a director's PREROUTING marks (fwmark virtual services), a
 * hypervisor's raw PREROUTING NOTRACK (bridged packets conntrack leaves alone), a director's nat POSTROUTING source
 * NAT of the packets IPVS NAT-forwards (with `net.ipv4.vs.conntrack=1`); a hypervisor's nat table (DNAT/REDIRECT in
 * PREROUTING and OUTPUT, SNAT/MASQUERADE in POSTROUTING) on the traffic it routes or bridges through br_netfilter.
 */
export type IptTableName = 'filter' | 'mangle' | 'raw' | 'nat';

/** Built-in chains of the filter table, in listing order. */
export const IPT_BUILTIN_CHAINS: readonly string[] = ['INPUT', 'FORWARD', 'OUTPUT'];
/** Built-in chains of the raw table. */
export const IPT_RAW_CHAINS: readonly string[] = ['PREROUTING', 'OUTPUT'];
/** Built-in chains of the mangle table. */
export const IPT_MANGLE_CHAINS: readonly string[] = ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'];
/** Built-in chains of the nat table. */
export const IPT_NAT_CHAINS: readonly string[] = ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'];

export type IptPolicy = 'ACCEPT' | 'DROP';

/** An address with a prefix length (`-s`/`-d`); `addr` is already masked, in the tool's canonical text form. */
export interface IptAddrMatch {
  readonly addr: string;
  readonly prefixLen: number;
  readonly negated: boolean;
}

export interface IptIfaceMatch {
  /** A trailing `+` matches every name with that prefix. */
  readonly name: string;
  readonly negated: boolean;
}

export interface IptRange {
  readonly lo: number;
  readonly hi: number;
  readonly negated: boolean;
}

/** The source ports SNAT/MASQUERADE may pick (`--to-ports LO-HI`, `--to-source ADDR:LO-HI`). */
export interface IptPortRange {
  readonly lo: number;
  readonly hi: number;
}

export interface IptAddrRange {
  readonly from: string;
  readonly to: string;
  readonly negated: boolean;
}

/** TCP flag bits as the kernel numbers them. */
export const TCP_FLAG_BITS: readonly (readonly [string, number])[] = [
  ['FIN', 0x01],
  ['SYN', 0x02],
  ['RST', 0x04],
  ['PSH', 0x08],
  ['ACK', 0x10],
  ['URG', 0x20],
];

export type CtState = 'INVALID' | 'NEW' | 'RELATED' | 'ESTABLISHED' | 'UNTRACKED' | 'SNAT' | 'DNAT';
/** The order `-m conntrack --ctstate` prints states in. */
export const CT_STATE_ORDER: readonly CtState[] = [
  'INVALID',
  'NEW',
  'RELATED',
  'ESTABLISHED',
  'UNTRACKED',
  'SNAT',
  'DNAT',
];

export type IptMatch =
  | { readonly kind: 'mac'; readonly source: Mac; readonly negated: boolean }
  | { readonly kind: 'iprange'; readonly src?: IptAddrRange; readonly dst?: IptAddrRange }
  | { readonly kind: 'dscp'; readonly value: number; readonly negated: boolean }
  | {
      readonly kind: 'tcp';
      readonly sport?: IptRange;
      readonly dport?: IptRange;
      readonly option?: { readonly value: number; readonly negated: boolean };
      readonly flags?: { readonly mask: number; readonly comp: number; readonly negated: boolean };
    }
  | { readonly kind: 'udp'; readonly sport?: IptRange; readonly dport?: IptRange }
  | { readonly kind: 'sctp'; readonly sport?: IptRange; readonly dport?: IptRange }
  | {
      /** `-m icmp --icmp-type T[/C]`; type 255 = `any`. */
      readonly kind: 'icmp';
      readonly type: number;
      readonly codeLo: number;
      readonly codeHi: number;
      readonly negated: boolean;
    }
  | {
      readonly kind: 'icmp6';
      readonly type: number;
      readonly codeLo: number;
      readonly codeHi: number;
      readonly negated: boolean;
    }
  | {
      readonly kind: 'conntrack';
      readonly state?: { readonly states: readonly CtState[]; readonly negated: boolean };
      readonly dir?: 'ORIGINAL' | 'REPLY';
      /** Written with the legacy `-m state --state` match (same semantics, no SNAT/DNAT states, no `--ctdir`). */
      readonly legacy?: true;
    }
  | {
      readonly kind: 'set';
      readonly name: string;
      readonly flags: readonly ('src' | 'dst')[];
      readonly negated: boolean;
    }
  | {
      readonly kind: 'connlimit';
      readonly limit: number;
      /** `--connlimit-upto` when true. */
      readonly upto: boolean;
      readonly mask: number;
      readonly daddr: boolean;
    }
  | { readonly kind: 'comment'; readonly text: string }
  | {
      /** `-m mark --mark V[/M]`: (nfmark & M) == V. */
      readonly kind: 'mark';
      readonly value: number;
      readonly mask: number;
      readonly negated: boolean;
    }
  | {
      /** `-m addrtype`: the routing type of the source/destination address (UNICAST, LOCAL, BROADCAST, MULTICAST …). */
      readonly kind: 'addrtype';
      readonly src?: { readonly type: string; readonly negated: boolean };
      readonly dst?: { readonly type: string; readonly negated: boolean };
    }
  | {
      /** `-m limit`: matches while under the rate (lvsdoctor sends too few packets to exceed it). */
      readonly kind: 'limit';
      readonly rate: string;
      readonly burst?: number;
    }
  | {
      /** `-m multiport --dports/--sports/--ports L` (needs `-p tcp|udp|udplite|dccp|sctp`). */
      readonly kind: 'multiport';
      readonly which: 'dports' | 'sports' | 'ports';
      readonly ranges: readonly { readonly lo: number; readonly hi: number }[];
      readonly negated: boolean;
    }
  | {
      readonly kind: 'physdev';
      readonly in?: IptIfaceMatch;
      readonly out?: IptIfaceMatch;
      readonly isIn?: { readonly negated: boolean };
      readonly isOut?: { readonly negated: boolean };
      readonly isBridged?: { readonly negated: boolean };
    };

export type IptTarget =
  | { readonly kind: 'verdict'; readonly verdict: 'ACCEPT' | 'DROP' | 'RETURN' }
  | { readonly kind: 'reject'; readonly with: string }
  | { readonly kind: 'jump'; readonly chain: string }
  | { readonly kind: 'goto'; readonly chain: string }
  /** `-j MARK --set-xmark V/M` (nfmark = (nfmark & ~M) ^ V) — `--set-mark V/M` is `--set-xmark V/(M|V)`. */
  | { readonly kind: 'mark'; readonly value: number; readonly mask: number }
  /** `-j CONNMARK --set-xmark V/M` on the connection's mark; the packet goes on. */
  | { readonly kind: 'connmark'; readonly value: number; readonly mask: number }
  /** `-j NFLOG`: logs, the packet goes on. */
  | { readonly kind: 'nflog'; readonly prefix?: string; readonly group?: number }
  /** `-j NFQUEUE`: hands the packet to a userspace queue (with --queue-bypass it passes when nobody listens). */
  | { readonly kind: 'nfqueue'; readonly queue: string; readonly bypass: boolean }
  /**
   * raw: `-j NOTRACK` or `-j CT --notrack` (as iptables-nft saves both): conntrack leaves the packet alone (state
   * UNTRACKED); the packet goes on.
   */
  | { readonly kind: 'notrack'; readonly ct: boolean }
  /**
   * nat: `-j SNAT --to-source ADDR[:LO[-HI]]` (one IPv4 address): the source becomes ADDR (its port one of the range);
   * a final verdict.
   */
  | { readonly kind: 'snat'; readonly toSource: string; readonly toPorts?: IptPortRange }
  /** nat: `-j MASQUERADE`: the source becomes the out interface's address for the next hop; a final verdict. */
  | { readonly kind: 'masquerade'; readonly toPorts?: IptPortRange }
  /**
   * nat PREROUTING/OUTPUT: `-j DNAT --to-destination ADDR[:PORT]` (one IPv4 address, at most one port): the
   * destination (and port) becomes that; a final verdict.
   */
  | { readonly kind: 'dnat'; readonly toDest: string; readonly toPort?: number }
  /**
   * nat PREROUTING/OUTPUT: `-j REDIRECT [--to-ports PORT]`: the destination becomes the host itself (the primary
   * address of the interface the packet came in on; 127.0.0.1 for locally generated ones), the port PORT.
   */
  | { readonly kind: 'redirect'; readonly toPort?: number }
  /**
   * mangle: a target that changes nothing a trace decides on (CHECKSUM, TCPMSS, TOS, TTL, DSCP, CLASSIFY, ECN); the
   * packet goes on. Kept with its options as written, to be rendered back.
   */
  | { readonly kind: 'passive'; readonly name: string; readonly args: string };

export interface IptCounters {
  readonly packets: number;
  readonly bytes: number;
}

export interface IptRule {
  readonly src?: IptAddrMatch;
  readonly dst?: IptAddrMatch;
  readonly in?: IptIfaceMatch;
  readonly out?: IptIfaceMatch;
  /** `-p`: protocol number (0 = all, not printed). */
  readonly proto?: { readonly value: number; readonly negated: boolean };
  readonly matches: readonly IptMatch[];
  /** Undefined for a rule without `-j`/`-g` (counts only). */
  readonly target?: IptTarget;
  readonly counters?: IptCounters;
  readonly origin: Origin;
  /**
   * The rule as `nft list ruleset` printed it, with its chain (`table/chain`), when the host's rules came from
   * there: findings quote a rule in the syntax of its source.
   */
  readonly nft?: { readonly chain: string; readonly text: string };
}

export interface IptChain {
  readonly name: string;
  /** The chain came from `nft list ruleset`: its name there (`table/chain`), to quote its policy in nft's words. */
  readonly nft?: { readonly chain: string };
  readonly builtin: boolean;
  /** Built-in chains only. */
  readonly policy?: IptPolicy;
  readonly policyOrigin?: Origin;
  readonly counters?: IptCounters;
  readonly rules: readonly IptRule[];
  readonly origin: Origin;
  /**
   * Built-in chains only, read from `nft list ruleset`: the next base chain on the same hook. nftables runs every
   * base chain of a hook in priority order; an accept (by a rule or the policy) ends only this chain and the packet
   * goes on to `nextBaseChain`, a drop ends the hook.
   */
  readonly nextBaseChain?: string;
}

export interface IptTable {
  readonly family: IptFamily;
  readonly name: IptTableName;
  /** Built-in chains first, then user chains (any order; renderers sort like iptables-nft). */
  readonly chains: readonly IptChain[];
}

export function findIptChain(table: IptTable, name: string): IptChain | undefined {
  return table.chains.find((c) => c.name === name);
}

export function tcpFlagsText(bits: number): string {
  const names = TCP_FLAG_BITS.filter(([, b]) => (bits & b) !== 0).map(([n]) => n);
  return names.length === 0 ? 'NONE' : names.join(',');
}

/** Parses `SYN,ACK`, `ALL`, `NONE` (case-insensitive); undefined on an unknown name. */
export function parseTcpFlags(text: string): number | undefined {
  let bits = 0;
  for (const part of text.split(',')) {
    const p = part.trim().toUpperCase();
    if (p === 'ALL') bits |= 0x3f;
    else if (p === 'NONE') continue;
    else {
      const f = TCP_FLAG_BITS.find(([n]) => n === p);
      if (f === undefined) return undefined;
      bits |= f[1];
    }
  }
  return bits;
}
