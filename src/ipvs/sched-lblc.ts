/**
 * Locality-based schedulers keyed by the packet's DESTINATION address (ip_vs_lblc.c, ip_vs_lblcr.c), meant for cache
 * clusters behind fwmark services. For an ordinary single-VIP service every connection shares one cache entry, so
 * lblc sticks to one server until that server has more active connections than its weight while another server is
 * below half its weight.
 *
 * Kernel details kept: the cached server is reused without looking at the threshold OVERLOAD flag (only at
 * availability, weight > 0 and the lblc "overloaded" rule); the fallback is wlc over the whole service; lblcr keeps a
 * SET of servers per destination (newest first), picks its weighted least-loaded member and drops the most loaded one
 * when the set has not changed for `lblcr_expiration` (24 h). Cache expiry by the kernel's 60 s timer is modelled as
 * "entries unused for `expiration` are gone" at lookup time.
 */
import { activeFactor, connOverhead, type DestState } from './dest-state.ts';
import { hash32 } from './sched-hash.ts';
import { NO_DEST, type SchedService, type ScheduleInput, type Scheduler } from './scheduler.ts';

/** `DEFAULT_EXPIRATION` of both modules: 24 hours, in milliseconds. */
export const LBLC_DEFAULT_EXPIRATION_MS = 24 * 60 * 60 * 1000;
const TAB_BITS = 10;

/** The wlc pass both modules fall back to (`__ip_vs_lblc_schedule`). */
export function weightedLeastConnection(svc: SchedService): DestState | undefined {
  const ds = svc.dests;
  const n = ds.length;
  let i = 0;
  for (; i < n; i++) {
    const d = ds[i]!;
    if (!d.overloaded && d.weight > 0) break;
  }
  if (i === n) return undefined;
  const af = activeFactor(svc.overheadMode);
  let least = ds[i]!;
  let lw = least.weight;
  let loh = least.activeConns * af + least.inactConns;
  for (i++; i < n; i++) {
    const d = ds[i]!;
    if (d.overloaded) continue;
    const doh = d.activeConns * af + d.inactConns;
    if (loh * d.weight > doh * lw) {
      least = d;
      lw = d.weight;
      loh = doh;
    }
  }
  return least;
}

/** lblc's `is_overloaded`: more active connections than weight while some server is below half its weight. */
export function lblcOverloaded(dest: DestState, svc: SchedService): boolean {
  if (dest.activeConns <= dest.weight) return false;
  const ds = svc.dests;
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    if (d.activeConns * 2 < d.weight) return true;
  }
  return false;
}

interface LblcEntry {
  dest: DestState;
  lastuse: number;
}

/** Cache keyed by destination address; buckets as the kernel hashes them (`hash_32(daddr, 10)`), kept as a Map. */
export class LocalityLeastConnectionScheduler implements Scheduler {
  readonly name = 'lblc';
  readonly failure = NO_DEST;
  readonly cache = new Map<number, LblcEntry>();
  expiration = LBLC_DEFAULT_EXPIRATION_MS;

  init(_svc: SchedService): void {
    this.cache.clear();
  }

  changed(_svc: SchedService): void {}

  /** The kernel's bucket for a destination address (for explanations). */
  static bucket(daddr: number): number {
    return hash32(daddr, TAB_BITS);
  }

  schedule(svc: SchedService, input: ScheduleInput): DestState | undefined {
    const now = input.now ?? 0;
    let en = this.cache.get(input.daddr);
    if (en !== undefined && now - en.lastuse > this.expiration) {
      this.cache.delete(input.daddr);
      en = undefined;
    }
    if (en !== undefined) {
      en.lastuse = now;
      const d = en.dest;
      if (d.available && d.weight > 0 && !lblcOverloaded(d, svc)) return d;
    }
    const dest = weightedLeastConnection(svc);
    if (dest === undefined) return undefined;
    if (en !== undefined) en.dest = dest;
    else this.cache.set(input.daddr, { dest, lastuse: now });
    return dest;
  }
}

interface LblcrEntry {
  /** Newest first (`list_add_rcu`). */
  set: DestState[];
  lastmod: number;
  lastuse: number;
}

function setMin(set: readonly DestState[], svc: SchedService): DestState | undefined {
  let i = 0;
  const n = set.length;
  for (; i < n; i++) {
    const d = set[i]!;
    if (d.overloaded) continue;
    if (d.weight > 0 && d.available) break;
  }
  if (i === n) return undefined;
  let least = set[i]!;
  let loh = connOverhead(least, svc.overheadMode);
  for (i++; i < n; i++) {
    const d = set[i]!;
    if (d.overloaded) continue;
    const doh = connOverhead(d, svc.overheadMode);
    if (loh * d.weight > doh * least.weight && d.available) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function setMax(set: readonly DestState[], svc: SchedService): DestState | undefined {
  let i = 0;
  const n = set.length;
  for (; i < n; i++) if (set[i]!.weight > 0) break;
  if (i === n) return undefined;
  let most = set[i]!;
  let moh = connOverhead(most, svc.overheadMode);
  for (i++; i < n; i++) {
    const d = set[i]!;
    const doh = connOverhead(d, svc.overheadMode);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export class LocalityLeastConnectionReplicationScheduler implements Scheduler {
  readonly name = 'lblcr';
  readonly failure = NO_DEST;
  readonly cache = new Map<number, LblcrEntry>();
  expiration = LBLC_DEFAULT_EXPIRATION_MS;

  init(_svc: SchedService): void {
    this.cache.clear();
  }

  changed(_svc: SchedService): void {}

  schedule(svc: SchedService, input: ScheduleInput): DestState | undefined {
    const now = input.now ?? 0;
    let en = this.cache.get(input.daddr);
    if (en !== undefined && now - en.lastuse > this.expiration) {
      this.cache.delete(input.daddr);
      en = undefined;
    }
    if (en !== undefined) {
      en.lastuse = now;
      const dest = setMin(en.set, svc);
      if (en.set.length > 1 && now > en.lastmod + this.expiration) {
        const m = setMax(en.set, svc);
        if (m !== undefined) {
          en.set.splice(en.set.indexOf(m), 1);
          en.lastmod = now;
        }
      }
      if (dest !== undefined && !lblcOverloaded(dest, svc)) return dest;
      const d = weightedLeastConnection(svc);
      if (d === undefined) return undefined;
      if (!en.set.includes(d)) {
        en.set.unshift(d);
        en.lastmod = now;
      }
      return d;
    }
    const d = weightedLeastConnection(svc);
    if (d === undefined) return undefined;
    this.cache.set(input.daddr, { set: [d], lastmod: now, lastuse: now });
    return d;
  }
}
