/** Helpers for tests that compare lvsdoctor's capture output with tcpdump's, and build captures byte by byte. */

/** tcpdump's output split into frames: each starts with its time (`HH:MM:SS.uuuuuu`) or libpcap's `[Invalid header`. */
export function tcpdumpFrames(text: string): string[] {
  const out: string[] = [];
  for (const l of text.split('\n')) {
    if (l === '') continue;
    if (out.length === 0 || /^(\d\d:\d\d:\d\d\.\d{6} |\[Invalid header)/.test(l)) out.push(l);
    else out[out.length - 1] += `\n${l}`;
  }
  return out;
}

/** The parts one after the other in one buffer. */
export function concatBytes(parts: readonly ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
