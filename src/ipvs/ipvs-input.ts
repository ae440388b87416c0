/**
 * Reads whatever a user pasted about a director's IPVS table: an `ipvsadm -L -n` listing (any of its formats), an
 * `ipvsadm -S`/`-Sn` save, a keepalived.conf, `/proc/net/ip_vs`, an `ipvsadm -L -n -c` connection listing or an
 * `ipvsadm -L --timeout` line. The kind is detected from the content; DPVS look-alikes are read as listings and
 * reported as not kernel IPVS.
 */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import { type ConnectionListing, readIpvsadmConnectionList, readProcIpVsConn } from './ipvsadm-conn-list.ts';
import { type IpvsadmListing, readIpvsadmList } from './ipvsadm-list-reader.ts';
import { readIpvsadmSave } from './ipvsadm-save.ts';
import { type IpvsTimeouts, readIpvsadmTimeout } from './ipvsadm-timeout.ts';
import { type KeepalivedConfig, looksLikeKeepalived, readKeepalivedConf } from './keepalived.ts';
import type { IpvsHeader, IpvsTable } from './model.ts';
import { readProcIpVs } from './proc-ip-vs.ts';

export type IpvsInputKind =
  | 'ipvsadm-list'
  | 'ipvsadm-save'
  | 'keepalived'
  | 'proc-ip-vs'
  | 'ipvsadm-connections'
  | 'proc-ip-vs-conn'
  | 'ipvsadm-timeout';

export type IpvsInput =
  | { readonly kind: 'ipvsadm-list'; readonly table: IpvsTable; readonly listing: IpvsadmListing }
  | { readonly kind: 'ipvsadm-save'; readonly table: IpvsTable }
  | { readonly kind: 'keepalived'; readonly table: IpvsTable; readonly config: KeepalivedConfig }
  | { readonly kind: 'proc-ip-vs'; readonly table: IpvsTable; readonly header?: IpvsHeader }
  | { readonly kind: 'ipvsadm-connections' | 'proc-ip-vs-conn'; readonly connections: ConnectionListing }
  | { readonly kind: 'ipvsadm-timeout'; readonly timeouts: IpvsTimeouts };

/** Lines that carry content: not blank, not a `#` comment. */
function contentLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.replace(/\r$/, '').trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** Guesses the kind of input from its content. */
export function detectIpvsInput(text: string): IpvsInputKind {
  if (looksLikeKeepalived(text)) return 'keepalived';
  const lines = contentLines(text);
  if (lines.some((l) => l === 'IPVS connection entries' || /^pro\s+expire\s+state\b/.test(l)))
    return 'ipvsadm-connections';
  if (lines.some((l) => /^Pro\s+FromIP\s+FPrt\b/.test(l))) return 'proc-ip-vs-conn';
  // A paste may hold an ipvsadm listing and then `cat /proc/net/ip_vs`: whichever comes first is the input.
  const isProc = (l: string): boolean =>
    /^(TCP|UDP|SCTP)\s+([0-9A-F]{8}|\[[0-9a-f]{4}:[0-9a-f:]{34}\]):[0-9A-F]{4}\s/.test(l) ||
    /^->\s+[0-9A-F]{8}:[0-9A-F]{4}\s/.test(l);
  const firstProc = lines.findIndex(isProc);
  const firstListed = lines.findIndex(
    (l) =>
      !isProc(l) &&
      (/^(TCP|UDP|SCTP)\s+(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]*\]|[A-Za-z][\w.-]*):\S+\s/.test(l) || /^FWM\s+\d/.test(l)),
  );
  if (firstProc >= 0 && (firstListed < 0 || firstProc < firstListed)) return 'proc-ip-vs';
  const rule = lines.find(
    (l) => /^(ipvsadm\s+)?-[AaCEe]\b/.test(l) || /^(ipvsadm\s+)?--add-(service|server)\b/.test(l),
  );
  const first = lines.find((l) => /^(IP Virtual Server|Prot |TCP |UDP |SCTP |FWM |-> |-)/.test(l));
  if (rule !== undefined && (first === undefined || first.startsWith('-'))) return 'ipvsadm-save';
  if (lines.some((l) => /^Timeout \(tcp tcpfin udp\):/.test(l)) && first === undefined) return 'ipvsadm-timeout';
  return 'ipvsadm-list';
}

/** Detects and reads one input. */
export function readIpvsInput(text: string, file: string): ReadResult<IpvsInput> {
  const kind = detectIpvsInput(text);
  switch (kind) {
    case 'keepalived': {
      const r = readKeepalivedConf(text, file);
      return { value: r.value && { kind, table: r.value.table, config: r.value }, issues: r.issues };
    }
    case 'ipvsadm-save': {
      const r = readIpvsadmSave(text, file);
      return { value: r.value && { kind, table: r.value.table }, issues: r.issues };
    }
    case 'proc-ip-vs': {
      const r = readProcIpVs(text, file);
      const v = r.value;
      return {
        value: v && (v.header ? { kind, table: v.table, header: v.header } : { kind, table: v.table }),
        issues: r.issues,
      };
    }
    case 'ipvsadm-connections': {
      const r = readIpvsadmConnectionList(text, file);
      return { value: r.value && { kind, connections: r.value }, issues: r.issues };
    }
    case 'proc-ip-vs-conn': {
      const r = readProcIpVsConn(text, file);
      return { value: r.value && { kind, connections: r.value }, issues: r.issues };
    }
    case 'ipvsadm-timeout': {
      const r = readIpvsadmTimeout(text, file);
      return { value: r.value && { kind, timeouts: r.value }, issues: r.issues };
    }
    case 'ipvsadm-list': {
      const r = readIpvsadmList(text, file);
      return { value: r.value && { kind, table: r.value.table, listing: r.value }, issues: r.issues };
    }
  }
}

/** The table of an input that has one; an issue otherwise. */
export function inputTable(input: IpvsInput, file: string): IpvsTable | Issue {
  if ('table' in input) return input.table;
  return issue(
    'ipvs-input-no-table',
    `${input.kind === 'ipvsadm-timeout' ? 'a timeout line' : 'a connection listing'} holds no services and real servers`,
    filePos(file, 0),
  );
}
