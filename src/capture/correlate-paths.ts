/**
 * Correlation, paths (stages 3 and 4 of correlate.ts): a packet's sightings split into legs (same MACs, addresses and
 * tunnel; a new leg is a rewrite at the point two legs share) and ordered; transitions between points learned per flow
 * and direction and per MAC header; the point each packet was expected at next when it was seen no further.
 */

import { appendAll, minOf } from '../source/arrays.ts';
import type { Clocks } from './correlate-clocks.ts';
import type { Ingest } from './correlate-ingest.ts';
import { CountTable, type Flows, KeyTable, MAX_POINTS, type Packets } from './correlate-keys.ts';

export interface Station {
  /** Sighting index. */
  s: number;
  leg: number;
}

export class Paths {
  readonly np: number;
  gFlow = new Int32Array(0);
  gDir = new Uint8Array(0);
  gFirst = new Int32Array(0);
  gLast = new Int32Array(0);
  gLastStation = new Int32Array(0);
  /** The point each packet was expected at next (-1: none) and why (1 flow, 2 MAC header, 3 reflection, 4 model, 5 reverse path). */
  gMissing = new Int32Array(0);
  gReason = new Uint8Array(0);
  /** Point + 1 where packets like it passed before the point it was first seen at (0: none). */
  gGap = new Int32Array(0);
  private readonly transitions = new CountTable();
  private readonly hdrTransitions = new CountTable();
  /** (flow × 2 + direction, point) → point it came from × 2^26 + MAC header id there. */
  private readonly arrivals = new KeyTable();
  // scratch
  private readonly sc: number[] = [];

  constructor(
    private readonly x: Ingest,
    private readonly pk: Packets,
    private readonly fl: Flows,
    private readonly ck: Clocks,
  ) {
    this.np = x.points.length;
    this.paths();
  }

  // Step 4: each packet's path; transitions learned; the last station of each packet.
  private paths(): void {
    const G = this.pk.gCount;
    this.gFlow = new Int32Array(G);
    this.gDir = new Uint8Array(G);
    this.gFirst = new Int32Array(G);
    this.gLast = new Int32Array(G);
    this.gLastStation = new Int32Array(G);
    this.gMissing = new Int32Array(G).fill(-1);
    this.gReason = new Uint8Array(G);
    const c = this.x.c;
    const tr = this.transitions;
    const htr = this.hdrTransitions;
    for (let g = 0; g < G; g++) {
      const st = this.order(g);
      const first = st[0]!;
      const t0 = c.tup[first.s]!;
      const root = t0 === 0 ? 0 : this.fl.find(t0);
      const dir = t0 === 0 ? 0 : this.fl.lastParity;
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
      if (last.leg > 0) {
        let a = st.length - 1;
        while (a > 0 && st[a - 1]!.leg === last.leg) a--;
        let b = a - 1;
        while (b > 0 && st[b - 1]!.leg === last.leg - 1) b--;
        const back = st.length - a;
        const prevLen = a - b;
        if (st[a - 1]!.leg === last.leg - 1 && prevLen > back && this.turnsBack(st[a - 1]!.s, st[a]!.s)) {
          let ok = true;
          for (let k = 0; k < back && ok; k++) ok = c.pt[st[a + k]!.s] === c.pt[st[a - 1 - k]!.s];
          const cand = c.pt[st[a - 1 - back]!.s]!;
          // Kept in gMissing as -(point + 2) until the second pass decides (no array of its own per packet).
          if (ok && (back === 1 || this.nodeOf(cand) === this.nodeOf(c.pt[last.s]!))) this.gMissing[g] = -(cand + 2);
        }
      }
    }
    if (this.np <= 1) this.gMissing.fill(-1);
    // Expected next for each packet's last station (one point alone cannot say where a packet should have been next).
    this.gGap = new Int32Array(G);
    for (let g = 0; g < G && this.np > 1; g++) {
      // Seen first at F although packets like it came to F from X: not captured at X.
      const fa = this.arrivals.get(this.gFlow[g]! * 2 + this.gDir[g]!, c.pt[this.gFirst[g]!]!);
      if (fa >= 0) {
        const from = Math.floor(fa / 67108864);
        if (!(this.pk.gMask[g]! & (1 << from))) this.gGap[g] = from + 1;
      }
      const reflect = this.gMissing[g]! <= -2 ? -this.gMissing[g]! - 2 : -1;
      this.gMissing[g] = -1;
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
      if (reflect >= 0) {
        this.gMissing[g] = reflect;
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

  /**
   * Whether a packet seen as `a` and then, rewritten, as `b` at the same point may have gone back out the way it came
   * in. At an Ethernet point, yes (it is one interface). At a Linux cooked point (`tcpdump -i any`: every interface of
   * the host) only a packet received and then sent, on the same interface where SLL2 says which: received twice (in by
   * eth0, then decapsulated in by tun0) or sent by another interface is the host forwarding it, not turning it back.
   */
  private turnsBack(a: number, b: number): boolean {
    const c = this.x.c;
    if (c.dirn[a] === 0 || c.dirn[b] === 0) return true;
    if (c.dirn[a] !== 1 || c.dirn[b] !== 2) return false;
    return c.ifi[a] === 0 || c.ifi[b] === 0 || c.ifi[a] === c.ifi[b];
  }

  private nodeOf(p: number): string {
    const n = this.x.points[p]!.name;
    const k = n.indexOf(':');
    return k < 0 ? n : n.slice(0, k);
  }

  /** Orders the sightings of group `g` into stations (sighting, leg). */
  order(g: number): Station[] {
    const c = this.x.c;
    const sc = this.sc;
    sc.length = 0;
    for (let s = this.pk.gHead[g]!; s >= 0; s = c.next[s]!) if (!this.pk.dup[s]) sc.push(s);
    if (sc.length === 0) sc.push(this.pk.gHead[g]!);
    const off = this.ck.offset;
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
    const minT = (leg: number[]): number => minOf(leg.map(ct));
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
        if (k >= 0 && k < leg.length - 1 && !(jin === jout && leg.length === 1)) appendAll(leg, leg.splice(k, 1));
      }
      if (jin >= 0) {
        const k = leg.findIndex((s) => c.pt[s] === jin);
        if (k > 0) leg.unshift(leg.splice(k, 1)[0]!);
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
      if (this.ck.ambiguous.has(key)) return pa < pb;
    }
    const ta = c.t[a]! - this.ck.offset[pa]!;
    const tb = c.t[b]! - this.ck.offset[pb]!;
    return ta !== tb ? ta < tb : a < b;
  }
}
