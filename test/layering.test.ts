import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
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
      if (!rel.includes('/')) continue; // src/index.ts re-exports everything
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

  it('keeps the page (src/web/client) to the JSON contract: no domain code runs in the browser', () => {
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
