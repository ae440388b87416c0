import { describe, expect, it } from 'vitest';
import { type TcpFrameSpec, tcpRecord } from '../../test/support/synthetic-captures.ts';
import { type CorrelateOptions, type CorrelationReport, Correlator } from './correlate.ts';
import { type PcapRecordInput, writePcap } from './pcap.ts';
import { writePcapng } from './pcapng.ts';
import { renderCorrelation } from './render-correlation.ts';
import { scanCaptureBytes } from './scanner.ts';

const GW = '84:78:ac:27:6c:41';
const DIR = '02:00:73:b6:53:c8';
const RS = '02:00:73:b6:53:e2';
const T = 1_465_299_559_372_804_000n;
const MS = 1_000_000n;
const US = 1_000n;

function correlate(points: [string, PcapRecordInput[]][], options: CorrelateOptions = {}): CorrelationReport {
  const cor = new Correlator(options);
  for (const [name, recs] of points) {
    const p = cor.addPoint(name, `${name}.pcap`);
    const sorted = [...recs].sort((a, b) => (a.timeNs < b.timeNs ? -1 : 1));
    const s = scanCaptureBytes(writePcap(sorted), `${name}.pcap`, cor.sink(p));
    expect(s.issues).toEqual([]);
    cor.setPointKnowledge(p, s.fields, s.linkTypes);
  }
  return cor.finish();
}

const syn = (over: Partial<TcpFrameSpec> = {}): TcpFrameSpec => ({
  src: '192.243.119.145',
  dst: '192.0.2.208',
  sport: 51643,
  dport: 80,
  seq: 3639534333,
  flags: 0x02,
  id: 47264,
  ttl: 48,
  tsval: 780753501,
  srcMac: GW,
  dstMac: DIR,
  ...over,
});

describe('correlation across capture points', () => {
  it('finds where the founding case SYN vanished although host1 clock is 58 ms ahead', () => {
    const retrans = { id: 47265, tsval: 780754501 };
    const dirIn = [tcpRecord(T, syn()), tcpRecord(T + 1000n * MS - 3n * US, syn(retrans))];
    const dirOut = [
      tcpRecord(T + 11n * US, syn({ srcMac: DIR, dstMac: RS })),
      tcpRecord(T + 1000n * MS + 9n * US, syn({ ...retrans, srcMac: DIR, dstMac: RS })),
    ];
    const br0 = [tcpRecord(T + 58n * MS - 5n * US, syn()), tcpRecord(T + 1058n * MS - 9n * US, syn(retrans))];
    const r = correlate([
      ['r2-10105:eth0', [...dirIn, ...dirOut]],
      ['host1:br0', br0],
    ]);
    expect(r.packets).toBe(2);
    expect(r.missing).toBe(2);
    expect(r.vanished).toEqual([{ after: 'r2-10105:eth0', expected: 'host1:br0', packets: 2 }]);
    expect(r.points[1]).toMatchObject({ name: 'host1:br0', offsetMethod: 'one-way', offsetAgainst: 'r2-10105:eth0' });
    expect(Math.round(r.points[1]!.offsetNs / 1e6)).toBe(58);
    const f = r.flowReports[0]!;
    expect(f).toMatchObject({
      protocol: 'TCP',
      endpoints: '192.243.119.145.51643 > 192.0.2.208.80',
      handshake: 'no-syn-ack',
    });
    expect(f.retransmissions).toBe(1);
    const [first, second] = f.details;
    expect(first!.path.map((s) => s.point)).toEqual(['host1:br0', 'r2-10105:eth0', 'r2-10105:eth0']);
    expect(first!.path[2]!.rewrites).toEqual([`${GW} > ${DIR} became ${DIR} > ${RS}`]);
    expect(first!.missing).toMatchObject({
      lastPoint: 'r2-10105:eth0',
      expectedPoint: 'host1:br0',
      reason: 'reflection',
    });
    expect(second!.retransmissionOf).toBe(1);
    expect(second!.retransmissionNote).toMatch(/TS val \+1000$/);
    const text = renderCorrelation(r);
    expect(text).toContain(`rewrite: ${GW} > ${DIR} became ${DIR} > ${RS}`);
    expect(text).toContain('2 seen last at r2-10105:eth0, never at host1:br0');
  });

  it('accounts for every packet when the rewritten SYN reaches the bridge', () => {
    const r = correlate([
      ['r2-10105:eth0', [tcpRecord(T, syn()), tcpRecord(T + 11n * US, syn({ srcMac: DIR, dstMac: RS }))]],
      ['host1:br0', [tcpRecord(T - 2n * US, syn()), tcpRecord(T + 13n * US, syn({ srcMac: DIR, dstMac: RS }))]],
    ]);
    expect(r.missing).toBe(0);
    expect(r.flowReports[0]!.details[0]!.path.map((s) => s.point)).toEqual([
      'host1:br0',
      'r2-10105:eth0',
      'r2-10105:eth0',
      'host1:br0',
    ]);
  });

  /** A NAT connection: client ↔ VIP:80 outside, client ↔ 10.0.0.2:8080 inside, replies both ways. */
  function natConversation(dropInside: number | undefined, skewNs: bigint) {
    const c = { src: '198.51.100.7', sport: 40000 };
    const outside: PcapRecordInput[] = [];
    const inside: PcapRecordInput[] = [];
    const steps: { fwd: boolean; seq: number; ack: number; flags: number; len: number }[] = [
      { fwd: true, seq: 1000, ack: 0, flags: 0x02, len: 0 },
      { fwd: false, seq: 5000, ack: 1001, flags: 0x12, len: 0 },
      { fwd: true, seq: 1001, ack: 5001, flags: 0x10, len: 0 },
      { fwd: true, seq: 1001, ack: 5001, flags: 0x18, len: 100 },
      { fwd: false, seq: 5001, ack: 1101, flags: 0x18, len: 500 },
      { fwd: true, seq: 1101, ack: 5501, flags: 0x10, len: 0 },
    ];
    steps.forEach((st, k) => {
      const t = T + BigInt(k) * MS;
      const payload = new Uint8Array(st.len).fill(k + 1);
      const base = { seq: st.seq, ack: st.ack, flags: st.flags, id: 100 + k, tsval: 10 + k, payload };
      const out: TcpFrameSpec = st.fwd
        ? { ...base, src: c.src, sport: c.sport, dst: '192.0.2.208', dport: 80 }
        : { ...base, src: '192.0.2.208', sport: 80, dst: c.src, dport: c.sport };
      const inn: TcpFrameSpec = st.fwd
        ? { ...base, src: c.src, sport: c.sport, dst: '10.0.0.2', dport: 8080 }
        : { ...base, src: '10.0.0.2', sport: 8080, dst: c.src, dport: c.sport };
      // forward: outside then inside 30 µs later; replies: inside then outside.
      outside.push(tcpRecord(st.fwd ? t : t + 30n * US, out));
      if (k !== dropInside) inside.push(tcpRecord((st.fwd ? t + 30n * US : t) + skewNs, inn));
    });
    return { outside, inside };
  }

  it('follows a flow through NAT, estimates the clock offset from both directions and finds the lost segment', () => {
    const { outside, inside } = natConversation(3, 250n * MS);
    const r = correlate([
      ['lb:wan', outside],
      ['lb:lan', inside],
    ]);
    expect(r.flows).toBe(1);
    expect(r.points[1]).toMatchObject({ offsetMethod: 'two-way' });
    expect(Math.round(r.points[1]!.offsetNs / 1e3)).toBe(250_000);
    expect(r.missing).toBe(1);
    const f = r.flowReports[0]!;
    expect(f.aliases).toEqual(['198.51.100.7.40000 > 10.0.0.2.8080']);
    expect(f.handshake).toBe('complete');
    const lost = f.details.find((d) => d.missing)!;
    expect(lost.summary).toContain('Flags [P.], seq 1001');
    expect(lost.missing).toMatchObject({ lastPoint: 'lb:wan', expectedPoint: 'lb:lan', reason: 'flow' });
    const nat = f.details[0]!.path[1]!.rewrites;
    expect(nat).toEqual(['198.51.100.7.40000 > 192.0.2.208.80 became 198.51.100.7.40000 > 10.0.0.2.8080']);
  });

  it('tells a reply that was not captured upstream apart from a packet that vanished', () => {
    const { outside, inside } = natConversation(4, 0n);
    // Step 4 is a reply: it passes lb:lan first; missing there it is a capture gap, not a loss.
    const r = correlate([
      ['lb:wan', outside],
      ['lb:lan', inside],
    ]);
    expect(r.missing).toBe(0);
    expect(r.notCaptured).toBe(1);
    expect(r.flowReports[0]!.details.find((d) => d.notCapturedAt)?.notCapturedAt).toBe('lb:lan');
  });

  it('looks through IPIP tunnels (LVS-TUN) and reports the encapsulation', () => {
    const inner = syn();
    const tun = { src: '192.0.2.200', dst: '192.0.2.226' };
    const r = correlate([
      [
        'director:eth0',
        [tcpRecord(T, inner), tcpRecord(T + 10n * US, { ...inner, srcMac: DIR, dstMac: RS, ipip: tun })],
      ],
      ['rs:eth0', [tcpRecord(T + 40n * US, { ...inner, srcMac: DIR, dstMac: RS, ipip: tun })]],
    ]);
    expect(r.missing).toBe(0);
    const path = r.flowReports[0]!.details[0]!.path;
    expect(path.map((s) => s.point)).toEqual(['director:eth0', 'director:eth0', 'rs:eth0']);
    expect(path[1]!.rewrites).toContain('encapsulated in IPIP 192.0.2.200 > 192.0.2.226');
    expect(path[2]!.tunnel).toBe('IPIP 192.0.2.200 > 192.0.2.226');
  });

  it('names the hop where reality departs from the model', () => {
    const r = correlate(
      [
        ['r2-10105:eth0', [tcpRecord(T, syn()), tcpRecord(T + 11n * US, syn({ srcMac: DIR, dstMac: RS }))]],
        ['host1:br0', [tcpRecord(T - 2n * US, syn())]],
        ['host2:br0', []],
      ],
      {
        expect: (q) => {
          expect(q).toMatchObject({ dport: 80, seq: 3639534333, firstPoint: 'host1:br0' });
          return {
            ok: true,
            end: 'replied',
            hops: [
              { point: 'host1:br0', srcMac: GW, dstMac: DIR },
              { point: 'r2-10105:eth0', srcMac: GW, dstMac: DIR },
              { point: 'r2-10105:eth0', srcMac: DIR, dstMac: RS },
              { point: 'host1:br0', srcMac: DIR, dstMac: RS },
              { point: 'host2:br0', srcMac: DIR, dstMac: RS },
            ],
          };
        },
      },
    );
    const m = r.flowReports[0]!.model!;
    expect(m.agrees).toBe(false);
    expect(m.departure).toBe(
      `reality departs from the simulated path at host1:br0 (${DIR} > ${RS}): the simulation has the packet there, the capture does not`,
    );
    expect(r.missing).toBe(1);
  });

  it('ignores a second copy of a frame captured at the same point (e.g. on "any")', () => {
    const r = correlate([
      ['a', [tcpRecord(T, syn()), tcpRecord(T + 1n * US, syn())]],
      ['b', [tcpRecord(T + 20n * US, syn())]],
    ]);
    expect(r.packets).toBe(1);
    expect(r.missing).toBe(0);
    expect(r.flowReports[0]!.details[0]!.path.filter((s) => s.duplicate)).toHaveLength(1);
  });

  it('correlates a pcapng capture with a pcap capture and a pasted text capture', () => {
    const cor = new Correlator();
    const a = cor.addPoint('a', 'a.pcapng');
    const b = cor.addPoint('b', 'b.txt');
    const rec = tcpRecord(T, syn());
    const ng = writePcapng([{ linkType: 1, tsresol: 9 }], [{ interfaceId: 0, timeNs: T, bytes: rec.bytes }]);
    const sa = scanCaptureBytes(ng, 'a.pcapng', cor.sink(a));
    cor.setPointKnowledge(a, sa.fields, sa.linkTypes);
    const text =
      '11:39:19.372815 IP 192.243.119.145.51643 > 192.0.2.208.80: Flags [S], seq 3639534333, win 14600, options [mss 1460,sackOK,TS val 780753501 ecr 0,nop,wscale 7], length 0\n';
    const sb = scanCaptureBytes(new TextEncoder().encode(text), 'b.txt', cor.sink(b), {
      dayNs: (T / 86_400_000_000_000n) * 86_400_000_000_000n,
    });
    cor.setPointKnowledge(b, sb.fields, sb.linkTypes);
    const r = cor.finish();
    expect(r.keyFields).not.toContain('IP id');
    expect(r.packets).toBe(1);
    expect(r.flowReports[0]!.details[0]!.path.map((s) => s.point)).toEqual(['a', 'b']);
  });

  it('ends, linearly, when one point sees the same frame again and again (STP, retried ARP, a retransmitted SYN)', () => {
    // An STP configuration BPDU every 2 s, each also seen twice within a microsecond (a capture on "any").
    const bpdu = new Uint8Array(60);
    bpdu.set([0x01, 0x80, 0xc2, 0, 0, 0, 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 38, 0x42, 0x42, 0x03]);
    const recs: PcapRecordInput[] = [];
    for (let k = 0n; k < 3000n; k++) {
      recs.push({ timeNs: T + k * 2000n * MS, bytes: bpdu });
      recs.push({ timeNs: T + k * 2000n * MS + 1n * US, bytes: bpdu });
    }
    const synAgain = [0n, 1n, 3n, 7n].map((s) => tcpRecord(T + s * 1000n * MS, syn()));
    const one = correlate([['br0', [...recs, ...synAgain]]]);
    expect(one.sightings).toBe(6004);
    expect(one.packets).toBe(3004);
    expect(one.missing).toBe(0);
    expect(one.unansweredFlows).toBe(1);
    expect(renderCorrelation(one)).toContain(
      'one capture point: 0 IP flows answered (packets both ways), 1 seen one way only',
    );
    // Two points: the frames seen at both are matched generation by generation.
    const two = correlate([
      ['a', recs.filter((_, i) => i % 2 === 0)],
      ['b', recs.filter((_, i) => i % 2 === 0).map((r) => ({ ...r, timeNs: r.timeNs + 30n * US }))],
    ]);
    expect(two.packets).toBe(3000);
    expect(two.missing).toBe(0);
  });

  it('keeps records too short for their link header (caplen 0), as libpcap returns them', () => {
    const r = correlate([
      ['a', [{ timeNs: T, bytes: new Uint8Array(0), originalLength: 0 }, tcpRecord(T + MS, syn())]],
    ]);
    expect(r.sightings).toBe(2);
    expect(r.points[0]!.packets).toBe(2);
  });
});
