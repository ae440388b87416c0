/**
 * Loads a connection listing (`ipvsadm -L -n -c`, `/proc/net/ip_vs_conn`) into a simulated IPVS, so packets of the
 * clients it lists meet their entries: an established connection keeps its real server (even one of weight 0), a
 * persistence template keeps sending its client to the same server, and an entry whose real server is no longer in
 * the table points at a deleted server (`ip_vs_trash`): with `expire_nodest_conn=0` its packets are dropped until it
 * expires. The listing is taken as of `now` (its expiry columns count from then).
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { type Issue, issue } from '../source/issue.ts';
import { Connection } from './conn-table.ts';
import { DestState } from './dest-state.ts';
import type { IpvsEngine } from './engine.ts';
import { type ConnectionRow, formatConnEndpoint, isTemplateRow } from './ipvsadm-conn-list.ts';
import type { ServiceState } from './service-state.ts';
import { TCP_STATE_NAMES, tcpStateActive } from './tcp-state.ts';

const PROTO: Readonly<Record<string, number>> = { TCP: 6, UDP: 17, SCTP: 132 };

/** Servers referenced by entries but gone from their service: one state per service and address:port. */
function deletedDest(svc: ServiceState, row: ConnectionRow, gone: Map<string, DestState>): DestState {
  const key = `${svc.config.origin.label} ${formatConnEndpoint(row.destination)}`;
  let d = gone.get(key);
  if (d === undefined) {
    d = new DestState(
      {
        address: row.destination.address,
        port: row.destination.port,
        forwarding: svc.dests[0]?.forwarding ?? { kind: 'route' },
        weight: 0,
        origin: row.pos
          ? { kind: 'file', label: `connection entry to ${formatConnEndpoint(row.destination)}`, pos: row.pos }
          : svc.config.origin,
      },
      svc.overheadMode,
    );
    d.available = false;
    gone.set(key, d);
  }
  return d;
}

export interface SeedResult {
  readonly seeded: number;
  /** Entries whose real server is not in the table (deleted): their packets are dropped or expire them. */
  readonly toDeleted: readonly ConnectionRow[];
  readonly issues: readonly Issue[];
}

/** Adds the listed entries to `engine`'s connection table at time `now` (ms). */
export function seedConnections(engine: IpvsEngine, rows: readonly ConnectionRow[], now: number): SeedResult {
  const issues: Issue[] = [];
  const toDeleted: ConnectionRow[] = [];
  const gone = new Map<string, DestState>();
  let seeded = 0;
  // Templates first: the entries they control link to them.
  const ordered = [...rows].sort((a, b) => Number(isTemplateRow(b)) - Number(isTemplateRow(a)));
  for (const row of ordered) {
    const v = row.virtual.address;
    const c = row.source.address;
    if (v.family !== 'ipv4' || c.family !== 'ipv4' || row.destination.address.family !== 'ipv4') continue;
    const protocol = PROTO[row.protocol];
    if (protocol === undefined) {
      issues.push(
        issue(
          'ipvs-conn-unmodelled',
          `connection entry of protocol ${row.protocol} (a fwmark template?) is not loaded`,
          row.pos,
          'info',
        ),
      );
      continue;
    }
    const svc = engine.findService(protocol, v.addr, row.virtual.port, 0);
    if (svc === undefined) {
      issues.push(
        issue(
          'ipvs-conn-no-service',
          `connection entry ${row.protocol} ${formatConnEndpoint(row.source)} → ${formatConnEndpoint(row.virtual)} matches no virtual service of the table (a deleted service?); not loaded`,
          row.pos,
          'warning',
        ),
      );
      continue;
    }
    const da = row.destination.address.addr;
    let dest = svc.dests.find(
      (d) => d.address.family === 'ipv4' && d.address.addr === da && d.port === row.destination.port,
    );
    if (dest === undefined) {
      dest = deletedDest(svc, row, gone);
      toDeleted.push(row);
    }
    const template = isTemplateRow(row);
    let control: Connection | undefined;
    if (!template && svc.config.persistence) {
      const snet = (c.addr & svc.config.persistence.netmask) >>> 0;
      control = engine.connections.lookup(
        protocol,
        snet,
        0,
        v.addr,
        svc.config.key.kind === 'addr' && svc.config.key.port === 0 ? 0 : row.virtual.port,
      );
    }
    const state = template ? 0 : protocol === 6 ? TCP_STATE_NAMES.indexOf(row.state as never) : 0;
    const conn = new Connection({
      protocol,
      caddr: c.addr,
      cport: row.source.port,
      vaddr: v.addr,
      vport: row.virtual.port,
      dport: row.destination.port,
      dest,
      service: svc,
      template,
      ...(control ? { control } : {}),
      now,
      timeout: row.expires,
    });
    if (state > 0) conn.state = state;
    if (!template && protocol === 6 && tcpStateActive(conn.state)) conn.inactive = false;
    engine.connections.add(conn);
    seeded++;
  }
  if (toDeleted.length > 0)
    issues.push(
      issue(
        'ipvs-conn-deleted-server',
        `${toDeleted.length} connection entr${toDeleted.length === 1 ? 'y points' : 'ies point'} at real servers no longer in the table (${[...new Set(toDeleted.map((r) => formatConnEndpoint(r.destination)))].join(', ')}): deleted servers whose entries live on until they expire`,
        toDeleted[0]!.pos,
        'info',
      ),
    );
  return { seeded, toDeleted, issues };
}

/** `a.b.c.d:port` of a client in a row. */
export function rowClient(row: ConnectionRow): { addr: Ipv4; port: number } | undefined {
  const s = row.source.address;
  return s.family === 'ipv4' ? { addr: s.addr as Ipv4, port: row.source.port } : undefined;
}

export function describeRow(row: ConnectionRow): string {
  return `${row.protocol} ${row.state} ${formatConnEndpoint(row.source)} → ${formatConnEndpoint(row.virtual)} → ${formatConnEndpoint(row.destination)}`;
}
