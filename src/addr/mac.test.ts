import { describe, expect, it } from 'vitest';
import { parseMac } from './mac.ts';

describe('parseMac', () => {
  it('takes the canonical form as it is and normalizes the others', () => {
    expect(parseMac('52:54:00:0a:bc:ff')).toBe('52:54:00:0a:bc:ff');
    expect(parseMac('52:54:00:0A:BC:FF')).toBe('52:54:00:0a:bc:ff');
    expect(parseMac('52-54-00-0a-bc-ff')).toBe('52:54:00:0a:bc:ff');
    expect(parseMac('2:0:73:b6:53:c8')).toBe('02:00:73:b6:53:c8');
  });
  it('refuses what is not a MAC address', () => {
    for (const bad of [
      '52:54:00:0a:bc',
      '52:54:00:0a:bc:fg',
      '52:54-00:0a:bc:ff',
      '52:54:00:0a:bc:ff:',
      '525400-0abcff',
      '',
    ])
      expect(parseMac(bad)).toBeUndefined();
  });
});
