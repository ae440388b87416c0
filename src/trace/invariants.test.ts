import { describe, expect, it } from 'vitest';
import { bridgedPair, tcpProbe, trace } from '../../test/support/tiny-net.ts';
import { checkTrace, checkWalk } from './invariants.ts';
import type { Hop } from './types.ts';

describe('trace invariants (invariants.ts)', () => {
  it('hold for a walked trace, and a hop whose parent comes later breaks them', () => {
    const t = trace(bridgedPair({ b: { listen: [80] } }), tcpProbe('a', '198.51.100.20', 80));
    expect(() => checkTrace(t)).not.toThrow();
    const hops: Hop[] = t.hops.map((h) => ({ ...h }));
    (hops[1] as { parent?: number }).parent = 2;
    expect(() => checkWalk(hops, () => 'test walk')).toThrow(
      'internal: test walk: hop 1 has parent 2, not an earlier hop',
    );
    expect(() => checkTrace({ ...t, path: t.path.slice(1) })).toThrow(/the path starts at hop/);
  });
});
