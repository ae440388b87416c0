/**
 * Builds the compiler's input for one Proxmox node from its files, given as text by name: `cluster.fw`, `host.fw`,
 * `<vmid>.fw`, the guests' `netN` lines, `corosync.conf`. Missing files are what pve-firewall makes of them: no
 * cluster.fw = firewall off, no host.fw = defaults, no `<vmid>.fw` = no guest chains. Never throws.
 */

import { appendAll } from '../source/arrays.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import type { PveGuestInput, PveNodeInput } from './compile.ts';
import { readCorosyncConf } from './corosync.ts';
import { emptyFwConfig, readFwConfig } from './fw-config.ts';
import { type GuestConfig, type GuestKind, type GuestNic, parseNetValue, readGuestConfig } from './guest-config.ts';

export interface PveGuestSource {
  readonly kind: GuestKind;
  readonly vmid: string;
  /** The guest's configuration file text, or its `netN` values (as in pve-firewall's test harness). */
  readonly conf:
    | { readonly file: string; readonly text: string }
    | { readonly file: string; readonly nets: Readonly<Record<string, string>> };
}

export interface PveNodeFiles {
  readonly nodeName: string;
  readonly cluster?: { readonly file: string; readonly text: string };
  readonly host?: { readonly file: string; readonly text: string };
  /** vmid → its `.fw` file. */
  readonly guestFw: ReadonlyMap<string, { readonly file: string; readonly text: string }>;
  readonly guests: readonly PveGuestSource[];
  readonly corosync?: { readonly file: string; readonly text: string };
  readonly localNetwork?: string;
}

export function pveNodeInput(files: PveNodeFiles): ReadResult<PveNodeInput> {
  const issues: Issue[] = [];
  const cluster = files.cluster
    ? take(readFwConfig(files.cluster.text, files.cluster.file, 'cluster'), issues)
    : emptyFwConfig('cluster', 'cluster.fw');
  const host = files.host
    ? take(readFwConfig(files.host.text, files.host.file, 'host', { cluster }), issues)
    : emptyFwConfig('host', 'host.fw');
  const guests: PveGuestInput[] = [];
  for (const g of files.guests) {
    let config: GuestConfig;
    if ('text' in g.conf) config = take(readGuestConfig(g.conf.text, g.conf.file, g.kind, g.vmid), issues);
    else {
      const nics: GuestNic[] = [];
      for (const [netid, value] of Object.entries(g.conf.nets)) {
        const r = parseNetValue(netid, value, g.kind, filePos(g.conf.file, 0));
        if (typeof r === 'string')
          issues.push(issue('pve-guest-bad-net', `${g.vmid} ${netid}: ${r}`, filePos(g.conf.file, 0)));
        else nics.push(r.nic);
      }
      config = { kind: g.kind, vmid: g.vmid, file: g.conf.file, nics };
    }
    const fwFile = files.guestFw.get(g.vmid);
    const fw = fwFile
      ? take(readFwConfig(fwFile.text, fwFile.file, g.kind === 'qemu' ? 'vm' : 'ct', { cluster }), issues)
      : undefined;
    guests.push(fw ? { config, fw } : { config });
  }
  const corosync = files.corosync
    ? take(readCorosyncConf(files.corosync.text, files.corosync.file), issues)
    : undefined;
  return {
    value: {
      cluster,
      host,
      guests,
      nodeName: files.nodeName,
      ...(corosync ? { corosync } : {}),
      ...(files.localNetwork !== undefined ? { localNetwork: files.localNetwork } : {}),
    },
    issues,
  };
}

function take<T>(r: ReadResult<T>, issues: Issue[]): T {
  appendAll(issues, r.issues);
  return r.value as T;
}
