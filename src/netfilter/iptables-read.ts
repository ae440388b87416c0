/**
 * Reader for `iptables-save` / `ip6tables-save` text (with or without `-c` counters) into the iptables model.
 * The `filter` table is read, and the other tables (`nat`, `mangle`, `raw`) the caller evaluates; the others (and what
 * an evaluated table holds that traces do not apply) are reported naming their chains and rule count, never silently
 * skipped. A rule with a match, option or target lvsdoctor does
 * not model is an `unsupported` issue at its line and is left out of the model; reading goes on.
 */
import { parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Origin } from '../source/origin.ts';
import {
  CT_STATE_ORDER,
  type CtState,
  IPT_BUILTIN_CHAINS,
  IPT_MANGLE_CHAINS,
  IPT_NAT_CHAINS,
  IPT_RAW_CHAINS,
  type IptAddrMatch,
  type IptAddrRange,
  type IptChain,
  type IptCounters,
  type IptFamily,
  type IptIfaceMatch,
  type IptMatch,
  type IptPolicy,
  type IptRange,
  type IptRule,
  type IptTable,
  type IptTableName,
  type IptTarget,
  parseTcpFlags,
} from './iptables-model.ts';
import { OtherTableReader } from './iptables-other-tables.ts';
import { ICMP_TYPES_BY_NAME, ICMPV6_TYPES_BY_NAME, protocolByName } from './names.ts';
import { bad, notModelled, RuleError } from './rule-error.ts';

/** A word of a save line: its text with quotes removed, and whether it was quoted. */
interface Word {
  readonly text: string;
  readonly quoted: boolean;
}

/** Splits a line like the shell-ish splitter of `iptables-restore`: double quotes group, `\` escapes inside them. */
export function splitSaveLine(line: string): Word[] | undefined {
  const out: Word[] = [];
  let i = 0;
  while (i < line.length) {
    while (i < line.length && (line[i] === ' ' || line[i] === '\t')) i++;
    if (i >= line.length) break;
    let text = '';
    let quoted = false;
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      if (line[i] === '"') {
        quoted = true;
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          text += line[i];
          i++;
        }
        if (i >= line.length) return undefined;
        i++;
      } else {
        text += line[i];
        i++;
      }
    }
    out.push({ text, quoted });
  }
  return out;
}

const VERDICTS = new Set(['ACCEPT', 'DROP', 'RETURN']);

function num(text: string, what: string, max: number): number {
  let n: number;
  if (/^0x[0-9a-f]+$/i.test(text)) n = Number.parseInt(text.slice(2), 16);
  else if (/^\d+$/.test(text)) n = Number(text);
  else bad(`expected ${what} (a number), got '${text}'`);
  if (n > max) bad(`${what} ${text} is out of range (at most ${max})`);
  return n;
}

function portRange(text: string, negated: boolean, what: string): IptRange {
  const m = /^(\d*)(?::(\d*))?$/.exec(text);
  if (!m || (m[1] === '' && m[2] === undefined)) bad(`expected ${what} (PORT or LO:HI), got '${text}'`);
  const lo = m[1] === '' ? 0 : num(m[1]!, what, 0xffff);
  const hi = m[2] === undefined ? lo : m[2] === '' ? 0xffff : num(m[2], what, 0xffff);
  return { lo, hi, negated };
}

function addrMatch(text: string, family: IptFamily, negated: boolean, what: string): IptAddrMatch {
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const max = family === 'ipv4' ? 32 : 128;
  const ok = family === 'ipv4' ? parseIpv4(addr) !== undefined : parseIpv6(addr) !== undefined;
  if (!ok) bad(`expected ${what} (an ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address[/length]), got '${text}'`);
  const lenText = slash < 0 ? `${max}` : text.slice(slash + 1);
  if (!/^\d+$/.test(lenText))
    notModelled(`${what} mask '${lenText}' is not modelled (expected a prefix length, as iptables-save prints)`);
  const prefixLen = Number(lenText);
  if (prefixLen > max) bad(`${what} prefix length ${lenText} is out of range`);
  return { addr, prefixLen, negated };
}

function addrRange(text: string, family: IptFamily, negated: boolean, what: string): IptAddrRange {
  const dash = text.indexOf('-');
  const from = dash < 0 ? text : text.slice(0, dash);
  const to = dash < 0 ? text : text.slice(dash + 1);
  const valid = (a: string) => (family === 'ipv4' ? parseIpv4(a) !== undefined : parseIpv6(a) !== undefined);
  if (!valid(from) || !valid(to)) bad(`expected ${what} (FROM-TO addresses), got '${text}'`);
  return { from, to, negated };
}

function protocol(text: string): number {
  if (/^\d+$/.test(text)) return num(text, 'a protocol', 255);
  const lower = text.toLowerCase();
  if (lower === 'all') return 0;
  if (lower === 'icmpv6') return 58;
  const n = protocolByName(lower);
  if (n === undefined) bad(`expected a protocol (an /etc/protocols name or a number), got '${text}'`);
  return n;
}

/** An option of a match: its name, arguments and negation. */
interface Opt {
  readonly name: string;
  readonly args: readonly string[];
  readonly negated: boolean;
}

/** The states `-m state --state` accepts, in the order iptables-save prints them. */
const LEGACY_STATES: readonly CtState[] = CT_STATE_ORDER.filter((s) => s !== 'SNAT' && s !== 'DNAT');

/** Number of arguments each match option takes (match name → option → arity). */
const MATCH_OPTIONS: Readonly<Record<string, Readonly<Record<string, number>>>> = {
  mac: { '--mac-source': 1 },
  iprange: { '--src-range': 1, '--dst-range': 1 },
  dscp: { '--dscp': 1 },
  tcp: {
    '--sport': 1,
    '--source-port': 1,
    '--dport': 1,
    '--destination-port': 1,
    '--tcp-option': 1,
    '--tcp-flags': 2,
    '--syn': 0,
  },
  udp: { '--sport': 1, '--source-port': 1, '--dport': 1, '--destination-port': 1 },
  sctp: { '--sport': 1, '--source-port': 1, '--dport': 1, '--destination-port': 1 },
  icmp: { '--icmp-type': 1 },
  icmp6: { '--icmpv6-type': 1 },
  conntrack: { '--ctstate': 1, '--ctdir': 1 },
  state: { '--state': 1 },
  set: { '--match-set': 2 },
  connlimit: {
    '--connlimit-above': 1,
    '--connlimit-upto': 1,
    '--connlimit-mask': 1,
    '--connlimit-saddr': 0,
    '--connlimit-daddr': 0,
  },
  comment: { '--comment': 1 },
  mark: { '--mark': 1 },
  addrtype: { '--src-type': 1, '--dst-type': 1 },
  limit: { '--limit': 1, '--limit-burst': 1 },
  multiport: { '--dports': 1, '--destination-ports': 1, '--sports': 1, '--source-ports': 1, '--ports': 1 },
  physdev: {
    '--physdev-in': 1,
    '--physdev-out': 1,
    '--physdev-is-in': 0,
    '--physdev-is-out': 0,
    '--physdev-is-bridged': 0,
  },
};

function single(opts: readonly Opt[], name: string): Opt | undefined {
  const found = opts.filter((o) => o.name === name);
  if (found.length > 1) bad(`option ${name} given twice`);
  return found[0];
}

function buildPorts(opts: readonly Opt[], match: string): { sport?: IptRange; dport?: IptRange } {
  const out: { sport?: IptRange; dport?: IptRange } = {};
  for (const o of opts) {
    if (o.name === '--sport' || o.name === '--source-port') {
      if (out.sport) bad(`-m ${match}: source port given twice`);
      out.sport = portRange(o.args[0]!, o.negated, 'a source port');
    } else if (o.name === '--dport' || o.name === '--destination-port') {
      if (out.dport) bad(`-m ${match}: destination port given twice`);
      out.dport = portRange(o.args[0]!, o.negated, 'a destination port');
    }
  }
  return out;
}

function icmpType(text: string, negated: boolean, v6: boolean): { type: number; codeLo: number; codeHi: number } {
  if (!v6 && text === 'any') return { type: 0xff, codeLo: 0, codeHi: 0xff };
  const named = (v6 ? ICMPV6_TYPES_BY_NAME : ICMP_TYPES_BY_NAME).get(text);
  if (named !== undefined)
    return named.code === undefined
      ? { type: named.type, codeLo: 0, codeHi: 0xff }
      : { type: named.type, codeLo: named.code, codeHi: named.code };
  const m = /^(\d+)(?:\/(\d+))?$/.exec(text);
  if (!m) notModelled(`ICMP type '${text}' is not modelled (expected a number, TYPE/CODE${v6 ? '' : " or 'any'"})`);
  void negated;
  const type = num(m[1]!, 'an ICMP type', 255);
  if (m[2] === undefined) return { type, codeLo: 0, codeHi: 0xff };
  const code = num(m[2], 'an ICMP code', 255);
  return { type, codeLo: code, codeHi: code };
}

function buildMatch(name: string, opts: readonly Opt[], family: IptFamily): IptMatch {
  const arg = (o: Opt | undefined) => o?.args[0] ?? '';
  switch (name) {
    case 'mac': {
      const o = single(opts, '--mac-source');
      if (!o) bad('-m mac needs --mac-source');
      const m = parseMac(o.args[0]!);
      if (m === undefined) bad(`expected a MAC address after --mac-source, got '${o.args[0]}'`);
      return { kind: 'mac', source: m as Mac, negated: o.negated };
    }
    case 'iprange': {
      const s = single(opts, '--src-range');
      const d = single(opts, '--dst-range');
      if (!s && !d) bad('-m iprange needs --src-range or --dst-range');
      return {
        kind: 'iprange',
        ...(s ? { src: addrRange(arg(s), family, s.negated, 'a source range') } : {}),
        ...(d ? { dst: addrRange(arg(d), family, d.negated, 'a destination range') } : {}),
      };
    }
    case 'dscp': {
      const o = single(opts, '--dscp');
      if (!o) bad('-m dscp needs --dscp');
      return { kind: 'dscp', value: num(arg(o), 'a DSCP value', 63), negated: o.negated };
    }
    case 'tcp': {
      const opt = single(opts, '--tcp-option');
      const flags = single(opts, '--tcp-flags');
      const syn = single(opts, '--syn');
      if (flags && syn) bad('both --tcp-flags and --syn');
      let f: { mask: number; comp: number; negated: boolean } | undefined;
      if (flags) {
        const mask = parseTcpFlags(flags.args[0]!);
        const comp = parseTcpFlags(flags.args[1]!);
        if (mask === undefined || comp === undefined)
          bad(`expected TCP flags (SYN,ACK,FIN,RST,URG,PSH,ALL,NONE), got '${flags.args.join(' ')}'`);
        f = { mask, comp, negated: flags.negated };
      } else if (syn) f = { mask: 0x17, comp: 0x02, negated: syn.negated };
      return {
        kind: 'tcp',
        ...buildPorts(opts, 'tcp'),
        ...(opt ? { option: { value: num(arg(opt), 'a TCP option', 255), negated: opt.negated } } : {}),
        ...(f ? { flags: f } : {}),
      };
    }
    case 'udp':
      return { kind: 'udp', ...buildPorts(opts, 'udp') };
    case 'sctp':
      return { kind: 'sctp', ...buildPorts(opts, 'sctp') };
    case 'icmp': {
      const o = single(opts, '--icmp-type');
      if (!o) bad('-m icmp needs --icmp-type');
      return { kind: 'icmp', ...icmpType(arg(o), o.negated, false), negated: o.negated };
    }
    case 'icmp6': {
      const o = single(opts, '--icmpv6-type');
      if (!o) bad('-m icmp6 needs --icmpv6-type');
      return { kind: 'icmp6', ...icmpType(arg(o), o.negated, true), negated: o.negated };
    }
    case 'conntrack': {
      const st = single(opts, '--ctstate');
      const dir = single(opts, '--ctdir');
      let state: { states: CtState[]; negated: boolean } | undefined;
      if (st) {
        const states = arg(st).split(',');
        for (const s of states)
          if (!CT_STATE_ORDER.includes(s as CtState))
            bad(`expected conntrack states (${CT_STATE_ORDER.join(',')}), got '${s}'`);
        state = { states: states as CtState[], negated: st.negated };
      }
      let d: 'ORIGINAL' | 'REPLY' | undefined;
      if (dir) {
        if (arg(dir) !== 'ORIGINAL' && arg(dir) !== 'REPLY')
          bad(`expected --ctdir ORIGINAL or REPLY, got '${arg(dir)}'`);
        if (dir.negated) notModelled('a negated --ctdir is not modelled');
        d = arg(dir) as 'ORIGINAL' | 'REPLY';
      }
      return { kind: 'conntrack', ...(state ? { state } : {}), ...(d ? { dir: d } : {}) };
    }
    case 'state': {
      // The legacy state match: the same states as --ctstate but SNAT/DNAT (iptables 1.8.9 saves `! --state NEW` and
      // the states in --ctstate's order).
      const st = single(opts, '--state');
      if (!st) bad('-m state needs --state');
      const states = arg(st).split(',');
      for (const s of states)
        if (!LEGACY_STATES.includes(s as CtState))
          bad(`expected states (${LEGACY_STATES.join(',')}) for -m state, got '${s}'`);
      return { kind: 'conntrack', state: { states: states as CtState[], negated: st.negated }, legacy: true };
    }
    case 'set': {
      const o = single(opts, '--match-set');
      if (!o) bad('-m set needs --match-set');
      const flags = o.args[1]!.split(',');
      for (const f of flags) if (f !== 'src' && f !== 'dst') bad(`expected set flags src/dst, got '${f}'`);
      return { kind: 'set', name: o.args[0]!, flags: flags as ('src' | 'dst')[], negated: o.negated };
    }
    case 'connlimit': {
      const above = single(opts, '--connlimit-above');
      const upto = single(opts, '--connlimit-upto');
      const lim = above ?? upto;
      if (!lim || (above && upto)) bad('-m connlimit needs one of --connlimit-above, --connlimit-upto');
      const mask = single(opts, '--connlimit-mask');
      const max = family === 'ipv4' ? 32 : 128;
      return {
        kind: 'connlimit',
        limit: num(arg(lim), 'a connection limit', 0xffffffff),
        upto: upto !== undefined,
        mask: mask ? num(arg(mask), 'a connlimit mask', max) : max,
        daddr: opts.some((o) => o.name === '--connlimit-daddr'),
      };
    }
    case 'comment': {
      const o = single(opts, '--comment');
      if (!o) bad('-m comment needs --comment');
      return { kind: 'comment', text: arg(o) };
    }
    case 'mark': {
      const o = single(opts, '--mark');
      if (!o) bad('-m mark needs --mark');
      const [v, mk] = arg(o).split('/');
      return {
        kind: 'mark',
        value: num(v!, 'a mark value', 0xffffffff),
        mask: mk === undefined ? 0xffffffff : num(mk, 'a mark mask', 0xffffffff),
        negated: o.negated,
      };
    }
    case 'addrtype': {
      const s = single(opts, '--src-type');
      const d = single(opts, '--dst-type');
      if (!s && !d) bad('-m addrtype needs --src-type or --dst-type');
      const typ = (o: Opt) => {
        const t = arg(o).toUpperCase();
        if (!ADDR_TYPES.includes(t)) bad(`expected an address type (${ADDR_TYPES.join(', ')}), got '${arg(o)}'`);
        return { type: t, negated: o.negated };
      };
      return { kind: 'addrtype', ...(s ? { src: typ(s) } : {}), ...(d ? { dst: typ(d) } : {}) };
    }
    case 'limit': {
      const l = single(opts, '--limit');
      const b = single(opts, '--limit-burst');
      const rate = l ? arg(l) : '3/hour';
      if (!/^\d+\/(sec|second|min|minute|hour|day|s|m|h|d)$/.test(rate))
        bad(`expected --limit N/sec|minute|hour|day, got '${rate}'`);
      return { kind: 'limit', rate, ...(b ? { burst: num(arg(b), 'a limit burst', 10000) } : {}) };
    }
    case 'multiport': {
      const o = opts[0];
      if (!o || opts.length > 1) bad('-m multiport needs exactly one of --dports, --sports, --ports');
      const which =
        o.name.includes('dest') || o.name === '--dports' ? 'dports' : o.name === '--ports' ? 'ports' : 'sports';
      const ranges = arg(o)
        .split(',')
        .map((x) => {
          const r = portRange(x, false, 'a port');
          return { lo: r.lo, hi: r.hi };
        });
      if (ranges.length > 15) bad('-m multiport takes at most 15 ports');
      return { kind: 'multiport', which, ranges, negated: o.negated };
    }
    case 'physdev': {
      const iface = (o: Opt | undefined): IptIfaceMatch | undefined =>
        o ? { name: arg(o), negated: o.negated } : undefined;
      const flag = (o: Opt | undefined) => (o ? { negated: o.negated } : undefined);
      const pin = iface(single(opts, '--physdev-in'));
      const pout = iface(single(opts, '--physdev-out'));
      const isIn = flag(single(opts, '--physdev-is-in'));
      const isOut = flag(single(opts, '--physdev-is-out'));
      const isBridged = flag(single(opts, '--physdev-is-bridged'));
      return {
        kind: 'physdev',
        ...(pin ? { in: pin } : {}),
        ...(pout ? { out: pout } : {}),
        ...(isIn ? { isIn } : {}),
        ...(isOut ? { isOut } : {}),
        ...(isBridged ? { isBridged } : {}),
      };
    }
  }
  return notModelled(`match -m ${name} is not modelled`);
}

const ADDR_TYPES = [
  'UNSPEC',
  'UNICAST',
  'LOCAL',
  'BROADCAST',
  'ANYCAST',
  'MULTICAST',
  'BLACKHOLE',
  'UNREACHABLE',
  'PROHIBIT',
  'THROW',
  'NAT',
  'XRESOLVE',
];

/** Match names iptables treats as another's (`-m icmpv6` loads icmp6). */
const MATCH_ALIASES: Readonly<Record<string, string>> = { icmpv6: 'icmp6', 'ipv6-icmp': 'icmp6' };

/** The match a protocol loads implicitly (`-p tcp --dport 80` is `-p tcp -m tcp --dport 80`). */
const IMPLICIT_MATCH: Readonly<Record<number, string>> = { 6: 'tcp', 17: 'udp', 132: 'sctp', 1: 'icmp', 58: 'icmp6' };

/** Parses `V[/M]` of --set-mark/--set-xmark; --set-mark V/M is --set-xmark V/(M|V). */
function markArg(text: string, xmark: boolean): { value: number; mask: number } {
  const [v, m] = text.split('/');
  const value = num(v!, 'a mark value', 0xffffffff);
  const mask = m === undefined ? 0xffffffff : num(m, 'a mark mask', 0xffffffff);
  return { value, mask: xmark ? mask : (mask | value) >>> 0 };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** mangle targets that change nothing a trace decides on: read, and passed over when evaluated. */
const PASSIVE_TARGETS: ReadonlySet<string> = new Set(['CHECKSUM', 'TCPMSS', 'TOS', 'TTL', 'DSCP', 'CLASSIFY', 'ECN']);

/** The nat targets traces apply when the whole nat table is (a hypervisor's). */
const NAT_APPLIED: ReadonlySet<string> = new Set(['DNAT', 'REDIRECT', 'SNAT', 'MASQUERADE']);

/** Parses the words after `-A CHAIN`. */
function parseRule(
  words: readonly Word[],
  family: IptFamily,
  chains: ReadonlySet<string>,
  origin: Origin,
  counters: IptCounters | undefined,
): IptRule {
  const rule: Mutable<Omit<IptRule, 'matches'>> = { origin };
  const matches: IptMatch[] = [];
  let i = 0;
  let neg = false;
  const takeNeg = () => {
    const n = neg;
    neg = false;
    return n;
  };
  const next = (opt: string): string => {
    const w = words[i++];
    if (w === undefined) bad(`option ${opt} needs a value`);
    return w.text;
  };
  /** The options of one match, from the current word on. */
  const gather = (name: string, known: Readonly<Record<string, number>>): Opt[] => {
    const opts: Opt[] = [];
    while (i < words.length) {
      let k = i;
      let n = false;
      if (words[k]!.text === '!' && !words[k]!.quoted) {
        n = true;
        k++;
      }
      const ow = words[k];
      if (ow === undefined || ow.quoted || !ow.text.startsWith('--')) break;
      const arity = known[ow.text];
      if (arity === undefined) {
        if (
          [
            '--source',
            '--destination',
            '--in-interface',
            '--out-interface',
            '--protocol',
            '--match',
            '--jump',
            '--goto',
          ].includes(ow.text)
        )
          break;
        // An option of the protocol's implicit match after another match (`-m set … --dport 80`) ends this match.
        const implicit = rule.proto ? IMPLICIT_MATCH[rule.proto.value] : undefined;
        if (implicit !== undefined && implicit !== name && MATCH_OPTIONS[implicit]?.[ow.text] !== undefined) break;
        notModelled(`option ${ow.text} of -m ${name} is not modelled (expected ${Object.keys(known).join(', ')})`);
      }
      const args: string[] = [];
      for (let a = 0; a < arity; a++) {
        const aw = words[k + 1 + a];
        if (aw === undefined) bad(`option ${ow.text} of -m ${name} needs ${arity} value${arity > 1 ? 's' : ''}`);
        args.push(aw.text);
      }
      opts.push({ name: ow.text, args, negated: n });
      i = k + 1 + arity;
    }
    return opts;
  };
  while (i < words.length) {
    const w = words[i++]!;
    const t = w.text;
    if (t === '!' && !w.quoted) {
      neg = true;
      continue;
    }
    switch (t) {
      case '-s':
      case '--source':
      case '-d':
      case '--destination': {
        const src = t === '-s' || t === '--source';
        if ((src ? rule.src : rule.dst) !== undefined) bad(`option ${t} given twice`);
        const n = takeNeg();
        const m = addrMatch(next(t), family, n, src ? 'a source address' : 'a destination address');
        if (src) rule.src = m;
        else rule.dst = m;
        break;
      }
      case '-i':
      case '--in-interface':
      case '-o':
      case '--out-interface': {
        const n = takeNeg();
        const m = { name: next(t), negated: n };
        if (t === '-i' || t === '--in-interface') rule.in = m;
        else rule.out = m;
        break;
      }
      case '-p':
      case '--protocol': {
        const n = takeNeg();
        rule.proto = { value: protocol(next(t)), negated: n };
        break;
      }
      case '-m':
      case '--match': {
        if (neg) bad("a '!' before -m");
        const given = next(t);
        const name = MATCH_ALIASES[given] ?? given;
        const known = MATCH_OPTIONS[name];
        if (known === undefined)
          notModelled(`match -m ${given} is not modelled (expected one of ${Object.keys(MATCH_OPTIONS).join(', ')})`);
        matches.push(buildMatch(name, gather(name, known), family));
        break;
      }
      case '-j':
      case '--jump':
      case '-g':
      case '--goto': {
        if (rule.target !== undefined) bad('two targets');
        if (neg) bad("a '!' before the target");
        const name = next(t);
        let target: IptTarget;
        if (t === '-g' || t === '--goto') {
          if (!chains.has(name)) bad(`goto to chain ${name}, which is not declared`);
          target = { kind: 'goto', chain: name };
        } else if (VERDICTS.has(name)) target = { kind: 'verdict', verdict: name as 'ACCEPT' | 'DROP' | 'RETURN' };
        else if (name === 'REJECT') {
          let w2 = '';
          if (words[i]?.text === '--reject-with') {
            i++;
            w2 = next('--reject-with');
          }
          target = { kind: 'reject', with: w2 };
        } else if (name === 'NOTRACK') target = { kind: 'notrack', ct: false };
        else if (name === 'CT') {
          const o = next('-j CT');
          if (o !== '--notrack') notModelled(`-j CT ${o} is not modelled (only --notrack is)`);
          target = { kind: 'notrack', ct: true };
        } else if (name === 'MARK' || name === 'CONNMARK') {
          const o = next(`-j ${name}`);
          if (o !== '--set-mark' && o !== '--set-xmark')
            notModelled(`-j ${name} ${o} is not modelled (expected --set-mark or --set-xmark)`);
          const m = markArg(next(o), o === '--set-xmark');
          target = { kind: name === 'MARK' ? 'mark' : 'connmark', ...m };
        } else if (name === 'SNAT' || name === 'MASQUERADE') {
          let toSource: string | undefined;
          let toPorts: { lo: number; hi: number } | undefined;
          const ports = (v: string, o: string) => {
            const pm = /^(\d+)(?:-(\d+))?$/.exec(v);
            if (!pm) bad(`-j ${name} ${o}: expected PORT or LO-HI, got '${v}'`);
            const lo = num(pm![1]!, 'a port', 0xffff);
            const hi = pm![2] === undefined ? lo : num(pm![2], 'a port', 0xffff);
            if (hi < lo) bad(`-j ${name} ${o}: port range ${v} is empty`);
            return { lo, hi };
          };
          while (i < words.length && words[i]!.text.startsWith('--') && !words[i]!.quoted) {
            const o = next(`-j ${name}`);
            if (name === 'SNAT' && (o === '--to-source' || o === '--to')) {
              const v = next(o);
              const m = /^([0-9.]+)(?::(.+))?$/.exec(v);
              if (family !== 'ipv4' || !m || parseIpv4(m[1]!) === undefined)
                notModelled(
                  `-j SNAT ${o} '${v}' is not modelled (expected one IPv4 address, without an address range)`,
                );
              toSource = m![1]!;
              if (m![2] !== undefined) toPorts = ports(m![2], o);
            } else if (name === 'MASQUERADE' && o === '--to-ports') toPorts = ports(next(o), o);
            else if (o !== '--random' && o !== '--random-fully' && o !== '--persistent')
              notModelled(`target option ${o} of -j ${name} is not modelled`);
          }
          if (name === 'SNAT') {
            if (toSource === undefined) bad('-j SNAT without --to-source');
            target = { kind: 'snat', toSource: toSource!, ...(toPorts ? { toPorts } : {}) };
          } else target = { kind: 'masquerade', ...(toPorts ? { toPorts } : {}) };
        } else if (name === 'DNAT' || name === 'REDIRECT') {
          let toDest: string | undefined;
          let toPort: number | undefined;
          while (i < words.length && words[i]!.text.startsWith('--') && !words[i]!.quoted) {
            const o = next(`-j ${name}`);
            if (name === 'DNAT' && (o === '--to-destination' || o === '--to')) {
              const v = next(o);
              const m = /^([0-9.]+)(?::(\d+))?$/.exec(v);
              if (family !== 'ipv4' || !m || parseIpv4(m[1]!) === undefined)
                notModelled(
                  `-j DNAT ${o} '${v}' is not modelled (expected one IPv4 address with at most one port, without ranges)`,
                );
              toDest = m![1]!;
              if (m![2] !== undefined) toPort = num(m![2], 'a port', 0xffff);
            } else if (name === 'REDIRECT' && o === '--to-ports') {
              const v = next(o);
              if (!/^\d+$/.test(v))
                notModelled(`-j REDIRECT --to-ports '${v}' is not modelled (expected one port, not a range)`);
              toPort = num(v, 'a port', 0xffff);
            } else if (o !== '--random' && o !== '--persistent')
              notModelled(`target option ${o} of -j ${name} is not modelled`);
          }
          if (name === 'DNAT') {
            if (toDest === undefined) bad('-j DNAT without --to-destination');
            target = { kind: 'dnat', toDest: toDest!, ...(toPort !== undefined ? { toPort } : {}) };
          } else target = { kind: 'redirect', ...(toPort !== undefined ? { toPort } : {}) };
        } else if (PASSIVE_TARGETS.has(name)) {
          const args: string[] = [];
          while (i < words.length && !['-m', '--match', '-j', '-g'].includes(words[i]!.text))
            args.push(words[i++]!.text);
          target = { kind: 'passive', name, args: args.join(' ') };
        } else if (name === 'NFLOG') {
          let prefix: string | undefined;
          let group: number | undefined;
          while (i < words.length && words[i]!.text.startsWith('--') && !words[i]!.quoted) {
            const o = next('-j NFLOG');
            const v = next(o);
            if (o === '--nflog-prefix') prefix = v;
            else if (o === '--nflog-group') group = num(v, 'an NFLOG group', 0xffff);
            else if (o !== '--nflog-range' && o !== '--nflog-size' && o !== '--nflog-threshold')
              notModelled(`target option ${o} of -j NFLOG is not modelled`);
          }
          target = {
            kind: 'nflog',
            ...(prefix !== undefined ? { prefix } : {}),
            ...(group !== undefined ? { group } : {}),
          };
        } else if (name === 'NFQUEUE') {
          let queue = '';
          let bypass = false;
          while (i < words.length && words[i]!.text.startsWith('--')) {
            const o = next('-j NFQUEUE');
            if (o === '--queue-bypass') bypass = true;
            else if (o === '--queue-num' || o === '--queue-balance') queue = `${o} ${next(o)}`;
            else if (o !== '--queue-cpu-fanout') notModelled(`target option ${o} of -j NFQUEUE is not modelled`);
          }
          target = { kind: 'nfqueue', queue, bypass };
        } else if (chains.has(name)) target = { kind: 'jump', chain: name };
        else notModelled(`target ${name} is not modelled (expected ACCEPT, DROP, RETURN, REJECT or a declared chain)`);
        rule.target = target;
        if (i < words.length && words[i]!.text.startsWith('--'))
          notModelled(`target option ${words[i]!.text} of -j ${name} is not modelled`);
        break;
      }
      case '-f':
      case '--fragment':
        notModelled('-f (fragment match) is not modelled');
        break;
      default: {
        const implicit = rule.proto && !rule.proto.negated ? IMPLICIT_MATCH[rule.proto.value] : undefined;
        const known = implicit === undefined ? undefined : MATCH_OPTIONS[implicit];
        const at = neg ? i - 2 : i - 1;
        if (known !== undefined && implicit !== undefined && known[t] !== undefined) {
          // `-p tcp --dport 80`: the protocol's match, loaded implicitly.
          neg = false;
          i = at;
          matches.push(buildMatch(implicit, gather(implicit, known), family));
          break;
        }
        if (t.startsWith('-'))
          notModelled(`option ${t} is not modelled (expected -s, -d, -i, -o, -p, -m MATCH …, -j or -g)`);
        bad(`expected an option, got '${t}'`);
      }
    }
  }
  if (neg) bad("a '!' with no option after it");
  const out: IptRule = { ...rule, matches };
  return counters === undefined ? out : { ...out, counters };
}

interface TableBuilder {
  readonly chains: {
    name: string;
    builtin: boolean;
    policy?: IptPolicy;
    policyOrigin?: Origin;
    counters?: IptCounters;
    rules: IptRule[];
    origin: Origin;
  }[];
  committed: boolean;
  readonly line: number;
  readonly name: IptTableName;
}

function parseCounters(text: string): IptCounters | undefined {
  const m = /^\[(\d+):(\d+)\]$/.exec(text);
  return m ? { packets: Number(m[1]), bytes: Number(m[2]) } : undefined;
}

/**
 * Reads `iptables-save` (family `ipv4`) or `ip6tables-save` (`ipv6`) output: the filter table(s) it contains, and
 * every other table as far as what it means for a traced verdict (see iptables-other-tables.ts).
 */
export function readIptablesSave(
  text: string,
  file: string,
  family: IptFamily,
  /** Tables besides filter the caller evaluates: read into the model instead of only reported. */
  evaluated: readonly ('mangle' | 'raw' | 'nat')[] = [],
  /**
   * The caller applies the whole nat table (a hypervisor's: DNAT/REDIRECT in PREROUTING and OUTPUT, SNAT/MASQUERADE
   * in POSTROUTING), not only the POSTROUTING source NAT of IPVS NAT traffic (a director's).
   */
  options: { readonly wholeNat?: boolean } = {},
): ReadResult<IptTable[]> {
  const issues: Issue[] = [];
  const tables: TableBuilder[] = [];
  const tool = family === 'ipv4' ? 'iptables' : 'ip6tables';
  let cur: TableBuilder | undefined;
  let other: OtherTableReader | undefined;
  // An evaluated nat table is also read as other tables are, for what its rules besides SNAT/MASQUERADE (DNAT,
  // REDIRECT, marks …) would change and traces leave out: those warnings are kept, its other notes are not.
  let natShadow: { reader: OtherTableReader; issues: Issue[] } | undefined;
  const closeShadow = () => {
    if (!natShadow) return;
    natShadow.reader.finish();
    appendAll(
      issues,
      natShadow.issues.filter((i) => i.code === 'iptables-table-not-modelled'),
    );
    natShadow = undefined;
  };
  const closeOther = () => {
    other?.finish();
    other = undefined;
    closeShadow();
  };
  text.split('\n').forEach((raw, idx) => {
    const lineNo = idx + 1;
    const line = raw.replace(/\r$/, '').trim();
    const pos = filePos(file, lineNo);
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      if (cur && !cur.committed)
        issues.push(issue('iptables-no-commit', `table before line ${lineNo} has no COMMIT`, filePos(file, cur.line)));
      closeOther();
      cur = undefined;
      const name = line.slice(1);
      if (name === 'filter' || ((name === 'mangle' || name === 'raw' || name === 'nat') && evaluated.includes(name))) {
        cur = { chains: [], committed: false, line: lineNo, name };
        tables.push(cur);
        if (name === 'nat') {
          const shadowIssues: Issue[] = [];
          natShadow = {
            reader: new OtherTableReader(
              name,
              lineNo,
              file,
              shadowIssues,
              splitSaveLine,
              options.wholeNat ? NAT_APPLIED : undefined,
            ),
            issues: shadowIssues,
          };
        }
      } else other = new OtherTableReader(name, lineNo, file, issues, splitSaveLine);
      return;
    }
    if (other) {
      if (!other.line(line, lineNo)) other = undefined;
      return;
    }
    if (cur === undefined) {
      issues.push(issue('iptables-stray-line', `expected a '*TABLE' line first, got '${line}'`, pos));
      return;
    }
    const table = cur;
    natShadow?.reader.line(line, lineNo);
    if (line === 'COMMIT') {
      closeShadow();
      table.committed = true;
      cur = undefined;
      return;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+) (\S+)(?: (\S+))?$/.exec(line);
      if (!m) {
        issues.push(issue('iptables-bad-chain', `expected ':CHAIN POLICY [packets:bytes]', got '${line}'`, pos));
        return;
      }
      const name = m[1]!;
      if (table.chains.some((c) => c.name === name)) {
        issues.push(issue('iptables-duplicate-chain', `chain ${name} declared twice`, pos));
        return;
      }
      const builtin = (
        table.name === 'mangle'
          ? IPT_MANGLE_CHAINS
          : table.name === 'raw'
            ? IPT_RAW_CHAINS
            : table.name === 'nat'
              ? IPT_NAT_CHAINS
              : IPT_BUILTIN_CHAINS
      ).includes(name);
      const origin: Origin = { kind: 'file', label: `${tool} chain ${name}`, pos };
      const counters = m[3] === undefined ? undefined : parseCounters(m[3]);
      if (m[3] !== undefined && counters === undefined)
        issues.push(issue('iptables-bad-counters', `expected [packets:bytes], got '${m[3]}'`, pos));
      const policy = m[2]!;
      const chain: TableBuilder['chains'][number] = { name, builtin, rules: [], origin };
      if (builtin) {
        if (policy !== 'ACCEPT' && policy !== 'DROP') {
          issues.push(issue('iptables-bad-policy', `expected policy ACCEPT or DROP, got '${policy}'`, pos));
          chain.policy = 'ACCEPT';
        } else chain.policy = policy;
        chain.policyOrigin = origin;
      } else if (policy !== '-') {
        issues.push(issue('iptables-bad-policy', `user chain ${name} with policy '${policy}' (expected '-')`, pos));
      }
      if (counters) chain.counters = counters;
      table.chains.push(chain);
      return;
    }
    let body = line;
    let counters: IptCounters | undefined;
    const cm = /^\[(\d+):(\d+)\]\s+/.exec(body);
    if (cm) {
      counters = { packets: Number(cm[1]), bytes: Number(cm[2]) };
      body = body.slice(cm[0].length);
    }
    const words = splitSaveLine(body);
    if (words === undefined) {
      issues.push(issue('iptables-bad-quote', 'unterminated double quote', pos));
      return;
    }
    if (words[0]?.text !== '-A' || words[1] === undefined) {
      issues.push(issue('iptables-stray-line', `expected ':CHAIN', '-A CHAIN …' or COMMIT, got '${line}'`, pos));
      return;
    }
    const chainName = words[1].text;
    const chain = table.chains.find((c) => c.name === chainName);
    if (chain === undefined) {
      issues.push(issue('iptables-unknown-chain', `rule for chain ${chainName} that was not declared with ':'`, pos));
      return;
    }
    const origin: Origin = {
      kind: 'file',
      label: `${tool} ${table.name} ${chainName} rule ${chain.rules.length + 1}`,
      pos,
    };
    try {
      chain.rules.push(parseRule(words.slice(2), family, new Set(table.chains.map((c) => c.name)), origin, counters));
    } catch (e) {
      if (!(e instanceof RuleError)) throw e;
      // nat: only SNAT/MASQUERADE rules are evaluated (POSTROUTING); the others are reported by what they change.
      if (table.name === 'nat') {
        if (options.wholeNat)
          issues.push(
            issue(
              'iptables-nat-rule-not-modelled',
              `${e.message}; rule left out of the nat table traces apply: a packet it would translate is traced untranslated`,
              pos,
              'warning',
            ),
          );
        else if (chainName === 'POSTROUTING' || /\s-j (SNAT|MASQUERADE)\b/.test(` ${body}`))
          issues.push(
            issue(
              'iptables-nat-rule-not-modelled',
              `${e.message}; rule left out of the nat POSTROUTING traces apply to IPVS NAT traffic`,
              pos,
              'warning',
            ),
          );
        return;
      }
      if (e.isUnsupported)
        issues.push(unsupported('iptables-unsupported', `${e.message}; rule left out of the model`, pos));
      else issues.push(issue('iptables-bad-rule', `${e.message}; rule left out of the model`, pos));
    }
  });
  closeOther();
  if (cur !== undefined) {
    const open: TableBuilder = cur;
    if (!open.committed)
      issues.push(issue('iptables-no-commit', 'the table has no COMMIT line', filePos(file, open.line), 'warning'));
  }
  const value = tables.map(
    (t): IptTable => ({
      family,
      name: t.name,
      chains: t.chains.map((c): IptChain => {
        const base: IptChain = { name: c.name, builtin: c.builtin, rules: c.rules, origin: c.origin };
        return {
          ...base,
          ...(c.policy ? { policy: c.policy } : {}),
          ...(c.policyOrigin ? { policyOrigin: c.policyOrigin } : {}),
          ...(c.counters ? { counters: c.counters } : {}),
        };
      }),
    }),
  );
  return { value, issues };
}

/**
 * Reads one rule given as `iptables` arguments (`-A CHAIN …`, as `iptables-restore` reads it; implicit protocol
 * matches and `--set-mark` accepted), for compilers that generate rule text. `chains` are the chains a jump may name.
 */
export function readIptablesRuleText(
  text: string,
  family: IptFamily,
  chains: ReadonlySet<string>,
  origin: Origin,
): { readonly chain: string; readonly rule: IptRule } | { readonly error: string; readonly unsupported: boolean } {
  const words = splitSaveLine(text);
  if (words === undefined) return { error: 'unterminated double quote', unsupported: false };
  if (words[0]?.text !== '-A' || words[1] === undefined)
    return { error: `expected '-A CHAIN …', got '${text}'`, unsupported: false };
  try {
    return { chain: words[1].text, rule: parseRule(words.slice(2), family, chains, origin, undefined) };
  } catch (e) {
    if (!(e instanceof RuleError)) throw e;
    return { error: e.message, unsupported: e.isUnsupported };
  }
}
