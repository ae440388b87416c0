// The offline report's stand-ins for node:path and node:crypto answer as Node does.
import { createHash as nodeHash } from 'node:crypto';
import nodePath from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Buffer as PageBuffer } from './buffer.ts';
import { createHash } from './node-crypto.ts';
import * as shim from './node-path.ts';

const part = fc.constantFrom('', '.', '..', 'a', 'b', 'host1', 'vm.xml', '...', ' ', 'é');
const path = fc
  .array(part, { maxLength: 7 })
  .chain((parts) => fc.boolean().map((abs) => (abs ? '/' : '') + parts.join('/')));

describe('node:path stand-in', () => {
  it('normalizes, joins, resolves and relates as node:path (POSIX) does', () => {
    fc.assert(
      fc.property(fc.array(path, { minLength: 1, maxLength: 4 }), (ps) => {
        const p = ps[0]!;
        expect(shim.normalize(p)).toBe(nodePath.posix.normalize(p));
        expect(shim.join(...ps)).toBe(nodePath.posix.join(...ps));
        expect(shim.isAbsolute(p)).toBe(nodePath.posix.isAbsolute(p));
        // The page has no working directory: `/` stands for it.
        const abs = ps.map((x) => `/${x}`);
        expect(shim.resolve(...abs)).toBe(nodePath.posix.resolve(...abs));
        expect(shim.relative(abs[0]!, abs[abs.length - 1]!)).toBe(
          nodePath.posix.relative(abs[0]!, abs[abs.length - 1]!),
        );
      }),
      { numRuns: 2000 },
    );
  });
  it('keeps the trailing slash and the leading .. as node:path does', () => {
    for (const p of ['a/b/', '../a', '../../x/../y', '/..', './', 'a//b/./c/..', ''])
      expect([p, shim.normalize(p)]).toEqual([p, nodePath.posix.normalize(p)]);
  });
});

describe('node:crypto createHash stand-in', () => {
  it('digests SHA-1 and SHA-256 of any text as node:crypto does (hex and base64)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 80 }), (a, b) => {
        for (const alg of ['sha1', 'sha256'])
          for (const enc of ['hex', 'base64'] as const)
            expect(createHash(alg).update(a).update(b).digest(enc)).toBe(nodeHash(alg).update(a).update(b).digest(enc));
      }),
      { numRuns: 500 },
    );
  });
  it('refuses a hash it does not have, by name', () => {
    expect(() => createHash('md5')).toThrow(/"md5" is not available/);
  });
});

describe('Buffer stand-in', () => {
  it('encodes, measures and decodes UTF-8 as Node’s Buffer does', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (text) => {
        const mine = PageBuffer.from(text, 'utf8');
        const node = Buffer.from(text, 'utf8');
        expect([...mine]).toEqual([...node]);
        expect(PageBuffer.byteLength(text)).toBe(Buffer.byteLength(text));
        expect(mine.toString('utf8')).toBe(node.toString('utf8'));
        expect(PageBuffer.from([...node]).toString()).toBe(Buffer.from([...node]).toString());
        expect(mine).toBeInstanceOf(Uint8Array);
      }),
      { numRuns: 1000 },
    );
  });
  it('refuses an encoding it does not have, by name', () => {
    expect(() => PageBuffer.from('x', 'latin1' as 'utf8')).toThrow(/"latin1" is not available/);
  });
});
