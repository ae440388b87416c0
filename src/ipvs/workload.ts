/**
 * The workload of `lvsdoctor ipvs simulate`: N new connections from a client population (a prefix, a port range,
 * a seed), offered side by side to every IPv4 TCP/UDP service of an engine on one clock, as on a real director,
 * each connection's client packets passed through `ipvsInput`. What was decided is counted per service and per
 * real server; the front end only prints it.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import { ipv4Mask, parseIpv4Prefix } from '../addr/prefix.ts';
import { IPPROTO_TCP, IPPROTO_UDP, TCP_ACK, TCP_FIN, TCP_SYN } from '../wire/types.ts';
import type { DestState } from './dest-state.ts';
import type { IpvsEngine } from './engine.ts';
import { type InputOutcome, ipvsInput } from './forward.ts';
import { serviceName } from './ipvsadm-list-writer.ts';
import { IPVS_PROTOCOL_NUMBER } from './model.ts';
import type { ServiceState } from './service-state.ts';

export interface ClientSpec {
  /** Distinct client addresses. */
  readonly count: number;
  /** First address of the network (u32) and its prefix length. */
  readonly net: { readonly base: number; readonly length: number };
  readonly portLow: number;
  readonly portHigh: number;
  readonly seed: number;
}

const DEFAULT_NET = { base: 0xc6336400, length: 24 }; // 198.51.100.0/24

function usableHosts(length: number): number {
  const size = 2 ** (32 - length);
  return size <= 2 ? size : size - 2;
}

/**
 * `--clients SPEC`: a prefix (`198.51.100.0/24`) or `key=value` pairs `count=N,net=PREFIX,ports=LO-HI,seed=S`.
 * Defaults: every usable host of 198.51.100.0/24, ports 1024-65535, seed 1.
 */
export function parseClientSpec(spec: string | undefined): ClientSpec | string {
  let net = DEFAULT_NET;
  let count: number | undefined;
  let portLow = 1024;
  let portHigh = 65535;
  let seed = 1;
  const parseNet = (t: string): string | undefined => {
    const p = parseIpv4Prefix(t.includes('/') ? t : `${t}/32`);
    if (p === undefined) return `'${t}' is not an IPv4 prefix`;
    net = { base: (p.addr & ipv4Mask(p.len)) >>> 0, length: p.len };
    return undefined;
  };
  for (const part of (spec ?? '').split(',').filter((x) => x.trim() !== '')) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      const err = parseNet(part.trim());
      if (err) return err;
      continue;
    }
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    switch (k) {
      case 'net': {
        const err = parseNet(v);
        if (err) return err;
        break;
      }
      case 'count':
        if (!/^[1-9][0-9]*$/.test(v)) return `count must be a positive integer, not '${v}'`;
        count = Number(v);
        break;
      case 'ports': {
        const m = /^([0-9]+)(?:-([0-9]+))?$/.exec(v);
        const lo = m ? Number(m[1]) : Number.NaN;
        const hi = m ? Number(m[2] ?? m[1]) : Number.NaN;
        if (!m || lo < 1 || hi > 65535 || lo > hi) return `ports must be LO-HI within 1-65535, not '${v}'`;
        portLow = lo;
        portHigh = hi;
        break;
      }
      case 'seed':
        if (!/^[0-9]+$/.test(v)) return `seed must be a number, not '${v}'`;
        seed = Number(v) >>> 0;
        break;
      default:
        return `unknown key '${k}' (count, net, ports, seed)`;
    }
  }
  const hosts = usableHosts(net.length);
  const n = count ?? hosts;
  if (n > hosts) return `count=${n} is more than the ${hosts} usable addresses of the network`;
  return { count: n, net, portLow, portHigh, seed };
}

/** `N clients of NET/LEN, ports LO-HI, seed S`. */
export function formatClientSpec(c: ClientSpec): string {
  return `${c.count} client${c.count === 1 ? '' : 's'} of ${formatIpv4(c.net.base as Ipv4)}/${c.net.length}, ports ${c.portLow}-${c.portHigh}, seed ${c.seed}`;
}

/**
 * Client packets of each connection: `syn` (SYN only: half-open), `established` (SYN, ACK) or `closed`
 * (SYN, ACK, FIN+ACK). UDP services get one datagram per connection.
 */
export type Lifecycle = 'syn' | 'established' | 'closed';

export interface Workload {
  readonly connections: number;
  readonly clients: ClientSpec;
  readonly lifecycle: Lifecycle;
  /** Milliseconds between connection starts. */
  readonly intervalMs: number;
}

/** xorshift32: a small seeded generator (the same seed gives the same sequence). */
export class Xorshift32 {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
}

/** How the first packet of each connection of a service was decided. */
export interface DecisionCounts {
  scheduled: number;
  templateNew: number;
  templateReused: number;
  existing: number;
  noDestination: number;
  dropped: number;
  notHandled: number;
  firstLog?: string;
  firstDrop?: string;
  firstNotHandled?: string;
}

function count(c: DecisionCounts, r: InputOutcome): void {
  switch (r.kind) {
    case 'accepted':
      if (r.decision.kind === 'scheduled') c.scheduled++;
      else if (r.decision.kind === 'persistent-template') {
        if (r.decision.reused) c.templateReused++;
        else c.templateNew++;
      } else c.existing++;
      return;
    case 'no-destination':
      c.noDestination++;
      c.firstLog ??= r.log;
      return;
    case 'dropped':
      c.dropped++;
      c.firstDrop ??= r.message;
      return;
    case 'not-handled':
      c.notHandled++;
      c.firstNotHandled ??= r.message;
      return;
  }
}

/** A service the workload was offered to, with what happened; or one it skipped, with why. */
export type ServiceRun =
  | { readonly kind: 'skipped'; readonly title: string; readonly svc: ServiceState; readonly reason: string }
  | {
      readonly kind: 'run';
      readonly title: string;
      readonly svc: ServiceState;
      readonly protocol: number;
      readonly counts: DecisionCounts;
      /** New connections per real server (connections that matched an existing entry are not counted). */
      readonly perDest: ReadonlyMap<DestState, number>;
    };

interface Run {
  readonly svc: ServiceState;
  readonly title: string;
  readonly protocol: number;
  readonly vaddr: number;
  readonly vport: number;
  readonly fwmark: number;
  readonly rng: Xorshift32;
  readonly counts: DecisionCounts;
  readonly perDest: Map<DestState, number>;
  readonly steps: readonly number[];
}

/** Runs the workload on `engine` (its state advances); `now` is the clock at the end, in ms. */
export function runWorkload(
  engine: IpvsEngine,
  w: Workload,
): { readonly services: ServiceRun[]; readonly now: number } {
  const { connections: n, clients: spec, lifecycle, intervalMs: interval } = w;
  const services: ServiceRun[] = [];
  const runs: Run[] = [];
  for (const svc of engine.services) {
    const k = svc.key;
    const title = serviceName(k).replace(/ +$/, '');
    if ((k.kind === 'addr' ? k.address.family : k.family) === 'ipv6') {
      services.push({ kind: 'skipped', title, svc, reason: 'IPv6 services are not simulated' });
      continue;
    }
    const protocol = k.kind === 'addr' ? IPVS_PROTOCOL_NUMBER[k.protocol] : IPPROTO_TCP;
    if (protocol !== IPPROTO_TCP && protocol !== IPPROTO_UDP) {
      services.push({ kind: 'skipped', title, svc, reason: 'SCTP services are not simulated' });
      continue;
    }
    const run: Run = {
      svc,
      title,
      protocol,
      vaddr: k.kind === 'addr' ? (k.address.addr as number) : 0,
      vport: k.kind === 'addr' && k.port !== 0 ? k.port : 80,
      fwmark: k.kind === 'fwmark' ? k.fwmark : 0,
      rng: new Xorshift32(spec.seed),
      counts: {
        scheduled: 0,
        templateNew: 0,
        templateReused: 0,
        existing: 0,
        noDestination: 0,
        dropped: 0,
        notHandled: 0,
      },
      perDest: new Map(),
      steps:
        protocol === IPPROTO_UDP
          ? [0]
          : lifecycle === 'syn'
            ? [TCP_SYN]
            : lifecycle === 'established'
              ? [TCP_SYN, TCP_ACK]
              : [TCP_SYN, TCP_ACK, TCP_FIN | TCP_ACK],
    };
    runs.push(run);
    services.push({ kind: 'run', title, svc, protocol, counts: run.counts, perDest: run.perDest });
  }
  // All services receive their connections side by side on one clock, as on a real director.
  const hostBase = spec.net.length >= 31 ? spec.net.base : spec.net.base + 1;
  const portSpan = spec.portHigh - spec.portLow + 1;
  let now = 0;
  for (let i = 0; i < n; i++) {
    now = i * interval;
    for (const run of runs) {
      const saddr = (hostBase + (run.rng.next() % spec.count)) >>> 0;
      const sport = spec.portLow + (run.rng.next() % portSpan);
      let first: InputOutcome | undefined;
      for (const flags of run.steps) {
        const r = ipvsInput(
          engine,
          {
            protocol: run.protocol,
            saddr,
            sport,
            daddr: run.vaddr,
            dport: run.vport,
            tcpFlags: flags,
            length: 60,
            fwmark: run.fwmark,
          },
          now,
        );
        if (first === undefined) {
          first = r;
          if (r.kind !== 'accepted') break;
        }
      }
      const f = first!;
      count(run.counts, f);
      if (f.kind === 'accepted' && f.decision.kind !== 'existing-connection')
        run.perDest.set(f.conn.dest, (run.perDest.get(f.conn.dest) ?? 0) + 1);
    }
  }
  engine.connections.expire(now);
  return { services, now };
}
