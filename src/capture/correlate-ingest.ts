/**
 * Correlation, ingest: every captured packet of every point becomes one row of columns (time, point, MAC header,
 * tuple, tunnel, TCP fields) and a key built from the fields that survive rewrites (see correlate.ts).
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { macFromBytes } from '../addr/mac.ts';
import { appendAll } from '../source/arrays.ts';
import type { Issue } from '../source/issue.ts';
import { isVlanTpid } from '../wire/ethernet.ts';
import {
  Cols,
  DIGEST_BYTES,
  type HeaderInfo,
  K_ARP,
  K_ICMP,
  K_IP,
  K_OTHER,
  K_TCP,
  K_UDP,
  KeyTable,
  MAX_POINTS,
  mix,
  SEED1,
  SEED2,
} from './correlate-keys.ts';
import { LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, linkMacs, locateNetwork, type MacKnowledge } from './link.ts';
import { LINKTYPE_ETHERNET } from './pcap.ts';
import type { PacketSink } from './pcapng.ts';
import type { FieldKnowledge } from './scanner.ts';

export interface PointInfo {
  readonly name: string;
  readonly file: string;
}

/** Reads captured packets of every point into columns and keys. */
export class Ingest {
  readonly points: PointInfo[] = [];
  readonly pointMacs: MacKnowledge[] = [];
  readonly pointFields: FieldKnowledge[] = [];
  readonly pointPackets: number[] = [];
  readonly c = new Cols();
  baseSec = Number.NaN;
  // Interned MAC headers.
  private readonly hdrIds = new KeyTable();
  readonly hdrs: HeaderInfo[] = [{}];
  // Interned directional tuples (addresses, ports, protocol).
  private readonly tupIds = new KeyTable();
  readonly tupSrc: number[] = [0];
  readonly tupDst: number[] = [0];
  readonly tupSp: number[] = [0];
  readonly tupDp: number[] = [0];
  readonly tupProto: number[] = [0];
  // Interned tunnels (outer src, dst, protocol).
  private readonly tunIds = new KeyTable();
  readonly tuns: string[] = [''];
  private readonly loc = new Int32Array(2);
  readonly issues: Issue[] = [];

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
    // Known only once the file is read (pasted text says after parsing whether it had `-e`): rows of a point
    // without MACs (text without -e, raw IP, null) carry zero addresses that were never captured; no MAC header.
    if (macs === 'none')
      for (let i = this.pointStart[p] ?? this.c.n; i < this.c.n; i++) if (this.c.pt[i] === p) this.c.hdr[i] = 0;
  }

  /** The first row of each point (a point's capture is read in one go, so its rows follow from there). */
  private readonly pointStart: number[] = [];

  addIssues(issues: readonly Issue[]): void {
    appendAll(this.issues, issues);
  }

  /** A sink that records packets of point `p`. */
  sink(p: number): PacketSink {
    return (linkType, buf, off, caplen, _orig, sec, nsec) => this.ingest(p, linkType, buf, off, caplen, sec, nsec);
  }

  get sightingCount(): number {
    return this.c.n;
  }

  /**
   * The bytes of the binary captures to be read (read first), and what a record takes besides its packet bytes (pcap
   * 16, pcapng 32), so the columns can be sized once from the packets a byte holds in what was read so far, instead
   * of growing (and copying) by guesses.
   */
  expectBytes(total: number, recordOverhead: number): void {
    this.bytesExpected = total;
    this.recordOverhead = recordOverhead;
  }

  private bytesExpected = 0;
  private bytesSeen = 0;
  private recordOverhead = 16;

  /**
   * Room for the next row: the packet count the bytes read so far extrapolate to (2 % more), re-estimated whenever
   * it falls short (then at least 1/16 more, so appending stays linear); a geometric step once past the binary bytes.
   */
  private room(): void {
    const c = this.c;
    const n = c.n;
    if (n >= 4096 && this.bytesSeen > 0 && this.bytesExpected > this.bytesSeen) {
      // Records are at least 16 bytes (a pcap record header), so the estimate cannot run away on odd input.
      const estimate = Math.min((n * this.bytesExpected) / this.bytesSeen, this.bytesExpected / 16);
      c.reserve(Math.ceil(Math.max(estimate * 1.02, n + n / 16, n + 1024)));
      return;
    }
    c.grow();
  }

  private ingest(p: number, linkType: number, b: Uint8Array, off: number, caplen: number, sec: number, nsec: number) {
    const c = this.c;
    this.bytesSeen += caplen + this.recordOverhead;
    if (c.n === c.cap) this.room();
    const i = c.n;
    const end = off + caplen;
    const loc = this.loc;
    let l3 = locateNetwork(linkType, b, off, caplen, loc);
    if (Number.isNaN(this.baseSec)) this.baseSec = sec;
    if (this.pointPackets[p] === 0) this.pointStart[p] = i;
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
    c.dirn[i] = 0;
    c.ifi[i] = 0;
    if (l3 >= 0 && linkType === LINKTYPE_LINUX_SLL) c.dirn[i] = sllDirection((b[off]! << 8) | b[off + 1]!);
    else if (l3 >= 0 && linkType === LINKTYPE_LINUX_SLL2) {
      c.dirn[i] = sllDirection(b[off + 10]!);
      c.ifi[i] = ((b[off + 4]! << 24) | (b[off + 5]! << 16) | (b[off + 6]! << 8) | b[off + 7]!) >>> 0;
    }
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
      // Operation and protocol addresses in the key; what pasted text does not print (the hardware addresses, a
      // reply's target address) in the digest column, which is left out of every key of a run with a point that
      // lacks payload bytes ("ARP, Request who-has 192.0.2.2 tell 192.0.2.1", "ARP, Reply 192.0.2.2 is-at …").
      let k1 = mix(SEED1, etherType);
      let k2 = mix(SEED2, etherType);
      let d = 0x811c9dc5 | 0;
      for (let o = l3 + 6; o < l3 + 28; o += 2) {
        const w = (b[o]! << 8) | b[o + 1]!;
        // A reply's target protocol address too: text prints only "Reply 192.0.2.2 is-at 02:00:00:00:00:02".
        const reply = b[l3 + 7] === 2 && b[l3 + 6] === 0;
        const hw = (o >= l3 + 8 && o < l3 + 14) || (o >= l3 + 18 && o < l3 + (reply ? 28 : 24));
        if (hw) d = mix(d, w);
        else {
          k1 = mix(k1, w);
          k2 = mix(k2, w ^ 0x5bd1);
        }
      }
      c.c1[i] = k1;
      c.c2[i] = k2;
      c.dig[i] = d;
      c.ipid[i] = 0;
      // ARP "flow": sender and target protocol addresses.
      const spa = ((b[l3 + 14]! << 24) | (b[l3 + 15]! << 16) | (b[l3 + 16]! << 8) | b[l3 + 17]!) >>> 0;
      const tpa = ((b[l3 + 24]! << 24) | (b[l3 + 25]! << 16) | (b[l3 + 26]! << 8) | b[l3 + 27]!) >>> 0;
      // A reply read from text has no target address (0.0.0.0): no "flow" rather than a made-up one.
      c.tup[i] = tpa === 0 && b[l3 + 7] === 2 ? 0 : this.internTup(spa, tpa, 0, 0, 0x806);
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
}

/** Linux packet type (host, broadcast, multicast, otherhost: received; outgoing: sent) as `Cols.dirn`. */
function sllDirection(packetType: number): number {
  return packetType === 4 ? 2 : packetType <= 3 ? 1 : 0;
}

function vlanText(v: number): string {
  const ids: number[] = [];
  while (v > 0) {
    ids.unshift(((v - 1) % 4096) | 0);
    v = Math.floor((v - 1) / 4096);
  }
  return ids.map((x) => `vlan ${x}`).join(', ');
}
