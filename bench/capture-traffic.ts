/**
 * Synthetic traffic for the capture benchmarks: the same TCP conversations (64 at a time, request then 2–41 full
 * segments back, DR rewrite at the director) captured at two points — a µs pcap before the director and an ns pcapng
 * after it, 3.7 ms apart in clock, 0.1 % of packets missing from the second.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const LOSS = 0.001;

/** Deterministic PRNG (xorshift32). */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

class Out {
  private buf = new Uint8Array(16 * 1024 * 1024);
  private v = new DataView(this.buf.buffer);
  private n = 0;
  written = 0;
  constructor(private readonly fd: number) {}
  reserve(k: number): [Uint8Array, DataView, number] {
    if (this.n + k > this.buf.length) this.flush();
    const at = this.n;
    this.n += k;
    this.written += k;
    return [this.buf, this.v, at];
  }
  flush(): void {
    writeSync(this.fd, this.buf, 0, this.n);
    this.n = 0;
  }
}

interface Pkt {
  fwd: boolean;
  flow: number;
  seq: number;
  ack: number;
  flags: number;
  len: number;
  id: number;
  tsv: number;
  tse: number;
}

const MAC_GW = [0x84, 0x78, 0xac, 0x27, 0x6c, 0x41];
const MAC_DIR = [0x02, 0x00, 0x73, 0xb6, 0x53, 0xc8];
const MAC_RS = [0x02, 0x00, 0x73, 0xb6, 0x53, 0xe2];
const VIP = 0xc00002d0;

/**
 * Writes the frame for packet `p` at point A (gateway → director) or B (director → real server) into `b` at `o`;
 * returns the frame length. Payload bytes come from a random pool so digests differ.
 */
function frame(b: Uint8Array, v: DataView, o: number, p: Pkt, atB: boolean, pool: Uint8Array): number {
  const client = (0xc0f37700 + (p.flow % 250) + 1) >>> 0;
  const cport = 10000 + ((p.flow * 7) % 50000);
  let dmac: number[];
  let smac: number[];
  if (p.fwd) {
    smac = atB ? MAC_DIR : MAC_GW;
    dmac = atB ? MAC_RS : MAC_DIR;
  } else {
    smac = MAC_RS;
    dmac = MAC_GW;
  }
  for (let i = 0; i < 6; i++) {
    b[o + i] = dmac[i]!;
    b[o + 6 + i] = smac[i]!;
  }
  v.setUint16(o + 12, 0x0800);
  const ip = o + 14;
  const tcpLen = 32 + p.len;
  b[ip] = 0x45;
  b[ip + 1] = 0;
  v.setUint16(ip + 2, 20 + tcpLen);
  v.setUint16(ip + 4, p.id);
  v.setUint16(ip + 6, 0x4000);
  b[ip + 8] = p.fwd ? 48 : 64;
  b[ip + 9] = 6;
  v.setUint16(ip + 10, 0);
  v.setUint32(ip + 12, p.fwd ? client : VIP);
  v.setUint32(ip + 16, p.fwd ? VIP : client);
  const t = ip + 20;
  v.setUint16(t, p.fwd ? cport : 80);
  v.setUint16(t + 2, p.fwd ? 80 : cport);
  v.setUint32(t + 4, p.seq);
  v.setUint32(t + 8, p.ack);
  b[t + 12] = 0x80;
  b[t + 13] = p.flags;
  v.setUint16(t + 14, 502);
  v.setUint32(t + 16, 0);
  v.setUint32(t + 20, 0x0101080a);
  v.setUint32(t + 24, p.tsv);
  v.setUint32(t + 28, p.tse);
  if (p.len > 0) {
    const from = (p.seq * 13) % (pool.length - 1600);
    b.set(pool.subarray(from, from + p.len), t + 32);
  }
  return 14 + 20 + tcpLen;
}

/**
 * Generates the traffic and writes both captures; returns packet counts. `segment` is the payload of the server's
 * segments (1448: full frames, ~740 bytes a packet on average; small values give many small packets a MiB).
 */
export function generate(
  dir: string,
  mib: number,
  tag: string,
  segment = 1448,
): { a: string; b: string; packets: number; dropped: number } {
  const target = mib * 1024 * 1024;
  const a = join(dir, `${tag}-a.pcap`);
  const bfile = join(dir, `${tag}-b.pcapng`);
  const fa = openSync(a, 'w');
  const fb = openSync(bfile, 'w');
  const oa = new Out(fa);
  const ob = new Out(fb);
  const rand = rng(12345);
  const pool = new Uint8Array(1 << 20);
  for (let i = 0; i < pool.length; i++) pool[i] = (rand() * 256) | 0;
  // pcap header (µs, little-endian, Ethernet)
  {
    const [buf, v, o] = oa.reserve(24);
    v.setUint32(o, 0xa1b2c3d4, true);
    v.setUint16(o + 4, 2, true);
    v.setUint16(o + 6, 4, true);
    v.setUint32(o + 8, 0, true);
    v.setUint32(o + 12, 0, true);
    v.setUint32(o + 16, 262144, true);
    v.setUint32(o + 20, 1, true);
    void buf;
  }
  // pcapng SHB + IDB (ns resolution)
  {
    const [, v, o] = ob.reserve(28 + 32);
    v.setUint32(o, 0x0a0d0d0a, true);
    v.setUint32(o + 4, 28, true);
    v.setUint32(o + 8, 0x1a2b3c4d, true);
    v.setUint16(o + 12, 1, true);
    v.setUint16(o + 14, 0, true);
    v.setInt32(o + 16, -1, true);
    v.setInt32(o + 20, -1, true);
    v.setUint32(o + 24, 28, true);
    const i = o + 28;
    v.setUint32(i, 1, true);
    v.setUint32(i + 4, 32, true);
    v.setUint16(i + 8, 1, true);
    v.setUint16(i + 10, 0, true);
    v.setUint32(i + 12, 262144, true);
    v.setUint16(i + 16, 9, true); // if_tsresol
    v.setUint16(i + 18, 1, true);
    v.setUint32(i + 20, 9, true);
    v.setUint32(i + 24, 0, true); // end of options
    v.setUint32(i + 28, 32, true);
  }
  const scratch = new Uint8Array(2048);
  const sv = new DataView(scratch.buffer);
  let tUs = 1_700_000_000_000_000; // µs since the epoch (exact in a double)
  const offsetNs = 3_700_000;
  const latencyNs = 40_000;
  let packets = 0;
  let dropped = 0;
  let flow = 0;
  const active: {
    f: number;
    cs: number;
    ss: number;
    step: number;
    segs: number;
    ipc: number;
    ips: number;
    ts: number;
  }[] = [];
  while (oa.written < target) {
    while (active.length < 64) {
      flow++;
      active.push({
        f: flow,
        cs: (rand() * 4294967295) >>> 0,
        ss: (rand() * 4294967295) >>> 0,
        step: 0,
        segs: 2 + ((rand() * 40) | 0),
        ipc: (rand() * 65535) | 0,
        ips: (rand() * 65535) | 0,
        ts: (rand() * 1e9) | 0,
      });
    }
    const k = (rand() * active.length) | 0;
    const s = active[k]!;
    let p: Pkt;
    const ts = s.ts + (((tUs / 1000) | 0) % 100000);
    const req = 300;
    if (s.step === 0) p = { fwd: true, flow: s.f, seq: s.cs, ack: 0, flags: 0x02, len: 0, id: s.ipc, tsv: ts, tse: 0 };
    else if (s.step === 1)
      p = { fwd: false, flow: s.f, seq: s.ss, ack: (s.cs + 1) >>> 0, flags: 0x12, len: 0, id: 0, tsv: ts, tse: ts };
    else if (s.step === 2)
      p = {
        fwd: true,
        flow: s.f,
        seq: (s.cs + 1) >>> 0,
        ack: (s.ss + 1) >>> 0,
        flags: 0x10,
        len: 0,
        id: s.ipc + 1,
        tsv: ts,
        tse: ts,
      };
    else if (s.step === 3)
      p = {
        fwd: true,
        flow: s.f,
        seq: (s.cs + 1) >>> 0,
        ack: (s.ss + 1) >>> 0,
        flags: 0x18,
        len: req,
        id: s.ipc + 2,
        tsv: ts,
        tse: ts,
      };
    else if (s.step < 4 + s.segs * 2) {
      const n = (s.step - 4) >> 1;
      if ((s.step - 4) % 2 === 0)
        p = {
          fwd: false,
          flow: s.f,
          seq: (s.ss + 1 + n * segment) >>> 0,
          ack: (s.cs + 1 + req) >>> 0,
          flags: 0x10,
          len: segment,
          id: (s.ips + n) & 0xffff,
          tsv: ts,
          tse: ts,
        };
      else
        p = {
          fwd: true,
          flow: s.f,
          seq: (s.cs + 1 + req) >>> 0,
          ack: (s.ss + 1 + (n + 1) * segment) >>> 0,
          flags: 0x10,
          len: 0,
          id: (s.ipc + 3 + n) & 0xffff,
          tsv: ts,
          tse: ts,
        };
    } else {
      p = {
        fwd: true,
        flow: s.f,
        seq: (s.cs + 1 + req) >>> 0,
        ack: (s.ss + 1 + s.segs * segment) >>> 0,
        flags: 0x11,
        len: 0,
        id: (s.ipc + 4 + s.segs) & 0xffff,
        tsv: ts,
        tse: ts,
      };
      active.splice(k, 1);
    }
    s.step++;
    tUs += 3 + ((rand() * 20) | 0);
    packets++;
    // A: before the director (forward) / after the real server's reply passes (reverse), µs pcap.
    {
      const len = frame(scratch, sv, 0, p, false, pool);
      const [buf, v, o] = oa.reserve(16 + len);
      const t = p.fwd ? tUs : tUs + latencyNs / 1000;
      const sec = Math.floor(t / 1e6);
      v.setUint32(o, sec, true);
      v.setUint32(o + 4, t - sec * 1e6, true);
      v.setUint32(o + 8, len, true);
      v.setUint32(o + 12, len, true);
      buf.set(scratch.subarray(0, len), o + 16);
    }
    // B: 0.1 % missing.
    if (rand() < LOSS) {
      dropped++;
      continue;
    }
    {
      const len = frame(scratch, sv, 0, p, true, pool);
      const padded = (len + 3) & ~3;
      const blk = 32 + padded;
      const [buf, v, o] = ob.reserve(blk);
      // ns since the epoch at B's clock: forward packets arrive later, replies passed B first.
      const tNs = BigInt(tUs) * 1000n + BigInt(offsetNs + (p.fwd ? latencyNs : 0));
      v.setUint32(o, 6, true);
      v.setUint32(o + 4, blk, true);
      v.setUint32(o + 8, 0, true);
      v.setUint32(o + 12, Number(tNs >> 32n), true);
      v.setUint32(o + 16, Number(tNs & 0xffffffffn), true);
      v.setUint32(o + 20, len, true);
      v.setUint32(o + 24, len, true);
      buf.set(scratch.subarray(0, len), o + 28);
      buf.fill(0, o + 28 + len, o + 28 + padded);
      v.setUint32(o + blk - 4, blk, true);
    }
  }
  oa.flush();
  ob.flush();
  closeSync(fa);
  closeSync(fb);
  return { a, b: bfile, packets, dropped };
}
