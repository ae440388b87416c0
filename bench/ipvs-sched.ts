/**
 * IPVS scheduling benchmark: N new-connection scheduling decisions (default 10 million) across 100 real servers, for
 * every scheduler, on one core. Each decision binds a connection to the chosen server and a ring of 10 000 live
 * connections releases the oldest, so the least-connection schedulers see changing counters. Results are absolute
 * rates and ratios against two baselines measured in the same run: an empty loop and a trivial modulo picker doing the
 * same connection bookkeeping. Goal: ≥ 5 M decisions/s for rr, wrr, wlc and mh.
 *
 *   npx tsx bench/ipvs-sched.ts [decisions]
 */
import type { DestState } from '../src/ipvs/dest-state.ts';
import type { IpvsDestination, IpvsService } from '../src/ipvs/model.ts';
import { scheduleInput } from '../src/ipvs/scheduler.ts';
import { KERNEL_SCHEDULERS } from '../src/ipvs/schedulers.ts';
import { ServiceState } from '../src/ipvs/service-state.ts';

const DECISIONS = Number(process.argv[2] ?? 10_000_000);
const SERVERS = 100;
const LIVE = 10_000;
const CLIENTS = 1 << 16;

const origin = { kind: 'implicit' as const, label: 'bench' };

function makeService(scheduler: string): ServiceState {
  const destinations: IpvsDestination[] = [];
  for (let i = 0; i < SERVERS; i++)
    destinations.push({
      address: { family: 'ipv4', addr: (0x0a000000 + i + 1) as never },
      port: 80,
      forwarding: { kind: 'route' },
      weight: 1 + (i % 4),
      origin,
    });
  const config: IpvsService = {
    key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: 0xc0000208 as never }, port: 80 },
    scheduler,
    schedFlags: 0,
    onePacket: false,
    destinations,
    origin,
  };
  return new ServiceState(config, 'classic');
}

// Deterministic client addresses and ports (xorshift32), prepared outside the timed loops.
const saddrs = new Uint32Array(CLIENTS);
const sports = new Uint16Array(CLIENTS);
{
  let x = 2463534242;
  for (let i = 0; i < CLIENTS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    saddrs[i] = (0xc6336400 + ((x >>> 0) % 65536)) >>> 0;
    sports[i] = 1024 + ((x >>> 8) % 64512);
  }
}

interface Result {
  readonly name: string;
  readonly ns: number;
  readonly failed: number;
  readonly spread: string;
}

function spread(svc: ServiceState, picks: Float64Array): string {
  let used = 0;
  let max = 0;
  for (let i = 0; i < svc.dests.length; i++) {
    if (picks[i]! > 0) used++;
    if (picks[i]! > max) max = picks[i]!;
  }
  return `${used}/${svc.dests.length} used, busiest ${((100 * max) / DECISIONS).toFixed(1)}%`;
}

function runScheduler(name: string, n: number): Result {
  const svc = makeService(name);
  const sched = svc.scheduler!;
  const input = scheduleInput();
  input.daddr = 0xc0000208;
  input.dport = 80;
  const ring: (DestState | undefined)[] = new Array(LIVE).fill(undefined);
  const picks = new Float64Array(svc.dests.length);
  let failed = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const c = i & (CLIENTS - 1);
    input.saddr = saddrs[c]!;
    input.sport = sports[c]!;
    const d = sched.schedule(svc, input);
    const slot = i % LIVE;
    const old = ring[slot];
    if (old !== undefined) old.activeConns--;
    if (d === undefined) {
      failed++;
      ring[slot] = undefined;
      continue;
    }
    d.activeConns++;
    ring[slot] = d;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  // A second, untimed pass to report how the decisions spread (keeps the timed loop free of bookkeeping).
  if (n === DECISIONS) {
    const s2 = makeService(name);
    const idx = new Map<DestState, number>();
    for (let i = 0; i < s2.dests.length; i++) idx.set(s2.dests[i]!, i);
    const ring2: (DestState | undefined)[] = new Array(LIVE).fill(undefined);
    for (let i = 0; i < Math.min(n, 1_000_000); i++) {
      const c = i & (CLIENTS - 1);
      input.saddr = saddrs[c]!;
      input.sport = sports[c]!;
      const d = s2.scheduler!.schedule(s2, input);
      const old = ring2[i % LIVE];
      if (old) old.activeConns--;
      ring2[i % LIVE] = d;
      if (d) {
        d.activeConns++;
        picks[idx.get(d)!]! += DECISIONS / Math.min(n, 1_000_000);
      }
    }
  }
  return { name, ns, failed, spread: n === DECISIONS ? spread(svc, picks) : '' };
}

function runEmpty(n: number): Result {
  let acc = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) acc = (acc + saddrs[i & (CLIENTS - 1)]!) | 0;
  const ns = Number(process.hrtime.bigint() - t0);
  if (acc === 42) console.log('');
  return { name: 'empty loop', ns, failed: 0, spread: '' };
}

function runModulo(n: number): Result {
  const svc = makeService('rr');
  const ds = svc.dests;
  const ring: (DestState | undefined)[] = new Array(LIVE).fill(undefined);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const d = ds[saddrs[i & (CLIENTS - 1)]! % ds.length]!;
    const slot = i % LIVE;
    const old = ring[slot];
    if (old !== undefined) old.activeConns--;
    d.activeConns++;
    ring[slot] = d;
  }
  const ns = Number(process.hrtime.bigint() - t0);
  return { name: 'modulo picker', ns, failed: 0, spread: '' };
}

const rate = (r: Result) => (DECISIONS / r.ns) * 1e3; // millions per second

// Warm-up (JIT) on a smaller run of everything.
const WARM = Math.min(DECISIONS, 300_000);
runEmpty(WARM);
runModulo(WARM);
for (const s of KERNEL_SCHEDULERS) runScheduler(s, WARM);

const empty = runEmpty(DECISIONS);
const modulo = runModulo(DECISIONS);
const results = KERNEL_SCHEDULERS.map((s) => runScheduler(s, DECISIONS));

const GOAL = new Set(['rr', 'wrr', 'wlc', 'mh']);
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);
console.log(
  `IPVS scheduling: ${DECISIONS.toLocaleString('en-US')} decisions per scheduler, ${SERVERS} real servers (weights 1-4), ${LIVE} live connections, node ${process.version}`,
);
console.log('');
console.log(
  `${pad('scheduler', 14)}${lpad('time', 10)}${lpad('M dec/s', 10)}${lpad('ns/dec', 9)}${lpad('× empty', 10)}${lpad('× modulo', 10)}  goal      spread`,
);
for (const r of [empty, modulo, ...results]) {
  const goal = GOAL.has(r.name) ? (rate(r) >= 5 ? '≥5 ok' : '<5 MISS') : '';
  console.log(
    `${pad(r.name, 14)}${lpad(`${(r.ns / 1e9).toFixed(2)} s`, 10)}${lpad(rate(r).toFixed(1), 10)}${lpad((r.ns / DECISIONS).toFixed(1), 9)}${lpad((r.ns / empty.ns).toFixed(1), 10)}${lpad((r.ns / modulo.ns).toFixed(2), 10)}  ${pad(goal, 8)}  ${r.spread}${r.failed ? ` (${r.failed} failed)` : ''}`,
  );
}
