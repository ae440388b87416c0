import { describe, expect, it } from 'vitest';
import { formatIpv4, parseIpv4 } from '../addr/ipv4.ts';
import { readIpRoute, readIpRule } from './ip-route.ts';
import type { Node, Route, RoutingRule } from './model.ts';
import { lookupRoute, lookupRouteFull } from './routing.ts';

const TABLE_ALL = `default via 198.51.100.1 dev eth0 proto static metric 100
default via 198.51.100.254 dev eth0 proto static metric 200
10.20.0.0/16 via 172.16.0.1 dev eth1 onlink
198.51.100.0/24 dev eth0 proto kernel scope link src 198.51.100.21 metric 100
default via 203.0.113.1 dev eth1 table 100
203.0.113.0/24 dev eth1 table 100 proto kernel scope link src 203.0.113.5
unreachable 192.0.2.128/25 table vpn
default proto static metric 50
	nexthop via 198.51.100.7 dev eth0 weight 1
	nexthop via 198.51.100.8 dev eth0 weight 1
local 198.51.100.21 dev eth0 table local proto kernel scope host src 198.51.100.21
broadcast 198.51.100.255 dev eth0 table local proto kernel scope link src 198.51.100.21
::1 dev lo proto kernel metric 256 pref medium
fe80::/64 dev eth0 proto kernel metric 256 pref medium
local ::1 dev lo table local proto kernel metric 0 pref medium
multicast ff00::/8 dev eth0 table local proto kernel metric 256 pref medium
`;

const RULES = `0:	from all lookup local
100:	from 203.0.113.5 lookup 100
150:	from all fwmark 0x1/0xff lookup 100
200:	not from 198.51.100.0/24 to 192.0.2.0/24 lookup vpn
250:	from all iif eth2 blackhole
300:	from all lookup main suppress_prefixlength 0
32766:	from all lookup main
32767:	from all lookup default
`;

const ip = (s: string) => parseIpv4(s)!;

function node(routes: Route[], rules?: RoutingRule[]): Node {
  return {
    name: 'rs1',
    kind: 'guest',
    role: 'real-server',
    interfaces: new Map(),
    routes,
    ...(rules ? { rules } : {}),
    neighbours: new Map(),
    sysctl: new Map(),
    listeners: [],
    ttl: 64,
    origin: { kind: 'implicit', label: 'test' },
  } as Node;
}

function load(): Node {
  const r = readIpRoute(TABLE_ALL, 'ip-route.txt');
  const rules = readIpRule(RULES, 'ip-rule.txt');
  expect(rules.issues).toEqual([]);
  const o = { kind: 'implicit', label: 'x' } as const;
  return node(
    r.value!.map(({ pos: _p, table, ...e }) => ({ ...e, ...(table !== 'main' ? { table } : {}), origin: o })),
    rules.value!.map(({ pos: _p, ...e }) => ({ ...e, origin: o })),
  );
}

describe('ip route show table all', () => {
  it('reads tables, onlink, metrics and multipath routes, and skips IPv6', () => {
    const r = readIpRoute(TABLE_ALL, 'ip-route.txt');
    const routes = r.value!;
    expect(routes.length).toBe(10);
    expect(routes.filter((x) => x.table === '100').length).toBe(2);
    expect(routes.find((x) => x.onlink)?.via).toBe(ip('172.16.0.1'));
    expect(routes.find((x) => x.type === 'unreachable')?.table).toBe('vpn');
    const mp = routes.find((x) => x.metric === 50)!;
    expect(formatIpv4(mp.via!)).toBe('198.51.100.7');
    expect(r.issues.map((i) => i.code)).toEqual(['ip-route.multipath']);
    expect(routes.filter((x) => x.table === 'local').map((x) => x.type)).toEqual(['local', 'broadcast']);
  });

  it('reports a route with a bad metric at its line', () => {
    const r = readIpRoute('default via 192.0.2.1 dev eth0 metric fast\n', 'r.txt');
    expect(r.issues[0]!.message).toMatch(/expected a number 0-4294967295 after "metric"/);
    expect(r.issues[0]!.pos?.line).toBe(1);
  });

  it('reports a malformed ip rule line', () => {
    const r = readIpRule('100 from all lookup main\n', 'rules.txt');
    expect(r.issues[0]!.code).toBe('ip-rule.syntax');
  });
});

describe('route lookup with policy rules', () => {
  it('picks the lowest metric among equal prefixes in table main', () => {
    const n = load();
    // Among the three defaults of main (metric 50 multipath, 100, 200) metric 50 wins.
    expect(formatIpv4(lookupRoute(n, ip('8.8.8.8'))!.via!)).toBe('198.51.100.7');
  });

  it('sends replies from a source address through that source’s table', () => {
    const n = load();
    const r = lookupRouteFull(n, ip('8.8.8.8'), { src: ip('203.0.113.5') })!;
    expect(formatIpv4(r.route.via!)).toBe('203.0.113.1');
    expect(r.rule?.priority).toBe(100);
  });

  it('matches fwmark with its mask, `not from`, iif blackholes and suppress_prefixlength', () => {
    const n = load();
    expect(formatIpv4(lookupRoute(n, ip('8.8.8.8'), { mark: 0x101 })!.via!)).toBe('203.0.113.1');
    // not from 198.51.100.0/24, to 192.0.2.0/24 → table vpn: unreachable for the upper half.
    expect(lookupRoute(n, ip('192.0.2.200'), { src: ip('203.0.113.99') })!.type).toBe('unreachable');
    expect(lookupRoute(n, ip('192.0.2.200'), { src: ip('198.51.100.21') })!.type).toBe('unicast');
    expect(lookupRoute(n, ip('198.51.100.9'), { iif: 'eth2' })!.type).toBe('blackhole');
    // Rule 300 suppresses main's default routes (prefix length 0) but not the connected /24.
    expect(lookupRouteFull(n, ip('198.51.100.9'))!.rule?.priority).toBe(300);
    expect(lookupRouteFull(n, ip('8.8.8.8'))!.rule?.priority).toBe(32766);
  });

  it('without rules and with only table main it is the plain longest-prefix match', () => {
    const o = { kind: 'implicit', label: 'x' } as const;
    const n = node([
      { dst: { addr: 0 as never, len: 0 }, via: ip('192.0.2.1'), metric: 0, type: 'unicast', origin: o },
      { dst: { addr: ip('192.0.2.0'), len: 24 }, dev: 'eth0', metric: 0, type: 'unicast', origin: o },
    ]);
    expect(lookupRoute(n, ip('192.0.2.7'))!.dev).toBe('eth0');
    expect(lookupRoute(n, ip('198.51.100.7'))!.via).toBe(ip('192.0.2.1'));
  });
});
