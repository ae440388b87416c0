/**
 * Readers for ebtables text: `ebtables -t TABLE -L` (ebtables-nft and legacy style, with or without `--Lc`
 * counters and `--Ln` numbers) and `ebtables-save`, into the ebtables model. Every rule's origin is its line.
 * Readers never throw: an option lvsdoctor does not model is an `unsupported` issue and its rule is left out of
 * the model (the issue says so); reading goes on with the next line.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, implicit, type Origin } from '../source/origin.ts';
import {
  defaultUserChainPolicy,
  EB_BUILTIN_CHAINS,
  type EbArpMatch,
  type EbChain,
  type EbCounters,
  type EbIfaceMatch,
  type EbIp6IcmpMatch,
  type EbIp6Match,
  type EbIpMatch,
  type EbIpv4Match,
  type EbMacMatch,
  type EbMatch,
  type EbPolicy,
  type EbProtoMatch,
  type EbRangeMatch,
  type EbRule,
  type EbStpMatch,
  type EbStpRangeField,
  type EbStyle,
  type EbTable,
  type EbTableName,
  type EbTarget,
  type EbValueMatch,
  type EbVlanMatch,
} from './ebtables-model.ts';
import { ARP_OPCODE_NAMES, arpOpcodeByName, ethertypeByName, protocolByName } from './names.ts';
import { bad, notModelled, RuleError } from './rule-error.ts';

export interface EbReadOptions {
  /** Listing conventions; `auto` (default) guesses from MAC spelling, ethertype names and chain order. */
  readonly style?: EbStyle | 'auto';
  /** Extra `/etc/ethertypes` names (name → number) the host may use. */
  readonly ethertypes?: ReadonlyMap<string, number>;
}

export interface EbSaveReadOptions {
  /** Extra `/etc/ethertypes` names (name → number). */
  readonly ethertypes?: ReadonlyMap<string, number>;
  /**
   * ebtables-nft's `ebtables-save` prints `ACCEPT` for every user chain whatever its policy; a user chain read as
   * `ACCEPT` gets this policy (default `RETURN`, what `ebtables-nft -N` creates) with an implicit origin.
   */
  readonly userChainPolicy?: EbPolicy;
}

const TABLES: readonly EbTableName[] = ['filter', 'nat', 'broute'];
const POLICIES: readonly EbPolicy[] = ['ACCEPT', 'DROP', 'RETURN'];
const VERDICTS = new Set(['ACCEPT', 'DROP', 'RETURN', 'CONTINUE']);
const FULL_MASK = 'ff:ff:ff:ff:ff:ff';

/**
 * The `, pcnt = N -- bcnt = N` that ends a rule listed with --Lc: where it starts and the two counts. Found from the
 * last `pcnt = ` (a regex searching for `\s*,\s*pcnt` from every position is quadratic on a run of spaces).
 */
/** `line` without the ` , pcnt = N -- bcnt = N` that ends a rule listed with --Lc (linear time). */
export function stripEbCounters(line: string): string {
  const c = ebCountersOf(line);
  return c === undefined ? line : line.slice(0, c.index);
}

export function ebCountersOf(body: string): { index: number; packets: number; bytes: number } | undefined {
  // What /^pcnt = (\d+) -- bcnt = (\d+)\s*$/ matches from the last `pcnt = `, read by character: a listing of a
  // fleet's host has ~1,000 such lines per table, read at both ends of a counter window.
  const at = body.lastIndexOf('pcnt = ');
  if (at < 0) return undefined;
  const p = digitsEnd(body, at + 7);
  if (p === at + 7 || !body.startsWith(' -- bcnt = ', p)) return undefined;
  const b = digitsEnd(body, p + 11);
  if (b === p + 11) return undefined;
  for (let k = b; k < body.length; k++) if (!isSpace(body.charCodeAt(k))) return undefined;
  let i = at;
  while (i > 0 && isSpace(body.charCodeAt(i - 1))) i--;
  if (body.charCodeAt(i - 1) !== 44 /* , */) return undefined;
  i--;
  while (i > 0 && isSpace(body.charCodeAt(i - 1))) i--;
  return { index: i, packets: Number(body.slice(at + 7, p)), bytes: Number(body.slice(p + 11, b)) };
}

/** Where the run of ASCII digits from `i` ends. */
function digitsEnd(s: string, i: number): number {
  let k = i;
  while (k < s.length && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57) k++;
  return k;
}

/** A character that a regex's `\s` matches. */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && /\s/.test(String.fromCharCode(c)));
}

/** Names libebt_ip6 prints for one type with a code range (name, type, code low, code high). */
const ICMP6_NAMES: readonly (readonly [string, number, number, number])[] = [
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

const STP_RANGES: readonly (readonly [string, EbStpRangeField])[] = [
  ['--stp-root-prio', 'root-prio'],
  ['--stp-root-cost', 'root-cost'],
  ['--stp-sender-prio', 'sender-prio'],
  ['--stp-port', 'port'],
  ['--stp-msg-age', 'msg-age'],
  ['--stp-max-age', 'max-age'],
  ['--stp-hello-time', 'hello-time'],
  ['--stp-forward-delay', 'forward-delay'],
];
const STP_ORDER: readonly EbStpRangeField[] = STP_RANGES.map(([, f]) => f);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Ctx {
  readonly style: EbStyle;
  readonly ethertypes: ReadonlyMap<string, number> | undefined;
}

function parseNumber(text: string, what: string, max: number): number {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = Number.parseInt(text.slice(2), 16);
  else if (/^[0-9]+$/.test(text)) n = Number(text);
  else bad(`expected ${what} (a number), got '${text}'`);
  if (n > max) bad(`${what} ${text} is out of range (at most ${max})`);
  return n;
}

function parseHexByte(text: string, what: string): number {
  if (!/^(0x)?[0-9a-f]{1,2}$/i.test(text)) bad(`expected ${what} (a hex byte such as 0x3F), got '${text}'`);
  return Number.parseInt(text.replace(/^0x/i, ''), 16);
}

function parseRange(text: string, what: string, max: number): { lo: number; hi: number } {
  const m = /^(\d+)(?::(\d+))?$/.exec(text);
  if (!m) bad(`expected ${what} (N or N:M), got '${text}'`);
  const lo = parseNumber(m[1]!, what, max);
  const hi = m[2] === undefined ? lo : parseNumber(m[2], what, max);
  return { lo, hi };
}

function parseEthertype(text: string, ctx: Ctx, what: string): number {
  const custom = ctx.ethertypes?.get(text);
  if (custom !== undefined) return custom;
  const named = ethertypeByName(text);
  if (named !== undefined) return named;
  if (/^(0x)?[0-9a-f]{1,4}$/i.test(text)) return Number.parseInt(text.replace(/^0x/i, ''), 16);
  return bad(`expected ${what} (an /etc/ethertypes name or a hex number), got '${text}'`);
}

function parseProtocol(text: string, what: string): number {
  if (/^\d+$/.test(text)) return parseNumber(text, what, 255);
  const n = protocolByName(text);
  if (n === undefined) bad(`expected ${what} (an /etc/protocols name or a number), got '${text}'`);
  return n;
}

function parseMacOrFail(text: string, what: string): Mac {
  const m = parseMac(text);
  if (m === undefined) bad(`expected ${what} (a MAC address), got '${text}'`);
  return m;
}

/** `Broadcast`, `Multicast`, `Unicast`, `BGA`, `MAC`, `MAC/MASK`. */
function parseMacAndMask(text: string, negated: boolean, what: string): EbMacMatch {
  switch (text) {
    case 'Unicast':
      return { addr: '00:00:00:00:00:00' as Mac, mask: '01:00:00:00:00:00' as Mac, negated };
    case 'Multicast':
      return { addr: '01:00:00:00:00:00' as Mac, mask: '01:00:00:00:00:00' as Mac, negated };
    case 'Broadcast':
      return { addr: FULL_MASK as Mac, negated };
    case 'BGA':
      return { addr: '01:80:c2:00:00:00' as Mac, negated };
  }
  const slash = text.indexOf('/');
  if (slash < 0) return { addr: parseMacOrFail(text, what), negated };
  const addr = parseMacOrFail(text.slice(0, slash), what);
  const mask = parseMacOrFail(text.slice(slash + 1), `${what} mask`);
  return mask === FULL_MASK ? { addr, negated } : { addr, mask, negated };
}

function parseIpv4Mask(text: string, negated: boolean, what: string): EbIpv4Match {
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const addr = parseIpv4(addrText);
  if (addr === undefined) bad(`expected ${what} (an IPv4 address with an optional /mask), got '${text}'`);
  if (slash < 0) return { addr, mask: 0xffffffff, negated };
  const maskText = text.slice(slash + 1);
  let mask: number;
  if (/^\d+$/.test(maskText)) {
    const len = Number(maskText);
    if (len > 32) bad(`${what} prefix length ${maskText} is out of range`);
    mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  } else {
    const m = parseIpv4(maskText);
    if (m === undefined) bad(`expected ${what} mask (a length or dotted mask), got '${maskText}'`);
    mask = m;
  }
  return { addr: addr as Ipv4, mask, negated };
}

function parseIcmp6(text: string, negated: boolean): EbIp6IcmpMatch {
  const named = ICMP6_NAMES.find(([n]) => n === text);
  if (named) return { typeLo: named[1], typeHi: named[1], codeLo: named[2], codeHi: named[3], negated };
  const m = /^(\d+)(?::(\d+))?(?:\/(\d+)(?::(\d+))?)?$/.exec(text);
  if (!m) return bad(`expected an ICMPv6 type (a name, T[:T]/C[:C]), got '${text}'`);
  const typeLo = parseNumber(m[1]!, 'ICMPv6 type', 255);
  const typeHi = m[2] === undefined ? typeLo : parseNumber(m[2], 'ICMPv6 type', 255);
  const codeLo = m[3] === undefined ? 0 : parseNumber(m[3], 'ICMPv6 code', 255);
  const codeHi = m[3] === undefined ? 255 : m[4] === undefined ? codeLo : parseNumber(m[4], 'ICMPv6 code', 255);
  return { typeLo, typeHi, codeLo, codeHi, negated };
}

function parseTarget(text: string): EbTarget {
  if (VERDICTS.has(text)) return { kind: 'verdict', verdict: text as 'ACCEPT' | 'DROP' | 'RETURN' | 'CONTINUE' };
  if (!/^[A-Za-z0-9_.:+-]+$/.test(text) || text.startsWith('-'))
    bad(`expected a target (a verdict or chain), got '${text}'`);
  return { kind: 'jump', chain: text };
}

/** Target extensions with options of their own that the model has no place for. */
const TARGET_EXTENSIONS = new Set(['mark', 'snat', 'dnat', 'redirect', 'arpreply', 'log', 'nflog', 'ulog']);

/**
 * Parses the text of one rule as `ebtables -L` (or `-A CHAIN` of `ebtables-save`) prints it, without counters.
 * Throws `RuleError` (caught by the readers).
 */
function parseRuleText(text: string, ctx: Ctx, origin: Origin, counters: EbCounters | undefined): EbRule {
  const tokens = text.split(/\s+/).filter((t) => t !== '');
  const rule: Mutable<Omit<EbRule, 'matches' | 'target'>> = { origin };
  const matches: Mutable<EbMatch>[] = [];
  let target: EbTarget | undefined;
  let i = 0;
  let pendingNeg = false;
  const get = <K extends EbMatch['kind']>(kind: K): Extract<Mutable<EbMatch>, { kind: K }> => {
    let m = matches.find((x) => x.kind === kind);
    if (m === undefined) {
      m = (kind === 'stp' ? { kind, ranges: [] } : { kind }) as Mutable<EbMatch>;
      matches.push(m);
    }
    return m as Extract<Mutable<EbMatch>, { kind: K }>;
  };
  /** The option's value, with a `!` before the option or before the value. */
  const value = (opt: string): { text: string; negated: boolean } => {
    let negated = pendingNeg;
    pendingNeg = false;
    if (tokens[i] === '!') {
      negated = true;
      i++;
    }
    const t = tokens[i++];
    if (t === undefined) bad(`option ${opt} needs a value`);
    return { text: t, negated };
  };
  const once = (present: unknown, opt: string) => {
    if (present !== undefined) bad(`option ${opt} given twice`);
  };
  const ifaceOf = (opt: string): EbIfaceMatch => {
    const v = value(opt);
    return { name: v.text, negated: v.negated };
  };
  const valueMatch = (opt: string, parse: (t: string) => number): EbValueMatch => {
    const v = value(opt);
    return { value: parse(v.text), negated: v.negated };
  };
  const rangeMatch = (opt: string, max: number): EbRangeMatch => {
    const v = value(opt);
    return { ...parseRange(v.text, opt, max), negated: v.negated };
  };
  while (i < tokens.length) {
    const opt = tokens[i++]!;
    if (opt === '!') {
      pendingNeg = true;
      continue;
    }
    switch (opt) {
      case '-p':
      case '--protocol': {
        once(rule.proto, opt);
        const v = value(opt);
        const p: EbProtoMatch =
          v.text === 'Length' || v.text === 'LENGTH'
            ? { kind: 'length', negated: v.negated }
            : { kind: 'ethertype', value: parseEthertype(v.text, ctx, 'a protocol'), negated: v.negated };
        rule.proto = p;
        break;
      }
      case '-s':
      case '--source': {
        once(rule.src, opt);
        const v = value(opt);
        rule.src = parseMacAndMask(v.text, v.negated, 'a source MAC');
        break;
      }
      case '-d':
      case '--destination': {
        once(rule.dst, opt);
        const v = value(opt);
        rule.dst = parseMacAndMask(v.text, v.negated, 'a destination MAC');
        break;
      }
      case '-i':
      case '--in-interface':
        once(rule.in, opt);
        rule.in = ifaceOf(opt);
        break;
      case '-o':
      case '--out-interface':
        once(rule.out, opt);
        rule.out = ifaceOf(opt);
        break;
      case '--logical-in':
        once(rule.logicalIn, opt);
        rule.logicalIn = ifaceOf(opt);
        break;
      case '--logical-out':
        once(rule.logicalOut, opt);
        rule.logicalOut = ifaceOf(opt);
        break;
      case '--ip-src':
      case '--ip-source':
      case '--ip-dst':
      case '--ip-destination': {
        const m = get('ip') as Mutable<EbIpMatch>;
        const v = value(opt);
        const match = parseIpv4Mask(v.text, v.negated, `${opt} address`);
        if (opt.startsWith('--ip-s')) m.src = match;
        else m.dst = match;
        break;
      }
      case '--ip-tos':
        (get('ip') as Mutable<EbIpMatch>).tos = valueMatch(opt, (t) => parseHexByte(t, 'an IP TOS'));
        break;
      case '--ip-proto':
      case '--ip-protocol':
        (get('ip') as Mutable<EbIpMatch>).proto = valueMatch(opt, (t) => parseProtocol(t, 'an IP protocol'));
        break;
      case '--ip-sport':
      case '--ip-source-port':
        (get('ip') as Mutable<EbIpMatch>).sport = rangeMatch(opt, 0xffff);
        break;
      case '--ip-dport':
      case '--ip-destination-port':
        (get('ip') as Mutable<EbIpMatch>).dport = rangeMatch(opt, 0xffff);
        break;
      case '--arp-op':
        (get('arp') as Mutable<EbArpMatch>).op = valueMatch(opt, (t) => {
          const n = arpOpcodeByName(t);
          return (
            n ??
            (/^\d+$/.test(t)
              ? parseNumber(t, 'an ARP opcode', 0xffff)
              : bad(`expected an ARP opcode (${ARP_OPCODE_NAMES.join(', ')} or a number), got '${t}'`))
          );
        });
        break;
      case '--arp-htype':
        (get('arp') as Mutable<EbArpMatch>).htype = valueMatch(opt, (t) =>
          t === 'Ethernet' ? 1 : parseNumber(t, 'an ARP hardware type', 0xffff),
        );
        break;
      case '--arp-ptype':
        (get('arp') as Mutable<EbArpMatch>).ptype = valueMatch(opt, (t) =>
          parseEthertype(t, ctx, 'an ARP protocol type'),
        );
        break;
      case '--arp-ip-src':
      case '--arp-ip-dst': {
        const v = value(opt);
        const m = parseIpv4Mask(v.text, v.negated, `${opt} address`);
        if (opt === '--arp-ip-src') (get('arp') as Mutable<EbArpMatch>).ipSrc = m;
        else (get('arp') as Mutable<EbArpMatch>).ipDst = m;
        break;
      }
      case '--arp-mac-src':
      case '--arp-mac-dst': {
        const v = value(opt);
        const m = parseMacAndMask(v.text, v.negated, `${opt} address`);
        if (opt === '--arp-mac-src') (get('arp') as Mutable<EbArpMatch>).macSrc = m;
        else (get('arp') as Mutable<EbArpMatch>).macDst = m;
        break;
      }
      case '--arp-gratuitous':
        (get('arp') as Mutable<EbArpMatch>).gratuitous = { negated: pendingNeg };
        pendingNeg = false;
        break;
      case '--vlan-id':
        (get('vlan') as Mutable<EbVlanMatch>).id = valueMatch(opt, (t) => parseNumber(t, 'a VLAN id', 4095));
        break;
      case '--vlan-prio':
        (get('vlan') as Mutable<EbVlanMatch>).prio = valueMatch(opt, (t) => parseNumber(t, 'a VLAN priority', 7));
        break;
      case '--vlan-encap':
        (get('vlan') as Mutable<EbVlanMatch>).encap = valueMatch(opt, (t) => {
          // ebtables-nft prints the encapsulated ethertype as four hex digits (`%4.4X`), legacy ebtables by name or in
          // bare hex.
          if (ctx.style === 'nft' && /^[0-9A-F]{4}$/.test(t)) return Number.parseInt(t, 16);
          return parseEthertype(t, ctx, 'a VLAN encapsulation');
        });
        break;
      case '--ip6-src':
      case '--ip6-source':
      case '--ip6-dst':
      case '--ip6-destination': {
        const v = value(opt);
        const m = /^([0-9a-fA-F:.]+)(?:\/(\d+))?$/.exec(v.text);
        if (!m || !m[1]!.includes(':'))
          bad(`expected ${opt} (an IPv6 address with an optional /length), got '${v.text}'`);
        const prefixLen = m[2] === undefined ? 128 : Number(m[2]);
        if (prefixLen > 128) bad(`${opt} prefix length ${m[2]} is out of range`);
        const a = { addr: m[1]!, prefixLen, negated: v.negated };
        if (opt.startsWith('--ip6-s')) (get('ip6') as Mutable<EbIp6Match>).src = a;
        else (get('ip6') as Mutable<EbIp6Match>).dst = a;
        break;
      }
      case '--ip6-tclass':
        (get('ip6') as Mutable<EbIp6Match>).tclass = valueMatch(opt, (t) => parseHexByte(t, 'an IPv6 traffic class'));
        break;
      case '--ip6-proto':
      case '--ip6-protocol':
        (get('ip6') as Mutable<EbIp6Match>).proto = valueMatch(opt, (t) => parseProtocol(t, 'an IPv6 protocol'));
        break;
      case '--ip6-sport':
      case '--ip6-source-port':
        (get('ip6') as Mutable<EbIp6Match>).sport = rangeMatch(opt, 0xffff);
        break;
      case '--ip6-dport':
      case '--ip6-destination-port':
        (get('ip6') as Mutable<EbIp6Match>).dport = rangeMatch(opt, 0xffff);
        break;
      case '--ip6-icmp-type': {
        const v = value(opt);
        (get('ip6') as Mutable<EbIp6Match>).icmpType = parseIcmp6(v.text, v.negated);
        break;
      }
      case '--stp-type':
        (get('stp') as Mutable<EbStpMatch>).type = valueMatch(opt, (t) =>
          t === 'config' ? 0 : t === 'tcn' ? 0x80 : parseNumber(t, 'a BPDU type', 255),
        );
        break;
      case '--stp-flags':
        (get('stp') as Mutable<EbStpMatch>).flags = valueMatch(opt, (t) =>
          t === 'topology-change' ? 1 : t === 'topology-change-ack' ? 0x80 : parseNumber(t, 'BPDU flags', 255),
        );
        break;
      case '--stp-root-addr':
      case '--stp-sender-addr': {
        const v = value(opt);
        const m = parseMacAndMask(v.text, v.negated, `${opt} address`);
        if (opt === '--stp-root-addr') (get('stp') as Mutable<EbStpMatch>).rootAddr = m;
        else (get('stp') as Mutable<EbStpMatch>).senderAddr = m;
        break;
      }
      case '-j':
      case '--jump': {
        if (target !== undefined) bad('two targets');
        const t = tokens[i++];
        if (t === undefined) bad('option -j needs a target');
        if (TARGET_EXTENSIONS.has(t.toLowerCase()))
          notModelled(`target ${t} is not modelled (expected ACCEPT, DROP, RETURN, CONTINUE or a chain)`);
        target = parseTarget(t);
        break;
      }
      default: {
        const stp = STP_RANGES.find(([o]) => o === opt);
        if (stp) {
          const m = get('stp') as Mutable<EbStpMatch>;
          const r = rangeMatch(opt, 0xffffffff);
          m.ranges = [...m.ranges.filter((x) => x.field !== stp[1]), { ...r, field: stp[1] }].sort(
            (a, b) => STP_ORDER.indexOf(a.field) - STP_ORDER.indexOf(b.field),
          );
          break;
        }
        if (opt.startsWith('-'))
          notModelled(
            `option ${opt} is not modelled (expected -p, -s, -d, -i, -o, --logical-in/out, --ip-*, --ip6-*, --arp-*, --vlan-*, --stp-* or -j)`,
          );
        bad(`expected an option, got '${opt}'`);
      }
    }
  }
  if (pendingNeg) bad("a '!' with no option after it");
  if (target === undefined) bad('no target (-j)');
  const out: EbRule = { ...rule, matches: matches as EbMatch[], target };
  return counters === undefined ? out : { ...out, counters };
}

function userPolicyOrigin(): Origin {
  return implicit('user chain policy');
}

function guessTable(chains: readonly string[]): EbTableName {
  for (const t of TABLES) if (EB_BUILTIN_CHAINS[t].some((c) => chains.includes(c) && c !== 'OUTPUT')) return t;
  return chains.includes('OUTPUT') ? 'filter' : 'nat';
}

/** Guesses ebtables-nft vs legacy from a listing's text. */
export function guessEbStyle(text: string): EbStyle {
  // Legacy prints MACs without leading zeros and has no RARP name; ebtables-nft sorts user chains by name.
  if (/(^|[\s/])[0-9a-f]:[0-9a-f]{1,2}:[0-9a-f]{1,2}:[0-9a-f]{1,2}:[0-9a-f]{1,2}:[0-9a-f]{1,2}(?=[\s/]|$)/m.test(text))
    return 'legacy';
  if (/[0-9a-f]{1,2}:[0-9a-f]:[0-9a-f]{1,2}:[0-9a-f]{1,2}:[0-9a-f]{1,2}:[0-9a-f]{1,2}(?=[\s/]|$)/m.test(text))
    return 'legacy';
  if (/-p (! )?0x8035\b/.test(text)) return 'legacy';
  const names = [...text.matchAll(/^Bridge chain: ([^,]+),/gm)].map((m) => m[1]!);
  const user = names.filter(
    (n) => !['PREROUTING', 'OUTPUT', 'POSTROUTING', 'INPUT', 'FORWARD', 'BROUTING'].includes(n),
  );
  for (let k = 1; k < user.length; k++) if (user[k - 1]! > user[k]!) return 'legacy';
  return 'nft';
}

function ruleOrigin(file: string, line: number, table: string, chain: string, index: number): Origin {
  return { kind: 'file', label: `ebtables ${table} ${chain} rule ${index}`, pos: filePos(file, line) };
}

function recordRuleError(e: unknown, issues: Issue[], file: string, line: number): void {
  if (!(e instanceof RuleError)) throw e;
  const pos = filePos(file, line);
  if (e.isUnsupported)
    issues.push(unsupported('ebtables-unsupported', `${e.message}; rule left out of the model`, pos));
  else issues.push(issue('ebtables-bad-rule', `${e.message}; rule left out of the model`, pos));
}

interface ChainBuilder {
  name: string;
  policy: EbPolicy;
  policyOrigin: Origin;
  origin: Origin;
  rules: EbRule[];
  entries?: number;
  entriesLine?: number;
}

function buildChains(builders: readonly ChainBuilder[], table: EbTableName): EbChain[] {
  const builtins = EB_BUILTIN_CHAINS[table];
  return builders.map((b) => ({
    name: b.name,
    builtin: builtins.includes(b.name),
    policy: b.policy,
    policyOrigin: b.policyOrigin,
    rules: b.rules,
    origin: b.origin,
  }));
}

/** Reads `ebtables -t TABLE -L` output (optionally `--Lc` counters, `--Ln` numbers) into one table. */
export function readEbtablesList(text: string, file: string, options: EbReadOptions = {}): ReadResult<EbTable> {
  const style: EbStyle = options.style === undefined || options.style === 'auto' ? guessEbStyle(text) : options.style;
  const ctx: Ctx = { style, ethertypes: options.ethertypes };
  const issues: Issue[] = [];
  const lines = text.split('\n');
  let tableName: EbTableName | undefined;
  const chains: ChainBuilder[] = [];
  let cur: ChainBuilder | undefined;
  lines.forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.replace(/\r$/, '').trimEnd();
    if (line.trim() === '') return;
    const pos = filePos(file, lineNo);
    const t = /^Bridge table: (\S+)$/.exec(line);
    if (t) {
      if (tableName !== undefined) {
        issues.push(issue('ebtables-two-tables', `a second table header (only one table per listing is read)`, pos));
        return;
      }
      if (!TABLES.includes(t[1] as EbTableName)) {
        issues.push(issue('ebtables-bad-table', `unknown table '${t[1]}' (expected filter, nat or broute)`, pos));
        return;
      }
      tableName = t[1] as EbTableName;
      return;
    }
    const c = /^Bridge chain: ([^,\s]+), entries: (\d+), policy: (\S+)$/.exec(line);
    if (c) {
      const name = c[1]!;
      if (chains.some((x) => x.name === name)) {
        issues.push(issue('ebtables-duplicate-chain', `chain ${name} listed twice`, pos));
        cur = undefined;
        return;
      }
      let policy = c[3] as EbPolicy;
      if (!POLICIES.includes(policy)) {
        issues.push(issue('ebtables-bad-policy', `unknown policy '${c[3]}' (expected ACCEPT, DROP or RETURN)`, pos));
        policy = 'ACCEPT';
      }
      const origin: Origin = { kind: 'file', label: `ebtables chain ${name}`, pos };
      cur = { name, policy, policyOrigin: origin, origin, rules: [], entries: Number(c[2]), entriesLine: lineNo };
      chains.push(cur);
      return;
    }
    if (cur === undefined) {
      issues.push(
        issue('ebtables-stray-line', `expected 'Bridge table:' or 'Bridge chain:' header, got '${line}'`, pos),
      );
      return;
    }
    let body = line.trim().replace(/^\d+\. /, '');
    let counters: EbCounters | undefined;
    const cm = ebCountersOf(body);
    if (cm) {
      counters = { packets: cm.packets, bytes: cm.bytes };
      body = body.slice(0, cm.index);
    }
    const origin = ruleOrigin(file, lineNo, tableName ?? 'nat', cur.name, cur.rules.length + 1);
    try {
      cur.rules.push(parseRuleText(body, ctx, origin, counters));
    } catch (e) {
      recordRuleError(e, issues, file, lineNo);
      cur.entries = (cur.entries ?? 0) - 1;
    }
  });
  for (const c of chains)
    if (c.entries !== undefined && c.entries !== c.rules.length && c.entries >= 0)
      issues.push(
        issue(
          'ebtables-entries-mismatch',
          `chain ${c.name} says entries: ${c.entries} but lists ${c.rules.length} rules`,
          filePos(file, c.entriesLine ?? 0),
          'warning',
        ),
      );
  if (tableName === undefined) {
    if (chains.length === 0) {
      issues.push(
        issue('ebtables-empty', 'no ebtables listing found (expected a "Bridge table:" line)', filePos(file, 1)),
      );
      return { value: undefined, issues };
    }
    tableName = guessTable(chains.map((c) => c.name));
    issues.push(
      issue('ebtables-no-table', `no "Bridge table:" line; assuming table ${tableName}`, filePos(file, 1), 'warning'),
    );
  }
  return { value: { name: tableName, chains: buildChains(chains, tableName) }, issues };
}

/** Reads `ebtables-save` output (all its tables; `-c N M` counters after a rule are kept). */
export function readEbtablesSave(text: string, file: string, options: EbSaveReadOptions = {}): ReadResult<EbTable[]> {
  const ctx: Ctx = { style: 'nft', ethertypes: options.ethertypes };
  const userPolicy = options.userChainPolicy ?? defaultUserChainPolicy('nft');
  const issues: Issue[] = [];
  const tables: { name: EbTableName; chains: ChainBuilder[] }[] = [];
  let cur: { name: EbTableName; chains: ChainBuilder[] } | undefined;
  let skipping = false;
  text.split('\n').forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.replace(/\r$/, '').trim();
    const pos = filePos(file, lineNo);
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      const name = line.slice(1);
      if (!TABLES.includes(name as EbTableName)) {
        issues.push(issue('ebtables-bad-table', `unknown table '${name}' (expected filter, nat or broute)`, pos));
        cur = undefined;
        skipping = true;
        return;
      }
      skipping = false;
      cur = { name: name as EbTableName, chains: [] };
      tables.push(cur);
      return;
    }
    if (skipping) return;
    if (cur === undefined) {
      issues.push(issue('ebtables-stray-line', `expected a '*TABLE' line first, got '${line}'`, pos));
      return;
    }
    const table = cur;
    const c = /^:(\S+) (\S+)$/.exec(line);
    if (c) {
      const name = c[1]!;
      if (table.chains.some((x) => x.name === name)) {
        issues.push(issue('ebtables-duplicate-chain', `chain ${name} declared twice`, pos));
        return;
      }
      const builtin = EB_BUILTIN_CHAINS[table.name].includes(name);
      let policy = c[2] as EbPolicy;
      if (!POLICIES.includes(policy)) {
        issues.push(issue('ebtables-bad-policy', `unknown policy '${c[2]}' (expected ACCEPT, DROP or RETURN)`, pos));
        policy = 'ACCEPT';
      }
      const origin: Origin = { kind: 'file', label: `ebtables chain ${name}`, pos };
      if (!builtin && policy === 'ACCEPT')
        table.chains.push({ name, policy: userPolicy, policyOrigin: userPolicyOrigin(), origin, rules: [] });
      else table.chains.push({ name, policy, policyOrigin: origin, origin, rules: [] });
      return;
    }
    const a = /^-A (\S+)(?: (.*))?$/.exec(line);
    if (a) {
      const chain = table.chains.find((x) => x.name === a[1]);
      if (chain === undefined) {
        issues.push(issue('ebtables-unknown-chain', `rule for chain ${a[1]} that was not declared with ':'`, pos));
        return;
      }
      let body = a[2] ?? '';
      let counters: EbCounters | undefined;
      const cm = /\s*-c (\d+) (\d+)$/.exec(body);
      if (cm) {
        counters = { packets: Number(cm[1]), bytes: Number(cm[2]) };
        body = body.slice(0, cm.index);
      }
      try {
        chain.rules.push(
          parseRuleText(body, ctx, ruleOrigin(file, lineNo, table.name, chain.name, chain.rules.length + 1), counters),
        );
      } catch (e) {
        recordRuleError(e, issues, file, lineNo);
      }
      return;
    }
    issues.push(issue('ebtables-stray-line', `expected '*TABLE', ':CHAIN POLICY' or '-A CHAIN …', got '${line}'`, pos));
  });
  return { value: tables.map((t) => ({ name: t.name, chains: buildChains(t.chains, t.name) })), issues };
}
