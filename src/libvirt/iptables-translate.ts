/**
 * One nwfilter rule instance of a layer-3/4 protocol (tcp, udp, icmp, all, …, and their `-ipv6` forms) → the
 * iptables/ip6tables rules libvirt 9.0 appends to `FJ-`/`FP-`/`HJ-<if>` (renamed `FI-`/`FO-`/`HI-`), following
 * `iptablesCreateRuleInstance`, `iptablesCreateRuleInstanceStateCtrl` and `_iptablesCreateRuleInstance` (fact sheet
 * §3.5): three copies with `directionIn` swapping source and destination, the default state matching with
 * `--ctdir`, explicit `state`, `statematch='false'`, ICMP copies skipped when a type is given, `connlimit-above`
 * only in the non-`directionIn` copies, the source-MAC match skipped in `directionIn` copies (and the whole copy
 * dropped when nothing else was matched), `accept` → RETURN in FJ/HJ and ACCEPT in FP.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { ipv4Mask } from '../addr/prefix.ts';
import type { CtState, IptFamily, IptMatch, IptRule, IptTarget } from '../netfilter/iptables-model.ts';
import type { TypedAttr, TypedAttrs } from './ebtables-translate.ts';
import { maskIpv6 } from './nwfilter-attrs.ts';
import type { NwProtocol, NwRuleAction, NwRuleDirection } from './nwfilter-model.ts';

/** The three per-interface chains: F-in (VM → forwarded), F-out (forwarded → VM), H-in (VM → host). */
export type IptRootChain = 'FI' | 'FO' | 'HI';

export const IPT_TEMP_CHAIN: Readonly<Record<IptRootChain, string>> = { FI: 'FJ', FO: 'FP', HI: 'HJ' };

export function iptFamilyOf(protocol: NwProtocol): IptFamily {
  return protocol.endsWith('-ipv6') || protocol === 'icmpv6' ? 'ipv6' : 'ipv4';
}

const PROTO_NUMBERS: Readonly<Record<string, { n: number; arg: string }>> = {
  tcp: { n: 6, arg: 'tcp' },
  'tcp-ipv6': { n: 6, arg: 'tcp' },
  udp: { n: 17, arg: 'udp' },
  'udp-ipv6': { n: 17, arg: 'udp' },
  udplite: { n: 136, arg: 'udplite' },
  'udplite-ipv6': { n: 136, arg: 'udplite' },
  esp: { n: 50, arg: 'esp' },
  'esp-ipv6': { n: 50, arg: 'esp' },
  ah: { n: 51, arg: 'ah' },
  'ah-ipv6': { n: 51, arg: 'ah' },
  sctp: { n: 132, arg: 'sctp' },
  'sctp-ipv6': { n: 132, arg: 'sctp' },
  icmp: { n: 1, arg: 'icmp' },
  icmpv6: { n: 58, arg: 'icmpv6' },
  igmp: { n: 2, arg: 'igmp' },
};

export interface IptCopy {
  /** Arguments after `-A <temp chain>` as libvirt passes them. */
  readonly argv: readonly string[];
  readonly rule: Omit<IptRule, 'origin'>;
  /** libvirt fails while building the rule (before applying anything): its message. */
  readonly buildError?: string;
}

export const IPSET_BUILD_ERROR = 'internal error: Unexpected enum value 0 for virNWFilterAttrDataType';

export interface IptCopyRequest {
  readonly chain: IptRootChain;
  readonly directionIn: boolean;
  /** States for `-m conntrack --ctstate`, or undefined for none. */
  readonly matchState: readonly CtState[] | undefined;
  /** Default state matching (adds `--ctdir`, and is dropped for non-accept actions). */
  readonly defMatch: boolean;
  readonly maySkipICMP: boolean;
}

const MATCH_STATE_OUT: readonly CtState[] = ['NEW', 'ESTABLISHED'];
const MATCH_STATE_IN: readonly CtState[] = ['ESTABLISHED'];

function stateList(text: string): CtState[] | undefined {
  const parts = text.split(',').filter((p) => p !== 'NONE') as CtState[];
  return parts.length === 0 ? undefined : parts;
}

/** Which copies libvirt creates for a rule, in order (FJ, FP, HJ). */
export function iptablesCopies(
  direction: NwRuleDirection,
  statematch: boolean,
  state: string | undefined,
): IptCopyRequest[] {
  const directionIn = direction === 'in' || direction === 'inout';
  const inout = direction === 'inout';
  if (statematch && state !== undefined) {
    // iptablesCreateRuleInstanceStateCtrl: the copies against the rule's direction are not created.
    const ms = stateList(state);
    const out: IptCopyRequest[] = [];
    if (!(directionIn && !inout)) {
      out.push({ chain: 'FI', directionIn, matchState: ms, defMatch: false, maySkipICMP: directionIn || inout });
    }
    if (directionIn) {
      out.push({
        chain: 'FO',
        directionIn: !directionIn,
        matchState: ms,
        defMatch: false,
        maySkipICMP: !directionIn || inout,
      });
    }
    if (!(directionIn && !inout)) {
      out.push({ chain: 'HI', directionIn, matchState: ms, defMatch: false, maySkipICMP: directionIn });
    }
    return out;
  }
  const needState = statematch && !inout;
  const st = (dirIn: boolean) => (needState ? (dirIn ? MATCH_STATE_IN : MATCH_STATE_OUT) : undefined);
  return [
    { chain: 'FI', directionIn, matchState: st(directionIn), defMatch: true, maySkipICMP: directionIn || inout },
    {
      chain: 'FO',
      directionIn: !directionIn,
      matchState: st(!directionIn),
      defMatch: true,
      maySkipICMP: !directionIn || inout,
    },
    { chain: 'HI', directionIn, matchState: st(directionIn), defMatch: true, maySkipICMP: directionIn },
  ];
}

interface Range {
  readonly text: string;
  readonly lo: number;
  readonly hi: number;
  readonly negated: boolean;
}

/** `_iptablesCreateRuleInstance` for one copy; undefined when libvirt skips that copy. */
export function translateIptablesRule(
  protocol: NwProtocol,
  attrs: TypedAttrs,
  action: NwRuleAction,
  req: IptCopyRequest,
): IptCopy | undefined {
  const family = iptFamilyOf(protocol);
  const { directionIn } = req;
  const argv: string[] = [];
  const matches: IptMatch[] = [];
  const get = (n: string): TypedAttr | undefined => attrs.get(n);
  const bang = (a: TypedAttr | undefined) => (a?.negated ? ['!'] : []);
  const rule: { -readonly [K in keyof IptRule]?: IptRule[K] } = {};

  const p = PROTO_NUMBERS[protocol];
  if (p) {
    argv.push('-p', p.arg);
    rule.proto = { value: p.n, negated: false };
  } else if (protocol === 'all' || protocol === 'all-ipv6') {
    // libvirt passes `-p all` (verified in a failing command); iptables-save does not print it.
    argv.push('-p', 'all');
  }
  const baseArgs = argv.length;

  // Source MAC (skipped in directionIn copies).
  let srcMacSkipped = false;
  const smac = get('srcmacaddr');
  if (smac) {
    if (directionIn) srcMacSkipped = true;
    else {
      argv.push('-m', 'mac', ...bang(smac), '--mac-source', smac.value as string);
      matches.push({ kind: 'mac', source: smac.value as Mac, negated: smac.negated });
    }
  }

  // IP header.
  const fullLen = family === 'ipv4' ? 32 : 128;
  const addr = (addrAttr: string, maskAttr: string) => {
    const a = get(addrAttr);
    if (a === undefined) return undefined;
    const m = get(maskAttr);
    const len = (m?.value as number | undefined) ?? fullLen;
    // libvirt formats addresses as glibc's inet_ntop does (`::ffff:10.1.2.3`).
    const text = family === 'ipv4' ? formatIpv4(a.value as Ipv4) : maskIpv6(a.value as string, 128);
    const masked =
      family === 'ipv4'
        ? formatIpv4((((a.value as number) & ipv4Mask(len)) >>> 0) as Ipv4)
        : maskIpv6(a.value as string, len);
    return {
      arg: m === undefined ? text : `${text}/${len}`,
      m: { addr: masked, prefixLen: len, negated: a.negated },
    };
  };
  // libvirt 9.0 types the -ipv6 elements' `dstipto` as IPv4: it passes that address on (ip6tables refuses it).
  const addrText = (v: TypedAttr) =>
    family === 'ipv4' || typeof v.value === 'number' ? formatIpv4(v.value as Ipv4) : maskIpv6(v.value as string, 128);
  const side = (which: 'src' | 'dst') => {
    const toSrc = (which === 'src') !== directionIn;
    const a = addr(`${which}ipaddr`, `${which}ipmask`);
    if (a) {
      argv.push(...bang(get(`${which}ipaddr`)), toSrc ? '--source' : '--destination', a.arg);
      if (toSrc) rule.src = a.m;
      else rule.dst = a.m;
      return;
    }
    const from = get(`${which}ipfrom`);
    if (from) {
      const to = get(`${which}ipto`);
      argv.push('-m', 'iprange', ...bang(from), toSrc ? '--src-range' : '--dst-range');
      argv.push(to ? `${addrText(from)}-${addrText(to)}` : addrText(from));
      const r = { from: addrText(from), to: addrText(to ?? from), negated: from.negated };
      matches.push(toSrc ? { kind: 'iprange', src: r } : { kind: 'iprange', dst: r });
    }
  };
  side('src');
  side('dst');
  const dscp = get('dscp');
  if (dscp) {
    argv.push('-m', 'dscp', ...bang(dscp), '--dscp', `${dscp.value}`);
    matches.push({ kind: 'dscp', value: dscp.value as number, negated: dscp.negated });
  }
  let skipRule = false;
  let skipMatch = false;
  const connlimit = get('connlimit-above');
  if (connlimit) {
    if (directionIn) skipRule = true;
    else skipMatch = true;
  }

  const range = (lo: string, hi: string): Range | undefined => {
    const a = get(lo);
    if (a === undefined) return undefined;
    const l = a.value as number;
    const h = get(hi);
    const hv = (h?.value as number | undefined) ?? l;
    return { text: h === undefined ? `${l}` : `${l}:${hv}`, lo: l, hi: hv, negated: a.negated };
  };
  const ports = () => {
    const sp = range('srcportstart', 'srcportend');
    const dp = range('dstportstart', 'dstportend');
    let sport: Range | undefined;
    let dport: Range | undefined;
    if (sp) {
      argv.push(...(sp.negated ? ['!'] : []), directionIn ? '--dport' : '--sport', sp.text);
      if (directionIn) dport = sp;
      else sport = sp;
    }
    if (dp) {
      argv.push(...(dp.negated ? ['!'] : []), directionIn ? '--sport' : '--dport', dp.text);
      if (directionIn) sport = dp;
      else dport = dp;
    }
    const r = (x: Range | undefined) => (x ? { lo: x.lo, hi: x.hi, negated: x.negated } : undefined);
    return { sport: r(sport), dport: r(dport) };
  };

  let hasICMPType = false;
  switch (protocol) {
    case 'tcp':
    case 'tcp-ipv6': {
      const fl = get('flags');
      let flags: { mask: number; comp: number; negated: boolean } | undefined;
      // iptables-nft installs no flags test for an empty mask (verified in a namespace: `--tcp-flags NONE SYN,URG`
      // lists as `-p tcp` and matches every TCP packet; `--tcp-flags NONE NONE` leaves an empty `-m tcp`).
      let emptyTcp = false;
      if (fl) {
        const [mask, comp] = (fl.value as string).split('/').map(Number) as [number, number];
        argv.push(...bang(fl), '--tcp-flags', flagArg(mask), flagArg(comp));
        if (mask !== 0) flags = { mask, comp, negated: fl.negated };
        else emptyTcp = comp === 0;
      }
      const pp = ports();
      const opt = get('option');
      if (opt) argv.push(...bang(opt), '--tcp-option', `${opt.value}`);
      if (flags || pp.sport || pp.dport || opt || emptyTcp) {
        matches.push({
          kind: 'tcp',
          ...(pp.sport ? { sport: pp.sport } : {}),
          ...(pp.dport ? { dport: pp.dport } : {}),
          ...(opt ? { option: { value: opt.value as number, negated: opt.negated } } : {}),
          ...(flags ? { flags } : {}),
        });
      }
      break;
    }
    case 'udp':
    case 'udp-ipv6':
    case 'sctp':
    case 'sctp-ipv6': {
      const pp = ports();
      if (pp.sport || pp.dport) {
        matches.push({
          kind: protocol.startsWith('udp') ? 'udp' : 'sctp',
          ...(pp.sport ? { sport: pp.sport } : {}),
          ...(pp.dport ? { dport: pp.dport } : {}),
        });
      }
      break;
    }
    case 'icmp':
    case 'icmpv6': {
      const t = get('type');
      if (t) {
        hasICMPType = true;
        if (req.maySkipICMP) return undefined;
        const c = get('code');
        argv.push(...bang(t), protocol === 'icmp' ? '--icmp-type' : '--icmpv6-type');
        argv.push(c ? `${t.value}/${c.value}` : `${t.value}`);
        const code = c?.value as number | undefined;
        matches.push({
          kind: protocol === 'icmp' ? 'icmp' : 'icmp6',
          type: t.value as number,
          codeLo: code ?? 0,
          codeHi: code ?? 0xff,
          negated: t.negated,
        });
      }
      break;
    }
    default:
      break;
  }

  if ((srcMacSkipped && argv.length === baseArgs) || skipRule) return undefined;

  let target: IptTarget;
  let jtarget: string;
  if (action === 'accept') {
    const v = req.chain === 'FO' ? 'ACCEPT' : 'RETURN';
    target = { kind: 'verdict', verdict: v };
    jtarget = v;
  } else {
    // libvirt assigns (not ORs): an explicit state is kept on a non-accept rule even with connlimit-above.
    skipMatch = req.defMatch;
    switch (action) {
      case 'drop':
        target = { kind: 'verdict', verdict: 'DROP' };
        jtarget = 'DROP';
        break;
      case 'return':
        target = { kind: 'verdict', verdict: 'RETURN' };
        jtarget = 'RETURN';
        break;
      case 'reject':
        target = { kind: 'reject', with: family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable' };
        jtarget = 'REJECT';
        break;
      case 'continue':
        // iptables has no CONTINUE target: the command fails and libvirt refuses the binding (caller reports it).
        target = { kind: 'jump', chain: 'CONTINUE' };
        jtarget = 'CONTINUE';
        break;
    }
  }
  if (req.matchState && !skipMatch) {
    argv.push('-m', 'conntrack', '--ctstate', req.matchState.join(','));
    matches.push({ kind: 'conntrack', state: { states: req.matchState, negated: false } });
  }
  if (req.defMatch && req.matchState && !skipMatch && !hasICMPType) {
    argv.push('-m', 'conntrack', '--ctdir', directionIn ? 'Reply' : 'Original');
    matches.push({ kind: 'conntrack', dir: directionIn ? 'REPLY' : 'ORIGINAL' });
  }
  // iptablesHandleIPHdrAfterStateMatch
  const ipset = get('ipset');
  const ipsetflags = get('ipsetflags');
  if (ipset && ipsetflags) {
    const flags = (ipsetflags.value as string)
      .split(',')
      .map((f) => (directionIn ? (f === 'src' ? 'dst' : 'src') : f) as 'src' | 'dst');
    // libvirt never negates the set match (`match='no'` on the element is ignored for it; verified).
    argv.push('-m', 'set', '--match-set', ipset.value as string, flags.join(','));
    matches.push({ kind: 'set', name: ipset.value as string, flags, negated: false });
  } else if (ipset && protocol !== 'all' && protocol !== 'all-ipv6') {
    // The reader kept `ipset` alone (virNWFilterRuleDefFixupIPSet gave it a flags item without a datatype): libvirt
    // fails while building this rule, before anything is applied.
    return { argv, rule: { ...rule, matches, target }, buildError: IPSET_BUILD_ERROR };
  }
  if (connlimit && !directionIn) {
    argv.push('-m', 'connlimit', ...bang(connlimit), '--connlimit-above', `${connlimit.value}`);
    matches.push({
      kind: 'connlimit',
      limit: connlimit.value as number,
      upto: connlimit.negated,
      mask: family === 'ipv4' ? 32 : 128,
      daddr: false,
    });
  }
  const comment = get('comment');
  if (comment) {
    argv.push('-m', 'comment', '--comment', comment.value as string);
    matches.push({ kind: 'comment', text: comment.value as string });
  }
  argv.push('-j', jtarget);
  return { argv, rule: { ...rule, matches, target } };
}

function flagArg(bits: number): string {
  if (bits === 0x3f) return 'ALL';
  if (bits === 0) return 'NONE';
  const names: [string, number][] = [
    ['SYN', 0x02],
    ['ACK', 0x10],
    ['URG', 0x20],
    ['PSH', 0x08],
    ['FIN', 0x01],
    ['RST', 0x04],
  ];
  return names
    .filter(([, b]) => (bits & b) !== 0)
    .map(([n]) => n)
    .join(',');
}
