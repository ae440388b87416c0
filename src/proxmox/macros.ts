/**
 * The rule macros of the Proxmox VE firewall (`IN HTTP(ACCEPT)` …): each expands to one rule per entry, in order,
 * with the user's action and options added. Protocols and ports are the firewall's own (pve-firewall 6.0.4, see
 * docs/proxmox.md); a macro listed in `V6` uses that expansion in the IPv6 ruleset, and a V6-only macro is skipped in
 * the IPv4 ruleset.
 */

export interface MacroRule {
  readonly proto: string;
  readonly dport?: string;
  readonly sport?: string;
}

const t = (dport: string): MacroRule => ({ proto: 'tcp', dport });
const u = (dport: string, sport?: string): MacroRule =>
  sport === undefined ? { proto: 'udp', dport } : { proto: 'udp', dport, sport };
const p = (proto: string): MacroRule => ({ proto });
const icmp = (dport: string): MacroRule => ({ proto: 'icmp', dport });
const icmp6 = (dport: string): MacroRule => ({ proto: 'icmpv6', dport });

export const MACROS: Readonly<Record<string, readonly MacroRule[]>> = {
  Amanda: [u('10080'), t('10080')],
  Auth: [t('113')],
  BGP: [t('179')],
  BitTorrent: [t('6881:6889'), u('6881')],
  BitTorrent32: [t('6881:6999'), u('6881')],
  Ceph: [t('6789'), t('3300'), t('6800:7300')],
  CVS: [t('2401')],
  Citrix: [t('1494'), u('1604'), t('2598')],
  DAAP: [t('3689'), u('3689')],
  DCC: [t('6277')],
  DHCPfwd: [u('67:68', '67:68')],
  DNS: [u('53'), t('53')],
  Distcc: [t('3632')],
  FTP: [t('21')],
  Finger: [t('79')],
  GNUnet: [t('2086'), u('2086'), t('1080'), u('1080')],
  GRE: [p('47')],
  Git: [t('9418')],
  HKP: [t('11371')],
  HTTP: [t('80')],
  HTTPS: [t('443')],
  ICPV2: [u('3130')],
  ICQ: [t('5190')],
  IMAP: [t('143')],
  IMAPS: [t('993')],
  IPIP: [p('94')],
  IPsec: [u('500', '500'), p('50')],
  IPsecah: [u('500', '500'), p('51')],
  IPsecnat: [u('500'), u('4500'), p('50')],
  IRC: [t('6667')],
  Jetdirect: [t('9100')],
  L2TP: [u('1701')],
  LDAP: [t('389')],
  LDAPS: [t('636')],
  MSNP: [t('1863')],
  MSSQL: [t('1433')],
  Mail: [t('25'), t('465'), t('587')],
  MDNS: [u('5353')],
  Munin: [t('4949')],
  MySQL: [t('3306')],
  NNTP: [t('119')],
  NNTPS: [t('563')],
  NTP: [u('123')],
  OSPF: [p('89')],
  OpenVPN: [u('1194')],
  PCA: [u('5632'), t('5631')],
  PMG: [t('8006')],
  POP3: [t('110')],
  POP3S: [t('995')],
  PPtP: [p('47'), t('1723')],
  Ping: [icmp('echo-request')],
  PostgreSQL: [t('5432')],
  Printer: [t('515')],
  RDP: [t('3389')],
  RIP: [u('520')],
  RNDC: [t('953')],
  Razor: [t('2703')],
  Rdate: [t('37')],
  Rsync: [t('873')],
  SANE: [t('6566')],
  SMB: [u('135,445'), u('137:139'), u('1024:65535', '137'), t('135,139,445')],
  SMBswat: [t('901')],
  SMTP: [t('25')],
  SMTPS: [t('465')],
  SNMP: [u('161:162'), t('161')],
  SPAMD: [t('783')],
  SSH: [t('22')],
  SVN: [t('3690')],
  SixXS: [t('3874'), u('3740'), p('41'), u('5072,8374')],
  SPICEproxy: [t('3128')],
  Squid: [t('3128')],
  Submission: [t('587')],
  Syslog: [u('514'), t('514')],
  TFTP: [u('69')],
  Telnet: [t('23')],
  Telnets: [t('992')],
  Time: [t('37')],
  Trcrt: [u('33434:33524'), icmp('echo-request')],
  VNC: [t('5900:5999')],
  VNCL: [t('5500')],
  Web: [t('80'), t('443')],
  Webcache: [t('8080')],
  Webmin: [t('10000')],
  Whois: [t('43')],
  // IPv6-only macros
  NeighborDiscovery: [
    icmp6('router-solicitation'),
    icmp6('router-advertisement'),
    icmp6('neighbor-solicitation'),
    icmp6('neighbor-advertisement'),
  ],
  DHCPv6: [u('546:547', '546:547')],
};

/** IPv6 expansions that replace the IPv4 one in the IPv6 ruleset. */
export const MACROS_V6: Readonly<Record<string, readonly MacroRule[]>> = {
  Ping: [icmp6('echo-request')],
  NeighborDiscovery: MACROS.NeighborDiscovery!,
  DHCPv6: MACROS.DHCPv6!,
  Trcrt: [u('33434:33524'), icmp6('echo-request')],
};

/** Macros that exist only for IPv6 (skipped in the IPv4 ruleset). */
export const V6_ONLY_MACROS: ReadonlySet<string> = new Set(['NeighborDiscovery', 'DHCPv6']);

const CANONICAL = new Map(Object.keys(MACROS).map((k) => [k.toLowerCase(), k]));

/** The canonical spelling of a macro name (names are case-insensitive), or undefined. */
export function canonicalMacro(name: string): string | undefined {
  return CANONICAL.get(name.toLowerCase());
}
