/**
 * A small, safe layer over @xmldom/xmldom for libvirt's XML formats: DOCTYPEs are refused (no entity expansion),
 * parse problems become issues with file:line, and every element is turned into a plain tree that keeps its line.
 */
import { DOMParser } from '@xmldom/xmldom';
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

function convert(node: DomNodeLike, file: string): XmlElement {
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
    if (c.nodeType === 1) children.push(convert(c, file));
    else if (c.nodeType === 3 || c.nodeType === 4) text += c.nodeValue ?? '';
  }
  return { name: node.nodeName, attrs, children, text: text.trim(), pos: filePos(file, node.lineNumber ?? 0) };
}

function lineOf(message: string): number {
  const m = /line:?\s*(\d+)/i.exec(message);
  return m ? Number(m[1]) : 0;
}

/** Parses XML text into an element tree; never throws. */
export function readXml(text: string, file: string): { root: XmlElement | undefined; issues: Issue[] } {
  const issues: Issue[] = [];
  const doctype = /<!DOCTYPE/i.exec(text);
  if (doctype) {
    const line = text.slice(0, doctype.index).split('\n').length;
    issues.push(issue('xml-doctype', 'DOCTYPE declarations are not accepted in libvirt XML', filePos(file, line)));
    return { root: undefined, issues };
  }
  let fatal = false;
  const parser = new DOMParser({
    onError: (level: 'warning' | 'error' | 'fatalError', msg: string, context?: unknown) => {
      // xmldom passes its handler, whose locator says where the parser stood.
      const loc = (context as { locator?: { lineNumber?: number; columnNumber?: number } } | undefined)?.locator;
      const pos = loc?.lineNumber ? filePos(file, loc.lineNumber, loc.columnNumber) : filePos(file, lineOf(msg));
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
  return { root: convert(root, file), issues };
}

export function child(el: XmlElement, name: string): XmlElement | undefined {
  return el.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}
