/**
 * Renders frames the way tcpdump 4.99.3 prints them when reading a capture (`tcpdump -r FILE -nnn` with `-e` and
 * `-v…` as chosen), byte for byte, from the captured bytes, so checksums are verified as tcpdump does. Written from
 * tcpdump's observable behaviour; golden files made by the real tool are the oracle (fixtures/tcpdump/).
 *
 * The renderer is stateful like tcpdump: a TCP conversation's first segment with ACK set records the initial
 * sequence numbers, later ones are printed relative to them (unless `absoluteSeq`, tcpdump's `-S`). Render a
 * whole file with one `TcpdumpRenderer`, in order.
 *
 * Covered: Ethernet (+ 802.1Q/802.1ad tags), ARP/RARP, IPv4 (options, fragments, IPIP), TCP (all options tcpdump
 * names, HTTP request/response lines on ports 80/8080, RST data), UDP, ICMP (echo, errors quoting packets), unknown
 * ethertypes (hex dump) and IP protocols. Not covered (printed as if tcpdump had no dissector for them): IPv6, LLC/802.3,
 * and the application protocols other than HTTP that tcpdump decodes on well-known ports (DNS, DHCP, NTP, SNMP…).
 * Never throws.
 */
import { expectedChecksum, finishChecksum, sumWords } from './checksum.ts';

export type TcpdumpTimeFormat =
  /** `HH:MM:SS.uuuuuu` (tcpdump's default; always UTC here, as with `TZ=UTC`). */
  | 'time'
  /** `-t`: no timestamp. */
  | 'none'
  /** `-tt`: seconds since the epoch. */
  | 'epoch'
  /** `-tttt`: `YYYY-MM-DD HH:MM:SS.uuuuuu`. */
  | 'date-time';

export interface TcpdumpOptions {
  /** `-e`: print the link-level header. */
  readonly link?: boolean;
  /** Number of `-v`s (0–3). */
  readonly verbosity?: number;
  /** `-S`: absolute TCP sequence numbers. */
  readonly absoluteSeq?: boolean;
  readonly time?: TcpdumpTimeFormat;
  /**
   * The name of an interface index, for Linux cooked v2 captures (`tcpdump -i any`): tcpdump 4.99 prints the name the
   * *reading* machine gives that index (`if_indextoname`), `?` when it has none. Without this, every index is `?`.
   */
  readonly interfaceName?: (ifindex: number) => string | undefined;
}

/**
 * Link types (pcap `LINKTYPE_…` numbers) the renderer prints as tcpdump 4.99 on Linux does: Ethernet, Linux cooked
 * SLL and SLL2, raw IP (101, 12, and the IPv4/IPv6-only 228/229), BSD null and OpenBSD loop. (Link type 14, raw IP on
 * OpenBSD, is refused by tcpdump on Linux: "unknown data link type 14".)
 */
export const TCPDUMP_LINK_TYPES: ReadonlySet<number> = new Set([0, 1, 12, 101, 108, 113, 228, 229, 276]);

/** `tcpdump -e -vvv -nnn`. */
export const TCPDUMP_E_VVV: TcpdumpOptions = { link: true, verbosity: 3 };
/** `tcpdump -nn`. */
export const TCPDUMP_NN: TcpdumpOptions = { link: false, verbosity: 0 };

/** A captured frame: bytes as captured, time, and the length on the wire (defaults to the byte count). */
export interface CapturedFrame {
  readonly timeNs: bigint;
  readonly bytes: Uint8Array;
  readonly originalLength?: number;
}

const ETHERTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0x0800, 'IPv4'],
  [0x8847, 'MPLS unicast'],
  [0x8848, 'MPLS multicast'],
  [0x86dd, 'IPv6'],
  [0x8100, '802.1Q'],
  [0x9100, '802.1Q-9100'],
  [0x88a8, '802.1Q-QinQ'],
  [0x9200, '802.1Q-9200'],
  [0x88e5, '802.1AE MACsec'],
  [0x0200, 'PUP'],
  [0x0806, 'ARP'],
  [0x8035, 'Reverse ARP'],
  [0x0600, 'NS'],
  [0x0500, 'Sprite'],
  [0x1000, 'Trail'],
  [0x6001, 'MOP DL'],
  [0x6002, 'MOP RC'],
  [0x6003, 'DN'],
  [0x6004, 'LAT'],
  [0x6007, 'SCA'],
  [0x6558, 'TEB'],
  [0x8038, 'Lanbridge'],
  [0x803c, 'DEC DNS'],
  [0x803e, 'DEC DTS'],
  [0x805b, 'VEXP'],
  [0x805c, 'VPROD'],
  [0x809b, 'Appletalk'],
  [0x80f3, 'Appletalk ARP'],
  [0x8137, 'IPX'],
  [0x880b, 'PPP'],
  [0x8808, 'MPCP'],
  [0x8809, 'Slow Protocols'],
  [0x8863, 'PPPoE D'],
  [0x8864, 'PPPoE S'],
  [0x888e, 'EAPOL'],
  [0x8899, 'Realtek protocols'],
  [0x886f, 'MS NLB heartbeat'],
  [0x8870, 'Jumbo'],
  [0x894f, 'NSH'],
  [0x9000, 'Loopback'],
  [0xfefe, 'OSI'],
  [0x00fe, 'GRE-OSI'],
  [0xabcd, 'CFM (old)'],
  [0x8902, 'CFM'],
  [0x893a, 'IEEE1905.1'],
  [0x88cc, 'LLDP'],
  [0x88ca, 'TIPC'],
  [0x0707, 'GeoNet (old)'],
  [0x8947, 'GeoNet'],
  [0x1111, 'CALM FAST'],
  [0x88a2, 'AoE'],
  [0x88f7, 'PTP'],
  [0xd28b, 'Arista Vendor Specific Protocol'],
]);

const IPPROTO_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'Options'],
  [1, 'ICMP'],
  [2, 'IGMP'],
  [4, 'IPIP'],
  [6, 'TCP'],
  [8, 'EGP'],
  [9, 'IGRP'],
  [17, 'UDP'],
  [33, 'DCCP'],
  [41, 'IPv6'],
  [43, 'Routing'],
  [44, 'Fragment'],
  [46, 'RSVP'],
  [47, 'GRE'],
  [50, 'ESP'],
  [51, 'AH'],
  [55, 'Mobile IP'],
  [58, 'ICMPv6'],
  [62, 'Mobile IP (old)'],
  [88, 'EIGRP'],
  [89, 'OSPF'],
  [103, 'PIM'],
  [108, 'Compressed IP'],
  [112, 'VRRP'],
  [113, 'PGM'],
  [132, 'SCTP'],
  [135, 'Mobility'],
  [143, 'Ethernet'],
]);

const IP_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'EOL'],
  [1, 'NOP'],
  [68, 'timestamp'],
  [130, 'security'],
  [7, 'RR'],
  [137, 'SSRR'],
  [131, 'LSRR'],
  [148, 'RA'],
  [82, 'traceroute'],
]);

const TCP_OPTION_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'eol'],
  [1, 'nop'],
  [2, 'mss'],
  [3, 'wscale'],
  [4, 'sackOK'],
  [5, 'sack'],
  [6, 'echo'],
  [7, 'echoreply'],
  [8, 'TS'],
  [11, 'cc'],
  [12, 'ccnew'],
  [13, ''],
  [19, 'md5'],
  [20, 'scps'],
  [28, 'uto'],
  [29, 'tcp-ao'],
  [30, 'mptcp'],
  [34, 'tfo'],
  [254, 'exp'],
]);

const TCP_FLAG_CHARS: readonly (readonly [number, string])[] = [
  [0x01, 'F'],
  [0x02, 'S'],
  [0x04, 'R'],
  [0x08, 'P'],
  [0x10, '.'],
  [0x20, 'U'],
  [0x40, 'E'],
  [0x80, 'W'],
];

const ARP_OPS: ReadonlyMap<number, string> = new Map([
  [1, 'Request'],
  [2, 'Reply'],
  [3, 'Reverse Request'],
  [4, 'Reverse Reply'],
  [8, 'Inverse Request'],
  [9, 'Inverse Reply'],
  [10, 'NACK Reply'],
]);

const ARP_HRD: ReadonlyMap<number, string> = new Map([
  [1, 'Ethernet'],
  [6, 'TokenRing'],
  [7, 'ArcNet'],
  [15, 'FrameRelay'],
  [23, 'Strip'],
  [24, 'IEEE 1394'],
  [19, 'ATM'],
  [32, 'InfiniBand'],
]);

const ICMP_SIMPLE: ReadonlyMap<number, string> = new Map([
  [0, 'echo reply'],
  [4, 'source quench'],
  [8, 'echo request'],
  [10, 'router solicitation'],
  [13, 'time stamp request'],
  [14, 'time stamp reply'],
  [15, 'information request'],
  [16, 'information reply'],
  [17, 'address mask request'],
]);

const HTTP_METHODS: ReadonlySet<string> = new Set(
  (
    'GET PUT COPY HEAD LOCK MOVE POLL POST BCOPY BMOVE MKCOL TRACE LABEL MERGE DELETE SEARCH UNLOCK REPORT UPDATE ' +
    'NOTIFY BDELETE CONNECT OPTIONS CHECKIN PROPFIND CHECKOUT CCM_POST SUBSCRIBE PROPPATCH BPROPFIND BPROPPATCH ' +
    'UNCHECKOUT MKACTIVITY MKWORKSPACE UNSUBSCRIBE RPC_CONNECT VERSION-CONTROL BASELINE-CONTROL'
  ).split(' '),
);

const HEX2 = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Thrown inside the renderer when a read passes the captured data (tcpdump's longjmp); caught per frame. */
const TRUNCATED: unique symbol = Symbol('truncated');

const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;
const MAX_RST_DATA_LEN = 30;
const ICMP_EXTD_MINLEN = 136;

/** print-ether.c `ieee8021q_tci_string`. */
function vlanTci(tci: number): string {
  return `vlan ${tci & 0xfff}, p ${tci >>> 13}${tci & 0x1000 ? ', DEI' : ''}`;
}

function hex4(n: number): string {
  return n.toString(16).padStart(4, '0');
}

function isPrint(c: number): boolean {
  return c >= 0x20 && c <= 0x7e;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/** One frame being printed: the bytes, the end of what may be read (tcpdump's snapend), the text so far. */
class Job {
  out = '';
  proto = '';
  /** What tcpdump decodes here that this renderer does not (the line then differs from tcpdump's from there on). */
  undecoded: string | undefined;
  constructor(
    readonly b: Uint8Array,
    public snapend: number,
  ) {}

  has(off: number, len: number): boolean {
    return off >= 0 && len >= 0 && off + len <= this.snapend;
  }

  need(off: number, len: number): void {
    if (!this.has(off, len)) throw TRUNCATED;
  }

  u8(off: number): number {
    this.need(off, 1);
    return this.b[off]!;
  }

  u16(off: number): number {
    this.need(off, 2);
    return (this.b[off]! << 8) | this.b[off + 1]!;
  }

  u32(off: number): number {
    this.need(off, 4);
    return ((this.b[off]! << 24) | (this.b[off + 1]! << 16) | (this.b[off + 2]! << 8) | this.b[off + 3]!) >>> 0;
  }

  ipaddr(off: number): string {
    this.need(off, 4);
    const b = this.b;
    return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
  }

  mac(off: number): string {
    this.need(off, 6);
    const b = this.b;
    return `${HEX2[b[off]!]}:${HEX2[b[off + 1]!]}:${HEX2[b[off + 2]!]}:${HEX2[b[off + 3]!]}:${HEX2[b[off + 4]!]}:${HEX2[b[off + 5]!]}`;
  }

  trunc(): void {
    this.out += ` [|${this.proto}]`;
  }
}

interface SeqEntry {
  seq: number;
  ack: number;
}

/** Renders frames one after the other with tcpdump's per-file state (TCP initial sequence numbers). */
export class TcpdumpRenderer {
  private readonly link: boolean;
  private readonly v: number;
  private readonly absoluteSeq: boolean;
  private readonly time: TcpdumpTimeFormat;
  private readonly interfaceName: (ifindex: number) => string | undefined;
  private readonly seqs = new Map<string, SeqEntry>();
  /**
   * After `render`: what tcpdump would decode in that frame and this renderer does not (e.g. `LLC`, `IPv6`, `DNS
   * (UDP port 53)`), else undefined — the line is then byte-identical to tcpdump's.
   */
  lastUndecoded: string | undefined;

  constructor(options: TcpdumpOptions = TCPDUMP_E_VVV) {
    this.link = options.link ?? false;
    this.v = options.verbosity ?? 0;
    this.absoluteSeq = options.absoluteSeq ?? false;
    this.time = options.time ?? 'time';
    this.interfaceName = options.interfaceName ?? (() => undefined);
  }

  /** Forgets TCP conversations, as a new tcpdump process would. */
  reset(): void {
    this.seqs.clear();
  }

  /**
   * The text tcpdump prints for one frame, without the final newline. `linkType` is the capture's pcap link type
   * (Ethernet by default; see `TCPDUMP_LINK_TYPES`). Never throws.
   */
  render(bytes: Uint8Array, timeNs: bigint, originalLength: number = bytes.length, linkType = LINK_ETHERNET): string {
    this.lastUndecoded = undefined;
    try {
      return this.renderUnsafe(bytes, timeNs, originalLength, linkType);
    } catch (e) {
      // Defensive: a bug must not take the caller down; say what happened in the output instead.
      return `${this.timestamp(timeNs)}[lvsdoctor renderer error: ${e instanceof Error ? e.message : String(e)}]`;
    }
  }

  /** A whole capture, each frame followed by a newline, like tcpdump's standard output. */
  renderAll(frames: Iterable<CapturedFrame>): string {
    let s = '';
    for (const f of frames) s += `${this.render(f.bytes, f.timeNs, f.originalLength ?? f.bytes.length)}\n`;
    return s;
  }

  private renderUnsafe(bytes: Uint8Array, timeNs: bigint, len: number, linkType: number): string {
    const caplen = bytes.length;
    let invalid = '';
    if (caplen === 0) invalid = '[Invalid header: caplen==0';
    if (len === 0) invalid += invalid ? ', len==0' : '[Invalid header: len==0';
    else if (len < caplen) invalid += `${invalid ? ',' : '[Invalid header:'} len(${len}) < caplen(${caplen})`;
    if (caplen > 262144) invalid += `${invalid ? ',' : '[Invalid header:'} caplen(${caplen}) > 262144`;
    if (len > 262144) invalid += `${invalid ? ',' : '[Invalid header:'} len(${len}) > 262144`;
    if (invalid) return `${invalid}]`;
    const j = new Job(bytes, caplen);
    j.out = this.timestamp(timeNs);
    try {
      switch (linkType) {
        case LINK_ETHERNET:
          this.ether(j, len, caplen);
          break;
        case LINK_LINUX_SLL:
          this.sll(j, len, caplen);
          break;
        case LINK_LINUX_SLL2:
          this.sll2(j, len, caplen);
          break;
        case LINK_RAW:
        case LINK_RAW_12:
        case LINK_IPV4:
        case LINK_IPV6:
          if (this.link) j.out += 'ip: ';
          this.ipN(j, 0, len, caplen);
          break;
        case LINK_NULL:
        case LINK_LOOP:
          this.nullLink(j, len, caplen);
          break;
        default:
          j.out += `[link type ${linkType} is not printed by lvsdoctor]`;
          j.undecoded = `link type ${linkType}`;
      }
    } catch (e) {
      if (e !== TRUNCATED) throw e;
      j.trunc();
    }
    this.lastUndecoded = j.undecoded;
    return j.out;
  }

  private timestamp(timeNs: bigint): string {
    if (this.time === 'none') return '';
    const us = timeNs >= 0n ? timeNs / 1000n : 0n;
    const sec = us / 1_000_000n;
    const frac = String(Number(us % 1_000_000n)).padStart(6, '0');
    if (this.time === 'epoch') return `${sec}.${frac} `;
    const d = new Date(Number(sec) * 1000);
    const hms = `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}.${frac} `;
    if (this.time === 'time') return hms;
    return `${d.getUTCFullYear()}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())} ${hms}`;
  }

  // ---- Ethernet -------------------------------------------------------------------------------------------------

  private etherTypeText(t: number): string {
    return `ethertype ${ETHERTYPE_NAMES.get(t) ?? 'Unknown'} (0x${hex4(t)})`;
  }

  private ether(j: Job, origLength: number, caplen0: number): void {
    j.proto = 'ether';
    let length = origLength;
    let caplen = caplen0;
    if (caplen < 14) {
      j.trunc();
      return;
    }
    const src = j.mac(6);
    const dst = j.mac(0);
    if (this.link) j.out += `${src} > ${dst}, `;
    length -= 12;
    caplen -= 12;
    let p = 12;
    let type = j.u16(p);
    length -= 2;
    caplen -= 2;
    p += 2;
    let printedLength = false;
    while (type === 0x8100 || type === 0x9100 || type === 0x9200 || type === 0x88a8) {
      if (caplen < 4 || length < 4) {
        j.proto = 'vlan';
        j.trunc();
        return;
      }
      if (this.link) {
        const tci = j.u16(p);
        j.out += this.etherTypeText(type);
        if (!printedLength) {
          j.out += `, length ${origLength}: `;
          printedLength = true;
        } else j.out += ', ';
        j.out += `${vlanTci(tci)}, `;
      }
      type = j.u16(p + 2);
      p += 4;
      length -= 4;
      caplen -= 4;
    }
    if (type <= 1500) {
      // 802.3 length field; LLC is not decoded (documented): print what tcpdump prints before the LLC header.
      if (type < length) {
        length = type;
        if (caplen > length) caplen = length;
      }
      if (this.link) {
        j.out += '802.3';
        if (!printedLength) j.out += `, length ${length}: `;
      }
      j.undecoded = 'LLC (802.3: STP, CDP, IS-IS…)';
      this.hexdump(j, p, caplen);
      return;
    }
    if (this.link) {
      j.out += this.etherTypeText(type);
      j.out += printedLength ? ', ' : `, length ${origLength}: `;
    }
    if (type === 0x0800) this.ip(j, p, length);
    else if (type === 0x0806 || type === 0x8035) this.arp(j, p, length, caplen);
    else {
      if (!this.link) j.out += `${src} > ${dst}, ${this.etherTypeText(type)}, length ${origLength}: `;
      const name = TCPDUMP_DECODED_ETHERTYPES.get(type);
      if (name !== undefined) j.undecoded = `${name} (ethertype 0x${hex4(type)})`;
      this.hexdump(j, p, caplen);
    }
  }

  // ---- Linux cooked (SLL, SLL2), raw IP, BSD null / OpenBSD loop ---------------------------------------------------

  /** print-sll.c `sll_print`/`sll2_print`: the cooked header with `-e` (or before an ethertype tcpdump does not know). */
  private cookedHeader(j: Job, v2: boolean, length: number): void {
    const b = j.b;
    if (v2) {
      j.out += `ifindex ${j.u32(4)} `;
      if (b[11] === 6) j.out += `${j.mac(12)} `;
    } else {
      j.out += `${(SLL_PACKET_TYPE_NAMES[j.u16(0)] ?? '?').padStart(3)} `;
      if (j.u16(4) === 6) j.out += `${j.mac(6)} `;
    }
    const type = j.u16(v2 ? 0 : 14);
    if (type <= 1500) j.out += type === 1 ? '802.3' : type === 4 ? '802.2' : `ethertype Unknown (0x${hex4(type)})`;
    else j.out += this.etherTypeText(type);
    j.out += `, length ${length}: `;
  }

  private sll(j: Job, len: number, caplen: number): void {
    j.proto = 'sll';
    if (caplen < 16) {
      j.trunc();
      return;
    }
    if (this.link) this.cookedHeader(j, false, len);
    this.cookedPayload(j, false, j.u16(14), 16, len - 16, caplen - 16, len);
  }

  private sll2(j: Job, len: number, caplen: number): void {
    j.proto = 'sll2';
    if (caplen < 20) {
      j.trunc();
      return;
    }
    const ifindex = j.u32(4);
    j.out += `${(this.interfaceName(ifindex) ?? '?').padEnd(5)} ${(SLL_PACKET_TYPE_NAMES[j.u8(10)] ?? '?').padEnd(3)} `;
    if (this.link) this.cookedHeader(j, true, len);
    this.cookedPayload(j, true, j.u16(0), 20, len - 20, caplen - 20, len);
  }

  /** print-sll.c after the cooked header: 802.3/802.2 by protocol number, VLAN tags, then the ethertype. */
  private cookedPayload(
    j: Job,
    v2: boolean,
    type0: number,
    p0: number,
    length0: number,
    caplen0: number,
    origLen: number,
  ): void {
    let type = type0;
    let p = p0;
    let length = length0;
    let caplen = caplen0;
    for (;;) {
      if (type <= 1500) {
        if (type === 1) j.undecoded = 'IPX (802.3)';
        else if (type === 4) j.undecoded = 'LLC (802.2)';
        this.hexdump(j, p, caplen);
        return;
      }
      if (type !== 0x8100) break;
      if (caplen < 4 || length < 4) {
        j.proto = 'vlan';
        j.trunc();
        return;
      }
      if (this.link) {
        const tci = j.u16(p);
        j.out += `${vlanTci(tci)}, `;
      }
      type = j.u16(p + 2);
      if (type <= 1500) type = 4;
      j.out += `ethertype ${ETHERTYPE_NAMES.get(type) ?? 'Unknown'}, `;
      p += 4;
      length -= 4;
      caplen -= 4;
    }
    if (type === 0x0800) this.ip(j, p, length);
    else if (type === 0x0806 || type === 0x8035) this.arp(j, p, length, caplen);
    else {
      const name = TCPDUMP_DECODED_ETHERTYPES.get(type);
      if (name !== undefined) j.undecoded = `${name} (ethertype 0x${hex4(type)})`;
      else if (!this.link) this.cookedHeader(j, v2, origLen);
      this.hexdump(j, p, caplen);
    }
  }

  /** print-raw.c / `ipN_print`: the IP version decides. */
  private ipN(j: Job, p: number, length: number, caplen: number): void {
    j.proto = 'ipN';
    const version = j.u8(p) >>> 4;
    if (version === 4) this.ip(j, p, length);
    else if (version === 6) {
      j.undecoded = 'IPv6';
      this.hexdump(j, p, caplen);
    } else j.out += `unknown ip ${version}`;
  }

  /** print-null.c: a 4-byte address family in the writer's byte order (a value above 0xffff is byte-swapped). */
  private nullLink(j: Job, len: number, caplen: number): void {
    j.proto = 'null';
    j.need(0, 4);
    const b = j.b;
    let family = (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    if (family & 0xffff0000) family = ((b[3]! | (b[2]! << 8) | (b[1]! << 16) | (b[0]! << 24)) >>> 0) & 0xffffffff;
    const header = `AF ${BSD_AF_NAMES.get(family) ?? 'Unknown'} (${family}), length ${len}: `;
    if (this.link) j.out += header;
    if (family === 2) this.ip(j, 4, len - 4);
    else if (family === 24 || family === 28 || family === 30) {
      j.undecoded = 'IPv6';
      this.hexdump(j, 4, caplen - 4);
    } else {
      if (family === 7 || family === 16 || family === 23) j.undecoded = BSD_AF_NAMES.get(family);
      else if (!this.link) j.out += header;
      this.hexdump(j, 4, caplen - 4);
    }
  }

  /** tcpdump's default printer for undecoded data: hex and ASCII, 16 bytes a line, each line after `\n\t`. */
  private hexdump(j: Job, start: number, length: number): void {
    let n = length;
    let truncated = false;
    const avail = Math.max(0, j.snapend - start);
    if (n > avail) {
      n = avail;
      truncated = true;
    }
    let off = 0;
    while (off < n) {
      const lineLen = Math.min(16, n - off);
      let hex = '';
      let ascii = '';
      for (let i = 0; i < lineLen; i += 2) {
        const c1 = j.b[start + off + i]!;
        ascii += c1 > 0x20 && c1 < 0x7f ? String.fromCharCode(c1) : '.';
        if (i + 1 < lineLen) {
          const c2 = j.b[start + off + i + 1]!;
          hex += ` ${HEX2[c1]}${HEX2[c2]}`;
          ascii += c2 > 0x20 && c2 < 0x7f ? String.fromCharCode(c2) : '.';
        } else hex += ` ${HEX2[c1]}`;
      }
      j.out += `\n\t0x${hex4(off)}: ${hex.padEnd(40)}  ${ascii}`;
      off += lineLen;
    }
    if (truncated) throw TRUNCATED;
  }

  // ---- ARP ------------------------------------------------------------------------------------------------------

  private linkaddr(j: Job, off: number, len: number): string {
    if (len === 0) return '<empty>';
    if (len === 6) return j.mac(off);
    j.need(off, len);
    const parts: string[] = [];
    for (let i = 0; i < len; i++) parts.push(HEX2[j.b[off + i]!]!);
    return parts.join(':');
  }

  private arp(j: Job, ap: number, length: number, caplen: number): void {
    j.proto = 'arp';
    j.need(ap, 8);
    const hrd = j.u16(ap);
    const pro = j.u16(ap + 2);
    const hln = j.u8(ap + 4);
    const pln = j.u8(ap + 5);
    const op = j.u16(ap + 6);
    if (hrd === 19) j.undecoded = 'ATM ARP (hardware type 19)';
    const sha = ap + 8;
    const spa = sha + hln;
    const tha = spa + pln;
    const tpa = tha + hln;
    j.need(tpa, pln);
    if (!this.link) j.out += 'ARP, ';
    const ipProto = pro === 0x0800 || pro === 0x1000;
    if (!ipProto || pln !== 4 || hln === 0 || this.v > 0) {
      j.out +=
        `${ARP_HRD.get(hrd) ?? `Unknown Hardware (${hrd})`} (len ${hln}), ` +
        `${ETHERTYPE_NAMES.get(pro) ?? `Unknown Protocol (0x${hex4(pro)})`} (len ${pln})`;
      if (this.v === 0) {
        j.out += `, length ${length}`;
        return;
      }
    }
    const paddr = (off: number): string =>
      !ipProto ? '<wrong proto type>' : pln !== 4 ? '<wrong len>' : j.ipaddr(off);
    j.out += `${this.v > 0 ? ', ' : ''}${ARP_OPS.get(op) ?? `Unknown (${op})`} `;
    switch (op) {
      case 1: {
        j.out += `who-has ${paddr(tpa)}`;
        j.need(tha, hln);
        let nonzero = false;
        for (let i = 0; i < hln; i++) if (j.b[tha + i] !== 0) nonzero = true;
        if (nonzero) j.out += ` (${this.linkaddr(j, tha, hln)})`;
        j.out += ` tell ${paddr(spa)}`;
        break;
      }
      case 2:
        j.out += `${paddr(spa)} is-at ${this.linkaddr(j, sha, hln)}`;
        break;
      case 3:
      case 8:
        j.out += `who-is ${this.linkaddr(j, tha, hln)}`;
        j.out += ` tell ${this.linkaddr(j, sha, hln)}`;
        break;
      case 4:
        j.out += `${this.linkaddr(j, tha, hln)} at ${paddr(tpa)}`;
        break;
      case 9:
        j.out += `${this.linkaddr(j, sha, hln)} at ${paddr(spa)}`;
        break;
      default:
        this.hexdump(j, ap, caplen);
        return;
    }
    j.out += `, length ${length}`;
  }

  // ---- IPv4 -----------------------------------------------------------------------------------------------------

  private ipOptions(j: Job, start: number, length0: number): boolean {
    let length = length0;
    let cp = start;
    let sep = '';
    while (length > 0) {
      j.out += sep;
      sep = ',';
      const code = j.u8(cp);
      j.out += IP_OPTION_NAMES.get(code) ?? `unknown ${code}`;
      let optLen: number;
      if (code === 0 || code === 1) optLen = 1;
      else {
        optLen = j.u8(cp + 1);
        if (optLen < 2) {
          j.out += ` [bad length ${optLen}]`;
          return true;
        }
      }
      if (optLen > length) {
        j.out += ` [bad length ${optLen}]`;
        return true;
      }
      if (!j.has(cp, optLen)) return false;
      if (code === 0) return true;
      if (code === 68) {
        if (!this.ipTimestamp(j, cp, optLen)) return false;
      } else if (code === 7 || code === 131 || code === 137) {
        if (!this.ipRoute(j, cp, optLen)) return false;
      } else if (code === 148) {
        if (optLen < 4) j.out += ` [bad length ${optLen}]`;
        else {
          if (!j.has(cp + 3, 1)) return false;
          const value = j.u16(cp + 2);
          if (value !== 0) j.out += ` value ${value}`;
        }
      }
      cp += optLen;
      length -= optLen;
    }
    return true;
  }

  private ipRoute(j: Job, cp: number, length: number): boolean {
    if (length < 3) {
      j.out += ` [bad length ${length}]`;
      return true;
    }
    if ((length + 1) & 3) j.out += ` [bad length ${length}]`;
    const ptr = j.u8(cp + 2) - 1;
    if (ptr < 3 || (ptr + 1) & 3 || ptr > length + 1) j.out += ` [bad ptr ${j.u8(cp + 2)}]`;
    for (let len = 3; len < length; len += 4) {
      if (!j.has(cp + len, 4)) return false;
      j.out += ` ${j.ipaddr(cp + len)}`;
      if (ptr > len) j.out += ',';
    }
    return true;
  }

  private ipTimestamp(j: Job, cp: number, length: number): boolean {
    if (length < 4) {
      j.out += `[bad length ${length}]`;
      return true;
    }
    j.out += ' TS{';
    const flags = j.u8(cp + 3);
    const hoplen = (flags & 0xf) !== 0 ? 8 : 4;
    if ((length - 4) & (hoplen - 1)) j.out += `[bad length ${length}]`;
    const ptr = j.u8(cp + 2) - 1;
    let len = 0;
    if (ptr < 4 || (ptr - 4) & (hoplen - 1) || ptr > length + 1) j.out += `[bad ptr ${j.u8(cp + 2)}]`;
    const kind = flags & 0xf;
    if (kind === 0 || kind === 1 || kind === 3) {
      j.out += kind === 0 ? 'TSONLY' : kind === 1 ? 'TS+ADDR' : 'PRESPEC';
      let type = ' ';
      for (len = 4; len < length; len += hoplen) {
        if (ptr === len) type = ' ^ ';
        if (!j.has(cp + len, hoplen)) return false;
        j.out += `${type}${j.u32(cp + len + hoplen - 4)}@${hoplen !== 8 ? '' : j.ipaddr(cp + len)}`;
        type = ' ';
      }
    } else j.out += `[bad ts type ${kind}]`;
    j.out += ptr === len ? ' ^ ' : '';
    j.out += flags >>> 4 ? ` [${flags >>> 4} hops not recorded]} ` : '}';
    return true;
  }

  private ip(j: Job, ip: number, length: number): void {
    j.proto = 'ip';
    const version = j.u8(ip) >>> 4;
    if (version !== 4) {
      j.out += version === 6 ? 'IP6, wrong link-layer encapsulation' : `IP${version}`;
      j.out += ' (invalid)';
      return;
    }
    if (!this.link) j.out += 'IP ';
    if (!j.has(ip, 20)) {
      j.trunc();
      return;
    }
    if (length < 20) {
      j.out += `truncated-ip ${length}`;
      return;
    }
    const hlen = (j.b[ip]! & 0x0f) * 4;
    if (hlen < 20) {
      j.out += `bad-hlen ${hlen}`;
      return;
    }
    let len = j.u16(ip + 2);
    if (length < len) j.out += `truncated-ip - ${len - length} bytes missing! `;
    if (len < hlen) {
      j.out += `bad-len ${len}`;
      return;
    }
    const savedSnapend = j.snapend;
    j.snapend = Math.min(j.snapend, ip + len);
    len -= hlen;
    const off = j.u16(ip + 6);
    const proto = j.u8(ip + 9);
    if (this.v > 0) {
      const tos = j.u8(ip + 1);
      j.out += `(tos 0x${tos.toString(16)}`;
      const ecn = tos & 3;
      if (ecn === 1) j.out += ',ECT(1)';
      else if (ecn === 2) j.out += ',ECT(0)';
      else if (ecn === 3) j.out += ',CE';
      const ttl = j.u8(ip + 8);
      if (ttl >= 1) j.out += `, ttl ${ttl}`;
      const flagParts: string[] = [];
      if (off & 0x2000) flagParts.push('+');
      if (off & 0x4000) flagParts.push('DF');
      if (off & 0x8000) flagParts.push('rsvd');
      j.out +=
        `, id ${j.u16(ip + 4)}, offset ${(off & 0x1fff) * 8}, flags [${flagParts.length ? flagParts.join(', ') : 'none'}]` +
        `, proto ${IPPROTO_NAMES.get(proto) ?? 'unknown'} (${proto})`;
      j.out += `, length ${j.u16(ip + 2)}`;
      let truncated = false;
      if (hlen > 20) {
        j.out += ', options (';
        if (!this.ipOptions(j, ip + 20, hlen - 20)) {
          j.out += ' [truncated-option]';
          truncated = true;
        }
        j.out += ')';
      }
      if (ip + hlen <= j.snapend) {
        const sum = finishChecksum(sumWords(j.b, ip, ip + hlen));
        if (sum !== 0) {
          const found = j.u16(ip + 10);
          j.out += `, bad cksum ${found.toString(16)} (->${expectedChecksum(found, sum).toString(16)})!`;
        }
      }
      j.out += ')\n    ';
      if (truncated) {
        j.out += `${j.ipaddr(ip + 12)} > ${j.ipaddr(ip + 16)}: `;
        j.trunc();
        j.snapend = savedSnapend;
        return;
      }
    }
    if ((off & 0x1fff) === 0) {
      if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== 132 && proto !== 33)
        j.out += `${j.ipaddr(ip + 12)} > ${j.ipaddr(ip + 16)}: `;
      if (!j.has(ip, hlen)) {
        j.out += ` [remaining caplen(${Math.max(0, j.snapend - ip)}) < header length(${hlen})]`;
        throw TRUNCATED;
      }
      this.ipDemux(j, ip + hlen, len, (off & 0x2000) !== 0, proto, ip);
    } else {
      j.out += `${j.ipaddr(ip + 12)} > ${j.ipaddr(ip + 16)}: ip-proto-${proto}`;
    }
    j.snapend = savedSnapend;
  }

  private ipDemux(j: Job, bp: number, length: number, fragmented: boolean, nh: number, ip: number): void {
    switch (nh) {
      case IPPROTO_TCP:
        this.tcp(j, bp, length, ip, fragmented);
        return;
      case IPPROTO_UDP:
        this.udp(j, bp, length, ip, fragmented);
        return;
      case 1:
        this.icmp(j, bp, length, fragmented);
        return;
      case 4:
        this.ip(j, bp, length);
        return;
      case 77:
        j.out += ` nd ${length}`;
        return;
      case 59:
        j.out += 'no next header';
        return;
      default: {
        // Protocols tcpdump decodes but lvsdoctor does not (GRE, IGMP, ESP, OSPF, VRRP…) are printed like unknown ones.
        const name = TCPDUMP_DECODED_IP_PROTOCOLS.get(nh);
        if (name !== undefined) j.undecoded = `${name} (IP protocol ${nh})`;
        j.out += ` ip-proto-${nh} ${length}`;
      }
    }
  }

  /** The IPv4 pseudo-header sum tcpdump uses (destination taken from a source-route option when present). */
  private pseudoSum(j: Job, ip: number, proto: number, len: number): number {
    const hlen = (j.b[ip]! & 0x0f) * 4;
    let dstOff = ip + 16;
    let cp = ip + 20;
    let length = hlen - 20;
    while (length > 0) {
      const tt = j.u8(cp);
      let l: number;
      if (tt === 0) break;
      if (tt === 1) l = 1;
      else {
        l = j.u8(cp + 1);
        if (l < 2) break;
      }
      if (length < l || !j.has(cp, l)) break;
      if ((tt === 131 || tt === 137) && l >= 7) {
        dstOff = cp + l - 4;
        break;
      }
      cp += l;
      length -= l;
    }
    j.need(dstOff, 4);
    const b = j.b;
    return (
      ((b[ip + 12]! << 8) | b[ip + 13]!) +
      ((b[ip + 14]! << 8) | b[ip + 15]!) +
      ((b[dstOff]! << 8) | b[dstOff + 1]!) +
      ((b[dstOff + 2]! << 8) | b[dstOff + 3]!) +
      proto +
      (len & 0xffff)
    );
  }

  // ---- TCP ------------------------------------------------------------------------------------------------------

  private tcp(j: Job, tp: number, length0: number, ip: number, fragmented: boolean): void {
    let length = length0;
    j.proto = 'tcp';
    let ch = '';
    const localTrunc = (): void => {
      j.trunc();
      if (ch !== '') j.out += '>';
    };
    if (!j.has(tp + 2, 2)) {
      j.out += `${j.ipaddr(ip + 12)} > ${j.ipaddr(ip + 16)}:`;
      j.trunc();
      return;
    }
    const sport = j.u16(tp);
    const dport = j.u16(tp + 2);
    if (j.u8(ip + 9) === IPPROTO_TCP) j.out += `${j.ipaddr(ip + 12)}.${sport} > ${j.ipaddr(ip + 16)}.${dport}: `;
    else j.out += `${sport} > ${dport}: `;
    if (!j.has(tp, 20)) {
      localTrunc();
      return;
    }
    let hlen = (j.b[tp + 12]! >>> 4) * 4;
    if (hlen < 20) {
      j.out += ` tcp ${(length - hlen) >>> 0} [bad hdr length ${hlen} - too short, < 20]`;
      return;
    }
    let seq = j.u32(tp + 4);
    let ack = j.u32(tp + 8);
    const win = j.u16(tp + 14);
    const urp = j.u16(tp + 18);
    const flags = j.u8(tp + 13);
    let flagText = '';
    for (const [bit, c] of TCP_FLAG_CHARS) if (flags & bit) flagText += c;
    j.out += `Flags [${flagText || 'none'}]`;
    let thseq = 0;
    let thack = 0;
    let rev = false;
    if (!this.absoluteSeq && flags & 0x10) {
      const src = j.u32(ip + 12);
      const dst = j.u32(ip + 16);
      if (sport > dport) rev = true;
      else if (sport === dport && src > dst) rev = true;
      const key = rev ? `${dst}|${src}|${dport}|${sport}` : `${src}|${dst}|${sport}|${dport}`;
      let th = this.seqs.get(key);
      if (th === undefined || flags & 0x02) {
        th = rev ? { ack: seq, seq: (ack - 1) >>> 0 } : { seq, ack: (ack - 1) >>> 0 };
        this.seqs.set(key, th);
      } else if (rev) {
        seq = (seq - th.ack) >>> 0;
        ack = (ack - th.seq) >>> 0;
      } else {
        seq = (seq - th.seq) >>> 0;
        ack = (ack - th.ack) >>> 0;
      }
      thseq = th.seq;
      thack = th.ack;
    }
    if (hlen > length) {
      j.out += ` [bad hdr length ${hlen} - too long, > ${length}]`;
      return;
    }
    if (this.v > 0 && !fragmented && j.has(tp, length)) {
      const sum = finishChecksum(sumWords(j.b, tp, tp + length, this.pseudoSum(j, ip, IPPROTO_TCP, length)));
      const found = j.u16(tp + 16);
      j.out += `, cksum 0x${hex4(found)}`;
      j.out += sum !== 0 ? ` (incorrect -> 0x${hex4(expectedChecksum(found, sum))})` : ' (correct)';
    }
    length -= hlen;
    if (this.v > 1 || length > 0 || flags & 0x07) {
      j.out += `, seq ${seq}`;
      if (length > 0) j.out += `:${(seq + length) >>> 0}`;
    }
    if (flags & 0x10) j.out += `, ack ${ack}`;
    j.out += `, win ${win}`;
    if (flags & 0x20) j.out += `, urg ${urp}`;
    if (hlen > 20) {
      hlen -= 20;
      let cp = tp + 20;
      j.out += ', options [';
      let bad = false;
      while (hlen > 0) {
        if (ch !== '') j.out += ch;
        const opt = j.u8(cp);
        cp++;
        let len: number;
        if (opt === 0 || opt === 1) len = 1;
        else {
          len = j.u8(cp);
          cp++;
          if (len < 2 || len > hlen) {
            bad = true;
            break;
          }
          hlen--;
        }
        hlen--;
        let datalen = 0;
        // LENCHECK: 'bad' when the option claims more than the header holds, tcpdump's trunc when not captured.
        const lencheck = (l: number): 'ok' | 'bad' | 'trunc' => (l > hlen ? 'bad' : j.has(cp, l) ? 'ok' : 'trunc');
        j.out += TCP_OPTION_NAMES.get(opt) ?? `unknown-${opt}`;
        let status: 'ok' | 'bad' | 'trunc' = 'ok';
        switch (opt) {
          case 2:
            datalen = 2;
            status = lencheck(2);
            if (status === 'ok') j.out += ` ${j.u16(cp)}`;
            break;
          case 3:
            datalen = 1;
            status = lencheck(1);
            if (status === 'ok') j.out += ` ${j.u8(cp)}`;
            break;
          case 5:
            datalen = len - 2;
            if (datalen % 8 !== 0) j.out += ' invalid sack';
            else {
              j.out += ` ${datalen / 8} `;
              for (let i = 0; i < datalen && status === 'ok'; i += 8) {
                status = lencheck(i + 4);
                if (status !== 'ok') break;
                let s = j.u32(cp + i);
                status = lencheck(i + 8);
                if (status !== 'ok') break;
                let e = j.u32(cp + i + 4);
                if (rev) {
                  s = (s - thseq) >>> 0;
                  e = (e - thseq) >>> 0;
                } else {
                  s = (s - thack) >>> 0;
                  e = (e - thack) >>> 0;
                }
                j.out += `{${s}:${e}}`;
              }
            }
            break;
          case 11:
          case 12:
          case 13:
          case 6:
          case 7:
            datalen = 4;
            status = lencheck(4);
            if (status === 'ok') j.out += ` ${j.u32(cp)}`;
            break;
          case 8:
            datalen = 8;
            status = lencheck(8);
            if (status === 'ok') j.out += ` val ${j.u32(cp)} ecr ${j.u32(cp + 4)}`;
            break;
          case 19:
            datalen = 16;
            status = lencheck(16);
            if (status === 'ok') {
              j.out += " shared secret not supplied with -M, can't check - ";
              for (let i = 0; i < 16; i++) j.out += HEX2[j.b[cp + i]!];
            }
            break;
          case 20:
            datalen = 2;
            status = lencheck(2);
            if (status === 'ok') j.out += ` cap ${HEX2[j.u8(cp)]} id ${j.u8(cp + 1)}`;
            break;
          case 29:
            datalen = len - 2;
            if (datalen < 2) j.out += ' (invalid)';
            else {
              status = lencheck(1);
              if (status !== 'ok') break;
              j.out += ` keyid ${j.u8(cp)}`;
              status = lencheck(2);
              if (status !== 'ok') break;
              j.out += ` rnextkeyid ${j.u8(cp + 1)}`;
              if (datalen > 2) {
                j.out += ' mac 0x';
                for (let i = 2; i < datalen; i++) {
                  status = lencheck(i + 1);
                  if (status !== 'ok') break;
                  j.out += HEX2[j.u8(cp + i)];
                }
              }
            }
            break;
          case 0:
          case 1:
          case 4:
            break;
          case 28: {
            datalen = 2;
            status = lencheck(2);
            if (status !== 'ok') break;
            let uto = j.u16(cp);
            j.out += ` 0x${uto.toString(16)}`;
            uto = uto & 1 ? (uto >>> 1) * 60 : uto >>> 1;
            j.out += ` ${uto}`;
            break;
          }
          case 34:
            datalen = len - 2;
            status = lencheck(datalen);
            if (status === 'ok') {
              j.out += ' ';
              this.fastopen(j, cp, datalen, false);
            }
            break;
          case 254: {
            datalen = len - 2;
            status = lencheck(datalen);
            if (status !== 'ok') break;
            if (datalen < 2) {
              status = 'bad';
              break;
            }
            const magic = j.u16(cp);
            j.out += '-';
            if (magic === 0xf989) this.fastopen(j, cp + 2, datalen - 2, true);
            else j.out += hex4(magic);
            break;
          }
          default:
            // Includes MPTCP (30), whose sub-options lvsdoctor does not decode.
            if (opt === 30) j.undecoded = 'MPTCP option (TCP option 30)';
            datalen = len - 2;
            if (datalen) j.out += ' 0x';
            for (let i = 0; i < datalen; i++) {
              status = lencheck(i + 1);
              if (status !== 'ok') break;
              j.out += HEX2[j.u8(cp + i)];
            }
            break;
        }
        if (status === 'bad') {
          bad = true;
          break;
        }
        if (status === 'trunc') {
          localTrunc();
          return;
        }
        cp += datalen;
        hlen -= datalen;
        datalen++;
        if (opt !== 0 && opt !== 1) datalen++;
        if (datalen !== len) j.out += `[len ${len}]`;
        ch = ',';
        if (opt === 0) break;
      }
      if (bad) {
        j.out += '[bad opt]';
        if (ch !== '') j.out += ']';
        return;
      }
      j.out += ']';
    }
    j.out += `, length ${length}`;
    if (length === 0) return;
    const headerLen = (j.b[tp + 12]! >>> 4) * 4;
    if (!j.has(tp, headerLen)) {
      j.out += ` [remaining caplen(${Math.max(0, j.snapend - tp)}) < header length(${headerLen})]`;
      throw TRUNCATED;
    }
    const data = tp + headerLen;
    if (flags & 0x04 && this.v > 0) {
      this.rstData(j, data, length);
      return;
    }
    if (sport === 80 || dport === 80 || sport === 8080 || dport === 8080) {
      j.out += ': ';
      j.proto = 'http';
      this.httpText(j, data, length);
    } else if (length > 0) {
      // Other application protocols tcpdump decodes on well-known ports are not rendered (see the module comment).
      const name = TCPDUMP_TCP_PORTS.get(sport) ?? TCPDUMP_TCP_PORTS.get(dport);
      if (name !== undefined) j.undecoded = `${name} (TCP port ${TCPDUMP_TCP_PORTS.has(sport) ? sport : dport})`;
    }
  }

  private fastopen(j: Job, cp: number, datalen: number, exp: boolean): void {
    if (exp) j.out += 'tfo';
    if (datalen === 0) j.out += ' cookiereq';
    else if (datalen % 2 !== 0 || datalen < 4 || datalen > 16) j.out += ' (invalid)';
    else {
      j.out += ' cookie ';
      for (let i = 0; i < datalen; i++) j.out += HEX2[j.u8(cp + i)];
    }
  }

  private rstData(j: Job, sp0: number, length0: number): void {
    let sp = sp0;
    let length = length0;
    j.out += j.has(sp, length) ? ' [RST' : ' [!RST';
    if (length > MAX_RST_DATA_LEN) {
      length = MAX_RST_DATA_LEN;
      j.out += '+';
    }
    j.out += ' ';
    while (length && sp < j.snapend) {
      let c = j.u8(sp);
      sp++;
      if (c >= 0x80) {
        c &= 0x7f;
        j.out += 'M-';
      }
      if (!isPrint(c)) {
        c ^= 0x40;
        j.out += '^';
      }
      j.out += String.fromCharCode(c);
      length--;
    }
    j.out += ']';
  }

  // ---- Text protocols (HTTP) ------------------------------------------------------------------------------------

  /** Returns [index after the token and its trailing blanks, token], or [0, ''] when there is no usable token. */
  private fetchToken(j: Job, p: number, idx0: number, len: number): [number, string] {
    let idx = idx0;
    let tok = '';
    for (; idx < len; idx++) {
      if (!j.has(p + idx, 1)) return [0, ''];
      const c = j.b[p + idx]!;
      if (c >= 0x80) return [0, ''];
      if (c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a) break;
      if (!isPrint(c)) return [0, ''];
      if (tok.length + 2 > 129) return [0, ''];
      tok += String.fromCharCode(c);
    }
    if (tok.length === 0) return [0, ''];
    for (; idx < len; idx++) {
      if (!j.has(p + idx, 1)) break;
      const c = j.b[p + idx]!;
      if (c === 0x0d || c === 0x0a) break;
      if (!isPrint(c)) break;
      if (c !== 0x20 && c !== 0x09) break;
    }
    return [idx, tok];
  }

  private txtLine(j: Job, prefix: string, p: number, idx0: number, len: number): number {
    let idx = idx0;
    const start = idx;
    let lineLen: number;
    for (;;) {
      if (idx >= len) {
        j.out += prefix + this.ascii(j, p + start, idx - start);
        j.trunc();
        return 0;
      }
      const c = j.u8(p + idx);
      if (c === 0x0a) {
        lineLen = idx - start;
        idx++;
        break;
      }
      if (c === 0x0d) {
        if (idx + 1 >= len) return 0;
        if (j.u8(p + idx + 1) === 0x0a) {
          lineLen = idx - start;
          idx += 2;
          break;
        }
        return 0;
      }
      if (!isPrint(c) && c !== 0x09) return 0;
      idx++;
    }
    j.out += prefix + this.ascii(j, p + start, lineLen);
    return idx;
  }

  private ascii(j: Job, off: number, len: number): string {
    let s = '';
    for (let i = 0; i < len; i++) s += String.fromCharCode(j.b[off + i]!);
    return s;
  }

  private httpText(j: Job, p: number, len: number): void {
    let printThis = false;
    let [idx, tok] = this.fetchToken(j, p, 0, len);
    if (idx !== 0) {
      if (HTTP_METHODS.has(tok.toUpperCase())) printThis = true;
      [idx, tok] = this.fetchToken(j, p, idx, len);
      if (idx !== 0 && /^[0-9]{3}$/.test(tok)) printThis = true;
    }
    j.out += 'HTTP';
    if (!printThis) return;
    if (this.v > 0) {
      j.out += `, length: ${len}`;
      for (let i = 0; i < len; ) {
        const eol = this.txtLine(j, '\n\t', p, i, len);
        if (eol === 0) break;
        i = eol;
      }
    } else this.txtLine(j, ': ', p, 0, len);
  }

  // ---- UDP ------------------------------------------------------------------------------------------------------

  private udpAddrs(j: Job, ip: number, sport: number, dport: number): void {
    if (j.u8(ip + 9) === IPPROTO_UDP) {
      if (sport < 0) j.out += `${j.ipaddr(ip + 12)} > ${j.ipaddr(ip + 16)}: `;
      else j.out += `${j.ipaddr(ip + 12)}.${sport} > ${j.ipaddr(ip + 16)}.${dport}: `;
    } else if (sport >= 0) j.out += `${sport} > ${dport}: `;
  }

  private udp(j: Job, up: number, length0: number, ip: number, fragmented: boolean): void {
    let length = length0;
    j.proto = 'udp';
    if (!j.has(up + 2, 2)) {
      this.udpAddrs(j, ip, -1, -1);
      j.trunc();
      return;
    }
    const sport = j.u16(up);
    const dport = j.u16(up + 2);
    if (length < 8) {
      this.udpAddrs(j, ip, sport, dport);
      j.out += `truncated-udp ${length}`;
      return;
    }
    if (!j.has(up + 4, 2)) {
      this.udpAddrs(j, ip, sport, dport);
      j.trunc();
      return;
    }
    let ulen = j.u16(up + 4);
    if (ulen === 0 && length > 65535) ulen = length;
    if (ulen < 8) {
      this.udpAddrs(j, ip, sport, dport);
      j.out += `truncated-udplength ${ulen}`;
      return;
    }
    ulen -= 8;
    length -= 8;
    if (ulen < length) length = ulen;
    const cp = up + 8;
    if (cp > j.snapend) {
      this.udpAddrs(j, ip, sport, dport);
      j.trunc();
      return;
    }
    this.udpAddrs(j, ip, sport, dport);
    if (this.v > 1 && !fragmented) {
      const found = j.u16(up + 6);
      if (found === 0) j.out += '[no cksum] ';
      else if (j.has(cp, length)) {
        const sum = finishChecksum(sumWords(j.b, up, cp + length, this.pseudoSum(j, ip, IPPROTO_UDP, length + 8)));
        j.out +=
          sum !== 0 ? `[bad udp cksum 0x${hex4(found)} -> 0x${hex4(expectedChecksum(found, sum))}!] ` : '[udp sum ok] ';
      }
    }
    // Ports tcpdump decodes (DNS, DHCP, NTP, SNMP, VXLAN…) are rendered as plain UDP (see the module comment).
    const app = udpPortName(sport) ?? udpPortName(dport);
    if (app !== undefined) j.undecoded = `${app} (UDP port ${udpPortName(sport) !== undefined ? sport : dport})`;
    if (ulen > length && !fragmented) j.out += `UDP, bad length ${ulen} > ${length}`;
    else j.out += `UDP, length ${ulen}`;
  }

  // ---- ICMP -----------------------------------------------------------------------------------------------------

  private icmp(j: Job, bp: number, plen: number, fragmented: boolean): void {
    j.proto = 'icmp';
    const type = j.u8(bp);
    const code = j.u8(bp + 1);
    const inner = bp + 8;
    const innerDst = (): string => j.ipaddr(inner + 16);
    let str: string;
    switch (type) {
      case 0:
      case 8:
        str = `echo ${type === 8 ? 'request' : 'reply'}, id ${j.u16(bp + 4)}, seq ${j.u16(bp + 6)}`;
        break;
      case 3:
        str = this.unreachText(j, code, bp, inner, innerDst);
        break;
      case 5: {
        const d = innerDst();
        const gw = j.ipaddr(bp + 4);
        str =
          code === 0
            ? `redirect ${d} to net ${gw}`
            : code === 1
              ? `redirect ${d} to host ${gw}`
              : code === 2
                ? `redirect-tos ${d} to net ${gw}`
                : code === 3
                  ? `redirect-tos ${d} to host ${gw}`
                  : `redirect-#${code} ${d} to ${gw}`;
        break;
      }
      case 11:
        j.need(inner + 16, 4);
        str =
          code === 0
            ? 'time exceeded in-transit'
            : code === 1
              ? 'ip reassembly time exceeded'
              : `time exceeded-#${code}`;
        break;
      case 12:
        str = code ? `parameter problem - code ${code}` : `parameter problem - octet ${j.u8(bp + 4)}`;
        break;
      case 18:
        str = `address mask is 0x${j
          .u32(bp + 12)
          .toString(16)
          .padStart(8, '0')}`;
        break;
      case 13:
        str = `time stamp query id ${j.u16(bp + 4)} seq ${j.u16(bp + 6)}`;
        break;
      case 14:
        j.need(bp + 16, 4);
        str =
          `time stamp reply id ${j.u16(bp + 4)} seq ${j.u16(bp + 6)}: org ${icmpTime(j.u32(bp + 8))}` +
          `, recv ${icmpTime(j.u32(bp + 12))}, xmit ${icmpTime(j.u32(bp + 16))}`;
        break;
      default:
        str = ICMP_SIMPLE.get(type) ?? `type-#${type}`;
    }
    j.out += `ICMP ${str}, length ${plen}`;
    if (this.v > 0 && !fragmented && j.has(bp, plen)) {
      const sum = finishChecksum(sumWords(j.b, bp, bp + plen));
      if (sum !== 0) {
        const found = j.u16(bp + 2);
        j.out += ` (wrong icmp cksum ${found.toString(16)} (->${expectedChecksum(found, sum).toString(16)})!)`;
      }
    }
    if (this.v > 0 && (type === 3 || type === 4 || type === 5 || type === 11 || type === 12)) {
      j.out += '\n\t';
      const saved = j.snapend;
      const ipLen = j.u16(inner + 2);
      j.snapend = Math.min(inner + ipLen, j.snapend);
      this.ip(j, inner, ipLen);
      j.snapend = saved;
    }
    j.proto = 'icmp';
    if (this.v > 0 && plen > ICMP_EXTD_MINLEN && (type === 3 || type === 11 || type === 12)) {
      j.need(bp, 141);
      const extLen = plen - ICMP_EXTD_MINLEN;
      const ext = bp + ICMP_EXTD_MINLEN;
      if (j.u8(bp + 5) === 0 && j.has(ext, extLen)) {
        if (finishChecksum(sumWords(j.b, ext, ext + extLen)) !== 0) return;
      }
      // RFC 4884 extension objects (MPLS labels…) are not decoded further.
      const version = j.u8(ext) >>> 4;
      j.out += `\n\tICMP Multi-Part extension v${version}`;
      if (version !== 2) j.out += ' packet not supported';
    }
  }

  private unreachText(j: Job, code: number, bp: number, inner: number, innerDst: () => string): string {
    switch (code) {
      case 0:
        return `net ${innerDst()} unreachable`;
      case 1:
        return `host ${innerDst()} unreachable`;
      case 2:
        return `${innerDst()} protocol ${j.u8(inner + 9)} unreachable`;
      case 3: {
        j.need(inner + 9, 1);
        const hlen = (j.u8(inner) & 0x0f) * 4;
        const dport = j.u16(inner + hlen + 2);
        const p = j.u8(inner + 9);
        if (p === IPPROTO_TCP) return `${innerDst()} tcp port ${dport} unreachable`;
        if (p === IPPROTO_UDP) return `${innerDst()} udp port ${dport} unreachable`;
        return `${innerDst()} protocol ${p} port ${dport} unreachable`;
      }
      case 4: {
        const mtu = j.u16(bp + 6);
        return mtu
          ? `${innerDst()} unreachable - need to frag (mtu ${mtu})`
          : `${innerDst()} unreachable - need to frag`;
      }
      case 5:
        return `${innerDst()} unreachable - source route failed`;
      case 6:
        return `net ${innerDst()} unreachable - unknown`;
      case 7:
        return `host ${innerDst()} unreachable - unknown`;
      case 8:
        return `${innerDst()} unreachable - source host isolated`;
      case 9:
        return `net ${innerDst()} unreachable - admin prohibited`;
      case 10:
        return `host ${innerDst()} unreachable - admin prohibited`;
      case 11:
        return `net ${innerDst()} unreachable - tos prohibited`;
      case 12:
        return `host ${innerDst()} unreachable - tos prohibited`;
      case 13:
        return `host ${innerDst()} unreachable - admin prohibited filter`;
      case 14:
        return `host ${innerDst()} unreachable - host precedence violation`;
      case 15:
        return `host ${innerDst()} unreachable - precedence cutoff`;
      default:
        return `${innerDst()} unreachable - #${code}`;
    }
  }
}

/** Milliseconds since midnight UT, as ICMP timestamps carry them. */
function icmpTime(t: number): string {
  const ms = t % 1000;
  const sec = Math.floor(t / 1000) % 60;
  const min = Math.floor(t / 60000) % 60;
  const hrs = Math.floor(t / 3600000);
  return `${pad2(hrs)}:${pad2(min)}:${pad2(sec)}.${String(ms).padStart(3, '0')}`;
}

const LINK_NULL = 0;
const LINK_ETHERNET = 1;
const LINK_RAW_12 = 12;
const LINK_RAW = 101;
const LINK_LOOP = 108;
const LINK_LINUX_SLL = 113;
const LINK_IPV4 = 228;
const LINK_IPV6 = 229;
const LINK_LINUX_SLL2 = 276;

/** print-sll.c `sll_pkttype_values`. */
const SLL_PACKET_TYPE_NAMES: readonly string[] = ['In', 'B', 'M', 'P', 'Out'];

/** print-null.c `bsd_af_values`. */
const BSD_AF_NAMES: ReadonlyMap<number, string> = new Map([
  [2, 'IPv4'],
  [6, 'NS'],
  [7, 'ISO'],
  [16, 'Appletalk'],
  [23, 'IPX'],
  [24, 'IPv6'],
  [28, 'IPv6'],
  [30, 'IPv6'],
]);

/** Ethertypes tcpdump 4.99 has a dissector for (print-ether.c `ethertype_print`) besides IPv4, ARP and VLAN tags. */
const TCPDUMP_DECODED_ETHERTYPES: ReadonlyMap<number, string> = new Map([
  [0x86dd, 'IPv6'],
  [0x6003, 'DECnet'],
  [0x809b, 'AppleTalk'],
  [0x80f3, 'AppleTalk ARP'],
  [0x8137, 'IPX'],
  [0x894f, 'NSH'],
  [0x8863, 'PPPoE discovery'],
  [0x8864, 'PPPoE session'],
  [0x888e, 'EAPOL'],
  [0x8899, 'Realtek (RRCP)'],
  [0x880b, 'PPP'],
  [0x8808, 'MPCP'],
  [0x8809, 'Slow protocols (LACP, marker, OAM)'],
  [0x8902, 'CFM'],
  [0xabcd, 'CFM (old)'],
  [0x88cc, 'LLDP'],
  [0x9000, 'Loopback'],
  [0x8847, 'MPLS'],
  [0x8848, 'MPLS multicast'],
  [0x88ca, 'TIPC'],
  [0x886f, 'MS NLB heartbeat'],
  [0x0707, 'GeoNetworking (old)'],
  [0x8947, 'GeoNetworking'],
  [0x1111, 'CALM FAST'],
  [0x88a2, 'ATA over Ethernet'],
  [0x88f7, 'PTP'],
  [0xd28b, 'Arista'],
  [0xdada, 'Marvell EDSA'],
  [0x88e5, 'MACsec'],
]);

/** IP protocols tcpdump 4.99 decodes (print-ip-demux.c) that this renderer prints as `ip-proto-N`. */
const TCPDUMP_DECODED_IP_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [2, 'IGMP'],
  [8, 'EGP'],
  [9, 'IGRP'],
  [33, 'DCCP'],
  [41, 'IPv6'],
  [46, 'RSVP'],
  [47, 'GRE'],
  [50, 'ESP'],
  [51, 'AH'],
  [55, 'Mobile IP'],
  [58, 'ICMPv6'],
  [88, 'EIGRP'],
  [89, 'OSPF'],
  [103, 'PIM'],
  [108, 'IPComp'],
  [112, 'VRRP/CARP'],
  [113, 'PGM'],
  [132, 'SCTP'],
  [135, 'Mobility header'],
  [240, 'pfsync'],
]);

/** TCP ports whose payload tcpdump 4.99 decodes (print-tcp.c), besides HTTP on 80 and 8080. */
const TCPDUMP_TCP_PORTS: ReadonlyMap<number, string> = new Map([
  [21, 'FTP'],
  [22, 'SSH'],
  [23, 'Telnet'],
  [25, 'SMTP'],
  [43, 'WHOIS'],
  [53, 'DNS'],
  [110, 'POP3'],
  [143, 'IMAP'],
  [179, 'BGP'],
  [323, 'RPKI-RTR'],
  [554, 'RTSP'],
  [639, 'MSDP'],
  [646, 'LDP'],
  [1723, 'PPTP'],
  [2049, 'NFS'],
  [3128, 'HTTP (proxy)'],
  [5060, 'SIP'],
  [6379, 'RESP (Redis)'],
  [6633, 'OpenFlow'],
  [6653, 'OpenFlow'],
  [8554, 'RTSP'],
  [10288, 'BEEP'],
]);

/** UDP ports whose payload tcpdump 4.99 decodes (print-udp.c). */
const TCPDUMP_UDP_PORTS: ReadonlyMap<number, string> = new Map([
  [53, 'DNS'],
  [67, 'DHCP/BOOTP'],
  [68, 'DHCP/BOOTP'],
  [69, 'TFTP'],
  [88, 'Kerberos'],
  [123, 'NTP'],
  [161, 'SNMP'],
  [162, 'SNMP trap'],
  [319, 'PTP'],
  [320, 'PTP'],
  [496, 'Cisco Auto-RP'],
  [500, 'ISAKMP'],
  [514, 'syslog'],
  [520, 'RIP'],
  [521, 'RIPng'],
  [525, 'timed'],
  [546, 'DHCPv6'],
  [547, 'DHCPv6'],
  [646, 'LDP'],
  [654, 'AODV'],
  [698, 'OLSR'],
  [701, 'LMP'],
  [750, 'Kerberos'],
  [921, 'lwres'],
  [1589, 'VQP'],
  [1645, 'RADIUS'],
  [1646, 'RADIUS'],
  [1701, 'L2TP'],
  [1812, 'RADIUS'],
  [1813, 'RADIUS'],
  [1985, 'HSRP'],
  [2103, 'Zephyr'],
  [2104, 'Zephyr'],
  [3503, 'MPLS LSP ping'],
  [3784, 'BFD'],
  [3785, 'BFD'],
  [3799, 'RADIUS'],
  [4341, 'LISP'],
  [4342, 'LISP'],
  [4500, 'ISAKMP NAT-T / ESP in UDP'],
  [4784, 'BFD'],
  [4789, 'VXLAN'],
  [4790, 'VXLAN-GPE'],
  [5060, 'SIP'],
  [5353, 'mDNS'],
  [5359, 'AHCP'],
  [6081, 'Geneve'],
  [6343, 'sFlow'],
  [6635, 'MPLS in UDP'],
  [6696, 'Babel'],
  [6697, 'Babel'],
  [6784, 'BFD'],
  [7500, 'ISAKMP'],
  [8231, 'HNCP'],
  [8472, 'OTV'],
  [8500, 'ISAKMP'],
  [12222, 'LWAPP'],
  [12223, 'LWAPP'],
  [49152, 'Broadcom LI'],
  [2049, 'NFS (Sun RPC)'],
  [30490, 'SOME/IP'],
]);

function udpPortName(port: number): string | undefined {
  if (port >= 7000 && port <= 7009) return 'AFS RX';
  return TCPDUMP_UDP_PORTS.get(port);
}

/** Renders a whole capture with fresh state, like one `tcpdump -r` run; the text ends with a newline per frame. */
export function renderTcpdump(frames: Iterable<CapturedFrame>, options: TcpdumpOptions = TCPDUMP_E_VVV): string {
  return new TcpdumpRenderer(options).renderAll(frames);
}
