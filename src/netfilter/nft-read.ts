/**
 * Reads `nft list ruleset` in place of `iptables-save`: what decides a routed or bridged (br_netfilter) IPv4 packet's
 * fate is the filter chains on the input, forward and output hooks of `ip` and `inet` tables. They are read into the
 * iptables model (`IptTable`, chains INPUT/FORWARD/OUTPUT) so the simulator evaluates them as it evaluates an
 * `iptables-save`; every rule statement it cannot express is reported on its line with what leaving the rule out
 * means for the verdict, and so is every table or chain that is not evaluated (nat, bridge, netdev, arp, ip6). Several
 * filter base chains on one hook are all evaluated, in the kernel's order: the first becomes the built-in chain
 * (INPUT, FORWARD, OUTPUT), the others follow it (`IptChain.nextBaseChain`), an accept going on to the next, a drop ending.
 * The base chains that are what iptables' mangle table is — `type filter` on prerouting and postrouting (at any
 * priority: raw, mangle, firewalld's `mangle + 10`), `type route` on output — are read the same way into the mangle
 * table traces apply before nat (and filter OUTPUT); nat base chains into the nat table. A chain whose priority puts
 * it after a chain traces run before it is said on its line (`nft-chain-order`).
 *
 * Statements read: `iifname`/`oifname` (`==`, `!=`, `"veth*"`), `iif`/`oif` (by index, listed by name), `ip saddr`/`ip daddr` (address or prefix),
 * `ip protocol`/`meta l4proto`, `tcp|udp sport|dport` (a port, a range, a set), `ct state`, `meta mark`/`mark`,
 * `fib daddr type`, `counter`, `log`, `comment`; verdicts `accept`, `drop`, `reject`, `return`, `jump`, `goto`;
 * `meta mark set V` and `meta mark set meta mark & A | B ^ C` (MARK --set-xmark). `ip dscp set`, `tcp option maxseg
 * size set` and the like are noted as not applied (they decide nothing a trace follows); `ct mark set`, `meta mark set
 * ct mark`, `tproxy`, `notrack`, `queue`, `ip saddr|daddr set` leave their rule out, said with what that means.
 */
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Origin } from '../source/origin.ts';
import type { CtState, IptChain, IptMatch, IptPolicy, IptRule, IptTable, IptTarget } from './iptables-model.ts';
import { protocolByName } from './names.ts';

const HOOK_CHAIN: Readonly<Record<string, string>> = { input: 'INPUT', forward: 'FORWARD', output: 'OUTPUT' };
/** The nat hooks traces apply (a hypervisor's DNAT/REDIRECT, SNAT/MASQUERADE), as iptables' nat chains. */
const NAT_HOOK_CHAIN: Readonly<Record<string, string>> = {
  prerouting: 'PREROUTING',
  output: 'OUTPUT',
  postrouting: 'POSTROUTING',
};

/** `A[:P]` / `A[:LO-HI]` / `:P` of a nat statement: the address (if any) and the port range (if any). */
function natTo(v: string, what: string): { addr?: string; lo?: number; hi?: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)?(?::(\d+)(?:-(\d+))?)?$/.exec(v);
  if (!m || (m[1] === undefined && m[2] === undefined))
    throw new Unmodelled(`${what} to ${v} (an address range, a map or a set)`);
  return {
    ...(m[1] !== undefined ? { addr: m[1] } : {}),
    ...(m[2] !== undefined ? { lo: Number(m[2]), hi: Number(m[3] ?? m[2]) } : {}),
  };
}

interface NftChain {
  readonly table: string;
  readonly family: string;
  readonly name: string;
  readonly line: number;
  type?: string;
  hook?: string;
  priority?: number;
  policy?: IptPolicy;
  readonly rules: { readonly text: string; readonly line: number }[];
}

/**
 * The base chains read into the mangle table traces apply at its hooks: `type filter` on prerouting (from priority -200,
 * conntrack's, up; below it they are the raw table, where `notrack` acts) and postrouting, `type route` on output (a changed mark or address re-routes, as iptables' mangle OUTPUT does). Filter chains on
 * input, forward and output are evaluated with the filter table (every base chain of a hook in priority order).
 */
const MANGLE_HOOK_CHAIN: Readonly<Record<string, string>> = {
  'filter prerouting': 'PREROUTING',
  'filter postrouting': 'POSTROUTING',
  'route output': 'OUTPUT',
};

/**
 * Where traces run each table at a hook, in the kernel's priorities: mangle (-150) before nat PREROUTING/OUTPUT
 * (dstnat, -100) and filter OUTPUT (0); mangle POSTROUTING (-150) before nat POSTROUTING (srcnat, 100).
 */
const TRACE_SLOT: Readonly<Record<string, readonly (readonly [string, string])[]>> = {
  prerouting: [
    ['mangle', 'PREROUTING'],
    ['nat', 'PREROUTING'],
  ],
  output: [
    ['mangle', 'OUTPUT'],
    ['nat', 'OUTPUT'],
    ['filter', 'OUTPUT'],
  ],
  postrouting: [
    ['mangle', 'POSTROUTING'],
    ['nat', 'POSTROUTING'],
  ],
};

/** NF_IP_PRI_CONNTRACK: base chains below it see packets before conntrack (where `notrack` acts). */
const CONNTRACK_PRIORITY = -200;

const PRIORITY_NAMES: Readonly<Record<string, number>> = {
  raw: -300,
  mangle: -150,
  dstnat: -100,
  filter: 0,
  security: 50,
  srcnat: 100,
};

/** Words of an nft rule: quoted strings and `{ … }` sets kept whole. */
function words(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    let j = i;
    if (c === '"') {
      j = text.indexOf('"', i + 1);
      j = j < 0 ? text.length : j + 1;
    } else if (c === '{') {
      j = text.indexOf('}', i);
      j = j < 0 ? text.length : j + 1;
    } else while (j < text.length && text[j] !== ' ' && text[j] !== '\t') j++;
    out.push(text.slice(i, j));
    i = j;
  }
  return out;
}

function unquote(w: string): string {
  return w.startsWith('"') && w.endsWith('"') ? w.slice(1, -1) : w;
}

function setItems(w: string): string[] {
  return w
    .replace(/^\{|\}$/g, '')
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '');
}

/** A statement the model cannot express; `meaning` says what leaving its rule out means for the verdict. */
class Unmodelled extends Error {
  constructor(
    message: string,
    readonly meaning?: string,
  ) {
    super(message);
  }
}

const MASK32 = 0xffffffff;

/**
 * `meta mark set …` after `set`: a value, or `meta mark` (`mark`) followed by `&`/`|`/`^` (`and`/`or`/`xor`) with
 * constants, as nft prints `meta mark set mark and A or B` (`meta mark & A | B`). Returned as iptables' MARK
 * --set-xmark V/M (nfmark = (nfmark & ~M) ^ V): the composition kept as nfmark = (nfmark & keep) ^ value.
 */
function markSet(w: readonly string[], at: number): { value: number; mask: number; next: number } {
  let i = at;
  const num = (v: string | undefined): number | undefined =>
    v !== undefined && /^(0x[0-9a-f]+|\d+)$/i.test(v) ? Number(v) >>> 0 : undefined;
  const first = num(w[i]);
  if (first !== undefined) return { value: first, mask: MASK32, next: i + 1 };
  if (w[i] === 'meta' && w[i + 1] === 'mark') i += 2;
  else if (w[i] === 'mark') i++;
  else if (w[i] === 'ct' && w[i + 1] === 'mark')
    throw new Unmodelled(
      'meta mark set ct mark',
      "the connection's mark is not restored onto the packet in traces: it goes on with the mark it had, which -m mark matches and ip rule fwmark see",
    );
  else
    throw new Unmodelled(
      `meta mark set ${w[i] ?? ''} (a map or an expression other than a constant)`,
      'the mark it would set is not applied in traces: the packet goes on with the mark it had',
    );
  let keep = MASK32;
  let value = 0;
  let ops = 0;
  for (;;) {
    const op = w[i];
    const c = num(w[i + 1]);
    if (c === undefined || op === undefined) break;
    if (op === '&' || op === 'and') {
      keep = (keep & c) >>> 0;
      value = (value & c) >>> 0;
    } else if (op === '|' || op === 'or') {
      keep = (keep & ~c) >>> 0;
      value = ((value & ~c) | c) >>> 0;
    } else if (op === '^' || op === 'xor') value = (value ^ c) >>> 0;
    else break;
    i += 2;
    ops++;
  }
  if (ops === 0)
    throw new Unmodelled(
      `meta mark set ${w.slice(at, at + 3).join(' ')}`,
      'the mark it would set is not applied in traces: the packet goes on with the mark it had',
    );
  return { value, mask: ~keep >>> 0, next: i };
}

/** Statements that rewrite what no trace decides on: read as notes, the rest of the rule applies. */
const HARMLESS_SETS: Readonly<Record<string, string>> = {
  'ip dscp': 'the DSCP field decides nothing a trace follows',
  'ip ecn': 'the ECN bits decide nothing a trace follows',
  'meta priority': 'the packet priority (qdisc class) decides nothing a trace follows',
  'meta nftrace': 'nftrace only makes nft monitor trace report the packet',
};

/**
 * One rule into the iptables model; throws `Unmodelled` with what the rule does that is not read. A rule that sets the
 * mark and also has a verdict (`… meta mark set 0x1 accept`) becomes two: the MARK, then the verdict on the same
 * matches. `notes` gets the statements read as changing nothing a trace decides on.
 */
function rule(text: string, origin: Origin, family: string, notes: string[] = []): IptRule[] | 'other-family' {
  const w = words(text.replace(/\s+# handle \d+$/, ''));
  const r: { -readonly [K in Exclude<keyof IptRule, 'matches' | 'origin'>]?: NonNullable<IptRule[K]> } = {};
  const matches: IptMatch[] = [];
  let markTarget: IptTarget | undefined;
  let i = 0;
  const harmless = (what: string): boolean => {
    const meaning = HARMLESS_SETS[what];
    if (meaning === undefined || w[i] !== 'set') return false;
    const v = w[i + 1] ?? '';
    notes.push(`'${what} set ${v}' is not applied (${meaning}); the rest of the rule is`);
    i += 2;
    return true;
  };
  const neg = (): boolean => {
    if (w[i] === '!=') {
      i++;
      return true;
    }
    if (w[i] === '==') i++;
    return false;
  };
  const ports = (proto: 'tcp' | 'udp', which: 'sport' | 'dport'): void => {
    const n = neg();
    const v = w[i++];
    if (v === undefined) throw new Unmodelled(`${proto} ${which} without a value`);
    if (v.startsWith('{')) {
      const ranges = setItems(v).map((p) => {
        const [lo, hi] = p.split('-').map(Number);
        if (!Number.isInteger(lo)) throw new Unmodelled(`${proto} ${which} ${v}: named ports are not read`);
        return { lo: lo!, hi: hi ?? lo! };
      });
      r.proto ??= { value: proto === 'tcp' ? 6 : 17, negated: false };
      matches.push({ kind: 'multiport', which: which === 'dport' ? 'dports' : 'sports', ranges, negated: n });
      return;
    }
    const [lo, hi] = v.split('-').map(Number);
    if (!Number.isInteger(lo)) throw new Unmodelled(`${proto} ${which} ${v}: named ports are not read`);
    r.proto ??= { value: proto === 'tcp' ? 6 : 17, negated: false };
    matches.push({ kind: proto, [which]: { lo: lo!, hi: hi ?? lo!, negated: n } } as IptMatch);
  };
  while (i < w.length) {
    const t = w[i++]!;
    switch (t) {
      case 'counter':
        if (w[i] === 'packets') i += 4;
        break;
      case 'comment':
        matches.push({ kind: 'comment', text: unquote(w[i++] ?? '') });
        break;
      case 'log':
        while (i < w.length && ['prefix', 'level', 'group', 'flags', 'snaplen'].includes(w[i]!)) i += 2;
        break;
      case 'iif':
      case 'oif':
      case 'iifname':
      case 'oifname': {
        // `iif "virbr0"` matches the device by its index, which nft lists by name: the same device as iifname.
        const n = neg();
        const v = w[i++] ?? '';
        if (v.startsWith('{')) throw new Unmodelled(`${t} with a set ${v}`);
        const name = t.length === 3 ? unquote(v) : unquote(v).replace(/\*$/, '+');
        if (t === 'iifname' || t === 'iif') r.in = { name, negated: n };
        else r.out = { name, negated: n };
        break;
      }
      case 'ip': {
        const f = w[i++];
        if (harmless(`ip ${f}`)) break;
        if ((f === 'saddr' || f === 'daddr') && w[i] === 'set')
          throw new Unmodelled(
            `ip ${f} set ${w[i + 1] ?? ''} (a stateless address rewrite)`,
            `the rewrite is not applied: traces carry the packet on with its original ${f === 'saddr' ? 'source' : 'destination'}`,
          );
        if (f === 'saddr' || f === 'daddr') {
          const n = neg();
          const v = w[i++] ?? '';
          const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(v);
          if (!m) throw new Unmodelled(`ip ${f} ${v} (a set or a named set)`);
          const a = { addr: m[1]!, prefixLen: m[2] === undefined ? 32 : Number(m[2]), negated: n };
          if (f === 'saddr') r.src = a;
          else r.dst = a;
        } else if (f === 'protocol') {
          const n = neg();
          const v = w[i++] ?? '';
          const p = /^\d+$/.test(v) ? Number(v) : protocolByName(v);
          if (p === undefined || v.startsWith('{')) throw new Unmodelled(`ip protocol ${v}`);
          r.proto = { value: p, negated: n };
        } else throw new Unmodelled(`ip ${f}`);
        break;
      }
      case 'meta': {
        const f = w[i++];
        if (f === 'l4proto') {
          const n = neg();
          const v = w[i++] ?? '';
          const p = /^\d+$/.test(v) ? Number(v) : protocolByName(v);
          if (p === undefined) throw new Unmodelled(`meta l4proto ${v}`);
          r.proto = { value: p, negated: n };
        } else if (harmless(`meta ${f}`)) {
          // read as a note
        } else if (f === 'mark' && w[i] === 'set') {
          const m = markSet(w, i + 1);
          markTarget = { kind: 'mark', value: m.value, mask: m.mask };
          i = m.next;
        } else if (f === 'mark') {
          const n = neg();
          const v = Number(w[i++]);
          if (!Number.isInteger(v)) throw new Unmodelled('meta mark with a mask or set');
          matches.push({ kind: 'mark', value: v, mask: 0xffffffff, negated: n });
        } else if (f === 'nfproto') {
          const v = w[i++];
          if (v === 'ipv6') return 'other-family';
        } else throw new Unmodelled(`meta ${f}`);
        break;
      }
      case 'mark': {
        if (w[i] === 'set') {
          const m = markSet(w, i + 1);
          markTarget = { kind: 'mark', value: m.value, mask: m.mask };
          i = m.next;
          break;
        }
        const n = neg();
        const v = Number(w[i++]);
        if (!Number.isInteger(v)) throw new Unmodelled('mark with a mask or set');
        matches.push({ kind: 'mark', value: v, mask: 0xffffffff, negated: n });
        break;
      }
      case 'tcp':
      case 'udp': {
        const f = w[i++];
        if (t === 'tcp' && f === 'option' && w[i] === 'maxseg' && w[i + 1] === 'size' && w[i + 2] === 'set') {
          notes.push(
            `'tcp option maxseg size set ${w[i + 3] ?? ''}${w[i + 4] === 'mtu' ? ' mtu' : ''}' is not applied (MSS clamping): traces keep the segment sizes the endpoints chose; the rest of the rule is`,
          );
          i += w[i + 4] === 'mtu' ? 5 : 4;
          break;
        }
        if (f === 'dport' || f === 'sport') ports(t, f);
        else throw new Unmodelled(`${t} ${f}`);
        break;
      }
      case 'ct': {
        const f = w[i++];
        if (f === 'mark' && w[i] === 'set')
          throw new Unmodelled(
            `ct mark set ${w.slice(i + 1).join(' ')}`,
            "the connection's mark is not kept in traces: a later 'meta mark set ct mark' restores nothing",
          );
        if (f !== 'state') throw new Unmodelled(`ct ${f}`);
        const n = neg();
        const v = w[i++] ?? '';
        const states = (v.startsWith('{') ? setItems(v) : v.split(',')).map((s) => s.toUpperCase() as CtState);
        matches.push({ kind: 'conntrack', state: { states, negated: n } });
        break;
      }
      case 'fib': {
        // fib daddr type local (kube-proxy, Docker): -m addrtype --dst-type LOCAL
        const f = w[i++];
        if ((f === 'daddr' || f === 'saddr') && w[i] === 'type') {
          i++;
          const n = neg();
          const v = (w[i++] ?? '').toUpperCase();
          matches.push({
            kind: 'addrtype',
            ...(f === 'daddr' ? { dst: { type: v, negated: n } } : { src: { type: v, negated: n } }),
          });
        } else throw new Unmodelled(`fib ${f}`);
        break;
      }
      case 'xt':
        // iptables-nft's compatibility expressions: nft cannot show their options (e.g. physdev's interfaces).
        throw new Unmodelled(
          `xt ${w[i] ?? ''} ${w[i + 1] ?? ''} (an iptables-nft match or target whose options nft does not print: read iptables-save instead)`,
        );
      case 'ip6':
      case 'icmpv6':
        if (family === 'inet') return 'other-family';
        throw new Unmodelled(t);
      case 'tproxy':
        throw new Unmodelled(
          `tproxy ${w.slice(i).join(' ')}`,
          'the diversion to a local transparent proxy is not applied: traces route the packet on to its destination',
        );
      case 'notrack':
        // Read where it acts (a prerouting chain before conntrack, the raw table); elsewhere said by the caller.
        r.target = { kind: 'notrack', ct: false };
        break;
      case 'queue':
        throw new Unmodelled(
          `queue ${w.slice(i).join(' ')}`,
          'the packet is not handed to a userspace queue in traces: what that program decides is unknown',
        );
      case 'accept':
        r.target = { kind: 'verdict', verdict: 'ACCEPT' };
        break;
      case 'drop':
        r.target = { kind: 'verdict', verdict: 'DROP' };
        break;
      case 'return':
        r.target = { kind: 'verdict', verdict: 'RETURN' };
        break;
      case 'reject': {
        let how = 'icmp-port-unreachable';
        if (w[i] === 'with') {
          const kind = w[i + 1];
          const what = w[i + 2];
          i += kind === 'tcp' ? 3 : 3;
          how = kind === 'tcp' ? 'tcp-reset' : `icmp-${what ?? 'port-unreachable'}`;
        }
        r.target = { kind: 'reject', with: how };
        break;
      }
      case 'jump':
      case 'goto':
        r.target = { kind: t, chain: w[i++] ?? '' };
        break;
      case 'dnat':
      case 'snat':
      case 'redirect':
      case 'masquerade': {
        if (w[i] === 'ip') i++;
        else if (w[i] === 'ip6') return 'other-family';
        let to: ReturnType<typeof natTo> = {};
        if (w[i] === 'to') {
          i++;
          to = natTo(w[i++] ?? '', t);
        }
        while (['random', 'fully-random', 'persistent'].includes((w[i] ?? '').replace(/,$/, ''))) i++;
        const range = to.lo !== undefined ? { lo: to.lo, hi: to.hi! } : undefined;
        if (t === 'dnat' || t === 'snat') {
          if (to.addr === undefined) throw new Unmodelled(`${t} without an address`);
          if (t === 'dnat' && range && range.lo !== range.hi)
            throw new Unmodelled(`dnat to a port range ${range.lo}-${range.hi}`);
          r.target =
            t === 'dnat'
              ? { kind: 'dnat', toDest: to.addr, ...(range ? { toPort: range.lo } : {}) }
              : { kind: 'snat', toSource: to.addr, ...(range ? { toPorts: range } : {}) };
        } else if (t === 'redirect') {
          if (range && range.lo !== range.hi) throw new Unmodelled(`redirect to a port range ${range.lo}-${range.hi}`);
          r.target = { kind: 'redirect', ...(range ? { toPort: range.lo } : {}) };
        } else r.target = { kind: 'masquerade', ...(range ? { toPorts: range } : {}) };
        break;
      }
      default:
        throw new Unmodelled(t);
    }
  }
  if (markTarget === undefined) return [{ ...r, matches, origin }];
  const marking: IptRule = { ...r, matches, origin, target: markTarget };
  if (r.target === undefined) return [marking];
  // The verdict after the mark: on the same matches, unless one of them looks at the mark it just changed.
  if (matches.some((m) => m.kind === 'mark'))
    throw new Unmodelled(
      'meta mark set with a verdict on a rule that also matches the mark',
      'neither its mark nor its verdict is applied in traces',
    );
  return [marking, { ...r, matches, origin }];
}

/** Reads `nft list ruleset`: one IPv4 filter table with INPUT, FORWARD and OUTPUT as its hooks' first base chains. */
export function readNftRuleset(text: string, file: string): ReadResult<IptTable[]> {
  const issues: Issue[] = [];
  const chains: NftChain[] = [];
  let table: { family: string; name: string } | undefined;
  let chain: NftChain | undefined;
  let skipDepth = 0;
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    const lineNo = k + 1;
    const line = lines[k]!.replace(/\r$/, '').trim();
    const pos = filePos(file, lineNo);
    if (line === '' || line.startsWith('#')) continue;
    if (skipDepth > 0) {
      skipDepth += (line.match(/\{/g)?.length ?? 0) - (line.match(/\}/g)?.length ?? 0);
      continue;
    }
    const tm = /^table (ip|ip6|inet|arp|bridge|netdev) (\S+) \{$/.exec(line);
    if (tm) {
      table = { family: tm[1]!, name: tm[2]! };
      if (tm[1] === 'bridge' || tm[1] === 'netdev' || tm[1] === 'arp')
        issues.push(
          issue(
            'nft-table-not-modelled',
            `table ${tm[1]} ${tm[2]} is not evaluated: its rules act on ${tm[1] === 'bridge' ? 'bridged frames (like ebtables)' : tm[1] === 'arp' ? 'ARP' : 'packets as they arrive on a device'}, so a drop there is not applied in traces`,
            pos,
            'warning',
          ),
        );
      continue;
    }
    if (table === undefined) {
      issues.push(issue('nft-stray-line', `expected 'table FAMILY NAME {', got '${line}'`, pos));
      continue;
    }
    const cm = /^chain (\S+) \{$/.exec(line);
    if (cm) {
      chain = { table: table.name, family: table.family, name: cm[1]!, line: lineNo, rules: [] };
      chains.push(chain);
      continue;
    }
    if (
      /^(set|map|flowtable|ct helper|ct timeout|ct expectation|counter|quota|limit|secmark|synproxy) .*\{$/.test(line)
    ) {
      skipDepth = 1;
      continue;
    }
    if (line === '}') {
      if (chain) chain = undefined;
      else table = undefined;
      continue;
    }
    if (chain === undefined) {
      issues.push(issue('nft-stray-line', `expected 'chain NAME {' or a set, got '${line}'`, pos));
      continue;
    }
    const hm = /^type (\w+) hook (\w+)(?: device "?[^ ;"]*"?)? priority ([^;]+);(?: policy (accept|drop);)?$/.exec(
      line,
    );
    if (hm) {
      chain.type = hm[1]!;
      chain.hook = hm[2]!;
      const p = hm[3]!.trim();
      const pm = /^(\w+)(?: ([+-]) (\d+))?$/.exec(p);
      chain.priority =
        pm && PRIORITY_NAMES[pm[1]!] !== undefined
          ? PRIORITY_NAMES[pm[1]!]! + (pm[2] ? (pm[2] === '-' ? -1 : 1) * Number(pm[3]) : 0)
          : Number(p);
      if (hm[4]) chain.policy = hm[4] === 'drop' ? 'DROP' : 'ACCEPT';
      continue;
    }
    chain.rules.push({ text: line, line: lineNo });
  }

  // Which chains the IPv4 model evaluates: ip and inet filter chains; every base chain of a hook, in order.
  const evaluated = chains.filter((c) => c.family === 'ip' || c.family === 'inet');
  const qualified = (c: { table: string; name: string }): string => `${c.table}/${c.name}`;
  const builtin = new Map<string, NftChain[]>();
  const hooked = new Map<string, NftChain[]>();
  const natHooked = new Map<string, NftChain[]>();
  const mangleHooked = new Map<string, NftChain[]>();
  const rawHooked = new Map<string, NftChain[]>();
  const add = (byHook: Map<string, NftChain[]>, name: string, c: NftChain): void => {
    const list = byHook.get(name) ?? [];
    list.push(c);
    byHook.set(name, list);
  };
  for (const c of evaluated) {
    if (c.hook === undefined) continue;
    if (c.type === 'nat' && NAT_HOOK_CHAIN[c.hook] !== undefined) {
      add(natHooked, NAT_HOOK_CHAIN[c.hook]!, c);
      continue;
    }
    // Before conntrack (priority below -200, e.g. `priority raw`) on prerouting: iptables' raw table — notrack, drops.
    if (c.type === 'filter' && c.hook === 'prerouting' && (c.priority ?? 0) < CONNTRACK_PRIORITY) {
      add(rawHooked, 'PREROUTING', c);
      continue;
    }
    // What iptables' mangle table is (type filter on prerouting/postrouting, type route on output): marks, drops.
    const mangleHook = MANGLE_HOOK_CHAIN[`${c.type} ${c.hook}`];
    if (mangleHook !== undefined) {
      add(mangleHooked, mangleHook, c);
      continue;
    }
    const name = HOOK_CHAIN[c.hook];
    if (c.type !== 'filter' || name === undefined) {
      // Source NAT acts after the filter verdict; destination NAT (here or in a chain of the table) changes it.
      const rewritesDst = evaluated.some(
        (x) => x.table === c.table && x.rules.some((rl) => /\b(dnat|redirect|tproxy)\b/.test(rl.text)),
      );
      const harmless = c.type === 'nat' && !rewritesDst;
      if (c.rules.length > 0)
        issues.push(
          issue(
            'nft-chain-not-modelled',
            `chain ${qualified(c)} (type ${c.type} hook ${c.hook}, ${c.rules.length} rules) is not evaluated: ${harmless ? 'source NAT after the filter verdict changes no traced verdict' : c.type === 'nat' ? 'destination rewrites (dnat/redirect) are not applied in traces, so a probe they would redirect is traced to its original destination' : 'its marks, rewrites and drops are not applied in traces'}`,
            filePos(file, c.line),
            harmless ? 'info' : 'warning',
          ),
        );
      continue;
    }
    const list = hooked.get(name) ?? [];
    list.push(c);
    hooked.set(name, list);
  }
  // Every base chain of a hook runs, in priority order. The kernel inserts a chain before the first one already
  // registered with the same or a higher priority (nf_hook_entries_grow): of equal priorities, the chain created
  // later — listed later — runs first (verified with the real kernel in test/nft-base-chains.test.ts).
  const nameOf = new Map<NftChain, string>();
  for (const c of evaluated) nameOf.set(c, qualified(c));
  /**
   * The model's chains of one kind of base chain (filter on input/forward/output, nat on prerouting/output/
   * postrouting): per hook, every base chain in the kernel's order, then the regular chains of the tables they are in.
   */
  const tableOf = (byHook: ReadonlyMap<string, NftChain[]>, names: readonly string[], type: string): IptChain[] => {
    const builtin = new Map<string, NftChain[]>();
    // Every base chain of a hook runs, in priority order. The kernel inserts a chain before the first one already
    // registered with the same or a higher priority (nf_hook_entries_grow): of equal priorities, the chain created
    // later — listed later — runs first (verified with the real kernel in test/nft-base-chains.test.ts).
    for (const [name, list] of byHook) {
      const order = list.map((c, i) => ({ c, i }));
      order.sort((a, b) => (a.c.priority ?? 0) - (b.c.priority ?? 0) || b.i - a.i);
      builtin.set(
        name,
        order.map((x) => x.c),
      );
    }
    for (const [name, list] of builtin) nameOf.set(list[0]!, name);
    const out: IptChain[] = [];
    for (const builtinName of names) {
      const list = builtin.get(builtinName) ?? [];
      if (list.length === 0) {
        const origin: Origin = {
          kind: 'file',
          label: `no nft ${type} chain on hook ${builtinName.toLowerCase()}`,
          pos: filePos(file, 0),
        };
        out.push({ name: builtinName, builtin: true, policy: 'ACCEPT', policyOrigin: origin, rules: [], origin });
        continue;
      }
      for (const [k, c] of list.entries()) {
        const origin: Origin = {
          kind: 'file',
          label: `nft chain ${qualified(c)} (hook ${c.hook} priority ${c.priority ?? 0}${list.length > 1 ? `, base chain ${k + 1} of ${list.length} on the hook` : ''})`,
          pos: filePos(file, c.line),
        };
        const next = list[k + 1];
        out.push({
          name: nameOf.get(c)!,
          builtin: true,
          policy: c.policy ?? 'ACCEPT',
          policyOrigin: origin,
          rules: readRules(c),
          origin,
          nft: { chain: qualified(c) },
          ...(next ? { nextBaseChain: nameOf.get(next)! } : {}),
        });
      }
    }
    // Regular chains of the tables these base chains are in.
    const tables = new Set([...byHook.values()].flat().map((c) => c.table));
    for (const c of evaluated)
      if (c.hook === undefined && tables.has(c.table))
        out.push({
          name: nameOf.get(c)!,
          builtin: false,
          rules: readRules(c),
          origin: { kind: 'file', label: `nft chain ${qualified(c)}`, pos: filePos(file, c.line) },
          nft: { chain: qualified(c) },
        });
    return out;
  };
  /** How many IPv4 rules each chain read (IPv6-only rules of an inet chain are none). */
  const ipv4Rules = new Map<NftChain, number>();
  function readRules(c: NftChain): IptRule[] {
    const rules: IptRule[] = [];
    for (const rl of c.rules) {
      const pos = filePos(file, rl.line);
      const origin: Origin = { kind: 'file', label: `nft ${qualified(c)} rule`, pos };
      const notes: string[] = [];
      try {
        const read = rule(rl.text, origin, c.family, notes);
        if (read === 'other-family') continue;
        const out: IptRule[] = [];
        // A regular chain acts where it is jumped to from: its notrack is read (the base chain's place decides).
        const beforeConntrack =
          c.hook === undefined || (c.hook === 'prerouting' && (c.priority ?? 0) < CONNTRACK_PRIORITY);
        for (const r of read) {
          const t = r.target;
          if (t?.kind === 'notrack' && !beforeConntrack)
            throw new Unmodelled(
              `notrack in a chain on hook ${c.hook ?? 'none'} at priority ${c.priority ?? 'none'}`,
              'conntrack still tracks the packet in traces (NEW/ESTABLISHED/INVALID instead of UNTRACKED), so a later ct state match may decide otherwise',
            );
          if (t && (t.kind === 'jump' || t.kind === 'goto')) {
            const target = evaluated.find((x) => x.table === c.table && x.name === t.chain);
            if (target === undefined) throw new Unmodelled(`${t.kind} to ${t.chain}, a chain not in this table`);
            out.push({
              ...r,
              target: { kind: t.kind, chain: nameOf.get(target)! },
              nft: { chain: qualified(c), text: rl.text },
            });
          } else out.push({ ...r, nft: { chain: qualified(c), text: rl.text } });
        }
        appendAll(rules, out);
        for (const n of notes) issues.push(issue('nft-statement-not-applied', n, pos, 'info'));
        // A filter chain's mark (input/forward/output) is seen by the rules after it on that hook only.
        if (c.type === 'filter' && HOOK_CHAIN[c.hook ?? ''] !== undefined && out.some((r) => r.target?.kind === 'mark'))
          issues.push(
            issue(
              'nft-statement-not-applied',
              `the mark this rule sets (a filter chain on hook ${c.hook}) is seen by the rules after it on that hook; traces do not carry it on to later hooks (postrouting, an fwmark route)`,
              pos,
              'info',
            ),
          );
      } catch (e) {
        if (!(e instanceof Unmodelled)) throw e;
        issues.push(
          issue(
            'nft-rule-not-modelled',
            `'${e.message}' is not read; the rule is left out, so ${e.meaning ?? (/\b(drop|reject)\b/.test(rl.text) ? 'packets it drops pass in traces' : /\baccept\b/.test(rl.text) ? 'packets it accepts go on to the next rules in traces' : 'what it does is not applied in traces')}`,
            pos,
            'warning',
          ),
        );
      }
    }
    ipv4Rules.set(c, rules.length);
    return rules;
  }

  // The filter chains, then the nat and mangle chains (read after, so that a jump's target name is known in all).
  const filter = tableOf(hooked, ['INPUT', 'FORWARD', 'OUTPUT'], 'filter');
  const value: IptTable[] = [{ family: 'ipv4', name: 'filter', chains: filter }];
  if (natHooked.size > 0)
    value.push({
      family: 'ipv4',
      name: 'nat',
      chains: tableOf(natHooked, ['PREROUTING', 'OUTPUT', 'POSTROUTING'], 'nat'),
    });
  if (mangleHooked.size > 0)
    value.push({
      family: 'ipv4',
      name: 'mangle',
      chains: tableOf(mangleHooked, ['PREROUTING', 'OUTPUT', 'POSTROUTING'], 'mangle'),
    });
  if (rawHooked.size > 0)
    value.push({ family: 'ipv4', name: 'raw', chains: tableOf(rawHooked, ['PREROUTING'], 'raw') });
  // Traces run a hook's tables in a fixed order (mangle, nat, filter), which is the kernel's for the usual priorities;
  // a base chain registered out of that order is evaluated in the wrong place, said on its line.
  const byTable: Readonly<Record<string, ReadonlyMap<string, NftChain[]>>> = {
    mangle: mangleHooked,
    nat: natHooked,
    filter: hooked,
  };
  for (const [hook, slots] of Object.entries(TRACE_SLOT))
    for (const [k, [tableA, chainA]] of slots.entries())
      for (const [tableB, chainB] of slots.slice(k + 1))
        for (const a of byTable[tableA]!.get(chainA) ?? [])
          for (const b of byTable[tableB]!.get(chainB) ?? []) {
            // Only where both act on IPv4 (firewalld's filter_PREROUTING after its nat chains holds IPv6 rules only).
            if ((a.priority ?? 0) <= (b.priority ?? 0) || !ipv4Rules.get(a) || !ipv4Rules.get(b)) continue;
            issues.push(
              issue(
                'nft-chain-order',
                `chain ${qualified(a)} (hook ${hook} priority ${a.priority ?? 0}) runs after ${qualified(b)} (priority ${b.priority ?? 0}) in the kernel, but traces evaluate it before as ${tableA} ${chainA}: it sees the packet before what ${qualified(b)} does to it (a ${tableB} rewrite or verdict)`,
                filePos(file, a.line),
                'warning',
              ),
            );
          }
  if (chains.length === 0 && issues.length === 0)
    issues.push(issue('nft-empty', 'no table or chain found in the nft ruleset', filePos(file, 0)));
  issues.sort((a, b) => (a.pos?.line ?? 0) - (b.pos?.line ?? 0));
  return { value, issues };
}

/** Whether a text is `nft list ruleset` output rather than `iptables-save`. */
export function looksLikeNftRuleset(text: string): boolean {
  return /^\s*table (ip|ip6|inet|arp|bridge|netdev) \S+ \{\s*$/m.test(text);
}
