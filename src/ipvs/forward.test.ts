import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { writeIpvsadmConnections } from '../../test/support/ipvsadm-connections.ts';
import { ipv4 } from '../addr/ipv4.ts';
import { type Mac, mac } from '../addr/mac.ts';
import {
  ETHERTYPE_IPV4,
  type EthernetFrame,
  IPPROTO_IPIP,
  IPPROTO_TCP,
  TCP_ACK,
  TCP_FIN,
  TCP_SYN,
} from '../wire/types.ts';
import { IpvsEngine, type IpvsEngineOptions } from './engine.ts';
import { forwardFrame, forwardReply, ipvsInput } from './forward.ts';
import { readIpvsadmList } from './ipvsadm-list-reader.ts';
import { writeIpvsadmList } from './ipvsadm-list-writer.ts';

const CLIENT_GW_MAC = mac('84:78:ac:27:6c:41');
const DIRECTOR_MAC = mac('02:00:73:b6:53:c8');
const RS2_MAC = mac('02:00:73:b6:53:e2');
const CASE = readFileSync(
  fileURLToPath(new URL('../../fixtures/ipvs/listings/case-founding.txt', import.meta.url)),
  'utf8',
);

function engineFrom(text: string, options: IpvsEngineOptions = {}): IpvsEngine {
  const r = readIpvsadmList(text, 'director1.txt');
  expect(r.issues).toEqual([]);
  return new IpvsEngine(r.value!.table, options);
}

function syn(srcPort: number, flags = TCP_SYN, seq = 3639534333): EthernetFrame {
  return {
    dst: DIRECTOR_MAC,
    src: CLIENT_GW_MAC,
    vlans: [],
    etherType: ETHERTYPE_IPV4,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 47264,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 48,
      protocol: IPPROTO_TCP,
      src: ipv4('192.243.119.145'),
      dst: ipv4('192.0.2.208'),
      payload: {
        kind: 'tcp',
        srcPort,
        dstPort: 80,
        seq,
        ack: 0,
        flags,
        window: 14600,
        urgent: 0,
        options: [{ kind: 'mss', value: 1460 }],
        payload: new Uint8Array(0),
      },
    },
  };
}

const neighbours = new Map<number, Mac>([[ipv4('192.0.2.226'), RS2_MAC]]);
const ctx = (now: number) => ({
  now,
  directorMac: DIRECTOR_MAC,
  directorIp: ipv4('192.0.2.200'),
  resolveNeighbour: (ip: number) => neighbours.get(ip),
});

describe('forwardFrame in DR mode (the founding case)', () => {
  it('rewrites only the MAC addresses of the client SYN and keeps the IP header (ttl 48 in and out)', () => {
    const engine = engineFrom(CASE);
    const frame = syn(51643);
    const out = forwardFrame(engine, frame, ctx(0));
    expect(out.kind).toBe('forwarded');
    if (out.kind !== 'forwarded') return;
    expect(out.method).toBe('route');
    expect(out.frame.src).toBe(DIRECTOR_MAC);
    expect(out.frame.dst).toBe(RS2_MAC);
    expect(out.frame.payload).toBe(frame.payload); // the very same IP packet: header untouched
    expect(out.service.origin.pos).toEqual({ file: 'director1.txt', line: 4 });
    expect(out.decision).toMatchObject({ kind: 'scheduled', scheduler: 'rr' });
    if (out.decision.kind === 'scheduled') expect(out.decision.destination.origin.pos?.line).toBe(5);
    expect(out.connection).toEqual({
      created: true,
      replacedOld: false,
      stateBefore: 'NONE',
      state: 'SYN_RECV',
      timeout: 60,
      activeConns: 1,
      inactConns: 0,
    });
  });

  it('reuses the connection for the retransmitted SYN and shows the half-open signature in ipvsadm', () => {
    const engine = engineFrom(CASE);
    forwardFrame(engine, syn(51643), ctx(0));
    const again = forwardFrame(engine, syn(51643), ctx(1000));
    expect(again.kind).toBe('forwarded');
    if (again.kind !== 'forwarded') return;
    expect(again.decision.kind).toBe('existing-connection');
    expect(again.connection).toMatchObject({
      created: false,
      stateBefore: 'SYN_RECV',
      state: 'SYN_RECV',
      activeConns: 1,
    });
    expect(writeIpvsadmList(engine.snapshot(2000)).split('\n')[4]).toBe(
      '  -> 192.0.2.226:80               Route   2      1          0         ',
    );
    expect(writeIpvsadmConnections(engine.connections, 2000)).toBe(
      'IPVS connection entries\n' +
        'pro expire state       source             virtual            destination\n' +
        'TCP 00:59  SYN_RECV    192.243.119.145:51643 192.0.2.208:80     192.0.2.226:80\n',
    );
    // 60 s after the last SYN the entry expires and the counters fall back to 0.
    expect(engine.snapshot(61_000).services[0]!.destinations[0]!.activeConns).toBe(0);
    expect(engine.connections.size).toBe(0);
  });

  it('walks a healthy DR connection through ESTABLISHED to FIN_WAIT, moving it from ActiveConn to InActConn', () => {
    const engine = engineFrom(CASE);
    forwardFrame(engine, syn(40000), ctx(0));
    const est = forwardFrame(engine, syn(40000, TCP_ACK), ctx(10));
    expect(est.kind === 'forwarded' && est.connection).toMatchObject({
      state: 'ESTABLISHED',
      timeout: 900,
      activeConns: 1,
    });
    const fin = forwardFrame(engine, syn(40000, TCP_FIN | TCP_ACK), ctx(20));
    expect(fin.kind === 'forwarded' && fin.connection).toMatchObject({
      state: 'FIN_WAIT',
      timeout: 120,
      activeConns: 0,
      inactConns: 1,
    });
  });

  it('lets a new SYN reuse a FIN_WAIT entry unless conn_reuse_mode bit 2 is set', () => {
    const run = (mode: number) => {
      const engine = engineFrom(CASE, { connReuseMode: mode });
      forwardFrame(engine, syn(40000), ctx(0));
      forwardFrame(engine, syn(40000, TCP_ACK), ctx(10));
      forwardFrame(engine, syn(40000, TCP_FIN | TCP_ACK), ctx(20));
      return forwardFrame(engine, syn(40000), ctx(30));
    };
    const keep = run(1);
    expect(keep.kind === 'forwarded' && keep.connection).toMatchObject({
      created: false,
      stateBefore: 'FIN_WAIT',
      state: 'SYN_RECV',
    });
    const fresh = run(3);
    expect(fresh.kind === 'forwarded' && fresh.connection).toMatchObject({
      created: true,
      replacedOld: true,
      state: 'SYN_RECV',
    });
  });

  it('decrements the TTL only when asked to (current kernels), leaving the checksum to be recomputed', () => {
    const engine = engineFrom(CASE, { decrementTtl: true });
    const out = forwardFrame(engine, syn(1), ctx(0));
    expect(out.kind === 'forwarded' && out.frame.payload.kind === 'ipv4' && out.frame.payload.ttl).toBe(47);
  });

  it('reports an unresolved real server MAC as a drop, not an exception', () => {
    const engine = engineFrom(CASE);
    const out = forwardFrame(engine, syn(1), { ...ctx(0), resolveNeighbour: () => undefined });
    expect(out).toMatchObject({ kind: 'dropped', reason: 'neighbour-unresolved' });
  });
});

describe('forwardFrame outcomes', () => {
  it('leaves packets for an address without a service to the local stack', () => {
    const engine = engineFrom(CASE);
    const f = syn(1);
    const other = { ...f, payload: { ...f.payload, dst: ipv4('192.0.2.209') } } as EthernetFrame;
    expect(forwardFrame(engine, other, ctx(0))).toMatchObject({ kind: 'not-handled', reason: 'no-service' });
  });

  it('does not schedule a TCP packet without SYN and without a connection', () => {
    const engine = engineFrom(CASE);
    const out = forwardFrame(engine, syn(1, TCP_ACK), ctx(0));
    expect(out).toMatchObject({ kind: 'not-handled', reason: 'tcp-not-syn' });
    expect(engine.connections.size).toBe(0);
  });

  it('answers ICMP port unreachable and names the kernel log line when every server has weight 0', () => {
    const engine = engineFrom(CASE.replace('Route   2', 'Route   0'));
    expect(forwardFrame(engine, syn(1), ctx(0))).toMatchObject({
      kind: 'no-destination',
      response: 'icmp-port-unreachable',
      log: 'IPVS: rr: TCP 192.0.2.208:80 - no destination available',
    });
  });

  it('NAT rewrites the destination address and port to the real server', () => {
    const text = CASE.replace('192.0.2.226:80               Route', '192.0.2.226:8080             Masq ');
    const engine = engineFrom(text);
    const out = forwardFrame(engine, syn(5), ctx(0));
    expect(out.kind).toBe('forwarded');
    if (out.kind !== 'forwarded' || out.frame.payload.kind !== 'ipv4') return;
    expect(out.method).toBe('masq');
    expect(out.frame.payload.dst).toBe(ipv4('192.0.2.226'));
    expect(out.frame.payload.src).toBe(ipv4('192.243.119.145'));
    expect(out.frame.payload.payload).toMatchObject({ kind: 'tcp', dstPort: 8080, srcPort: 5 });
    expect(out.frame.payload.checksum).toBeUndefined();
  });

  it('TUN wraps the unchanged client packet in IPIP from the director to the real server', () => {
    const engine = engineFrom(CASE.replace('Route ', 'Tunnel'));
    const f = syn(6);
    const out = forwardFrame(engine, f, ctx(0));
    expect(out.kind).toBe('forwarded');
    if (out.kind !== 'forwarded' || out.frame.payload.kind !== 'ipv4') return;
    expect(out.method).toBe('tunnel');
    expect(out.frame.payload).toMatchObject({
      protocol: IPPROTO_IPIP,
      src: ipv4('192.0.2.200'),
      dst: ipv4('192.0.2.226'),
      ttl: 48,
    });
    expect(out.frame.payload.payload).toBe(f.payload);
  });

  it('keeps a persistent client on one server through a template with source port 0', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.0.2.208:80 rr persistent 360',
      '  -> 192.0.2.226:80               Route   1      0          0',
      '  -> 192.0.2.227:80               Route   1      0          0',
    ].join('\n');
    const engine = engineFrom(text);
    neighbours.set(ipv4('192.0.2.227'), mac('02:00:73:b6:53:e3'));
    const a = forwardFrame(engine, syn(1000), ctx(0));
    const b = forwardFrame(engine, syn(1001), ctx(1000));
    expect(a.kind === 'forwarded' && a.decision).toMatchObject({ kind: 'persistent-template', reused: false });
    expect(b.kind === 'forwarded' && b.decision).toMatchObject({ kind: 'persistent-template', reused: true });
    expect(a.kind === 'forwarded' && b.kind === 'forwarded' && a.frame.dst === b.frame.dst).toBe(true);
    const rows = writeIpvsadmConnections(engine.connections, 1000).split('\n');
    expect(rows[2]).toBe('TCP 06:00  NONE        192.243.119.145:0  192.0.2.208:80     192.0.2.226:80');
    const snap = engine.snapshot(1000).services[0]!.destinations;
    expect(snap.map((d) => [d.persistConns, d.activeConns])).toEqual([
      [1, 2],
      [0, 0],
    ]);
  });
});

describe('NAT replies through the director (forwardReply)', () => {
  const NAT = CASE.replace('192.0.2.226:80               Route', '192.0.2.226:8080             Masq ');

  function reply(srcPort: number, dstPort: number, flags: number): EthernetFrame {
    const f = syn(dstPort, flags);
    if (f.payload.kind !== 'ipv4' || f.payload.payload.kind !== 'tcp') throw new Error('tcp');
    return {
      ...f,
      src: RS2_MAC,
      dst: DIRECTOR_MAC,
      payload: {
        ...f.payload,
        src: ipv4('192.0.2.226'),
        dst: ipv4('192.243.119.145'),
        payload: { ...f.payload.payload, srcPort, dstPort },
      },
    };
  }

  it('rewrites the source of the real server reply to VIP:vport and walks the NAT state machine', () => {
    const engine = engineFrom(NAT);
    forwardFrame(engine, syn(5000), ctx(0));
    const synack = forwardReply(engine, reply(8080, 5000, TCP_SYN | TCP_ACK), 5);
    expect(synack.kind).toBe('snat');
    if (synack.kind !== 'snat' || synack.frame.payload.kind !== 'ipv4') return;
    expect(synack.frame.payload.src).toBe(ipv4('192.0.2.208'));
    expect(synack.frame.payload.dst).toBe(ipv4('192.243.119.145'));
    expect(synack.frame.payload.payload).toMatchObject({ srcPort: 80, dstPort: 5000 });
    expect(synack.frame.payload.checksum).toBeUndefined();
    expect(synack.connection).toMatchObject({ stateBefore: 'SYN_RECV', state: 'SYN_RECV', activeConns: 1 });
    forwardFrame(engine, syn(5000, TCP_ACK), ctx(10));
    const cw = forwardFrame(engine, syn(5000, TCP_FIN | TCP_ACK), ctx(20));
    expect(cw.kind === 'forwarded' && cw.connection.state).toBe('CLOSE_WAIT');
    const tw = forwardReply(engine, reply(8080, 5000, TCP_FIN | TCP_ACK), 30);
    expect(tw.kind === 'snat' && tw.connection).toMatchObject({ state: 'TIME_WAIT', timeout: 120, inactConns: 1 });
    const stats = engine.snapshot(40).services[0]!.stats!;
    expect([stats.inPkts, stats.outPkts]).toEqual([3, 2]);
  });

  it('leaves replies without a NAT entry alone', () => {
    const engine = engineFrom(NAT);
    expect(forwardReply(engine, reply(8080, 5000, TCP_ACK), 0).kind).toBe('not-ipvs');
    // DR entries are not hashed by their reply tuple: replies never come back through the director.
    const dr = engineFrom(CASE);
    forwardFrame(dr, syn(5000), ctx(0));
    expect(forwardReply(dr, reply(80, 5000, TCP_SYN | TCP_ACK), 1).kind).toBe('not-ipvs');
  });
});

describe('deleted and quiesced real servers', () => {
  const TWO = [
    'IP Virtual Server version 1.2.1 (size=4096)',
    'Prot LocalAddress:Port Scheduler Flags',
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
    'TCP  192.0.2.208:80 rr persistent 360',
    '  -> 192.0.2.226:80               Route   1      0          0',
    '  -> 192.0.2.227:80               Route   1      0          0',
  ].join('\n');

  it('drops packets of entries whose server was deleted (expire_nodest_conn=0) until they expire', () => {
    const engine = engineFrom(CASE);
    forwardFrame(engine, syn(7000), ctx(0));
    const svc = engine.services[0]!;
    svc.removeDestination(svc.dests[0]!);
    const out = forwardFrame(engine, syn(7000, TCP_ACK), ctx(10));
    expect(out).toMatchObject({ kind: 'dropped', reason: 'destination-deleted' });
    expect(engine.connections.size).toBe(1);
  });

  it('expires such an entry at once with expire_nodest_conn=1', () => {
    const engine = engineFrom(CASE, { expireNodestConn: true });
    forwardFrame(engine, syn(7000), ctx(0));
    const svc = engine.services[0]!;
    svc.removeDestination(svc.dests[0]!);
    expect(forwardFrame(engine, syn(7000, TCP_ACK), ctx(10))).toMatchObject({ kind: 'dropped' });
    expect(engine.connections.size).toBe(0);
  });

  it('keeps honouring a template to a weight-0 server unless expire_quiescent_template=1', () => {
    for (const [expire, sameServer] of [
      [false, true],
      [true, false],
    ] as const) {
      const engine = engineFrom(TWO, { expireQuiescentTemplate: expire });
      neighbours.set(ipv4('192.0.2.227'), mac('02:00:73:b6:53:e3'));
      const first = forwardFrame(engine, syn(1000), ctx(0));
      if (first.kind !== 'forwarded') throw new Error(first.kind);
      const chosen = engine.services[0]!.dests.find((d) => d.config === first.decision.destination)!;
      engine.services[0]!.editDestination(chosen, { weight: 0 });
      const again = forwardFrame(engine, syn(1001), ctx(1000));
      expect(again.kind === 'forwarded' && again.frame.dst === first.frame.dst).toBe(sameServer);
    }
  });

  it('marks a template ASSURED once a connection it controls is established', () => {
    const engine = engineFrom(TWO);
    neighbours.set(ipv4('192.0.2.227'), mac('02:00:73:b6:53:e3'));
    forwardFrame(engine, syn(1000), ctx(0));
    expect(writeIpvsadmConnections(engine.connections, 0)).toContain(' NONE ');
    forwardFrame(engine, syn(1000, TCP_ACK), ctx(5));
    expect(writeIpvsadmConnections(engine.connections, 5)).toContain(' ASSURED ');
  });

  it('keeps a template alive while it controls an entry, then lets it expire', () => {
    const engine = engineFrom(TWO);
    forwardFrame(engine, syn(1000), ctx(0));
    forwardFrame(engine, syn(1000, TCP_ACK), ctx(5)); // ESTABLISHED, 900 s
    engine.connections.expire(400_000); // template's 360 s passed: re-armed because it controls an entry
    expect(engine.connections.size).toBe(2);
    engine.connections.expire(905_006); // the connection expired at 905.005 s; the template at its next re-arm
    expect(engine.connections.size).toBe(1);
    engine.connections.expire(2_000_000);
    expect(engine.connections.size).toBe(0);
  });
});

describe('ipvsInput on many connections', () => {
  it('expires half-open entries 60 s after their SYN without scanning the table on every packet', () => {
    const engine = engineFrom(CASE);
    const n = 20_000;
    for (let i = 0; i < n; i++)
      ipvsInput(
        engine,
        {
          protocol: IPPROTO_TCP,
          saddr: (0xc6336400 + (i % 250)) >>> 0,
          sport: 1024 + i,
          daddr: ipv4('192.0.2.208'),
          dport: 80,
          tcpFlags: TCP_SYN,
          length: 60,
          fwmark: 0,
        },
        i * 10,
      );
    // Entries created in the last 60 s survive: t = 199.99 s, so those from t > 139.99 s.
    expect(engine.connections.size).toBe(6000);
    expect(engine.snapshot(n * 10).services[0]!.destinations[0]!.activeConns).toBe(5999);
  });
});
