/**
 * `lvsdoctor nwfilter compile BINDING.xml [--filter-dir DIR]... --format FORMAT [--interface MAC]`: prints what the
 * host shows after libvirt 9.0 instantiates the binding. BINDING.xml is a `<filterbinding>` (as
 * `virsh nwfilter-binding-dumpxml` prints it), a domain XML (`<domain>`, first interface with a `<filterref>` or the
 * one with `--interface MAC`) or a single `<interface>` element. Custom filters in the directories override built-ins
 * of the same name (later directories override earlier ones).
 *
 * Exit codes: 0 printed; 1 libvirt would refuse the binding (its reason on stderr); 2 bad input (issues with
 * file:line on stderr).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { parseMac } from '../addr/mac.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBinding } from '../libvirt/compile.ts';
import { bindingForInterface, readDomainXml } from '../libvirt/domain-xml.ts';
import type { NwFilter, NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { isOutputFormat, OUTPUT_FORMATS, renderCompiled } from '../libvirt/render-outputs.ts';
import { readXml } from '../libvirt/xml.ts';
import { appendAll } from '../source/arrays.ts';
import { readInputText } from '../source/files.ts';
import { formatIssue, type Issue, issue } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import { type Io, reportIssues } from './io.ts';

export interface NwfilterCompileOptions {
  readonly filterDirs: readonly string[];
  readonly format: string;
  /** Domain XML only: the MAC of the interface to compile (default: the first interface with a filterref). */
  readonly interfaceMac?: string;
}

const report = reportIssues;

function resolvePath(io: Io, p: string): { full: string; shown: string } {
  const cwd = io.cwd ?? process.cwd();
  const full = isAbsolute(p) ? p : join(cwd, p);
  return { full, shown: p };
}

/** Reads every `*.xml` of the directories; a later definition of a name overrides an earlier one. */
export function readFilterDirs(io: Io, dirs: readonly string[]): { filters: NwFilter[]; issues: Issue[] } {
  const filters = new Map<string, NwFilter>();
  const issues: Issue[] = [];
  for (const d of dirs) {
    const { full, shown } = resolvePath(io, d);
    if (!existsSync(full) || !statSync(full).isDirectory()) {
      issues.push(issue('nwfilter-dir', `filter directory "${shown}" does not exist`, filePos(shown, 0)));
      continue;
    }
    for (const name of readdirSync(full).sort()) {
      if (!name.endsWith('.xml')) continue;
      const file = join(shown, name);
      const r = readNwfilterXml(readInputText(join(full, name)), file);
      appendAll(issues, r.issues);
      if (r.value) filters.set(r.value.name, r.value);
    }
  }
  return { filters: [...filters.values()], issues };
}

/** The binding described by a `<filterbinding>`, `<domain>` or `<interface>` document. */
export function readBindingInput(
  text: string,
  file: string,
  interfaceMac?: string,
): { binding: NwFilterBinding | undefined; issues: Issue[] } {
  const { root, issues } = readXml(text, file);
  if (root === undefined) return { binding: undefined, issues };
  if (root.name === 'filterbinding') {
    const r = readFilterBindingXml(text, file);
    return { binding: r.value, issues: [...r.issues] };
  }
  let domainText = text;
  if (root.name === 'interface') {
    // Wrap the element into a domain on the same lines, so positions stay right.
    const body = text.replace(/<\?xml[^>]*\?>/, (m) => ' '.repeat(m.length));
    domainText = `<domain><name>interface</name><devices>${body}</devices></domain>`;
  } else if (root.name !== 'domain') {
    issues.push(
      issue('nwfilter-input-root', `expected <filterbinding>, <domain> or <interface>, found <${root.name}>`, root.pos),
    );
    return { binding: undefined, issues };
  }
  const d = readDomainXml(domainText, file);
  const all = [...d.issues];
  if (d.value === undefined) return { binding: undefined, issues: all };
  const want = interfaceMac === undefined ? undefined : parseMac(interfaceMac);
  if (interfaceMac !== undefined && want === undefined) {
    all.push(issue('nwfilter-interface-mac', `--interface "${interfaceMac}" is not a MAC address`));
    return { binding: undefined, issues: all };
  }
  const iface = d.value.interfaces.find((i) => (want === undefined ? i.filterref !== undefined : i.mac === want));
  if (iface === undefined) {
    all.push(
      issue(
        'nwfilter-no-interface',
        want === undefined
          ? 'no interface with a <filterref> in this document'
          : `no interface with MAC ${want} in this document`,
        d.value.origin.pos,
      ),
    );
    return { binding: undefined, issues: all };
  }
  if (iface.filterref === undefined) {
    all.push(issue('nwfilter-no-filterref', `interface ${iface.mac ?? ''} has no <filterref>`, iface.origin.pos));
    return { binding: undefined, issues: all };
  }
  let portdev = iface.targetDev;
  if (portdev === undefined) {
    portdev = 'vnet0';
    all.push(
      issue(
        'nwfilter-portdev-default',
        'interface has no <target dev=>: libvirt names the tap at start-up; using vnet0',
        iface.origin.pos,
        'info',
      ),
    );
  }
  const b = bindingForInterface(d.value, iface, portdev);
  appendAll(all, b.issues);
  return { binding: b.value, issues: all };
}

/** Runs `nwfilter compile`; returns the exit code. */
export function runNwfilterCompile(io: Io, bindingFile: string, options: NwfilterCompileOptions): number {
  if (!isOutputFormat(options.format)) {
    io.stderr(`error: --format must be one of ${OUTPUT_FORMATS.join(', ')}, not "${options.format}"\n`);
    return 2;
  }
  const { full, shown } = resolvePath(io, bindingFile);
  if (!existsSync(full) || !statSync(full).isFile()) {
    report(io, [issue('nwfilter-input-missing', `file "${shown}" does not exist`, filePos(shown, 0))]);
    return 2;
  }
  const shownFile = isAbsolute(bindingFile) ? relative(io.cwd ?? process.cwd(), full) || bindingFile : shown;
  const input = readBindingInput(readInputText(full), shownFile, options.interfaceMac);
  const dirs = readFilterDirs(io, options.filterDirs);
  const inputBad = report(io, [...input.issues, ...dirs.issues]);
  if (inputBad || input.binding === undefined) return 2;
  const compiled = compileBinding(input.binding, filterRegistry(dirs.filters));
  const missing = compiled.issues.filter((i) => i.code === 'nwfilter-missing' || i.code === 'nwfilter-loop');
  if (missing.length > 0) {
    report(io, compiled.issues);
    return 2;
  }
  if (compiled.mode === 'failed') {
    for (const i of compiled.issues) if (i.severity !== 'error') io.stderr(`${formatIssue(i)}\n`);
    io.stderr(`libvirt refuses the binding: ${compiled.failure ?? 'unknown reason'}\n`);
    return 1;
  }
  for (const i of compiled.issues) io.stderr(`${formatIssue(i)}\n`);
  io.stdout(renderCompiled(compiled, options.format));
  return 0;
}
