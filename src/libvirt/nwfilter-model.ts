/**
 * libvirt's network-filter model: filters, rules, filterrefs, bindings. Attribute values are kept as written (a
 * literal or a variable reference such as `$IP`, `$IP[1]`, `$IP[@2]`); the compiler resolves and converts them.
 */
import type { Mac } from '../addr/mac.ts';
import type { Origin } from '../source/origin.ts';

export type NwRuleAction = 'drop' | 'accept' | 'reject' | 'return' | 'continue';
export type NwRuleDirection = 'in' | 'out' | 'inout';

/** Protocol elements whose rules become ebtables rules. */
export const ETHERNET_PROTOCOLS = ['mac', 'vlan', 'stp', 'arp', 'rarp', 'ip', 'ipv6'] as const;
/** Protocol elements whose rules become iptables (IPv4) rules. */
export const IPV4_L4_PROTOCOLS = ['tcp', 'udp', 'udplite', 'esp', 'ah', 'sctp', 'icmp', 'all', 'igmp'] as const;
/** Protocol elements whose rules become ip6tables rules. */
export const IPV6_L4_PROTOCOLS = [
  'tcp-ipv6',
  'udp-ipv6',
  'udplite-ipv6',
  'esp-ipv6',
  'ah-ipv6',
  'sctp-ipv6',
  'icmpv6',
  'all-ipv6',
] as const;

export type EthernetProtocol = (typeof ETHERNET_PROTOCOLS)[number];
export type NwProtocol =
  | 'none'
  | EthernetProtocol
  | (typeof IPV4_L4_PROTOCOLS)[number]
  | (typeof IPV6_L4_PROTOCOLS)[number];

export const ALL_PROTOCOL_ELEMENTS: readonly NwProtocol[] = [
  ...ETHERNET_PROTOCOLS,
  ...IPV4_L4_PROTOCOLS,
  ...IPV6_L4_PROTOCOLS,
];

export function isEthernetProtocol(p: NwProtocol): p is 'none' | EthernetProtocol {
  return p === 'none' || (ETHERNET_PROTOCOLS as readonly string[]).includes(p);
}

/** One attribute of a protocol element: the text as written, and whether `match='no'` negates it. */
export interface NwAttrValue {
  readonly raw: string;
  readonly negated: boolean;
}

export interface NwRule {
  readonly kind: 'rule';
  readonly action: NwRuleAction;
  readonly direction: NwRuleDirection;
  /** −1000..1000, default 500. */
  readonly priority: number;
  /** False when `statematch='0'|'false'`. */
  readonly statematch: boolean;
  readonly protocol: NwProtocol;
  /** Attributes in libvirt's attribute-table order (which fixes variable iteration order). */
  readonly attrs: ReadonlyMap<string, NwAttrValue>;
  readonly origin: Origin;
}

export interface NwFilterRef {
  readonly kind: 'filterref';
  readonly filter: string;
  /** Repeated names form lists, in order. */
  readonly params: ReadonlyMap<string, readonly string[]>;
  readonly origin: Origin;
}

export type NwFilterEntry = NwRule | NwFilterRef;

export interface NwFilter {
  readonly name: string;
  /** `root` or a name starting with mac, vlan, stp, arp, rarp, ipv4, ipv6. */
  readonly chain: string;
  /** Chain priority (explicit or libvirt's default for the chain prefix). */
  readonly priority: number;
  readonly uuid?: string;
  readonly entries: readonly NwFilterEntry[];
  readonly builtin: boolean;
  readonly origin: Origin;
}

/** What libvirt binds to a port: a `<filterbinding>` or what it derives from a domain `<interface>`. */
export interface NwFilterBinding {
  readonly ownerName?: string;
  readonly ownerUuid?: string;
  /** The tap device, e.g. `vnet0`. */
  readonly portdev: string;
  readonly linkdev?: string;
  readonly mac: Mac;
  readonly filter: string;
  readonly params: ReadonlyMap<string, readonly string[]>;
  /** The `<filterref>` (with its parameters) whose `via` is the domain interface or binding. */
  readonly origin: Origin;
}

/** Default chain priorities by chain-name prefix (`stp` has none in the code: 0). */
export const CHAIN_PRIORITIES: readonly (readonly [string, number])[] = [
  ['root', 0],
  ['mac', -800],
  ['vlan', -750],
  ['ipv4', -700],
  ['ipv6', -600],
  ['arp', -500],
  ['rarp', -400],
];

export const CHAIN_PREFIXES = ['mac', 'vlan', 'stp', 'arp', 'rarp', 'ipv4', 'ipv6'] as const;

export function defaultChainPriority(chain: string): number {
  for (const [prefix, prio] of CHAIN_PRIORITIES) if (chain.startsWith(prefix)) return prio;
  return 0;
}

/** `virNWFilterIsAllowedChain` + `virNWFilterIsValidChainName`: undefined when valid, else libvirt's complaint. */
export function checkChainName(chain: string): string | undefined {
  if (chain.length > 12) return `Name of chain is longer than 12 characters`;
  if (!/^[a-zA-Z0-9_.:-]+$/.test(chain)) return `Chain name contains invalid characters`;
  if (chain === 'root') return undefined;
  if (CHAIN_PREFIXES.some((p) => chain.startsWith(p))) return undefined;
  return `Invalid chain name '${chain}'. Please use a chain name called 'root' or any of the following prefixes: ${CHAIN_PREFIXES.join(', ')}`;
}
