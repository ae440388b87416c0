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
  EbIp6IcmpMatch,
  EbIp6Match,
  EbIpMatch,
  EbIpv4Match,
  EbIpv6Match,
  EbMacMatch,
  EbMatch,
  EbProtoMatch,
  EbRangeMatch,
  EbStpMatch,
  EbStpRangeField,
  EbTarget,
  EbValueMatch,
  EbVlanMatch,
} from '../netfilter/ebtables-model.ts';
import { attributeDatatype, convertValue, maskIpv6, type NwValue, ntopIpv6 } from './nwfilter-attrs.ts';
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
const NO_MATCHES: readonly EbMatch[] = Object.freeze([]) as readonly EbMatch[];

// Helpers of `translateEbtablesRule`, at module level (performance: no closures made per rule). Each `…Arg` gives the
// argument text libvirt writes, each `…Of` the model match; both are undefined when the attribute is absent.

function bang(a: TypedAttr | undefined): string[] {
  return a?.negated ? ['!'] : [];
}

// The last MAC and IPv4 matches made, given again for equal values. Performance: a port's rules match its one MAC
// and IP address many times over (source, ARP sender, RARP target…), and the model's objects are immutable, so
// equal matches can be one object.
let lastMac: EbMacMatch = { addr: '00:00:00:00:00:00' as Mac, negated: false };
let lastIpv4: EbIpv4Match = { addr: 0 as Ipv4, mask: 0, negated: false };

function macLeaf(addr: Mac, negated: boolean): EbMacMatch {
  if (lastMac.addr !== addr || lastMac.negated !== negated || lastMac.mask !== undefined) lastMac = { addr, negated };
  return lastMac;
}

function macOf(attrs: TypedAttrs, addrAttr: string, maskAttr: string | undefined): EbMacMatch | undefined {
  const a = attrs.get(addrAttr);
  if (a === undefined) return undefined;
  const mask = maskAttr ? (attrs.get(maskAttr)?.value as Mac | undefined) : undefined;
  const addr = a.value as Mac;
  return mask === undefined ? macLeaf(addr, a.negated) : { addr: maskMac(addr, mask), mask, negated: a.negated };
}

function macArg(attrs: TypedAttrs, addrAttr: string, maskAttr: string | undefined): string {
  const addr = attrs.get(addrAttr)!.value as Mac;
  const mask = maskAttr ? (attrs.get(maskAttr)?.value as Mac | undefined) : undefined;
  return mask === undefined ? addr : `${addr}/${mask}`;
}

function ipv4Of(
  attrs: TypedAttrs,
  addrAttr: string,
  maskAttr: string,
  defaultLen: number | undefined,
): EbIpv4Match | undefined {
  const a = attrs.get(addrAttr);
  if (a === undefined) return undefined;
  const mask = ipv4Mask((attrs.get(maskAttr)?.value as number | undefined) ?? defaultLen ?? 32);
  const addr = (((a.value as Ipv4) & mask) >>> 0) as Ipv4;
  if (lastIpv4.addr !== addr || lastIpv4.mask !== mask || lastIpv4.negated !== a.negated)
    lastIpv4 = { addr, mask, negated: a.negated };
  return lastIpv4;
}

function ipv4Arg(attrs: TypedAttrs, addrAttr: string, maskAttr: string, defaultLen: number | undefined): string {
  const len = attrs.get(maskAttr)?.value as number | undefined;
  const l = len ?? defaultLen ?? 32;
  return `${formatIpv4(attrs.get(addrAttr)!.value as Ipv4)}${len !== undefined || defaultLen !== undefined ? `/${l}` : ''}`;
}

function rangeOf(attrs: TypedAttrs, lo: string, hi: string): EbRangeMatch | undefined {
  const a = attrs.get(lo);
  if (a === undefined) return undefined;
  const l = a.value as number;
  return { lo: l, hi: (attrs.get(hi)?.value as number | undefined) ?? l, negated: a.negated };
}

function rangeArg(attrs: TypedAttrs, lo: string, hi: string): string {
  const l = attrs.get(lo)!.value as number;
  const h = attrs.get(hi);
  return h === undefined ? `${l}` : `${l}:${h.value as number}`;
}

function ipv6Of(attrs: TypedAttrs, addrAttr: string, maskAttr: string): EbIpv6Match | undefined {
  const a = attrs.get(addrAttr);
  if (a === undefined) return undefined;
  const len = (attrs.get(maskAttr)?.value as number | undefined) ?? 128;
  return { addr: maskIpv6(a.value as string, len), prefixLen: len, negated: a.negated };
}

function ipv6Arg(attrs: TypedAttrs, addrAttr: string, maskAttr: string): string {
  const m = attrs.get(maskAttr);
  // libvirt prints the address with inet_ntop (IPv4-mapped in dotted form), as it does for ip6tables.
  const a = ntopIpv6(attrs.get(addrAttr)!.value as string);
  return `${a}${m === undefined ? '' : `/${(m.value as number | undefined) ?? 128}`}`;
}

/** The kernel's check of ports against the IP protocol match (ebt_ip_mt_check, ebt_ip6_mt_check): true = refused. */
function portsRefused(
  proto: EbValueMatch | undefined,
  sport: EbRangeMatch | undefined,
  dport: EbRangeMatch | undefined,
): boolean {
  return !!(sport || dport) && (!proto || proto.negated || !PORT_PROTOCOLS.has(proto.value));
}

/** A numeric attribute as a value match. */
function numMatch(attrs: TypedAttrs, name: string): EbValueMatch | undefined {
  const a = attrs.get(name);
  return a && { value: a.value as number, negated: a.negated };
}

/**
 * libvirt's arguments for the addresses, protocol and ports of the `ip` (`--ip`) and `ipv6` (`--ip6`) elements, in
 * its order; source and destination swap in reverse.
 */
function pushIpArgs(
  argv: string[],
  attrs: TypedAttrs,
  reverse: boolean,
  p: '--ip' | '--ip6',
  addrText: (addr: string, mask: string) => string,
): void {
  const [src, dst] = reverse ? ['destination', 'source'] : ['source', 'destination'];
  const opt = (name: string, option: string, text: () => string) => {
    const a = attrs.get(name);
    if (a) argv.push(option, ...bang(a), text());
  };
  opt('srcipaddr', `${p}-${src}`, () => addrText('srcipaddr', 'srcipmask'));
  opt('dstipaddr', `${p}-${dst}`, () => addrText('dstipaddr', 'dstipmask'));
  opt('protocol', `${p}-protocol`, () => `${attrs.get('protocol')!.value}`);
  opt('srcportstart', `${p}-${src}-port`, () => rangeArg(attrs, 'srcportstart', 'srcportend'));
  opt('dstportstart', `${p}-${dst}-port`, () => rangeArg(attrs, 'dstportstart', 'dstportend'));
}

// The ARP match with every field present (`undefined` where absent, which readers take as absent); the ip and ip6
// matches are made the same way. Performance: one hidden class per kind, however many fields a rule sets, and the
// fields in the object itself.
function arpMatch(
  op: EbValueMatch | undefined,
  htype: EbValueMatch | undefined,
  ptype: EbValueMatch | undefined,
  ipSrc: EbIpv4Match | undefined,
  ipDst: EbIpv4Match | undefined,
  macSrc: EbMacMatch | undefined,
  macDst: EbMacMatch | undefined,
  gratuitous: { readonly negated: boolean } | undefined,
): EbArpMatch {
  return { kind: 'arp', op, htype, ptype, ipSrc, ipDst, macSrc, macDst, gratuitous } as EbArpMatch;
}

/** A translation with only the parts it has, in the order proto, src, dst (as object literals would list them). */
class Translation implements EbTranslation {
  readonly argv: readonly string[];
  declare readonly proto?: EbProtoMatch;
  declare readonly src?: EbMacMatch;
  declare readonly dst?: EbMacMatch;
  readonly matches: readonly EbMatch[];
  readonly target: EbTarget;
  declare readonly refused?: NonNullable<EbTranslation['refused']>;
  constructor(
    argv: readonly string[],
    proto: EbProtoMatch | undefined,
    src: EbMacMatch | undefined,
    dst: EbMacMatch | undefined,
    matches: readonly EbMatch[],
    target: EbTarget,
    refused: EbTranslation['refused'] | undefined,
  ) {
    this.argv = argv;
    if (proto) this.proto = proto;
    if (src) this.src = src;
    if (dst) this.dst = dst;
    this.matches = matches;
    this.target = target;
    if (refused) this.refused = refused;
  }
}

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
  let src: EbMacMatch | undefined;
  let dst: EbMacMatch | undefined;
  // At most one match per rule (the protocol element's); `[m]` is an array of exactly that size.
  let match: EbMatch | undefined;
  let proto: EbProtoMatch | undefined;
  let refused: EbTranslation['refused'];

  // Ethernet header (`ebtablesHandleEthHdr`).
  const s = macOf(attrs, 'srcmacaddr', 'srcmacmask');
  if (s) {
    argv?.push(reverse ? '-d' : '-s', ...bang(attrs.get('srcmacaddr')), macArg(attrs, 'srcmacaddr', 'srcmacmask'));
    if (reverse) dst = s;
    else src = s;
  }
  const d = protocol === 'stp' ? undefined : macOf(attrs, 'dstmacaddr', 'dstmacmask');
  if (d) {
    argv?.push(reverse ? '-s' : '-d', ...bang(attrs.get('dstmacaddr')), macArg(attrs, 'dstmacaddr', 'dstmacmask'));
    if (reverse) src = d;
    else dst = d;
  }

  switch (protocol) {
    case 'none':
      break;
    case 'mac': {
      const p = attrs.get('protocolid');
      if (p) {
        argv?.push('-p', ...bang(p), `0x${(p.value as number).toString(16)}`);
        proto = { kind: 'ethertype', value: p.value as number, negated: p.negated };
      }
      break;
    }
    case 'vlan': {
      argv?.push('-p', '0x8100');
      proto = ETHERTYPE_MATCH.vlan;
      const id = attrs.get('vlanid');
      const encap = attrs.get('encap-protocol');
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
      if (id || encap) match = vm;
      break;
    }
    case 'stp': {
      argv?.push('-d', '01:80:c2:00:00:00');
      dst = { addr: '01:80:c2:00:00:00' as Mac, negated: false };
      const sm: { -readonly [K in keyof EbStpMatch]: EbStpMatch[K] } = { kind: 'stp', ranges: [] };
      const ranges: (EbRangeMatch & { field: EbStpRangeField })[] = [];
      const t = attrs.get('type');
      if (t) {
        argv?.push('--stp-type', ...bang(t), `${t.value}`);
        sm.type = { value: t.value as number, negated: t.negated };
      }
      const f = attrs.get('flags');
      if (f) {
        argv?.push('--stp-flags', ...bang(f), `${f.value}`);
        sm.flags = { value: f.value as number, negated: f.negated };
      }
      const rng = (lo: string, opt: string, field: EbStpRangeField) => {
        const r = rangeOf(attrs, lo, `${lo}-hi`);
        if (r) {
          argv?.push(opt, ...bang(attrs.get(lo)), rangeArg(attrs, lo, `${lo}-hi`));
          ranges.push({ ...r, field });
        }
      };
      const addr = (a: string, opt: string): EbMacMatch | undefined => {
        const m = macOf(attrs, a, `${a}-mask`);
        if (!m) return undefined;
        argv?.push(opt, ...bang(attrs.get(a)), macArg(attrs, a, `${a}-mask`));
        return m;
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
      if (sm.type || sm.flags || ranges.length > 0 || sm.rootAddr || sm.senderAddr) match = sm;
      break;
    }
    case 'arp':
    case 'rarp': {
      argv?.push('-p', protocol === 'arp' ? '0x806' : '0x8035');
      proto = protocol === 'arp' ? ETHERTYPE_MATCH.arp : ETHERTYPE_MATCH.rarp;
      const h = attrs.get('hwtype');
      if (h) argv?.push('--arp-htype', ...bang(h), `${h.value}`);
      const op = attrs.get('opcode');
      if (op) argv?.push('--arp-opcode', ...bang(op), `${op.value}`);
      const pt = attrs.get('protocoltype');
      if (pt) argv?.push('--arp-ptype', ...bang(pt), `0x${(pt.value as number).toString(16)}`);
      const sip = ipv4Of(attrs, 'arpsrcipaddr', 'arpsrcipmask', 32);
      if (sip)
        argv?.push(
          reverse ? '--arp-ip-dst' : '--arp-ip-src',
          ...bang(attrs.get('arpsrcipaddr')),
          ipv4Arg(attrs, 'arpsrcipaddr', 'arpsrcipmask', 32),
        );
      // libvirt 9.0 keeps one mask buffer for both addresses (`hasMask`/`ipmask` in ebtablesCreateRuleInstance): a
      // destination without its own mask after a source with one gets the source's mask (verified with the driver).
      const dmask = attrs.has('arpdstipmask') || !(sip && attrs.has('arpsrcipmask')) ? 'arpdstipmask' : 'arpsrcipmask';
      const dip = ipv4Of(attrs, 'arpdstipaddr', dmask, 32);
      if (dip)
        argv?.push(
          reverse ? '--arp-ip-src' : '--arp-ip-dst',
          ...bang(attrs.get('arpdstipaddr')),
          ipv4Arg(attrs, 'arpdstipaddr', dmask, 32),
        );
      const smac = attrs.get('arpsrcmacaddr');
      if (smac) argv?.push(reverse ? '--arp-mac-dst' : '--arp-mac-src', ...bang(smac), smac.value as string);
      const dmac = attrs.get('arpdstmacaddr');
      if (dmac) argv?.push(reverse ? '--arp-mac-src' : '--arp-mac-dst', ...bang(dmac), dmac.value as string);
      const g = attrs.get('gratuitous');
      const gratuitous = g && g.value === true ? { negated: g.negated } : undefined;
      if (gratuitous) argv?.push('--arp-gratuitous', ...bang(g));
      if (h || op || pt || sip || dip || smac || dmac || gratuitous) {
        const sm = smac && macLeaf(smac.value as Mac, smac.negated);
        const dm = dmac && macLeaf(dmac.value as Mac, dmac.negated);
        match = arpMatch(
          numMatch(attrs, 'opcode'),
          numMatch(attrs, 'hwtype'),
          numMatch(attrs, 'protocoltype'),
          reverse ? dip : sip,
          reverse ? sip : dip,
          reverse ? dm : sm,
          reverse ? sm : dm,
          gratuitous,
        );
      }
      break;
    }
    case 'ip': {
      argv?.push('-p', 'ipv4');
      proto = ETHERTYPE_MATCH.ip;
      if (argv) pushIpArgs(argv, attrs, reverse, '--ip', (a, m) => ipv4Arg(attrs, a, m, undefined));
      const sip = ipv4Of(attrs, 'srcipaddr', 'srcipmask', undefined);
      const dip = ipv4Of(attrs, 'dstipaddr', 'dstipmask', undefined);
      const p = numMatch(attrs, 'protocol');
      const sp = rangeOf(attrs, 'srcportstart', 'srcportend');
      const dp = rangeOf(attrs, 'dstportstart', 'dstportend');
      const dscp = numMatch(attrs, 'dscp');
      if (dscp) argv?.push('--ip-tos', ...bang(attrs.get('dscp')), `0x${dscp.value.toString(16)}`);
      if (sip || dip || p || sp || dp || dscp)
        match = {
          kind: 'ip',
          src: reverse ? dip : sip,
          dst: reverse ? sip : dip,
          tos: dscp,
          proto: p,
          sport: reverse ? dp : sp,
          dport: reverse ? sp : dp,
        } as EbIpMatch;
      if (portsRefused(p, sp, dp)) refused = { kind: 'kernel' };
      break;
    }
    case 'ipv6': {
      argv?.push('-p', 'ipv6');
      proto = ETHERTYPE_MATCH.ipv6;
      if (argv) pushIpArgs(argv, attrs, reverse, '--ip6', (a, m) => ipv6Arg(attrs, a, m));
      const sip = ipv6Of(attrs, 'srcipaddr', 'srcipmask');
      const dip = ipv6Of(attrs, 'dstipaddr', 'dstipmask');
      const p = numMatch(attrs, 'protocol');
      const sp = rangeOf(attrs, 'srcportstart', 'srcportend');
      const dp = rangeOf(attrs, 'dstportstart', 'dstportend');
      const t = attrs.get('type')?.value as number | undefined;
      const te = attrs.get('typeend')?.value as number | undefined;
      const c = attrs.get('code')?.value as number | undefined;
      const ce = attrs.get('codeend')?.value as number | undefined;
      let icmpType: EbIp6IcmpMatch | undefined;
      if (t !== undefined || te !== undefined || c !== undefined || ce !== undefined) {
        const typeLo = t ?? 0;
        const typeHi = te ?? t ?? 255;
        const codeLo = c ?? 0;
        const codeHi = ce ?? c ?? 255;
        const negated = attrs.get('type')?.negated ?? false;
        argv?.push('--ip6-icmp-type', ...(negated ? ['!'] : []), `${typeLo}:${typeHi}/${codeLo}:${codeHi}`);
        icmpType = { typeLo, typeHi, codeLo, codeHi, negated };
        if (!p || p.negated || p.value !== 58 || typeLo > typeHi || codeLo > codeHi) refused = { kind: 'kernel' };
      }
      if (sip || dip || p || sp || dp || icmpType)
        match = {
          kind: 'ip6',
          src: reverse ? dip : sip,
          dst: reverse ? sip : dip,
          proto: p,
          sport: reverse ? dp : sp,
          dport: reverse ? sp : dp,
          icmpType,
        } as EbIp6Match;
      if (portsRefused(p, sp, dp)) refused = { kind: 'kernel' };
      break;
    }
  }
  const target = TARGETS[action];
  argv?.push('-j', target.kind === 'verdict' ? target.verdict : target.chain);
  return new Translation(argv ?? NO_ARGV, proto, src, dst, match ? [match] : NO_MATCHES, target, refused);
}
