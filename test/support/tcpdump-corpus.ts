/**
 * A corpus of varied frames for the tcpdump golden test (fixtures/tcpdump/): an LVS-DR HTTP exchange (the founding
 * case), ARP, VLANs, ICMP errors quoting packets, fragments, IP options, IPIP, broken checksums and lengths,
 * truncated captures and unknown protocols. Only documentation addresses plus the founding case's client.
 */
import { ipv4 } from '../../src/addr/ipv4.ts';
import { type Mac, mac } from '../../src/addr/mac.ts';
import { internetChecksum } from '../../src/wire/checksum.ts';
import { emitEthernet } from '../../src/wire/ethernet.ts';
import { icmpEchoRest } from '../../src/wire/icmp.ts';
import { emitIpv4Packet } from '../../src/wire/ipv4.ts';
import {
  ARP_REPLY,
  ARP_REQUEST,
  ETHERTYPE_ARP,
  ETHERTYPE_IPV4,
  type EthernetFrame,
  IPPROTO_ICMP,
  IPPROTO_IPIP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv4Packet,
  type L4Payload,
  TCP_ACK,
  TCP_CWR,
  TCP_ECE,
  TCP_FIN,
  TCP_PSH,
  TCP_RST,
  TCP_SYN,
  TCP_URG,
  type TcpOption,
  type TcpSegment,
  type VlanTag,
} from '../../src/wire/types.ts';

export interface CorpusRecord {
  readonly timeNs: bigint;
  readonly bytes: Uint8Array;
  readonly originalLength: number;
  /** What the frame shows, for test names. */
  readonly note: string;
}

const ROUTER = mac('84:78:ac:27:6c:41');
const DIRECTOR = mac('02:00:73:b6:53:c8');
const REAL1 = mac('52:54:00:12:34:01');
const REAL2 = mac('52:54:00:12:34:02');
const CLIENT = ipv4('192.243.119.145');
const VIP = ipv4('192.0.2.208');
const GW = ipv4('192.0.2.1');
const DIP = ipv4('192.0.2.10');
const RIP1 = ipv4('198.51.100.11');
const RIP2 = ipv4('198.51.100.12');
const MON = ipv4('203.0.113.5');

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

function ip(src: number, dst: number, payload: L4Payload, extra: Partial<Ipv4Packet> = {}): Ipv4Packet {
  const protocol =
    payload.kind === 'tcp'
      ? IPPROTO_TCP
      : payload.kind === 'udp'
        ? IPPROTO_UDP
        : payload.kind === 'icmp'
          ? IPPROTO_ICMP
          : payload.kind === 'ipv4'
            ? IPPROTO_IPIP
            : 253;
  return {
    kind: 'ipv4',
    tos: 0,
    id: 0,
    dontFragment: true,
    moreFragments: false,
    fragmentOffset: 0,
    ttl: 64,
    protocol,
    src: src as Ipv4Packet['src'],
    dst: dst as Ipv4Packet['dst'],
    payload,
    ...extra,
  };
}

function tcp(
  srcPort: number,
  dstPort: number,
  flags: number,
  seq: number,
  ack: number,
  extra: Partial<TcpSegment> = {},
): TcpSegment {
  return {
    kind: 'tcp',
    srcPort,
    dstPort,
    seq,
    ack,
    flags,
    window: 502,
    urgent: 0,
    options: [],
    payload: new Uint8Array(0),
    ...extra,
  };
}

function eth(src: Mac, dst: Mac, payload: EthernetFrame['payload'], vlans: VlanTag[] = []): EthernetFrame {
  return {
    dst,
    src,
    vlans,
    etherType: payload.kind === 'arp' ? ETHERTYPE_ARP : payload.kind === 'ipv4' ? ETHERTYPE_IPV4 : 0x88b5,
    payload,
  };
}

const ts = (val: number, ecr: number): TcpOption => ({ kind: 'timestamp', val, ecr });
const NOP: TcpOption = { kind: 'nop' };
const SYN_OPTS: TcpOption[] = [
  { kind: 'mss', value: 1460 },
  { kind: 'sack-permitted' },
  ts(780753501, 0),
  NOP,
  { kind: 'wscale', shift: 7 },
];

const HTTP_GET = 'GET / HTTP/1.1\r\nHost: 192.0.2.208\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n';
const HTTP_OK =
  'HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nhello world\n';

/** Builds the corpus; `base` is the time of the first frame (the founding case's 11:39:19.372804 by default). */
export function buildTcpdumpCorpus(base = 1_700_048_359_372_804_000n): CorpusRecord[] {
  const out: CorpusRecord[] = [];
  let t = base;
  const add = (note: string, bytes: Uint8Array, originalLength = bytes.length, stepNs = 1_234_567n): void => {
    out.push({ timeNs: t, bytes, originalLength, note });
    t += stepNs;
  };
  const frame = (note: string, f: EthernetFrame, pad = false): void => add(note, emitEthernet(f, { pad }));

  const ISN_C = 3639534333;
  const ISN_S = 1020304050;
  // 1-3: handshake of the founding case (DR: the real server answers from the VIP).
  frame(
    'founding SYN',
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51643, 80, TCP_SYN, ISN_C, 0, { window: 14600, options: SYN_OPTS }), { ttl: 48, id: 47264 }),
    ),
  );
  frame(
    'SYN-ACK from the real server',
    eth(
      REAL1,
      ROUTER,
      ip(
        VIP,
        CLIENT,
        tcp(80, 51643, TCP_SYN | TCP_ACK, ISN_S, ISN_C + 1, {
          window: 65160,
          options: [
            { kind: 'mss', value: 1460 },
            { kind: 'sack-permitted' },
            ts(1111, 780753501),
            NOP,
            { kind: 'wscale', shift: 7 },
          ],
        }),
      ),
    ),
  );
  frame(
    'ACK (relative numbers from here on)',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        tcp(51643, 80, TCP_ACK, ISN_C + 1, ISN_S + 1, { window: 115, options: [NOP, NOP, ts(780753540, 1111)] }),
        { ttl: 48, id: 47265 },
      ),
    ),
  );
  frame(
    'HTTP request',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        tcp(51643, 80, TCP_PSH | TCP_ACK, ISN_C + 1, ISN_S + 1, {
          window: 115,
          options: [NOP, NOP, ts(780753541, 1111)],
          payload: text(HTTP_GET),
        }),
        { ttl: 48, id: 47266 },
      ),
    ),
  );
  frame(
    'HTTP response',
    eth(
      REAL1,
      ROUTER,
      ip(
        VIP,
        CLIENT,
        tcp(80, 51643, TCP_PSH | TCP_ACK, ISN_S + 1, ISN_C + 1 + HTTP_GET.length, {
          window: 509,
          options: [NOP, NOP, ts(1150, 780753541)],
          payload: text(HTTP_OK),
        }),
        { id: 4001 },
      ),
    ),
  );
  frame(
    'FIN from the client, padded frame',
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51643, 80, TCP_FIN | TCP_ACK, ISN_C + 1 + HTTP_GET.length, ISN_S + 1 + HTTP_OK.length), {
        ttl: 48,
        id: 47267,
      }),
    ),
    true,
  );
  frame(
    'RST with data from the real server',
    eth(
      REAL1,
      ROUTER,
      ip(
        VIP,
        CLIENT,
        tcp(80, 51643, TCP_RST, ISN_S + 1 + HTTP_OK.length, 0, { window: 0, payload: text('conn reset\x01\xff') }),
        { id: 4002 },
      ),
    ),
  );
  frame(
    'SYN on a tagged VLAN (pcp 5, DEI)',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        tcp(51644, 80, TCP_SYN, 12345, 0, {
          window: 64240,
          options: [
            { kind: 'mss', value: 1460 },
            NOP,
            { kind: 'wscale', shift: 8 },
            NOP,
            NOP,
            { kind: 'sack-permitted' },
          ],
        }),
        { ttl: 48, id: 1 },
      ),
      [{ pcp: 5, dei: true, vid: 100 }],
    ),
  );
  frame(
    'ARP request in QinQ',
    eth(
      DIRECTOR,
      mac('ff:ff:ff:ff:ff:ff'),
      {
        kind: 'arp',
        htype: 1,
        ptype: 0x0800,
        op: ARP_REQUEST,
        sha: DIRECTOR,
        spa: DIP,
        tha: mac('00:00:00:00:00:00'),
        tpa: RIP1,
      },
      [
        { pcp: 0, dei: false, vid: 20, tpid: 0x88a8 },
        { pcp: 3, dei: false, vid: 300 },
      ],
    ),
  );
  frame(
    'ARP request, padded',
    eth(DIRECTOR, mac('ff:ff:ff:ff:ff:ff'), {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: ARP_REQUEST,
      sha: DIRECTOR,
      spa: DIP,
      tha: mac('00:00:00:00:00:00'),
      tpa: RIP1,
    }),
    true,
  );
  frame(
    'ARP reply',
    eth(REAL1, DIRECTOR, {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: ARP_REPLY,
      sha: REAL1,
      spa: RIP1,
      tha: DIRECTOR,
      tpa: DIP,
    }),
  );
  frame(
    'gratuitous ARP request for the VIP',
    eth(REAL2, mac('ff:ff:ff:ff:ff:ff'), {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: ARP_REQUEST,
      sha: REAL2,
      spa: VIP,
      tha: mac('ff:ff:ff:ff:ff:ff'),
      tpa: VIP,
    }),
  );
  frame(
    'gratuitous ARP reply',
    eth(DIRECTOR, mac('ff:ff:ff:ff:ff:ff'), {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: ARP_REPLY,
      sha: DIRECTOR,
      spa: VIP,
      tha: mac('ff:ff:ff:ff:ff:ff'),
      tpa: VIP,
    }),
  );
  const ping = new Uint8Array(56).map((_, i) => (i < 8 ? 0x10 + i : i));
  frame(
    'ICMP echo request',
    eth(
      DIRECTOR,
      REAL1,
      ip(DIP, RIP1, { kind: 'icmp', type: 8, code: 0, rest: icmpEchoRest(4711, 1), payload: ping }, { id: 5555 }),
    ),
  );
  frame(
    'ICMP echo reply',
    eth(
      REAL1,
      DIRECTOR,
      ip(
        RIP1,
        DIP,
        { kind: 'icmp', type: 0, code: 0, rest: icmpEchoRest(4711, 1), payload: ping },
        { id: 777, dontFragment: false },
      ),
    ),
  );
  const probe = ip(
    MON,
    RIP2,
    { kind: 'udp', srcPort: 40000, dstPort: 33434, payload: text('lvsdoctor probe') },
    { id: 99, ttl: 1 },
  );
  frame(
    'ICMP port unreachable quoting a whole UDP datagram',
    eth(
      REAL2,
      DIRECTOR,
      ip(
        RIP2,
        MON,
        { kind: 'icmp', type: 3, code: 3, rest: 0, payload: emitIpv4Packet({ ...probe, ttl: 0 }) },
        { tos: 0xc0, dontFragment: false },
      ),
    ),
  );
  const syn = emitIpv4Packet(ip(CLIENT, VIP, tcp(51645, 80, TCP_SYN, 1, 0, { window: 64240 }), { ttl: 47, id: 3 }));
  frame(
    'ICMP host unreachable quoting 8 bytes of TCP',
    eth(
      DIRECTOR,
      ROUTER,
      ip(
        GW,
        CLIENT,
        { kind: 'icmp', type: 3, code: 1, rest: 0, payload: syn.subarray(0, 28) },
        { tos: 0xc0, dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP need-frag with mtu quoting a TCP header',
    eth(
      DIRECTOR,
      ROUTER,
      ip(
        GW,
        CLIENT,
        { kind: 'icmp', type: 3, code: 4, rest: 1480, payload: syn.subarray(0, 40) },
        { tos: 0xc0, dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP admin prohibited filter',
    eth(
      DIRECTOR,
      ROUTER,
      ip(
        GW,
        CLIENT,
        { kind: 'icmp', type: 3, code: 13, rest: 0, payload: syn.subarray(0, 28) },
        { dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP time exceeded',
    eth(
      DIRECTOR,
      ROUTER,
      ip(
        GW,
        MON,
        { kind: 'icmp', type: 11, code: 0, rest: 0, payload: emitIpv4Packet(probe).subarray(0, 28) },
        { dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP echo with a wrong checksum',
    eth(
      DIRECTOR,
      REAL1,
      ip(
        DIP,
        RIP1,
        { kind: 'icmp', type: 8, code: 0, rest: icmpEchoRest(4711, 2), payload: ping, checksum: 0x1234 },
        { id: 5556 },
      ),
    ),
  );
  frame(
    'UDP datagram',
    eth(
      DIRECTOR,
      REAL2,
      ip(MON, RIP2, { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: text('hello') }, { id: 100, tos: 0x10 }),
    ),
  );
  frame(
    'UDP with a bad checksum',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        MON,
        RIP2,
        { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: text('hello'), checksum: 0xbeef },
        { id: 101 },
      ),
    ),
  );
  frame(
    'UDP without checksum',
    eth(
      DIRECTOR,
      REAL2,
      ip(MON, RIP2, { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: text('hello'), checksum: 0 }, { id: 102 }),
    ),
  );
  frame(
    'UDP with a length larger than the packet',
    eth(
      DIRECTOR,
      REAL2,
      ip(MON, RIP2, { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: text('hello'), length: 200 }, { id: 103 }),
    ),
  );
  frame(
    'UDP with a length below the header size',
    eth(
      DIRECTOR,
      REAL2,
      ip(MON, RIP2, { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: text('hello'), length: 4 }, { id: 104 }),
    ),
  );
  const big = new Uint8Array(1600).map((_, i) => i & 0xff);
  const whole = emitIpv4Packet(
    ip(MON, RIP2, { kind: 'udp', srcPort: 40002, dstPort: 5001, payload: big }, { id: 4242, dontFragment: false }),
  );
  frame(
    'first fragment (MF) carrying the UDP header',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        MON,
        RIP2,
        { kind: 'raw', bytes: whole.subarray(20, 20 + 1480) },
        { id: 4242, dontFragment: false, moreFragments: true, protocol: IPPROTO_UDP },
      ),
    ),
  );
  frame(
    'last fragment',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        MON,
        RIP2,
        { kind: 'raw', bytes: whole.subarray(20 + 1480) },
        { id: 4242, dontFragment: false, fragmentOffset: 185, protocol: IPPROTO_UDP },
      ),
    ),
  );
  frame(
    'IP options: router alert and record route',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        MON,
        RIP2,
        { kind: 'udp', srcPort: 40003, dstPort: 5002, payload: text('opts') },
        {
          id: 200,
          options: Uint8Array.of(0x94, 4, 0, 0, 1, 7, 11, 8, 203, 0, 113, 5, 0, 0, 0, 0),
        },
      ),
    ),
  );
  frame(
    'ECN CE and DSCP',
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51646, 80, TCP_SYN | TCP_ECE | TCP_CWR, 77, 0, { window: 64240 }), {
        tos: 0xbb,
        ttl: 50,
        id: 7,
      }),
    ),
  );
  frame(
    'TTL zero, unknown IP protocol',
    eth(
      DIRECTOR,
      REAL2,
      ip(MON, RIP2, { kind: 'raw', bytes: text('opaque payload bytes') }, { protocol: 253, ttl: 0, id: 8 }),
    ),
  );
  frame(
    'IPIP: LVS tunnelling a SYN to a real server',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        DIP,
        RIP2,
        ip(CLIENT, VIP, tcp(51647, 80, TCP_SYN, 99, 0, { window: 64240, options: [{ kind: 'mss', value: 1460 }] }), {
          ttl: 47,
          id: 9,
        }),
        { id: 0, ttl: 64, tos: 0 },
      ),
    ),
  );
  frame('unknown ethertype', {
    dst: REAL2,
    src: DIRECTOR,
    vlans: [],
    etherType: 0x88b5,
    payload: { kind: 'raw', bytes: text('experimental ethertype payload!!') },
  });
  frame(
    'TCP with a wrong checksum',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        tcp(51643, 80, TCP_ACK, ISN_C + 2 + HTTP_GET.length, ISN_S + 2 + HTTP_OK.length, {
          checksum: 0x0bad,
          window: 115,
        }),
        { ttl: 48, id: 47268 },
      ),
    ),
  );
  frame(
    'IP header with a wrong checksum',
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51648, 80, TCP_SYN, 5, 0, { window: 64240 }), { ttl: 48, id: 10, checksum: 0xdead }),
    ),
  );
  // Second flow, server port above the client's: exercises the reversed key and SACK blocks.
  frame(
    'SYN-ACK of a second flow',
    eth(REAL2, DIRECTOR, ip(RIP2, DIP, tcp(8443, 443, TCP_SYN | TCP_ACK, 500000, 600001, { window: 65160 }))),
  );
  frame(
    'SACK, unknown option and eol',
    eth(
      DIRECTOR,
      REAL2,
      ip(
        DIP,
        RIP2,
        tcp(443, 8443, TCP_ACK, 600001, 500001, {
          options: [
            NOP,
            NOP,
            { kind: 'sack', blocks: [[501001, 502001]] },
            { kind: 'unknown', type: 99, data: Uint8Array.of(1, 2) },
            { kind: 'eol' },
          ],
        }),
      ),
    ),
  );
  frame(
    'data with URG and PSH from the second flow',
    eth(
      REAL2,
      DIRECTOR,
      ip(
        RIP2,
        DIP,
        tcp(8443, 443, TCP_ACK | TCP_PSH | TCP_URG, 500001, 600001, { urgent: 3, payload: text('abcdef') }),
      ),
    ),
  );
  frame('no flags at all', eth(REAL2, DIRECTOR, ip(RIP2, DIP, tcp(8443, 443, 0, 500007, 0))));
  frame(
    'FIN PSH URG (xmas)',
    eth(REAL2, DIRECTOR, ip(RIP2, DIP, tcp(8443, 443, TCP_FIN | TCP_PSH | TCP_URG, 500007, 0, { urgent: 1 }))),
  );
  frame(
    'RST-ACK without data',
    eth(DIRECTOR, REAL2, ip(DIP, RIP2, tcp(443, 8443, TCP_RST | TCP_ACK, 600001, 500008, { window: 0 }))),
  );
  // Truncated captures.
  const longAck = emitEthernet(
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51649, 80, TCP_ACK | TCP_PSH, 1000, 2000, { payload: new Uint8Array(200).fill(0x41) }), {
        ttl: 48,
        id: 11,
      }),
    ),
  );
  add('capture cut inside the TCP payload (snaplen 96)', longAck.subarray(0, 96), longAck.length);
  add('capture cut inside the TCP header', longAck.subarray(0, 44), longAck.length);
  add('capture cut inside the IP header', longAck.subarray(0, 24), longAck.length);
  add('capture cut inside the Ethernet header', longAck.subarray(0, 10), longAck.length);
  frame(
    'IP total length beyond the frame',
    eth(ROUTER, DIRECTOR, ip(CLIENT, VIP, tcp(51650, 80, TCP_SYN, 1, 0), { ttl: 48, id: 12, totalLength: 120 })),
  );
  frame(
    'TCP data offset too small',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        {
          kind: 'raw',
          bytes: Uint8Array.of(0xc9, 0xc2, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x30, 2, 0xff, 0xff, 0, 0, 0, 0),
        },
        { ttl: 48, id: 13, protocol: IPPROTO_TCP },
      ),
    ),
  );
  // More edge cases of the printers.
  const tweak = (note: string, f: EthernetFrame, edit: (b: Uint8Array) => void): void => {
    const b = emitEthernet(f);
    edit(b);
    add(note, b);
  };
  const plainSyn = (sport: number, extra: Partial<TcpSegment> = {}, ipExtra: Partial<Ipv4Packet> = {}): EthernetFrame =>
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(sport, 80, TCP_SYN, 42, 0, { window: 64240, ...extra }), { ttl: 48, ...ipExtra }),
    );
  tweak('DF, MF and the reserved bit together', plainSyn(51651, {}, { id: 14, moreFragments: true }), (b) => {
    b[14 + 6]! |= 0x80;
    b[14 + 10] = 0;
    b[14 + 11] = 0;
    const sum = internetChecksum(b, 14, 34);
    b[14 + 10] = sum >>> 8;
    b[14 + 11] = sum & 0xff;
  });
  frame(
    'IP timestamp option and loose source route (pseudo-header uses the last hop)',
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51652, 80, TCP_SYN, 43, 0, { window: 64240 }), {
        ttl: 48,
        id: 15,
        options: Uint8Array.of(68, 12, 5, 0x10, 0, 0, 0, 1, 0, 0, 0, 2, 131, 7, 4, 198, 51, 100, 11, 0),
      }),
    ),
  );
  frame(
    'TCP options: md5, uto, tfo cookie, experimental tfo, wrong-length mss',
    plainSyn(51653, {
      options: [
        { kind: 'unknown', type: 19, data: new Uint8Array(16).map((_, i) => i * 17) },
        { kind: 'unknown', type: 28, data: Uint8Array.of(0x80, 0x3d) },
        { kind: 'unknown', type: 34, data: Uint8Array.of(1, 2, 3, 4) },
        { kind: 'unknown', type: 254, data: Uint8Array.of(0xf9, 0x89) },
        { kind: 'unknown', type: 2, data: Uint8Array.of(5) },
      ],
    }),
  );
  tweak(
    'TCP option with a length past the header',
    plainSyn(51654, { options: [NOP, { kind: 'mss', value: 1460 }, NOP, NOP, NOP] }),
    (b) => {
      b[14 + 20 + 20 + 2] = 30;
    },
  );
  frame(
    'TCP echo and cc options, timestamp on a fresh ACK',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        CLIENT,
        VIP,
        tcp(51655, 80, TCP_ACK, 7, 9, {
          options: [
            { kind: 'unknown', type: 6, data: Uint8Array.of(0, 0, 1, 0) },
            { kind: 'unknown', type: 11, data: Uint8Array.of(0, 0, 0, 9) },
            { kind: 'unknown', type: 13, data: Uint8Array.of(0, 0, 0, 10) },
          ],
        }),
        { ttl: 48 },
      ),
    ),
  );
  frame(
    'HTTP response on 8080 without a final line ending',
    eth(
      REAL1,
      ROUTER,
      ip(
        VIP,
        CLIENT,
        tcp(8080, 51656, TCP_ACK | TCP_PSH, 1, 1, {
          payload: text('HTTP/1.0 503 Service Unavailable\r\nRetry-After: 5'),
        }),
      ),
    ),
  );
  frame(
    'HTTP port with binary data',
    eth(
      REAL1,
      ROUTER,
      ip(
        VIP,
        CLIENT,
        tcp(80, 51657, TCP_ACK | TCP_PSH, 1, 1, { payload: Uint8Array.of(0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5) }),
      ),
    ),
  );
  const longGet = emitEthernet(
    eth(
      ROUTER,
      DIRECTOR,
      ip(CLIENT, VIP, tcp(51658, 80, TCP_ACK | TCP_PSH, 1, 1, { payload: text(HTTP_GET) }), { ttl: 48 }),
    ),
  );
  add('HTTP request cut by the snap length', longGet.subarray(0, 54 + 30), longGet.length);
  frame('RARP request', {
    ...eth(DIRECTOR, mac('ff:ff:ff:ff:ff:ff'), {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: 3,
      sha: DIRECTOR,
      spa: ipv4('0.0.0.0'),
      tha: DIRECTOR,
      tpa: ipv4('0.0.0.0'),
    }),
    etherType: 0x8035,
  });
  frame(
    'ARP with an unknown operation',
    eth(DIRECTOR, REAL1, {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: 77,
      sha: DIRECTOR,
      spa: DIP,
      tha: REAL1,
      tpa: RIP1,
    }),
  );
  tweak(
    'ARP for another protocol type',
    eth(DIRECTOR, REAL1, {
      kind: 'arp',
      htype: 6,
      ptype: 0x86dd,
      op: 1,
      sha: DIRECTOR,
      spa: DIP,
      tha: REAL1,
      tpa: RIP1,
    }),
    () => {},
  );
  frame(
    'ICMP redirect',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        GW,
        DIP,
        { kind: 'icmp', type: 5, code: 1, rest: ipv4('192.0.2.2'), payload: syn.subarray(0, 28) },
        { dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP parameter problem',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        GW,
        DIP,
        { kind: 'icmp', type: 12, code: 0, rest: 0x14000000, payload: syn.subarray(0, 28) },
        { dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP source quench',
    eth(
      ROUTER,
      DIRECTOR,
      ip(GW, DIP, { kind: 'icmp', type: 4, code: 0, rest: 0, payload: syn.subarray(0, 28) }, { dontFragment: false }),
    ),
  );
  frame(
    'ICMP timestamp reply',
    eth(
      ROUTER,
      DIRECTOR,
      ip(
        GW,
        DIP,
        {
          kind: 'icmp',
          type: 14,
          code: 0,
          rest: icmpEchoRest(1, 2),
          payload: Uint8Array.of(0, 0x9a, 0x7e, 0xc8, 0x02, 0x93, 0x2e, 0x00, 0x04, 0x00, 0x00, 0x01),
        },
        { dontFragment: false },
      ),
    ),
  );
  frame(
    'ICMP unknown type',
    eth(
      ROUTER,
      DIRECTOR,
      ip(GW, DIP, { kind: 'icmp', type: 42, code: 7, rest: 0, payload: text('x') }, { dontFragment: false }),
    ),
  );
  frame(
    'ICMP port unreachable quoting 200 bytes (extension check)',
    eth(
      REAL2,
      DIRECTOR,
      ip(
        RIP2,
        MON,
        {
          kind: 'icmp',
          type: 3,
          code: 3,
          rest: 0,
          payload: emitIpv4Packet({
            ...probe,
            payload: { kind: 'udp', srcPort: 40000, dstPort: 33434, payload: new Uint8Array(172).fill(0x61) },
          }),
        },
        { dontFragment: false },
      ),
    ),
  );
  tweak('IPv6 header behind the IPv4 ethertype', plainSyn(51659), (b) => {
    b[14] = 0x60;
  });
  tweak('IPv4 header length below 20', plainSyn(51660), (b) => {
    b[14] = 0x44;
  });
  tweak('IPv4 total length below the header length', plainSyn(51661), (b) => {
    b[14 + 2] = 0;
    b[14 + 3] = 12;
  });
  add(
    'VLAN tag cut short',
    emitEthernet(plainSyn(51662, {}, {}) as EthernetFrame)
      .subarray(0, 14)
      .map((x, i) => (i === 12 ? 0x81 : i === 13 ? 0 : x)),
  );
  frame(
    'UDP on IPIP inside a VLAN',
    eth(
      DIRECTOR,
      REAL2,
      ip(DIP, RIP2, ip(MON, VIP, { kind: 'udp', srcPort: 40010, dstPort: 6000, payload: text('tunnelled') })),
      [{ pcp: 0, dei: false, vid: 4094 }],
    ),
  );
  return out;
}
