/**
 * Correlation, report (stage 5 of correlate.ts): flows numbered in order of their first packet, retransmissions,
 * handshakes, the model's path compared with the captures, packets that vanished, and the report's public types.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Issue } from '../source/issue.ts';
import type { Clocks, OffsetMethod } from './correlate-clocks.ts';
import type { Ingest } from './correlate-ingest.ts';
import {
  DIGEST_BYTES,
  type Flows,
  K_ARP,
  K_ICMP,
  K_IP,
  K_OTHER,
  K_TCP,
  K_UDP,
  KeyTable,
  mix,
  type Packets,
  SEED1,
  SEED2,
} from './correlate-keys.ts';
import type { Paths } from './correlate-paths.ts';

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

const PROTO_NAMES: Readonly<Record<number, string>> = { 1: 'ICMP', 6: 'TCP', 17: 'UDP', 2054: 'ARP', 47: 'GRE' };

export class Report {
  constructor(
    private readonly x: Ingest,
    private readonly pk: Packets,
    private readonly fl: Flows,
    private readonly ck: Clocks,
    private readonly pa: Paths,
    private readonly options: CorrelateOptions,
    private readonly useIpid: boolean,
    private readonly useDig: boolean,
  ) {}

  // Step 5: the report.
  build(): CorrelationReport {
    const x = this.x;
    const c = x.c;
    const G = this.pk.gCount;
    const pointName = (p: number): string => x.points[p]!.name;
    // Flow numbering in order of first appearance (by corrected time of first station).
    // Flows in order of their first packet (packets are numbered in the order the captures were read).
    // Packets by flow without a list per flow (one array of packet numbers, cut per flow; 4 bytes a packet).
    const flowIds = this.pa.gFlow;
    let maxFlow = 0;
    for (let g = 0; g < G; g++) if (flowIds[g]! > maxFlow) maxFlow = flowIds[g]!;
    const flowStart = new Int32Array(maxFlow + 2);
    const flowSeq: number[] = [];
    for (let g = 0; g < G; g++) {
      const f = flowIds[g]!;
      if (flowStart[f + 1]!++ === 0) flowSeq.push(f);
    }
    for (let f = 0; f <= maxFlow; f++) flowStart[f + 1]! += flowStart[f]!;
    const byFlow = new Int32Array(G);
    {
      const fill = flowStart.slice(0, maxFlow + 1);
      for (let g = 0; g < G; g++) byFlow[fill[flowIds[g]!]!++] = g;
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
    for (const flow of flowSeq) {
      const groups = byFlow.subarray(flowStart[flow]!, flowStart[flow + 1]!);
      flowNo++;
      // Segments of one flow at a time: the table holds the largest flow, not the whole run.
      segs.clear();
      const h0 = this.pa.gFirst[groups[0]!]!;
      const tup0 = c.tup[h0]!;
      const proto = tup0 ? x.tupProto[tup0]! : 0;
      // Forward direction: the SYN's, else the first packet's.
      let fwd = this.pa.gDir[groups[0]!]!;
      for (const g of groups) {
        const s = this.pa.gFirst[g]!;
        if (c.kind[s] === K_TCP && (c.fl[s]! & 0x12) === 0x02) {
          fwd = this.pa.gDir[g]!;
          break;
        }
      }
      // Retransmissions: same direction, seq, length and SYN/FIN.
      let nRe = 0;
      for (const g of groups) {
        const s = this.pa.gFirst[g]!;
        if (c.kind[s] !== K_TCP) continue;
        const f = c.fl[s]!;
        if (c.plen[s] === 0 && (f & 0x03) === 0) continue;
        const k1 = mix(mix(mix(SEED1, this.pa.gFlow[g]! * 2 + this.pa.gDir[g]!), c.seq[s]!), c.plen[s]!);
        const k2 = mix(mix(mix(SEED2, c.seq[s]!), f & 0x07), this.pa.gFlow[g]! * 2 + this.pa.gDir[g]!);
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
          const s = this.pa.gFirst[g]!;
          const f = c.fl[s]!;
          if ((f & 0x12) === 0x02 && this.pa.gDir[g] === fwd) {
            if (syn < 0) syn = s;
            nSyn++;
          } else if ((f & 0x12) === 0x12 && this.pa.gDir[g] !== fwd && syn >= 0 && c.ack[s] === (c.seq[syn]! + 1) >>> 0)
            synAck = s;
          else if (
            synAck >= 0 &&
            (f & 0x12) === 0x10 &&
            this.pa.gDir[g] === fwd &&
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
        const fg = groups.find((g) => this.pa.gDir[g] === fwd) ?? groups[0]!;
        const s = this.pa.gFirst[fg]!;
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
        if (groups.some((g) => this.pa.gDir[g] !== fwd)) answered++;
        else unanswered++;
      }
      // Missing packets
      let nMissing = 0;
      for (const g of groups) {
        const mm = modelMissing.get(g);
        if (mm) {
          this.pa.gMissing[g] = mm.expected;
          this.pa.gReason[g] = 4;
        }
        if (this.pa.gMissing[g]! >= 0) {
          nMissing++;
          const k = `${pointName(c.pt[this.pa.gLast[g]!]!)}\u0000${pointName(this.pa.gMissing[g]!)}`;
          vanished.set(k, (vanished.get(k) ?? 0) + 1);
        }
      }
      missing += nMissing;
      let nGaps = 0;
      for (const g of groups) if (this.pa.gGap[g]! > 0) nGaps++;
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
        if (!detailAll && this.pa.gMissing[g]! < 0 && retransOf[g]! < 0 && this.pa.gGap[g] === 0) continue;
        details.push(this.packetReport(g, index.get(g)!, fwd, retransOf[g]! >= 0 ? retransOf[g]! : undefined, index));
        if (details.length >= 200) break;
      }
      const aliases = new Set<string>();
      for (const g of groups)
        for (let s = this.pk.gHead[g]!; s >= 0; s = c.next[s]!) {
          const t = c.tup[s]!;
          if (t && this.fl.canon[t] !== this.fl.canon[tup0]) aliases.add(this.endpoints(t, this.pa.gDir[g] === fwd));
        }
      flowReports.push({
        id: flowNo,
        protocol: PROTO_NAMES[proto] ?? (tup0 ? `IP proto ${proto}` : 'other'),
        endpoints: tup0 ? this.endpoints(tup0, this.pa.gDir[groups[0]!] === fwd) : 'non-IP frames',
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
      offsetNs: Math.round(this.ck.offset[i]!),
      offsetMethod: this.ck.methods[i]!,
      ...(this.ck.against[i]! >= 0 ? { offsetAgainst: pointName(this.ck.against[i]!) } : {}),
      matchedSamples: this.ck.samplesPerPoint[i]!,
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
      flows: flowSeq.length,
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

  /** Two MAC headers differ in what both captures carried (a Linux cooked capture carries only the sender). */
  private macsDiffer(a: number, b: number): boolean {
    const A = this.x.hdrs[a]!;
    const B = this.x.hdrs[b]!;
    return A.dst === undefined || B.dst === undefined ? A.src !== B.src : true;
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
    const st = this.pa.order(g);
    const path: Sighting[] = [];
    let prev: number | undefined;
    for (const { s } of st) {
      const rewrites: string[] = [];
      if (prev !== undefined) {
        const hp = this.hdrText(c.hdr[prev]!);
        const hs = this.hdrText(c.hdr[s]!);
        if (hp && hs && c.hdr[prev] !== c.hdr[s] && this.macsDiffer(c.hdr[prev]!, c.hdr[s]!))
          rewrites.push(`${hp} became ${hs}`);
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
        correctedNs: Math.round(c.t[s]! - this.ck.offset[c.pt[s]!]!),
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
    for (let s = this.pk.gDupHead[g]!; s >= 0; s = c.next[s]!)
      path.push({
        point: x.points[c.pt[s]!]!.name,
        timeNs: this.absNs(s).toString(),
        correctedNs: Math.round(c.t[s]! - this.ck.offset[c.pt[s]!]!),
        src: '',
        dst: '',
        rewrites: [],
        duplicate: true,
      });
    const last = this.pa.gLast[g]!;
    const lastPoint = x.points[c.pt[last]!]!.name;
    let miss: MissingReport | undefined;
    const m = this.pa.gMissing[g]!;
    if (m >= 0) {
      const expectedPoint = x.points[m]!.name;
      const how = this.hdrText(c.hdr[last]!);
      const reason = (['flow', 'flow', 'mac-header', 'reflection', 'model', 'reverse-path'] as const)[
        this.pa.gReason[g]!
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
      const a = this.pa.gFirst[reOf]!;
      const b = this.pa.gFirst[g]!;
      // Compare at the same point when both were seen there.
      let sa = a;
      let sb = b;
      for (let s = this.pk.gHead[reOf]!; s >= 0; s = c.next[s]!)
        for (let u = this.pk.gHead[g]!; u >= 0; u = c.next[u]!)
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
      direction: this.pa.gDir[g] === fwd ? 'forward' : 'reverse',
      summary: this.summary(this.pa.gFirst[g]!),
      path,
      lastPoint,
      ...(miss ? { missing: miss } : {}),
      ...(this.pa.gGap[g]! > 0 ? { notCapturedAt: x.points[this.pa.gGap[g]! - 1]!.name } : {}),
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
    groups: ArrayLike<number> & Iterable<number>,
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
      if (this.pa.gDir[g] !== fwd) continue;
      const st = this.pa.order(g);
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
      } else if (exp.ok && this.pa.gMissing[g]! >= 0) {
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
