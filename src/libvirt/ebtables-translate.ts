/**
 * One nwfilter rule instance (protocol, resolved attribute values, target) → the ebtables arguments libvirt emits
 * (`ebtablesCreateRuleInstance`) and the same rule in the netfilter model (as `ebtables` stores it: addresses
 * masked). `reverse` swaps source and destination (the `I` copy of an `inout` rule).
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { ipv4Mask } from '../addr/prefix.ts';
import type {
  EbArpMatch,
  EbIp6Match,
  EbIpMatch,
  EbMacMatch,
  EbMatch,
  EbProtoMatch,
  EbRangeMatch,
  EbStpMatch,
  EbStpRangeField,
  EbTarget,
  EbVlanMatch,
} from '../netfilter/ebtables-model.ts';
import { attributeDatatype, convertValue, maskIpv6, type NwValue } from './nwfilter-attrs.ts';
import type { EthernetProtocol, NwProtocol, NwRuleAction } from './nwfilter-model.ts';

export interface TypedAttr {
  readonly value: NwValue;
  readonly negated: boolean;
}

export interface EbTranslation {
  /** Arguments after `-A CHAIN` (libvirt spelling). */
  readonly argv: readonly string[];
  readonly proto?: EbProtoMatch;
  readonly src?: EbMacMatch;
  readonly dst?: EbMacMatch;
  readonly matches: readonly EbMatch[];
  readonly target: EbTarget;
  /**
   * Set when ebtables-nft 1.8.9 refuses the rule (libvirt then refuses the binding): `parse` with the tool's message,
   * or `kernel` when the kernel's match check fails (`RULE_APPEND failed (Invalid argument)`).
   */
  readonly refused?: { readonly kind: 'parse'; readonly message: string } | { readonly kind: 'kernel' };
}

/** IP protocols the kernel's ebtables ip/ip6 matches accept port ranges with (ebt_ip_mt_check, ebt_ip6_mt_check). */
const PORT_PROTOCOLS: ReadonlySet<number> = new Set([6, 17, 136, 132, 33]);

/**
 * The VLAN-encapsulated ethertype the kernel gets: libvirt passes the number in decimal, ebtables reads it as hex and
 * keeps 16 bits (so `encap-protocol='ipv6'`, 34525, becomes 0x4525; verified with libvirt 9.0 and ebtables-nft 1.8.9).
 */
export function vlanEncapAsInstalled(value: number): number {
  return Number.parseInt(String(value), 16) & 0xffff;
}

export type TypedAttrs = ReadonlyMap<string, TypedAttr>;

/** Converts resolved attribute texts to typed values; errors name the attribute. */
export function typeAttrs(
  protocol: NwProtocol,
  values: ReadonlyMap<string, string>,
  negation: ReadonlyMap<string, boolean>,
): { attrs: Map<string, TypedAttr>; errors: string[] } {
  const attrs = new Map<string, TypedAttr>();
  const errors: string[] = [];
  for (const [name, text] of values) {
    const dt = attributeDatatype(protocol, name);
    if (dt === undefined) continue;
    const c = convertValue(dt, text);
    if ('error' in c) errors.push(`${name} has illegal value ${text}`);
    else attrs.set(name, { value: c.value, negated: negation.get(name) ?? false });
  }
  return { attrs, errors };
}

function maskMac(addr: Mac, mask: Mac | undefined): Mac {
  if (mask === undefined) return addr;
  const a = addr.split(':');
  const m = mask.split(':');
  return a
    .map((x, i) => (Number.parseInt(x, 16) & Number.parseInt(m[i]!, 16)).toString(16).padStart(2, '0'))
    .join(':') as Mac;
}

const TARGETS: Readonly<Record<NwRuleAction, EbTarget>> = {
  accept: { kind: 'verdict', verdict: 'ACCEPT' },
  drop: { kind: 'verdict', verdict: 'DROP' },
  reject: { kind: 'verdict', verdict: 'DROP' },
  return: { kind: 'verdict', verdict: 'RETURN' },
  continue: { kind: 'verdict', verdict: 'CONTINUE' },
};

/** The fixed `-p` matches of the protocol elements, shared by every rule (the model is immutable). */
const ETHERTYPE_MATCH = {
  vlan: { kind: 'ethertype', value: 0x8100, negated: false },
  arp: { kind: 'ethertype', value: 0x0806, negated: false },
  rarp: { kind: 'ethertype', value: 0x8035, negated: false },
  ip: { kind: 'ethertype', value: 0x0800, negated: false },
  ipv6: { kind: 'ethertype', value: 0x86dd, negated: false },
} as const satisfies Record<string, EbProtoMatch>;

const NO_ARGV: readonly string[] = Object.freeze([]) as readonly string[];

/** With `withArgv` false only the model part is made (`argv` is empty); performance, for bulk compiles. */
export function translateEbtablesRule(
  protocol: EthernetProtocol | 'none',
  attrs: TypedAttrs,
  action: NwRuleAction,
  reverse: boolean,
  withArgv = true,
): EbTranslation {
  // Without the argument list, `argv?.push(…)` does not even evaluate its arguments.
  const argv: string[] | undefined = withArgv ? [] : undefined;
  const get = (n: string) => attrs.get(n);
  const num = (n: string) => get(n)?.value as number | undefined;
  const bang = (a: TypedAttr | undefined) => (a?.negated ? ['!'] : []);
  let src: EbMacMatch | undefined;
  let dst: EbMacMatch | undefined;
  const matches: EbMatch[] = [];
  let proto: EbProtoMatch | undefined;
  let refused: EbTranslation['refused'];
  /** The kernel's check of ports (and ICMPv6 types) against the IP protocol match. */
  const kernelChecks = (m: { proto?: { value: number; negated: boolean }; sport?: unknown; dport?: unknown }) => {
    if ((m.sport || m.dport) && (!m.proto || m.proto.negated || !PORT_PROTOCOLS.has(m.proto.value)))
      refused = { kind: 'kernel' };
  };

  const macOf = (addrAttr: string, maskAttr: string | undefined): { argText: string; m: EbMacMatch } | undefined => {
    const a = get(addrAttr);
    if (a === undefined) return undefined;
    const mask = maskAttr ? (get(maskAttr)?.value as Mac | undefined) : undefined;
    const addr = a.value as Mac;
    const m: EbMacMatch =
      mask === undefined ? { addr, negated: a.negated } : { addr: maskMac(addr, mask), mask, negated: a.negated };
    return { argText: mask === undefined ? addr : `${addr}/${mask}`, m };
  };

  // Ethernet header (`ebtablesHandleEthHdr`).
  const s = macOf('srcmacaddr', 'srcmacmask');
  if (s) {
    argv?.push(reverse ? '-d' : '-s', ...bang(get('srcmacaddr')), s.argText);
    if (reverse) dst = s.m;
    else src = s.m;
  }
  const d = protocol === 'stp' ? undefined : macOf('dstmacaddr', 'dstmacmask');
  if (d) {
    argv?.push(reverse ? '-s' : '-d', ...bang(get('dstmacaddr')), d.argText);
    if (reverse) src = d.m;
    else dst = d.m;
  }

  const ipv4Of = (addrAttr: string, maskAttr: string, defaultLen: number | undefined) => {
    const a = get(addrAttr);
    if (a === undefined) return undefined;
    const len = get(maskAttr)?.value as number | undefined;
    const l = len ?? defaultLen ?? 32;
    const mask = ipv4Mask(l);
    const addr = a.value as Ipv4;
    const text = `${formatIpv4(addr)}${len !== undefined || defaultLen !== undefined ? `/${l}` : ''}`;
    return { text, m: { addr: ((addr & mask) >>> 0) as Ipv4, mask, negated: a.negated } };
  };
  const range = (lo: string, hi: string): { text: string; m: EbRangeMatch } | undefined => {
    const a = get(lo);
    if (a === undefined) return undefined;
    const l = a.value as number;
    const h = (get(hi)?.value as number | undefined) ?? l;
    return { text: get(hi) === undefined ? `${l}` : `${l}:${h}`, m: { lo: l, hi: h, negated: a.negated } };
  };

  switch (protocol) {
    case 'none':
      break;
    case 'mac': {
      const p = get('protocolid');
      if (p) {
        argv?.push('-p', ...bang(p), `0x${(p.value as number).toString(16)}`);
        proto = { kind: 'ethertype', value: p.value as number, negated: p.negated };
      }
      break;
    }
    case 'vlan': {
      argv?.push('-p', '0x8100');
      proto = ETHERTYPE_MATCH.vlan;
      const id = get('vlanid');
      const encap = get('encap-protocol');
      const vm: { -readonly [K in keyof EbVlanMatch]: EbVlanMatch[K] } = { kind: 'vlan' };
      if (id) {
        argv?.push('--vlan-id', ...bang(id), `${id.value}`);
        vm.id = { value: id.value as number, negated: id.negated };
      }
      if (encap) {
        argv?.push('--vlan-encap', ...bang(encap), `${encap.value}`);
        const k = vlanEncapAsInstalled(encap.value as number);
        // ebtables refuses what it reads as less than ETH_ZLEN (60).
        if (k < 0x3c)
          refused = {
            kind: 'parse',
            message: `ebtables v1.8.9 (nf_tables): Invalid --vlan-encap range ('${encap.value}')\nTry \`ebtables -h' or 'ebtables --help' for more information.`,
          };
        vm.encap = { value: k, negated: encap.negated };
      }
      if (id || encap) matches.push(vm);
      break;
    }
    case 'stp': {
      argv?.push('-d', '01:80:c2:00:00:00');
      dst = { addr: '01:80:c2:00:00:00' as Mac, negated: false };
      const sm: { -readonly [K in keyof EbStpMatch]: EbStpMatch[K] } = { kind: 'stp', ranges: [] };
      const ranges: (EbRangeMatch & { field: EbStpRangeField })[] = [];
      const t = get('type');
      if (t) {
        argv?.push('--stp-type', ...bang(t), `${t.value}`);
        sm.type = { value: t.value as number, negated: t.negated };
      }
      const f = get('flags');
      if (f) {
        argv?.push('--stp-flags', ...bang(f), `${f.value}`);
        sm.flags = { value: f.value as number, negated: f.negated };
      }
      const rng = (lo: string, opt: string, field: EbStpRangeField) => {
        const r = range(lo, `${lo}-hi`);
        if (r) {
          argv?.push(opt, ...bang(get(lo)), r.text);
          ranges.push({ ...r.m, field });
        }
      };
      const addr = (a: string, opt: string): EbMacMatch | undefined => {
        const m = macOf(a, `${a}-mask`);
        if (!m) return undefined;
        argv?.push(opt, ...bang(get(a)), m.argText);
        return m.m;
      };
      rng('root-priority', '--stp-root-pri', 'root-prio');
      const ra = addr('root-address', '--stp-root-addr');
      if (ra) sm.rootAddr = ra;
      rng('root-cost', '--stp-root-cost', 'root-cost');
      rng('sender-priority', '--stp-sender-prio', 'sender-prio');
      const sa = addr('sender-address', '--stp-sender-addr');
      if (sa) sm.senderAddr = sa;
      rng('port', '--stp-port', 'port');
      rng('age', '--stp-msg-age', 'msg-age');
      rng('max-age', '--stp-max-age', 'max-age');
      rng('hello-time', '--stp-hello-time', 'hello-time');
      rng('forward-delay', '--stp-forward-delay', 'forward-delay');
      sm.ranges = ranges;
      if (sm.type || sm.flags || ranges.length > 0 || sm.rootAddr || sm.senderAddr) matches.push(sm);
      break;
    }
    case 'arp':
    case 'rarp': {
      argv?.push('-p', protocol === 'arp' ? '0x806' : '0x8035');
      proto = protocol === 'arp' ? ETHERTYPE_MATCH.arp : ETHERTYPE_MATCH.rarp;
      const am: { -readonly [K in keyof EbArpMatch]: EbArpMatch[K] } = { kind: 'arp' };
      const h = get('hwtype');
      if (h) {
        argv?.push('--arp-htype', ...bang(h), `${h.value}`);
        am.htype = { value: h.value as number, negated: h.negated };
      }
      const op = get('opcode');
      if (op) {
        argv?.push('--arp-opcode', ...bang(op), `${op.value}`);
        am.op = { value: op.value as number, negated: op.negated };
      }
      const pt = get('protocoltype');
      if (pt) {
        argv?.push('--arp-ptype', ...bang(pt), `0x${(pt.value as number).toString(16)}`);
        am.ptype = { value: pt.value as number, negated: pt.negated };
      }
      const sip = ipv4Of('arpsrcipaddr', 'arpsrcipmask', 32);
      if (sip) {
        argv?.push(reverse ? '--arp-ip-dst' : '--arp-ip-src', ...bang(get('arpsrcipaddr')), sip.text);
        if (reverse) am.ipDst = sip.m;
        else am.ipSrc = sip.m;
      }
      const dip = ipv4Of('arpdstipaddr', 'arpdstipmask', 32);
      if (dip) {
        argv?.push(reverse ? '--arp-ip-src' : '--arp-ip-dst', ...bang(get('arpdstipaddr')), dip.text);
        if (reverse) am.ipSrc = dip.m;
        else am.ipDst = dip.m;
      }
      const smac = get('arpsrcmacaddr');
      if (smac) {
        argv?.push(reverse ? '--arp-mac-dst' : '--arp-mac-src', ...bang(smac), smac.value as string);
        const m = { addr: smac.value as Mac, negated: smac.negated };
        if (reverse) am.macDst = m;
        else am.macSrc = m;
      }
      const dmac = get('arpdstmacaddr');
      if (dmac) {
        argv?.push(reverse ? '--arp-mac-src' : '--arp-mac-dst', ...bang(dmac), dmac.value as string);
        const m = { addr: dmac.value as Mac, negated: dmac.negated };
        if (reverse) am.macSrc = m;
        else am.macDst = m;
      }
      const g = get('gratuitous');
      if (g && g.value === true) {
        argv?.push('--arp-gratuitous', ...bang(g));
        am.gratuitous = { negated: g.negated };
      }
      if (Object.keys(am).length > 1) matches.push(am);
      break;
    }
    case 'ip': {
      argv?.push('-p', 'ipv4');
      proto = ETHERTYPE_MATCH.ip;
      const im: { -readonly [K in keyof EbIpMatch]: EbIpMatch[K] } = { kind: 'ip' };
      const sip = ipv4Of('srcipaddr', 'srcipmask', undefined);
      if (sip) {
        argv?.push(reverse ? '--ip-destination' : '--ip-source', ...bang(get('srcipaddr')), sip.text);
        if (reverse) im.dst = sip.m;
        else im.src = sip.m;
      }
      const dip = ipv4Of('dstipaddr', 'dstipmask', undefined);
      if (dip) {
        argv?.push(reverse ? '--ip-source' : '--ip-destination', ...bang(get('dstipaddr')), dip.text);
        if (reverse) im.src = dip.m;
        else im.dst = dip.m;
      }
      const p = get('protocol');
      if (p) {
        argv?.push('--ip-protocol', ...bang(p), `${p.value}`);
        im.proto = { value: p.value as number, negated: p.negated };
      }
      const sp = range('srcportstart', 'srcportend');
      if (sp) {
        argv?.push(reverse ? '--ip-destination-port' : '--ip-source-port', ...bang(get('srcportstart')), sp.text);
        if (reverse) im.dport = sp.m;
        else im.sport = sp.m;
      }
      const dp = range('dstportstart', 'dstportend');
      if (dp) {
        argv?.push(reverse ? '--ip-source-port' : '--ip-destination-port', ...bang(get('dstportstart')), dp.text);
        if (reverse) im.sport = dp.m;
        else im.dport = dp.m;
      }
      const dscp = get('dscp');
      if (dscp) {
        argv?.push('--ip-tos', ...bang(dscp), `0x${(dscp.value as number).toString(16)}`);
        im.tos = { value: dscp.value as number, negated: dscp.negated };
      }
      if (Object.keys(im).length > 1) matches.push(im);
      kernelChecks(im);
      break;
    }
    case 'ipv6': {
      argv?.push('-p', 'ipv6');
      proto = ETHERTYPE_MATCH.ipv6;
      const im: { -readonly [K in keyof EbIp6Match]: EbIp6Match[K] } = { kind: 'ip6' };
      const v6 = (addrAttr: string, maskAttr: string) => {
        const a = get(addrAttr);
        if (a === undefined) return undefined;
        const len = (get(maskAttr)?.value as number | undefined) ?? 128;
        const text = `${a.value as string}${get(maskAttr) === undefined ? '' : `/${len}`}`;
        return { text, m: { addr: maskIpv6(a.value as string, len), prefixLen: len, negated: a.negated } };
      };
      const sip = v6('srcipaddr', 'srcipmask');
      if (sip) {
        argv?.push(reverse ? '--ip6-destination' : '--ip6-source', ...bang(get('srcipaddr')), sip.text);
        if (reverse) im.dst = sip.m;
        else im.src = sip.m;
      }
      const dip = v6('dstipaddr', 'dstipmask');
      if (dip) {
        argv?.push(reverse ? '--ip6-source' : '--ip6-destination', ...bang(get('dstipaddr')), dip.text);
        if (reverse) im.src = dip.m;
        else im.dst = dip.m;
      }
      const p = get('protocol');
      if (p) {
        argv?.push('--ip6-protocol', ...bang(p), `${p.value}`);
        im.proto = { value: p.value as number, negated: p.negated };
      }
      const sp = range('srcportstart', 'srcportend');
      if (sp) {
        argv?.push(reverse ? '--ip6-destination-port' : '--ip6-source-port', ...bang(get('srcportstart')), sp.text);
        if (reverse) im.dport = sp.m;
        else im.sport = sp.m;
      }
      const dp = range('dstportstart', 'dstportend');
      if (dp) {
        argv?.push(reverse ? '--ip6-source-port' : '--ip6-destination-port', ...bang(get('dstportstart')), dp.text);
        if (reverse) im.sport = dp.m;
        else im.dport = dp.m;
      }
      const t = num('type');
      const te = num('typeend');
      const c = num('code');
      const ce = num('codeend');
      if (t !== undefined || te !== undefined || c !== undefined || ce !== undefined) {
        const typeLo = t ?? 0;
        const typeHi = te ?? t ?? 255;
        const codeLo = c ?? 0;
        const codeHi = ce ?? c ?? 255;
        const negated = get('type')?.negated ?? false;
        argv?.push('--ip6-icmp-type', ...(negated ? ['!'] : []), `${typeLo}:${typeHi}/${codeLo}:${codeHi}`);
        im.icmpType = { typeLo, typeHi, codeLo, codeHi, negated };
        if (!im.proto || im.proto.negated || im.proto.value !== 58 || typeLo > typeHi || codeLo > codeHi)
          refused = { kind: 'kernel' };
      }
      if (Object.keys(im).length > 1) matches.push(im);
      kernelChecks(im);
      break;
    }
  }
  const target = TARGETS[action];
  argv?.push('-j', target.kind === 'verdict' ? target.verdict : target.chain);
  return {
    argv: argv ?? NO_ARGV,
    ...(proto ? { proto } : {}),
    ...(src ? { src } : {}),
    ...(dst ? { dst } : {}),
    matches,
    target,
    ...(refused ? { refused } : {}),
  };
}
