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
    const m = /^([A-Za-z0-9_.\-/:*]+)\s*=\s*(.*)$/.exec(line);
    if (!m) {
      issues.push(issue('sysctl.syntax', `expected "key = value", found "${line}"`, filePos(file, i + 1)));
      return;
    }
    // Keys may be written with slashes (net/ipv4/conf/all/arp_ignore) — normalise to dots.
    out.set(m[1]!.replace(/\//g, '.'), { value: m[2]!.trim(), pos: filePos(file, i + 1) });
  });
  return { value: out, issues };
}
