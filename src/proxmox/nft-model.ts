/**
 * proxmox-firewall's two tables (the nftables backend, host.fw `nftables: 1`) as lvsdoctor's netfilter model, for
 * IPv4: the static skeleton (upstream `resources/proxmox-firewall.nft`, 1.2.3: its chains written here as the rules
 * it holds) plus what `compile-nft.ts` generates for the node, read into iptables-model tables the existing
 * evaluator walks —
 *
 * - `inet proxmox-firewall` → an IPv4 filter table whose INPUT, FORWARD and OUTPUT are the skeleton's base chains
 *   `input`, `forward`, `output` (priority filter, policy accept); `host-bridge-input/output` (priority filter ∓ 1)
 *   only dispatch SDN VNet bridges through `bridge-map`, empty without SDN, so they are left out;
 * - `bridge proxmox-firewall-guests` → a table whose PREROUTING is `vm-out` (bridge prerouting, priority 0: frames
 *   from a guest, by `iifname` through `vm-map-out`) and POSTROUTING is `vm-in` (bridge postrouting: frames to a
 *   guest, by `oifname` through `vm-map-in`); its `forward` base chain only dispatches `bridge-map` (SDN), left out.
 *
 * The guest table is read twice: as IPv4 meets it and as ARP meets it (the ipfilter's `arp saddr ip` and the
 * macfilter's ARP rule). Named sets become ipsets (interval semantics: membership), address lists anonymous ones.
 * What a probe cannot meet is left out exactly: rules of another family (IPv6/ICMPv6 always; ARP rules for IPv4,
 * IPv4 rules for ARP), rules that only log, count, set a
 * conntrack mark or helper, match a conntrack helper, or meter an over-rate flood. Anything else the translation does
 * not know is an issue naming the command. Every rule keeps its origin: the generated command's, or the skeleton's.
 * Never throws.
 */
import { parseMac } from '../addr/mac.ts';
import { type IpsetSet, ipsetFromEntries } from '../netfilter/ipset.ts';
import type { CtState, IptChain, IptMatch, IptRule, IptTable, IptTarget } from '../netfilter/iptables-model.ts';
import { ICMP_TYPES_BY_NAME, protocolByName } from '../netfilter/names.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit, type Origin } from '../source/origin.ts';
import { PVE_NFT_GUEST_TABLE, PVE_NFT_HOST_TABLE, type PveNftCompiled, type PveNftTable } from './compile-nft.ts';

/** One chain of the skeleton: its rules as nft writes them. */
type SkeletonChains = Readonly<Record<string, readonly string[]>>;

const DO_REJECT = [
  'meta pkttype broadcast drop',
  'ip saddr 224.0.0.0/4 drop',
  'meta l4proto tcp reject with tcp reset',
  'meta l4proto { icmp, ipv6-icmp } reject with icmpx type port-unreachable',
  'reject with icmp type host-prohibited',
  'reject with icmpv6 type admin-prohibited',
  'drop',
];
const ALLOW_ICMP = [
  'icmp type { destination-unreachable, source-quench, time-exceeded } accept',
  'icmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept',
];
const CT_VMAP = 'ct state vmap { established : accept, related : accept, invalid : jump invalid-conntrack }';
const CT_VMAP_DEFAULT = 'ct state vmap { invalid : jump invalid-conntrack, established : accept, related : accept }';
const NDP_IN =
  'icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-router-advert, nd-neighbor-advert, nd-redirect }';
const NDP_OUT = 'icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert }';
const NDP: SkeletonChains = {
  'allow-ndp-in': [`${NDP_IN} accept`],
  'block-ndp-in': [`${NDP_IN} drop`],
  'allow-ndp-out': [`${NDP_OUT} accept`],
  'block-ndp-out': [`${NDP_OUT} drop`],
};

/** The skeleton's `inet proxmox-firewall` chains that hold rules (the others start empty). */
const HOST_SKELETON: SkeletonChains = {
  'do-reject': DO_REJECT,
  'accept-management': [
    'ip saddr @v4-dc/management ip saddr != @v4-dc/management-nomatch accept',
    'ip6 saddr @v6-dc/management ip6 saddr != @v6-dc/management-nomatch accept',
  ],
  'block-synflood': ['tcp flags & (fin|syn|rst|ack) != syn return', 'jump ratelimit-synflood', 'drop'],
  'log-drop-invalid-tcp': ['jump log-invalid-tcp', 'drop'],
  'block-invalid-tcp': [
    'tcp flags & (fin|syn|rst|psh|ack|urg) == fin|psh|urg goto log-drop-invalid-tcp',
    'tcp flags & (fin|syn|rst|psh|ack|urg) == 0x0 goto log-drop-invalid-tcp',
    'tcp flags & (syn|rst) == syn|rst goto log-drop-invalid-tcp',
    'tcp flags & (fin|syn) == fin|syn goto log-drop-invalid-tcp',
    'tcp sport 0 tcp flags & (fin|syn|rst|ack) == syn goto log-drop-invalid-tcp',
  ],
  'block-smurfs': [
    'ip saddr 0.0.0.0/32 return',
    'meta pkttype broadcast goto log-drop-smurfs',
    'ip saddr 224.0.0.0/4 goto log-drop-smurfs',
  ],
  'log-drop-smurfs': ['jump log-smurfs', 'drop'],
  'allow-icmp': ALLOW_ICMP,
  'default-in': [
    'iifname "lo" accept',
    'jump allow-icmp',
    CT_VMAP_DEFAULT,
    'meta l4proto igmp accept',
    'tcp dport { 8006, 5900-5999, 3128, 22 } jump accept-management',
    'udp dport 5405-5412 accept',
    'udp dport { 135, 137-139, 445 } goto do-reject',
    'udp sport 137 udp dport 1024-65535 goto do-reject',
    'tcp dport { 135, 139, 445 } goto do-reject',
    'udp dport 1900 drop',
    'udp sport 53 drop',
  ],
  'default-out': ['oifname "lo" accept', 'jump allow-icmp', CT_VMAP_DEFAULT],
  ...NDP,
  input: ['jump default-in', 'jump ct-in', 'jump option-in', 'jump host-in', 'jump cluster-in'],
  output: ['jump default-out', 'jump option-out', 'jump host-out', 'jump cluster-out'],
  forward: [CT_VMAP, 'jump host-forward', 'jump cluster-forward'],
};
const HOST_EMPTY = [
  'ratelimit-synflood',
  'log-invalid-tcp',
  'log-smurfs',
  'option-in',
  'option-out',
  'cluster-in',
  'cluster-out',
  'host-in',
  'host-out',
  'cluster-forward',
  'host-forward',
  'ct-in',
  'invalid-conntrack',
];

const PRE_VM =
  'meta protocol != arp ct state vmap { established : accept, related : accept, invalid : jump invalid-conntrack }';
/** The skeleton's `bridge proxmox-firewall-guests` chains that hold rules. */
const GUEST_SKELETON: SkeletonChains = {
  'allow-dhcp-in': ['udp sport . udp dport { 67 . 68, 547 . 546 } accept'],
  'block-dhcp-in': ['udp sport . udp dport { 67 . 68, 547 . 546 } drop'],
  'allow-dhcp-out': ['udp sport . udp dport { 68 . 67, 546 . 547 } accept'],
  'block-dhcp-out': ['udp sport . udp dport { 68 . 67, 546 . 547 } drop'],
  'allow-icmp': ALLOW_ICMP,
  'do-reject': DO_REJECT,
  'pre-vm-out': [PRE_VM],
  'vm-out': ['jump allow-icmp', 'iifname vmap @vm-map-out'],
  'pre-vm-in': [PRE_VM, 'meta protocol arp accept'],
  'vm-in': ['jump allow-icmp', 'oifname vmap @vm-map-in'],
  ...NDP,
  'allow-ra-out': ['icmpv6 type { nd-router-advert, nd-redirect } accept'],
  'block-ra-out': ['icmpv6 type { nd-router-advert, nd-redirect } drop'],
};
const GUEST_EMPTY = ['invalid-conntrack'];

/** The skeleton's chains of a table that hold rules, as transcribed here (held to upstream's file by a test). */
export function pveNftSkeletonChains(table: PveNftTable): SkeletonChains {
  return table === PVE_NFT_HOST_TABLE ? HOST_SKELETON : GUEST_SKELETON;
}

/** The base chains evaluated, per table: hook name in the model → skeleton chain. */
const BASE: Readonly<Record<PveNftTable, readonly (readonly [string, string])[]>> = {
  [PVE_NFT_HOST_TABLE]: [
    ['INPUT', 'input'],
    ['FORWARD', 'forward'],
    ['OUTPUT', 'output'],
  ],
  [PVE_NFT_GUEST_TABLE]: [
    ['PREROUTING', 'vm-out'],
    ['POSTROUTING', 'vm-in'],
  ],
};

export interface PveNftModel {
  /**
   * `inet proxmox-firewall` as an `nft -f` script for a kernel (the skeleton's inet table as transcribed, then the
   * generated commands), undefined when the host table is not generated.
   */
  readonly hostScript?: string;
  /** `inet proxmox-firewall` (INPUT/FORWARD/OUTPUT), undefined when the host table is not generated. */
  readonly host?: IptTable;
  /** `bridge proxmox-firewall-guests` (PREROUTING = vm-out, POSTROUTING = vm-in), undefined without guest table. */
  readonly guests?: IptTable;
  /**
   * The same table as an ARP frame meets it: `arp saddr ip` / `arp daddr ip` are its source / destination, `arp
   * saddr ether` its Ethernet source; the rules that need IPv4 (or conntrack) never match.
   */
  readonly guestsArp?: IptTable;
  /** The IPv4 sets both tables' rules name (`inet proxmox-firewall/v4-dc/x`, …), and anonymous address lists. */
  readonly ipsets: ReadonlyMap<string, IpsetSet>;
  readonly issues: readonly Issue[];
}

/** Why a command is left out: it cannot change an IPv4 probe's verdict. */
class Never extends Error {}
class Unknown extends Error {}

function words(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ') {
      i++;
      continue;
    }
    let j = i;
    if (c === '"') j = text.indexOf('"', i + 1) + 1 || text.length;
    else if (c === '{') {
      let depth = 0;
      for (; j < text.length; j++) {
        if (text[j] === '{') depth++;
        else if (text[j] === '}' && --depth === 0) break;
      }
      j++;
    } else while (j < text.length && text[j] !== ' ') j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function items(w: string): string[] {
  return w
    .replace(/^\{\s*|\s*\}$/g, '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

const unquote = (w: string) => w.replace(/^"|"$/g, '');

function ipv4ToInt(a: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (!m) return undefined;
  return ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
}
const intToIpv4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** An address element (`a`, `a/n`, `a-b`) as CIDRs; undefined when it is not IPv4. */
function v4Cidrs(el: string): string[] | undefined {
  const r = /^([\d.]+)-([\d.]+)$/.exec(el);
  if (r) {
    let lo = ipv4ToInt(r[1]!);
    const hi = ipv4ToInt(r[2]!);
    if (lo === undefined || hi === undefined || hi < lo) return undefined;
    const out: string[] = [];
    while (lo <= hi) {
      let len = 32;
      while (len > 0) {
        const size = 2 ** (32 - (len - 1));
        if (lo % size !== 0 || lo + size - 1 > hi) break;
        len--;
      }
      out.push(`${intToIpv4(lo)}/${len}`);
      lo += 2 ** (32 - len);
    }
    return out;
  }
  const [a, l] = el.split('/');
  const v = ipv4ToInt(a!);
  if (v === undefined) return undefined;
  return [`${a}/${l ?? 32}`];
}

const CT: Readonly<Record<string, CtState>> = {
  new: 'NEW',
  established: 'ESTABLISHED',
  related: 'RELATED',
  invalid: 'INVALID',
  untracked: 'UNTRACKED',
};
const TCP_FLAG: Readonly<Record<string, number>> = { fin: 1, syn: 2, rst: 4, psh: 8, ack: 16, urg: 32 };
const flagBits = (t: string): number =>
  t === '0x0' ? 0 : t.split('|').reduce((a, f) => a | (TCP_FLAG[f] ?? Number.NaN), 0);

type Mut = {
  src?: IptRule['src'];
  dst?: IptRule['dst'];
  in?: IptRule['in'];
  out?: IptRule['out'];
  proto?: IptRule['proto'];
  matches: IptMatch[];
  target?: IptTarget;
};

class Translator {
  readonly ipsets = new Map<string, IpsetSet>();
  readonly issues: Issue[] = [];
  /** Map name → its elements (`tap100i0` → `goto guest-100-in`), from the generated `add element` commands. */
  readonly maps = new Map<string, [string, string][]>();
  private anon = 0;
  /** `arp`: the view an ARP frame has (its sender/target IPv4 as source/destination, nothing else of IPv4). */
  constructor(
    readonly table: PveNftTable,
    readonly mode: 'ipv4' | 'arp' = 'ipv4',
  ) {}

  setName(name: string): string {
    return `${this.table}/${name}`;
  }

  anonSet(els: readonly string[]): string {
    const name = `${this.table}/anonymous-${++this.anon}`;
    const cidrs = els.flatMap((e) => v4Cidrs(e) ?? []);
    this.ipsets.set(
      name,
      ipsetFromEntries(
        name,
        'inet',
        cidrs.map((cidr) => ({ cidr, nomatch: false })),
      ),
    );
    return name;
  }

  /** `[!=] ADDRESS|{ LIST }|@SET` at `w[i]` as a source or destination match; returns the next word's index. */
  addr(w: readonly string[], i: number, flag: 'src' | 'dst', all: (f: (r: Mut) => void) => void): number {
    const n = w[i] === '!=';
    const j = n || w[i] === '==' ? i + 1 : i;
    const v = w[j] ?? '';
    if (v.startsWith('@')) {
      const name = this.setName(v.slice(1));
      all((r) => r.matches.push({ kind: 'set', name, flags: [flag], negated: n }));
    } else if (v.startsWith('{') || v.includes('-')) {
      const name = this.anonSet(items(v));
      all((r) => r.matches.push({ kind: 'set', name, flags: [flag], negated: n }));
    } else {
      const [a, l] = v.split('/');
      if (ipv4ToInt(a!) === undefined) throw new Unknown(`address ${v}`);
      all((r) => {
        r[flag] = { addr: a!, prefixLen: l === undefined ? 32 : Number(l), negated: n };
      });
    }
    return j + 1;
  }

  /** One rule text → the model's rules (several for a vmap, a set of ICMP types, a concatenation). */
  rules(text: string, origin: Origin, chain: string): IptRule[] {
    const w = words(text);
    const variants: Mut[] = [{ matches: [] }];
    const all = (f: (r: Mut) => void) => {
      for (const r of variants) f(r);
    };
    /** Splits every variant in as many as `alts` (each alternative applied to a copy). */
    const fork = (alts: readonly ((r: Mut) => void)[]) => {
      const next: Mut[] = [];
      for (const r of variants)
        for (const a of alts) {
          const c: Mut = { ...r, matches: [...r.matches] };
          a(c);
          next.push(c);
        }
      variants.splice(0, variants.length, ...next);
    };
    const neg = (i: number): [boolean, number] =>
      w[i] === '!=' ? [true, i + 1] : w[i] === '==' ? [false, i + 1] : [false, i];
    const ports = (proto: 'tcp' | 'udp' | undefined, which: 'sport' | 'dport', i: number): number => {
      const [n, j] = neg(i);
      const v = w[j] ?? '';
      all((r) => {
        const p = proto ?? (r.proto?.value === 6 ? 'tcp' : r.proto?.value === 17 ? 'udp' : undefined);
        if (p === undefined) throw new Unknown(`th ${which} without meta l4proto tcp or udp`);
        r.proto ??= { value: p === 'tcp' ? 6 : 17, negated: false };
        const ranges = items(v).map((x) => {
          const [lo, hi] = x.split('-').map(Number);
          if (!Number.isInteger(lo)) throw new Unknown(`${which} ${v}`);
          return { lo: lo!, hi: hi ?? lo! };
        });
        if (v.startsWith('{'))
          r.matches.push({ kind: 'multiport', which: which === 'dport' ? 'dports' : 'sports', ranges, negated: n });
        else r.matches.push({ kind: p, [which]: { ...ranges[0]!, negated: n } } as IptMatch);
      });
      return j + 1;
    };
    let i = 0;
    while (i < w.length) {
      const t = w[i++]!;
      switch (t) {
        case 'meta': {
          // `meta iifname` = `iifname`; a bare meta key continues below
          const k = w[i]!;
          if (['iifname', 'oifname', 'l4proto', 'protocol', 'pkttype'].includes(k)) continue;
          throw new Unknown(`meta ${k}`);
        }
        case 'iifname':
        case 'oifname': {
          if (w[i] === 'vmap') {
            const map = (w[i + 1] ?? '').replace(/^@/, '');
            const els = this.maps.get(map) ?? [];
            if (els.length === 0) throw new Never(`${map} is empty`);
            fork(
              els.map(([name, v]) => (r: Mut) => {
                r[t === 'iifname' ? 'in' : 'out'] = { name, negated: false };
                const [kind, to] = v.split(' ');
                r.target = { kind: kind === 'goto' ? 'goto' : 'jump', chain: to! };
              }),
            );
            i += 2;
            break;
          }
          if (w[i] === '.') {
            // iifname . ether saddr != { tap100i0 . bc:24:…, … } (the macfilter), and `arp saddr ether` for ARP: per
            // listed port, its MAC (an ARP frame's sender hardware address is taken to be its Ethernet source)
            const arp = w[i + 1] === 'arp';
            if (arp !== (this.mode === 'arp')) throw new Never(arp ? 'an ARP-only match' : 'a match ARP never meets');
            const at = arp ? i + 1 : i;
            if (
              w[at + 1] !== (arp ? 'saddr' : 'ether') ||
              w[at + 2] !== (arp ? 'ether' : 'saddr') ||
              w[at + 3] !== '!='
            )
              throw new Unknown(text);
            i = at;
            const pairs = items(w[i + 4] ?? '').map((p) => p.split(' . ').map((x) => x.trim()));
            fork(
              pairs.map(([port, mac]) => (r: Mut) => {
                const m = parseMac(mac ?? '');
                if (!m) throw new Unknown(`MAC ${mac}`);
                r.in = { name: port!, negated: false };
                r.matches.push({ kind: 'mac', source: m, negated: true });
              }),
            );
            i += 5;
            break;
          }
          const [n, j] = neg(i);
          const name = unquote(w[j] ?? '');
          all((r) => {
            r[t === 'iifname' ? 'in' : 'out'] = { name, negated: n };
          });
          i = j + 1;
          break;
        }
        case 'l4proto': {
          if (this.mode === 'arp') throw new Never('a transport match ARP never meets');
          const v = w[i++] ?? '';
          const names = items(v).filter((p) => p !== 'ipv6-icmp' && p !== 'icmpv6');
          if (names.length === 0) throw new Never('an ICMPv6-only match');
          const nums = names.map((p) => (/^\d+$/.test(p) ? Number(p) : protocolByName(p)));
          if (nums.some((x) => x === undefined) || nums.length > 1) throw new Unknown(`meta l4proto ${v}`);
          all((r) => {
            r.proto = { value: nums[0]!, negated: false };
          });
          break;
        }
        case 'protocol': {
          const [n, j] = neg(i);
          const v = w[j];
          i = j + 1;
          if (v !== 'arp' && v !== 'ip') throw new Unknown(`meta protocol ${v}`);
          // an IPv4 packet: `arp` never, `!= arp` and `ip` always; an ARP frame the other way round
          if ((v === (this.mode === 'arp' ? 'ip' : 'arp')) !== n) throw new Never(`a match ${this.mode} never meets`);
          break;
        }
        case 'pkttype': {
          const v = w[i++];
          if (v !== 'broadcast') throw new Unknown(`meta pkttype ${v}`);
          all((r) => r.matches.push({ kind: 'addrtype', dst: { type: 'BROADCAST', negated: false } }));
          break;
        }
        case 'th':
          if (this.mode === 'arp') throw new Never('a transport match ARP never meets');
          i = ports(undefined, w[i] as 'sport' | 'dport', i + 1);
          break;
        case 'tcp':
        case 'udp': {
          if (this.mode === 'arp') throw new Never('a transport match ARP never meets');
          const f = w[i]!;
          if (f === 'flags') {
            // tcp flags & (a|b) ==|!= c|d
            const mask = flagBits((w[i + 2] ?? '').replace(/[()]/g, ''));
            const [n, j] = neg(i + 3);
            const comp = flagBits(w[j] ?? '');
            if (Number.isNaN(mask) || Number.isNaN(comp)) throw new Unknown(text);
            all((r) => {
              r.proto = { value: 6, negated: false };
              r.matches.push({ kind: 'tcp', flags: { mask, comp, negated: n } });
            });
            i = j + 1;
            break;
          }
          if (f === 'sport' && w[i + 1] === '.') {
            // udp sport . udp dport { 68 . 67, … }
            const pairs = items(w[i + 4] ?? '').map((p) => p.split(' . ').map(Number));
            fork(
              pairs.map(([s, d]) => (r: Mut) => {
                r.proto = { value: t === 'tcp' ? 6 : 17, negated: false };
                r.matches.push({
                  kind: t,
                  sport: { lo: s!, hi: s!, negated: false },
                  dport: { lo: d!, hi: d!, negated: false },
                } as IptMatch);
              }),
            );
            i += 5;
            break;
          }
          if (f !== 'sport' && f !== 'dport') throw new Unknown(`${t} ${f}`);
          i = ports(t, f, i + 1);
          break;
        }
        case 'ip': {
          if (this.mode === 'arp') throw new Never('an IPv4-only match');
          const f = w[i]!;
          if (f !== 'saddr' && f !== 'daddr') throw new Unknown(`ip ${f}`);
          i = this.addr(w, i + 1, f === 'saddr' ? 'src' : 'dst', all);
          break;
        }
        case 'icmp': {
          if (this.mode === 'arp') throw new Never('an ICMP match ARP never meets');
          const f = w[i++];
          const v = w[i++] ?? '';
          if (f === 'code') {
            all((r) => {
              const m = r.matches.at(-1);
              if (m?.kind !== 'icmp') throw new Unknown(text);
              r.matches[r.matches.length - 1] = { ...m, codeLo: Number(v), codeHi: Number(v) };
            });
            break;
          }
          if (f !== 'type') throw new Unknown(`icmp ${f}`);
          const types = items(v).map((x) => {
            const n = /^\d+$/.test(x) ? { type: Number(x) } : ICMP_TYPES_BY_NAME.get(x);
            if (!n) throw new Unknown(`icmp type ${x}`);
            return n;
          });
          fork(
            types.map((ty) => (r: Mut) => {
              r.proto = { value: 1, negated: false };
              r.matches.push({
                kind: 'icmp',
                type: ty.type,
                codeLo: ty.code ?? 0,
                codeHi: ty.code ?? 255,
                negated: false,
              });
            }),
          );
          break;
        }
        case 'ip6':
        case 'icmpv6':
          throw new Never('an IPv6-only match');
        case 'arp': {
          // arp saddr ip / arp daddr ip: the sender's and the target's protocol address
          if (this.mode !== 'arp') throw new Never('an ARP-only match');
          const f = w[i++];
          if ((f !== 'saddr' && f !== 'daddr') || w[i] !== 'ip') throw new Unknown(`arp ${f} ${w[i]}`);
          i = this.addr(w, i + 1, f === 'saddr' ? 'src' : 'dst', all);
          break;
        }
        case 'ct': {
          const f = w[i++];
          if (f === 'mark' || (f === 'helper' && w[i] === 'set')) throw new Never(`ct ${f} set: no verdict`);
          if (f === 'helper') throw new Never('a conntrack helper (probes have none)');
          if (f !== 'state') throw new Unknown(`ct ${f}`);
          if (this.mode === 'arp') throw new Never('conntrack state (ARP is not tracked)');
          if (w[i] === 'vmap') {
            const els = items(w[i + 1] ?? '').map((e) => e.split(' : ').map((x) => x.trim()));
            fork(
              els.map(([st, v]) => (r: Mut) => {
                r.matches.push({ kind: 'conntrack', state: { states: [CT[st!]!], negated: false } });
                const [kind, to] = v!.split(' ');
                r.target =
                  kind === 'jump' || kind === 'goto'
                    ? { kind, chain: to! }
                    : { kind: 'verdict', verdict: kind === 'accept' ? 'ACCEPT' : 'DROP' };
              }),
            );
            i += 2;
            break;
          }
          const [n, j] = neg(i);
          const states = items(w[j] ?? '').map((s) => CT[s]);
          if (states.some((s) => s === undefined)) throw new Unknown(`ct state ${w[j]}`);
          all((r) => r.matches.push({ kind: 'conntrack', state: { states: states as CtState[], negated: n } }));
          i = j + 1;
          break;
        }
        case 'limit': {
          // limit rate [over] N/unit [burst N packets]: a probe's few packets stay under any rate
          const over = w[i + 1] === 'over';
          if (over) throw new Never('a rate limit a probe never exceeds');
          i += 2;
          if (w[i] === 'burst') i += 3;
          break;
        }
        case 'log':
          while (i < w.length && ['prefix', 'level', 'group'].includes(w[i]!)) i += 2;
          if (i >= w.length && variants.every((r) => r.target === undefined)) throw new Never('it only logs');
          break;
        case 'update':
          throw new Never('a SYN-flood meter a probe never exceeds');
        case 'counter':
          break;
        case 'accept':
        case 'drop':
        case 'return':
          all((r) => {
            r.target = { kind: 'verdict', verdict: t === 'accept' ? 'ACCEPT' : t === 'drop' ? 'DROP' : 'RETURN' };
          });
          break;
        case 'reject': {
          let how = 'icmp-port-unreachable';
          if (w[i] === 'with') {
            const kind = w[i + 1];
            if (kind === 'icmpv6') throw new Never('an ICMPv6 reject (IPv6 only)');
            how = kind === 'tcp' ? 'tcp-reset' : `icmp-${w[i + 3] ?? 'port-unreachable'}`;
            i += kind === 'tcp' ? 3 : 4;
          }
          all((r) => {
            r.target = { kind: 'reject', with: how };
          });
          break;
        }
        case 'jump':
        case 'goto': {
          const to = w[i++] ?? '';
          all((r) => {
            r.target = { kind: t, chain: to };
          });
          break;
        }
        default:
          throw new Unknown(t);
      }
    }
    return variants.map((r) => {
      const out: { -readonly [K in keyof IptRule]: IptRule[K] } = {
        matches: r.matches,
        origin,
        nft: { chain: `${this.table}/${chain}`, text },
      };
      if (r.src) out.src = r.src;
      if (r.dst) out.dst = r.dst;
      if (r.in) out.in = r.in;
      if (r.out) out.out = r.out;
      if (r.proto) out.proto = r.proto;
      if (r.target) out.target = r.target;
      return out as IptRule;
    });
  }

  /** Translates one command's rule, or records why it is left out. */
  add(out: IptRule[], text: string, origin: Origin, chain: string): void {
    try {
      appendAll(out, this.rules(text, origin, chain));
    } catch (e) {
      if (e instanceof Never) return;
      if (!(e instanceof Unknown)) throw e;
      this.issues.push(
        issue(
          'pve-nft-not-modelled',
          `nft ${this.table} ${chain} "${text}": ${e.message} is not modelled; the rule is left out of the trace`,
          origin.pos,
          'warning',
        ),
      );
    }
  }
}

function tableOf(compiled: PveNftCompiled, table: PveNftTable, tr: Translator): IptTable {
  const skeleton = table === PVE_NFT_HOST_TABLE ? HOST_SKELETON : GUEST_SKELETON;
  const empty = table === PVE_NFT_HOST_TABLE ? HOST_EMPTY : GUEST_EMPTY;
  const skel = (chain: string, i: number) =>
    implicit(`proxmox-firewall skeleton (resources/proxmox-firewall.nft) ${table} chain ${chain} rule ${i + 1}`);
  const generated = new Map<string, { text: string; origin: Origin }[]>();
  const setEntries = new Map<string, string[]>();
  for (const l of compiled.lines) {
    if (l.table !== table) continue;
    const m = /^add (rule|chain|set|element) \S+ \S+ (\S+)(?: (.*))?$/.exec(l.text);
    if (!m) continue;
    const [, what, name, body] = m;
    if (what === 'chain') generated.set(name!, generated.get(name!) ?? []);
    else if (what === 'rule')
      generated.set(name!, [...(generated.get(name!) ?? []), { text: body!, origin: l.origin }]);
    else if (what === 'set') setEntries.set(name!, setEntries.get(name!) ?? []);
    else if (name === 'vm-map-in' || name === 'vm-map-out')
      tr.maps.set(name, [
        ...(tr.maps.get(name) ?? []),
        ...items(body!).map((e) => e.split(' : ').map((x) => x.trim()) as [string, string]),
      ]);
    else setEntries.set(name!, [...(setEntries.get(name!) ?? []), ...items(body!)]);
  }
  for (const [name, els] of setEntries)
    if (name.startsWith('v4-'))
      tr.ipsets.set(
        tr.setName(name),
        ipsetFromEntries(
          tr.setName(name),
          'inet',
          els.flatMap((e) => v4Cidrs(e) ?? []).map((cidr) => ({ cidr, nomatch: false })),
        ),
      );
  // the skeleton's management sets exist even when nothing fills them
  for (const s of ['v4-dc/management', 'v4-dc/management-nomatch'])
    if (!tr.ipsets.has(tr.setName(s))) tr.ipsets.set(tr.setName(s), ipsetFromEntries(tr.setName(s), 'inet', []));
  const names = new Set([...Object.keys(skeleton), ...empty, ...generated.keys()]);
  const base = new Map(BASE[table].map(([hook, chain]) => [chain, hook]));
  const chains: IptChain[] = [];
  for (const name of names) {
    const rules: IptRule[] = [];
    (skeleton[name] ?? []).forEach((t, i) => {
      tr.add(rules, t, skel(name, i), name);
    });
    for (const g of generated.get(name) ?? []) tr.add(rules, g.text, g.origin, name);
    const hook = base.get(name);
    chains.push(
      hook
        ? {
            name: hook,
            builtin: true,
            policy: 'ACCEPT',
            policyOrigin: implicit(`proxmox-firewall skeleton: ${table} chain ${name} policy accept`),
            nft: { chain: `${table}/${name}` },
            rules,
            origin: implicit(`proxmox-firewall skeleton: ${table} base chain ${name}`),
          }
        : { name, builtin: false, rules, origin: implicit(`proxmox-firewall ${table} chain ${name}`) },
    );
  }
  chains.sort((a, b) => Number(b.builtin) - Number(a.builtin));
  return { family: 'ipv4', name: 'filter', chains };
}

/** The node's proxmox-firewall tables as the evaluator's model (IPv4, and ARP for the guest table). */
export function pveNftModel(compiled: PveNftCompiled): PveNftModel {
  if (!compiled.enabled) return { ipsets: new Map(), issues: [] };
  const ipsets = new Map<string, IpsetSet>();
  const issues: Issue[] = [];
  const build = (table: PveNftTable, mode: 'ipv4' | 'arp'): IptTable | undefined => {
    if (compiled.lines.some((l) => l.text === `delete table ${table}`)) return undefined;
    const tr = new Translator(table, mode);
    const t = tableOf(compiled, table, tr);
    for (const [k, v] of tr.ipsets) ipsets.set(k, v);
    // the ARP view reads the same commands: what it cannot read the IPv4 view has said already
    if (mode === 'ipv4') appendAll(issues, tr.issues);
    return t;
  };
  const host = build(PVE_NFT_HOST_TABLE, 'ipv4');
  const hostScript = host ? renderPveNftHostScript(compiled) : undefined;
  const guests = build(PVE_NFT_GUEST_TABLE, 'ipv4');
  const guestsArp = build(PVE_NFT_GUEST_TABLE, 'arp');
  return {
    ...(host ? { host } : {}),
    ...(hostScript ? { hostScript } : {}),
    ...(guests ? { guests } : {}),
    ...(guestsArp ? { guestsArp } : {}),
    ipsets,
    issues,
  };
}

/** The hooks of the inet table's base chains, as the skeleton declares them. */
const HOST_HOOKS: Readonly<Record<string, string>> = {
  input: 'type filter hook input priority filter; policy accept;',
  forward: 'type filter hook forward priority filter; policy accept;',
  output: 'type filter hook output priority filter; policy accept;',
  'host-bridge-input': 'type filter hook input priority filter - 1; policy accept;',
  'host-bridge-output': 'type filter hook output priority filter + 1; policy accept;',
};

/**
 * `inet proxmox-firewall` for `nft -f`: the skeleton's inet table as transcribed here (its sets, the `bridge-map`
 * dispatch of `host-bridge-input/-output`, every chain with its rules and hooks), then the generated inet commands.
 */
export function renderPveNftHostScript(compiled: PveNftCompiled): string {
  const set = (name: string, v: 4 | 6) => `  set ${name} { type ipv${v}_addr; flags interval; auto-merge; }`;
  const out = [`table ${PVE_NFT_HOST_TABLE} {`];
  for (const v of [4, 6] as const) {
    out.push(set(`v${v}-dc/management`, v), set(`v${v}-dc/management-nomatch`, v));
    out.push(`  set v${v}-synflood-limit { type ipv${v}_addr; timeout 60s; flags dynamic; }`);
  }
  out.push('  map bridge-map { type ifname : verdict; }');
  const chains: Record<string, readonly string[]> = {
    ...Object.fromEntries(HOST_EMPTY.map((c) => [c, []])),
    ...HOST_SKELETON,
    'host-bridge-input': ['meta iifname vmap @bridge-map'],
    'host-bridge-output': ['meta oifname vmap @bridge-map'],
  };
  // chains first without rules (jumps may point forward), then their rules
  for (const name of Object.keys(chains)) out.push(`  chain ${name} { ${HOST_HOOKS[name] ?? ''} }`);
  out.push('}');
  for (const [name, rules] of Object.entries(chains))
    for (const r of rules) out.push(`add rule ${PVE_NFT_HOST_TABLE} ${name} ${r}`);
  for (const l of compiled.lines) if (l.table === PVE_NFT_HOST_TABLE) out.push(l.text);
  return `${out.join('\n')}\n`;
}
