import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { ARP_PACKET_LEN, ARP_TPA, emitArpPacket, parseArpPacket } from './arp.ts';
import { ARP_REQUEST, type ArpPacket } from './types.ts';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));
const BYTES = hex('0001080006040001020073b653c8c000020a000000000000c633640b');
const REPR: ArpPacket = {
  kind: 'arp',
  htype: 1,
  ptype: 0x0800,
  op: ARP_REQUEST,
  sha: mac('02:00:73:b6:53:c8'),
  spa: ipv4('192.0.2.10'),
  tha: mac('00:00:00:00:00:00'),
  tpa: ipv4('198.51.100.11'),
};

describe('ARP', () => {
  it('parses a who-has request', () => {
    expect(parseArpPacket(BYTES)).toEqual(REPR);
  });

  it('emits the same bytes', () => {
    expect(emitArpPacket(REPR)).toEqual(BYTES);
  });

  it('ignores Ethernet padding after the 28 bytes', () => {
    const padded = new Uint8Array(46);
    padded.set(BYTES);
    expect(parseArpPacket(padded)).toEqual(REPR);
  });

  it('rejects truncated packets and other address sizes', () => {
    expect(parseArpPacket(BYTES.subarray(0, ARP_TPA))).toBeUndefined();
    const other = BYTES.slice();
    other[4] = 8;
    expect(parseArpPacket(other)).toBeUndefined();
    expect(ARP_PACKET_LEN).toBe(28);
  });
});
