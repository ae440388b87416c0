/**
 * Small scenarios built in memory, straight into the model, for unit tests of the simulator: nodes with their
 * interfaces, addresses (connected routes are added as the kernel does), extra routes, sysctls and listeners; L2
 * segments; engines given as plain objects (a firewall that logs the hooks it is asked about, a real IPVS engine
 * read from an `ipvsadm -L -n` listing). Addresses come from the documentation ranges.
 */
import type { Ipv4 } from '../../src/addr/ipv4.ts';
import { ipv4 } from '../../src/addr/ipv4.ts';
import { mac as parseMac } from '../../src/addr/mac.ts';
import { parseIpv4Prefix } from '../../src/addr/prefix.ts';
import { readIpvsadmList } from '../../src/ipvs/ipvsadm-list-reader.ts';
import type { IpvsTable } from '../../src/ipvs/model.ts';
import { implicit } from '../../src/source/origin.ts';
import type { LoadedScenario } from '../../src/topology/load-scenario.ts';
import type {
  Iface,
  IfaceKind,
  NeighbourEntry,
  Node,
  NodeKind,
  ProbeSpec,
  Route,
  Scenario,
  SysctlValue,
} from '../../src/topology/model.ts';
import { buildDataplane, type Dataplane, type DataplaneEngines } from '../../src/trace/dataplane.ts';
import type { DecisionLog } from '../../src/trace/decisions.ts';
import type { BridgeFirewall, BridgeHook, IpvsEngine } from '../../src/trace/engines.ts';
import { makeIpvsEngine } from '../../src/trace/ipvs-engine.ts';
import { traceProbe } from '../../src/trace/probe.ts';
import type { Session } from '../../src/trace/session.ts';
import type { Hop, NetfilterStep, Trace } from '../../src/trace/types.ts';

export interface IfaceSpec {
  readonly kind?: IfaceKind;
  readonly mac?: string;
  /** `198.51.100.10/24`, … */
  readonly addrs?: readonly string[];
  readonly master?: string;
  /** `node:iface` at the other end of a point-to-point link (tap ↔ guest NIC, veth). */
  readonly peer?: string;
  readonly segment?: string;
  readonly up?: boolean;
  readonly pointToPoint?: boolean;
  /** A bridge: `vlan_filtering 1`. */
  readonly vlanFiltering?: boolean;
  /** A port of a VLAN-filtering bridge (or the bridge itself): its VLANs (default `vid 1 pvid untagged`). */
  readonly vlans?: {
    readonly pvid?: number;
    readonly untagged?: readonly number[];
    readonly tagged?: readonly (readonly [number, number])[];
  };
}

export interface NodeSpec {
  readonly kind?: NodeKind;
  readonly ifaces: Readonly<Record<string, IfaceSpec>>;
  readonly routes?: readonly { readonly dst: string; readonly via?: string; readonly dev?: string }[];
  readonly sysctl?: Readonly<Record<string, string | number>>;
  readonly listen?: readonly number[];
  /** IPv4 → MAC entries already in the neighbour table. */
  readonly neighbours?: Readonly<Record<string, string>>;
}

const ORIGIN = implicit('tiny-net test scenario');

function iface(name: string, s: IfaceSpec): Iface {
  const i: { -readonly [K in keyof Iface]: Iface[K] } = {
    name,
    kind: s.kind ?? (name === 'lo' ? 'loopback' : 'ether'),
    mac: parseMac(s.mac ?? '00:00:00:00:00:00'),
    addrs: (s.addrs ?? []).map((a) => ({ prefix: parseIpv4Prefix(a)!, label: `${name} ${a}`, origin: ORIGIN })),
    up: s.up ?? true,
    origin: implicit(`interface ${name}`),
  };
  if (s.master) i.master = s.master;
  if (s.peer) {
    const [node, ifn] = s.peer.split(':');
    i.peer = { node: node!, iface: ifn! };
  }
  if (s.segment) i.segment = s.segment;
  if (s.pointToPoint) i.pointToPoint = true;
  if (s.vlanFiltering) i.vlanFiltering = true;
  if (s.vlans)
    i.bridgeVlans = {
      ...(s.vlans.pvid !== undefined ? { pvid: s.vlans.pvid } : {}),
      untagged: s.vlans.untagged ?? [],
      tagged: s.vlans.tagged ?? [],
      origin: implicit(`bridge vlan of ${name}`),
    };
  return i;
}

function node(name: string, s: NodeSpec): Node {
  const interfaces = new Map(Object.entries(s.ifaces).map(([n, i]) => [n, iface(n, i)] as const));
  const routes: Route[] = [];
  for (const i of interfaces.values()) {
    if (i.kind === 'loopback') continue;
    for (const a of i.addrs) {
      if (a.prefix.len === 32) continue;
      const mask = a.prefix.len === 0 ? 0 : (0xffffffff << (32 - a.prefix.len)) >>> 0;
      routes.push({
        dst: { addr: ((a.prefix.addr & mask) >>> 0) as Ipv4, len: a.prefix.len },
        dev: i.name,
        src: a.prefix.addr,
        metric: 0,
        type: 'unicast',
        origin: implicit(`connected route of ${a.label}`),
      });
    }
  }
  for (const r of s.routes ?? [])
    routes.push({
      dst: parseIpv4Prefix(r.dst === 'default' ? '0.0.0.0/0' : r.dst)!,
      ...(r.via ? { via: ipv4(r.via) } : {}),
      ...(r.dev ? { dev: r.dev } : {}),
      metric: 0,
      type: 'unicast',
      origin: implicit(`route ${r.dst}`),
    });
  const sysctl = new Map<string, SysctlValue>(
    Object.entries(s.sysctl ?? {}).map(([k, v]) => [k, { value: String(v), origin: implicit(`${k} = ${v}`) }]),
  );
  const neighbours = new Map<Ipv4, NeighbourEntry>(
    Object.entries(s.neighbours ?? {}).map(([ip, m]) => [ipv4(ip), { mac: parseMac(m), origin: ORIGIN }]),
  );
  return {
    name,
    kind: s.kind ?? 'guest',
    role: 'other',
    interfaces,
    routes,
    neighbours,
    sysctl,
    listeners: (s.listen ?? []).map((port) => ({ protocol: 'tcp' as const, port, origin: implicit(`tcp/${port}`) })),
    ttl: 64,
    origin: implicit(`node ${name}`),
  };
}

export function tinyScenario(
  nodes: Readonly<Record<string, NodeSpec>>,
  segments: Readonly<Record<string, readonly string[]>> = {},
): Scenario {
  return {
    name: 'tiny',
    description: '',
    dir: '.',
    nodes: new Map(Object.entries(nodes).map(([n, s]) => [n, node(n, s)] as const)),
    segments: Object.entries(segments).map(([name, members]) => ({
      name,
      members: members.map((m) => {
        const [n, i] = m.split(':');
        return { node: n!, iface: i! };
      }),
      origin: implicit(`segment ${name}`),
    })),
    bindings: [],
    probes: [],
    assumptions: [],
  };
}

export interface TinyEngines {
  readonly firewalls?: Readonly<Record<string, BridgeFirewall>>;
  /** Director → `ipvsadm -L -n` text. */
  readonly ipvsadm?: Readonly<Record<string, string>>;
}

const TABLES = new Map<string, IpvsTable>();

/** The IPVS table of an `ipvsadm -L -n` listing (the same object for the same text). */
function ipvsTable(director: string, text: string): IpvsTable {
  let t = TABLES.get(text);
  if (t === undefined) {
    const r = readIpvsadmList(text, `${director}/ipvsadm-Ln.txt`);
    if (!r.value || r.issues.some((i) => i.severity === 'error'))
      throw new Error(`tiny-net: bad ipvsadm listing for ${director}: ${JSON.stringify(r.issues)}`);
    t = r.value.table;
    TABLES.set(text, t);
  }
  return t;
}

function tables(e: TinyEngines): Map<string, IpvsTable> {
  return new Map(Object.entries(e.ipvsadm ?? {}).map(([d, text]) => [d, ipvsTable(d, text)] as const));
}

function enginesOf(ipvsTables: ReadonlyMap<string, IpvsTable>, e: TinyEngines): DataplaneEngines {
  const ipvs = new Map<string, () => IpvsEngine>();
  for (const [director, table] of ipvsTables) ipvs.set(director, () => makeIpvsEngine(table, { kernel: '6.1.0' }));
  const fws = e.firewalls ?? {};
  return { firewalls: { get: (name) => fws[name] }, ipvs };
}

/** The engines of a tiny scenario: the given firewalls, and IPVS engines read from listings. */
export function tinyEngines(e: TinyEngines = {}): DataplaneEngines {
  return enginesOf(tables(e), e);
}

export function tinyDataplane(s: Scenario, e: TinyEngines = {}): Dataplane {
  return buildDataplane(s, tinyEngines(e));
}

/**
 * A tiny scenario as the loader would give it, for what reads a `LoadedScenario` (findings, fixes): the scenario
 * and the directors' IPVS tables; nothing else was read.
 */
export function tinyLoaded(s: Scenario, e: TinyEngines = {}): LoadedScenario {
  return { scenario: s, ipvs: tables(e), kernels: new Map() } as unknown as LoadedScenario;
}

/** A simulator session on a tiny scenario (no libvirt filters compiled: the firewalls are the given ones). */
export function tinySession(s: Scenario, e: TinyEngines = {}): Session {
  const loaded = tinyLoaded(s, e);
  const engines = enginesOf(loaded.ipvs, e);
  return { loaded, hostRules: new Map(), engines, pristine: buildDataplane(s, engines), issues: [] };
}

/** Traces a probe on a (maybe fixed) tiny loaded scenario, with its IPVS tables and the given firewalls. */
export function traceLoaded(loaded: LoadedScenario, probe: ProbeSpec, e: TinyEngines = {}): Trace {
  return traceProbe(buildDataplane(loaded.scenario, enginesOf(loaded.ipvs, e)), probe);
}

export function tcpProbe(from: string, to: string, dport: number): ProbeSpec {
  return {
    kind: 'tcp',
    name: `${from}→${to}:${dport}`,
    from,
    to: ipv4(to),
    dport,
    sport: 40000,
    seq: 1000,
    ipId: 1,
    window: 64240,
    tsval: 1,
    timeNs: 1_700_000_000_000_000_000n,
    origin: ORIGIN,
  };
}

export function arpProbe(from: string, target: string): ProbeSpec {
  return { kind: 'arp', name: `${from} who-has ${target}`, from, target: ipv4(target), timeNs: 1n, origin: ORIGIN };
}

/** Traces a probe on a fresh copy of the scenario's dataplane. */
export function trace(s: Scenario, probe: ProbeSpec, e: TinyEngines = {}, log?: DecisionLog): Trace {
  return traceProbe(tinyDataplane(s, e), probe, log);
}

/** The hops on the trace's decisive path. */
export function pathHops(t: Trace): Hop[] {
  return t.path.map((id) => t.hops[id]!);
}

/**
 * A firewall that logs, in order, every hook it is asked about (`table hook in→out`; iptables FORWARD of bridged
 * frames is hook `FORWARD-bridged`) and decides there by a policy of `verdict` (undefined: no rule has a say).
 */
export function loggingFirewall(
  log: string[],
  verdict?: (table: string, hook: string) => 'ACCEPT' | 'DROP' | undefined,
): BridgeFirewall {
  const step = (table: string, hook: string, family: 'bridge' | 'ipv4'): NetfilterStep | undefined => {
    const v = verdict?.(table, hook);
    if (v === undefined) return undefined;
    return {
      kind: 'netfilter',
      family,
      table,
      hook,
      verdict: v,
      chain: hook,
      ruleText: `policy: ${v}`,
      origin: implicit(`${table} ${hook} policy`),
      path: [hook],
      rulesVisited: 0,
    };
  };
  return {
    evaluate(table: 'nat' | 'filter', hook: BridgeHook, _frame, ctx) {
      log.push(`ebtables ${table} ${hook} ${ctx.inIface ?? '-'}→${ctx.outIface ?? '-'}`);
      return step(table, hook, 'bridge');
    },
    evaluateBridged(_frame, ctx) {
      log.push(`iptables filter FORWARD ${ctx.inPort}→${ctx.outPort}`);
      return step('filter', 'FORWARD-bridged', 'ipv4');
    },
  };
}

/** Two guests behind one host's bridge (taps vnet0, vnet1), all on 198.51.100.0/24. */
export function bridgedPair(extra: { a?: Partial<NodeSpec>; b?: Partial<NodeSpec> } = {}): Scenario {
  return tinyScenario({
    host: {
      kind: 'host',
      ifaces: {
        br0: { kind: 'bridge', mac: '52:54:00:aa:00:01', addrs: ['198.51.100.2/24'] },
        vnet0: { kind: 'tap', mac: 'fe:54:00:00:00:0a', master: 'br0', peer: 'a:eth0' },
        vnet1: { kind: 'tap', mac: 'fe:54:00:00:00:0b', master: 'br0', peer: 'b:eth0' },
      },
    },
    a: {
      ifaces: {
        lo: { addrs: ['127.0.0.1/8'] },
        eth0: { mac: '52:54:00:00:00:0a', addrs: ['198.51.100.10/24'], peer: 'host:vnet0' },
      },
      ...extra.a,
    },
    b: {
      ifaces: {
        lo: { addrs: ['127.0.0.1/8'] },
        eth0: { mac: '52:54:00:00:00:0b', addrs: ['198.51.100.20/24'], peer: 'host:vnet1' },
      },
      ...extra.b,
    },
  });
}

/**
 * An LVS cluster on one L2 segment `lan` (198.51.100.0/24): client c (.50), director d (.10, the VIP .100 on eth0)
 * balancing VIP:80 to real server rs (.21, MAC 52:54:00:00:00:21) by DR (`Route`, the VIP on rs's lo) or TUN
 * (`Tunnel`, the VIP on rs's tunl0). rs has arp_ignore=1 and arp_announce=2, as a DR/TUN real server must.
 */
export function lvsLan(
  method: 'Route' | 'Tunnel',
  rs: Partial<NodeSpec> = {},
  directorRoutes?: NodeSpec['routes'],
): { scenario: Scenario; engines: TinyEngines } {
  const vip = '198.51.100.100';
  const scenario = tinyScenario(
    {
      c: { ifaces: { eth0: { mac: '52:54:00:00:00:50', addrs: ['198.51.100.50/24'], segment: 'lan' } } },
      d: {
        ifaces: { eth0: { mac: '52:54:00:00:00:10', addrs: ['198.51.100.10/24', `${vip}/24`], segment: 'lan' } },
        ...(directorRoutes ? { routes: directorRoutes } : {}),
      },
      rs: {
        ifaces: {
          lo: { addrs: ['127.0.0.1/8', ...(method === 'Route' ? [`${vip}/32`] : [])] },
          eth0: { mac: '52:54:00:00:00:21', addrs: ['198.51.100.21/24'], segment: 'lan' },
          ...(method === 'Tunnel' ? { tunl0: { kind: 'tunnel' as const, addrs: [`${vip}/32`] } } : {}),
        },
        listen: [80],
        // A DR or TUN real server must not answer ARP for the VIP it holds (the "ARP problem").
        sysctl: { 'net.ipv4.conf.all.arp_ignore': 1, 'net.ipv4.conf.all.arp_announce': 2 },
        ...rs,
      },
    },
    { lan: ['c:eth0', 'd:eth0', 'rs:eth0'] },
  );
  const ipvsadm = {
    d: [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      `TCP  ${vip}:80 rr`,
      `  -> 198.51.100.21:80             ${method.padEnd(7)} 1      0          0`,
      '',
    ].join('\n'),
  };
  return { scenario, engines: { ipvsadm } };
}
