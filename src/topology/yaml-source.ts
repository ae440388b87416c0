/** YAML documents with positions: parse errors and schema errors both become issues with file:line. */
import {
  type Document,
  isMap,
  isSeq,
  LineCounter,
  type Pair,
  parseDocument,
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
export function parseYaml(text: string, file: string): { source: YamlSource; issues: Issue[] } {
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
  const data = doc.errors.length > 0 ? undefined : doc.toJS({ maxAliasCount: 100 });
  return { source: { file, data, doc, lines }, issues };
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
