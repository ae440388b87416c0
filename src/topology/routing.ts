/**
 * The kernel's IPv4 route lookup over a node's routes: policy rules (`ip rule`) in priority order, each naming a
 * table; in a table the longest prefix wins, the lowest metric on ties. `throw` routes, lookups that find nothing and
 * routes suppressed by `suppress_prefixlength` continue with the next rule (fib_rules_lookup, fib4_rule_action,
 * fib4_rule_suppress); `blackhole`/`unreachable`/`prohibit` rules end the lookup.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { prefixContains } from '../addr/prefix.ts';
import { implicit } from '../source/origin.ts';
import type { Node, Route, RoutingRule } from './model.ts';

/** What a lookup knows about the packet beyond its destination. */
export interface FlowKey {
  /** Source address (0 or absent: not chosen yet, as for a socket that has not bound). */
  readonly src?: Ipv4;
  /** Input interface of a forwarded packet; locally generated packets have `lo` (LOOPBACK_IFINDEX). */
  readonly iif?: string;
  /** Output interface a socket is bound to. */
  readonly oif?: string;
  readonly mark?: number;
}

export interface RouteResult {
  readonly route: Route;
  /** The rule whose table gave the route (absent when the node has only the default rules). */
  readonly rule?: RoutingRule;
}

const DEFAULT_RULES: readonly RoutingRule[] = [
  {
    priority: 0,
    not: false,
    action: { kind: 'lookup', table: 'local' },
    origin: implicit('default rule 0: lookup local'),
  },
  {
    priority: 32766,
    not: false,
    action: { kind: 'lookup', table: 'main' },
    origin: implicit('default rule 32766: lookup main'),
  },
  {
    priority: 32767,
    not: false,
    action: { kind: 'lookup', table: 'default' },
    origin: implicit('default rule 32767: lookup default'),
  },
];

interface Prepared {
  /** Only table main and default rules: the plain longest-prefix match over every route. */
  readonly simple: boolean;
  readonly rules: readonly RoutingRule[];
  readonly tables: ReadonlyMap<string, readonly Route[]>;
}

const PREPARED = new WeakMap<Node, Prepared>();

function prepare(node: Node): Prepared {
  let p = PREPARED.get(node);
  if (p) return p;
  const tables = new Map<string, Route[]>();
  for (const r of node.routes) {
    const t = r.table ?? 'main';
    let list = tables.get(t);
    if (!list) {
      list = [];
      tables.set(t, list);
    }
    list.push(r);
  }
  const onlyMain = [...tables.keys()].every((t) => t === 'main' || t === 'local');
  const rules = node.rules ? [...node.rules].sort((a, b) => a.priority - b.priority) : DEFAULT_RULES;
  p = { simple: node.rules === undefined && onlyMain, rules, tables };
  PREPARED.set(node, p);
  return p;
}

/** Longest prefix, lowest metric on ties, among `routes`. */
function bestOf(routes: readonly Route[], dst: Ipv4): Route | undefined {
  let best: Route | undefined;
  for (const r of routes) {
    if (!prefixContains(r.dst, dst)) continue;
    if (!best || r.dst.len > best.dst.len || (r.dst.len === best.dst.len && r.metric < best.metric)) best = r;
  }
  return best;
}

function ruleMatches(rule: RoutingRule, dst: Ipv4, key: FlowKey): boolean {
  let m = true;
  if (rule.from && !(key.src !== undefined && key.src !== 0 && prefixContains(rule.from, key.src))) m = false;
  else if (rule.to && !prefixContains(rule.to, dst)) m = false;
  else if (rule.iif !== undefined && rule.iif !== (key.iif ?? 'lo')) m = false;
  else if (rule.oif !== undefined && rule.oif !== key.oif) m = false;
  else if (rule.fwmark && ((key.mark ?? 0) & rule.fwmark.mask) >>> 0 !== rule.fwmark.value) m = false;
  return rule.not ? !m : m;
}

/** The route the kernel would use for `dst`, and the rule that chose its table. */
export function lookupRouteFull(node: Node, dst: Ipv4, key: FlowKey = {}): RouteResult | undefined {
  const p = prepare(node);
  if (p.simple) {
    const route = bestOf(node.routes, dst);
    return route && route.type !== 'throw' ? { route } : undefined;
  }
  const rules = p.rules;
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    if (!ruleMatches(rule, dst, key)) continue;
    const a = rule.action;
    switch (a.kind) {
      case 'nop':
        continue;
      case 'goto': {
        const j = rules.findIndex((r) => r.priority >= a.target);
        if (j <= i) continue; // the kernel refuses backward gotos; a dangling one is a no-op
        i = j - 1;
        continue;
      }
      case 'blackhole':
      case 'unreachable':
      case 'prohibit':
        return {
          route: { dst: { addr: dst, len: 32 }, metric: 0, type: a.kind, origin: rule.origin },
          rule,
        };
      case 'lookup': {
        const route = bestOf(p.tables.get(a.table) ?? [], dst);
        if (!route || route.type === 'throw') continue;
        if (a.suppressPrefixLength !== undefined && route.dst.len <= a.suppressPrefixLength) continue;
        return node.rules ? { route, rule } : { route };
      }
      default: {
        const never: never = a;
        return never;
      }
    }
  }
  return undefined;
}

/** `lookupRouteFull` without the rule. */
export function lookupRoute(node: Node, dst: Ipv4, key: FlowKey = {}): Route | undefined {
  return lookupRouteFull(node, dst, key)?.route;
}

/** The device a route leaves through: its own `dev`, or the device of the route to its gateway. */
export function routeDevice(node: Node, r: Route): string | undefined {
  if (r.dev !== undefined) return r.dev;
  if (r.via === undefined) return undefined;
  return bestOf(
    node.routes.filter((x) => (x.table ?? 'main') === (r.table ?? 'main') || (x.table ?? 'main') === 'main'),
    r.via,
  )?.dev;
}
