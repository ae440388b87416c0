/** YAML documents with positions: parse errors and schema errors both become issues with file:line. */
import {
  type Document,
  isMap,
  isSeq,
  LineCounter,
  type Pair,
  parseDocument,
  visit,
  type YAMLMap,
  type Node as YamlNode,
} from 'yaml';
import type { z } from 'zod';
import { type Issue, issue } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { type NodePos, PATH_SEP, parseFastYaml } from './yaml-fast.ts';

export interface YamlSource {
  readonly file: string;
  /** The document as plain data (what `doc.toJS()` gives). */
  readonly data: unknown;
  /** The `yaml` library's document, when the fast reader did not take the text. */
  readonly doc?: Document;
  readonly lines?: LineCounter;
  /** Node positions from the fast reader (`yaml-fast.ts`). */
  readonly fast?: ReadonlyMap<string, NodePos>;
}

/**
 * Parses YAML: the fast reader takes the plain block YAML that imports write; anything else (and every error) goes
 * through the `yaml` library.
 */
export function parseYaml(input: string, file: string): { source: YamlSource; issues: Issue[] } {
  // YAML line breaks are LF, CRLF and a lone CR (YAML 1.2, 5.4): a file written with CR endings is read line by line.
  const text = input.includes('\r') ? input.replace(/\r\n?/g, '\n') : input;
  const fast = parseFastYaml(text);
  if (fast) return { source: { file, data: fast.value, fast: fast.positions }, issues: [] };
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues: Issue[] = [];
  for (const e of doc.errors) {
    const lp = lines.linePos(e.pos[0]);
    issues.push(issue('yaml.syntax', e.message.split('\n')[0]!, filePos(file, lp.line, lp.col)));
  }
  for (const w of doc.warnings) {
    const lp = lines.linePos(w.pos[0]);
    issues.push(issue('yaml.warning', w.message.split('\n')[0]!, filePos(file, lp.line, lp.col), 'warning'));
  }
  let data: unknown;
  if (doc.errors.length === 0)
    try {
      data = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      // An alias to no anchor (ReferenceError) or an alias bomb (RangeError beyond maxAliasCount).
      const m = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
      issues.push(issue('yaml.alias', m, aliasPos(doc, lines, file)));
    }
  return { source: { file, data, doc, lines }, issues };
}

/** Where the first alias of the document is (the place to look when aliases cannot be resolved). */
function aliasPos(doc: Document, lines: LineCounter, file: string): Position {
  let at: number | undefined;
  visit(doc, {
    Alias(_, node) {
      at = node.range?.[0];
      return visit.BREAK;
    },
  });
  if (at === undefined) return filePos(file, 1);
  const lp = lines.linePos(at);
  return filePos(file, lp.line, lp.col);
}

const KEY_INDEX = new WeakMap<YAMLMap, Map<string, Pair>>();

/**
 * Position of the node at `path` (or of the nearest existing parent). Keys point at the key itself; the first pair
 * whose key matches wins. Each map's keys are indexed once, so scenarios with thousands of nodes stay linear.
 */
export function positionOf(src: YamlSource, path: readonly (string | number)[]): Position {
  if (src.fast) {
    for (let n = path.length; n >= 0; n--) {
      const p = src.fast.get(path.slice(0, n).join(PATH_SEP));
      if (p) return filePos(src.file, p[0], p[1]);
    }
    return filePos(src.file, 1);
  }
  if (!src.doc || !src.lines) return filePos(src.file, 1);
  let node: unknown = src.doc.contents;
  let best: YamlNode | undefined = node as YamlNode | undefined;
  for (const seg of path) {
    if (isMap(node)) {
      let index = KEY_INDEX.get(node);
      if (index === undefined) {
        index = new Map();
        for (const p of node.items) {
          const k = p.key as { value?: unknown } | null;
          if (k === null || typeof k !== 'object') continue;
          const name = String(k.value);
          if (!index.has(name)) index.set(name, p);
        }
        KEY_INDEX.set(node, index);
      }
      const pair = index.get(String(seg));
      if (!pair) break;
      node = pair.value;
      best = (pair.value as YamlNode | null) ?? (pair.key as YamlNode);
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      if (!node) break;
      best = node as YamlNode;
    } else break;
  }
  const range = best?.range;
  if (!range) return filePos(src.file, 1);
  const lp = src.lines.linePos(range[0]);
  return filePos(src.file, lp.line, lp.col);
}

/** Validates the document against a schema; schema errors name the position and what was expected. */
export function validateYaml<T>(src: YamlSource, schema: z.ZodType<T>): { value: T | undefined; issues: Issue[] } {
  const r = schema.safeParse(src.data);
  if (r.success) return { value: r.data, issues: [] };
  const issues = r.error.issues.map((zi) => {
    const path = zi.path.filter((p): p is string | number => typeof p !== 'symbol');
    const where = path.length > 0 ? `${path.join('.')}: ` : '';
    return issue('scenario.schema', `${where}${zi.message}`, positionOf(src, path));
  });
  return { value: undefined, issues };
}
