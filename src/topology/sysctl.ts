/** Reader for `sysctl -a` output (`key = value`) and for sysctl.conf-style files (`key=value`, comments). */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface SysctlEntry {
  readonly value: string;
  readonly pos: Position;
}

export type Sysctls = ReadonlyMap<string, SysctlEntry>;

export function readSysctl(text: string, file: string): ReadResult<Map<string, SysctlEntry>> {
  const issues: Issue[] = [];
  const out = new Map<string, SysctlEntry>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    if (i === 0 && /[#$]\s*sysctl\b/.test(line)) return;
    // A key holds any interface name the kernel accepts (`net.ipv4.conf.e$(x).rp_filter`): anything but white space.
    const m = /^([^\s=]+)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      const shown = line.length > 160 ? `${line.slice(0, 160)}…` : line;
      issues.push(issue('sysctl.syntax', `expected "key = value", found "${shown}"`, filePos(file, i + 1)));
      return;
    }
    // Keys may be written with slashes (net/ipv4/conf/all/arp_ignore) — normalise to dots.
    out.set(m[1]!.replace(/\//g, '.'), { value: m[2]!.trim(), pos: filePos(file, i + 1) });
  });
  return { value: out, issues };
}
