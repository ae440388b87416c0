/**
 * `ebtables -t TABLE -L` listings in the two formats met in the field:
 * - `nft`: ebtables-nft 1.8.9 (Debian 12) — byte-identical to the recordings in the reference folder;
 * - `legacy`: ebtables 2.0.x — MACs without leading zeros, names from the host's `/etc/ethertypes`,
 *   user chains in creation order.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { formatMacShort, type Mac } from '../addr/mac.ts';
import {
  EB_BUILTIN_CHAINS,
  type EbChain,
  type EbIfaceMatch,
  type EbIp6IcmpMatch,
  type EbIpv4Match,
  type EbMacMatch,
  type EbMatch,
  type EbRangeMatch,
  type EbRule,
  type EbStyle,
  type EbTable,
  type EbTarget,
  RULES_ONCE,
  SHARED_BODY,
} from './ebtables-model.ts';
import { ARP_OPCODE_NAMES, ETHERTYPE_NAMES_LEGACY, ETHERTYPE_NAMES_NFT, PROTOCOL_NAMES } from './names.ts';

export interface EbRenderOptions {
  readonly style: EbStyle;
  /** Append ` , pcnt = N -- bcnt = N` (as `-L --Lc`); rules without counters print 0. */
  readonly counters?: boolean;
  /** Override the `/etc/ethertypes` names (number → name). */
  readonly ethertypeNames?: ReadonlyMap<number, string>;
  /** Only these chains (in the listing's order), as `ebtables -L CHAIN` does for one chain. */
  readonly chains?: readonly string[];
}

const FULL_MASK = 'ff:ff:ff:ff:ff:ff';

function ethertypeNames(o: EbRenderOptions): ReadonlyMap<number, string> {
  return o.ethertypeNames ?? (o.style === 'nft' ? ETHERTYPE_NAMES_NFT : ETHERTYPE_NAMES_LEGACY);
}

function fmtMac(m: Mac, style: EbStyle): string {
  return style === 'nft' ? m : formatMacShort(m);
}

/** `ebt_print_mac_and_mask`: well-known names, else MAC and a mask unless it is all ones. */
export function renderMacAndMask(addr: Mac, mask: Mac | undefined, style: EbStyle): string {
  const k = mask ?? FULL_MASK;
  if (addr === '00:00:00:00:00:00' && k === '01:00:00:00:00:00') return 'Unicast';
  if (addr === '01:00:00:00:00:00' && k === '01:00:00:00:00:00') return 'Multicast';
  if (addr === 'ff:ff:ff:ff:ff:ff' && k === FULL_MASK) return 'Broadcast';
  if (addr === '01:80:c2:00:00:00' && k === FULL_MASK) return 'BGA';
  return k === FULL_MASK ? fmtMac(addr, style) : `${fmtMac(addr, style)}/${fmtMac(k as Mac, style)}`;
}

const STP_TYPE_NAMES: Readonly<Record<number, string>> = { 0: 'config', 128: 'tcn' };
const STP_FLAG_NAMES: Readonly<Record<number, string>> = { 1: 'topology-change', 128: 'topology-change-ack' };

function neg(n: boolean): string {
  return n ? '! ' : '';
}

function macOpt(opt: string, m: EbMacMatch, style: EbStyle): string {
  return `${opt} ${neg(m.negated)}${renderMacAndMask(m.addr, m.mask, style)} `;
}

/** `mask_to_dotted`: nothing for /32, `/N` for contiguous masks, dotted otherwise. */
function maskSuffix(mask: number): string {
  const m = mask >>> 0;
  if (m === 0xffffffff) return '';
  let len = 0;
  while (len < 32 && ((m << len) & 0x80000000) !== 0) len++;
  const contiguous = len === 32 ? m === 0xffffffff : (m << len) >>> 0 === 0;
  return contiguous ? `/${len}` : `/${formatIpv4(m as Ipv4)}`;
}

function ipv4Opt(opt: string, m: EbIpv4Match): string {
  return `${opt} ${neg(m.negated)}${formatIpv4(m.addr)}${maskSuffix(m.mask)} `;
}

function rangeText(r: EbRangeMatch): string {
  return r.lo === r.hi ? `${r.lo}` : `${r.lo}:${r.hi}`;
}

function rangeOpt(opt: string, r: EbRangeMatch): string {
  return `${opt} ${neg(r.negated)}${rangeText(r)} `;
}

function ifaceOpt(opt: string, i: EbIfaceMatch | undefined): string {
  return i === undefined ? '' : `${opt} ${neg(i.negated)}${i.name} `;
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function protoName(n: number): string {
  return PROTOCOL_NAMES.get(n) ?? `${n}`;
}

/** Names libebt_ip6 prints for an exact type with a given code range. */
const ICMP6_NAMED: readonly (readonly [string, number, number, number])[] = [
  ['destination-unreachable', 1, 0, 0xff],
  ['no-route', 1, 0, 0],
  ['communication-prohibited', 1, 1, 1],
  ['address-unreachable', 1, 3, 3],
  ['port-unreachable', 1, 4, 4],
  ['packet-too-big', 2, 0, 0xff],
  ['time-exceeded', 3, 0, 0xff],
  ['ttl-zero-during-transit', 3, 0, 0],
  ['ttl-zero-during-reassembly', 3, 1, 1],
  ['parameter-problem', 4, 0, 0xff],
  ['bad-header', 4, 0, 0],
  ['unknown-header-type', 4, 1, 1],
  ['unknown-option', 4, 2, 2],
  ['echo-request', 128, 0, 0xff],
  ['echo-reply', 129, 0, 0xff],
  ['router-solicitation', 133, 0, 0xff],
  ['router-advertisement', 134, 0, 0xff],
  ['neighbour-solicitation', 135, 0, 0xff],
  ['neighbour-advertisement', 136, 0, 0xff],
  ['redirect', 137, 0, 0xff],
];

function icmp6Text(m: EbIp6IcmpMatch): string {
  let out: string;
  if (m.typeLo !== m.typeHi) out = `${m.typeLo}:${m.typeHi}`;
  else {
    const named = ICMP6_NAMED.find(([, t, lo, hi]) => t === m.typeLo && lo === m.codeLo && hi === m.codeHi);
    if (named) return named[0];
    out = `${m.typeLo}`;
  }
  out += `/${m.codeLo}`;
  if (m.codeLo !== m.codeHi) out += `:${m.codeHi}`;
  return out;
}

function ethertypeText(n: number, names: ReadonlyMap<number, string>): string {
  return names.get(n) ?? hex(n);
}

function renderMatch(m: EbMatch, style: EbStyle, names: ReadonlyMap<number, string>): string {
  let s = '';
  switch (m.kind) {
    case 'ip':
      if (m.src) s += ipv4Opt('--ip-src', m.src);
      if (m.dst) s += ipv4Opt('--ip-dst', m.dst);
      if (m.tos) s += `--ip-tos ${neg(m.tos.negated)}0x${m.tos.value.toString(16).toUpperCase().padStart(2, '0')} `;
      if (m.proto) s += `--ip-proto ${neg(m.proto.negated)}${protoName(m.proto.value)} `;
      if (m.sport) s += rangeOpt('--ip-sport', m.sport);
      if (m.dport) s += rangeOpt('--ip-dport', m.dport);
      return s;
    case 'arp':
      if (m.op) {
        const name = m.op.value > 0 ? ARP_OPCODE_NAMES[m.op.value - 1] : undefined;
        s += `--arp-op ${neg(m.op.negated)}${name ?? m.op.value} `;
      }
      if (m.htype) s += `--arp-htype ${neg(m.htype.negated)}${m.htype.value} `;
      // libebt_arp / ebt_arp print the protocol type as `0x%x`, never a name.
      if (m.ptype) s += `--arp-ptype ${neg(m.ptype.negated)}0x${m.ptype.value.toString(16)} `;
      if (m.ipSrc) s += ipv4Opt('--arp-ip-src', m.ipSrc);
      if (m.ipDst) s += ipv4Opt('--arp-ip-dst', m.ipDst);
      if (m.macSrc) s += macOpt('--arp-mac-src', m.macSrc, style);
      if (m.macDst) s += macOpt('--arp-mac-dst', m.macDst, style);
      if (m.gratuitous) s += `${neg(m.gratuitous.negated)}--arp-gratuitous `;
      return s;
    case 'vlan':
      if (m.id) s += `--vlan-id ${neg(m.id.negated)}${m.id.value} `;
      if (m.prio) s += `--vlan-prio ${neg(m.prio.negated)}${m.prio.value} `;
      if (m.encap) {
        // ebtables-nft prints the number as `%4.4X` (libvirt's decimal arguments, read as hex, print like decimals).
        const hex4 = m.encap.value.toString(16).toUpperCase().padStart(4, '0');
        const v = style === 'nft' ? hex4 : (names.get(m.encap.value) ?? hex4);
        s += `--vlan-encap ${neg(m.encap.negated)}${v} `;
      }
      return s;
    case 'ip6':
      if (m.src)
        s += `--ip6-src ${neg(m.src.negated)}${m.src.addr}${m.src.prefixLen === 128 ? '' : `/${m.src.prefixLen}`} `;
      if (m.dst)
        s += `--ip6-dst ${neg(m.dst.negated)}${m.dst.addr}${m.dst.prefixLen === 128 ? '' : `/${m.dst.prefixLen}`} `;
      if (m.tclass)
        s += `--ip6-tclass ${neg(m.tclass.negated)}0x${m.tclass.value.toString(16).toUpperCase().padStart(2, '0')} `;
      if (m.proto) s += `--ip6-proto ${neg(m.proto.negated)}${protoName(m.proto.value)} `;
      if (m.sport) s += rangeOpt('--ip6-sport', m.sport);
      if (m.dport) s += rangeOpt('--ip6-dport', m.dport);
      if (m.icmpType) s += `--ip6-icmp-type ${neg(m.icmpType.negated)}${icmp6Text(m.icmpType)} `;
      return s;
    case 'stp': {
      // libebt_stp: BPDU types and flags by name where they have one, else decimal.
      if (m.type) s += `--stp-type ${neg(m.type.negated)}${STP_TYPE_NAMES[m.type.value] ?? m.type.value} `;
      if (m.flags) s += `--stp-flags ${neg(m.flags.negated)}${STP_FLAG_NAMES[m.flags.value] ?? m.flags.value} `;
      const r = (f: string) => m.ranges.find((x) => x.field === f);
      const opt = (f: string, name: string) => {
        const x = r(f);
        if (x) s += rangeOpt(name, x);
      };
      opt('root-prio', '--stp-root-prio');
      if (m.rootAddr) s += macOpt('--stp-root-addr', m.rootAddr, style);
      opt('root-cost', '--stp-root-cost');
      opt('sender-prio', '--stp-sender-prio');
      if (m.senderAddr) s += macOpt('--stp-sender-addr', m.senderAddr, style);
      opt('port', '--stp-port');
      opt('msg-age', '--stp-msg-age');
      opt('max-age', '--stp-max-age');
      opt('hello-time', '--stp-hello-time');
      opt('forward-delay', '--stp-forward-delay');
      return s;
    }
  }
}

function targetText(t: EbTarget): string {
  return t.kind === 'jump' ? t.chain : t.verdict;
}

/** One rule as `ebtables -L` prints it (no trailing newline). */
export function renderEbtablesRule(rule: EbRule, options: EbRenderOptions): string {
  const s = ruleBody(rule, options.style, ethertypeNames(options));
  return options.counters ? s + countersText(rule) : s;
}

function countersText(rule: EbRule): string {
  const c = rule.counters ?? { packets: 0, bytes: 0 };
  return ` , pcnt = ${c.packets} -- bcnt = ${c.bytes}`;
}

/** The rule without counters. */
function ruleBody(rule: EbRule, style: EbStyle, names: ReadonlyMap<number, string>): string {
  let s = '';
  if (rule.proto) {
    const p = rule.proto;
    let name: string;
    let negated = p.negated;
    if (p.kind === 'length') name = 'Length';
    // ebtables-nft prints an ethertype match of exactly 0x0600 as `Length`, and without its `!` (both recorded with
    // libvirt 9.0: `-p 0x600` and `-p ! 0x600`).
    else if (style === 'nft' && p.value === 0x0600) {
      name = 'Length';
      negated = false;
    } else name = ethertypeText(p.value, names);
    s += `-p ${neg(negated)}${name} `;
  }
  if (rule.src) s += macOpt('-s', rule.src, style);
  if (rule.dst) s += macOpt('-d', rule.dst, style);
  s += ifaceOpt('-i', rule.in);
  s += ifaceOpt('--logical-in', rule.logicalIn);
  s += ifaceOpt('--logical-out', rule.logicalOut);
  s += ifaceOpt('-o', rule.out);
  for (const m of rule.matches) s += renderMatch(m, style, names);
  s += `-j ${targetText(rule.target)}`;
  return s;
}

/** `Bridge chain: NAME, entries: N, policy: P` followed by the rules. */
export function renderEbtablesChain(chain: EbChain, options: EbRenderOptions): string {
  const lines = [`Bridge chain: ${chain.name}, entries: ${chain.rules.length}, policy: ${chain.policy}`];
  for (const r of chain.rules) lines.push(renderEbtablesRule(r, options));
  return lines.join('\n');
}

/**
 * Lines joined a few thousand at a time. Performance: a large output's line strings then die young instead of all
 * being kept (and copied by the collector) until one final join.
 */
export class ChunkedText {
  private readonly chunks: string[] = [];
  private lines: string[] = [];
  line(s: string): void {
    this.lines.push(s);
    if (this.lines.length === 4096) {
      this.lines.push('');
      this.chunks.push(this.lines.join('\n'));
      this.lines = [];
    }
  }
  /** Everything, each line ending with a newline. */
  text(): string {
    this.lines.push('');
    this.chunks.push(this.lines.join('\n'));
    this.lines = [];
    return this.chunks.length === 1 ? this.chunks[0]! : this.chunks.join('');
  }
}

/** Chains in listing order: built-ins in hook order; user chains sorted by name (nft) or in creation order (legacy). */
export function listingOrder(table: EbTable, style: EbStyle): EbChain[] {
  const builtinNames = EB_BUILTIN_CHAINS[table.name];
  const out: EbChain[] = [];
  for (const n of builtinNames) {
    const c = table.chains.find((x) => x.name === n);
    if (c !== undefined) out.push(c);
  }
  // Indexed loops and one comparison per step (performance: tables of many thousand chains).
  const user: EbChain[] = [];
  const chains = table.chains;
  for (let i = 0; i < chains.length; i++) if (!builtinNames.includes(chains[i]!.name)) user.push(chains[i]!);
  if (style === 'nft') user.sort((a, b) => (a.name === b.name ? 0 : a.name < b.name ? -1 : 1));
  for (let i = 0; i < user.length; i++) out.push(user[i]!);
  return out;
}

/** The whole `ebtables -t TABLE -L` output, ending with a newline. */
export function renderEbtablesList(table: EbTable, options: EbRenderOptions): string {
  let chains = listingOrder(table, options.style);
  if (options.chains) {
    const want = options.chains;
    chains = chains.filter((c) => want.includes(c.name));
  }
  const parts = [`Bridge table: ${table.name}`];
  for (const c of chains) parts.push(`\n${renderEbtablesChain(c, options)}`);
  return `${parts.join('\n')}\n`;
}

/**
 * The table as `ebtables-save` (ebtables-nft 1.8.9) prints it, without its `# Generated`/`# Completed` comment
 * lines: `*TABLE`, `:CHAIN POLICY` lines (user chains always print `ACCEPT`), then `-A CHAIN RULE` in listing order.
 */
export function renderEbtablesSave(table: EbTable, options: Omit<EbRenderOptions, 'style'> = {}): string {
  const names = ethertypeNames({ ...options, style: 'nft' });
  const chains = listingOrder(table, 'nft');
  const out = new ChunkedText();
  out.line(`*${table.name}`);
  for (const c of chains) out.line(`:${c.name} ${c.builtin ? c.policy : 'ACCEPT'}`);
  const shared = new Map<object, string>();
  const bodies: string[] = [];
  for (let i = 0; i < chains.length; i++) {
    const c = chains[i]!;
    const rules = c[RULES_ONCE] ?? c.rules;
    if (rules.length === 0) continue;
    bodies.length = rules.length;
    for (let k = 0; k < rules.length; k++) {
      const r = rules[k]!;
      const key = r[SHARED_BODY];
      let body = key === undefined ? undefined : shared.get(key);
      if (body === undefined) {
        body = ruleBody(r, 'nft', names);
        if (key !== undefined) shared.set(key, body);
      }
      bodies[k] = body;
    }
    // One string per chain (performance: the engine's join copies the parts; no string per line).
    const prefix = `-A ${c.name} `;
    out.line(prefix + bodies.join(`\n${prefix}`));
  }
  return out.text();
}
