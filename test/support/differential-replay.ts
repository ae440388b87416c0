/**
 * What lvsdoctor says for one differential case (filter XMLs + a binding): libvirt's define errors, its refusal of
 * the binding, or the per-port slices of the four listings. Shared by the differential test against a real libvirt
 * and the replay of its recorded disagreements (fixtures/libvirt/differential/).
 */
import { filterRegistry } from '../../src/libvirt/builtin-filters.ts';
import { compileBinding } from '../../src/libvirt/compile.ts';
import { SUBCHAIN_ORDER_ISSUE } from '../../src/libvirt/compile-reference.ts';
import type { NwFilter } from '../../src/libvirt/nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from '../../src/libvirt/nwfilter-xml.ts';
import { renderCompiled } from '../../src/libvirt/render-outputs.ts';
import { portSlice } from './port-slice.ts';

export const DIFFERENTIAL_FORMATS = [
  ['ebtables-nat-L', 'ebtables-nat-L.txt'],
  ['ebtables-save', 'ebtables-save.txt'],
  ['iptables-save', 'iptables-save.txt'],
  ['ip6tables-save', 'ip6tables-save.txt'],
] as const;

export type DifferentialFormat = (typeof DIFFERENTIAL_FORMATS)[number][0];

export interface ReplayResult {
  readonly defineErrors: readonly string[];
  readonly bindError?: string;
  /**
   * The binding has sub-chains of equal priority: libvirt's order of the jumps to them changes with each libvirtd
   * start, so listings are compared with those jumps in sorted order (`sameUpToSubChainOrder`).
   */
  readonly unorderedSubChains?: boolean;
  readonly out: Readonly<Partial<Record<DifferentialFormat, string>>>;
}

/**
 * The ipsets the differential lab creates in its namespace before binding (name, `ipset create` family): the
 * generator also draws a name that is not among them. Recordings made before the lab created sets have none.
 */
export const DIFFERENTIAL_IPSETS: readonly (readonly [string, 'ipv4' | 'ipv6'])[] = [
  ['lvsdset', 'ipv4'],
  ['blocklist', 'ipv4'],
  ['lvsdset6', 'ipv6'],
];

/** `files`: `binding.xml` and one XML per custom filter; `ipsets`: the sets that existed where it was recorded. */
export function replayCase(
  files: ReadonlyMap<string, string>,
  port: string,
  otherPorts: RegExp,
  ipsets: ReadonlyMap<string, 'ipv4' | 'ipv6'> = new Map(),
): ReplayResult {
  const customs: NwFilter[] = [];
  const defineErrors: string[] = [];
  let bindingText = '';
  for (const [file, text] of files) {
    if (file === 'binding.xml') {
      bindingText = text;
      continue;
    }
    const r = readNwfilterXml(text, file);
    const err = r.issues.find((i) => i.severity === 'error');
    if (err) defineErrors.push(err.message);
    else if (r.value) customs.push(r.value);
  }
  if (defineErrors.length > 0) return { defineErrors, out: {} };
  const b = readFilterBindingXml(bindingText, 'binding.xml').value;
  if (b === undefined) return { defineErrors, bindError: 'unreadable binding', out: {} };
  const c = compileBinding(b, filterRegistry(customs), { ipsets });
  if (c.mode === 'failed') return { defineErrors, bindError: c.failure ?? 'failed', out: {} };
  const out: Partial<Record<DifferentialFormat, string>> = {};
  for (const [fmt] of DIFFERENTIAL_FORMATS) out[fmt] = portSlice(renderCompiled(c, fmt), port, otherPorts);
  const unordered = c.issues.some((i) => i.code === SUBCHAIN_ORDER_ISSUE);
  return { defineErrors, out, ...(unordered ? { unorderedSubChains: true } : {}) };
}

/** A listing with each run of consecutive jumps to a port's sub-chains (`-j I-port-chain`) sorted. */
function sortSubChainJumps(text: string): string {
  const lines = text.split('\n');
  const jump = /-j [IO]-\S+$/;
  for (let i = 0; i < lines.length; ) {
    if (!jump.test(lines[i]!)) {
      i++;
      continue;
    }
    let j = i;
    while (j < lines.length && jump.test(lines[j]!)) j++;
    const run = lines.slice(i, j).sort();
    lines.splice(i, j - i, ...run);
    i = j;
  }
  return lines.join('\n');
}

/** Whether two listings are the same, the order of the jumps to equal-priority sub-chains aside when `unordered`. */
export function sameUpToSubChainOrder(a: string, b: string, unordered: boolean): boolean {
  return a === b || (unordered && sortSubChainJumps(a) === sortSubChainJumps(b));
}

const UNRESOLVABLE = 'Cannot instantiate filter due to unresolvable variables or unavailable list elements:';

/**
 * libvirt's messages start with `internal error: `; lvsdoctor's issues do not. The names of unresolvable variables
 * come in libvirt's random hash order (and an empty name shows only as a stray `, `): compared as a set.
 */
export function sameLibvirtMessage(a: string | undefined, b: string | undefined): boolean {
  const n = (m: string | undefined) => {
    const t = m?.replace(/^internal error: /, '').trim();
    if (t === undefined || !t.startsWith(UNRESOLVABLE)) return t;
    const names = t
      .slice(UNRESOLVABLE.length)
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .sort();
    return `${UNRESOLVABLE} ${names.join(', ')}`;
  };
  return n(a) === n(b);
}
