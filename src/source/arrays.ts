/**
 * Array helpers safe for input-sized arrays. `out.push(...items)`, `Math.max(...xs)` and other spreads into a call
 * pass every element as an argument: past ~100,000 elements (a big listing's issues, a fleet's counters, a large
 * diff) V8 throws `RangeError: Maximum call stack size exceeded`. These loop instead.
 */

/** Appends every item of `items` to `out` (in order) and returns `out`. */
export function appendAll<T>(out: T[], items: Iterable<T>): T[] {
  for (const x of items) out.push(x);
  return out;
}

/** The largest of `xs` (`-Infinity` when empty, as `Math.max()`); NaN as `Math.max` would give it. */
export function maxOf(xs: Iterable<number>): number {
  let m = Number.NEGATIVE_INFINITY;
  for (const x of xs) {
    if (Number.isNaN(x)) return Number.NaN;
    if (x > m) m = x;
  }
  return m;
}

/** The smallest of `xs` (`Infinity` when empty, as `Math.min()`); NaN as `Math.min` would give it. */
export function minOf(xs: Iterable<number>): number {
  let m = Number.POSITIVE_INFINITY;
  for (const x of xs) {
    if (Number.isNaN(x)) return Number.NaN;
    if (x < m) m = x;
  }
  return m;
}
