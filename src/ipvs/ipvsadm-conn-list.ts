/**
 * Connection listings as data: `ipvsadm -L -n -c [--persistent-conn]` (ipvsadm 1.31 `list_conn`/`print_conn`) and
 * the kernel file it reformats, `/proc/net/ip_vs_conn` (`ip_vs_conn_seq_show`: hex addresses and ports, expiry in
 * seconds). Readers never throw; rows keep their line as origin. The writer renders rows byte for byte.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { formatIpv6Groups } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { parseAddrPort } from './ipvsadm-list-reader.ts';
import { formatAddrPort, type IpAddress } from './model.ts';
import { TCP_STATE_NAMES } from './tcp-state.ts';

export interface ConnEndpoint {
  readonly address: IpAddress;
  readonly port: number;
}

/** One connection entry as listed. */
export interface ConnectionRow {
  /** As printed: `TCP`, `UDP`, `SCTP`, `IP` (fwmark templates), `ICMP`, … */
  readonly protocol: string;
  /** Remaining seconds. */
  readonly expires: number;
  /** `ESTABLISHED`, `SYN_RECV`, `UDP`, `NONE`, `ASSURED`, … */
  readonly state: string;
  readonly source: ConnEndpoint;
  readonly virtual: ConnEndpoint;
  readonly destination: ConnEndpoint;
  /** `--persistent-conn` columns (persistence engine entries only). */
  readonly peName?: string;
  readonly peData?: string;
  readonly pos?: Position;
}

export interface ConnectionListing {
  /** True for the `--persistent-conn` header (pe name, pe_data columns). */
  readonly persistentConn: boolean;
  readonly command?: string;
  readonly rows: readonly ConnectionRow[];
}

/** True for a persistence template: source port 0 (`ip_vs_sched_persist` creates them with cport 0). */
export function isTemplateRow(r: ConnectionRow): boolean {
  return r.source.port === 0;
}

/** TCP state names as ipvsadm -Lnc prints them, plus ASSURED (a persistence template that controls an established connection). */
export const TCP_STATES: ReadonlySet<string> = new Set([...TCP_STATE_NAMES, 'ASSURED']);
const SCTP_STATES: ReadonlySet<string> = new Set([
  'NONE',
  'INIT1',
  'INIT',
  'C-SENT',
  'C-REPLIED',
  'C-WAIT',
  'COOKIE',
  'C-ECHOED',
  'ESTABLISHED',
  'S-SENT',
  'S-RECEIVED',
  'S-ACK-SENT',
  'REJECTED',
  'CLOSED',
  'ASSURED',
]);

function knownState(protocol: string, state: string): boolean {
  if (protocol === 'TCP') return TCP_STATES.has(state);
  if (protocol === 'UDP') return state === 'UDP' || state === 'NONE' || state === 'ASSURED';
  if (protocol === 'SCTP') return SCTP_STATES.has(state);
  return state === 'NONE' || state === 'ASSURED' || state === 'ERR!';
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `%02d:%02d` of minutes and seconds; minutes are not capped (`180:03`). */
export function formatExpire(seconds: number): string {
  return `${two(Math.trunc(seconds / 60))}:${two(seconds % 60)}`;
}

const HEADER = `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} destination`;
const HEADER_PE = `pro expire ${'state'.padEnd(11)} ${'source'.padEnd(18)} ${'virtual'.padEnd(18)} ${'destination'.padEnd(18)} ${'pe name'.padEnd(16)} pe_data`;

/** One `print_conn` row. */
export function formatConnectionRow(r: ConnectionRow, persistentConn = false): string {
  const c = formatAddrPort(r.source.address, r.source.port);
  const v = formatAddrPort(r.virtual.address, r.virtual.port);
  const d = formatAddrPort(r.destination.address, r.destination.port);
  const head = `${r.protocol.padEnd(3)} ${formatExpire(r.expires).padEnd(6)} ${r.state.padEnd(11)} ${c.padEnd(18)} ${v.padEnd(18)}`;
  if (persistentConn && r.peName !== undefined)
    return `${head} ${d.padEnd(18)} ${r.peName.padEnd(16)} ${(r.peData ?? '').padEnd(18)}`;
  return `${head} ${d}`;
}

/** `ipvsadm -L -n -c [--persistent-conn]` from rows. */
export function writeIpvsadmConnectionList(rows: readonly ConnectionRow[], persistentConn = false): string {
  let out = `IPVS connection entries\n${persistentConn ? HEADER_PE : HEADER}\n`;
  for (const r of rows) out += `${formatConnectionRow(r, persistentConn)}\n`;
  return out;
}

function endpoint(text: string | undefined): ConnEndpoint | string {
  if (text === undefined) return 'missing ADDRESS:PORT';
  const ap = parseAddrPort(text);
  return typeof ap === 'string' ? ap : ap;
}

/** Reads `ipvsadm -L -n -c` output (prompt lines, collapsed whitespace and indentation tolerated). */
export function readIpvsadmConnectionList(text: string, file: string): ReadResult<ConnectionListing> {
  const issues: Issue[] = [];
  const rows: ConnectionRow[] = [];
  let persistentConn = false;
  let command: string | undefined;
  let started = false;
  let sawHeader = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i]!.replace(/\r$/, '');
    const t = raw.trim().split(/\s+/);
    const pos = filePos(file, lineNo);
    if (t[0] === '') continue;
    if (t.join(' ') === 'IPVS connection entries') {
      if (started && rows.length > 0) {
        issues.push(
          issue(
            'ipvsadm-conn-second-listing',
            'a second listing starts here; only the first one is read',
            pos,
            'warning',
          ),
        );
        break;
      }
      started = true;
      continue;
    }
    if (t[0] === 'pro') {
      const expected = ['pro', 'expire', 'state', 'source', 'virtual', 'destination'];
      if (t.slice(0, 6).join(' ') !== expected.join(' ')) {
        issues.push(
          issue(
            'ipvsadm-conn-bad-header',
            `expected the header 'pro expire state source virtual destination', got '${raw.trim()}'`,
            pos,
          ),
        );
      } else if (t.length > 6) {
        if (t.slice(6).join(' ') === 'pe name pe_data') persistentConn = true;
        else issues.push(issue('ipvsadm-conn-bad-header', `unexpected header columns '${t.slice(6).join(' ')}'`, pos));
      }
      started = true;
      sawHeader = true;
      continue;
    }
    if (!started && /\bipvsadm\b/.test(raw)) {
      command = raw.trim();
      if (/--persistent-conn\b/.test(raw)) persistentConn = true;
      continue;
    }
    if (!started && !/^[A-Z][A-Za-z0-9_]* /.test(raw.trim())) {
      issues.push(issue('ipvsadm-conn-ignored-line', `ignored line before the listing: '${raw.trim()}'`, pos, 'info'));
      continue;
    }
    started = true;
    const row = readRow(t, raw.trim(), persistentConn, pos, issues);
    if (row !== undefined) rows.push(row);
  }
  if (!started) {
    issues.push(issue('ipvsadm-conn-empty', 'no ipvsadm -L -n -c listing found', filePos(file, 0)));
    return { value: undefined, issues };
  }
  if (!sawHeader)
    issues.push(
      issue(
        'ipvsadm-conn-no-header',
        'no header line (pro expire state source virtual destination)',
        filePos(file, 0),
        'warning',
      ),
    );
  return { value: { persistentConn, ...(command !== undefined ? { command } : {}), rows }, issues };
}

function readRow(
  t: readonly string[],
  text: string,
  persistentConn: boolean,
  pos: Position,
  issues: Issue[],
): ConnectionRow | undefined {
  const bad = (why: string): undefined => {
    issues.push(issue('ipvsadm-conn-bad-row', `${why}: '${text}'`, pos));
    return undefined;
  };
  if (t.length < 6) return bad('expected PROTO MM:SS STATE SOURCE VIRTUAL DESTINATION');
  const [proto, expire, state] = t as [string, string, string];
  if (!/^[A-Z][A-Za-z0-9_]*$/.test(proto)) return bad(`'${proto}' is not a protocol name`);
  const m = /^([0-9]+):([0-5][0-9])$/.exec(expire);
  if (!m) return bad(`expected the remaining time as MM:SS, got '${expire}'`);
  if (!knownState(proto, state)) return bad(`'${state}' is not an IPVS ${proto} state`);
  const eps = [3, 4, 5].map((k) => endpoint(t[k]));
  for (const e of eps) if (typeof e === 'string') return bad(e);
  let extra: { peName?: string; peData?: string } = {};
  if (t.length > 6) {
    if (t[6]!.startsWith('#')) {
      issues.push(
        issue('ipvsadm-conn-annotation', `text after the row ignored: '${t.slice(6).join(' ')}'`, pos, 'info'),
      );
    } else if (persistentConn && t.length <= 8) {
      extra = t.length === 8 ? { peName: t[6]!, peData: t[7]! } : { peName: t[6]! };
    } else return bad('unexpected columns after the destination');
  }
  return {
    protocol: proto,
    expires: Number(m[1]) * 60 + Number(m[2]),
    state,
    source: eps[0] as ConnEndpoint,
    virtual: eps[1] as ConnEndpoint,
    destination: eps[2] as ConnEndpoint,
    ...extra,
    pos,
  };
}

/** `%pI6` (8 groups of 4 hex digits) or 8 hex digits (IPv4, host order). */
function procAddress(text: string): IpAddress | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(text)) return { family: 'ipv4', addr: (Number.parseInt(text, 16) >>> 0) as Ipv4 };
  const g = text.split(':');
  if (g.length === 8 && g.every((x) => /^[0-9A-Fa-f]{1,4}$/.test(x)))
    return { family: 'ipv6', addr: formatIpv6Groups(g.map((x) => Number.parseInt(x, 16))) };
  return undefined;
}

function procPort(text: string): number | undefined {
  return /^[0-9A-Fa-f]{4}$/.test(text) ? Number.parseInt(text, 16) : undefined;
}

/**
 * Reads `/proc/net/ip_vs_conn` (or `ip_vs_conn_sync`, whose extra Origin column is dropped). Rows come back as
 * `ipvsadm -c` would show them.
 */
export function readProcIpVsConn(text: string, file: string): ReadResult<ConnectionListing> {
  const issues: Issue[] = [];
  const rows: ConnectionRow[] = [];
  let sync = false;
  let header = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.replace(/\r$/, '');
    const t = raw.trim().split(/\s+/);
    const pos = filePos(file, i + 1);
    if (t[0] === '') continue;
    if (t[0] === 'Pro' && t[1] === 'FromIP') {
      header = true;
      sync = t.includes('Origin');
      continue;
    }
    const bad = (why: string) => issues.push(issue('proc-ip-vs-conn-bad-row', `${why}: '${raw.trim()}'`, pos));
    const base = sync ? 10 : 9;
    if (t.length < base) {
      bad('expected Pro FromIP FPrt ToIP TPrt DestIP DPrt State Expires');
      continue;
    }
    const addrs = [1, 3, 5].map((k) => procAddress(t[k]!));
    const ports = [2, 4, 6].map((k) => procPort(t[k]!));
    if (addrs.some((a) => a === undefined) || ports.some((p) => p === undefined)) {
      bad('addresses must be 8 hex digits (IPv4) or full IPv6, ports 4 hex digits');
      continue;
    }
    const exp = t[base - 1]!;
    if (!/^[0-9]+$/.test(exp)) {
      bad(`expected the expiry in seconds, got '${exp}'`);
      continue;
    }
    const ep = (k: number): ConnEndpoint => ({ address: addrs[k]!, port: ports[k]! });
    const pe =
      t.length > base ? { peName: t[base]!, ...(t[base + 1] !== undefined ? { peData: t[base + 1]! } : {}) } : {};
    rows.push({
      protocol: t[0]!,
      expires: Number(exp),
      state: t[7]!,
      source: ep(0),
      virtual: ep(1),
      destination: ep(2),
      ...pe,
      pos,
    });
  }
  if (!header && rows.length === 0) {
    issues.push(issue('proc-ip-vs-conn-empty', 'no /proc/net/ip_vs_conn rows found', filePos(file, 0)));
    return { value: undefined, issues };
  }
  return { value: { persistentConn: rows.some((r) => r.peName !== undefined), rows }, issues };
}

/** The virtual "address" of a fwmark template row (`IP` protocol): the mark, printed as an IPv4 address. */
export function templateFwmark(r: ConnectionRow): number | undefined {
  return r.protocol === 'IP' && r.virtual.address.family === 'ipv4' ? r.virtual.address.addr : undefined;
}

export function formatConnEndpoint(e: ConnEndpoint): string {
  return e.address.family === 'ipv4' ? `${formatIpv4(e.address.addr)}:${e.port}` : `[${e.address.addr}]:${e.port}`;
}
