/**
 * Readers for `ip route show` (any table, including `ip route show table all`) and `ip rule show` text output.
 * IPv6 routes (which `table all` lists too) are skipped: the model is IPv4.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Ipv4Prefix, parseIpv4Prefix } from '../addr/prefix.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export type RouteType =
  | 'unicast'
  | 'local'
  | 'blackhole'
  | 'unreachable'
  | 'prohibit'
  | 'broadcast'
  | 'throw'
  | 'multicast'
  | 'anycast';

export interface RouteEntry {
  readonly dst: Ipv4Prefix;
  readonly via?: Ipv4;
  readonly dev?: string;
  readonly src?: Ipv4;
  readonly metric: number;
  readonly type: RouteType;
  /** The routing table, as `ip` names it: `main` (also when not printed), `local`, `default` or the number/name. */
  readonly table: string;
  /** `onlink`: the gateway is on the device's link whatever its subnet. */
  readonly onlink: boolean;
  /** `mtu N` (or `mtu lock N`): the path MTU of this route. */
  readonly mtu?: number;
  /** `advmss N`: the MSS TCP advertises to destinations of this route. */
  readonly advmss?: number;
  readonly pos: Position;
}

const TYPES = new Set<string>([
  'local',
  'blackhole',
  'unreachable',
  'prohibit',
  'broadcast',
  'unicast',
  'throw',
  'multicast',
  'anycast',
]);
/** Keywords followed by one value the model does not use. */
const SKIP_ONE = new Set(['proto', 'scope', 'realm', 'realms', 'expires', 'pref', 'weight', 'hoplimit']);
const SKIP_ONE_MORE = new Set([
  'rtt',
  'rttvar',
  'reordering',
  'window',
  'cwnd',
  'initcwnd',
  'initrwnd',
  'ssthresh',
  'quickack',
  'features',
  'congctl',
  'fastopen_no_cookie',
  'rto_min',
  'tos',
  'dsfield',
  'nhid',
  'error',
]);

/** The table a numeric id names, as `ip` prints it without /etc/iproute2/rt_tables. */
export function tableName(t: string): string {
  if (t === '255') return 'local';
  if (t === '254') return 'main';
  if (t === '253') return 'default';
  return t;
}

type MutRoute = { -readonly [K in keyof RouteEntry]: RouteEntry[K] };

export function readIpRoute(text: string, file: string): ReadResult<RouteEntry[]> {
  const issues: Issue[] = [];
  const routes: RouteEntry[] = [];
  /** The multipath route the following `nexthop` lines belong to (IPv4 only). */
  let multipath: { route: MutRoute; added: boolean } | undefined;
  let lastWasV6 = false;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (i === 0 && /[#$]\s*ip\b/.test(line)) return;
    const pos = filePos(file, i + 1);
    const words = line.split(/\s+/);
    if (words[0] === 'nexthop') {
      if (lastWasV6) return;
      if (!multipath) {
        issues.push(issue('ip-route.nexthop', 'expected a route before its "nexthop" line', pos));
        return;
      }
      if (multipath.added) {
        issues.push(
          issue(
            'ip-route.multipath',
            `multipath route ${formatDst(multipath.route.dst)}: only its first nexthop is modelled (the kernel hashes flows over all of them)`,
            pos,
            'warning',
          ),
        );
        multipath = undefined;
        return;
      }
      if (!readWords(words.slice(1), multipath.route, issues, pos)) return;
      routes.push(multipath.route);
      multipath.added = true;
      return;
    }
    multipath = undefined;
    let type: RouteType = 'unicast';
    if (TYPES.has(words[0]!)) type = words.shift() as RouteType;
    const dstWord = words.shift() ?? '';
    lastWasV6 = dstWord.includes(':');
    if (lastWasV6) return; // IPv6 (ip route show table all lists both families)
    const dst = dstWord === 'default' ? { addr: 0 as Ipv4, len: 0 } : parseIpv4Prefix(dstWord);
    if (!dst) {
      issues.push(
        issue('ip-route.dst', `expected "default" or a prefix at the start of the route, found "${dstWord}"`, pos),
      );
      return;
    }
    const r: MutRoute = { dst, metric: 0, type, table: 'main', onlink: false, pos };
    if (!readWords(words, r, issues, pos)) return;
    // A multipath route prints its gateways on the lines that follow; it has no `via`/`dev` of its own.
    if (r.via === undefined && r.dev === undefined && type === 'unicast') {
      multipath = { route: r, added: false };
      return;
    }
    routes.push(r);
  });
  return { value: routes, issues };
}

function formatDst(p: Ipv4Prefix): string {
  if (p.len === 0) return 'default';
  return `${[24, 16, 8, 0].map((s) => (p.addr >>> s) & 255).join('.')}/${p.len}`;
}

/** Reads the keyword/value words of a route (or of a `nexthop` line) into `r`; false after an error. */
function readWords(words: readonly string[], r: MutRoute, issues: Issue[], pos: Position): boolean {
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    const v = words[k + 1];
    if (w === 'via' || w === 'src') {
      // `via inet 192.0.2.1` is how newer iproute2 prints a gateway of another family's notation.
      const word = v === 'inet' ? words[++k + 1] : v;
      const a = parseIpv4(word ?? '');
      if (a === undefined) {
        issues.push(issue('ip-route.addr', `expected an IPv4 address after "${w}", found "${word ?? ''}"`, pos));
        return false;
      }
      if (w === 'via') r.via = a;
      else r.src = a;
      k++;
    } else if (w === 'dev') {
      if (v !== undefined) r.dev = v;
      k++;
    } else if (w === 'metric' || w === 'priority' || w === 'preference') {
      // ip prints the kernel's u32 in decimal: "1e3", "0x10" or 2^32 cannot come from it.
      const n = v !== undefined && /^(0|[1-9][0-9]{0,9})$/.test(v) ? Number(v) : Number.NaN;
      if (!(n <= 0xffffffff)) {
        issues.push(issue('ip-route.metric', `expected a number 0-4294967295 after "${w}", found "${v ?? ''}"`, pos));
        return false;
      }
      r.metric = n;
      k++;
    } else if (w === 'table') {
      if (v === undefined) {
        issues.push(issue('ip-route.table', 'expected a table name or number after "table"', pos));
        return false;
      }
      r.table = tableName(v);
      k++;
    } else if (w === 'mtu' || w === 'advmss') {
      // `mtu lock 1400`: the value follows `lock`.
      const word = v === 'lock' ? words[++k + 1] : v;
      const n = Number(word);
      const min = w === 'mtu' ? 68 : 1;
      if (!Number.isInteger(n) || n < min) {
        issues.push(
          issue(`ip-route.${w}`, `expected a number of at least ${min} after "${w}", found "${word ?? ''}"`, pos),
        );
        return false;
      }
      r[w] = n;
      k++;
    } else if (w === 'onlink') r.onlink = true;
    else if (SKIP_ONE.has(w) || SKIP_ONE_MORE.has(w)) {
      if (words[k + 1] === 'lock') k++;
      k++;
    }
    // flags such as `linkdown`, `dead`, `pervasive`, `offload` carry no value.
  }
  return true;
}

/** One line of `ip rule show`. */
export interface RuleEntry {
  readonly priority: number;
  readonly not: boolean;
  /** `from all` is absent. */
  readonly from?: Ipv4Prefix;
  readonly to?: Ipv4Prefix;
  readonly iif?: string;
  readonly oif?: string;
  readonly fwmark?: { readonly value: number; readonly mask: number };
  readonly action:
    | { readonly kind: 'lookup'; readonly table: string; readonly suppressPrefixLength?: number }
    | { readonly kind: 'blackhole' | 'unreachable' | 'prohibit' }
    | { readonly kind: 'goto'; readonly target: number }
    | { readonly kind: 'nop' };
  readonly pos: Position;
}

const RULE = /^(\d+):\s+(.*)$/;

export function readIpRule(text: string, file: string): ReadResult<RuleEntry[]> {
  const issues: Issue[] = [];
  const rules: RuleEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (i === 0 && /[#$]\s*ip\b/.test(line)) return;
    const pos = filePos(file, i + 1);
    const m = RULE.exec(line);
    if (!m) {
      issues.push(issue('ip-rule.syntax', `expected a rule like "32766:\tfrom all lookup main", found "${line}"`, pos));
      return;
    }
    const words = m[2]!.split(/\s+/);
    type Mut = { -readonly [K in keyof RuleEntry]?: RuleEntry[K] };
    const r: Mut = { priority: Number(m[1]), not: false, pos };
    let bad: string | undefined;
    const prefix = (w: string | undefined): Ipv4Prefix | undefined | 'v6' => {
      if (w === undefined) return undefined;
      if (w.includes(':')) return 'v6';
      return w.includes('/') ? parseIpv4Prefix(w) : parseIpv4Prefix(`${w}/32`);
    };
    let v6 = false;
    for (let k = 0; k < words.length && bad === undefined; k++) {
      const w = words[k]!;
      const v = words[k + 1];
      switch (w) {
        case 'not':
          r.not = true;
          break;
        case 'from':
        case 'to': {
          k++;
          if (v === 'all') break;
          const p = prefix(v);
          if (p === 'v6') v6 = true;
          else if (!p) bad = `expected an IPv4 prefix or "all" after "${w}", found "${v ?? ''}"`;
          else if (w === 'from') r.from = p;
          else r.to = p;
          break;
        }
        case 'iif':
        case 'oif':
          k++;
          if (v === undefined) bad = `expected an interface after "${w}"`;
          else if (w === 'iif') r.iif = v;
          else r.oif = v;
          break;
        case 'fwmark': {
          k++;
          const [val, mask] = (v ?? '').split('/');
          const value = Number(val);
          const mk = mask === undefined ? 0xffffffff : Number(mask);
          if (!Number.isInteger(value) || !Number.isInteger(mk))
            bad = `expected "fwmark MARK[/MASK]", found "${v ?? ''}"`;
          else r.fwmark = { value: value >>> 0, mask: mk >>> 0 };
          break;
        }
        case 'lookup':
        case 'table':
          k++;
          if (v === undefined) bad = `expected a table after "${w}"`;
          else r.action = { kind: 'lookup', table: tableName(v) };
          break;
        case 'suppress_prefixlength': {
          k++;
          const n = Number(v);
          if (r.action?.kind === 'lookup' && Number.isInteger(n)) r.action = { ...r.action, suppressPrefixLength: n };
          else bad = `expected a number after "suppress_prefixlength", found "${v ?? ''}"`;
          break;
        }
        case 'goto':
          k++;
          if (!Number.isInteger(Number(v))) bad = `expected a rule priority after "goto", found "${v ?? ''}"`;
          else r.action = { kind: 'goto', target: Number(v) };
          break;
        case 'blackhole':
        case 'unreachable':
        case 'prohibit':
          r.action = { kind: w };
          break;
        case 'nop':
          r.action = { kind: 'nop' };
          break;
        case 'tos':
        case 'dsfield':
        case 'realms':
        case 'uidrange':
        case 'ipproto':
        case 'sport':
        case 'dport':
        case 'l3mdev':
        case 'protocol':
        case 'proto':
        case 'suppress_ifgroup':
        case 'map-to':
        case 'nat':
          if (w !== 'l3mdev') k++;
          break;
        default:
          // flags such as `[detached]`, `unresolved`
          break;
      }
    }
    if (bad !== undefined) {
      issues.push(issue('ip-rule.syntax', bad, pos));
      return;
    }
    if (v6) return;
    r.action ??= { kind: 'nop' };
    rules.push(r as RuleEntry);
  });
  return { value: rules, issues };
}
