/**
 * keepalived.conf (keepalived 2.x, `keepalived.conf(5)`) read into the IPVS model: `virtual_server` (address+port,
 * `fwmark`, `group`), `virtual_server_group`, `real_server` with its health checkers (kept as data), the VRRP basics
 * of `vrrp_instance`, and the `global_defs` items that touch LVS. keepalived's defaults are applied exactly and each
 * one that changes the outcome is reported: no `protocol` → UDP ("no protocol set - defaulting to UDP"), no
 * `lb_kind`/`lvs_method` → NAT, no `lb_algo`/`lvs_sched` → wlc, `persistence_timeout` without a value → 360 s.
 *
 * Lexical rules (§4.1): one keyword per line with whitespace-separated arguments, `{`/`}` blocks, comments from `#`
 * or `!` to the end of the line, `"`/`'` quoted strings. `include` files, conditional lines (`@id`), parameter
 * substitution (`$NAME`) and `~SEQ`/`~LST` blocks are reported as unsupported with their line. Syntax errors
 * (unbalanced braces, missing or malformed arguments) are issues with line numbers; everything that is certain is
 * still read. Real servers are added in file order by keepalived, so the kernel list (the table's `kernel` order)
 * is the reverse of the file order.
 */
import { formatIpv4, type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { formatIpv6Groups, ipv6ToGroups, parseIpv6 } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Origin, type Position } from '../source/origin.ts';
import { flatString } from '../source/strings.ts';
import {
  type Forwarding,
  formatAddress,
  formatServiceKey,
  IPVS_DEFAULT_PERSISTENT_TIMEOUT,
  type IpAddress,
  type IpvsDestination,
  type IpvsProtocol,
  type IpvsService,
  type IpvsTable,
  MH_FALLBACK,
  MH_PORT,
  type Persistence,
  SCHED_FLAG_1,
  SCHED_FLAG_2,
  SCHED_FLAG_3,
  type ServiceKey,
  SH_FALLBACK,
  SH_PORT,
  type TunnelEncap,
} from './model.ts';

/** keepalived's `LVS_MAX_TIMEOUT` (31 days): the largest persistence_timeout it accepts. */
const LVS_MAX_TIMEOUT = 86400 * 31;

/** One keyword line with its arguments and, for blocks, the statements inside. */
export interface KeepalivedStatement {
  readonly keyword: string;
  readonly args: readonly string[];
  readonly line: number;
  readonly block?: readonly KeepalivedStatement[] | undefined;
}

export interface KeepalivedChecker {
  /** `HTTP_GET`, `SSL_GET`, `TCP_CHECK`, `SMTP_CHECK`, `DNS_CHECK`, `MISC_CHECK`, `BFD_CHECK`, `UDP_CHECK`, … */
  readonly type: string;
  readonly pos: Position;
  readonly connectIp?: string;
  readonly connectPort?: number;
  /** Seconds (checker, real server, virtual server, else 5). */
  readonly connectTimeout: number;
  readonly retry: number;
  readonly delayBeforeRetry: number;
  /** HTTP_GET / SSL_GET `url { path …; status_code …; digest … }` (status codes default 200-299). */
  readonly urls?: readonly { readonly path?: string; readonly statusCode: string; readonly digest?: string }[];
  /** MISC_CHECK `misc_path`. */
  readonly miscPath?: string;
  /** Every statement of the block, as written. */
  readonly settings: readonly KeepalivedStatement[];
}

export interface KeepalivedRealServer {
  readonly address: IpAddress;
  /** As written (absent when omitted). */
  readonly configuredPort?: number;
  readonly weight: number;
  readonly inhibitOnFailure: boolean;
  readonly checkers: readonly KeepalivedChecker[];
  readonly notifyUp?: string;
  readonly notifyDown?: string;
  readonly pos: Position;
}

export interface KeepalivedVirtualServer {
  /** How the header named it: `192.168.122.100 80`, `fwmark 10`, `group web`. */
  readonly name: string;
  readonly form: 'addr' | 'fwmark' | 'group';
  readonly scheduler: string;
  readonly forwarding: Forwarding;
  readonly protocol: IpvsProtocol;
  readonly persistence?: Persistence;
  /** Seconds between checks (default 60). */
  readonly delayLoop: number;
  readonly quorum: number;
  readonly hysteresis: number;
  readonly inhibitOnFailure: boolean;
  readonly sorryServer?: { readonly address: IpAddress; readonly port?: number };
  readonly realServers: readonly KeepalivedRealServer[];
  /** The IPVS services this virtual server programs (one per group entry for `group`). */
  readonly services: readonly IpvsService[];
  readonly pos: Position;
}

export interface KeepalivedVip {
  readonly address: IpAddress;
  readonly prefixLength?: number;
  readonly dev?: string;
  readonly text: string;
  readonly line: number;
}

export interface KeepalivedVrrpInstance {
  readonly name: string;
  /** Initial state; absent → keepalived starts in INIT and comes up as BACKUP. */
  readonly state?: 'MASTER' | 'BACKUP';
  readonly interface?: string;
  readonly virtualRouterId?: number;
  /** Default 100. */
  readonly priority: number;
  /** Seconds, default 1. */
  readonly advertInt: number;
  readonly virtualIpaddresses: readonly KeepalivedVip[];
  readonly useVmac: boolean;
  /** VMAC `00:00:5e:00:01:<vrid>` when `use_vmac` is set. */
  readonly vmac?: string;
  /**
   * `vmac_xmit_base`: VRRP adverts go out of (and are received on) the base interface, from its own MAC; the VMAC
   * still carries the VIPs, answers ARP for them and is the source of the gratuitous ARPs (checked with keepalived
   * 2.2.7 in the lab).
   */
  readonly vmacXmitBase?: boolean;
  readonly nopreempt: boolean;
  readonly unicastPeers: readonly string[];
  /** `vrrp_strict` (global) or `strict_mode` / `no_accept` on the instance. */
  readonly strict: boolean;
  /** Whether the VIPs accept traffic: explicit `accept`/`no_accept`, else (strict) only at priority 255. */
  readonly accept: boolean;
  readonly pos: Position;
}

export interface KeepalivedGlobals {
  readonly routerId?: string;
  readonly vrrpStrict: boolean;
  readonly lvsTimeouts?: { readonly tcp?: number; readonly tcpfin?: number; readonly udp?: number };
  readonly lvsSyncDaemon?: { readonly interface: string; readonly instance?: string };
}

export interface KeepalivedConfig {
  readonly globals: KeepalivedGlobals;
  readonly vrrpInstances: readonly KeepalivedVrrpInstance[];
  readonly virtualServers: readonly KeepalivedVirtualServer[];
  /** Every service of every virtual server, destinations in kernel order (newest first = last in the file). */
  readonly table: IpvsTable;
}

/** `lvs_schedulers[]` of check_parser.c. */
export const KEEPALIVED_SCHEDULERS: readonly string[] = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'sh',
  'mh',
  'dh',
  'fo',
  'ovf',
  'lblcr',
  'sed',
  'nq',
  'twos',
];

const TOP_LEVEL_IGNORED: ReadonlySet<string> = new Set([
  'static_ipaddress',
  'static_routes',
  'static_rules',
  'vrrp_script',
  'vrrp_sync_group',
  'vrrp_track_process',
  'track_file',
  'bfd_instance',
  'SSL',
  'linkbeat_interfaces',
  'garp_group',
  'net_namespace',
  'net_namespace_ipvs',
  'instance',
  'use_pid_dir',
]);

const CHECKERS: ReadonlySet<string> = new Set([
  'HTTP_GET',
  'SSL_GET',
  'TCP_CHECK',
  'SMTP_CHECK',
  'DNS_CHECK',
  'MISC_CHECK',
  'BFD_CHECK',
  'UDP_CHECK',
  'PING_CHECK',
  'FILE_CHECK',
]);

const VS_KEYWORDS: ReadonlySet<string> = new Set([
  'lvs_sched',
  'lb_algo',
  'lvs_method',
  'lb_kind',
  'persistence_timeout',
  'persistence_granularity',
  'persistence_engine',
  'protocol',
  'ops',
  'flag-1',
  'flag-2',
  'flag-3',
  'sh-port',
  'sh-fallback',
  'mh-port',
  'mh-fallback',
  'hashed',
  'ha_suspend',
  'delay_loop',
  'connect_timeout',
  'retry',
  'delay_before_retry',
  'warmup',
  'inhibit_on_failure',
  'alpha',
  'omega',
  'quorum',
  'hysteresis',
  'quorum_up',
  'quorum_down',
  'sorry_server',
  'sorry_server_inhibit',
  'sorry_server_lvs_method',
  'virtualhost',
  'smtp_alert',
  'snmp_name',
  'ip_family',
  'weight',
  'real_server',
  'retry',
  'nb_get_retry',
  'lb_kind',
  'syncid',
]);

const RS_KEYWORDS: ReadonlySet<string> = new Set([
  'weight',
  'lvs_method',
  'lb_kind',
  'uthreshold',
  'lthreshold',
  'inhibit_on_failure',
  'notify_up',
  'notify_down',
  'alpha',
  'connect_timeout',
  'retry',
  'nb_get_retry',
  'delay_before_retry',
  'warmup',
  'delay_loop',
  'smtp_alert',
  'virtualhost',
  'snmp_name',
]);

// ───────────────────────────── lexer and statement tree ─────────────────────────────

interface Token {
  readonly text: string;
  readonly line: number;
  /** `{` and `}` outside quotes. */
  readonly brace?: boolean;
}

/** Tokens seen often (keywords, small numbers) are kept once: a big configuration repeats them on every line. */
const TOKENS = new Map<string, string>();

function internToken(t: string): string {
  if (t.length > 24) return flatString(t);
  const seen = TOKENS.get(t);
  if (seen !== undefined) return seen;
  const flat = flatString(t);
  if (TOKENS.size < 4096) TOKENS.set(flat, flat);
  return flat;
}

/** Splits one line into tokens: quotes removed (inner spaces kept), comments dropped, braces separate. */
function tokenizeLine(line: string, lineNo: number): Token[] {
  const out: Token[] = [];
  let cur = '';
  let has = false;
  const flush = () => {
    // Flat: a token built a character at a time is a chain of cons strings, kept in the statement tree.
    if (has) out.push({ text: internToken(cur), line: lineNo });
    cur = '';
    has = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"' || c === "'") {
      const end = line.indexOf(c, i + 1);
      const stop = end < 0 ? line.length : end;
      cur += line.slice(i + 1, stop);
      has = true;
      i = stop;
      continue;
    }
    if (c === '#' || c === '!') break;
    if (c === ' ' || c === '\t' || c === '\r') {
      flush();
      continue;
    }
    if (c === '{' || c === '}') {
      flush();
      out.push({ text: c, line: lineNo, brace: true });
      continue;
    }
    cur += c;
    has = true;
  }
  flush();
  return out;
}

interface MutableStatement {
  keyword: string;
  args: string[];
  line: number;
  block?: MutableStatement[] | undefined;
}

/** Sizes a finished statement's arguments to their number (an array grown by push keeps room for 17). */
function sized(s: MutableStatement): void {
  s.args = s.args.slice();
}

/** Builds the statement tree; reports unbalanced braces and unsupported preprocessing constructs. */
export function parseKeepalivedStatements(text: string, file: string, issues: Issue[]): KeepalivedStatement[] {
  const root: MutableStatement[] = [];
  const stack: { list: MutableStatement[]; owner?: MutableStatement }[] = [{ list: root }];
  let last: MutableStatement | undefined; // the statement a following '{' opens
  let skipDepth = 0; // inside a block opened by a skipped conditional line
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const rawLine = lines[i]!;
    const trimmed = rawLine.trim();
    const pos = filePos(file, lineNo);
    if (skipDepth > 0 || /^@\^?\S/.test(trimmed)) {
      if (skipDepth === 0)
        issues.push(
          unsupported(
            'keepalived-conditional',
            `conditional configuration line ('${trimmed.split(/\s+/)[0]}') not read (with its block): the config-id is unknown offline`,
            pos,
          ),
        );
      for (const tok of tokenizeLine(rawLine, lineNo)) if (tok.brace) skipDepth += tok.text === '{' ? 1 : -1;
      if (skipDepth < 0) skipDepth = 0;
      continue;
    }
    if (/^\$[A-Za-z_][A-Za-z0-9_]*\s*=/.test(trimmed)) {
      issues.push(unsupported('keepalived-parameter', 'parameter definitions ($NAME=…) are not expanded', pos));
      continue;
    }
    if (/^~(SEQx?|LST)\b/.test(trimmed)) {
      issues.push(unsupported('keepalived-sequence', 'sequence and list blocks (~SEQ, ~LST) are not expanded', pos));
      continue;
    }
    const tokens = tokenizeLine(rawLine, lineNo);
    let stmt: MutableStatement | undefined;
    for (const tok of tokens) {
      if (tok.brace && tok.text === '{') {
        if (stmt !== undefined) sized(stmt);
        const owner = stmt ?? last;
        if (owner === undefined || owner.block !== undefined) {
          issues.push(issue('keepalived-syntax', "'{' without a keyword before it", pos));
          const dummy: MutableStatement = { keyword: '{', args: [], line: lineNo, block: [] };
          stack.push({ list: dummy.block!, owner: dummy });
        } else {
          owner.block = [];
          stack.push({ list: owner.block, owner });
        }
        stmt = undefined;
        last = undefined;
        continue;
      }
      if (tok.brace && tok.text === '}') {
        if (stmt !== undefined) sized(stmt);
        if (stack.length === 1) issues.push(issue('keepalived-syntax', "'}' closes no block", pos));
        else {
          const closed = stack.pop()!.owner!;
          closed.block = closed.block!.slice();
        }
        stmt = undefined;
        last = undefined;
        continue;
      }
      if (tok.text.startsWith('$') && /^\$\{?[A-Za-z_]/.test(tok.text))
        issues.push(unsupported('keepalived-parameter', `parameter reference '${tok.text}' is not expanded`, pos));
      if (stmt === undefined) {
        // `block` is there from the start (one hidden class for every statement, no property array added later).
        stmt = { keyword: tok.text, args: [], line: lineNo, block: undefined };
        stack[stack.length - 1]!.list.push(stmt);
      } else stmt.args.push(tok.text);
    }
    if (stmt !== undefined) {
      sized(stmt);
      last = stmt;
    } else if (tokens.length > 0) last = undefined;
  }
  for (let k = stack.length - 1; k >= 1; k--) {
    const owner = stack[k]!.owner!;
    issues.push(
      issue(
        'keepalived-unclosed-block',
        `'${owner.keyword}' block opened here is never closed (missing '}')`,
        filePos(file, owner.line),
      ),
    );
  }
  return root;
}

// ───────────────────────────── interpretation ─────────────────────────────

class Ctx {
  constructor(
    readonly file: string,
    readonly issues: Issue[],
  ) {}
  pos(line: number): Position {
    return filePos(this.file, line);
  }
  error(code: string, message: string, line: number): void {
    this.issues.push(issue(code, message, this.pos(line)));
  }
  warn(code: string, message: string, line: number): void {
    this.issues.push(issue(code, message, this.pos(line), 'warning'));
  }
  info(code: string, message: string, line: number): void {
    this.issues.push(issue(code, message, this.pos(line), 'info'));
  }
  unsupported(code: string, message: string, line: number): void {
    this.issues.push(unsupported(code, message, this.pos(line)));
  }
}

function parseAddress(text: string): IpAddress | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 'ipv4', addr: v4 };
  const v6 = parseIpv6(text);
  if (v6 !== undefined) return { family: 'ipv6', addr: v6 };
  return undefined;
}

function parseUint(text: string | undefined, max = 0x7fffffff): number | undefined {
  if (text === undefined || !/^(0|[1-9][0-9]*)$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

function parseTimer(text: string | undefined): number | undefined {
  if (text === undefined || !/^[0-9]+(\.[0-9]+)?$/.test(text)) return undefined;
  return Number(text);
}

const TRUE_WORDS = new Set(['on', 'true', 'yes']);
const FALSE_WORDS = new Set(['off', 'false', 'no']);

/** A flag keyword with an optional `<BOOL>` argument. */
function flagValue(s: KeepalivedStatement, ctx: Ctx): boolean {
  const a = s.args[0];
  if (a === undefined) return true;
  if (TRUE_WORDS.has(a.toLowerCase())) return true;
  if (FALSE_WORDS.has(a.toLowerCase())) return false;
  ctx.error('keepalived-bad-value', `'${s.keyword}' takes on|off|true|false|yes|no, not '${a}'`, s.line);
  return true;
}

function needArgs(s: KeepalivedStatement, n: number, what: string, ctx: Ctx): boolean {
  if (s.args.length >= n) return true;
  ctx.error('keepalived-missing-argument', `'${s.keyword}' needs ${what}`, s.line);
  return false;
}

/** `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` (case-sensitive). */
function parseMethod(s: KeepalivedStatement, ctx: Ctx): Forwarding | undefined {
  if (!needArgs(s, 1, 'NAT, DR or TUN', ctx)) return undefined;
  const m = s.args[0]!;
  if (m === 'NAT') return { kind: 'masq' };
  if (m === 'DR') return { kind: 'route' };
  if (m !== 'TUN') {
    ctx.error(
      'keepalived-bad-method',
      `unknown forwarding method '${m}' (keepalived accepts NAT, DR or TUN, case-sensitive)`,
      s.line,
    );
    return undefined;
  }
  const rest = s.args.slice(1);
  if (rest.length === 0) return { kind: 'tunnel', encap: { type: 'ipip' } };
  if (rest[0] !== 'type') {
    ctx.error('keepalived-bad-method', `expected 'TUN type ipip|gue|gre …', got '${s.args.join(' ')}'`, s.line);
    return { kind: 'tunnel', encap: { type: 'ipip' } };
  }
  const type = rest[1];
  const csumWord = rest.find((w) => w === 'nocsum' || w === 'csum' || w === 'remcsum') as
    | 'nocsum'
    | 'csum'
    | 'remcsum'
    | undefined;
  let encap: TunnelEncap;
  if (type === 'ipip') {
    if (csumWord) ctx.error('keepalived-bad-method', 'ipip tunnels take no checksum option', s.line);
    encap = { type: 'ipip' };
  } else if (type === 'gue') {
    const pi = rest.indexOf('port');
    const port = pi < 0 ? undefined : parseUint(rest[pi + 1], 65535);
    if (port === undefined || port === 0) {
      ctx.error('keepalived-bad-method', "GUE tunnels need 'port <1..65535>'", s.line);
      return undefined;
    }
    encap = { type: 'gue', port, csum: csumWord ?? 'nocsum' };
  } else if (type === 'gre') {
    if (csumWord === 'remcsum') ctx.error('keepalived-bad-method', 'GRE tunnels do not support remcsum', s.line);
    encap = { type: 'gre', csum: csumWord === 'csum' ? 'csum' : 'nocsum' };
  } else {
    ctx.error('keepalived-bad-method', `unknown tunnel type '${type ?? ''}' (ipip, gue or gre)`, s.line);
    return undefined;
  }
  return { kind: 'tunnel', encap };
}

interface GroupEntry {
  readonly key: ServiceKey | { readonly kind: 'addr-pending'; readonly address: IpAddress; readonly port: number };
  readonly line: number;
}

/** Expands `a.b.c.d-e`, `a.b.c.d-w.x.y.z`, `a.b.c.d/len` and IPv6 `…:x-y` into addresses (at most 65536). */
function expandRange(text: string): IpAddress[] | string {
  const single = parseAddress(text);
  if (single) return [single];
  const slash = text.indexOf('/');
  if (slash > 0) {
    const base = parseIpv4(text.slice(0, slash));
    const len = parseUint(text.slice(slash + 1), 32);
    if (base === undefined || len === undefined) return `'${text}' is not an address range`;
    const size = 2 ** (32 - len);
    if (size > 65536) return `range '${text}' is too large`;
    const start = (base & (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0)) >>> 0;
    return Array.from({ length: size }, (_, i) => ({ family: 'ipv4' as const, addr: ((start + i) >>> 0) as Ipv4 }));
  }
  const dash = text.lastIndexOf('-');
  if (dash > 0) {
    const left = text.slice(0, dash);
    const right = text.slice(dash + 1);
    const a4 = parseIpv4(left);
    if (a4 !== undefined) {
      const full = parseIpv4(right);
      const last =
        full ?? (parseUint(right, 255) !== undefined ? ((a4 & 0xffffff00) | Number(right)) >>> 0 : undefined);
      if (last === undefined || last < a4) return `'${text}' is not an address range`;
      if (last - a4 >= 65536) return `range '${text}' is too large`;
      return Array.from({ length: last - a4 + 1 }, (_, i) => ({
        family: 'ipv4' as const,
        addr: ((a4 + i) >>> 0) as Ipv4,
      }));
    }
    const a6 = parseIpv6(left);
    if (a6 !== undefined && /^[0-9A-Fa-f]{1,4}$/.test(right)) {
      const g = ipv6ToGroups(a6);
      const end = Number.parseInt(right, 16);
      if (end < g[7]!) return `'${text}' is not an address range`;
      const out: IpAddress[] = [];
      for (let x = g[7]!; x <= end; x++) out.push({ family: 'ipv6', addr: formatIpv6Groups([...g.slice(0, 7), x]) });
      return out;
    }
  }
  return `'${text}' is not an address, range (a.b.c.d-e, a.b.c.d-w.x.y.z, a.b.c.d/len) or fwmark entry`;
}

function readGroup(s: KeepalivedStatement, ctx: Ctx): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const e of s.block ?? []) {
    if (e.keyword === 'fwmark') {
      const mark = parseUint(e.args[0], 0xffffffff);
      if (mark === undefined) {
        ctx.error('keepalived-bad-value', `'fwmark' needs a mark number, got '${e.args[0] ?? ''}'`, e.line);
        continue;
      }
      const family = e.args[1] === 'inet6' ? 'ipv6' : 'ipv4';
      out.push({ key: { kind: 'fwmark', fwmark: mark, family }, line: e.line });
      continue;
    }
    const r = expandRange(e.keyword);
    if (typeof r === 'string') {
      ctx.error('keepalived-bad-group-entry', r, e.line);
      continue;
    }
    const port = e.args[0] === undefined ? 0 : parseUint(e.args[0], 65535);
    if (port === undefined) {
      ctx.error('keepalived-bad-value', `'${e.args[0]}' is not a port`, e.line);
      continue;
    }
    if (out.length + r.length > MAX_GROUP_ENTRIES) {
      ctx.error(
        'keepalived-group-too-large',
        `virtual_server_group '${s.args[0] ?? ''}' expands to more than ${MAX_GROUP_ENTRIES} addresses (lines after this one are not read)`,
        e.line,
      );
      break;
    }
    for (const a of r) out.push({ key: { kind: 'addr-pending', address: a, port }, line: e.line });
  }
  return out;
}

/** Most services one virtual_server_group may expand to (ranges included): bounds memory, far above real use. */
const MAX_GROUP_ENTRIES = 65536;

interface VsSettings {
  scheduler?: string;
  schedLine?: number;
  method?: Forwarding;
  protocol?: IpvsProtocol;
  protocolLine?: number;
  timeout?: number;
  granularity?: number;
  granularityText?: string;
  pe?: string;
  persistLine?: number;
  ops: boolean;
  schedFlags: number;
  delayLoop: number;
  connectTimeout?: number | undefined;
  retry?: number | undefined;
  delayBeforeRetry?: number | undefined;
  inhibit: boolean;
  quorum: number;
  hysteresis: number;
  weight?: number;
  family?: 'ipv4' | 'ipv6';
  sorry?: { address: IpAddress; port?: number };
  realServers: KeepalivedStatement[];
}

function readVsSettings(s: KeepalivedStatement, ctx: Ctx): VsSettings {
  const v: VsSettings = {
    ops: false,
    schedFlags: 0,
    delayLoop: 60,
    inhibit: false,
    quorum: 1,
    hysteresis: 0,
    realServers: [],
  };
  for (const k of s.block ?? []) {
    switch (k.keyword) {
      case 'lvs_sched':
      case 'lb_algo':
        if (!needArgs(k, 1, 'a scheduler name', ctx)) break;
        if (!KEEPALIVED_SCHEDULERS.includes(k.args[0]!))
          ctx.error(
            'keepalived-unknown-scheduler',
            `unknown scheduler '${k.args[0]}' (keepalived accepts ${KEEPALIVED_SCHEDULERS.join(', ')}); the default wlc applies`,
            k.line,
          );
        else {
          v.scheduler = k.args[0]!;
          v.schedLine = k.line;
        }
        break;
      case 'lvs_method':
      case 'lb_kind': {
        const m = parseMethod(k, ctx);
        if (m) v.method = m;
        break;
      }
      case 'protocol': {
        if (!needArgs(k, 1, 'TCP, UDP or SCTP', ctx)) break;
        const p = k.args[0]!.toUpperCase();
        if (p === 'TCP' || p === 'UDP' || p === 'SCTP') {
          v.protocol = p;
          v.protocolLine = k.line;
        } else ctx.error('keepalived-bad-value', `unknown protocol '${k.args[0]}' (TCP, UDP or SCTP)`, k.line);
        break;
      }
      case 'persistence_timeout': {
        const t = k.args[0] === undefined ? IPVS_DEFAULT_PERSISTENT_TIMEOUT : parseUint(k.args[0]);
        if (t === undefined || t === 0 || t > LVS_MAX_TIMEOUT)
          // check_parser.c pto_handler: "persistence_timeout invalid" is logged, the keyword ignored, the service
          // programmed without persistence.
          ctx.warn(
            'keepalived-bad-value',
            `persistence_timeout invalid: '${k.args[0]}' (1..${LVS_MAX_TIMEOUT}); keepalived logs this, ignores the keyword and programs the service without persistence`,
            k.line,
          );
        else {
          v.timeout = t;
          v.persistLine = k.line;
        }
        break;
      }
      case 'persistence_granularity': {
        if (!needArgs(k, 1, 'a netmask or prefix length', ctx)) break;
        const m4 = parseIpv4(k.args[0]!);
        const len = parseUint(k.args[0], 128);
        if (m4 !== undefined) v.granularity = m4;
        else if (len !== undefined && len >= 1) v.granularity = len;
        else {
          ctx.error('keepalived-bad-value', `bad persistence_granularity '${k.args[0]}'`, k.line);
          break;
        }
        v.granularityText = k.args[0]!;
        v.persistLine ??= k.line;
        break;
      }
      case 'persistence_engine':
        if (needArgs(k, 1, 'an engine name (sip)', ctx)) v.pe = k.args[0]!;
        break;
      case 'ops':
        v.ops = flagValue(k, ctx);
        break;
      case 'flag-1':
      case 'flag-2':
      case 'flag-3':
      case 'sh-port':
      case 'sh-fallback':
      case 'mh-port':
      case 'mh-fallback': {
        const prefix = k.keyword.slice(0, 3);
        if ((prefix === 'sh-' || prefix === 'mh-') && v.scheduler !== prefix.slice(0, 2)) {
          ctx.error(
            'keepalived-bad-sched-flag',
            `'${k.keyword}' needs 'lvs_sched ${prefix.slice(0, 2)}' set before it (keyword order matters)`,
            k.line,
          );
          break;
        }
        const bit =
          k.keyword === 'sh-fallback' || k.keyword === 'mh-fallback' || k.keyword === 'flag-1'
            ? SCHED_FLAG_1
            : k.keyword === 'sh-port' || k.keyword === 'mh-port' || k.keyword === 'flag-2'
              ? SCHED_FLAG_2
              : SCHED_FLAG_3;
        v.schedFlags |= bit;
        break;
      }
      case 'delay_loop': {
        const t = parseTimer(k.args[0]);
        if (t === undefined) ctx.error('keepalived-bad-value', `bad delay_loop '${k.args[0] ?? ''}'`, k.line);
        else v.delayLoop = t;
        break;
      }
      case 'connect_timeout':
        v.connectTimeout = parseTimer(k.args[0]) ?? v.connectTimeout;
        break;
      case 'retry':
      case 'nb_get_retry':
        v.retry = parseUint(k.args[0]) ?? v.retry;
        break;
      case 'delay_before_retry':
        v.delayBeforeRetry = parseTimer(k.args[0]) ?? v.delayBeforeRetry;
        break;
      case 'inhibit_on_failure':
        v.inhibit = flagValue(k, ctx);
        break;
      case 'quorum':
        v.quorum = parseUint(k.args[0]) ?? v.quorum;
        break;
      case 'hysteresis':
        v.hysteresis = parseUint(k.args[0]) ?? v.hysteresis;
        break;
      case 'weight': {
        const w = parseUint(k.args[0]);
        if (w === undefined) ctx.error('keepalived-bad-value', `bad weight '${k.args[0] ?? ''}'`, k.line);
        else v.weight = w;
        break;
      }
      case 'ip_family':
        if (k.args[0] === 'inet') v.family = 'ipv4';
        else if (k.args[0] === 'inet6') v.family = 'ipv6';
        else ctx.error('keepalived-bad-value', `ip_family must be inet or inet6, not '${k.args[0] ?? ''}'`, k.line);
        break;
      case 'sorry_server': {
        const a = k.args[0] === undefined ? undefined : parseAddress(k.args[0]);
        const p = k.args[1] === undefined ? undefined : parseUint(k.args[1], 65535);
        if (a === undefined || (k.args[1] !== undefined && p === undefined))
          ctx.error('keepalived-bad-value', `expected 'sorry_server <IPADDR> [<PORT>]'`, k.line);
        else v.sorry = p === undefined ? { address: a } : { address: a, port: p };
        break;
      }
      case 'real_server':
        v.realServers.push(k);
        break;
      default:
        if (!VS_KEYWORDS.has(k.keyword))
          ctx.warn('keepalived-unknown-keyword', `unknown keyword '${k.keyword}' in virtual_server (ignored)`, k.line);
    }
  }
  return v;
}

function readChecker(
  c: KeepalivedStatement,
  inherit: { connectTimeout?: number; retry?: number; delayBeforeRetry?: number; delayLoop: number },
  ctx: Ctx,
): KeepalivedChecker {
  const settings = c.block ?? [];
  const get = (kw: string) => settings.find((x) => x.keyword === kw);
  const connectPort = get('connect_port');
  const port = connectPort ? parseUint(connectPort.args[0], 65535) : undefined;
  if (connectPort && port === undefined)
    ctx.error('keepalived-bad-value', `bad connect_port '${connectPort.args[0] ?? ''}'`, connectPort.line);
  const defRetry = c.keyword === 'MISC_CHECK' ? 0 : c.keyword === 'DNS_CHECK' ? 3 : 1;
  const defDelay =
    c.keyword === 'HTTP_GET' || c.keyword === 'SSL_GET' ? 3 : c.keyword === 'DNS_CHECK' ? inherit.delayLoop : 1;
  const retry = parseUint((get('retry') ?? get('nb_get_retry'))?.args[0]) ?? inherit.retry ?? defRetry;
  const connectIp = get('connect_ip')?.args[0];
  const miscPath = get('misc_path')?.args.join(' ');
  const urls =
    c.keyword === 'HTTP_GET' || c.keyword === 'SSL_GET'
      ? settings
          .filter((x) => x.keyword === 'url')
          .map((u) => {
            const f = (kw: string) => u.block?.find((x) => x.keyword === kw)?.args.join(' ');
            const path = f('path');
            const digest = f('digest');
            return {
              ...(path !== undefined ? { path } : {}),
              statusCode: f('status_code') ?? '200-299',
              ...(digest !== undefined ? { digest } : {}),
            };
          })
      : undefined;
  if (c.keyword === 'MISC_CHECK' && miscPath === undefined)
    ctx.error('keepalived-missing-argument', 'MISC_CHECK needs misc_path', c.line);
  return {
    type: c.keyword,
    pos: ctx.pos(c.line),
    ...(connectIp !== undefined ? { connectIp } : {}),
    ...(port !== undefined ? { connectPort: port } : {}),
    connectTimeout: parseTimer(get('connect_timeout')?.args[0]) ?? inherit.connectTimeout ?? 5,
    retry,
    delayBeforeRetry: parseTimer(get('delay_before_retry')?.args[0]) ?? inherit.delayBeforeRetry ?? defDelay,
    ...(urls !== undefined ? { urls } : {}),
    ...(miscPath !== undefined ? { miscPath } : {}),
    settings,
  };
}

interface RsRead {
  rs: KeepalivedRealServer;
  method?: Forwarding;
  upper?: number;
  lower?: number;
}

function readRealServer(s: KeepalivedStatement, vs: VsSettings, ctx: Ctx): RsRead | undefined {
  const a = s.args[0] === undefined ? undefined : parseAddress(s.args[0]);
  if (a === undefined) {
    ctx.error(
      'keepalived-bad-real-server',
      `expected 'real_server <IPADDR> [<PORT>] {', got '${[s.keyword, ...s.args].join(' ')}'`,
      s.line,
    );
    return undefined;
  }
  const port = s.args[1] === undefined ? undefined : parseUint(s.args[1], 65535);
  if (s.args[1] !== undefined && port === undefined) {
    ctx.error('keepalived-bad-real-server', `'${s.args[1]}' is not a port`, s.line);
    return undefined;
  }
  if (s.block === undefined) ctx.warn('keepalived-missing-block', "'real_server' without a '{ … }' block", s.line);
  let weight = vs.weight ?? 1;
  let inhibit = vs.inhibit;
  let method: Forwarding | undefined;
  let upper: number | undefined;
  let lower: number | undefined;
  let connectTimeout = vs.connectTimeout;
  let retry = vs.retry;
  let delayBeforeRetry = vs.delayBeforeRetry;
  let notifyUp: string | undefined;
  let notifyDown: string | undefined;
  const checkerStatements: KeepalivedStatement[] = [];
  for (const k of s.block ?? []) {
    if (CHECKERS.has(k.keyword)) {
      checkerStatements.push(k);
      continue;
    }
    switch (k.keyword) {
      case 'weight': {
        const w = parseUint(k.args[0]);
        if (w === undefined) ctx.error('keepalived-bad-value', `bad weight '${k.args[0] ?? ''}'`, k.line);
        else weight = w;
        break;
      }
      case 'lvs_method':
      case 'lb_kind':
        method = parseMethod(k, ctx) ?? method;
        break;
      case 'uthreshold':
        upper = parseUint(k.args[0]);
        if (upper === undefined) ctx.error('keepalived-bad-value', `bad uthreshold '${k.args[0] ?? ''}'`, k.line);
        break;
      case 'lthreshold':
        lower = parseUint(k.args[0]);
        if (lower === undefined) ctx.error('keepalived-bad-value', `bad lthreshold '${k.args[0] ?? ''}'`, k.line);
        break;
      case 'inhibit_on_failure':
        inhibit = flagValue(k, ctx);
        break;
      case 'connect_timeout':
        connectTimeout = parseTimer(k.args[0]) ?? connectTimeout;
        break;
      case 'retry':
      case 'nb_get_retry':
        retry = parseUint(k.args[0]) ?? retry;
        break;
      case 'delay_before_retry':
        delayBeforeRetry = parseTimer(k.args[0]) ?? delayBeforeRetry;
        break;
      case 'notify_up':
        notifyUp = k.args.join(' ');
        break;
      case 'notify_down':
        notifyDown = k.args.join(' ');
        break;
      default:
        if (!RS_KEYWORDS.has(k.keyword))
          ctx.warn('keepalived-unknown-keyword', `unknown keyword '${k.keyword}' in real_server (ignored)`, k.line);
    }
  }
  const inherit = {
    ...(connectTimeout !== undefined ? { connectTimeout } : {}),
    ...(retry !== undefined ? { retry } : {}),
    ...(delayBeforeRetry !== undefined ? { delayBeforeRetry } : {}),
    delayLoop: vs.delayLoop,
  };
  const checkers = checkerStatements.map((c) => readChecker(c, inherit, ctx));
  const rs: KeepalivedRealServer = {
    address: a,
    ...(port !== undefined ? { configuredPort: port } : {}),
    weight,
    inhibitOnFailure: inhibit,
    checkers,
    ...(notifyUp !== undefined ? { notifyUp } : {}),
    ...(notifyDown !== undefined ? { notifyDown } : {}),
    pos: ctx.pos(s.line),
  };
  return {
    rs,
    ...(method ? { method } : {}),
    ...(upper !== undefined ? { upper } : {}),
    ...(lower !== undefined ? { lower } : {}),
  };
}

function readVirtualServer(
  s: KeepalivedStatement,
  groups: ReadonlyMap<string, GroupEntry[]>,
  ctx: Ctx,
): KeepalivedVirtualServer | undefined {
  const header = [s.keyword, ...s.args].join(' ');
  if (s.block === undefined) {
    ctx.error('keepalived-missing-block', `'${header}' has no '{ … }' block`, s.line);
    return undefined;
  }
  const v = readVsSettings(s, ctx);
  let form: 'addr' | 'fwmark' | 'group';
  let entries: GroupEntry[];
  if (s.args[0] === 'fwmark') {
    form = 'fwmark';
    const mark = parseUint(s.args[1], 0xffffffff);
    if (mark === undefined) {
      ctx.error('keepalived-bad-virtual-server', `expected 'virtual_server fwmark <INTEGER>', got '${header}'`, s.line);
      return undefined;
    }
    entries = [{ key: { kind: 'fwmark', fwmark: mark, family: 'ipv4' }, line: s.line }];
  } else if (s.args[0] === 'group') {
    form = 'group';
    const g = s.args[1] === undefined ? undefined : groups.get(s.args[1]);
    if (g === undefined) {
      ctx.error(
        'keepalived-unknown-group',
        `virtual_server_group '${s.args[1] ?? ''}' is not defined (before or after this virtual_server)`,
        s.line,
      );
      return undefined;
    }
    entries = g;
  } else {
    form = 'addr';
    const a = s.args[0] === undefined ? undefined : parseAddress(s.args[0]);
    const port = s.args[1] === undefined ? 0 : parseUint(s.args[1], 65535);
    if (a === undefined || port === undefined || s.args.length > 2) {
      ctx.error(
        'keepalived-bad-virtual-server',
        `expected 'virtual_server <IPADDR> [<PORT>]', 'virtual_server fwmark <INTEGER>' or 'virtual_server group <NAME>', got '${header}'`,
        s.line,
      );
      return undefined;
    }
    entries = [{ key: { kind: 'addr-pending', address: a, port }, line: s.line }];
  }

  // keepalived's defaults, each reported where it changes what IPVS gets.
  const hasAddr = entries.some((e) => e.key.kind === 'addr-pending');
  let protocol = v.protocol;
  if (protocol === undefined) {
    protocol = 'UDP';
    if (hasAddr)
      ctx.warn(
        'keepalived-default-protocol',
        `no protocol set - defaulting to UDP (keepalived): '${header}' becomes a UDP service; add 'protocol TCP' for TCP`,
        s.line,
      );
  } else if (!hasAddr && v.protocolLine !== undefined)
    ctx.info('keepalived-fwmark-protocol', "'protocol' is ignored for fwmark services", v.protocolLine);
  const scheduler = v.scheduler ?? 'wlc';
  const schedGiven = (s.block ?? []).some((k) => k.keyword === 'lvs_sched' || k.keyword === 'lb_algo');
  if (v.scheduler === undefined && !schedGiven)
    ctx.warn('keepalived-default-scheduler', `no lvs_sched/lb_algo in '${header}': keepalived uses wlc`, s.line);
  const anyRsMethod = v.realServers.some((r) =>
    r.block?.some((k) => k.keyword === 'lvs_method' || k.keyword === 'lb_kind'),
  );
  if (
    v.method === undefined &&
    !(
      anyRsMethod &&
      v.realServers.every((r) => r.block?.some((k) => k.keyword === 'lvs_method' || k.keyword === 'lb_kind'))
    )
  )
    ctx.warn(
      'keepalived-default-method',
      `no lvs_method/lb_kind in '${header}': keepalived programs the real servers as NAT (Masq)`,
      s.line,
    );
  const vsMethod: Forwarding = v.method ?? { kind: 'masq' };

  let timeout = v.timeout;
  if (timeout === undefined && v.granularity !== undefined) timeout = IPVS_DEFAULT_PERSISTENT_TIMEOUT;
  if (timeout === undefined && form === 'addr' && (entries[0]!.key as { port: number }).port === 0) {
    ctx.warn(
      'keepalived-zero-port',
      'zero port only valid for persistent services - setting persistence_timeout 360 (keepalived)',
      s.line,
    );
    timeout = IPVS_DEFAULT_PERSISTENT_TIMEOUT;
  }
  let ops = v.ops;
  if (ops && hasAddr && protocol !== 'UDP') {
    ctx.warn('keepalived-ops', "'ops' is only valid for UDP services; keepalived resets it", s.line);
    ops = false;
  }

  const rsReads = v.realServers.map((r) => readRealServer(r, v, ctx)).filter((r): r is RsRead => r !== undefined);
  const rsFamily = rsReads[0]?.rs.address.family;
  const warnedPort = new Set<KeepalivedRealServer>();
  const origin: Origin = { kind: 'file', label: flatString(`keepalived ${header}`), pos: ctx.pos(s.line) };
  const services: IpvsService[] = [];
  for (const e of entries) {
    const key: ServiceKey =
      e.key.kind === 'addr-pending'
        ? { kind: 'addr', protocol, address: e.key.address, port: e.key.port }
        : e.key.kind === 'fwmark' && form === 'fwmark'
          ? { ...e.key, family: v.family ?? rsFamily ?? 'ipv4' }
          : e.key;
    const v6 = (key.kind === 'fwmark' ? key.family : key.address.family) === 'ipv6';
    let persistence: Persistence | undefined;
    if (timeout !== undefined) {
      let netmask = v6 ? 128 : 0xffffffff;
      if (v.granularity !== undefined) {
        const isDotted = v.granularityText!.includes('.');
        if (v6 === isDotted)
          ctx.error(
            'keepalived-bad-value',
            `persistence_granularity '${v.granularityText}' does not fit an ${v6 ? 'IPv6' : 'IPv4'} service`,
            v.persistLine ?? s.line,
          );
        else netmask = v.granularity;
      }
      persistence = v.pe === undefined ? { timeout, netmask } : { timeout, netmask, pe: v.pe };
    }
    const svcOrigin: Origin =
      form === 'group'
        ? { kind: 'file', label: flatString(`keepalived ${header} entry`), pos: ctx.pos(e.line), via: origin }
        : origin;
    const svcPort = key.kind === 'addr' ? key.port : 0;
    const dests: IpvsDestination[] = [];
    for (const r of rsReads) {
      const f = r.method ?? vsMethod;
      // DR/TUN: keepalived programs the virtual server's port (0 for fwmark); NAT: the configured port or 0.
      const port = f.kind === 'masq' ? (r.rs.configuredPort ?? 0) : svcPort;
      if (
        f.kind !== 'masq' &&
        r.rs.configuredPort !== undefined &&
        key.kind === 'addr' &&
        r.rs.configuredPort !== svcPort &&
        !warnedPort.has(r.rs)
      ) {
        warnedPort.add(r.rs);
        ctx.warn(
          'keepalived-port-ignored',
          `${f.kind === 'route' ? 'DR' : 'TUN'} cannot remap ports: real server port ${r.rs.configuredPort} is replaced by the service port ${svcPort}`,
          r.rs.pos.line,
        );
      }
      if (r.rs.address.family !== (v6 ? 'ipv6' : 'ipv4') && f.kind !== 'tunnel') {
        ctx.error(
          'keepalived-family-mismatch',
          `real server ${formatAddress(r.rs.address)} is not in the service's address family (only tunnels may mix)`,
          r.rs.pos.line,
        );
        continue;
      }
      const upper = r.upper ?? 0;
      const lower = r.lower ?? 0;
      if (lower > upper && upper !== 0)
        ctx.error('keepalived-bad-value', 'lthreshold is above uthreshold (the kernel refuses it)', r.rs.pos.line);
      const rsOrigin: Origin = {
        kind: 'file',
        label: flatString(
          `keepalived real_server ${formatAddress(r.rs.address)}${r.rs.configuredPort !== undefined ? ` ${r.rs.configuredPort}` : ''} of ${formatServiceKey(key)}`,
        ),
        pos: r.rs.pos,
        via: svcOrigin,
      };
      // Literals, not a conditional spread: V8 gives a spread copy a hidden class of its own (memory per server).
      const { address } = r.rs;
      const weight = r.rs.weight;
      dests.push(
        r.upper !== undefined || r.lower !== undefined
          ? { address, port, forwarding: f, weight, upperThreshold: upper, lowerThreshold: lower, origin: rsOrigin }
          : { address, port, forwarding: f, weight, origin: rsOrigin },
      );
    }
    dests.reverse(); // keepalived adds them in file order; each one goes to the head of the kernel list
    const schedFlags =
      scheduler === 'sh' || scheduler === 'mh'
        ? v.schedFlags & (SH_FALLBACK | SH_PORT | MH_FALLBACK | MH_PORT | SCHED_FLAG_3)
        : v.schedFlags;
    services.push({
      key,
      scheduler,
      schedFlags,
      ...(persistence ? { persistence } : {}),
      onePacket: ops,
      destinations: dests,
      origin: svcOrigin,
    });
  }
  return {
    name: s.args.join(' '),
    form,
    scheduler,
    forwarding: vsMethod,
    protocol,
    ...(services[0]?.persistence ? { persistence: services[0].persistence } : {}),
    delayLoop: v.delayLoop,
    quorum: v.quorum,
    hysteresis: v.hysteresis,
    inhibitOnFailure: v.inhibit,
    ...(v.sorry ? { sorryServer: v.sorry } : {}),
    realServers: rsReads.map((r) => r.rs),
    services,
    pos: ctx.pos(s.line),
  };
}

function readVip(e: KeepalivedStatement, ctx: Ctx): KeepalivedVip | undefined {
  const [addrText, lenText] = e.keyword.split('/');
  const address = parseAddress(addrText!);
  const maxLen = address?.family === 'ipv6' ? 128 : 32;
  const prefixLength = lenText === undefined ? undefined : parseUint(lenText, maxLen);
  if (address === undefined || (lenText !== undefined && prefixLength === undefined)) {
    ctx.error('keepalived-bad-vip', `'${e.keyword}' is not an address[/prefix]`, e.line);
    return undefined;
  }
  const di = e.args.indexOf('dev');
  const dev = di >= 0 ? e.args[di + 1] : undefined;
  return {
    address,
    ...(prefixLength !== undefined ? { prefixLength } : {}),
    ...(dev !== undefined ? { dev } : {}),
    text: [e.keyword, ...e.args].join(' '),
    line: e.line,
  };
}

function readVrrp(s: KeepalivedStatement, globals: KeepalivedGlobals, ctx: Ctx): KeepalivedVrrpInstance | undefined {
  const name = s.args[0];
  if (name === undefined) {
    ctx.error('keepalived-missing-argument', "'vrrp_instance' needs a name", s.line);
    return undefined;
  }
  let state: 'MASTER' | 'BACKUP' | undefined;
  let iface: string | undefined;
  let vrid: number | undefined;
  let priority = 100;
  let advertInt = 1;
  const vips: KeepalivedVip[] = [];
  let useVmac = false;
  let vmacXmitBase = false;
  let nopreempt = false;
  let strictMode = false;
  let accept: boolean | undefined;
  const peers: string[] = [];
  for (const k of s.block ?? []) {
    switch (k.keyword) {
      case 'state':
        if (k.args[0] === 'MASTER' || k.args[0] === 'BACKUP') state = k.args[0];
        else ctx.error('keepalived-bad-value', `state must be MASTER or BACKUP, not '${k.args[0] ?? ''}'`, k.line);
        break;
      case 'interface':
        if (needArgs(k, 1, 'an interface name', ctx)) iface = k.args[0]!;
        break;
      case 'virtual_router_id':
        vrid = parseUint(k.args[0], 255);
        if (vrid === undefined || vrid < 1) {
          ctx.error('keepalived-bad-value', `virtual_router_id must be 1..255, not '${k.args[0] ?? ''}'`, k.line);
          vrid = undefined;
        }
        break;
      case 'priority': {
        const p = parseUint(k.args[0], 255);
        if (p === undefined || p < 1)
          ctx.error('keepalived-bad-value', `priority must be 1..255, not '${k.args[0] ?? ''}'`, k.line);
        else priority = p;
        break;
      }
      case 'advert_int': {
        const t = parseTimer(k.args[0]);
        if (t === undefined) ctx.error('keepalived-bad-value', `bad advert_int '${k.args[0] ?? ''}'`, k.line);
        else advertInt = t;
        break;
      }
      case 'virtual_ipaddress':
        for (const e of k.block ?? []) {
          const vip = readVip(e, ctx);
          if (vip) vips.push(vip);
        }
        break;
      case 'use_vmac':
        useVmac = true;
        break;
      case 'vmac_xmit_base':
        vmacXmitBase = true;
        break;
      case 'nopreempt':
        nopreempt = true;
        break;
      case 'strict_mode':
        strictMode = flagValue(k, ctx);
        break;
      case 'accept':
        accept = true;
        break;
      case 'no_accept':
        accept = false;
        strictMode = true;
        break;
      case 'unicast_peer':
        for (const e of k.block ?? []) peers.push(e.keyword);
        break;
      default:
        break; // the many other VRRP keywords are accepted as they are
    }
  }
  if (vrid === undefined)
    ctx.error('keepalived-missing-argument', `vrrp_instance ${name} has no virtual_router_id`, s.line);
  if (iface === undefined && peers.length === 0)
    ctx.warn('keepalived-no-interface', `vrrp_instance ${name} has no interface`, s.line);
  const strict = globals.vrrpStrict || strictMode;
  const effectiveAccept = accept ?? (strict ? priority === 255 : true);
  return {
    name,
    ...(state ? { state } : {}),
    ...(iface !== undefined ? { interface: iface } : {}),
    ...(vrid !== undefined ? { virtualRouterId: vrid } : {}),
    priority,
    advertInt,
    virtualIpaddresses: vips,
    useVmac,
    ...(useVmac && vrid !== undefined ? { vmac: `00:00:5e:00:01:${vrid.toString(16).padStart(2, '0')}` } : {}),
    ...(useVmac && vmacXmitBase ? { vmacXmitBase: true } : {}),
    nopreempt,
    unicastPeers: peers,
    strict,
    accept: effectiveAccept,
    pos: ctx.pos(s.line),
  };
}

function readGlobals(statements: readonly KeepalivedStatement[], ctx: Ctx): KeepalivedGlobals {
  let routerId: string | undefined;
  let vrrpStrict = false;
  let lvsTimeouts: { tcp?: number; tcpfin?: number; udp?: number } | undefined;
  let lvsSyncDaemon: { interface: string; instance?: string } | undefined;
  for (const g of statements.filter((x) => x.keyword === 'global_defs'))
    for (const k of g.block ?? []) {
      switch (k.keyword) {
        case 'router_id':
          routerId = k.args[0];
          break;
        case 'vrrp_strict':
          vrrpStrict = true;
          break;
        case 'lvs_timeouts': {
          const t: { tcp?: number; tcpfin?: number; udp?: number } = {};
          for (let i = 0; i + 1 < k.args.length; i += 2) {
            const n = parseUint(k.args[i + 1]);
            const w = k.args[i];
            if (n === undefined || (w !== 'tcp' && w !== 'tcpfin' && w !== 'udp'))
              ctx.error('keepalived-bad-value', `expected 'lvs_timeouts [tcp S] [tcpfin S] [udp S]'`, k.line);
            else t[w] = n;
          }
          lvsTimeouts = t;
          break;
        }
        case 'lvs_sync_daemon': {
          if (!needArgs(k, 1, 'an interface', ctx)) break;
          const inst =
            k.args[1] === 'inst'
              ? k.args[2]
              : k.args[1] !== undefined && !['id', 'maxlen', 'port', 'ttl', 'group'].includes(k.args[1])
                ? k.args[1]
                : undefined;
          lvsSyncDaemon = inst === undefined ? { interface: k.args[0]! } : { interface: k.args[0]!, instance: inst };
          break;
        }
        default:
          break;
      }
    }
  return {
    ...(routerId !== undefined ? { routerId } : {}),
    vrrpStrict,
    ...(lvsTimeouts ? { lvsTimeouts } : {}),
    ...(lvsSyncDaemon ? { lvsSyncDaemon } : {}),
  };
}

/** Reads one keepalived.conf. Never throws; `value` is undefined only when nothing could be read at all. */
export function readKeepalivedConf(text: string, file: string): ReadResult<KeepalivedConfig> {
  const issues: Issue[] = [];
  const ctx = new Ctx(file, issues);
  const statements = parseKeepalivedStatements(text, file, issues);
  const globals = readGlobals(statements, ctx);
  const groups = new Map<string, GroupEntry[]>();
  for (const s of statements)
    if (s.keyword === 'virtual_server_group') {
      if (s.args[0] === undefined)
        ctx.error('keepalived-missing-argument', "'virtual_server_group' needs a name", s.line);
      else groups.set(s.args[0], readGroup(s, ctx));
    }
  const vrrpInstances: KeepalivedVrrpInstance[] = [];
  const virtualServers: KeepalivedVirtualServer[] = [];
  for (const s of statements) {
    switch (s.keyword) {
      case 'global_defs':
      case 'virtual_server_group':
        break;
      case 'include':
      case 'includer':
      case 'includem':
      case 'includew':
      case 'includeb':
      case 'includea':
        ctx.unsupported(
          'keepalived-include',
          `'${s.keyword} ${s.args.join(' ')}' is not followed: paste the included file's content instead`,
          s.line,
        );
        break;
      case 'vrrp_instance': {
        const v = readVrrp(s, globals, ctx);
        if (v) vrrpInstances.push(v);
        break;
      }
      case 'virtual_server': {
        const v = readVirtualServer(s, groups, ctx);
        if (v) virtualServers.push(v);
        break;
      }
      default:
        if (!TOP_LEVEL_IGNORED.has(s.keyword))
          ctx.warn('keepalived-unknown-keyword', `unknown top-level keyword '${s.keyword}' (ignored)`, s.line);
    }
  }
  const services = virtualServers.flatMap((v) => v.services);
  // Each duplicate once, naming the first: linear in the services (a group of 2,000 equal lines is 1,999 issues,
  // not two million).
  const first = new Map<string, (typeof services)[number]>();
  for (const svc of services) {
    const key = formatServiceKey(svc.key);
    const was = first.get(key);
    if (was === undefined) first.set(key, svc);
    else
      issues.push(
        issue(
          'keepalived-duplicate-service',
          `${key} is configured twice (also at line ${was.origin.pos?.line ?? '?'})`,
          svc.origin.pos,
        ),
      );
  }
  if (statements.length === 0) {
    issues.push(
      issue(
        'keepalived-empty',
        `no keepalived configuration found in lines 1-${text.split('\n').length} (expected statements such as 'virtual_server ADDRESS PORT {')`,
        filePos(file, 0),
      ),
    );
    return { value: undefined, issues };
  }
  return {
    value: {
      globals,
      vrrpInstances,
      virtualServers,
      table: { order: 'kernel', services },
    },
    issues,
  };
}

/** True when the text looks like keepalived.conf (a known top-level block keyword followed by '{'). */
export function looksLikeKeepalived(text: string): boolean {
  return /^\s*(global_defs|vrrp_instance|virtual_server|virtual_server_group|vrrp_script|vrrp_sync_group)\b[^\n]*\{/m.test(
    text,
  );
}

/** A short label of a VIP for messages. */
export function formatVip(v: KeepalivedVip): string {
  return `${v.address.family === 'ipv4' ? formatIpv4(v.address.addr) : v.address.addr}${v.prefixLength !== undefined ? `/${v.prefixLength}` : ''}`;
}
