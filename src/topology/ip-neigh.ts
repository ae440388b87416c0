/**
 * Reader for `ip -j neigh` (JSON) and `ip neigh show` (text): a machine's neighbour (ARP) cache. IPv6 entries are
 * skipped (the model's caches are IPv4). Entries without a link-layer address (FAILED, INCOMPLETE) are kept with
 * `mac` undefined: they are not usable, and the loader leaves them out.
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface NeighInfo {
  readonly ip: Ipv4;
  readonly dev: string;
  readonly mac?: Mac;
  /** NUD states as `ip` prints them (`REACHABLE`, `STALE`, `PERMANENT`…). */
  readonly states: readonly string[];
  readonly pos: Position;
}

/** States in which the kernel uses the entry's address without asking again first. */
const USABLE = new Set(['REACHABLE', 'STALE', 'DELAY', 'PROBE', 'PERMANENT', 'NOARP']);

/** True when the kernel would send to the entry's MAC without an ARP exchange first. */
export function neighUsable(n: NeighInfo): boolean {
  return n.mac !== undefined && n.states.some((s) => USABLE.has(s));
}

export function readIpNeigh(text: string, file: string): ReadResult<NeighInfo[]> {
  if (/^\s*[[{]/.test(text)) return readIpNeighJson(text, file);
  const issues: Issue[] = [];
  const out: NeighInfo[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const pos = filePos(file, i + 1);
    const w = line.split(/\s+/);
    const dst = w[0]!;
    if (dst.includes(':') && parseIpv4(dst) === undefined) return; // IPv6
    const ip = parseIpv4(dst);
    const devAt = w.indexOf('dev');
    if (ip === undefined || devAt < 0 || !w[devAt + 1]) {
      issues.push(
        issue(
          'ip-neigh.line',
          `expected "ADDRESS dev DEV [lladdr MAC] STATE" as \`ip neigh show\` prints it, got "${line}"`,
          pos,
          'warning',
        ),
      );
      return;
    }
    const llAt = w.indexOf('lladdr');
    let mac: Mac | undefined;
    if (llAt >= 0) {
      mac = parseMac(w[llAt + 1] ?? '');
      if (mac === undefined) {
        issues.push(issue('ip-neigh.mac', `expected a MAC address after lladdr, got "${w[llAt + 1] ?? ''}"`, pos));
        return;
      }
    }
    const states = w.filter((x) => /^[A-Z]+$/.test(x));
    out.push({ ip, dev: w[devAt + 1]!, ...(mac ? { mac } : {}), states, pos });
  });
  return { value: out, issues };
}

interface JNeigh {
  dst?: unknown;
  dev?: unknown;
  lladdr?: unknown;
  state?: unknown;
}

function readIpNeighJson(text: string, file: string): ReadResult<NeighInfo[]> {
  const issues: Issue[] = [];
  let rows: unknown;
  try {
    rows = JSON.parse(text);
  } catch (e) {
    const m = /position (\d+)/.exec((e as Error).message);
    const line = m ? text.slice(0, Number(m[1])).split('\n').length : 1;
    return {
      value: undefined,
      issues: [issue('ip-neigh.json', `not valid \`ip -j neigh\` JSON: ${(e as Error).message}`, filePos(file, line))],
    };
  }
  if (!Array.isArray(rows))
    return {
      value: undefined,
      issues: [issue('ip-neigh.json', 'expected a JSON array of neighbour entries (`ip -j neigh`)', filePos(file, 1))],
    };
  const pos = filePos(file, 1);
  const out: NeighInfo[] = [];
  rows.forEach((r: JNeigh, k) => {
    if (typeof r?.dst !== 'string') {
      issues.push(issue('ip-neigh.json', `entry ${k + 1}: expected "dst" (an address)`, pos, 'warning'));
      return;
    }
    if (r.dst.includes(':')) return; // IPv6
    const ip = parseIpv4(r.dst);
    const mac = typeof r.lladdr === 'string' ? parseMac(r.lladdr) : undefined;
    if (ip === undefined || typeof r.dev !== 'string' || (r.lladdr !== undefined && mac === undefined)) {
      issues.push(
        issue(
          'ip-neigh.json',
          `entry ${k + 1} (${r.dst}): expected an IPv4 "dst", a "dev" and a MAC "lladdr"`,
          pos,
          'warning',
        ),
      );
      return;
    }
    const states = Array.isArray(r.state) ? r.state.filter((s): s is string => typeof s === 'string') : [];
    out.push({ ip, dev: r.dev, ...(mac ? { mac } : {}), states, pos });
  });
  return { value: out, issues };
}
