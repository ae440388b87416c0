/**
 * The IPVS connection table: entries keyed by protocol + client addr:port + virtual addr:port (IPv4), each bound to a
 * destination whose ActiveConn/InActConn/PersistConn counters it maintains as the kernel does (`ip_vs_bind_dest`,
 * `ip_vs_unbind_dest`, `set_tcp_state`). Time is passed in (milliseconds); nothing reads a clock.
 *
 * Lookups do not allocate. Expiry is explicit: `expire(now)` removes due entries in expiry order (persistence
 * templates that still control entries are re-armed by their timeout, as `ip_vs_conn_expire` does). Timers live in a
 * binary min-heap with lazy deletion (every re-arm pushes a new timer; stale ones are skipped when they surface), so
 * expiry costs O(log n) per timer instead of a scan of the table.
 *
 * NAT entries are also hashed by their reply tuple (real server → client), for the director's handling of replies
 * (`ip_vs_out_hook` / `handle_response`).
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
  /** Template state ASSURED (6.x): a controlled connection reached ESTABLISHED or saw a UDP reply. */
  assured = false;
  inPkts = 0;
  inBytes = 0;
  /** Hash chain. */
  next: Connection | undefined = undefined;
  /** Reply-tuple hash chain (NAT entries only). */
  nextOut: Connection | undefined = undefined;
  readonly hash: number;
  /** Hash of the reply tuple ⟨protocol, real server, port, client, port⟩ (IPv4 real servers). */
  readonly outHash: number;
  outPkts = 0;
  outBytes = 0;

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
    const d = init.dest.address;
    this.outHash = connHash(init.protocol, d.family === 'ipv4' ? d.addr : 0, init.dport, init.caddr, init.cport);
  }

  /** True when replies come back through the director and are looked up by their tuple (NAT, not templates). */
  get hashedOut(): boolean {
    return !this.template && this.dest.forwarding.kind === 'masq' && this.daddr.family === 'ipv4';
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
  private readonly outChains = new Map<number, Connection>();
  /** Every entry in creation order (the kernel lists in hash order, which is randomised per boot). */
  private readonly all = new Set<Connection>();
  /** Timer heap: parallel arrays of due times (ms) and entries; may hold stale timers of re-armed entries. */
  private readonly heapTimes: number[] = [];
  private readonly heapConns: Connection[] = [];

  private push(time: number, c: Connection): void {
    const t = this.heapTimes;
    const cs = this.heapConns;
    let i = t.length;
    t.push(time);
    cs.push(c);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (t[parent]! <= time) break;
      t[i] = t[parent]!;
      cs[i] = cs[parent]!;
      i = parent;
    }
    t[i] = time;
    cs[i] = c;
  }

  private pop(): void {
    const t = this.heapTimes;
    const cs = this.heapConns;
    const lastT = t.pop()!;
    const lastC = cs.pop()!;
    const n = t.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && t[child + 1]! < t[child]!) child++;
      if (t[child]! >= lastT) break;
      t[i] = t[child]!;
      cs[i] = cs[child]!;
      i = child;
    }
    t[i] = lastT;
    cs[i] = lastC;
  }

  /** No entry expires before this time (ms). */
  get nextExpiry(): number {
    return this.heapTimes.length === 0 ? Number.POSITIVE_INFINITY : this.heapTimes[0]!;
  }

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

  /** The NAT entry whose reply tuple is ⟨protocol, daddr:dport → caddr:cport⟩ (a real server answering a client). */
  lookupOut(protocol: number, daddr: number, dport: number, caddr: number, cport: number): Connection | undefined {
    for (let c = this.outChains.get(connHash(protocol, daddr, dport, caddr, cport)); c !== undefined; c = c.nextOut)
      if (
        c.protocol === protocol &&
        c.daddr.family === 'ipv4' &&
        c.daddr.addr === daddr &&
        c.dport === dport &&
        c.caddr === caddr &&
        c.cport === cport
      )
        return c;
    return undefined;
  }

  /** Hashes the entry and binds it to its destination (counters, overload flag, template control). */
  add(c: Connection): void {
    c.next = this.chains.get(c.hash);
    this.chains.set(c.hash, c);
    if (c.hashedOut) {
      c.nextOut = this.outChains.get(c.outHash);
      this.outChains.set(c.outHash, c);
    }
    this.all.add(c);
    c.dest.bind(c.template, c.inactive);
    if (c.control) c.control.nControl++;
    this.push(c.expiresAt, c);
  }

  /** Re-arms the entry's timer with `timeout` seconds from `now`. */
  touch(c: Connection, now: number, timeout: number): void {
    c.timeout = timeout;
    const at = now + timeout * 1000;
    if (at === c.expiresAt) return;
    c.expiresAt = at;
    this.push(at, c);
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
    if (c.hashedOut) {
      let q = this.outChains.get(c.outHash);
      if (q === c) {
        if (c.nextOut === undefined) this.outChains.delete(c.outHash);
        else this.outChains.set(c.outHash, c.nextOut);
      } else {
        while (q !== undefined && q.nextOut !== c) q = q.nextOut;
        if (q !== undefined) q.nextOut = c.nextOut;
      }
      c.nextOut = undefined;
    }
    c.dest.unbind(c.template, c.inactive);
    if (c.control) c.control.nControl--;
  }

  /** Removes every entry whose timer ran out at or before `now`; returns how many were removed. */
  expire(now: number): number {
    let removed = 0;
    const t = this.heapTimes;
    const cs = this.heapConns;
    while (t.length > 0 && t[0]! <= now) {
      const time = t[0]!;
      const c = cs[0]!;
      this.pop();
      // A stale timer (the entry was re-armed or removed since) is skipped.
      if (c.expiresAt !== time || !this.all.has(c)) continue;
      if (c.template && c.nControl > 0) {
        // ip_vs_conn_expire: a template is kept while it controls entries; its timer is re-armed.
        c.expiresAt = time + Math.max(c.timeout, 1) * 1000;
        this.push(c.expiresAt, c);
        continue;
      }
      this.remove(c);
      removed++;
    }
    return removed;
  }

  /** Expires the entry at once (`ip_vs_conn_expire_now`). */
  expireNow(c: Connection): void {
    this.remove(c);
  }
}
