import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import {
  emitTcpSegment,
  parseTcpOptions,
  parseTcpSegment,
  TCP_CHECKSUM,
  TCP_DATA_OFFSET,
  tcpOptionsLength,
} from './tcp.ts';
import { TCP_SYN, type TcpSegment } from './types.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const CLIENT = ipv4('192.243.119.145');
const VIP = ipv4('192.0.2.208');
/** The founding case's SYN, TCP part. */
const SYN_BYTES = hex('c9bb0050d8eee2fd00000000a002390804c40000020405b40402080a2e895a5d0000000001030307');
const SYN: TcpSegment = {
  kind: 'tcp',
  srcPort: 51643,
  dstPort: 80,
  seq: 3639534333,
  ack: 0,
  flags: TCP_SYN,
  window: 14600,
  urgent: 0,
  options: [
    { kind: 'mss', value: 1460 },
    { kind: 'sack-permitted' },
    { kind: 'timestamp', val: 780753501, ecr: 0 },
    { kind: 'nop' },
    { kind: 'wscale', shift: 7 },
  ],
  payload: new Uint8Array(0),
};

describe('TCP', () => {
  it('parses the founding SYN with its options', () => {
    expect(parseTcpSegment(SYN_BYTES)).toEqual({ ...SYN, checksum: 0x04c4 });
  });

  it('emits the founding SYN byte for byte, checksum 0x04c4 included', () => {
    expect(emitTcpSegment(SYN, CLIENT, VIP)).toEqual(SYN_BYTES);
  });

  it('keeps an explicit checksum', () => {
    const b = emitTcpSegment({ ...SYN, checksum: 0x0bad }, CLIENT, VIP);
    expect([b[TCP_CHECKSUM], b[TCP_CHECKSUM + 1]]).toEqual([0x0b, 0xad]);
  });

  it('pads options to 4 bytes with zeros and reads the padding as the end of the list', () => {
    const seg: TcpSegment = { ...SYN, options: [{ kind: 'wscale', shift: 7 }, { kind: 'eol' }] };
    const b = emitTcpSegment(seg, CLIENT, VIP);
    expect(b[TCP_DATA_OFFSET]! >>> 4).toBe(6);
    expect(parseTcpSegment(b)?.options).toEqual(seg.options);
  });

  it('turns known kinds with odd lengths into unknown options and stops at a malformed length', () => {
    expect(parseTcpOptions(Uint8Array.of(2, 3, 5, 1), 0, 4)).toEqual([
      { kind: 'unknown', type: 2, data: Uint8Array.of(5) },
      { kind: 'nop' },
    ]);
    expect(parseTcpOptions(Uint8Array.of(1, 2, 30, 0), 0, 4)).toEqual([
      { kind: 'nop' },
      { kind: 'unknown', type: 2, data: Uint8Array.of(0) },
    ]);
  });

  it('parses SACK blocks', () => {
    const opts = parseTcpOptions(hex('0101050a0007a3290007a711'), 0, 12);
    expect(opts[2]).toEqual({ kind: 'sack', blocks: [[0x0007a329, 0x0007a711]] });
  });

  it('refuses options that do not fit in the header', () => {
    expect(() => tcpOptionsLength(new Array(11).fill({ kind: 'mss', value: 1 }))).toThrow(RangeError);
  });

  it('treats a bad data offset or a short header as not TCP', () => {
    const b = SYN_BYTES.slice();
    b[TCP_DATA_OFFSET] = 0x40;
    expect(parseTcpSegment(b)).toBeUndefined();
    b[TCP_DATA_OFFSET] = 0xf0;
    expect(parseTcpSegment(b)).toBeUndefined();
    expect(parseTcpSegment(SYN_BYTES.subarray(0, 19))).toBeUndefined();
  });
});
