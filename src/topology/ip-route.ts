/** Reader for `ip route show` (IPv4 main table) text output. */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Ipv4Prefix, parseIpv4Prefix } from '../addr/prefix.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface RouteEntry {
  readonly dst: Ipv4Prefix;
  readonly via?: Ipv4;
  readonly dev?: string;
  readonly src?: Ipv4;
  readonly metric: number;
  readonly type: 'unicast' | 'local' | 'blackhole' | 'unreachable' | 'prohibit' | 'broadcast';
  readonly pos: Position;
}

const TYPES = new Set(['local', 'blackhole', 'unreachable', 'prohibit', 'broadcast', 'unicast']);

export function readIpRoute(text: string, file: string): ReadResult<RouteEntry[]> {
  const issues: Issue[] = [];
  const routes: RouteEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (i === 0 && /[#$]\s*ip\b/.test(line)) return;
    const pos = filePos(file, i + 1);
    const words = line.split(/\s+/);
    let type: RouteEntry['type'] = 'unicast';
    if (TYPES.has(words[0]!)) type = words.shift() as RouteEntry['type'];
    const dstWord = words.shift() ?? '';
    const dst = dstWord === 'default' ? { addr: 0 as Ipv4, len: 0 } : parseIpv4Prefix(dstWord);
    if (!dst) {
      issues.push(
        issue('ip-route.dst', `expected "default" or a prefix at the start of the route, found "${dstWord}"`, pos),
      );
      return;
    }
    const r: { -readonly [K in keyof RouteEntry]: RouteEntry[K] } = { dst, metric: 0, type, pos };
    for (let k = 0; k < words.length; k++) {
      const w = words[k]!;
      const v = words[k + 1];
      if (w === 'via' || w === 'src') {
        const a = parseIpv4(v ?? '');
        if (a === undefined) {
          issues.push(issue('ip-route.addr', `expected an IPv4 address after "${w}", found "${v ?? ''}"`, pos));
          return;
        }
        if (w === 'via') r.via = a;
        else r.src = a;
        k++;
      } else if (w === 'dev') {
        if (v !== undefined) r.dev = v;
        k++;
      } else if (w === 'metric') {
        r.metric = Number(v ?? 0);
        k++;
      } else if (['proto', 'scope', 'table', 'mtu', 'realm', 'expires', 'pref'].includes(w)) {
        k++;
      }
      // flags such as `linkdown`, `onlink`, `dead` carry no value.
    }
    routes.push(r);
  });
  return { value: routes, issues };
}
