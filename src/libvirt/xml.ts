/**
 * A small, safe layer over @xmldom/xmldom for libvirt's XML formats: DOCTYPEs are refused (no entity expansion),
 * parse problems become issues with file:line, and every element is turned into a plain tree that keeps its line.
 */
import { DOMParser } from '@xmldom/xmldom';
import { LIMITS } from '../source/files.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface XmlElement {
  readonly name: string;
  /** Attributes in document order. */
  readonly attrs: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** Concatenated text content of direct text children, trimmed. */
  readonly text: string;
  readonly pos: Position;
}

interface DomNodeLike {
  readonly nodeType: number;
  readonly nodeName: string;
  readonly nodeValue: string | null;
  readonly lineNumber?: number;
  readonly columnNumber?: number;
  readonly childNodes: { readonly length: number; item(i: number): DomNodeLike | null };
  readonly attributes?: { readonly length: number; item(i: number): { name: string; value: string } | null };
}

/** Deepest element nesting accepted: libxml2's own limit (xmlParserMaxDepth without XML_PARSE_HUGE), so libvirt
 * refuses such documents too ("Excessive depth in document: 256"). */
export const MAX_XML_DEPTH = 256;

class TooDeep {
  constructor(readonly line: number) {}
}

function convert(node: DomNodeLike, file: string, depth = 1): XmlElement {
  if (depth > MAX_XML_DEPTH) throw new TooDeep(node.lineNumber ?? 0);
  const attrs = new Map<string, string>();
  if (node.attributes) {
    for (let i = 0; i < node.attributes.length; i++) {
      const a = node.attributes.item(i);
      if (a) attrs.set(a.name, a.value);
    }
  }
  const children: XmlElement[] = [];
  let text = '';
  for (let i = 0; i < node.childNodes.length; i++) {
    const c = node.childNodes.item(i);
    if (!c) continue;
    if (c.nodeType === 1) children.push(convert(c, file, depth + 1));
    else if (c.nodeType === 3 || c.nodeType === 4) text += c.nodeValue ?? '';
  }
  return { name: node.nodeName, attrs, children, text: text.trim(), pos: filePos(file, node.lineNumber ?? 0) };
}

/** The number of the last line of `text` (1 for an empty text), counted without splitting. */
function lastLine(text: string): number {
  let n = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < text.length - 1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function lineOf(message: string): number {
  const m = /line:?\s*(\d+)/i.exec(message);
  return m ? Number(m[1]) : 0;
}

/**
 * Where a `<!DOCTYPE` declaration starts, or -1: markup only, so the word inside a comment or a CDATA section is
 * text, not a declaration. One pass (indexOf from where the last construct ended): linear in the text.
 */
function doctypeAt(text: string): number {
  let i = 0;
  for (;;) {
    const j = text.indexOf('<!', i);
    if (j < 0) return -1;
    if (text.startsWith('<!--', j)) {
      const k = text.indexOf('-->', j + 4);
      if (k < 0) return -1; // an unterminated comment: the parser reports it
      i = k + 3;
    } else if (text.startsWith('<![CDATA[', j)) {
      const k = text.indexOf(']]>', j + 9);
      if (k < 0) return -1;
      i = k + 3;
    } else if (text.slice(j + 2, j + 9).toUpperCase() === 'DOCTYPE') return j;
    else i = j + 2;
  }
}

function lineAt(text: string, index: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < index; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Characters XML 1.0 forbids anywhere (libxml2 refuses them: "PCDATA invalid Char value"). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these control characters are what is refused
const FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/;

/** Parses XML text into an element tree; never throws. A UTF-8 byte-order mark at the start is accepted. */
export function readXml(input: string, file: string): { root: XmlElement | undefined; issues: Issue[] } {
  const issues: Issue[] = [];
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  if (text.length > LIMITS.xmlFile) {
    issues.push(
      issue(
        'xml-too-big',
        `${text.length} characters; XML documents of more than ${LIMITS.xmlFile / 1024 / 1024} MiB are not read`,
        filePos(file, 0),
      ),
    );
    return { root: undefined, issues };
  }
  const bad = FORBIDDEN.exec(text);
  if (bad) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, '0');
    issues.push(
      issue(
        'xml-syntax',
        `character U+${code.padStart(4, '0')} is not allowed in XML`,
        filePos(file, lineAt(text, bad.index)),
      ),
    );
    return { root: undefined, issues };
  }
  const doctype = doctypeAt(text);
  if (doctype >= 0) {
    issues.push(
      issue(
        'xml-doctype',
        'DOCTYPE declarations are not accepted in libvirt XML',
        filePos(file, lineAt(text, doctype)),
      ),
    );
    return { root: undefined, issues };
  }
  let fatal = false;
  const parser = new DOMParser({
    onError: (level: 'warning' | 'error' | 'fatalError', msg: string, context?: unknown) => {
      // xmldom passes its handler, whose locator says where the parser stood.
      const loc = (context as { locator?: { lineNumber?: number; columnNumber?: number } } | undefined)?.locator;
      // Without a locator (e.g. 'missing root element', reported at the end of the document) and no line in the
      // message, the parser stood at the end of the text: its last line.
      const pos = loc?.lineNumber
        ? filePos(file, loc.lineNumber, loc.columnNumber)
        : filePos(file, lineOf(msg) || lastLine(text));
      if (level === 'warning') {
        issues.push(issue('xml-warning', msg.split('\n')[0] ?? msg, pos, 'warning'));
        return;
      }
      if (level === 'fatalError') fatal = true;
      issues.push(issue('xml-syntax', msg.split('\n')[0] ?? msg, pos));
    },
  });
  let doc: unknown;
  try {
    doc = parser.parseFromString(text, 'text/xml');
  } catch (e) {
    // xmldom turns fatal errors into exceptions after reporting them to onError.
    if (!fatal)
      issues.push(issue('xml-syntax', e instanceof Error ? e.message : String(e), filePos(file, lineOf(String(e)))));
    return { root: undefined, issues };
  }
  const root = (doc as { documentElement: DomNodeLike | null } | undefined)?.documentElement ?? null;
  if (root === null || fatal) {
    if (issues.length === 0) issues.push(issue('xml-syntax', 'no root element', filePos(file, 1)));
    return { root: undefined, issues };
  }
  try {
    return { root: convert(root, file), issues };
  } catch (e) {
    if (!(e instanceof TooDeep)) throw e;
    issues.push(
      issue(
        'xml-too-deep',
        `elements nested more than ${MAX_XML_DEPTH} deep (libxml2, and so libvirt, refuses them too)`,
        filePos(file, e.line),
      ),
    );
    return { root: undefined, issues };
  }
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
