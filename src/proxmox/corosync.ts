/**
 * Reader for the part of `corosync.conf` pve-firewall uses: the nodes' ring addresses (host rules let corosync in
 * from and out to the other nodes on the same ring) and the totem transport (`udp` = multicast, which gets a rule of
 * its own). Ring addresses that are host names are not resolved (a simulator has no resolver); they add nothing, as
 * when pve-firewall cannot resolve them. Never throws.
 */
import { parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface CorosyncAddress {
  readonly node: string;
  /** `ring0_addr` … */
  readonly key: string;
  readonly ip: string;
}

export interface CorosyncConf {
  readonly transport?: string;
  readonly pos: Position;
  /** Every node's IP-literal ring addresses of one IP version: nodes by name, keys in order. */
  addresses(ipversion: 4 | 6): CorosyncAddress[];
}

export function readCorosyncConf(text: string, file: string): ReadResult<CorosyncConf> {
  const issues: Issue[] = [];
  const stack: string[] = [];
  const nodes: { fields: Map<string, string> }[] = [];
  let transport: string | undefined;
  let cur: Map<string, string> | undefined;
  text.split('\n').forEach((raw, idx) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const open = /^([A-Za-z0-9_.-]+)\s*\{$/.exec(line);
    if (open) {
      stack.push(open[1]!);
      if (open[1] === 'node' && stack[stack.length - 2] === 'nodelist') {
        cur = new Map();
        nodes.push({ fields: cur });
      }
      return;
    }
    if (line === '}') {
      if (stack.pop() === undefined) issues.push(issue('corosync-brace', "unbalanced '}'", filePos(file, idx + 1)));
      if (stack[stack.length - 1] !== 'node') cur = undefined;
      return;
    }
    const m = /^([A-Za-z0-9_.-]+)\s*:\s*(.*)$/.exec(line);
    if (m) {
      const section = stack[stack.length - 1];
      if (section === 'node' && cur) cur.set(m[1]!, m[2]!);
      else if (section === 'totem' && m[1] === 'transport') transport = m[2]!;
      return;
    }
    issues.push(
      issue('corosync-bad-line', `expected 'key: value', 'name {' or '}', got '${line}'`, filePos(file, idx + 1)),
    );
  });
  if (stack.length > 0) issues.push(issue('corosync-brace', `unclosed section ${stack.join(' > ')}`, filePos(file, 0)));
  const byName = nodes
    .filter((n) => n.fields.has('name'))
    .sort((a, b) => (a.fields.get('name')! < b.fields.get('name')! ? -1 : 1));
  const value: CorosyncConf = {
    ...(transport !== undefined ? { transport } : {}),
    pos: filePos(file, 0),
    addresses(ipversion) {
      const out: CorosyncAddress[] = [];
      for (const n of byName) {
        for (const key of [...n.fields.keys()].filter((k) => /^ring\d+_addr$/.test(k)).sort()) {
          const ip = n.fields.get(key)!;
          const ok = ipversion === 4 ? parseIpv4(ip) !== undefined : ip.includes(':') && parseIpv6(ip) !== undefined;
          if (ok) out.push({ node: n.fields.get('name')!, key, ip });
        }
      }
      return out;
    },
  };
  return { value, issues };
}
