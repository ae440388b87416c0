import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { expectedChecksum, finishChecksum, internetChecksum, pseudoHeaderSum, sumWords } from './checksum.ts';

describe('the Internet checksum', () => {
  it('matches the worked example of RFC 1071', () => {
    const bytes = Uint8Array.of(0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7);
    expect(sumWords(bytes, 0, bytes.length)).toBe(0x2ddf0);
    expect(internetChecksum(bytes)).toBe(~0xddf2 & 0xffff);
  });

  it('folds carries before complementing', () => {
    expect(finishChecksum(0x1fffe)).toBe(0);
    expect(finishChecksum(0x3_0001)).toBe(~0x0004 & 0xffff);
  });

  it('pads an odd last byte with zero', () => {
    expect(internetChecksum(Uint8Array.of(0x12))).toBe(~0x1200 & 0xffff);
  });

  it('verifies to zero over data that contains its own checksum', () => {
    const bytes = Uint8Array.of(
      0x45,
      0x00,
      0x00,
      0x3c,
      0xb8,
      0xa0,
      0x40,
      0x00,
      0x30,
      0x06,
      0,
      0,
      192,
      243,
      119,
      145,
      192,
      0,
      2,
      208,
    );
    const sum = internetChecksum(bytes);
    expect(sum).toBe(0x96c6);
    bytes[10] = sum >>> 8;
    bytes[11] = sum & 0xff;
    expect(internetChecksum(bytes)).toBe(0);
  });

  it('adds the pseudo-header of source, destination, protocol and length', () => {
    const s = pseudoHeaderSum(ipv4('192.0.2.1'), ipv4('192.0.2.2'), 6, 20);
    expect(s).toBe(0xc000 + 0x0201 + 0xc000 + 0x0202 + 6 + 20);
  });

  it('tells which value the checksum field should have held, as tcpdump does', () => {
    const bytes = Uint8Array.of(
      0x45,
      0x00,
      0x00,
      0x28,
      0,
      10,
      0x40,
      0,
      48,
      6,
      0xde,
      0xad,
      192,
      243,
      119,
      145,
      192,
      0,
      2,
      208,
    );
    const verification = internetChecksum(bytes);
    expect(verification).not.toBe(0);
    const should = expectedChecksum(0xdead, verification);
    bytes[10] = should >>> 8;
    bytes[11] = should & 0xff;
    expect(internetChecksum(bytes)).toBe(0);
  });
});
