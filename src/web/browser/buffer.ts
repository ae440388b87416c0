/**
 * The `Buffer` global for the offline report's what-if engine (esbuild injects it where the domain code names
 * `Buffer`): the UTF-8 part the domain code uses — `Buffer.from(text | bytes)`, `Buffer.byteLength(text)`,
 * `alloc`/`allocUnsafe` and `toString('utf8')` — on a Uint8Array, as Node's Buffer is one (shims.test.ts compares
 * them with Node's). Other encodings are refused by name rather than answered wrongly.
 */

type Encoding = 'utf8' | 'utf-8' | undefined;

function utf8Only(e: string | undefined): void {
  if (e !== undefined && e !== 'utf8' && e !== 'utf-8')
    throw new Error(`Buffer: the encoding "${e}" is not available in the offline report (utf8 is)`);
}

/** Bytes that decode themselves as UTF-8, as a Node Buffer's `toString()` does. */
class Bytes extends Uint8Array {
  override toString(encoding?: Encoding, start = 0, end = this.length): string {
    utf8Only(encoding);
    return new TextDecoder().decode(this.subarray(start, end));
  }
}

function bytes(from: ArrayLike<number>): Bytes {
  const b = new Bytes(from.length);
  b.set(from);
  return b;
}

export const Buffer = {
  from(data: string | ArrayLike<number> | Iterable<number>, encoding?: Encoding): Bytes {
    if (typeof data !== 'string') return bytes(Array.from(data as ArrayLike<number>));
    utf8Only(encoding);
    return bytes(new TextEncoder().encode(data));
  },
  byteLength(text: string, encoding?: Encoding): number {
    utf8Only(encoding);
    return new TextEncoder().encode(text).length;
  },
  alloc: (size: number): Bytes => new Bytes(size),
  allocUnsafe: (size: number): Bytes => new Bytes(size),
  isBuffer: (x: unknown): x is Bytes => x instanceof Bytes,
};
