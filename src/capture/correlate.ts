/**
 * Finds where packets vanish across capture points. See docs/captures.md for the method; in short:
 *
 * 1. **Identity.** Every captured packet gets a key from fields that survive DR MAC rewrites, NAT and tunnels: IP id,
 *    protocol, fragment offset, TCP seq/ack/flags/TSval/TSecr and payload length, a digest of the first 64 payload
 *    bytes (ICMP: type/code/id/seq; ARP: all its fields). Addresses, ports, MACs, TTL and checksums are *not* in
 *    the key, so one packet is recognised before and after a rewrite; tunnels are looked through (IPIP, GRE). Fields a
 *    capture lacks (IP id in `tcpdump -nn` text, payload in any text) are left out of every key of the run.
 * 2. **Clocks.** Each pair of points that saw the same frames gives time differences; with traffic both ways the
 *    offset is the midpoint of the two directions (as NTP does), with one-way traffic it is the median when that is
 *    above 1 ms (a LAN does not take milliseconds) and 0 otherwise. Offsets are chained from the point with most
 *    matches.
 * 3. **Path.** A packet's sightings are split into legs (same MACs, addresses and tunnel); a new leg means a rewrite
 *    at the point the two legs share, which pins the order even when clocks cannot. Within a leg, corrected time
 *    orders the points.
 * 4. **Expected next.** Learned per flow and direction from packets that went on from the same station; else from
 *    other flows with the same MAC header at that point; else a frame sent back out of the interface it came in by
 *    is expected at the point it came from; with a model (`expect`), the simulated path decides.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { macFromBytes } from '../addr/mac.ts';
import type { Issue } from '../source/issue.ts';
import { isVlanTpid } from '../wire/ethernet.ts';
import { linkMacs, locateNetwork, type MacKnowledge } from './link.ts';
import { LINKTYPE_ETHERNET } from './pcap.ts';
import type { PacketSink } from './pcapng.ts';
import type { FieldKnowledge } from './scanner.ts';

export const MAX_POINTS = 32;
/** One-way time differences below this are taken as latency, above it as a clock offset. */
export const ONE_WAY_OFFSET_THRESHOLD_NS = 1_000_000;
/** Two-way estimates below this are path asymmetry, not clock offset. */
export const TWO_WAY_OFFSET_THRESHOLD_NS = 50_000;
const DUP_WINDOW_NS = 1_000_000;
const MAX_SAMPLES = 20_000;
const MAX_GENERATION_WALK = 64;
/** Sightings (not counting duplicates) one packet may have: a frame re-emitted at one point more often is a new one. */
const MAX_GROUP_SIGHTINGS = 4 * MAX_POINTS;
const DIGEST_BYTES = 64;

const K_TCP = 1;
const K_UDP = 2;
const K_ICMP = 3;
const K_IP = 4;
const K_ARP = 5;
const K_OTHER = 6;

// ---------------------------------------------------------------------------------------------------------------
// Hashing (murmur3-style mixing of 32-bit words)

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const SEED1 = 0x9747b28c | 0;
const SEED2 = 0x2545f491 | 0;

/** Open-addressing table from 64-bit keys (two int32 hashes) to non-negative ints; no allocation per lookup. */
class KeyTable {
  private mask: number;
  private ka: Int32Array;
  private kb: Int32Array;
  private val: Int32Array;
  private size = 0;

  constructor(capacity = 1024) {
    let cap = 1024;
    while (cap < capacity * 2) cap *= 2;
    this.mask = cap - 1;
    this.ka = new Int32Array(cap);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap).fill(-1);
  }

  get(a: number, b: number): number {
    const mask = this.mask;
    let i = fmix(a ^ Math.imul(b, 0x9e3779b1)) & mask;
    for (;;) {
      const v = this.val[i]!;
      if (v < 0) return -1;
      if (this.ka[i] === a && this.kb[i] === b) return v;
      i = (i + 1) & mask;
    }
  }

  set(a: number, b: number, v: number): void {
    if ((this.size + 1) * 2 > this.mask) this.grow();
    const mask = this.mask;
    let i = fmix(a ^ Math.imul(b, 0x9e3779b1)) & mask;
    for (;;) {
      const cur = this.val[i]!;
      if (cur < 0) {
        this.ka[i] = a;
        this.kb[i] = b;
        this.val[i] = v;
        this.size++;
        return;
      }
      if (this.ka[i] === a && this.kb[i] === b) {
        this.val[i] = v;
        return;
      }
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const { ka, kb, val } = this;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.ka = new Int32Array(cap);
    this.kb = new Int32Array(cap);
    this.val = new Int32Array(cap).fill(-1);
    this.size = 0;
    for (let i = 0; i < val.length; i++) if (val[i]! >= 0) this.set(ka[i]!, kb[i]!, val[i]!);
  }
}

/** Counts per (key, next point): a `KeyTable` to blocks of `MAX_POINTS` counters. */
class CountTable {
  private readonly index = new KeyTable();
  private counts = new Int32Array(MAX_POINTS * 1024);
  private blocks = 0;

  add(a: number, b: number, p: number): void {
    let k = this.index.get(a, b);
    if (k < 0) {
      k = this.blocks++;
      if (this.blocks * MAX_POINTS > this.counts.length) {
        const bigger = new Int32Array(this.counts.length * 2);
        bigger.set(this.counts);
        this.counts = bigger;
      }
      this.index.set(a, b, k);
    }
    this.counts[k * MAX_POINTS + p]!++;
  }

  /** The most frequent next point, or -1. */
  best(a: number, b: number): number {
    const k = this.index.get(a, b);
    if (k < 0) return -1;
    let bp = -1;
    let bc = 0;
    for (let p = 0; p < MAX_POINTS; p++) {
      const n = this.counts[k * MAX_POINTS + p]!;
      if (n > bc) {
        bc = n;
        bp = p;
      }
    }
    return bp;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Public types

export interface PointInfo {
  readonly name: string;
  readonly file: string;
}

/** One hop of a path the model expects (only hops at captured points matter). */
export interface ExpectedHop {
  readonly point: string;
  /** `src > dst` MACs the model has there, when it knows. */
  readonly srcMac?: string;
  readonly dstMac?: string;
}

export interface ExpectedPath {
  readonly hops: readonly ExpectedHop[];
  /** How the model's walk ends (e.g. `dropped-by-filter at host1:vnet0 (request): …`). */
  readonly end: string;
  /** The model's walk succeeds (a reply, a delivery): a packet that followed it fully has not vanished. */
  readonly ok: boolean;
}

/** What the model is asked about: the first packet of a flow as seen at its first point. */
export interface FlowQuery {
  readonly proto: number;
  readonly src: Ipv4;
  readonly dst: Ipv4;
  readonly sport: number;
  readonly dport: number;
  readonly tcpFlags: number;
  readonly seq: number;
  readonly ipId: number;
  readonly tsval?: number;
  readonly window?: number;
  /** Nanoseconds since the epoch, at the first point's clock. */
  readonly timeNs: bigint;
  readonly firstPoint: string;
}

export interface CorrelateOptions {
  /** Asked once per flow (forward direction); return the model's path or undefined. */
  readonly expect?: (q: FlowQuery) => ExpectedPath | undefined;
  /** List every packet of every flow (default: only when the run has at most 300 packets). */
  readonly detailAll?: boolean;
  /** Most flows to describe in detail (default 50). */
  readonly maxFlows?: number;
}

export type OffsetMethod = 'reference' | 'two-way' | 'one-way' | 'none' | 'unrelated';

export interface PointReport {
  readonly name: string;
  readonly file: string;
  readonly packets: number;
  /** Nanoseconds to subtract from this point's timestamps to get the reference clock. */
  readonly offsetNs: number;
  readonly offsetMethod: OffsetMethod;
  /** The point the offset was measured against. */
  readonly offsetAgainst?: string;
  readonly matchedSamples: number;
}

export interface Sighting {
  readonly point: string;
  /** Nanoseconds since the epoch, at the point's own clock. */
  readonly timeNs: string;
  /** Corrected to the reference clock, nanoseconds relative to the first packet of the run. */
  readonly correctedNs: number;
  readonly srcMac?: string;
  readonly dstMac?: string;
  readonly vlan?: string;
  readonly ttl?: number;
  readonly src: string;
  readonly dst: string;
  readonly tunnel?: string;
  /** Changes from the previous sighting, e.g. `84:78:ac:27:6c:41 > 02:00:73:b6:53:c8 became …`. */
  readonly rewrites: readonly string[];
  readonly duplicate?: boolean;
}

export interface MissingReport {
  /** Where the packet was last seen. */
  readonly lastPoint: string;
  /** Where it should have been next. */
  readonly expectedPoint: string;
  readonly reason: 'flow' | 'mac-header' | 'reflection' | 'model' | 'reverse-path';
  readonly explanation: string;
}

export interface PacketReport {
  readonly index: number;
  readonly direction: 'forward' | 'reverse';
  readonly summary: string;
  readonly path: readonly Sighting[];
  readonly lastPoint: string;
  readonly missing?: MissingReport;
  /** Packets like it passed this point before the first point where it was seen. */
  readonly notCapturedAt?: string;
  readonly retransmissionOf?: number;
  readonly retransmissionNote?: string;
}

export interface FlowReport {
  readonly id: number;
  readonly protocol: string;
  /** As seen at the flow's first point, initiator first. */
  readonly endpoints: string;
  /** Other address/port pairs the flow had at other points (NAT). */
  readonly aliases: readonly string[];
  readonly firstPoint: string;
  readonly packets: number;
  readonly missing: number;
  /** Packets first seen downstream of a point they should have passed (not captured there). */
  readonly notCaptured: number;
  readonly retransmissions: number;
  readonly handshake?: 'complete' | 'no-syn-ack' | 'no-ack' | 'not-seen';
  readonly handshakeNote?: string;
  readonly model?: { readonly end: string; readonly departure?: string; readonly agrees: boolean };
  /** Packets listed (all, or only those with something to say for big runs). */
  readonly details: readonly PacketReport[];
  readonly detailsComplete: boolean;
}

export interface VanishPoint {
  readonly after: string;
  readonly expected: string;
  readonly packets: number;
}

export interface CorrelationReport {
  readonly points: readonly PointReport[];
  readonly packets: number;
  readonly sightings: number;
  readonly flows: number;
  readonly missing: number;
  /** Packets not captured at a point upstream of where they were first seen (a capture gap, not a loss). */
  readonly notCaptured: number;
  readonly retransmissions: number;
  readonly incompleteHandshakes: number;
  /** IP flows with packets both ways (a request and its answer), and with packets one way only. */
  readonly answeredFlows: number;
  readonly unansweredFlows: number;
  readonly vanished: readonly VanishPoint[];
  readonly flowReports: readonly FlowReport[];
  readonly flowsOmitted: number;
  readonly keyFields: readonly string[];
  readonly issues: readonly Issue[];
}

// ---------------------------------------------------------------------------------------------------------------
// Growable columns

class Cols {
  cap = 0;
  n = 0;
  pt = new Uint8Array(0);
  t = new Float64Array(0);
  c1 = new Int32Array(0);
  c2 = new Int32Array(0);
  ipid = new Int32Array(0);
  dig = new Int32Array(0);
  hdr = new Uint32Array(0);
  tup = new Uint32Array(0);
  tun = new Uint32Array(0);
  ttl = new Uint8Array(0);
  kind = new Uint8Array(0);
  fl = new Uint8Array(0);
  seq = new Uint32Array(0);
  ack = new Uint32Array(0);
  tsv = new Uint32Array(0);
  hasTs = new Uint8Array(0);
  win = new Uint16Array(0);
  plen = new Uint32Array(0);
  next = new Int32Array(0);
  grp = new Int32Array(0);

  grow(): void {
    const cap = Math.max(1024, this.cap * 2);
    const g = <T extends { length: number; set(a: ArrayLike<number>): void }>(a: T, C: new (n: number) => T): T => {
      const b = new C(cap);
      b.set(a as unknown as ArrayLike<number>);
      return b;
    };
    this.pt = g(this.pt, Uint8Array);
    this.t = g(this.t, Float64Array);
    this.c1 = g(this.c1, Int32Array);
    this.c2 = g(this.c2, Int32Array);
    this.ipid = g(this.ipid, Int32Array);
    this.dig = g(this.dig, Int32Array);
    this.hdr = g(this.hdr, Uint32Array);
    this.tup = g(this.tup, Uint32Array);
    this.tun = g(this.tun, Uint32Array);
    this.ttl = g(this.ttl, Uint8Array);
    this.kind = g(this.kind, Uint8Array);
    this.fl = g(this.fl, Uint8Array);
    this.seq = g(this.seq, Uint32Array);
    this.ack = g(this.ack, Uint32Array);
    this.tsv = g(this.tsv, Uint32Array);
    this.hasTs = g(this.hasTs, Uint8Array);
    this.win = g(this.win, Uint16Array);
    this.plen = g(this.plen, Uint32Array);
    this.next = g(this.next, Int32Array);
    this.grp = g(this.grp, Int32Array);
    this.cap = cap;
  }
}

interface HeaderInfo {
  readonly src?: string;
  readonly dst?: string;
  readonly vlan?: string;
}

interface Station {
  /** Sighting index. */
  s: number;
  leg: number;
}

// ---------------------------------------------------------------------------------------------------------------

export class Correlator {
  private readonly points: PointInfo[] = [];
  private readonly pointMacs: MacKnowledge[] = [];
  private readonly pointFields: FieldKnowledge[] = [];
  private readonly pointPackets: number[] = [];
  private readonly c = new Cols();
  private baseSec = Number.NaN;
  // Interned MAC headers.
  private readonly hdrIds = new KeyTable();
  private readonly hdrs: HeaderInfo[] = [{}];
  // Interned directional tuples (addresses, ports, protocol).
  private readonly tupIds = new KeyTable();
  private readonly tupSrc: number[] = [0];
  private readonly tupDst: number[] = [0];
  private readonly tupSp: number[] = [0];
  private readonly tupDp: number[] = [0];
  private readonly tupProto: number[] = [0];
  // Interned tunnels (outer src, dst, protocol).
  private readonly tunIds = new KeyTable();
  private readonly tuns: string[] = [''];
  private readonly loc = new Int32Array(2);
  private readonly issues: Issue[] = [];

  constructor(private readonly options: CorrelateOptions = {}) {}

  /** Registers a capture point; returns its index. */
  addPoint(name: string, file: string): number {
    if (this.points.length >= MAX_POINTS) throw new Error(`at most ${MAX_POINTS} capture points`);
    this.points.push({ name, file });
    this.pointMacs.push('both');
    this.pointFields.push({ link: true, ipId: true, ttl: true, payload: true });
    this.pointPackets.push(0);
    return this.points.length - 1;
  }

  /** What the capture of a point could carry (from its scan summary). */
  setPointKnowledge(p: number, fields: FieldKnowledge, linkTypes: readonly number[]): void {
    this.pointFields[p] = fields;
    let macs: MacKnowledge = fields.link ? 'both' : 'none';
    for (const lt of linkTypes) {
      const m = linkMacs(lt) ?? 'none';
      if (m === 'none' || (m === 'src' && macs === 'both')) macs = m;
    }
    this.pointMacs[p] = macs;
  }

  addIssues(issues: readonly Issue[]): void {
    this.issues.push(...issues);
  }

  /** A sink that records packets of point `p`. */
  sink(p: number): PacketSink {
    return (linkType, buf, off, caplen, _orig, sec, nsec) => this.ingest(p, linkType, buf, off, caplen, sec, nsec);
  }

  get sightingCount(): number {
    return this.c.n;
  }

  private ingest(p: number, linkType: number, b: Uint8Array, off: number, caplen: number, sec: number, nsec: number) {
    const c = this.c;
    if (c.n === c.cap) c.grow();
    const i = c.n;
    const end = off + caplen;
    const loc = this.loc;
    let l3 = locateNetwork(linkType, b, off, caplen, loc);
    if (Number.isNaN(this.baseSec)) this.baseSec = sec;
    this.pointPackets[p]!++;
    c.n++;
    c.pt[i] = p;
    c.t[i] = (sec - this.baseSec) * 1e9 + nsec;
    c.next[i] = -1;
    c.grp[i] = -1;
    c.ttl[i] = 0;
    c.fl[i] = 0;
    c.hasTs[i] = 0;
    c.tun[i] = 0;
    c.tup[i] = 0;
    c.ipid[i] = -1;
    c.dig[i] = 0;
    c.plen[i] = 0;
    if (l3 < 0) {
      // Too short for its link header (caplen 0 included): kept, as libpcap returns it, keyed on its bytes.
      c.hdr[i] = 0;
      this.otherKey(i, b, off, end, -1);
      return;
    }
    let etherType = loc[0]!;
    // MAC header (and VLAN tags)
    let h1 = SEED1;
    let h2 = SEED2;
    let vlan = 0;
    if (linkType === LINKTYPE_ETHERNET) {
      while (isVlanTpid(etherType) && l3 + 4 <= end) {
        const tci = (b[l3]! << 8) | b[l3 + 1]!;
        vlan = vlan * 4096 + (tci & 0xfff) + 1;
        etherType = (b[l3 + 2]! << 8) | b[l3 + 3]!;
        l3 += 4;
      }
      const w0 = (b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!;
      const w1 = (b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!;
      const w2 = (b[off + 8]! << 24) | (b[off + 9]! << 16) | (b[off + 10]! << 8) | b[off + 11]!;
      h1 = mix(mix(mix(mix(h1, w0), w1), w2), vlan);
      h2 = mix(mix(mix(mix(h2, w2), w1), w0), vlan);
      c.hdr[i] = this.pointMacs[p] === 'both' ? this.internHdr(h1, h2, b, off, true, vlan) : 0;
    } else if (loc[1]! >= 0) {
      const s = loc[1]!;
      const w1 = (b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) | b[s + 3]!;
      const w2 = (b[s + 4]! << 8) | b[s + 5]!;
      h1 = mix(mix(h1, w1), w2);
      h2 = mix(mix(h2, w2), w1);
      c.hdr[i] = this.internHdr(h1, ~h2, b, s - 6, false, 0);
    } else c.hdr[i] = 0;

    if (etherType === 0x0800) this.ipv4(i, b, l3, end, 0);
    else if ((etherType === 0x0806 || etherType === 0x8035) && l3 + 28 <= end) {
      c.kind[i] = K_ARP;
      let k1 = mix(SEED1, etherType);
      let k2 = mix(SEED2, etherType);
      for (let o = l3 + 6; o < l3 + 28; o += 2) {
        const w = (b[o]! << 8) | b[o + 1]!;
        k1 = mix(k1, w);
        k2 = mix(k2, w ^ 0x5bd1);
      }
      c.c1[i] = k1;
      c.c2[i] = k2;
      c.ipid[i] = 0;
      // ARP "flow": sender and target protocol addresses.
      const spa = ((b[l3 + 14]! << 24) | (b[l3 + 15]! << 16) | (b[l3 + 16]! << 8) | b[l3 + 17]!) >>> 0;
      const tpa = ((b[l3 + 24]! << 24) | (b[l3 + 25]! << 16) | (b[l3 + 26]! << 8) | b[l3 + 27]!) >>> 0;
      c.tup[i] = this.internTup(spa, tpa, 0, 0, 0x806);
      c.fl[i] = (b[l3 + 6]! << 8) | b[l3 + 7]!;
    } else this.otherKey(i, b, l3, end, etherType);
  }

  /** A frame that is not IPv4 or ARP: keyed on its first bytes (IPv6 without its hop limit) and length. */
  private otherKey(i: number, b: Uint8Array, l3: number, end: number, etherType: number): void {
    const c = this.c;
    c.kind[i] = K_OTHER;
    let k1 = mix(SEED1, etherType);
    let k2 = mix(SEED2, etherType);
    const stop = Math.min(end, l3 + 128);
    for (let o = l3; o < stop; o++) {
      // IPv6: leave the hop limit out.
      if (etherType === 0x86dd && o === l3 + 7) continue;
      k1 = mix(k1, b[o]!);
      k2 = mix(k2, b[o]! + 0x100);
    }
    c.c1[i] = mix(k1, end - l3);
    c.c2[i] = mix(k2, end - l3);
    c.ipid[i] = 0;
    c.plen[i] = end - l3;
  }

  private ipv4(i: number, b: Uint8Array, ip: number, end: number, depth: number): void {
    const c = this.c;
    if (ip + 20 > end || b[ip]! >> 4 !== 4) {
      c.kind[i] = K_OTHER;
      c.c1[i] = mix(SEED1, end - ip);
      c.c2[i] = mix(SEED2, end - ip);
      c.ipid[i] = 0;
      return;
    }
    const ihl = (b[ip]! & 15) * 4;
    const total = (b[ip + 2]! << 8) | b[ip + 3]!;
    const id = (b[ip + 4]! << 8) | b[ip + 5]!;
    const frag = ((b[ip + 6]! << 8) | b[ip + 7]!) & 0x3fff;
    const ttl = b[ip + 8]!;
    const proto = b[ip + 9]!;
    const src = ((b[ip + 12]! << 24) | (b[ip + 13]! << 16) | (b[ip + 14]! << 8) | b[ip + 15]!) >>> 0;
    const dst = ((b[ip + 16]! << 24) | (b[ip + 17]! << 16) | (b[ip + 18]! << 8) | b[ip + 19]!) >>> 0;
    const l4 = ip + ihl;
    const l4end = Math.min(end, ip + Math.max(total, ihl));
    const l4len = Math.max(0, total - ihl);
    // Tunnels: look through IPIP and plain GRE carrying IPv4.
    if (depth < 2 && (frag & 0x1fff) === 0) {
      if (proto === 4 && l4 + 20 <= end) {
        c.tun[i] = this.internTun(src, dst, 4);
        this.ipv4(i, b, l4, end, depth + 1);
        return;
      }
      if (proto === 47 && l4 + 4 <= end && b[l4]! === 0 && b[l4 + 2] === 0x08 && b[l4 + 3] === 0x00) {
        c.tun[i] = this.internTun(src, dst, 47);
        this.ipv4(i, b, l4 + 4, end, depth + 1);
        return;
      }
    }
    c.ttl[i] = ttl;
    c.ipid[i] = id;
    let k1 = mix(mix(SEED1, proto), frag);
    let k2 = mix(mix(SEED2, frag), proto);
    let sp = 0;
    let dp = 0;
    let pay = l4end;
    if ((frag & 0x1fff) !== 0) {
      c.kind[i] = K_IP;
      k1 = mix(k1, l4len);
      k2 = mix(k2, l4len);
      c.plen[i] = l4len;
    } else if (proto === 6 && l4 + 20 <= end) {
      c.kind[i] = K_TCP;
      sp = (b[l4]! << 8) | b[l4 + 1]!;
      dp = (b[l4 + 2]! << 8) | b[l4 + 3]!;
      const seq = ((b[l4 + 4]! << 24) | (b[l4 + 5]! << 16) | (b[l4 + 6]! << 8) | b[l4 + 7]!) >>> 0;
      const ack = ((b[l4 + 8]! << 24) | (b[l4 + 9]! << 16) | (b[l4 + 10]! << 8) | b[l4 + 11]!) >>> 0;
      const doff = (b[l4 + 12]! >> 4) * 4;
      const flags = b[l4 + 13]!;
      const plen = Math.max(0, l4len - doff);
      c.seq[i] = seq;
      c.ack[i] = ack;
      c.fl[i] = flags;
      c.win[i] = (b[l4 + 14]! << 8) | b[l4 + 15]!;
      c.plen[i] = plen;
      k1 = mix(mix(mix(mix(k1, seq), ack), flags), plen);
      k2 = mix(mix(mix(mix(k2, ack), seq), plen), flags);
      // Timestamps option
      const oend = Math.min(l4 + doff, end);
      let o = l4 + 20;
      while (o < oend) {
        const kind = b[o]!;
        if (kind === 0) break;
        if (kind === 1) {
          o++;
          continue;
        }
        if (o + 1 >= oend) break;
        const olen = b[o + 1]!;
        if (olen < 2) break;
        if (kind === 8 && olen === 10 && o + 10 <= oend) {
          const tsv = ((b[o + 2]! << 24) | (b[o + 3]! << 16) | (b[o + 4]! << 8) | b[o + 5]!) >>> 0;
          const tse = ((b[o + 6]! << 24) | (b[o + 7]! << 16) | (b[o + 8]! << 8) | b[o + 9]!) >>> 0;
          c.tsv[i] = tsv;
          c.hasTs[i] = 1;
          k1 = mix(mix(k1, tsv), tse);
          k2 = mix(mix(k2, tse), tsv);
          break;
        }
        o += olen;
      }
      pay = l4 + doff;
    } else if (proto === 17 && l4 + 8 <= end) {
      c.kind[i] = K_UDP;
      sp = (b[l4]! << 8) | b[l4 + 1]!;
      dp = (b[l4 + 2]! << 8) | b[l4 + 3]!;
      const plen = Math.max(0, l4len - 8);
      c.plen[i] = plen;
      k1 = mix(k1, plen);
      k2 = mix(k2, plen);
      pay = l4 + 8;
    } else if (proto === 1 && l4 + 8 <= end) {
      c.kind[i] = K_ICMP;
      const tc = (b[l4]! << 8) | b[l4 + 1]!;
      const rest = (b[l4 + 4]! << 24) | (b[l4 + 5]! << 16) | (b[l4 + 6]! << 8) | b[l4 + 7]!;
      c.fl[i] = b[l4]!;
      c.plen[i] = Math.max(0, l4len - 8);
      k1 = mix(mix(mix(k1, tc), rest), l4len);
      k2 = mix(mix(mix(k2, rest), tc), l4len);
      pay = l4 + 8;
    } else {
      c.kind[i] = K_IP;
      c.plen[i] = l4len;
      k1 = mix(k1, l4len);
      k2 = mix(k2, l4len);
      pay = l4;
    }
    // Payload digest (first bytes only: enough to tell packets apart, cheap on big captures).
    const stop = Math.min(l4end, pay + DIGEST_BYTES);
    let d = 0x811c9dc5 | 0;
    let o = pay;
    for (; o + 4 <= stop; o += 4) d = mix(d, (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
    for (; o < stop; o++) d = mix(d, b[o]!);
    c.dig[i] = d;
    c.c1[i] = k1;
    c.c2[i] = k2;
    c.tup[i] = this.internTup(src, dst, sp, dp, proto);
  }

  private internHdr(k1: number, k2: number, b: Uint8Array, off: number, both: boolean, vlan: number): number {
    let id = this.hdrIds.get(k1, k2);
    if (id < 0) {
      id = this.hdrs.length;
      this.hdrIds.set(k1, k2, id);
      const src = macFromBytes(b, off + 6);
      const info: HeaderInfo = both
        ? { src, dst: macFromBytes(b, off), ...(vlan ? { vlan: vlanText(vlan) } : {}) }
        : { src };
      this.hdrs.push(info);
    }
    return id;
  }

  private internTup(src: number, dst: number, sp: number, dp: number, proto: number): number {
    const k1 = mix(mix(mix(SEED1, src), dst), ((sp << 16) | dp) ^ proto);
    const k2 = mix(mix(mix(SEED2, dst), src), ((dp << 16) | sp) ^ (proto << 8));
    let id = this.tupIds.get(k1, k2);
    if (id < 0) {
      id = this.tupSrc.length;
      this.tupIds.set(k1, k2, id);
      this.tupSrc.push(src);
      this.tupDst.push(dst);
      this.tupSp.push(sp);
      this.tupDp.push(dp);
      this.tupProto.push(proto);
    }
    return id;
  }

  private internTun(src: number, dst: number, proto: number): number {
    const k1 = mix(mix(SEED1, src), dst) ^ proto;
    const k2 = mix(mix(SEED2, dst), src) ^ proto;
    let id = this.tunIds.get(k1, k2);
    if (id < 0) {
      id = this.tuns.length;
      this.tunIds.set(k1, k2, id);
      this.tuns.push(`${proto === 4 ? 'IPIP' : 'GRE'} ${formatIpv4(src as Ipv4)} > ${formatIpv4(dst as Ipv4)}`);
    }
    return id;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Correlation

  finish(): CorrelationReport {
    return new Analysis(this, this.options).run();
  }

  /** @internal */
  get internals(): {
    c: Cols;
    points: PointInfo[];
    pointMacs: MacKnowledge[];
    pointFields: FieldKnowledge[];
    pointPackets: number[];
    hdrs: HeaderInfo[];
    tupSrc: number[];
    tupDst: number[];
    tupSp: number[];
    tupDp: number[];
    tupProto: number[];
    tuns: string[];
    baseSec: number;
    issues: Issue[];
  } {
    return {
      c: this.c,
      points: this.points,
      pointMacs: this.pointMacs,
      pointFields: this.pointFields,
      pointPackets: this.pointPackets,
      hdrs: this.hdrs,
      tupSrc: this.tupSrc,
      tupDst: this.tupDst,
      tupSp: this.tupSp,
      tupDp: this.tupDp,
      tupProto: this.tupProto,
      tuns: this.tuns,
      baseSec: this.baseSec,
      issues: this.issues,
    };
  }
}

function vlanText(v: number): string {
  const ids: number[] = [];
  while (v > 0) {
    ids.unshift(((v - 1) % 4096) | 0);
    v = Math.floor((v - 1) / 4096);
  }
  return ids.map((x) => `vlan ${x}`).join(', ');
}

function median(a: number[]): number {
  if (a.length === 0) return 0;
  const s = Float64Array.from(a).sort();
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 2054: 'ARP', 47: 'GRE' };

class Analysis {
  private readonly x: Correlator['internals'];
  private readonly np: number;
  private useIpid = true;
  private useDig = true;
  // groups
  private gHead = new Int32Array(0);
  private gTail = new Int32Array(0);
  private gMask = new Uint32Array(0);
  private gLen = new Int32Array(0);
  private gDupHead = new Int32Array(0);
  private gDupTail = new Int32Array(0);
  private gCount = 0;
  private dup = new Uint8Array(0);
  // clocks
  private offset: Float64Array;
  private methods: OffsetMethod[];
  private against: number[];
  private samplesPerPoint: number[];
  private ambiguous = new Set<number>();
  // flows
  private canon: Int32Array = new Int32Array(0);
  private cbit: Uint8Array = new Uint8Array(0);
  private ufParent: Int32Array = new Int32Array(0);
  private ufParity: Uint8Array = new Uint8Array(0);
  // per group results
  private gFlow = new Int32Array(0);
  private gDir = new Uint8Array(0);
  private gFirst = new Int32Array(0);
  private gLast = new Int32Array(0);
  private gLastStation = new Int32Array(0);
  private gReflect = new Int32Array(0);
  private gMissing = new Int32Array(0);
  private gReason = new Uint8Array(0);
  private gGap = new Int32Array(0);
  private readonly transitions = new CountTable();
  private readonly hdrTransitions = new CountTable();
  /** (flow × 2 + direction, point) → point it came from × 2^26 + MAC header id there. */
  private readonly arrivals = new KeyTable();
  // scratch
  private readonly sc: number[] = [];

  constructor(
    cor: Correlator,
    private readonly options: CorrelateOptions,
  ) {
    this.x = cor.internals;
    this.np = this.x.points.length;
    this.offset = new Float64Array(this.np);
    this.methods = Array.from({ length: this.np }, () => 'unrelated' as OffsetMethod);
    this.against = Array.from({ length: this.np }, () => -1);
    this.samplesPerPoint = Array.from({ length: this.np }, () => 0);
  }

  run(): CorrelationReport {
    for (const f of this.x.pointFields) {
      if (!f.ipId) this.useIpid = false;
      if (!f.payload) this.useDig = false;
    }
    this.group();
    this.flows();
    this.clocks();
    this.paths();
    return this.report();
  }

  // Step 1: group sightings of the same packet.
  private group(): void {
    const c = this.x.c;
    const n = c.n;
    const cap = Math.max(16, n);
    this.gHead = new Int32Array(cap);
    this.gTail = new Int32Array(cap);
    this.gMask = new Uint32Array(cap);
    this.gLen = new Int32Array(cap);
    this.gDupHead = new Int32Array(cap).fill(-1);
    this.gDupTail = new Int32Array(cap);
    this.dup = new Uint8Array(n);
    // Key → its group × 2 while it has one generation, else its list of generations × 2 + 1.
    const byKey = new KeyTable(n);
    const gens: number[][] = [];
    const useIpid = this.useIpid;
    const useDig = this.useDig;
    for (let i = 0; i < n; i++) {
      let a = c.c1[i]!;
      let b = c.c2[i]!;
      if (useIpid) {
        a = mix(a, c.ipid[i]!);
        b = mix(b, ~c.ipid[i]!);
      }
      if (useDig) {
        a = mix(a, c.dig[i]!);
        b = mix(b, c.dig[i]! ^ 0x7f4a7c15);
      }
      const bit = 1 << c.pt[i]!;
      const v = byKey.get(a, b);
      let g = -1;
      if (v >= 0 && (v & 1) === 0) {
        g = v >> 1;
        if (this.gMask[g]! & bit) g = this.generation([g], i);
      } else if (v >= 0) g = this.generation(gens[v >> 1]!, i);
      c.grp[i] = g;
      if (g < 0) {
        // A new generation of this key: the same bytes again at a point that already saw them.
        g = this.gCount++;
        c.grp[i] = g;
        this.gHead[g] = i;
        this.gTail[g] = i;
        this.gMask[g] = bit;
        this.gLen[g] = 1;
        if (v < 0) byKey.set(a, b, g * 2);
        else {
          let list: number[];
          if ((v & 1) === 0) {
            list = [v >> 1];
            byKey.set(a, b, gens.length * 2 + 1);
            gens.push(list);
          } else list = gens[v >> 1]!;
          // Kept in order of first sighting (appended when read in time order).
          const t = c.t[i]!;
          let k = list.length;
          while (k > 0 && c.t[this.gHead[list[k - 1]!]!]! > t) k--;
          list.splice(k, 0, g);
        }
      } else if (this.dup[i]) {
        // Duplicates hang off a list of their own, so the sightings walked per packet stay few.
        if (this.gDupHead[g]! < 0) this.gDupHead[g] = i;
        else c.next[this.gDupTail[g]!] = i;
        this.gDupTail[g] = i;
      } else {
        c.next[this.gTail[g]!] = i;
        this.gTail[g] = i;
        this.gMask[g]! |= bit;
        this.gLen[g]!++;
      }
    }
  }

  /**
   * Which generation of a key (`list`, in order of first sighting) sighting `i` belongs to: one that already has it
   * at its point within a millisecond (a duplicate), one re-emitted there with other headers (a rewrite), else the
   * one nearest in time that has not been seen at its point; -1 for a new generation. Generations are visited
   * nearest first and at most `MAX_GENERATION_WALK` of them, so the cost stays linear in the packets.
   */
  private generation(list: readonly number[], i: number): number {
    const c = this.x.c;
    const p = c.pt[i]!;
    const bit = 1 << p;
    const t = c.t[i]!;
    const headT = (k: number): number => c.t[this.gHead[list[k]!]!]!;
    // First generation first seen after t.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const m = (lo + hi) >> 1;
      if (headT(m) <= t) lo = m + 1;
      else hi = m;
    }
    let before = lo - 1;
    let after = lo;
    let best = -1;
    for (let walk = 0; walk < MAX_GENERATION_WALK && (before >= 0 || after < list.length); walk++) {
      let k: number;
      if (after >= list.length || (before >= 0 && t - headT(before) <= headT(after) - t)) k = before--;
      else k = after++;
      const g = list[k]!;
      if (this.gMask[g]! & bit) {
        // Same point already: the same frame again (duplicate), or re-emitted with other headers (a rewrite).
        let sameHdrGap = Number.POSITIVE_INFINITY;
        let otherHdr = false;
        for (let s = this.gHead[g]!; s >= 0; s = c.next[s]!) {
          if (c.pt[s] !== p) continue;
          if (c.hdr[s] === c.hdr[i] && c.tup[s] === c.tup[i] && c.tun[s] === c.tun[i])
            sameHdrGap = Math.min(sameHdrGap, Math.abs(c.t[s]! - t));
          else if (Math.abs(c.t[s]! - t) < 1e9) otherHdr = true;
        }
        if (sameHdrGap < DUP_WINDOW_NS) {
          this.dup[i] = 1;
          return g;
        }
        if (otherHdr && sameHdrGap === Number.POSITIVE_INFINITY && this.gLen[g]! < MAX_GROUP_SIGHTINGS) return g;
        continue;
      }
      if (best < 0) best = g;
    }
    return best;
  }

  // Step 2: clock offsets between points.
  private clocks(): void {
    const c = this.x.c;
    const np = this.np;
    const pairs = new Map<number, { d: number[]; tup: number[] }>();
    for (let g = 0; g < this.gCount; g++) {
      const m = this.gMask[g]!;
      if ((m & (m - 1)) === 0) continue;
      for (let s = this.gHead[g]!; s >= 0; s = c.next[s]!) {
        if (this.dup[s]) continue;
        for (let u = c.next[s]!; u >= 0; u = c.next[u]!) {
          if (this.dup[u] || c.pt[u] === c.pt[s]) continue;
          let a = s;
          let b = u;
          if (c.pt[a]! > c.pt[b]!) [a, b] = [b, a];
          const key = c.pt[a]! * MAX_POINTS + c.pt[b]!;
          let e = pairs.get(key);
          if (!e) {
            e = { d: [], tup: [] };
            pairs.set(key, e);
          }
          if (e.d.length < MAX_SAMPLES) {
            e.d.push(c.t[b]! - c.t[a]!);
            const t = c.tup[a]!;
            e.tup.push(t === 0 ? -1 : this.find(t) * 2 + this.lastParity);
          }
        }
      }
    }
    // Per pair: offset of b relative to a.
    const est: { a: number; b: number; theta: number; n: number; method: OffsetMethod }[] = [];
    for (const [key, e] of pairs) {
      const a = Math.floor(key / MAX_POINTS);
      const b = key % MAX_POINTS;
      const byTup = new Map<number, number[]>();
      for (let k = 0; k < e.d.length; k++) {
        const t = e.tup[k]!;
        let l = byTup.get(t);
        if (!l) {
          l = [];
          byTup.set(t, l);
        }
        l.push(e.d[k]!);
      }
      // Two-way: a tuple and its reverse both crossed the pair.
      const thetas: number[] = [];
      const seen = new Set<number>();
      for (const [t, l] of byTup) {
        if (seen.has(t) || t < 0) continue;
        const r = t ^ 1;
        const lr = byTup.get(r);
        if (!lr) continue;
        seen.add(t);
        seen.add(r);
        thetas.push((median(l) + median(lr)) / 2);
      }
      let theta: number;
      let method: OffsetMethod;
      if (thetas.length > 0) {
        theta = median(thetas);
        method = 'two-way';
        // Path asymmetry alone makes a few microseconds; below this the clocks are taken as equal.
        if (Math.abs(theta) < TWO_WAY_OFFSET_THRESHOLD_NS) {
          theta = 0;
          method = 'none';
        }
      } else {
        const m = median(e.d);
        if (Math.abs(m) >= ONE_WAY_OFFSET_THRESHOLD_NS) {
          theta = m;
          method = 'one-way';
          this.ambiguous.add(key);
        } else {
          theta = 0;
          method = 'none';
        }
      }
      est.push({ a, b, theta, n: e.d.length, method });
      this.samplesPerPoint[a]! += e.d.length;
      this.samplesPerPoint[b]! += e.d.length;
    }
    // Spanning tree from the point with most samples (then the first point).
    let ref = 0;
    for (let p = 1; p < np; p++) if (this.samplesPerPoint[p]! > this.samplesPerPoint[ref]!) ref = p;
    const done = new Uint8Array(np);
    done[ref] = 1;
    this.methods[ref] = 'reference';
    est.sort((x, y) => y.n - x.n);
    for (let changed = true; changed; ) {
      changed = false;
      for (const e of est) {
        if (done[e.a] && !done[e.b]) {
          this.offset[e.b] = this.offset[e.a]! + e.theta;
          this.methods[e.b] = e.method;
          this.against[e.b] = e.a;
          done[e.b] = 1;
          changed = true;
        } else if (done[e.b] && !done[e.a]) {
          this.offset[e.a] = this.offset[e.b]! - e.theta;
          this.methods[e.a] = e.method;
          this.against[e.a] = e.b;
          done[e.a] = 1;
          changed = true;
        }
      }
    }
  }

  // Step 3: flows — tuples joined by packets seen under several tuples (NAT), with direction parity.
  private flows(): void {
    const x = this.x;
    const nt = x.tupSrc.length;
    this.canon = new Int32Array(nt);
    this.cbit = new Uint8Array(nt);
    const canonIds = new Map<string, number>();
    for (let t = 1; t < nt; t++) {
      const a = x.tupSrc[t]! * 65536 + x.tupSp[t]!;
      const b = x.tupDst[t]! * 65536 + x.tupDp[t]!;
      const flip = a > b;
      const k = flip ? `${b}|${a}|${x.tupProto[t]}` : `${a}|${b}|${x.tupProto[t]}`;
      let id = canonIds.get(k);
      if (id === undefined) {
        id = t; // representative: first directional tuple
        canonIds.set(k, id);
      }
      this.canon[t] = id;
      // bit: 0 when this tuple has the same orientation as the representative
      const ra = x.tupSrc[id]! * 65536 + x.tupSp[id]!;
      this.cbit[t] = ra === a ? 0 : 1;
    }
    this.ufParent = new Int32Array(nt);
    this.ufParity = new Uint8Array(nt);
    for (let t = 0; t < nt; t++) this.ufParent[t] = t;
    const c = x.c;
    for (let g = 0; g < this.gCount; g++) {
      const m = this.gMask[g]!;
      const h = this.gHead[g]!;
      if ((m & (m - 1)) === 0 && c.next[h]! < 0) continue;
      const t0 = c.tup[h]!;
      for (let s = c.next[h]!; s >= 0; s = c.next[s]!) {
        const t = c.tup[s]!;
        if (t !== t0 && t !== 0 && t0 !== 0) this.union(t0, t);
      }
    }
  }

  /** Root and direction parity of a directional tuple relative to its flow's root. */
  private find(t: number): number {
    let p = this.canon[t]!;
    let par = this.cbit[t]!;
    while (this.ufParent[p] !== p) {
      par ^= this.ufParity[p]!;
      p = this.ufParent[p]!;
    }
    this.lastParity = par;
    return p;
  }
  private lastParity = 0;

  private union(t1: number, t2: number): void {
    // Same packet under t1 and t2: direction(t1) == direction(t2).
    const r1 = this.find(t1);
    const p1 = this.lastParity;
    const r2 = this.find(t2);
    const p2 = this.lastParity;
    if (r1 === r2) return;
    this.ufParent[r2] = r1;
    this.ufParity[r2] = p1 ^ p2;
  }

  // Step 4: each packet's path; transitions learned; the last station of each packet.
  private paths(): void {
    const G = this.gCount;
    this.gFlow = new Int32Array(G);
    this.gDir = new Uint8Array(G);
    this.gFirst = new Int32Array(G);
    this.gLast = new Int32Array(G);
    this.gLastStation = new Int32Array(G);
    this.gReflect = new Int32Array(G);
    this.gMissing = new Int32Array(G).fill(-1);
    this.gReason = new Uint8Array(G);
    const c = this.x.c;
    const tr = this.transitions;
    const htr = this.hdrTransitions;
    for (let g = 0; g < G; g++) {
      const st = this.order(g);
      const first = st[0]!;
      const t0 = c.tup[first.s]!;
      const root = t0 === 0 ? 0 : this.find(t0);
      const dir = t0 === 0 ? 0 : this.lastParity;
      this.gFlow[g] = root;
      this.gDir[g] = dir;
      this.gFirst[g] = first.s;
      const last = st[st.length - 1]!;
      this.gLast[g] = last.s;
      this.gLastStation[g] = c.pt[last.s]! * 16 + Math.min(15, last.leg);
      const fd = root * 2 + dir;
      for (let k = 0; k + 1 < st.length; k++) {
        const a = st[k]!;
        const b = st[k + 1]!;
        const from = c.pt[a.s]! * 16 + Math.min(15, a.leg);
        tr.add(fd, from, c.pt[b.s]!);
        if (c.pt[a.s] !== c.pt[b.s] && this.arrivals.get(fd, c.pt[b.s]!) < 0)
          this.arrivals.set(fd, c.pt[b.s]!, c.pt[a.s]! * 67108864 + (c.hdr[b.s]! & 0x3ffffff));
        if (a.leg === b.leg && c.pt[a.s] !== c.pt[b.s] && c.hdr[a.s]! !== 0)
          htr.add(c.hdr[a.s]!, c.pt[a.s]!, c.pt[b.s]!);
      }
      // Retracing: the last leg left through the point the previous leg ended at and so far walks it backwards.
      this.gReflect[g] = 0;
      if (last.leg > 0) {
        let a = st.length - 1;
        while (a > 0 && st[a - 1]!.leg === last.leg) a--;
        let b = a - 1;
        while (b > 0 && st[b - 1]!.leg === last.leg - 1) b--;
        const back = st.length - a;
        const prevLen = a - b;
        if (st[a - 1]!.leg === last.leg - 1 && prevLen > back) {
          let ok = true;
          for (let k = 0; k < back && ok; k++) ok = c.pt[st[a + k]!.s] === c.pt[st[a - 1 - k]!.s];
          const cand = c.pt[st[a - 1 - back]!.s]!;
          if (ok && (back === 1 || this.nodeOf(cand) === this.nodeOf(c.pt[last.s]!))) this.gReflect[g] = cand + 1;
        }
      }
    }
    // Expected next for each packet's last station (one point alone cannot say where a packet should have been next).
    this.gGap = new Int32Array(G);
    for (let g = 0; g < G && this.np > 1; g++) {
      // Seen first at F although packets like it came to F from X: not captured at X.
      const fa = this.arrivals.get(this.gFlow[g]! * 2 + this.gDir[g]!, c.pt[this.gFirst[g]!]!);
      if (fa >= 0) {
        const from = Math.floor(fa / 67108864);
        if (!(this.gMask[g]! & (1 << from))) this.gGap[g] = from + 1;
      }
      const next = tr.best(this.gFlow[g]! * 2 + this.gDir[g]!, this.gLastStation[g]!);
      if (next >= 0) {
        this.gMissing[g] = next;
        this.gReason[g] = 1;
        continue;
      }
      const last = this.gLast[g]!;
      if (c.hdr[last]! !== 0 && c.grp[last] === g) {
        const hn = htr.best(c.hdr[last]!, c.pt[last]!);
        if (hn >= 0) {
          this.gMissing[g] = hn;
          this.gReason[g] = 2;
          continue;
        }
      }
      if (this.gReflect[g]! > 0) {
        this.gMissing[g] = this.gReflect[g]! - 1;
        this.gReason[g] = 3;
        continue;
      }
      // The other direction arrived here from Q with a frame from the MAC this one is addressed to: retrace.
      const arr = this.arrivals.get(this.gFlow[g]! * 2 + (1 - this.gDir[g]!), c.pt[last]!);
      if (arr >= 0 && this.gFlow[g] !== 0) {
        const from = Math.floor(arr / 67108864);
        const fh = this.x.hdrs[arr % 67108864];
        const lh = this.x.hdrs[c.hdr[last]!];
        if (fh && lh && fh.src !== undefined && lh.dst !== undefined && fh.src === lh.dst) {
          this.gMissing[g] = from;
          this.gReason[g] = 5;
        }
      }
    }
  }

  private nodeOf(p: number): string {
    const n = this.x.points[p]!.name;
    const k = n.indexOf(':');
    return k < 0 ? n : n.slice(0, k);
  }

  /** Orders the sightings of group `g` into stations (sighting, leg). */
  private order(g: number): Station[] {
    const c = this.x.c;
    const sc = this.sc;
    sc.length = 0;
    for (let s = this.gHead[g]!; s >= 0; s = c.next[s]!) if (!this.dup[s]) sc.push(s);
    if (sc.length === 0) sc.push(this.gHead[g]!);
    const off = this.offset;
    if (sc.length === 1) return [{ s: sc[0]!, leg: 0 }];
    if (sc.length === 2) {
      const a = sc[0]!;
      const b = sc[1]!;
      if (this.sameLeg(a, b)) {
        const ab = this.before(a, b);
        return ab
          ? [
              { s: a, leg: 0 },
              { s: b, leg: 0 },
            ]
          : [
              { s: b, leg: 0 },
              { s: a, leg: 0 },
            ];
      }
      // Two legs: at one point (in and out again) raw time orders them; at two points corrected time.
      const ab = c.pt[a] === c.pt[b] ? c.t[a]! <= c.t[b]! : c.t[a]! - off[c.pt[a]!]! <= c.t[b]! - off[c.pt[b]!]!;
      return ab
        ? [
            { s: a, leg: 0 },
            { s: b, leg: 1 },
          ]
        : [
            { s: b, leg: 0 },
            { s: a, leg: 1 },
          ];
    }
    // Legs
    const legs: number[][] = [];
    for (const s of sc) {
      let l = legs.find((leg) => this.sameLeg(leg[0]!, s));
      if (!l) {
        l = [];
        legs.push(l);
      }
      l.push(s);
    }
    const ct = (s: number): number => c.t[s]! - off[c.pt[s]!]!;
    const minT = (leg: number[]): number => Math.min(...leg.map(ct));
    legs.sort((A, B) => {
      for (const a of A) for (const b of B) if (c.pt[a] === c.pt[b]) return c.t[a]! - c.t[b]!;
      return minT(A) - minT(B);
    });
    // The rewrite point between consecutive legs: the shared point where the frame turned around fastest.
    const junction: number[] = [];
    for (let li = 0; li + 1 < legs.length; li++) {
      let best = -1;
      let gap = Number.POSITIVE_INFINITY;
      for (const a of legs[li]!)
        for (const b of legs[li + 1]!)
          if (c.pt[a] === c.pt[b] && Math.abs(c.t[b]! - c.t[a]!) < gap) {
            gap = Math.abs(c.t[b]! - c.t[a]!);
            best = c.pt[a]!;
          }
      junction.push(best);
    }
    const out: Station[] = [];
    for (let li = 0; li < legs.length; li++) {
      const leg = legs[li]!;
      leg.sort((a, b) => (this.before(a, b) ? -1 : 1));
      const jin = li > 0 ? junction[li - 1]! : -1;
      const jout = li < junction.length ? junction[li]! : -1;
      if (jout >= 0) {
        const k = leg.findIndex((s) => c.pt[s] === jout);
        if (k >= 0 && k < leg.length - 1 && !(jin === jout && leg.length === 1)) leg.push(...leg.splice(k, 1));
      }
      if (jin >= 0) {
        const k = leg.findIndex((s) => c.pt[s] === jin);
        if (k > 0) leg.unshift(...leg.splice(k, 1));
      }
      for (const s of leg) out.push({ s, leg: li });
    }
    return out;
  }

  private sameLeg(a: number, b: number): boolean {
    const c = this.x.c;
    if (c.tup[a] !== c.tup[b] || c.tun[a] !== c.tun[b]) return false;
    const ha = c.hdr[a]!;
    const hb = c.hdr[b]!;
    if (ha === hb || ha === 0 || hb === 0) return true;
    // SLL headers know only the sender.
    const A = this.x.hdrs[ha]!;
    const B = this.x.hdrs[hb]!;
    if (A.dst === undefined || B.dst === undefined) return A.src === B.src;
    return false;
  }

  /** Whether sighting a comes before b (corrected clocks; command-line order when clocks cannot tell). */
  private before(a: number, b: number): boolean {
    const c = this.x.c;
    const pa = c.pt[a]!;
    const pb = c.pt[b]!;
    if (pa !== pb) {
      const key = pa < pb ? pa * MAX_POINTS + pb : pb * MAX_POINTS + pa;
      if (this.ambiguous.has(key)) return pa < pb;
    }
    const ta = c.t[a]! - this.offset[pa]!;
    const tb = c.t[b]! - this.offset[pb]!;
    return ta !== tb ? ta < tb : a < b;
  }

  // Step 5: the report.
  private report(): CorrelationReport {
    const x = this.x;
    const c = x.c;
    const G = this.gCount;
    const pointName = (p: number): string => x.points[p]!.name;
    // Flow numbering in order of first appearance (by corrected time of first station).
    // Flows in order of their first packet (packets are numbered in the order the captures were read).
    const flowOrder = new Map<number, number[]>();
    for (let g = 0; g < G; g++) {
      const f = this.gFlow[g]!;
      let l = flowOrder.get(f);
      if (!l) {
        l = [];
        flowOrder.set(f, l);
      }
      l.push(g);
    }
    const retransOf = new Int32Array(G).fill(-1);
    let missing = 0;
    let gaps = 0;
    let retrans = 0;
    let incomplete = 0;
    let answered = 0;
    let unanswered = 0;
    const vanished = new Map<string, number>();
    const flowReports: FlowReport[] = [];
    const detailAll = this.options.detailAll ?? G <= 300;
    const maxFlows = this.options.maxFlows ?? 50;
    let omitted = 0;
    let flowNo = 0;
    const modelMissing = new Map<number, { expected: number; note: string }>();
    const segs = new KeyTable();
    for (const [, groups] of flowOrder) {
      flowNo++;
      const h0 = this.gFirst[groups[0]!]!;
      const tup0 = c.tup[h0]!;
      const proto = tup0 ? x.tupProto[tup0]! : 0;
      // Forward direction: the SYN's, else the first packet's.
      let fwd = this.gDir[groups[0]!]!;
      for (const g of groups) {
        const s = this.gFirst[g]!;
        if (c.kind[s] === K_TCP && (c.fl[s]! & 0x12) === 0x02) {
          fwd = this.gDir[g]!;
          break;
        }
      }
      // Retransmissions: same direction, seq, length and SYN/FIN.
      let nRe = 0;
      for (const g of groups) {
        const s = this.gFirst[g]!;
        if (c.kind[s] !== K_TCP) continue;
        const f = c.fl[s]!;
        if (c.plen[s] === 0 && (f & 0x03) === 0) continue;
        const k1 = mix(mix(mix(SEED1, this.gFlow[g]! * 2 + this.gDir[g]!), c.seq[s]!), c.plen[s]!);
        const k2 = mix(mix(mix(SEED2, c.seq[s]!), f & 0x07), this.gFlow[g]! * 2 + this.gDir[g]!);
        const o = segs.get(k1, k2);
        if (o < 0) segs.set(k1, k2, g);
        else {
          retransOf[g] = o;
          nRe++;
        }
      }
      retrans += nRe;
      // Handshake
      let handshake: FlowReport['handshake'];
      let handshakeNote: string | undefined;
      if (proto === 6) {
        let syn = -1;
        let synAck = -1;
        let ack = false;
        let nSyn = 0;
        for (const g of groups) {
          const s = this.gFirst[g]!;
          const f = c.fl[s]!;
          if ((f & 0x12) === 0x02 && this.gDir[g] === fwd) {
            if (syn < 0) syn = s;
            nSyn++;
          } else if ((f & 0x12) === 0x12 && this.gDir[g] !== fwd && syn >= 0 && c.ack[s] === (c.seq[syn]! + 1) >>> 0)
            synAck = s;
          else if (
            synAck >= 0 &&
            (f & 0x12) === 0x10 &&
            this.gDir[g] === fwd &&
            c.ack[s] === (c.seq[synAck]! + 1) >>> 0
          )
            ack = true;
        }
        if (syn < 0) handshake = 'not-seen';
        else if (synAck < 0) {
          handshake = 'no-syn-ack';
          handshakeNote = `SYN sent ${nSyn} time${nSyn > 1 ? 's' : ''}, no SYN-ACK seen at any point: the handshake never completes`;
        } else if (!ack) {
          handshake = 'no-ack';
          handshakeNote = 'SYN and SYN-ACK seen, but no ACK of the SYN-ACK: the handshake never completes';
        } else handshake = 'complete';
        if (handshake === 'no-syn-ack' || handshake === 'no-ack') incomplete++;
      }
      // Model
      let model: FlowReport['model'];
      if (this.options.expect && tup0 && (proto === 6 || proto === 17 || proto === 1)) {
        const fg = groups.find((g) => this.gDir[g] === fwd) ?? groups[0]!;
        const s = this.gFirst[fg]!;
        const t = c.tup[s]!;
        const q: FlowQuery = {
          proto: x.tupProto[t]!,
          src: x.tupSrc[t]! as Ipv4,
          dst: x.tupDst[t]! as Ipv4,
          sport: x.tupSp[t]!,
          dport: x.tupDp[t]!,
          tcpFlags: c.fl[s]!,
          seq: c.seq[s]!,
          ipId: Math.max(0, c.ipid[s]!),
          ...(c.hasTs[s] ? { tsval: c.tsv[s]! } : {}),
          window: c.win[s]!,
          timeNs: this.absNs(s),
          firstPoint: pointName(c.pt[s]!),
        };
        const exp = this.options.expect(q);
        if (exp) model = this.compareModel(groups, fwd, exp, modelMissing);
      }
      if (tup0 !== 0) {
        if (groups.some((g) => this.gDir[g] !== fwd)) answered++;
        else unanswered++;
      }
      // Missing packets
      let nMissing = 0;
      for (const g of groups) {
        const mm = modelMissing.get(g);
        if (mm) {
          this.gMissing[g] = mm.expected;
          this.gReason[g] = 4;
        }
        if (this.gMissing[g]! >= 0) {
          nMissing++;
          const k = `${pointName(c.pt[this.gLast[g]!]!)}\u0000${pointName(this.gMissing[g]!)}`;
          vanished.set(k, (vanished.get(k) ?? 0) + 1);
        }
      }
      missing += nMissing;
      let nGaps = 0;
      for (const g of groups) if (this.gGap[g]! > 0) nGaps++;
      gaps += nGaps;
      const interesting =
        nMissing > 0 || nRe > 0 || handshake === 'no-syn-ack' || handshake === 'no-ack' || model?.agrees === false;
      if (!detailAll && !interesting && nGaps === 0) continue;
      if (flowReports.length >= maxFlows) {
        omitted++;
        continue;
      }
      const details: PacketReport[] = [];
      const index = new Map<number, number>();
      for (let k = 0; k < groups.length; k++) index.set(groups[k]!, k + 1);
      for (const g of groups) {
        if (!detailAll && this.gMissing[g]! < 0 && retransOf[g]! < 0 && this.gGap[g] === 0) continue;
        details.push(this.packetReport(g, index.get(g)!, fwd, retransOf[g]! >= 0 ? retransOf[g]! : undefined, index));
        if (details.length >= 200) break;
      }
      const aliases = new Set<string>();
      for (const g of groups)
        for (let s = this.gHead[g]!; s >= 0; s = c.next[s]!) {
          const t = c.tup[s]!;
          if (t && this.canon[t] !== this.canon[tup0]) aliases.add(this.endpoints(t, this.gDir[g] === fwd));
        }
      flowReports.push({
        id: flowNo,
        protocol: PROTO_NAMES[proto] ?? (tup0 ? `IP proto ${proto}` : 'other'),
        endpoints: tup0 ? this.endpoints(tup0, this.gDir[groups[0]!] === fwd) : 'non-IP frames',
        aliases: [...aliases],
        firstPoint: pointName(c.pt[h0]!),
        packets: groups.length,
        missing: nMissing,
        notCaptured: nGaps,
        retransmissions: nRe,
        ...(handshake ? { handshake } : {}),
        ...(handshakeNote ? { handshakeNote } : {}),
        ...(model ? { model } : {}),
        details,
        detailsComplete: details.length === groups.length,
      });
    }
    const points: PointReport[] = x.points.map((p, i) => ({
      name: p.name,
      file: p.file,
      packets: x.pointPackets[i]!,
      offsetNs: Math.round(this.offset[i]!),
      offsetMethod: this.methods[i]!,
      ...(this.against[i]! >= 0 ? { offsetAgainst: pointName(this.against[i]!) } : {}),
      matchedSamples: this.samplesPerPoint[i]!,
    }));
    const keyFields = [
      'protocol',
      'fragment offset',
      'TCP seq/ack/flags/TSval/TSecr',
      'payload length',
      'ICMP type/code/id/seq',
      'ARP fields',
    ];
    if (this.useIpid) keyFields.unshift('IP id');
    if (this.useDig) keyFields.push(`digest of the first ${DIGEST_BYTES} payload bytes`);
    return {
      points,
      packets: G,
      sightings: c.n,
      flows: flowOrder.size,
      missing,
      notCaptured: gaps,
      retransmissions: retrans,
      incompleteHandshakes: incomplete,
      answeredFlows: answered,
      unansweredFlows: unanswered,
      vanished: [...vanished]
        .map(([k, n]) => {
          const [after, expected] = k.split('\u0000') as [string, string];
          return { after, expected, packets: n };
        })
        .sort((a, b) => b.packets - a.packets),
      flowReports,
      flowsOmitted: omitted,
      keyFields,
      issues: x.issues,
    };
  }

  private absNs(s: number): bigint {
    const c = this.x.c;
    const t = c.t[s]!;
    const sec = Math.floor(t / 1e9);
    const ns = Math.round(t - sec * 1e9);
    return BigInt(this.x.baseSec + sec) * 1_000_000_000n + BigInt(ns);
  }

  private endpoints(t: number, forward: boolean): string {
    const x = this.x;
    const proto = x.tupProto[t]!;
    const ep = (a: number, p: number): string =>
      proto === 6 || proto === 17 ? `${formatIpv4(a as Ipv4)}.${p}` : formatIpv4(a as Ipv4);
    const s = ep(x.tupSrc[t]!, x.tupSp[t]!);
    const d = ep(x.tupDst[t]!, x.tupDp[t]!);
    return forward ? `${s} > ${d}` : `${d} > ${s}`;
  }

  private hdrText(h: number): string | undefined {
    const i = this.x.hdrs[h];
    if (!i || h === 0) return undefined;
    return i.dst === undefined ? `${i.src} > ?` : `${i.src} > ${i.dst}`;
  }

  private packetReport(
    g: number,
    index: number,
    fwd: number,
    reOf: number | undefined,
    idx: Map<number, number>,
  ): PacketReport {
    const x = this.x;
    const c = x.c;
    const st = this.order(g);
    const path: Sighting[] = [];
    let prev: number | undefined;
    for (const { s } of st) {
      const rewrites: string[] = [];
      if (prev !== undefined) {
        const hp = this.hdrText(c.hdr[prev]!);
        const hs = this.hdrText(c.hdr[s]!);
        if (hp && hs && c.hdr[prev] !== c.hdr[s]) rewrites.push(`${hp} became ${hs}`);
        if (c.tup[prev] !== c.tup[s] && c.tup[prev] && c.tup[s])
          rewrites.push(`${this.endpoints(c.tup[prev]!, true)} became ${this.endpoints(c.tup[s]!, true)}`);
        if (c.tun[prev] !== c.tun[s])
          rewrites.push(
            c.tun[s] ? `encapsulated in ${x.tuns[c.tun[s]!]}` : `decapsulated from ${x.tuns[c.tun[prev]!]}`,
          );
        const ttlKnown = x.pointFields[c.pt[s]!]!.ttl && x.pointFields[c.pt[prev]!]!.ttl;
        if (ttlKnown && c.ttl[prev] !== c.ttl[s] && c.ttl[s] && c.ttl[prev])
          rewrites.push(`ttl ${c.ttl[prev]} became ${c.ttl[s]}`);
      }
      const hi = x.hdrs[c.hdr[s]!]!;
      const t = c.tup[s]!;
      path.push({
        point: x.points[c.pt[s]!]!.name,
        timeNs: this.absNs(s).toString(),
        correctedNs: Math.round(c.t[s]! - this.offset[c.pt[s]!]!),
        ...(c.hdr[s] && hi.src !== undefined ? { srcMac: hi.src } : {}),
        ...(c.hdr[s] && hi.dst !== undefined ? { dstMac: hi.dst } : {}),
        ...(hi.vlan ? { vlan: hi.vlan } : {}),
        ...(c.ttl[s] && x.pointFields[c.pt[s]!]!.ttl ? { ttl: c.ttl[s]! } : {}),
        src: t ? this.endpoints(t, true).split(' > ')[0]! : '',
        dst: t ? this.endpoints(t, true).split(' > ')[1]! : '',
        ...(c.tun[s] ? { tunnel: x.tuns[c.tun[s]!]! } : {}),
        rewrites,
      });
      prev = s;
    }
    for (let s = this.gDupHead[g]!; s >= 0; s = c.next[s]!)
      path.push({
        point: x.points[c.pt[s]!]!.name,
        timeNs: this.absNs(s).toString(),
        correctedNs: Math.round(c.t[s]! - this.offset[c.pt[s]!]!),
        src: '',
        dst: '',
        rewrites: [],
        duplicate: true,
      });
    const last = this.gLast[g]!;
    const lastPoint = x.points[c.pt[last]!]!.name;
    let miss: MissingReport | undefined;
    const m = this.gMissing[g]!;
    if (m >= 0) {
      const expectedPoint = x.points[m]!.name;
      const how = this.hdrText(c.hdr[last]!);
      const reason = (['flow', 'flow', 'mac-header', 'reflection', 'model', 'reverse-path'] as const)[
        this.gReason[g]!
      ]!;
      const why =
        reason === 'flow'
          ? `other packets of this flow went on from ${lastPoint} to ${expectedPoint}`
          : reason === 'mac-header'
            ? `frames with the same MAC addresses went on from ${lastPoint} to ${expectedPoint}`
            : reason === 'reflection'
              ? `it went back out the way it came in, so it should pass ${expectedPoint} again`
              : reason === 'reverse-path'
                ? `the other direction of this flow reached ${lastPoint} from ${expectedPoint}, and this frame is addressed back to its sender`
                : `the model's path goes from ${lastPoint} to ${expectedPoint}`;
      miss = {
        lastPoint,
        expectedPoint,
        reason,
        explanation: `last seen at ${lastPoint}${how ? ` (${how})` : ''}; not seen at ${expectedPoint}: ${why}`,
      };
    }
    let note: string | undefined;
    if (reOf !== undefined) {
      const a = this.gFirst[reOf]!;
      const b = this.gFirst[g]!;
      // Compare at the same point when both were seen there.
      let sa = a;
      let sb = b;
      for (let s = this.gHead[reOf]!; s >= 0; s = c.next[s]!)
        for (let u = this.gHead[g]!; u >= 0; u = c.next[u]!)
          if (c.pt[s] === c.pt[u] && sa === a) {
            sa = s;
            sb = u;
          }
      const dt = (c.t[sb]! - c.t[sa]!) / 1e6;
      note = `retransmission of #${idx.get(reOf)}: +${dt.toFixed(3)} ms`;
      if (c.hasTs[sa] && c.hasTs[sb]) note += `, TS val +${(c.tsv[sb]! - c.tsv[sa]!) >>> 0}`;
    }
    return {
      index,
      direction: this.gDir[g] === fwd ? 'forward' : 'reverse',
      summary: this.summary(this.gFirst[g]!),
      path,
      lastPoint,
      ...(miss ? { missing: miss } : {}),
      ...(this.gGap[g]! > 0 ? { notCapturedAt: x.points[this.gGap[g]! - 1]!.name } : {}),
      ...(reOf !== undefined ? { retransmissionOf: idx.get(reOf)! } : {}),
      ...(note ? { retransmissionNote: note } : {}),
    };
  }

  private summary(s: number): string {
    const x = this.x;
    const c = x.c;
    const t = c.tup[s]!;
    const ep = t ? this.endpoints(t, true) : '';
    const id =
      c.ipid[s]! >= 0 && this.useIpid && c.kind[s] !== K_ARP && c.kind[s] !== K_OTHER ? ` id ${c.ipid[s]}` : '';
    switch (c.kind[s]) {
      case K_TCP: {
        const f = c.fl[s]!;
        let fl = '';
        for (const [bit, ch] of [
          [2, 'S'],
          [1, 'F'],
          [4, 'R'],
          [8, 'P'],
          [32, 'U'],
          [16, '.'],
        ] as const)
          if (f & bit) fl += ch;
        const ts = c.hasTs[s] ? `, TS val ${c.tsv[s]}` : '';
        const ack = f & 0x10 ? `, ack ${c.ack[s]}` : '';
        return `${ep}: Flags [${fl || 'none'}], seq ${c.seq[s]}${ack}${ts}, length ${c.plen[s]}${id}`;
      }
      case K_UDP:
        return `${ep}: UDP, length ${c.plen[s]}${id}`;
      case K_ICMP:
        return `${ep}: ICMP type ${c.fl[s]}, length ${c.plen[s]}${id}`;
      case K_ARP: {
        const f = c.fl[s]!;
        return `ARP ${f === 1 ? 'request' : f === 2 ? 'reply' : `op ${f}`} ${formatIpv4(x.tupSrc[t]! as Ipv4)} → ${formatIpv4(x.tupDst[t]! as Ipv4)}`;
      }
      case K_IP:
        return `${ep}: IP proto ${t ? x.tupProto[t] : '?'}, length ${c.plen[s]}${id}`;
      default:
        return `non-IPv4 frame, length ${c.plen[s]}`;
    }
  }

  /** Compares the forward packets of a flow with the model's path. */
  private compareModel(
    groups: readonly number[],
    fwd: number,
    exp: ExpectedPath,
    out: Map<number, { expected: number; note: string }>,
  ): NonNullable<FlowReport['model']> {
    const x = this.x;
    const c = x.c;
    const pointIdx = new Map(x.points.map((p, i) => [p.name, i]));
    const hops = exp.hops.filter((h) => pointIdx.has(h.point));
    let departure: string | undefined;
    let agrees = true;
    for (const g of groups) {
      if (this.gDir[g] !== fwd) continue;
      const st = this.order(g);
      let k = 0;
      let j = 0;
      for (; j < hops.length; j++) {
        const h = hops[j]!;
        const p = pointIdx.get(h.point)!;
        const o = st[k];
        if (o && c.pt[o.s] === p && this.macsMatch(o.s, h)) {
          k++;
          continue;
        }
        break;
      }
      if (j < hops.length) {
        const h = hops[j]!;
        const p = pointIdx.get(h.point)!;
        const o = st[k];
        const frame = h.srcMac && h.dstMac ? ` (${h.srcMac} > ${h.dstMac})` : '';
        const text = o
          ? `reality departs from the simulated path at ${h.point}${frame}: the packet was seen at ${x.points[c.pt[o.s]!]!.name}${this.hdrText(c.hdr[o.s]!) ? ` (${this.hdrText(c.hdr[o.s]!)})` : ''} instead`
          : `reality departs from the simulated path at ${h.point}${frame}: the simulation has the packet there, the capture does not`;
        if (departure === undefined) departure = text;
        agrees = false;
        if (!o) out.set(g, { expected: p, note: text });
      } else if (k < st.length) {
        if (departure === undefined)
          departure = `reality goes further than the simulation: the packet was also seen at ${x.points[c.pt[st[k]!.s]!]!.name}, where the simulation ends (${exp.end})`;
        agrees = false;
      } else if (exp.ok && this.gMissing[g]! >= 0) {
        // The packet followed a successful model path to its end: the guess that it should go on was wrong.
        out.set(g, { expected: -1, note: 'the model ends here' });
      }
    }
    return { end: exp.end, agrees, ...(departure ? { departure } : {}) };
  }

  private macsMatch(s: number, h: ExpectedHop): boolean {
    const c = this.x.c;
    const hi = this.x.hdrs[c.hdr[s]!];
    if (!hi || c.hdr[s] === 0) return true;
    if (h.srcMac !== undefined && hi.src !== undefined && hi.src !== h.srcMac) return false;
    if (h.dstMac !== undefined && hi.dst !== undefined && hi.dst !== h.dstMac) return false;
    return true;
  }
}
