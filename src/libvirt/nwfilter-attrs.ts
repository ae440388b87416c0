/**
 * The attribute tables of libvirt's protocol elements (`nwfilter_conf.c` `*Attributes[]`), in libvirt's order, with
 * their datatypes, and the conversion of attribute text into typed values.
 */

import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { formatIpv6Groups, ipv6ToGroups, parseIpv6 } from '../addr/ipv6.ts';
import { parseMac } from '../addr/mac.ts';
import { arpOpcodeByName } from '../netfilter/names.ts';
import type { NwProtocol } from './nwfilter-model.ts';

export type NwDatatype =
  | 'mac'
  | 'macmask-contiguous'
  | 'ipv4'
  | 'ipv4mask'
  | 'ipv6'
  | 'ipv6mask'
  | 'uint8'
  | 'uint16'
  | 'uint32'
  | 'protocolid'
  | 'encap'
  | 'opcode'
  | 'ipproto'
  | 'dscp'
  | 'vlanid'
  | 'boolean'
  | 'state'
  | 'ipsetname'
  | 'ipsetflags'
  | 'tcpflags'
  | 'string';

type Table = readonly (readonly [string, NwDatatype])[];

/** `checkMACMask`: the masks of the Ethernet header must be contiguous ones (verified on libvirt 9.0). */
const MAC4: Table = [
  ['srcmacaddr', 'mac'],
  ['srcmacmask', 'macmask-contiguous'],
  ['dstmacaddr', 'mac'],
  ['dstmacmask', 'macmask-contiguous'],
];

const COMMENT: Table = [['comment', 'string']];

const ARP: Table = [
  ...MAC4,
  ['hwtype', 'uint16'],
  ['protocoltype', 'uint16'],
  ['opcode', 'opcode'],
  ['arpsrcmacaddr', 'mac'],
  ['arpdstmacaddr', 'mac'],
  ['arpsrcipaddr', 'ipv4'],
  ['arpsrcipmask', 'ipv4mask'],
  ['arpdstipaddr', 'ipv4'],
  ['arpdstipmask', 'ipv4mask'],
  ['gratuitous', 'boolean'],
  ...COMMENT,
];

const PORTS: Table = [
  ['srcportstart', 'uint16'],
  ['srcportend', 'uint16'],
  ['dstportstart', 'uint16'],
  ['dstportend', 'uint16'],
];

function l4(ipDatatype: 'ipv4' | 'ipv6', extra: Table): Table {
  const mask = ipDatatype === 'ipv4' ? 'ipv4mask' : 'ipv6mask';
  return [
    ['srcmacaddr', 'mac'],
    ['srcipaddr', ipDatatype],
    ['srcipmask', mask],
    ['dstipaddr', ipDatatype],
    ['dstipmask', mask],
    ['srcipfrom', ipDatatype],
    ['srcipto', ipDatatype],
    ['dstipfrom', ipDatatype],
    // libvirt 9.0 quirk (verified): `dstipto` of the `-ipv6` elements is typed as an IPv4 address.
    ['dstipto', 'ipv4'],
    ['dscp', 'dscp'],
    ['connlimit-above', 'uint16'],
    ['state', 'state'],
    ['ipset', 'ipsetname'],
    ['ipsetflags', 'ipsetflags'],
    ...extra,
    ...COMMENT,
  ];
}

const TCP_EXTRA: Table = [...PORTS, ['option', 'uint8'], ['flags', 'tcpflags']];
const ICMP_EXTRA: Table = [
  ['type', 'uint8'],
  ['code', 'uint8'],
];

export const ATTRIBUTE_TABLES: Readonly<Record<Exclude<NwProtocol, 'none'>, Table>> = {
  mac: [...MAC4, ['protocolid', 'protocolid'], ...COMMENT],
  vlan: [...MAC4, ['vlanid', 'vlanid'], ['encap-protocol', 'encap'], ...COMMENT],
  stp: [
    ['srcmacaddr', 'mac'],
    ['srcmacmask', 'macmask-contiguous'],
    ['type', 'uint8'],
    ['flags', 'uint8'],
    ['root-priority', 'uint16'],
    ['root-priority-hi', 'uint16'],
    ['root-address', 'mac'],
    ['root-address-mask', 'macmask-contiguous'],
    ['root-cost', 'uint32'],
    ['root-cost-hi', 'uint32'],
    ['sender-priority', 'uint16'],
    ['sender-priority-hi', 'uint16'],
    ['sender-address', 'mac'],
    ['sender-address-mask', 'macmask-contiguous'],
    ['port', 'uint16'],
    ['port-hi', 'uint16'],
    ['age', 'uint16'],
    ['age-hi', 'uint16'],
    ['max-age', 'uint16'],
    ['max-age-hi', 'uint16'],
    ['hello-time', 'uint16'],
    ['hello-time-hi', 'uint16'],
    ['forward-delay', 'uint16'],
    ['forward-delay-hi', 'uint16'],
    ...COMMENT,
  ],
  arp: ARP,
  rarp: ARP,
  ip: [
    ...MAC4,
    ['srcipaddr', 'ipv4'],
    ['srcipmask', 'ipv4mask'],
    ['dstipaddr', 'ipv4'],
    ['dstipmask', 'ipv4mask'],
    ['protocol', 'ipproto'],
    ...PORTS,
    ['dscp', 'dscp'],
    ...COMMENT,
  ],
  ipv6: [
    ...MAC4,
    ['srcipaddr', 'ipv6'],
    ['srcipmask', 'ipv6mask'],
    ['dstipaddr', 'ipv6'],
    ['dstipmask', 'ipv6mask'],
    ['protocol', 'ipproto'],
    ...PORTS,
    ['type', 'uint8'],
    ['typeend', 'uint8'],
    ['code', 'uint8'],
    ['codeend', 'uint8'],
    ...COMMENT,
  ],
  tcp: l4('ipv4', TCP_EXTRA),
  udp: l4('ipv4', PORTS),
  sctp: l4('ipv4', PORTS),
  udplite: l4('ipv4', []),
  esp: l4('ipv4', []),
  ah: l4('ipv4', []),
  all: l4('ipv4', []),
  igmp: l4('ipv4', []),
  icmp: l4('ipv4', ICMP_EXTRA),
  // libvirt 9.0 (verified): `tcp-ipv6` has `option` but no `flags` (the attribute is silently ignored).
  'tcp-ipv6': l4('ipv6', [...PORTS, ['option', 'uint8']]),
  'udp-ipv6': l4('ipv6', PORTS),
  'sctp-ipv6': l4('ipv6', PORTS),
  'udplite-ipv6': l4('ipv6', []),
  'esp-ipv6': l4('ipv6', []),
  'ah-ipv6': l4('ipv6', []),
  'all-ipv6': l4('ipv6', []),
  icmpv6: l4('ipv6', ICMP_EXTRA),
};

export function attributeDatatype(protocol: NwProtocol, attr: string): NwDatatype | undefined {
  if (protocol === 'none') return undefined;
  return ATTRIBUTE_TABLES[protocol].find(([n]) => n === attr)?.[1];
}

/** Typed attribute values: numbers for numeric types, IPv4 as uint32, masks as prefix lengths, MAC/IPv6 canonical. */
export type NwValue = number | string | boolean;

const ETHERTYPE_WORDS: Readonly<Record<string, number>> = {
  arp: 0x0806,
  rarp: 0x8035,
  ipv4: 0x0800,
  ipv6: 0x86dd,
  vlan: 0x8100,
};

const IPPROTO_WORDS: Readonly<Record<string, number>> = {
  tcp: 6,
  udp: 17,
  udplite: 136,
  esp: 50,
  ah: 51,
  icmp: 1,
  igmp: 2,
  sctp: 132,
  icmpv6: 58,
};

function parseUint(text: string, max: number): number | undefined {
  const t = text.trim();
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(t)) n = Number.parseInt(t.slice(2), 16);
  else if (/^[0-9]+$/.test(t)) n = Number(t);
  else return undefined;
  return n <= max ? n : undefined;
}

function maskLenFromDotted(text: string): number | undefined {
  const a = parseIpv4(text);
  if (a === undefined) return undefined;
  let len = 0;
  while (len < 32 && ((a << len) & 0x80000000) !== 0) len++;
  return len === 32 || (a << len) >>> 0 === 0 ? len : undefined;
}

/** Converts attribute text to a typed value; returns an error message when libvirt would reject the value. */
/** The error for a value that does not convert (made only then: values are converted per port). */
function invalid(text: string): { error: string } {
  return { error: `invalid value '${text}'` };
}

export function convertValue(dt: NwDatatype, text: string): { value: NwValue } | { error: string } {
  switch (dt) {
    case 'mac': {
      const m = parseMac(text);
      return m === undefined || text.includes('-') ? invalid(text) : { value: m };
    }
    case 'macmask-contiguous': {
      const m = parseMac(text);
      if (m === undefined || text.includes('-')) return invalid(text);
      const bits = m
        .split(':')
        .map((x) => Number.parseInt(x, 16).toString(2).padStart(8, '0'))
        .join('');
      return /^1*0*$/.test(bits) ? { value: m } : invalid(text);
    }
    case 'ipv4': {
      const a = parseIpv4(text) ?? mappedIpv4(text);
      return a === undefined ? invalid(text) : { value: a };
    }
    case 'ipv4mask': {
      const n = parseUint(text, 32);
      if (n !== undefined && /^[0-9]+$/.test(text)) return { value: n };
      const d = maskLenFromDotted(text);
      return d === undefined ? invalid(text) : { value: d };
    }
    case 'ipv6': {
      const a = parseIpv6(text);
      return a === undefined ? invalid(text) : { value: a };
    }
    case 'ipv6mask': {
      if (/^[0-9]+$/.test(text) && Number(text) <= 128) return { value: Number(text) };
      const a = parseIpv6(text);
      if (a === undefined) return invalid(text);
      let len = 0;
      const g = ipv6ToGroups(a);
      for (const x of g) {
        for (let b = 15; b >= 0; b--) {
          if (((x >> b) & 1) === 1) len++;
          else return { value: len };
        }
      }
      return { value: len };
    }
    case 'uint8': {
      const n = parseUint(text, 0xff);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'uint16': {
      const n = parseUint(text, 0xffff);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'uint32': {
      const n = parseUint(text, 0xffffffff);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'dscp': {
      const n = parseUint(text, 63);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'vlanid': {
      const n = parseUint(text, 4095);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'protocolid': {
      const w = ETHERTYPE_WORDS[text.toLowerCase()];
      if (w !== undefined) return { value: w };
      const n = parseUint(text, 0xffff);
      return n === undefined || n < 0x600 ? invalid(text) : { value: n };
    }
    case 'encap': {
      const w = ETHERTYPE_WORDS[text.toLowerCase()];
      if (w !== undefined) return { value: w };
      const n = parseUint(text, 0xffff);
      return n === undefined || n < 0x3c ? invalid(text) : { value: n };
    }
    case 'opcode': {
      const w = arpOpcodeByName(text);
      if (w !== undefined) return { value: w };
      const n = parseUint(text, 0xffff);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'ipproto': {
      const w = IPPROTO_WORDS[text.toLowerCase()];
      if (w !== undefined) return { value: w };
      const n = parseUint(text, 0xff);
      return n === undefined ? invalid(text) : { value: n };
    }
    case 'boolean':
      return { value: ['true', 'yes', '1'].includes(text.toLowerCase()) };
    case 'state': {
      const s = parseStateList(text);
      return s === undefined ? invalid(text) : { value: s.join(',') };
    }
    case 'ipsetname':
      return text.length === 0 || text.length >= 32 || !/^[^\s'"]+$/.test(text) ? invalid(text) : { value: text };
    case 'ipsetflags': {
      const parts = text.split(',').map((x) => x.trim().toLowerCase());
      return parts.length === 0 || parts.length > 6 || parts.some((x) => x !== 'src' && x !== 'dst')
        ? invalid(text)
        : { value: parts.join(',') };
    }
    case 'tcpflags': {
      const f = parseNwTcpFlags(text);
      return f === undefined ? invalid(text) : { value: `${f.mask}/${f.flags}` };
    }
    case 'string':
      return text.length > 256 ? { error: 'comment is longer than 256 characters' } : { value: text };
  }
}

const STATE_NAMES = ['NEW', 'ESTABLISHED', 'RELATED', 'INVALID', 'NONE'] as const;
export type NwState = (typeof STATE_NAMES)[number];

/** `state='NEW,ESTABLISHED'` (case-insensitive); `NONE` clears the others. Undefined on an unknown name. */
export function parseStateList(text: string): NwState[] | undefined {
  const out: NwState[] = [];
  for (const part of text.split(',')) {
    const p = STATE_NAMES.find((n) => n === part.trim().toUpperCase());
    if (p === undefined) return undefined;
    if (!out.includes(p)) out.push(p);
  }
  if (out.includes('NONE')) return ['NONE'];
  return STATE_NAMES.filter((n) => out.includes(n));
}

const NW_TCP_FLAGS: Readonly<Record<string, number>> = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ALL: 0x3f,
  NONE: 0,
};

function parseFlagList(text: string): number | undefined {
  if (text === '') return undefined;
  let bits = 0;
  for (const part of text.split(',')) {
    const b = NW_TCP_FLAGS[part.toUpperCase()];
    if (b === undefined) return undefined;
    bits |= b;
  }
  return bits;
}

/** tcp `flags='MASK/FLAGS'`, e.g. `SYN/SYN,ACK`. */
export function parseNwTcpFlags(text: string): { mask: number; flags: number } | undefined {
  const i = text.indexOf('/');
  if (i < 0) return undefined;
  const mask = parseFlagList(text.slice(0, i));
  const flags = parseFlagList(text.slice(i + 1));
  return mask === undefined || flags === undefined ? undefined : { mask, flags };
}

/** Masks an IPv6 address to a prefix and formats it the way inet_ntop does (IPv4-mapped in dotted form). */
export function maskIpv6(addr: string, len: number): string {
  const g = ipv6ToGroups(addr as Parameters<typeof ipv6ToGroups>[0]).map((x, i) => {
    const bits = Math.max(0, Math.min(16, len - i * 16));
    const m = bits === 0 ? 0 : (0xffff << (16 - bits)) & 0xffff;
    return x & m;
  });
  return formatIpv6Ntop(g);
}

/**
 * libvirt's IPv4 attributes also take an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, `::ffff:a01:203`, any case) as
 * that IPv4 address (verified with libvirt 9.0: `srcipaddr='::ffff:a01:205'` installs `-s 10.1.2.5/32`); other IPv6
 * forms (`::10.1.2.3`, `::ffff:0:…`) are refused.
 */
function mappedIpv4(text: string): Ipv4 | undefined {
  if (!text.includes(':')) return undefined;
  const v6 = parseIpv6(text.toLowerCase());
  if (v6 === undefined) return undefined;
  const g = ipv6ToGroups(v6);
  if (!g.slice(0, 5).every((x) => x === 0) || g[5] !== 0xffff) return undefined;
  return parseIpv4(`${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`);
}

/** An IPv6 address as glibc `inet_ntop` prints it. */
export function ntopIpv6(addr: string): string {
  return formatIpv6Ntop(ipv6ToGroups(addr as Parameters<typeof ipv6ToGroups>[0]));
}

/** glibc `inet_ntop`: RFC 5952 compression, and dotted IPv4 after `::ffff:` or after exactly six zero groups. */
export function formatIpv6Ntop(g: readonly number[]): string {
  const dotted = `${g[6]! >> 8}.${g[6]! & 255}.${g[7]! >> 8}.${g[7]! & 255}`;
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return `::ffff:${dotted}`;
  if (g.slice(0, 6).every((x) => x === 0) && g[6] !== 0) return `::${dotted}`;
  return formatIpv6Groups(g);
}

/** A variable reference `$NAME`, `$NAME[N]` or `$NAME[@K]` (spaces allowed inside the brackets). */
export type NwVarAccess =
  | { readonly kind: 'iterator'; readonly name: string; readonly iterator: number }
  | { readonly kind: 'element'; readonly name: string; readonly index: number };

export function parseVarAccess(text: string): NwVarAccess | undefined | 'invalid' {
  const t = text.trim();
  if (!t.startsWith('$')) return undefined;
  // A lone `$` refers to a variable with an empty name, which no binding can give: libvirt 9.0 defines the filter
  // and refuses every binding of it (verified with a comment).
  if (t === '$') return { kind: 'iterator', name: '', iterator: 0 };
  const m = /^\$([A-Za-z0-9_]+)(?:\[\s*(@?)\s*([0-9]+)\s*\])?$/.exec(t);
  if (!m) return 'invalid';
  const name = m[1]!;
  if (m[3] === undefined) return { kind: 'iterator', name, iterator: 0 };
  const n = Number(m[3]);
  if (m[2] === '@') return n > 1000 ? 'invalid' : { kind: 'iterator', name, iterator: n };
  return { kind: 'element', name, index: n };
}
