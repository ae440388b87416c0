/**
 * Name tables ebtables uses when printing: `/etc/ethertypes`, `/etc/protocols`, ARP opcodes. The nft table is
 * Debian 12's netbase `/etc/ethertypes`; the legacy table is the one the founding case's host evidently had (no
 * `RARP` entry, so `-p 0x8035` is printed).
 */

const ETHERTYPES_COMMON: readonly (readonly [string, number])[] = [
  ['IPv4', 0x0800],
  ['X25', 0x0805],
  ['ARP', 0x0806],
  ['FR_ARP', 0x0808],
  ['BPQ', 0x08ff],
  ['DEC', 0x6000],
  ['DNA_DL', 0x6001],
  ['DNA_RC', 0x6002],
  ['DNA_RT', 0x6003],
  ['LAT', 0x6004],
  ['DIAG', 0x6005],
  ['CUST', 0x6006],
  ['SCA', 0x6007],
  ['TEB', 0x6558],
  ['RAW_FR', 0x6559],
  ['AARP', 0x80f3],
  ['ATALK', 0x809b],
  ['802_1Q', 0x8100],
  ['IPX', 0x8137],
  ['NetBEUI', 0x8191],
  ['IPv6', 0x86dd],
  ['PPP', 0x880b],
  ['ATMMPOA', 0x884c],
  ['PPP_DISC', 0x8863],
  ['PPP_SES', 0x8864],
  ['ATMFATE', 0x8884],
  ['LOOP', 0x9000],
];

function table(entries: readonly (readonly [string, number])[]): ReadonlyMap<number, string> {
  const m = new Map<number, string>();
  for (const [name, n] of entries) if (!m.has(n)) m.set(n, name);
  return m;
}

/**
 * Debian 12's netbase `/etc/ethertypes` (what ebtables-nft 1.8.9 prints here: checked with the real tool, e.g.
 * `-p LLDP` for 0x88cc, `-p 0x9000`), first name per number, with its aliases for readers.
 */
const ETHERTYPES_NETBASE: readonly (readonly [string, number, ...string[]])[] = [
  ['IPv4', 0x0800, 'ip', 'ip4'],
  ['X25', 0x0805],
  ['ARP', 0x0806, 'ether-arp'],
  ['FR_ARP', 0x0808],
  ['BPQ', 0x08ff],
  ['TRILL', 0x22f3],
  ['L2-IS-IS', 0x22f4],
  ['TEB', 0x6558],
  ['RAW_FR', 0x6559],
  ['RARP', 0x8035],
  ['ATALK', 0x809b],
  ['AARP', 0x80f3],
  ['802_1Q', 0x8100, '8021q', '1q', '802.1q', 'dot1q'],
  ['IPX', 0x8137],
  ['NetBEUI', 0x8191],
  ['IPv6', 0x86dd, 'ip6'],
  ['PPP', 0x880b],
  ['MPLS', 0x8847],
  ['MPLS_MULTI', 0x8848],
  ['ATMMPOA', 0x884c],
  ['PPP_DISC', 0x8863],
  ['PPP_SES', 0x8864],
  ['ATMFATE', 0x8884],
  ['EAPOL', 0x888e],
  ['S-TAG', 0x88a8],
  ['EAP_PREAUTH', 0x88c7],
  ['LLDP', 0x88cc],
  ['MACSEC', 0x88e5],
  ['PBB', 0x88e7, 'macinmac'],
  ['MVRP', 0x88f5],
  ['PTP', 0x88f7],
  ['FCOE', 0x8906],
  ['FIP', 0x8914],
  ['ROCE', 0x8915],
  ['LoWPAN', 0xa0ed],
];

export const ETHERTYPE_NAMES_NFT: ReadonlyMap<number, string> = table(ETHERTYPES_NETBASE.map((e) => [e[0], e[1]]));
export const ETHERTYPE_NAMES_LEGACY: ReadonlyMap<number, string> = table(ETHERTYPES_COMMON);

/** Looks an ethertype up by name or alias, case-insensitively, in either file (for readers). */
export function ethertypeByName(name: string): number | undefined {
  const lower = name.toLowerCase();
  for (const [nm, n, ...aliases] of ETHERTYPES_NETBASE)
    if (nm.toLowerCase() === lower || aliases.includes(lower)) return n;
  for (const [n, nm] of ETHERTYPE_NAMES_LEGACY) if (nm.toLowerCase() === lower) return n;
  return undefined;
}

/** Debian netbase `/etc/protocols` (first name per number, as `getprotobynumber` returns). */
const PROTOCOLS: readonly (readonly [string, number])[] = [
  ['ip', 0],
  ['icmp', 1],
  ['igmp', 2],
  ['ggp', 3],
  ['ipencap', 4],
  ['st', 5],
  ['tcp', 6],
  ['egp', 8],
  ['igp', 9],
  ['pup', 12],
  ['udp', 17],
  ['hmp', 20],
  ['xns-idp', 22],
  ['rdp', 27],
  ['iso-tp4', 29],
  ['dccp', 33],
  ['xtp', 36],
  ['ddp', 37],
  ['idpr-cmtp', 38],
  ['ipv6', 41],
  ['ipv6-route', 43],
  ['ipv6-frag', 44],
  ['idrp', 45],
  ['rsvp', 46],
  ['gre', 47],
  ['esp', 50],
  ['ah', 51],
  ['skip', 57],
  ['ipv6-icmp', 58],
  ['ipv6-nonxt', 59],
  ['ipv6-opts', 60],
  ['rspf', 73],
  ['vmtp', 81],
  ['eigrp', 88],
  ['ospf', 89],
  ['ax.25', 93],
  ['ipip', 94],
  ['etherip', 97],
  ['encap', 98],
  ['pim', 103],
  ['ipcomp', 108],
  ['vrrp', 112],
  ['l2tp', 115],
  ['isis', 124],
  ['sctp', 132],
  ['fc', 133],
  ['mobility-header', 135],
  ['udplite', 136],
  ['mpls-in-ip', 137],
  ['manet', 138],
  ['hip', 139],
  ['shim6', 140],
  ['wesp', 141],
  ['rohc', 142],
  ['ethernet', 143],
];

export const PROTOCOL_NAMES: ReadonlyMap<number, string> = table(PROTOCOLS);

export function protocolByName(name: string): number | undefined {
  const lower = name.toLowerCase();
  for (const [nm, n] of PROTOCOLS) if (nm === lower) return n;
  return undefined;
}

/** `--arp-op` names, index = opcode - 1. */
export const ARP_OPCODE_NAMES: readonly string[] = [
  'Request',
  'Reply',
  'Request_Reverse',
  'Reply_Reverse',
  'DRARP_Request',
  'DRARP_Reply',
  'DRARP_Error',
  'InARP_Request',
  'ARP_NAK',
];

export function arpOpcodeByName(name: string): number | undefined {
  const i = ARP_OPCODE_NAMES.findIndex((n) => n.toLowerCase() === name.toLowerCase());
  return i < 0 ? undefined : i + 1;
}

/** ICMPv6 type names ebtables prints for `--ip6-icmp-type T` with the full code range. */
export const ICMPV6_TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [1, 'destination-unreachable'],
  [2, 'packet-too-big'],
  [3, 'time-exceeded'],
  [4, 'parameter-problem'],
  [128, 'echo-request'],
  [129, 'echo-reply'],
  [133, 'router-solicitation'],
  [134, 'router-advertisement'],
  [135, 'neighbour-solicitation'],
  [136, 'neighbour-advertisement'],
  [137, 'redirect'],
]);

/** `-m icmp --icmp-type NAME` names of iptables (libxt_icmp): type and code (code undefined = any code). */
export const ICMP_TYPES_BY_NAME: ReadonlyMap<string, { readonly type: number; readonly code?: number }> = new Map(
  (
    [
      ['echo-reply', 0],
      ['destination-unreachable', 3],
      ['network-unreachable', 3, 0],
      ['host-unreachable', 3, 1],
      ['protocol-unreachable', 3, 2],
      ['port-unreachable', 3, 3],
      ['fragmentation-needed', 3, 4],
      ['source-route-failed', 3, 5],
      ['network-unknown', 3, 6],
      ['host-unknown', 3, 7],
      ['network-prohibited', 3, 9],
      ['host-prohibited', 3, 10],
      ['TOS-network-unreachable', 3, 11],
      ['TOS-host-unreachable', 3, 12],
      ['communication-prohibited', 3, 13],
      ['host-precedence-violation', 3, 14],
      ['precedence-cutoff', 3, 15],
      ['source-quench', 4],
      ['redirect', 5],
      ['network-redirect', 5, 0],
      ['host-redirect', 5, 1],
      ['TOS-network-redirect', 5, 2],
      ['TOS-host-redirect', 5, 3],
      ['echo-request', 8],
      ['router-advertisement', 9],
      ['router-solicitation', 10],
      ['time-exceeded', 11],
      ['ttl-zero-during-transit', 11, 0],
      ['ttl-zero-during-reassembly', 11, 1],
      ['parameter-problem', 12],
      ['ip-header-bad', 12, 0],
      ['required-option-missing', 12, 1],
      ['timestamp-request', 13],
      ['timestamp-reply', 14],
      ['address-mask-request', 17],
      ['address-mask-reply', 18],
    ] as const
  ).map(([n, type, code]) => [n, code === undefined ? { type } : { type, code }]),
);

/** `-m icmp6 --icmpv6-type NAME` names of ip6tables (libxt_icmp6). */
export const ICMPV6_TYPES_BY_NAME: ReadonlyMap<string, { readonly type: number; readonly code?: number }> = new Map(
  (
    [
      ['destination-unreachable', 1],
      ['no-route', 1, 0],
      ['communication-prohibited', 1, 1],
      ['beyond-scope', 1, 2],
      ['address-unreachable', 1, 3],
      ['port-unreachable', 1, 4],
      ['failed-policy', 1, 5],
      ['reject-route', 1, 6],
      ['packet-too-big', 2],
      ['time-exceeded', 3],
      ['ttl-zero-during-transit', 3, 0],
      ['ttl-zero-during-reassembly', 3, 1],
      ['parameter-problem', 4],
      ['bad-header', 4, 0],
      ['unknown-header-type', 4, 1],
      ['unknown-option', 4, 2],
      ['echo-request', 128],
      ['echo-reply', 129],
      ['router-solicitation', 133],
      ['router-advertisement', 134],
      ['neighbour-solicitation', 135],
      ['neighbor-solicitation', 135],
      ['neighbour-advertisement', 136],
      ['neighbor-advertisement', 136],
      ['redirect', 137],
    ] as const
  ).map(([n, type, code]) => [n, code === undefined ? { type } : { type, code }]),
);
