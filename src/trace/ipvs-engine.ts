/** Adapts the IPVS simulator to the walker's LOCAL_IN hook. */

import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { seedConnections } from '../ipvs/conn-seed.ts';
import { IpvsEngine as IpvsSim } from '../ipvs/engine.ts';
import { forwardFrame, forwardReply } from '../ipvs/forward.ts';
import type { ConnectionRow } from '../ipvs/ipvsadm-conn-list.ts';
import { formatAddrPort, formatServiceKey, type IpvsTable } from '../ipvs/model.ts';
import { assertNever } from '../source/assert-never.ts';
import { implicit } from '../source/origin.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { IpvsDecision, IpvsEngine, IpvsReplyDecision } from './engines.ts';

/** Placeholder next-hop MAC: the walker resolves the real one (walking ARP) and substitutes it. */
const PENDING = 'ff:ff:ff:ff:ff:fe' as Mac;

/** Kernels from 5.3 on decrement the TTL when IPVS transmits ("ipvs: Decrement ttl", 2019). */
export function kernelDecrementsTtl(release: string | undefined): boolean {
  if (!release) return true;
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return true;
  const major = Number(m[1]);
  const minor = Number(m[2]);
  return major > 5 || (major === 5 && minor >= 3);
}

export interface IpvsEngineOptions {
  /** `uname -r` of the director, to pick kernel behaviours. */
  readonly kernel?: string;
  /** The director's sysctls: `net.ipv4.vs.expire_nodest_conn`, `conn_reuse_mode`, `expire_quiescent_template`, `sloppy_tcp`. */
  readonly sysctl?: ReadonlyMap<string, { readonly value: string }>;
  /** The director's connection table as listed (`ipvsadm -L -n -c`): loaded when the first packet arrives. */
  readonly connections?: readonly ConnectionRow[];
}

/** The IPVS sysctls that change what packets meet, with the kernel's defaults. */
export function ipvsSysctls(sysctl: IpvsEngineOptions['sysctl']): {
  expireNodestConn: boolean;
  connReuseMode: number;
  expireQuiescentTemplate: boolean;
  sloppyTcp: boolean;
} {
  const num = (k: string, dflt: number) => {
    const v = sysctl?.get(`net.ipv4.vs.${k}`)?.value.trim();
    const n = v === undefined ? Number.NaN : Number(v);
    return Number.isInteger(n) ? n : dflt;
  };
  return {
    expireNodestConn: num('expire_nodest_conn', 0) !== 0,
    connReuseMode: num('conn_reuse_mode', 1),
    expireQuiescentTemplate: num('expire_quiescent_template', 0) !== 0,
    sloppyTcp: num('sloppy_tcp', 0) !== 0,
  };
}

const METHOD = { route: 'Route', masq: 'Masq', tunnel: 'Tunnel' } as const;

export function makeIpvsEngine(table: IpvsTable, options: IpvsEngineOptions = {}): IpvsEngine {
  const sim = new IpvsSim(table, { decrementTtl: kernelDecrementsTtl(options.kernel), ...ipvsSysctls(options.sysctl) });
  let seeded = options.connections === undefined || options.connections.length === 0;
  const seed = (nowNs: bigint) => {
    if (seeded) return;
    seeded = true;
    seedConnections(sim, options.connections!, Number(nowNs / 1_000_000n));
  };
  return {
    input(frame: EthernetFrame, nowNs: bigint, directorIp?: Ipv4, fwmark?: number): IpvsDecision {
      seed(nowNs);
      const out = forwardFrame(sim, frame, {
        now: Number(nowNs / 1_000_000n),
        directorMac: frame.dst,
        ...(directorIp !== undefined ? { directorIp } : {}),
        ...(fwmark ? { fwmark } : {}),
        resolveNeighbour: () => PENDING,
      });
      switch (out.kind) {
        case 'not-handled':
          return { kind: 'not-ipvs' };
        case 'local-delivery':
          return { kind: 'not-ipvs' };
        case 'no-destination':
          return {
            kind: 'no-destination',
            step: {
              kind: 'ipvs',
              service: formatServiceKey(out.service.key),
              serviceOrigin: out.service.origin,
              outcome: 'no-destination',
              scheduler: out.scheduler,
              connection: 'none',
              explanation: `${out.log}; the kernel answers ${out.response}${out.unmodelled ? ' (scheduler not modelled)' : ''}`,
            },
          };
        case 'dropped':
          return {
            kind: 'no-destination',
            step: {
              kind: 'ipvs',
              service: out.service ? formatServiceKey(out.service.key) : '?',
              serviceOrigin: out.service?.origin ?? implicit('IPVS'),
              outcome: 'no-destination',
              scheduler: out.service?.scheduler ?? '?',
              connection: out.connection ? `${out.connection.stateBefore} → ${out.connection.state}` : 'none',
              explanation: `IPVS drops the packet: ${out.message}`,
            },
          };
        case 'forwarded': {
          const d = out.decision.destination;
          const rs = d.address.family === 'ipv4' ? (d.address.addr as Ipv4) : undefined;
          const dest = formatAddrPort(d.address, d.port);
          const c = out.connection;
          const how =
            out.decision.kind === 'existing-connection'
              ? 'existing connection'
              : out.decision.kind === 'persistent-template'
                ? `persistence template${out.decision.reused ? ' (reused)' : ''}`
                : `${out.decision.scheduler} chose it`;
          const step = {
            kind: 'ipvs' as const,
            service: formatServiceKey(out.service.key),
            serviceOrigin: out.service.origin,
            outcome: 'forwarded' as const,
            method: METHOD[out.method],
            destination: dest,
            destinationOrigin: d.origin,
            scheduler: out.service.scheduler,
            connection: `${c.created ? 'new' : 'existing'} entry ${c.stateBefore} → ${c.state} (expires in ${c.timeout} s; ActiveConn ${c.activeConns}, InActConn ${c.inactConns})`,
            explanation: `${METHOD[out.method]} to ${dest} (${how}); ${c.created ? 'new' : 'existing'} connection ${c.state}; ${out.notes.join('; ')}`,
          };
          if (rs === undefined)
            return {
              kind: 'no-destination',
              step: { ...step, outcome: 'no-destination', explanation: `${dest}: IPv6 real servers are not modelled` },
            };
          const frame0 = out.frame;
          return {
            kind: 'forward',
            step,
            method: METHOD[out.method],
            nextHop: rs,
            build: (src: Mac, dst: Mac) => ({ ...frame0, src, dst: frame0.dst === PENDING ? dst : frame0.dst }),
          };
        }
        default:
          return assertNever(out, 'IPVS outcome');
      }
    },
    output(frame: EthernetFrame, nowNs: bigint): IpvsReplyDecision {
      seed(nowNs);
      const r = forwardReply(sim, frame, Number(nowNs / 1_000_000n));
      if (r.kind === 'not-ipvs') return { kind: 'not-ipvs' };
      const c = r.connection;
      return {
        kind: 'snat',
        frame: r.frame,
        step: {
          kind: 'ipvs',
          service: formatServiceKey(r.service.key),
          serviceOrigin: r.service.origin,
          outcome: 'forwarded',
          method: 'Masq',
          scheduler: r.service.scheduler,
          connection: `existing entry ${c.stateBefore} → ${c.state} (expires in ${c.timeout} s)`,
          explanation: r.notes.join('; '),
        },
      };
    },
    destinations() {
      const out: { addr: Ipv4; port: number; protocol: 'tcp' | 'udp' }[] = [];
      for (const s of table.services)
        for (const d of s.destinations)
          if (d.address.family === 'ipv4')
            out.push({
              addr: d.address.addr as Ipv4,
              port: d.port,
              protocol: s.key.kind === 'addr' && s.key.protocol === 'UDP' ? 'udp' : 'tcp',
            });
      return out;
    },
  };
}
