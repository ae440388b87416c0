/** Strings that stay small in memory when a reader or writer makes one per line of a big input. */
/**
 * `s` as one flat string. A label built by template literals is a tree of V8 "cons strings" (~280 bytes for a
 * 60-character label); readers that make one per line of a big listing flatten it to ~90 bytes. A regular
 * expression that never matches makes V8 flatten the string and hand it back unchanged.
 */
export function flatString(s: string): string {
  return s.replace(NEVER, '');
}
const NEVER = /^(?!)/;

/**
 * Builds a long text (a listing of 400,000 lines) in flat chunks: `out += row` would keep a cons string per row
 * until the end (~600 bytes a line); this keeps the text itself plus one chunk.
 */
export class TextBuilder {
  private readonly parts: string[] = [];
  private cur = '';
  add(s: string): void {
    this.cur += s;
    if (this.cur.length >= 1 << 16) {
      this.parts.push(flatString(this.cur));
      this.cur = '';
    }
  }
  text(): string {
    this.parts.push(this.cur);
    this.cur = '';
    const all = this.parts.join('');
    this.parts.length = 0;
    this.parts.push(all);
    return all;
  }
}
