/**
 * Reads pasted tcpdump output back into frames: `tcpdump -e -vvv -nnn` (two-line IPv4 format), `-nn`, and `-e -nn`,
 * with time formats `HH:MM:SS.frac` (default), `-tt` epoch and `-tttt` date-time. Text carries less than a capture:
 *
 * - without `-e` there are no MAC addresses (the frames get zero MACs and `fields.link` is false);
 * - without `-v` there is no IP id, TTL or IP flags (`fields.ipId`/`fields.ttl` false; id 0, TTL 64 are put in);
 * - payload bytes are never there (zeros of the printed length; `fields.payload` false);
 * - tcpdump prints TCP sequence numbers relative to the first ACK-bearing segment of each conversation unless `-S`;
 *   the reader undoes that the same way (pass `absoluteSeq` for `-S` output).
 *
 * Lines that are not packets (hex dumps, HTTP payload lines, `[|tcp]` truncations) are skipped or kept as far as they
 * go; a packet line that cannot be read at all becomes a warning with its line number.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { MAC_ZERO, type Mac, parseMac } from '../addr/mac.ts';
import { type Issue, issue } from '../source/issue.ts';
import { emitEthernet } from '../wire/ethernet.ts';
import {
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetFrame,
  type Ipv4Packet,
  type L3Payload,
  type L4Payload,
  TCP_ACK,
  TCP_SYN,
  type TcpOption,
  type VlanTag,
} from '../wire/types.ts';
import { LINKTYPE_ETHERNET } from './pcap.ts';

export interface TextFields {
  /** MAC addresses were printed (`-e`). */
  readonly link: boolean;
  readonly ipId: boolean;
  readonly ttl: boolean;
  readonly payload: false;
}

export interface TextPacket {
  readonly timeNs: bigint;
  /** 1-based line of the packet's first line. */
  readonly line: number;
  readonly frame: EthernetFrame;
  /** The frame emitted as Ethernet bytes (checksums computed). */
  readonly bytes: Uint8Array;
  readonly linkType: number;
}

export interface TextReadOptions {
  /** The text was printed with `-S`. */
  readonly absoluteSeq?: boolean;
  /** Midnight (UTC, ns since the epoch) of the day for `HH:MM:SS` times; default 1970-01-01. */
  readonly dayNs?: bigint;
  /** Host names a paste without `-n` may print, and their addresses (the scenario's nodes, the guests' /etc/hosts). */
  readonly hosts?: ReadonlyMap<string, Ipv4>;
  /** Service names it may print for ports (the capturing guest's /etc/services), before the well-known ones. */
  readonly services?: ReadonlyMap<string, number>;
}

/** Where names printed instead of numbers are looked up. */
export interface TextNames {
  readonly hosts?: ReadonlyMap<string, Ipv4>;
  readonly services?: ReadonlyMap<string, number>;
}

export interface TextReadResult {
  readonly packets: readonly TextPacket[];
  readonly fields: TextFields;
  readonly issues: readonly Issue[];
}

const TIME_RE =
  /^(?:(\d{4})-(\d{2})-(\d{2}) )?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?\s|^(\d{9,11})(?:\.(\d{1,9}))?\s/;
const DAY_NS = 86_400_000_000_000n;

function fracNs(f: string | undefined): bigint {
  if (!f) return 0n;
  return BigInt(f.padEnd(9, '0').slice(0, 9));
}

/** Splits text into packet blocks: a timestamped line and the indented lines after it. */
function blocks(text: string): { line: number; head: string; rest: string[] }[] {
  const out: { line: number; head: string; rest: string[] }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (TIME_RE.test(l)) out.push({ line: i + 1, head: l, rest: [] });
    else if (out.length > 0 && /^\s/.test(l)) out[out.length - 1]!.rest.push(l);
  }
  return out;
}

interface SeqState {
  seq: number;
  ack: number;
}

/** A cursor over one packet's text. */
class Cur {
  constructor(
    public s: string,
    public i = 0,
  ) {}
  ws(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }
  eat(re: RegExp): RegExpExecArray | undefined {
    this.ws();
    const r = new RegExp(re.source.startsWith('^') ? re.source : `^(?:${re.source})`, re.flags.replace('g', ''));
    const m = r.exec(this.s.slice(this.i));
    if (!m) return undefined;
    this.i += m[0].length;
    return m;
  }
  rest(): string {
    return this.s.slice(this.i);
  }
}

export function readTcpdumpText(text: string, file = '<text>', options: TextReadOptions = {}): TextReadResult {
  const issues: Issue[] = [];
  const packets: TextPacket[] = [];
  let link = true;
  let ipId = true;
  let ttlKnown = true;
  let day = options.dayNs ?? 0n;
  let lastTod = -1n;
  const seqs = new Map<string, SeqState>();
  let namesReported = false;
  for (const b of blocks(text)) {
    const m = TIME_RE.exec(b.head)!;
    let timeNs: bigint;
    if (m[8] !== undefined) timeNs = BigInt(m[8]) * 1_000_000_000n + fracNs(m[9]);
    else {
      const tod = ((BigInt(m[4]!) * 60n + BigInt(m[5]!)) * 60n + BigInt(m[6]!)) * 1_000_000_000n + fracNs(m[7]);
      if (m[1] !== undefined) {
        day = BigInt(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) * 1_000_000n;
      } else if (lastTod >= 0n && tod < lastTod - 3_600_000_000_000n) day += DAY_NS; // midnight passed
      lastTod = tod;
      timeNs = day + tod;
    }
    const body = [b.head.slice(m[0].length), ...b.rest.filter((l) => !/^\t/.test(l) || /^\t\(tos/.test(l))].join('\n');
    const r = parsePacket(body, options.absoluteSeq ?? false, seqs, options);
    if (typeof r === 'string') {
      if (r.startsWith(NAMES)) {
        // Once per file: every later line has names too.
        if (!namesReported) issues.push(issue('tcpdump-text-names', r, { file, line: b.line }));
        namesReported = true;
      } else issues.push(issue('tcpdump-text-line', r, { file, line: b.line }, 'warning'));
      continue;
    }
    if (!r.link) link = false;
    if (r.frame.payload.kind === 'ipv4' && !r.verbose) {
      ipId = false;
      ttlKnown = false;
    }
    packets.push({ timeNs, line: b.line, frame: r.frame, bytes: emitEthernet(r.frame), linkType: LINKTYPE_ETHERNET });
  }
  return { packets, fields: { link, ipId, ttl: ttlKnown, payload: false }, issues };
}

interface Parsed {
  frame: EthernetFrame;
  link: boolean;
  verbose: boolean;
}

const MAC = '[0-9a-f]{2}(?::[0-9a-f]{2}){5}';

const NAMES = 'host names in the paste (tcpdump without -n)';

/** A packet line read into a frame, or why it cannot be (one specific reason per kind of line). */
/** The largest IPv4 total length. */
const MAX_IPV4_LENGTH = 65535;

function parsePacket(
  body: string,
  absoluteSeq: boolean,
  seqs: Map<string, SeqState>,
  names: TextNames,
): Parsed | string {
  // Every length and payload size below is allocated as bytes: one no IPv4 packet can have (`length 4294967295`)
  // is refused here, before any allocation.
  for (const m of body.matchAll(/\blength:? (\d+)|\((\d+)\)/g)) {
    const n = Number(m[1] ?? m[2]);
    if (n > MAX_IPV4_LENGTH) return `length ${m[1] ?? m[2]} is more than an IPv4 packet holds (${MAX_IPV4_LENGTH})`;
  }
  const c = new Cur(body);
  let src: Mac = MAC_ZERO;
  let dst: Mac = MAC_ZERO;
  let link = false;
  const vlans: VlanTag[] = [];
  let etherType = ETHERTYPE_IPV4;
  const lm = c.eat(new RegExp(`(${MAC}) > (${MAC}), ethertype [^(]*\\(0x([0-9a-f]{4})\\), length \\d+: `));
  if (lm) {
    link = true;
    src = parseMac(lm[1]!)!;
    dst = parseMac(lm[2]!)!;
    etherType = Number.parseInt(lm[3]!, 16);
    for (;;) {
      const vm = c.eat(/vlan (\d+), p (\d+)(, DEI)?, ethertype [^(]*\(0x([0-9a-f]{4})\),? ?/);
      if (!vm) break;
      vlans.push({
        pcp: Number(vm[2]),
        dei: vm[3] !== undefined,
        vid: Number(vm[1]),
        ...(etherType !== 0x8100 ? { tpid: etherType } : {}),
      });
      etherType = Number.parseInt(vm[4]!, 16);
    }
  } else if (c.eat(/IP /)) etherType = ETHERTYPE_IPV4;
  else if (c.eat(/ARP, /)) etherType = ETHERTYPE_ARP;
  else if (/^\s*IP6\b/.test(c.rest())) return 'an IPv6 packet: lvsdoctor reads IPv4 and ARP only';
  else if (/^\s*(?:\S+ > \S+, )?ethertype /.test(c.rest()) || /^\s*\S+ > \S+, 802\.3/.test(c.rest()))
    return 'a frame that is neither IPv4 nor ARP (its ethertype or LLC is not read)';
  else return `not a packet line lvsdoctor reads (expected "IP …" or "ARP, …" after the time): ${clip(c.rest())}`;
  let payload: L3Payload | undefined;
  let verbose = false;
  if (etherType === ETHERTYPE_ARP) {
    payload = parseArp(c, src);
    if (!payload)
      return `an ARP line lvsdoctor does not read (only Ethernet/IPv4 requests and replies): ${clip(c.rest())}`;
  } else if (etherType === ETHERTYPE_IPV4) {
    const ip = parseIp(c, absoluteSeq, seqs, names);
    if (typeof ip === 'string') return ip;
    payload = ip.pkt;
    verbose = ip.verbose;
  } else if (etherType === 0x86dd) return 'an IPv6 packet: lvsdoctor reads IPv4 and ARP only';
  else return `ethertype 0x${etherType.toString(16).padStart(4, '0')}: lvsdoctor reads IPv4 and ARP only`;
  return { frame: { dst, src, vlans, etherType, payload }, link, verbose };
}

function clip(s: string): string {
  const t = s.trim();
  return t.length > 60 ? `${t.slice(0, 60)}…` : t;
}

/** Well-known service names tcpdump prints for ports without `-nn` (from /etc/services). */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  'ftp-data': 20,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  bootps: 67,
  bootpc: 68,
  tftp: 69,
  http: 80,
  www: 80,
  kerberos: 88,
  pop3: 110,
  sunrpc: 111,
  ntp: 123,
  'netbios-ns': 137,
  'netbios-dgm': 138,
  'netbios-ssn': 139,
  imap: 143,
  imap2: 143,
  snmp: 161,
  'snmp-trap': 162,
  bgp: 179,
  ldap: 389,
  https: 443,
  'microsoft-ds': 445,
  isakmp: 500,
  syslog: 514,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pop3s: 995,
  'ms-sql-s': 1433,
  openvpn: 1194,
  radius: 1812,
  'radius-acct': 1813,
  nfs: 2049,
  mysql: 3306,
  'ms-wbt-server': 3389,
  postgresql: 5432,
  'http-alt': 8080,
  webcache: 8080,
  'https-alt': 8443,
  memcache: 11211,
  redis: 6379,
  vrrp: 112,
};

/**
 * One end of `A > B:` as tcpdump prints it: `192.0.2.1.80`, `192.0.2.1.http` (`-n`), `web1.example.com.http`
 * (no `-n`), or an address alone. Host names are looked up in `names.hosts`, service names in `names.services` (a
 * guest's /etc/services) then the well-known services.
 */
function endpoint(t: string, withPort: boolean, names: TextNames): { addr: Ipv4; port: number } | string {
  let host = t;
  let port = 0;
  if (withPort) {
    const k = t.lastIndexOf('.');
    if (k <= 0) return `cannot read "${t}" as address.port`;
    host = t.slice(0, k);
    const p = t.slice(k + 1);
    const named = names.services?.get(p) ?? SERVICES[p];
    if (/^\d+$/.test(p)) port = Number(p);
    else if (named !== undefined) port = named;
    else
      return `the service name "${p}" in "${t}" is neither a well-known one${names.services ? ' nor in the /etc/services given' : ''}: print the capture with -nn`;
  }
  const a = parseIpv4(host) ?? names.hosts?.get(host);
  if (a === undefined)
    return `${NAMES}: "${host}" is not known to the scenario; print or capture with -nn (numeric hosts and ports), or give the scenario the capturing guest's /etc/hosts (etc-hosts)`;
  return { addr: a, port };
}

function parseArp(c: Cur, src: Mac): L3Payload | undefined {
  c.eat(/Ethernet \(len 6\), IPv4 \(len 4\), /);
  const req = c.eat(/Request who-has (\S+)(?: \((\S+)\))? tell (\S+?),/);
  if (req) {
    const tpa = parseIpv4(req[1]!);
    const spa = parseIpv4(req[3]!);
    if (tpa === undefined || spa === undefined) return undefined;
    return {
      kind: 'arp',
      htype: 1,
      ptype: ETHERTYPE_IPV4,
      op: 1,
      sha: src,
      spa,
      tha: (req[2] ? parseMac(req[2]) : undefined) ?? MAC_ZERO,
      tpa,
    };
  }
  const rep = c.eat(/Reply (\S+) is-at (\S+?),/);
  if (rep) {
    const spa = parseIpv4(rep[1]!);
    const sha = parseMac(rep[2]!);
    if (spa === undefined || sha === undefined) return undefined;
    return { kind: 'arp', htype: 1, ptype: ETHERTYPE_IPV4, op: 2, sha, spa, tha: MAC_ZERO, tpa: 0 as Ipv4 };
  }
  return undefined;
}

interface IpHead {
  tos: number;
  ttl: number;
  id: number;
  df: boolean;
  mf: boolean;
  offset: number;
  proto: number;
  length: number;
}

function parseIp(
  c: Cur,
  absoluteSeq: boolean,
  seqs: Map<string, SeqState>,
  names: TextNames,
): { pkt: Ipv4Packet; verbose: boolean } | string {
  let head: IpHead | undefined;
  const hv = c.eat(
    /(?:truncated-ip - \d+ bytes missing! )?\(tos (0x[0-9a-f]+)[^,]*, (?:ttl (\d+), )?id (\d+), offset (\d+), flags \[([^\]]*)\], proto [^(]*\((\d+)\), length (\d+)[^\n]*\)/,
  );
  if (hv) {
    const fl = hv[5]!;
    head = {
      tos: Number.parseInt(hv[1]!, 16),
      ttl: hv[2] !== undefined ? Number(hv[2]) : 64,
      id: Number(hv[3]),
      df: fl.includes('DF'),
      mf: fl.includes('+'),
      offset: Number(hv[4]) / 8,
      proto: Number(hv[6]),
      length: Number(hv[7]),
    };
  }
  const ends = c.eat(/(\S+) > (\S+?):(?=\s|$)/);
  if (!ends) return `cannot find "source > destination:" in: ${clip(c.rest())}`;
  const after = c.rest();
  if (/^\s*sctp\b/.test(after) || head?.proto === 132)
    return 'an SCTP packet: lvsdoctor does not read SCTP (its chunks are not modelled)';
  if (/^\s*DCCP-/.test(after) || head?.proto === 33) return 'a DCCP packet: lvsdoctor does not read DCCP';
  if (head === undefined && /^\s*\[\|(\w+)\]/.test(after))
    return `cut short by tcpdump's snapshot length (${/\[\|(\w+)\]/.exec(after)![0]}): the ${/\[\|(\w+)\]/.exec(after)![1]} header is incomplete`;
  // Ports: numeric `a.b.c.d.p` always; with names, when the packet is TCP or UDP (otherwise the last label is the host's).
  const numeric = /^\d+\.\d+\.\d+\.\d+(?:\.\d+)?$/;
  const ported =
    numeric.test(ends[1]!) && numeric.test(ends[2]!)
      ? ends[1]!.split('.').length === 5
      : head?.proto === 6 ||
        head?.proto === 17 ||
        /^\s*Flags \[/.test(after) ||
        (!/^\s*(ICMP|ip-proto-|igmp|GRE|VRRP|OSPF|ESP|AH|PIM)/i.test(after) && head?.proto !== 1);
  const se = endpoint(ends[1]!, ported, names);
  if (typeof se === 'string') return se;
  const de = endpoint(ends[2]!, ported, names);
  if (typeof de === 'string') return de;
  const src = se.addr;
  const dst = de.addr;
  const sport = se.port;
  const dport = de.port;
  let proto = head?.proto;
  let l4: L4Payload | undefined;
  const ipHdrLen = 20;
  const innerLen = head ? head.length - ipHdrLen : undefined;
  if (proto === 4 || (proto === undefined && /^\s*(?:\(tos|IP )/.test(c.rest()))) {
    c.eat(/IP /);
    const inner = parseIp(c, absoluteSeq, seqs, names);
    if (typeof inner === 'string') return inner;
    l4 = inner.pkt;
    proto = 4;
  } else {
    const rest = c.rest();
    const rawProto = /^\s*ip-proto-(\d+)(?: (\d+))?/.exec(rest);
    if (/^\s*Flags \[/.test(rest)) {
      proto = 6;
      l4 = parseTcp(c, src, dst, sport, dport, absoluteSeq, seqs);
    } else if (/^\s*ICMP /.test(rest)) {
      proto = 1;
      l4 = parseIcmp(rest, innerLen);
    } else if (rawProto) {
      proto = Number(rawProto[1]);
      const n = rawProto[2] !== undefined ? Number(rawProto[2]) : (innerLen ?? 0);
      l4 = { kind: 'raw', bytes: new Uint8Array(Math.max(0, n)) };
    } else if ((proto === undefined && ported) || proto === 17) {
      // UDP: `UDP, length N`, or a line tcpdump decoded at the application layer (DNS `… (45)`, `NTPv4, …,
      // length 48`, `BOOTP/DHCP, …, length 300`): the payload length is the last one printed.
      proto = 17;
      const lm =
        /UDP, (?:bad length \d+ > )?length (\d+)/.exec(rest) ??
        /\((\d+)\)\s*$/.exec(rest) ??
        // The last `length N` (a lookahead `(?!.*length)` after each one is quadratic in their number).
        [...rest.matchAll(/(?:^|[ ,])length:? (\d+)\b/g)].at(-1) ??
        null;
      const n = lm ? Number(lm[1]) : Math.max(0, (innerLen ?? 8) - 8);
      l4 = { kind: 'udp', srcPort: sport, dstPort: dport, payload: new Uint8Array(n) };
    } else {
      const n = innerLen ?? 0;
      l4 = { kind: 'raw', bytes: new Uint8Array(Math.max(0, n)) };
    }
  }
  if (!l4 || proto === undefined) return `cannot read the ${proto === 6 ? 'TCP' : 'IP'} part of: ${clip(c.rest())}`;
  const pkt: Ipv4Packet = {
    kind: 'ipv4',
    tos: head?.tos ?? 0,
    id: head?.id ?? 0,
    dontFragment: head?.df ?? false,
    moreFragments: head?.mf ?? false,
    fragmentOffset: head?.offset ?? 0,
    ttl: head?.ttl ?? 64,
    protocol: proto,
    src,
    dst,
    payload: l4,
  };
  return { pkt, verbose: head !== undefined };
}

function parseTcp(
  c: Cur,
  src: Ipv4,
  dst: Ipv4,
  sport: number,
  dport: number,
  absoluteSeq: boolean,
  seqs: Map<string, SeqState>,
): L4Payload | undefined {
  const rest = c.rest();
  const fm = /Flags \[([^\]]*)\]/.exec(rest);
  if (!fm) return undefined;
  let flags = 0;
  const chars: Record<string, number> = { F: 1, S: 2, R: 4, P: 8, '.': 16, U: 32, E: 64, W: 128 };
  if (fm[1] !== 'none') for (const ch of fm[1]!) flags |= chars[ch] ?? 0;
  const seqM = /, seq (\d+)(?::(\d+))?/.exec(rest);
  const ackM = /, ack (\d+)/.exec(rest);
  const winM = /, win (\d+)/.exec(rest);
  const urgM = /, urg (\d+)/.exec(rest);
  const lenM = /, length (\d+)/.exec(rest);
  let seq = seqM ? Number(seqM[1]) : 0;
  let ack = ackM ? Number(ackM[1]) : 0;
  const payloadLen = lenM ? Number(lenM[1]) : seqM?.[2] !== undefined ? Number(seqM[2]) - Number(seqM[1]) : 0;
  if (!absoluteSeq && flags & TCP_ACK) {
    let rev = false;
    if (sport > dport) rev = true;
    else if (sport === dport && src > dst) rev = true;
    const key = rev ? `${dst}|${src}|${dport}|${sport}` : `${src}|${dst}|${sport}|${dport}`;
    const th = seqs.get(key);
    if (th === undefined || flags & TCP_SYN) {
      seqs.set(key, rev ? { ack: seq, seq: (ack - 1) >>> 0 } : { seq, ack: (ack - 1) >>> 0 });
    } else if (rev) {
      if (seqM) seq = (seq + th.ack) >>> 0;
      ack = (ack + th.seq) >>> 0;
    } else {
      if (seqM) seq = (seq + th.seq) >>> 0;
      ack = (ack + th.ack) >>> 0;
    }
  }
  // `-nn` without `-v` leaves out the sequence number of empty segments: it is the sender's next one.
  const dirKey = `>${src}|${dst}|${sport}|${dport}`;
  if (!seqM) {
    const next = seqs.get(dirKey);
    if (next) seq = next.seq;
  }
  seqs.set(dirKey, { seq: (seq + payloadLen + (flags & (TCP_SYN | 1) ? 1 : 0)) >>> 0, ack: 0 });
  const options: TcpOption[] = [];
  const om = /options \[([^\]]*(?:\{[^}]*\}[^\]]*)*)\]/.exec(rest);
  if (om) {
    for (const part of om[1]!.split(',')) {
      const p = part.trim();
      const mss = /^mss (\d+)$/.exec(p);
      const ws = /^wscale (\d+)$/.exec(p);
      const ts = /^TS val (\d+) ecr (\d+)$/.exec(p);
      if (p === 'nop') options.push({ kind: 'nop' });
      else if (p === 'eol') options.push({ kind: 'eol' });
      else if (p === 'sackOK') options.push({ kind: 'sack-permitted' });
      else if (mss) options.push({ kind: 'mss', value: Number(mss[1]) });
      else if (ws) options.push({ kind: 'wscale', shift: Number(ws[1]) });
      else if (ts) options.push({ kind: 'timestamp', val: Number(ts[1]), ecr: Number(ts[2]) });
    }
  }
  void c;
  return {
    kind: 'tcp',
    srcPort: sport,
    dstPort: dport,
    seq,
    ack,
    flags,
    window: winM ? Number(winM[1]) : 0,
    urgent: urgM ? Number(urgM[1]) : 0,
    options,
    payload: new Uint8Array(Math.max(0, payloadLen)),
  };
}

function parseIcmp(rest: string, innerLen: number | undefined): L4Payload {
  const lenM = /, length (\d+)/.exec(rest);
  const total = lenM ? Number(lenM[1]) : (innerLen ?? 8);
  const body = new Uint8Array(Math.max(0, total - 8));
  let type = 0;
  let rest32 = 0;
  const echo = /ICMP echo (request|reply), id (\d+), seq (\d+)/.exec(rest);
  if (echo) {
    type = echo[1] === 'request' ? 8 : 0;
    rest32 = ((Number(echo[2]) << 16) | Number(echo[3])) >>> 0;
  } else if (/unreachable/.test(rest)) type = 3;
  else if (/time exceeded/.test(rest)) type = 11;
  return { kind: 'icmp', type, code: 0, rest: rest32, payload: body };
}
