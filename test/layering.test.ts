import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Each folder may import only from the folders listed for it (and itself). See docs/architecture.md.
const ALLOWED: Record<string, readonly string[]> = {
  addr: [],
  source: [],
  wire: ['addr', 'source'],
  capture: ['addr', 'source', 'wire'],
  netfilter: ['addr', 'source', 'wire'],
  ipvs: ['addr', 'source', 'wire'],
  libvirt: ['addr', 'source', 'wire', 'netfilter'],
  proxmox: ['addr', 'source', 'wire', 'netfilter'],
  topology: [
    'addr',
    'source',
    'wire',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
  ],
  trace: [
    'addr',
    'source',
    'wire',
    'capture',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'topology',
  ],
  diagnose: [
    'addr',
    'source',
    'wire',
    'capture',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'topology',
    'trace',
  ],
  collect: [
    'addr',
    'source',
    'wire',
    'capture',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'topology',
    'trace',
    'diagnose',
  ],
  lab: [
    'addr',
    'source',
    'wire',
    'capture',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'proxmox',
    'topology',
    'trace',
    'diagnose',
  ],
  web: [
    'addr',
    'source',
    'wire',
    'capture',
    'netfilter',
    'ipvs',
    'libvirt',
    'proxmox',
    'topology',
    'trace',
    'diagnose',
  ],
  cli: ['*'],
};

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : /\.tsx?$/.test(p) ? [p] : [];
  });
}

/** Relative imports of a source file (static, type-only and dynamic), resolved to paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.\.?\/[^']+)'/g)].map((m) => resolve(dirname(file), m[1]!));
}

/** The strongly connected components of more than one file (Tarjan), each sorted. */
function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) out.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

/**
 * The entry points of the product: the CLI (bundled by scripts/build.mjs), the web page script, and the offline
 * report's what-if engine with the stand-ins for its `node:` imports and `Buffer` (esbuild resolves those to them,
 * see page.ts).
 */
const ENTRY_POINTS = [
  'cli/main.ts',
  'web/client/main.tsx',
  'web/report-engine.ts',
  'web/browser/node-fs.ts',
  'web/browser/node-path.ts',
  'web/browser/node-crypto.ts',
  'web/browser/buffer.ts',
];

/**
 * Files (or folders, ending with `/`) no front end reaches yet, each with why. The test fails once nothing under an
 * entry is unreached any more (then delete the entry). Test-only helpers belong in test/support/, never here.
 */
const NOT_YET_REACHABLE: Readonly<Record<string, string>> = {};
/** Whether the file `r` falls under the exemption `e`. */
const under = (e: string, r: string) => (e.endsWith('/') ? r.startsWith(e) : r === e);

describe('module layering', () => {
  const src = join(import.meta.dirname, '..', 'src');
  const files = walk(src).filter((f) => !/\.test\.tsx?$/.test(f));

  it('finds source files to check', () => {
    expect(files.length).toBeGreaterThan(10);
  });

  it('lets every folder import only the folders below it', () => {
    const violations: string[] = [];
    for (const file of files) {
      const rel = relative(src, file);
      const folder = rel.split('/')[0]!;
      if (!rel.includes('/')) continue; // a file directly in src/ belongs to no folder
      const allowed = ALLOWED[folder];
      if (!allowed) {
        violations.push(`${rel}: folder "${folder}" has no layering rule`);
        continue;
      }
      if (allowed.includes('*')) continue;
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/from '(\.\.?\/[^']+)'/g)) {
        const target = relative(src, join(file, '..', m[1]!)).split('/')[0]!;
        if (target !== folder && !allowed.includes(target)) violations.push(`${rel} imports ${m[1]}`);
      }
    }
    expect(violations).toEqual([]);
  });

  it('has no import cycle inside a folder (type-only imports count)', () => {
    const all = new Set(files);
    const graph = new Map(
      files.map((f) => [f, importsOf(f).filter((t) => all.has(t) && dirname(t) === dirname(f))] as const),
    );
    expect(cycles(graph).map((c) => c.map((f) => relative(src, f)).join(' ⇄ '))).toEqual([]);
  });

  it('has no file in src/ that only tests reach (test helpers live in test/support/)', () => {
    const all = new Set(files);
    const seen = new Set<string>();
    const todo = ENTRY_POINTS.map((e) => join(src, e));
    for (let f = todo.pop(); f !== undefined; f = todo.pop()) {
      if (seen.has(f) || !all.has(f)) continue;
      seen.add(f);
      todo.push(...importsOf(f));
    }
    const unreached = files.map((f) => relative(src, f)).filter((r) => !seen.has(join(src, r)));
    expect(unreached.filter((r) => !Object.keys(NOT_YET_REACHABLE).some((e) => under(e, r)))).toEqual([]);
    // An exemption under which every file is now reached (or gone) is stale.
    const stale = Object.keys(NOT_YET_REACHABLE).filter((e) => !unreached.some((r) => under(e, r)));
    expect(stale).toEqual([]);
  });

  it('keeps the page (src/web/client) to the JSON contract: it draws, the domain code decides (server or report engine)', () => {
    const client = join(src, 'web', 'client');
    const violations: string[] = [];
    const pageFiles = files.filter((f) => f.startsWith(client));
    expect(pageFiles.length).toBeGreaterThan(3);
    for (const file of pageFiles) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/from '([^']+)'/g)) {
        const spec = m[1]!;
        if (!spec.startsWith('.')) {
          if (!/^preact(\/|$)/.test(spec)) violations.push(`${relative(src, file)} imports package ${spec}`);
          continue;
        }
        const target = join(file, '..', spec);
        if (!target.startsWith(client) && target !== join(src, 'web', 'contract.ts'))
          violations.push(`${relative(src, file)} imports ${spec}`);
      }
    }
    expect(violations).toEqual([]);
  });
});
