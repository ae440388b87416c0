/**
 * Readers for the kernel's netfilter traces as the tools print them (packets marked with `meta nftrace set 1`, or
 * iptables-nft's `-j TRACE` in the raw table, which sets the same mark):
 *
 * - `nft monitor trace` (nftables 1.0): `trace id ID FAMILY TABLE CHAIN packet: FIELDS…`, `… rule RULE (verdict V)`,
 *   `… unknown rule handle N (verdict V)`, `… policy V`, `… verdict V` (a chain's implicit return) and
 *   `… conntrack: …`. With `nft -a monitor trace` a rule ends with `# handle N`.
 * - `xtables-monitor --trace` (iptables 1.8): `PACKET: FAMILY ID IN=… OUT=… MACSRC=… SRC=… DST=… SPORT=… DPORT=…`
 *   and ` TRACE: FAMILY ID TABLE:CHAIN:rule:0xHANDLE:VERDICT[:TARGET]  [-4 -t TABLE -A CHAIN …]`,
 *   `TABLE:CHAIN:policy:VERDICT`, `TABLE:CHAIN:return:`. For the bridge family it prints no rule text and the
 *   packet's network header as `NH=` hex (bytes ≥ 0x80 sign-extended to eight digits), which is decoded here.
 *
 * Every event keeps the packet line it belongs to (the fields the kernel dumped when the packet entered that base
 * chain) and its position. Lines that are none of these are issues naming file and line; the rest is still read.
 */
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export type TraceTool = 'nft-monitor' | 'xtables-monitor';

/** The packet as the kernel dumped it at a base chain (only the fields lvsdoctor compares). */
export interface TracePacket {
  readonly iif?: string;
  readonly oif?: string;
  readonly etherSrc?: string;
  readonly etherDst?: string;
  /** `ip`, `ip6`, `arp`, `vlan`, or the hex ether type. */
  readonly etherType?: string;
  readonly ipSrc?: string;
  readonly ipDst?: string;
  /** `tcp`, `udp`, `icmp`, … or the protocol number. */
  readonly protocol?: string;
  readonly sport?: number;
  readonly dport?: number;
  readonly arpOp?: 'request' | 'reply';
  /** The TCP flags as a bit set (FIN 0x01 … CWR 0x80), when the line shows them. */
  readonly tcpFlags?: number;
  readonly pos: Position;
}

const TCP_FLAG_BITS: Readonly<Record<string, number>> = {
  fin: 0x01,
  syn: 0x02,
  rst: 0x04,
  psh: 0x08,
  ack: 0x10,
  urg: 0x20,
  ecn: 0x40,
  ece: 0x40,
  cwr: 0x80,
};

/** nft's `tcp flags == syn`, `== 0x18`, `== syn | ack`: the words after `==`; undefined when not a flag set. */
function nftTcpFlags(words: readonly string[]): { bits: number; used: number } | undefined {
  let bits = 0;
  let used = 0;
  for (let k = 0; k < words.length; k += 2) {
    const w = words[k]!.toLowerCase();
    const b = /^0x[0-9a-f]+$/.test(w) ? Number.parseInt(w, 16) : TCP_FLAG_BITS[w];
    if (b === undefined) break;
    bits |= b;
    used = k + 1;
    if (words[k + 1] !== '|') break;
  }
  return used > 0 ? { bits, used } : undefined;
}

export type TraceVerdict = 'accept' | 'drop' | 'continue' | 'return' | 'jump' | 'goto' | 'queue' | 'stolen' | 'repeat';

export interface TraceEvent {
  readonly tool: TraceTool;
  /** The kernel's trace id (hex, as printed): one packet in one network namespace. */
  readonly id: string;
  /** `bridge`, `ip`, `ip6`, `inet`, `arp`, `netdev`. */
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  /** `rule`: a rule matched; `policy`: the base chain's policy decided; `return`: the chain ended without verdict. */
  readonly what: 'rule' | 'policy' | 'return';
  /** nft syntax (`nft monitor trace`) or save syntax `-A CHAIN …` (`xtables-monitor`), when printed. */
  readonly ruleText?: string;
  readonly handle?: number;
  readonly verdict: TraceVerdict;
  /** The chain of a `jump`/`goto`. */
  readonly target?: string;
  /** The packet line this event follows. */
  readonly packet?: TracePacket;
  readonly pos: Position;
}

const VERDICTS = new Set<string>(['accept', 'drop', 'continue', 'return', 'jump', 'goto', 'queue', 'stolen', 'repeat']);

function verdictOf(words: string): { verdict: TraceVerdict; target?: string } | undefined {
  const [v, target] = words.trim().toLowerCase().split(/\s+/);
  if (v === undefined || !VERDICTS.has(v)) return undefined;
  return target !== undefined && (v === 'jump' || v === 'goto')
    ? { verdict: v as TraceVerdict, target: words.trim().split(/\s+/)[1]! }
    : { verdict: v as TraceVerdict };
}

/** Words of an nft expression list, quoted strings kept whole (quotes removed). */
function nftWords(text: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[1] ?? m[2]!);
  return out;
}

/** The fields of an `nft monitor trace` packet line. */
function nftPacket(fields: string, pos: Position): TracePacket {
  const w = nftWords(fields);
  const p: { -readonly [K in keyof TracePacket]: TracePacket[K] } = { pos };
  for (let i = 0; i < w.length; i++) {
    const a = w[i]!;
    const b = w[i + 1];
    const c = w[i + 2] ?? '';
    if ((a === 'iif' || a === 'iifname') && b !== undefined) p.iif = b;
    else if ((a === 'oif' || a === 'oifname') && b !== undefined) p.oif = b;
    else if (a === 'ether' && b === 'saddr') p.etherSrc = c;
    else if (a === 'ether' && b === 'daddr') p.etherDst = c;
    else if (a === 'ether' && b === 'type') p.etherType = c;
    else if ((a === 'ip' || a === 'ip6') && b === 'saddr') {
      p.ipSrc = c;
      p.etherType ??= a;
    } else if ((a === 'ip' || a === 'ip6') && b === 'daddr') p.ipDst = c;
    else if (a === 'ip' && b === 'protocol') p.protocol = c;
    else if (a === 'ip6' && b === 'nexthdr') p.protocol = c;
    else if ((a === 'tcp' || a === 'udp' || a === 'sctp') && (b === 'sport' || b === 'dport')) {
      p.protocol ??= a;
      const n = Number(c);
      if (Number.isInteger(n)) p[b] = n;
    } else if (a === 'tcp' && b === 'flags' && c === '==') {
      const f = nftTcpFlags(w.slice(i + 3));
      if (f) {
        p.tcpFlags = f.bits;
        i += 2 + f.used;
      }
      continue;
    } else if ((a === 'icmp' || a === 'icmpv6') && b === 'type') p.protocol ??= a;
    else if (a === 'arp' && b === 'operation' && (c === 'request' || c === 'reply')) {
      p.arpOp = c;
      p.etherType ??= 'arp';
    } else continue;
    i += a === 'iif' || a === 'oif' || a === 'iifname' || a === 'oifname' ? 1 : 2;
  }
  return p;
}

const NFT_LINE = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$/;

/** `nft monitor trace` (or `nft -a monitor trace`) output. */
export function readNftMonitorTrace(text: string, file: string): ReadResult<TraceEvent[]> {
  const out: TraceEvent[] = [];
  const issues: Issue[] = [];
  const packets = new Map<string, TracePacket>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const pos = filePos(file, i + 1);
    const m = NFT_LINE.exec(line);
    if (!m && /^# ERROR: We lost some netlink events/.test(line)) {
      // nft monitor goes on after its socket overflowed (ENOBUFS); what the kernel sent meanwhile is gone.
      issues.push(
        issue(
          'trace-monitor-stopped',
          "nft monitor lost trace events here: the kernel's events overflowed its netlink socket (ENOBUFS) — trace again with fewer packets",
          pos,
        ),
      );
      continue;
    }
    if (!m) {
      issues.push(
        issue(
          'trace-bad-line',
          `expected 'trace id ID FAMILY TABLE CHAIN …' (nft monitor trace), got '${cut(line)}'`,
          pos,
        ),
      );
      continue;
    }
    const [, id, family, table, chain, rest] = m as unknown as [string, string, string, string, string, string];
    const key = `${id}\t${family}\t${table}\t${chain}`;
    const base = { tool: 'nft-monitor' as const, id, family, table, chain, pos };
    const packet = packets.get(key) ?? packets.get(`${id}\t${family}`);
    const withPacket = packet ? { ...base, packet } : base;
    if (rest.startsWith('packet:')) {
      const p = nftPacket(rest.slice(7), pos);
      packets.set(key, p);
      packets.set(`${id}\t${family}`, p);
      continue;
    }
    if (rest.startsWith('conntrack:')) continue;
    const r = /^rule (.*) \((verdict [^)]*)\)\s*$/.exec(rest);
    const u = /^unknown rule handle (\d+) \((verdict [^)]*)\)\s*$/.exec(rest);
    if (r || u) {
      const v = verdictOf((r ?? u)![2]!.slice(8));
      if (!v) {
        issues.push(issue('trace-bad-verdict', `unknown verdict '${(r ?? u)![2]}'`, pos));
        continue;
      }
      let ruleText = r ? r[1]!.trim() : undefined;
      let handle = u ? Number(u[1]) : undefined;
      const h = ruleText !== undefined ? /\s*# handle (\d+)\s*$/.exec(ruleText) : null;
      if (h && ruleText !== undefined) {
        handle = Number(h[1]);
        ruleText = ruleText.slice(0, h.index).trim();
      }
      out.push({
        ...withPacket,
        what: 'rule',
        ...(ruleText !== undefined ? { ruleText } : {}),
        ...(handle !== undefined ? { handle } : {}),
        ...v,
      });
      continue;
    }
    const p = /^(policy|verdict) (\S+(?: \S+)?)/.exec(rest);
    if (p) {
      const v = verdictOf(p[2]!.replace(/ meta$/, ''));
      if (!v) {
        issues.push(issue('trace-bad-verdict', `unknown ${p[1]} '${p[2]}'`, pos));
        continue;
      }
      out.push({ ...withPacket, what: p[1] === 'policy' ? 'policy' : 'return', ...v });
      continue;
    }
    issues.push(
      unsupported(
        'trace-unsupported',
        `an nft trace event lvsdoctor does not read: '${cut(rest)}' (expected packet:, rule …, policy …, verdict …)`,
        pos,
      ),
    );
  }
  return { value: out, issues };
}

/** Verdicts xtables-monitor prints as numbers (NF_* and NFT_* of linux/netfilter*.h). */
const NUMERIC_VERDICTS: Readonly<Record<string, string>> = {
  '0x0': 'drop',
  '0x1': 'accept',
  '0x2': 'stolen',
  '0x3': 'queue',
  '0x4': 'repeat',
  '0xffffffff': 'continue',
  '0xfffffffe': 'continue',
  '0xfffffffd': 'jump',
  '0xfffffffc': 'goto',
  '0xfffffffb': 'return',
};

const XT_FAMILIES: Readonly<Record<string, string>> = {
  '1': 'inet',
  '2': 'ip',
  '3': 'arp',
  '7': 'bridge',
  '10': 'ip6',
};

/** `NH=` hex with bytes ≥ 0x80 printed sign-extended (`ffffffc0`): the header's bytes. */
export function decodeXtablesHex(hex: string): number[] | undefined {
  const out: number[] = [];
  let i = 0;
  while (i < hex.length) {
    const b = Number.parseInt(hex.slice(i, i + 2), 16);
    if (Number.isNaN(b) || i + 2 > hex.length) return undefined;
    if (b >= 0x80) {
      if (hex.slice(i, i + 6) !== 'ffffff' || i + 8 > hex.length) return undefined;
      out.push(Number.parseInt(hex.slice(i + 6, i + 8), 16));
      i += 8;
    } else {
      out.push(b);
      i += 2;
    }
  }
  return out;
}

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp' };

function xtPacket(rest: string, pos: Position): TracePacket {
  const p: { -readonly [K in keyof TracePacket]: TracePacket[K] } = { pos };
  const kv = new Map<string, string>();
  const words = rest.trim().split(/\s+/);
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    const e = w.indexOf('=');
    if (e > 0) kv.set(w.slice(0, e), w.slice(e + 1));
    // `LL=0xTYPE HEX`: the link-layer header (destination, source, ether type) on output hooks.
    if (w.startsWith('LL=') && words[k + 1] !== undefined && !words[k + 1]!.includes('=')) {
      const ll = decodeXtablesHex(words[++k]!);
      if (ll && ll.length >= 14) {
        const hex = (b: number[]) => b.map((x) => x.toString(16).padStart(2, '0')).join(':');
        kv.set('MACDST', kv.get('MACDST') ?? hex(ll.slice(0, 6)));
        kv.set('MACSRC', kv.get('MACSRC') ?? hex(ll.slice(6, 12)));
        kv.set('MACPROTO', kv.get('MACPROTO') ?? hex(ll.slice(12, 14)).replace(':', ''));
      }
    }
  }
  const mac = (m: string) =>
    m
      .split(':')
      .map((x) => x.padStart(2, '0'))
      .join(':');
  if (kv.get('IN')) p.iif = kv.get('IN')!;
  if (kv.get('OUT')) p.oif = kv.get('OUT')!;
  if (kv.has('MACSRC')) p.etherSrc = mac(kv.get('MACSRC')!);
  if (kv.has('MACDST')) p.etherDst = mac(kv.get('MACDST')!);
  const proto = kv.get('MACPROTO');
  if (proto !== undefined)
    p.etherType = proto === '0800' ? 'ip' : proto === '86dd' ? 'ip6' : proto === '0806' ? 'arp' : proto;
  if (kv.has('SRC')) p.ipSrc = kv.get('SRC')!;
  if (kv.has('DST')) p.ipDst = kv.get('DST')!;
  if (kv.has('PROTO')) p.protocol = kv.get('PROTO')!.toLowerCase();
  if (kv.has('SPORT')) p.sport = Number(kv.get('SPORT'));
  if (kv.has('DPORT')) p.dport = Number(kv.get('DPORT'));
  // The TCP flags as bare words after the ports (`SPORT=40000 DPORT=80 SYN`), as the LOG target prints them.
  const dport = words.findIndex((w) => w.startsWith('DPORT='));
  if (dport >= 0) {
    let bits = 0;
    for (const w of words.slice(dport + 1)) {
      const b = /^[A-Z]{3}$/.test(w) ? TCP_FLAG_BITS[w.toLowerCase()] : undefined;
      if (b !== undefined) bits |= b;
    }
    if (bits !== 0) p.tcpFlags = bits;
  }
  const nh = kv.get('NH');
  const bytes = nh !== undefined ? decodeXtablesHex(nh) : undefined;
  if (bytes && p.etherType === 'ip' && bytes.length >= 20) {
    p.ipSrc ??= bytes.slice(12, 16).join('.');
    p.ipDst ??= bytes.slice(16, 20).join('.');
    p.protocol ??= PROTO_NAMES[bytes[9]!] ?? String(bytes[9]);
    const ihl = (bytes[0]! & 0x0f) * 4;
    if ((bytes[9] === 6 || bytes[9] === 17) && bytes.length >= ihl + 4) {
      p.sport ??= (bytes[ihl]! << 8) | bytes[ihl + 1]!;
      p.dport ??= (bytes[ihl + 2]! << 8) | bytes[ihl + 3]!;
    }
  } else if (bytes && p.etherType === 'arp' && bytes.length >= 8) {
    const op = (bytes[6]! << 8) | bytes[7]!;
    if (op === 1) p.arpOp = 'request';
    if (op === 2) p.arpOp = 'reply';
  }
  return p;
}

/** `xtables-monitor --trace` output. */
export function readXtablesMonitorTrace(text: string, file: string): ReadResult<TraceEvent[]> {
  const out: TraceEvent[] = [];
  const issues: Issue[] = [];
  const packets = new Map<string, TracePacket>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const pos = filePos(file, i + 1);
    const pk = /^PACKET: (\d+) ([0-9a-f]+) (.*)$/.exec(line);
    if (pk) {
      packets.set(pk[2]!, xtPacket(pk[3]!, pos));
      continue;
    }
    const t = /^TRACE: (\d+) ([0-9a-f]+) ([^:\s]+):([^:\s]+):(rule|policy|return):?(\S*)\s*(.*)$/.exec(line);
    const lost = /^cannot receive from nfnetlink socket: (.*)$/.exec(line);
    if (lost) {
      // xtables-monitor gives up when the kernel's events overflow its socket (ENOBUFS): the rest is not there.
      issues.push(
        issue(
          'trace-monitor-stopped',
          `xtables-monitor stopped here (${lost[1]}): the kernel's trace events overflowed its netlink socket, and the events after this line are missing — trace again with fewer packets, or read nft monitor trace`,
          pos,
        ),
      );
      continue;
    }
    if (!t) {
      issues.push(
        issue(
          'trace-bad-line',
          `expected 'PACKET: FAMILY ID …' or 'TRACE: FAMILY ID TABLE:CHAIN:…' (xtables-monitor --trace), got '${cut(line)}'`,
          pos,
        ),
      );
      continue;
    }
    const [, fam, id, table, chain, what, tail, text2] = t as unknown as string[];
    const family = XT_FAMILIES[fam!];
    if (family === undefined) {
      issues.push(unsupported('trace-family', `xtables-monitor family ${fam} is not one lvsdoctor reads`, pos));
      continue;
    }
    const packet = packets.get(id!);
    const base = { tool: 'xtables-monitor' as const, id: id!, family, table: table!, chain: chain!, pos };
    const withPacket = packet ? { ...base, packet } : base;
    if (what === 'rule') {
      const r = /^0x([0-9a-f]+):([A-Z]+|0x[0-9a-f]+)(?::(\S+))?$/.exec(tail!);
      const v = r ? verdictOf(`${NUMERIC_VERDICTS[r[2]!] ?? r[2]} ${r[3] ?? ''}`) : undefined;
      if (!r || !v) {
        issues.push(issue('trace-bad-verdict', `expected rule:0xHANDLE:VERDICT, got 'rule:${tail}'`, pos));
        continue;
      }
      const saved = text2!
        .trim()
        .replace(/^-[46]\s+/, '')
        .replace(/^-t\s+\S+\s+/, '');
      out.push({
        ...withPacket,
        what: 'rule',
        handle: Number.parseInt(r[1]!, 16),
        ...(saved !== '' ? { ruleText: saved } : {}),
        ...v,
      });
    } else if (what === 'policy') {
      const v = verdictOf(tail!);
      if (!v) {
        issues.push(issue('trace-bad-verdict', `expected policy:ACCEPT or policy:DROP, got 'policy:${tail}'`, pos));
        continue;
      }
      out.push({ ...withPacket, what: 'policy', ...v });
    } else out.push({ ...withPacket, what: 'return', verdict: 'return' });
  }
  return { value: out, issues };
}

/** Which of the two the text is, from its first meaningful line. */
export function netfilterTraceTool(text: string): TraceTool | undefined {
  for (const l of text.split('\n', 50)) {
    const line = l.trim();
    if (line.startsWith('trace id ')) return 'nft-monitor';
    if (/^(PACKET|TRACE): \d+ /.test(line)) return 'xtables-monitor';
  }
  return undefined;
}

function cut(s: string): string {
  return s.length > 160 ? `${s.slice(0, 157)}…` : s;
}
