/**
 * The IPVS connection table: entries keyed by protocol + client addr:port + virtual addr:port (IPv4), each bound to a
 * destination whose ActiveConn/InActConn/PersistConn counters it maintains as the kernel does (`ip_vs_bind_dest`,
 * `ip_vs_unbind_dest`, `set_tcp_state`). Time is passed in (milliseconds); nothing reads a clock.
 *
 * Lookups do not allocate. Expiry is explicit: `expire(now)` removes due entries in expiry order (persistence
 * templates that still control entries are re-armed by their timeout, as `ip_vs_conn_expire` does). It returns at
 * once while nothing can be due.
 */

import type { DestState } from './dest-state.ts';
import type { IpAddress } from './model.ts';
import type { ServiceState } from './service-state.ts';

export class Connection {
  /** IP protocol number; 0 (IPPROTO_IP) for fwmark persistence templates. */
  readonly protocol: number;
  readonly caddr: number;
  readonly cport: number;
  /** For fwmark templates: the mark. */
  readonly vaddr: number;
  readonly vport: number;
  readonly daddr: IpAddress;
  readonly dport: number;
  readonly dest: DestState;
  readonly service: ServiceState;
  readonly template: boolean;
  /** The persistence template controlling this entry. */
  readonly control: Connection | undefined;
  readonly createdAt: number;
  /** IP_VS_CONN_F_NOOUTPUT: DR/TUN, the director never sees the server's replies. */
  noOutput: boolean;
  /** IP_VS_CONN_F_INACTIVE: counted in InActConn rather than ActiveConn. */
  inactive = true;
  /** Protocol state index (TCP: TCP_STATE_NAMES; UDP: 0; templates: 0 = NONE). */
  state = 0;
  /** Seconds; re-armed by every packet. */
  timeout: number;
  expiresAt: number;
  /** Entries controlled by this template. */
  nControl = 0;
  inPkts = 0;
  inBytes = 0;
  /** Hash chain. */
  next: Connection | undefined = undefined;
  readonly hash: number;

  constructor(init: {
    protocol: number;
    caddr: number;
    cport: number;
    vaddr: number;
    vport: number;
    dport: number;
    dest: DestState;
    service: ServiceState;
    template: boolean;
    control?: Connection;
    now: number;
    timeout: number;
  }) {
    this.protocol = init.protocol;
    this.caddr = init.caddr;
    this.cport = init.cport;
    this.vaddr = init.vaddr;
    this.vport = init.vport;
    this.daddr = init.dest.address;
    this.dport = init.dport;
    this.dest = init.dest;
    this.service = init.service;
    this.template = init.template;
    this.control = init.control;
    this.createdAt = init.now;
    this.noOutput = !init.template && init.dest.forwarding.kind !== 'masq';
    this.timeout = init.timeout;
    this.expiresAt = init.now + init.timeout * 1000;
    this.hash = connHash(init.protocol, init.caddr, init.cport, init.vaddr, init.vport);
  }
}

/** A 30-bit hash (stays a V8 small integer) of the lookup key. */
export function connHash(protocol: number, caddr: number, cport: number, vaddr: number, vport: number): number {
  let h = Math.imul(caddr ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ vaddr, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ ((cport << 16) | vport), 0x27d4eb2f);
  h ^= protocol;
  return (h ^ (h >>> 15)) & 0x3fffffff;
}

export class ConnectionTable {
  private readonly chains = new Map<number, Connection>();
  /** Every entry in creation order (the kernel lists in hash order, which is randomised per boot). */
  private readonly all = new Set<Connection>();
  /** No entry expires before this time (ms). */
  private nextExpiry = Number.POSITIVE_INFINITY;

  get size(): number {
    return this.all.size;
  }

  entries(): IterableIterator<Connection> {
    return this.all.values();
  }

  lookup(protocol: number, caddr: number, cport: number, vaddr: number, vport: number): Connection | undefined {
    for (let c = this.chains.get(connHash(protocol, caddr, cport, vaddr, vport)); c !== undefined; c = c.next)
      if (c.protocol === protocol && c.caddr === caddr && c.cport === cport && c.vaddr === vaddr && c.vport === vport)
        return c;
    return undefined;
  }

  /** Hashes the entry and binds it to its destination (counters, overload flag, template control). */
  add(c: Connection): void {
    c.next = this.chains.get(c.hash);
    this.chains.set(c.hash, c);
    this.all.add(c);
    c.dest.bind(c.template, c.inactive);
    if (c.control) c.control.nControl++;
    if (c.expiresAt < this.nextExpiry) this.nextExpiry = c.expiresAt;
  }

  /** Re-arms the entry's timer with `timeout` seconds from `now`. */
  touch(c: Connection, now: number, timeout: number): void {
    c.timeout = timeout;
    c.expiresAt = now + timeout * 1000;
    if (c.expiresAt < this.nextExpiry) this.nextExpiry = c.expiresAt;
  }

  /** Unhashes the entry and unbinds it from its destination. */
  remove(c: Connection): void {
    if (!this.all.delete(c)) return;
    let p = this.chains.get(c.hash);
    if (p === c) {
      if (c.next === undefined) this.chains.delete(c.hash);
      else this.chains.set(c.hash, c.next);
    } else {
      while (p !== undefined && p.next !== c) p = p.next;
      if (p !== undefined) p.next = c.next;
    }
    c.next = undefined;
    c.dest.unbind(c.template, c.inactive);
    if (c.control) c.control.nControl--;
  }

  /** Removes every entry whose timer ran out at or before `now`; returns how many were removed. */
  expire(now: number): number {
    if (now < this.nextExpiry) return 0;
    const due: Connection[] = [];
    for (const c of this.all) if (c.expiresAt <= now) due.push(c);
    due.sort((a, b) => a.expiresAt - b.expiresAt);
    let removed = 0;
    for (let i = 0; i < due.length; i++) {
      const c = due[i]!;
      if (c.template && c.nControl > 0) {
        // ip_vs_conn_expire: a template is kept while it controls entries; its timer is re-armed.
        c.expiresAt += Math.max(c.timeout, 1) * 1000;
        if (c.expiresAt <= now) {
          let j = i + 1;
          while (j < due.length && due[j]!.expiresAt <= c.expiresAt) j++;
          due.splice(j, 0, c);
        }
        continue;
      }
      this.remove(c);
      removed++;
    }
    let next = Number.POSITIVE_INFINITY;
    for (const c of this.all) if (c.expiresAt < next) next = c.expiresAt;
    this.nextExpiry = next;
    return removed;
  }
}
