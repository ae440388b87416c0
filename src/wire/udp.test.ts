import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import type { UdpDatagram } from './types.ts';
import { emitUdpDatagram, parseUdpDatagram, UDP_CHECKSUM, UDP_LENGTH } from './udp.ts';

const SRC = ipv4('203.0.113.5');
const DST = ipv4('198.51.100.12');
const HELLO: UdpDatagram = { kind: 'udp', srcPort: 40001, dstPort: 5000, payload: new TextEncoder().encode('hello') };

describe('UDP', () => {
  it('emits the datagram tcpdump verified as correct', () => {
    expect(Buffer.from(emitUdpDatagram(HELLO, SRC, DST)).toString('hex')).toBe('9c411388000da5f268656c6c6f');
  });

  it('parses it back with the checksum filled and no length override', () => {
    expect(parseUdpDatagram(emitUdpDatagram(HELLO, SRC, DST))).toEqual({ ...HELLO, checksum: 0xa5f2 });
  });

  it('keeps a length field that disagrees with the payload', () => {
    const b = emitUdpDatagram({ ...HELLO, length: 200 }, SRC, DST);
    expect((b[UDP_LENGTH]! << 8) | b[UDP_LENGTH + 1]!).toBe(200);
    expect(parseUdpDatagram(b)?.length).toBe(200);
  });

  it('writes an explicit zero checksum as "no checksum"', () => {
    const b = emitUdpDatagram({ ...HELLO, checksum: 0 }, SRC, DST);
    expect([b[UDP_CHECKSUM], b[UDP_CHECKSUM + 1]]).toEqual([0, 0]);
  });

  it('rejects fewer than 8 bytes', () => {
    expect(parseUdpDatagram(new Uint8Array(7))).toBeUndefined();
  });
});
