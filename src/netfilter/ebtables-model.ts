/**
 * The ebtables rule model: tables, chains with policies, rules with their matches and targets. Both a compiled
 * libvirt nwfilter and a listing read from a host end up in this model, so they can be compared and evaluated.
 * Every rule and chain carries the `Origin` that produced it.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';

export type EbTableName = 'filter' | 'nat' | 'broute';

/** Built-in chains per table, in the order ebtables lists them. */
export const EB_BUILTIN_CHAINS: Readonly<Record<EbTableName, readonly string[]>> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'OUTPUT', 'POSTROUTING'],
  broute: ['BROUTING'],
};

/**
 * A chain policy. Built-in chains have ACCEPT or DROP; user chains RETURN (what ebtables-nft lists for a chain made
 * with a plain `-N`) or ACCEPT (ebtables-legacy's documented default), or an explicit `-P`.
 */
export type EbPolicy = 'ACCEPT' | 'DROP' | 'RETURN';

export type EbVerdict = 'ACCEPT' | 'DROP' | 'RETURN' | 'CONTINUE';

export type EbTarget =
  | { readonly kind: 'verdict'; readonly verdict: EbVerdict }
  | { readonly kind: 'jump'; readonly chain: string };

/** `-s`/`-d`/`--arp-mac-src`… with an optional mask (undefined = all ones) and `!`. */
export interface EbMacMatch {
  readonly addr: Mac;
  readonly mask?: Mac;
  readonly negated: boolean;
}

/** An IPv4 address with a 32-bit mask (ebtables accepts non-contiguous masks; libvirt emits CIDR lengths). */
export interface EbIpv4Match {
  readonly addr: Ipv4;
  /** Unsigned 32-bit mask. */
  readonly mask: number;
  readonly negated: boolean;
}

export interface EbIpv6Match {
  /** Address as written (canonical form when produced by lvsdoctor). */
  readonly addr: string;
  readonly prefixLen: number;
  readonly negated: boolean;
}

export interface EbValueMatch {
  readonly value: number;
  readonly negated: boolean;
}

export interface EbRangeMatch {
  readonly lo: number;
  readonly hi: number;
  readonly negated: boolean;
}

export interface EbIfaceMatch {
  /** Interface name; a trailing `+` matches every name with that prefix. */
  readonly name: string;
  readonly negated: boolean;
}

/** `-p`: an ethertype, or `Length` (802.3 frames whose type field is a length < 0x600). */
export type EbProtoMatch =
  | { readonly kind: 'ethertype'; readonly value: number; readonly negated: boolean }
  | { readonly kind: 'length'; readonly negated: boolean };

export interface EbIpMatch {
  readonly kind: 'ip';
  readonly src?: EbIpv4Match;
  readonly dst?: EbIpv4Match;
  /** Compared with the whole TOS byte. */
  readonly tos?: EbValueMatch;
  readonly proto?: EbValueMatch;
  readonly sport?: EbRangeMatch;
  readonly dport?: EbRangeMatch;
}

export interface EbArpMatch {
  readonly kind: 'arp';
  readonly op?: EbValueMatch;
  readonly htype?: EbValueMatch;
  readonly ptype?: EbValueMatch;
  readonly ipSrc?: EbIpv4Match;
  readonly ipDst?: EbIpv4Match;
  readonly macSrc?: EbMacMatch;
  readonly macDst?: EbMacMatch;
  readonly gratuitous?: { readonly negated: boolean };
}

export interface EbVlanMatch {
  readonly kind: 'vlan';
  readonly id?: EbValueMatch;
  readonly prio?: EbValueMatch;
  readonly encap?: EbValueMatch;
}

export interface EbIp6IcmpMatch {
  readonly typeLo: number;
  readonly typeHi: number;
  readonly codeLo: number;
  readonly codeHi: number;
  readonly negated: boolean;
}

/** Modelled and rendered; evaluation on IPv6 frames is reported as unsupported. */
export interface EbIp6Match {
  readonly kind: 'ip6';
  readonly src?: EbIpv6Match;
  readonly dst?: EbIpv6Match;
  readonly tclass?: EbValueMatch;
  readonly proto?: EbValueMatch;
  readonly sport?: EbRangeMatch;
  readonly dport?: EbRangeMatch;
  readonly icmpType?: EbIp6IcmpMatch;
}

export type EbStpRangeField =
  | 'root-prio'
  | 'root-cost'
  | 'sender-prio'
  | 'port'
  | 'msg-age'
  | 'max-age'
  | 'hello-time'
  | 'forward-delay';

/** Modelled and rendered; evaluation on BPDUs is reported as unsupported. */
export interface EbStpMatch {
  readonly kind: 'stp';
  readonly type?: EbValueMatch;
  readonly flags?: EbValueMatch;
  /** In ebtables' print order: root-prio, root-cost, sender-prio, port, msg-age, max-age, hello-time, forward-delay. */
  readonly ranges: readonly (EbRangeMatch & { readonly field: EbStpRangeField })[];
  readonly rootAddr?: EbMacMatch;
  readonly senderAddr?: EbMacMatch;
}

export type EbMatch = EbIpMatch | EbArpMatch | EbVlanMatch | EbIp6Match | EbStpMatch;

export interface EbCounters {
  readonly packets: number;
  readonly bytes: number;
}

/**
 * Rules whose matches and target are the very same objects — made from one template, such as the bulk compiler's
 * rules of one filter rule and value combination on many ports — may carry the same object under this key; a renderer
 * may then reuse the text of one for all of them. Rules differ in their origins only.
 */
export const SHARED_BODY: unique symbol = Symbol('ebtables rule body shared with other rules');

export interface EbRule {
  readonly [SHARED_BODY]?: object | undefined;
  readonly proto?: EbProtoMatch;
  readonly src?: EbMacMatch;
  readonly dst?: EbMacMatch;
  readonly in?: EbIfaceMatch;
  readonly out?: EbIfaceMatch;
  readonly logicalIn?: EbIfaceMatch;
  readonly logicalOut?: EbIfaceMatch;
  readonly matches: readonly EbMatch[];
  readonly target: EbTarget;
  readonly counters?: EbCounters;
  readonly origin: Origin;
}

/**
 * Chains whose rules are made on first read may give them under this key for one pass, without keeping them: a
 * renderer of a large table then need not hold every rule at once. The rules are equal to `rules`.
 */
export const RULES_ONCE: unique symbol = Symbol('ebtables chain rules for one pass');

export interface EbChain {
  readonly [RULES_ONCE]?: readonly EbRule[];
  readonly name: string;
  readonly builtin: boolean;
  readonly policy: EbPolicy;
  /** Where the policy comes from: `implicit` for defaults. */
  readonly policyOrigin: Origin;
  readonly rules: readonly EbRule[];
  readonly origin: Origin;
}

export interface EbTable {
  readonly name: EbTableName;
  /** Built-in chains first, then user chains in creation order (the order ebtables-legacy lists them). */
  readonly chains: readonly EbChain[];
}

/** Which listing conventions a host uses: `nft` = ebtables-nft (Debian 12 1.8.9), `legacy` = ebtables 2.0.x. */
export type EbStyle = 'nft' | 'legacy';

export function verdict(v: EbVerdict): EbTarget {
  return { kind: 'verdict', verdict: v };
}

export function jump(chain: string): EbTarget {
  return { kind: 'jump', chain };
}

export function findChain(table: EbTable, name: string): EbChain | undefined {
  return table.chains.find((c) => c.name === name);
}

/** The policy a user chain created with a plain `-N` gets in each implementation. */
export function defaultUserChainPolicy(style: EbStyle): EbPolicy {
  return style === 'nft' ? 'RETURN' : 'ACCEPT';
}
