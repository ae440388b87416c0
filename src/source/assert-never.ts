/**
 * The default branch of an exhaustive switch over a closed union: it compiles only when every member has a case,
 * so a new member cannot be left unhandled.
 */
export function assertNever(x: never, what = 'value'): never {
  throw new Error(`internal: unhandled ${what} ${JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
}
