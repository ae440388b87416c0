/**
 * ipsets of type `hash:net` (the only type pve-firewall creates; also what `ipset save` lists): entries with prefix
 * lengths and `nomatch` exceptions. Matching follows the kernel: the most specific entry holding the address decides,
 * and a `nomatch` entry makes the address not a member. IPv4 only in the evaluator. Includes a reader for `ipset save`.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { ipv4Mask } from '../addr/prefix.ts';
import { type Issue, issue, type ReadResult, unsupported } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';

export interface IpsetEntry {
  /** Canonical text (IPv4 dotted, IPv6 compressed), masked. */
  readonly addr: string;
  readonly prefixLen: number;
  readonly nomatch: boolean;
}

export interface IpsetSet {
  readonly name: string;
  readonly family: 'inet' | 'inet6';
  readonly type: 'hash:net';
  readonly entries: readonly IpsetEntry[];
  /** IPv4 entries by prefix length, most specific first, for lookups. */
  readonly v4: readonly { readonly len: number; readonly nets: ReadonlyMap<number, boolean> }[];
}

function build(name: string, family: 'inet' | 'inet6', entries: IpsetEntry[]): IpsetSet {
  const byLen = new Map<number, Map<number, boolean>>();
  if (family === 'inet')
    for (const e of entries) {
      const a = parseIpv4(e.addr);
      if (a === undefined) continue;
      let m = byLen.get(e.prefixLen);
      if (!m) {
        m = new Map();
        byLen.set(e.prefixLen, m);
      }
      m.set((a & ipv4Mask(e.prefixLen)) >>> 0, e.nomatch);
    }
  const v4 = [...byLen].sort((a, b) => b[0] - a[0]).map(([len, nets]) => ({ len, nets }));
  return { name, family, type: 'hash:net', entries, v4 };
}

/** A set from `cidr` / `cidr nomatch` entries. Entries that are not addresses of the family are left out. */
export function ipsetFromEntries(
  name: string,
  family: 'inet' | 'inet6',
  entries: readonly { readonly cidr: string; readonly nomatch: boolean }[],
): IpsetSet {
  const out: IpsetEntry[] = [];
  for (const e of entries) {
    const p = parseEntry(e.cidr, family);
    if (p) out.push({ ...p, nomatch: e.nomatch });
  }
  return build(name, family, out);
}

function parseEntry(cidr: string, family: 'inet' | 'inet6'): { addr: string; prefixLen: number } | undefined {
  const [a, l] = cidr.split('/');
  const max = family === 'inet' ? 32 : 128;
  const len = l === undefined ? max : /^\d+$/.test(l) ? Number(l) : Number.NaN;
  if (!(len >= 0 && len <= max)) return undefined;
  if (family === 'inet') {
    const v = parseIpv4(a!);
    if (v === undefined) return undefined;
    const m = (v & ipv4Mask(len)) >>> 0;
    return { addr: `${m >>> 24}.${(m >>> 16) & 255}.${(m >>> 8) & 255}.${m & 255}`, prefixLen: len };
  }
  const v = parseIpv6(a!);
  return v === undefined ? undefined : { addr: v, prefixLen: len };
}

/** Kernel hash:net membership: the longest prefix holding the address decides; `nomatch` there = not a member. */
export function ipsetContains(set: IpsetSet, addr: Ipv4): boolean {
  if (set.family !== 'inet') return false;
  for (const { len, nets } of set.v4) {
    const hit = nets.get((addr & ipv4Mask(len)) >>> 0);
    if (hit !== undefined) return !hit;
  }
  return false;
}

/** Reads `ipset save` (or `ipset restore` input): `create NAME hash:net …` and `add NAME CIDR [nomatch]` lines. */
export function readIpsetSave(text: string, file: string): ReadResult<Map<string, IpsetSet>> {
  const issues: Issue[] = [];
  const sets = new Map<string, { family: 'inet' | 'inet6'; entries: IpsetEntry[] }>();
  for (const [idx, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    const pos = filePos(file, idx + 1);
    if (line === '' || line.startsWith('#')) continue;
    const w = line.split(/\s+/);
    if (w[0] === 'create') {
      if (w[2] !== 'hash:net') {
        issues.push(unsupported('ipset-type', `set ${w[1]} of type ${w[2]} is not modelled (only hash:net)`, pos));
        continue;
      }
      const fi = w.indexOf('family');
      const family = fi > 0 && w[fi + 1] === 'inet6' ? 'inet6' : 'inet';
      sets.set(w[1]!, { family, entries: [] });
    } else if (w[0] === 'add') {
      const s = sets.get(w[1] ?? '');
      if (!s) {
        issues.push(issue('ipset-unknown-set', `'add' to set ${w[1]}, which was not created before`, pos));
        continue;
      }
      const e = parseEntry(w[2] ?? '', s.family);
      if (!e) {
        issues.push(
          issue(
            'ipset-bad-entry',
            `expected an ${s.family === 'inet' ? 'IPv4' : 'IPv6'} address[/length], got '${w[2] ?? ''}'`,
            pos,
          ),
        );
        continue;
      }
      s.entries.push({ ...e, nomatch: w.slice(3).includes('nomatch') });
    } else if (w[0] !== 'flush' && w[0] !== 'destroy' && w[0] !== 'swap')
      issues.push(issue('ipset-bad-line', `expected 'create' or 'add', got '${line}'`, pos));
  }
  const value = new Map([...sets].map(([n, s]) => [n, build(n, s.family, s.entries)]));
  return { value, issues };
}
