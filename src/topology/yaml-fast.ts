/**
 * A fast reader for the plain block YAML that `lvsdoctor import` writes (and most hand-written scenarios use):
 * block maps and sequences, single-line plain and double-quoted scalars, one-line flow sequences of scalars, `{}`,
 * comments. It returns the same values as the `yaml` library (core schema) and the position of every node, or
 * `undefined` as soon as the text uses anything else (anchors, tags, block scalars, single quotes, multi-line
 * scalars, flow maps, floats…): the caller then parses with the `yaml` library, which also reports the errors.
 * A 16 000-entry scenario reads in a tenth of the library's time.
 */

/** 1-based line and column of a node (of its value; of the key for an empty value). */
export type NodePos = readonly [line: number, col: number];

export interface FastYaml {
  readonly value: unknown;
  /** Path segments joined by NUL → position; the empty path is the root. */
  readonly positions: ReadonlyMap<string, NodePos>;
}

export const PATH_SEP = '\u0000';

const SAFE_PLAIN_START = /^[A-Za-z0-9_./+]|^-[^\s]/;
const KEY_PLAIN = /^(?:[A-Za-z_][A-Za-z0-9_./-]*|\d+(?:\.\d+){2,}|[1-9]\d*|0)$/;

class Bail extends Error {}
const bail = (): never => {
  throw new Bail();
};

/** The text before a comment (`#` at the start or after whitespace, outside double quotes), without trailing blanks. */
function stripComment(line: string): string {
  let inQ = false;
  for (let k = 0; k < line.length; k++) {
    const ch = line[k];
    if (inQ) {
      if (ch === '\\') k++;
      else if (ch === '"') inQ = false;
    } else if (ch === '"') inQ = true;
    else if (ch === '#' && (k === 0 || line[k - 1] === ' ')) return line.slice(0, k).trimEnd();
  }
  if (inQ) bail();
  return line.trimEnd();
}

function quoted(text: string): string {
  if (!text.startsWith('"') || !text.endsWith('"') || text.length < 2) bail();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    bail();
  }
  return v as string;
}

/** A plain or double-quoted scalar, resolved as the YAML 1.2 core schema does (what it cannot be sure of bails). */
function scalar(text: string, flow: boolean): unknown {
  if (text.startsWith('"')) return quoted(text);
  if (text === '~') return null;
  if (!SAFE_PLAIN_START.test(text)) bail();
  if (/: |:$|\s#|\t/.test(text) || (flow && /[\s[\]{},]/.test(text))) bail();
  if (/^(null|Null|NULL|~)$/.test(text)) return null;
  if (/^(true|True|TRUE)$/.test(text)) return true;
  if (/^(false|False|FALSE)$/.test(text)) return false;
  if (/^[-+]?(0|[1-9][0-9]{0,14})$/.test(text)) return Number(text);
  if (/^[-+]?[0-9]+$/.test(text)) bail(); // leading zeros, or too large for a plain Number
  if (/^0o|^0x/.test(text)) bail();
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(text)) bail();
  if (/^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$/.test(text)) bail();
  return text;
}

interface Frame {
  readonly indent: number;
  readonly kind: 'map' | 'seq';
  readonly value: Record<string, unknown> | unknown[];
  readonly path: string;
}

/** Parses `text`, or returns undefined when it is not in the subset (then use the `yaml` library). */
export function parseFastYaml(text: string): FastYaml | undefined {
  try {
    return parse(text);
  } catch (e) {
    if (e instanceof Bail) return undefined;
    throw e;
  }
}

function parse(text: string): FastYaml {
  const positions = new Map<string, NodePos>();
  const lines = text.split('\n');
  const join = (path: string, seg: string | number) => (path === '' ? String(seg) : `${path}${PATH_SEP}${seg}`);
  let root: Record<string, unknown> | unknown[] | undefined;
  const stack: Frame[] = [];
  /** A key whose value is on the following lines (a block collection), or null. */
  let pending:
    | { parent: Frame; key: string | number; path: string; indent: number; line: number; col: number }
    | undefined;
  /** The last scalar value's indent: a more indented line after it would continue it (multi-line: bail). */
  let lastScalarIndent = -1;

  const setValue = (f: Frame, key: string | number, v: unknown) => {
    if (f.kind === 'map') {
      const m = f.value as Record<string, unknown>;
      if (Object.hasOwn(m, key as string) || key === '__proto__') bail();
      m[key as string] = v;
    } else (f.value as unknown[]).push(v);
  };
  const openCollection = (kind: 'map' | 'seq', indent: number, line: number, col: number): Frame => {
    const value: Record<string, unknown> | unknown[] = kind === 'map' ? {} : [];
    if (pending) {
      if (indent < pending.indent || (indent === pending.indent && (kind === 'map' || pending.parent.kind === 'seq')))
        bail();
      setValue(pending.parent, pending.key, value);
      positions.set(pending.path, [line, col]);
      const f: Frame = { indent, kind, value, path: pending.path };
      pending = undefined;
      stack.push(f);
      return f;
    }
    if (root !== undefined) bail();
    root = value;
    positions.set('', [line, col]);
    const f: Frame = { indent, kind, value, path: '' };
    stack.push(f);
    return f;
  };
  const closePending = () => {
    if (!pending) return;
    setValue(pending.parent, pending.key, null);
    positions.set(pending.path, [pending.line, pending.col]);
    pending = undefined;
  };

  /** A value after `key:` or `- ` on line `ln` at column `col` (0-based). */
  const value = (f: Frame, key: string | number, rest: string, ln: number, col: number, indent: number) => {
    const path = join(f.path, key);
    if (rest === '') {
      pending = { parent: f, key, path, indent, line: ln, col: col + 1 };
      return;
    }
    positions.set(path, [ln, col + 1]);
    lastScalarIndent = indent;
    if (rest.startsWith('[')) {
      if (!rest.endsWith(']')) bail();
      const inner = rest.slice(1, -1);
      const items: unknown[] = [];
      if (inner.trim() !== '') {
        // Items are plain (no commas) or double-quoted without commas inside.
        let offset = col + 1;
        for (const part of inner.split(',')) {
          const lead = part.length - part.trimStart().length;
          const item = part.trim();
          if (item === '') bail();
          if (item.startsWith('"') && !item.endsWith('"')) bail();
          positions.set(join(path, items.length), [ln, offset + lead + 1]);
          items.push(scalar(item, true));
          offset += part.length + 1;
        }
      }
      setValue(f, key, items);
      return;
    }
    if (rest.startsWith('{')) {
      if (!/^\{\s*\}$/.test(rest)) bail();
      setValue(f, key, {});
      return;
    }
    setValue(f, key, scalar(rest, false));
  };

  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!;
    const ln = i + 1;
    const trimmed = raw.trimStart();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const indent = raw.length - trimmed.length;
    if (/^\s*\t/.test(raw) || raw.slice(0, indent).includes('\t')) bail();
    if (indent === 0 && /^(---|\.\.\.|%)/.test(raw)) bail();
    const content = stripComment(trimmed);
    if (lastScalarIndent >= 0 && indent > lastScalarIndent && !pending) bail(); // a continued scalar
    lastScalarIndent = -1;
    let col = indent;
    let body = content;
    let isItem = false;
    if (body === '-' || body.startsWith('- ')) {
      isItem = true;
    }
    // Find or open the collection this line belongs to.
    let f: Frame | undefined;
    if (pending && indent >= pending.indent && !(indent === pending.indent && !isItem)) {
      f = openCollection(isItem ? 'seq' : 'map', indent, ln, col + 1);
    } else {
      closePending();
      while (stack.length > 0 && stack[stack.length - 1]!.indent > indent) stack.pop();
      // A sequence written at its key's indent ends at the next key of that map.
      if (
        !isItem &&
        stack.length > 1 &&
        stack[stack.length - 1]!.kind === 'seq' &&
        stack[stack.length - 1]!.indent === indent
      )
        stack.pop();
      f = stack[stack.length - 1];
      if (f === undefined) {
        if (root !== undefined) bail();
        f = openCollection(isItem ? 'seq' : 'map', indent, ln, col + 1);
      }
      if (f.indent !== indent || (f.kind === 'seq') !== isItem) bail();
    }
    if (isItem) {
      const seq = f.value as unknown[];
      body = body === '-' ? '' : body.slice(2);
      const lead = body.length - body.trimStart().length;
      body = body.trimStart();
      col += 2 + lead;
      if (body === '') bail(); // a nested block under "- ": not in the subset
      if (/^("[^"]*"|[^"\s[{][^:]*?):(\s|$)/.test(body)) {
        // "- key: value": a map whose keys sit at this column.
        const key = seq.length;
        const path = join(f.path, key);
        const m: Record<string, unknown> = {};
        seq.push(m);
        positions.set(path, [ln, col + 1]);
        const mf: Frame = { indent: col, kind: 'map', value: m, path };
        stack.push(mf);
        entry(mf, body, ln, col);
        continue;
      }
      value(f, seq.length, body, ln, col, indent);
      continue;
    }
    entry(f, body, ln, col);
  }
  closePending();
  if (root === undefined) bail();
  return { value: root, positions };

  function entry(f: Frame, body: string, ln: number, col: number): void {
    let key: string;
    let rest: string;
    if (body.startsWith('"')) {
      const end = body.indexOf('":');
      if (end < 0) bail();
      key = quoted(body.slice(0, end + 1));
      rest = body.slice(end + 2);
      if (rest !== '' && !/^\s/.test(rest)) bail();
      rest = rest.trimStart();
    } else {
      const m = /^([^\s:][^:]*?):(?:\s+|$)/.exec(body);
      if (!m) bail();
      key = m![1]!;
      if (!KEY_PLAIN.test(key)) bail();
      rest = body.slice(m![0].length);
    }
    const valueCol = col + body.length - rest.length;
    value(f, key, rest, ln, valueCol, col);
  }
}
