import { describe, expect, it } from 'vitest';
import { internetChecksum } from './checksum.ts';
import { emitIcmpMessage, ICMP_CHECKSUM, icmpEchoRest, parseIcmpMessage } from './icmp.ts';
import type { IcmpMessage } from './types.ts';

const ECHO: IcmpMessage = {
  kind: 'icmp',
  type: 8,
  code: 0,
  rest: icmpEchoRest(4711, 1),
  payload: Uint8Array.of(1, 2, 3),
};

describe('ICMP', () => {
  it('emits type, code, checksum, identifier and sequence', () => {
    const b = emitIcmpMessage(ECHO);
    expect([...b.subarray(0, 2)]).toEqual([8, 0]);
    expect([...b.subarray(4, 8)]).toEqual([0x12, 0x67, 0, 1]);
    expect(internetChecksum(b)).toBe(0);
  });

  it('keeps an explicit checksum', () => {
    const b = emitIcmpMessage({ ...ECHO, checksum: 0x1234 });
    expect([b[ICMP_CHECKSUM], b[ICMP_CHECKSUM + 1]]).toEqual([0x12, 0x34]);
  });

  it('parses what it emits with the checksum filled', () => {
    const b = emitIcmpMessage(ECHO);
    expect(parseIcmpMessage(b)).toEqual({ ...ECHO, checksum: (b[2]! << 8) | b[3]! });
  });

  it('rejects fewer than 8 bytes', () => {
    expect(parseIcmpMessage(new Uint8Array(7))).toBeUndefined();
  });
});
