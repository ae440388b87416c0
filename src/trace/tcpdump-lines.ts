/** Frames of a trace as tcpdump would print them, and the captures of a trace as pcap files. */

import { writePcap } from '../capture/pcap.ts';
import { fileNamePart } from '../source/shell.ts';
import { emitEthernet } from '../wire/ethernet.ts';
import { renderTcpdump, TCPDUMP_E_VVV, type TcpdumpOptions } from '../wire/tcpdump.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { Capture } from './types.ts';

/** `tcpdump -e -vvv -nnn` text of one frame (one or more lines, no trailing newline). */
export function frameText(frame: EthernetFrame, timeNs: bigint, options: TcpdumpOptions = TCPDUMP_E_VVV): string {
  return renderTcpdump([{ timeNs, bytes: emitEthernet(frame) }], { ...options, absoluteSeq: true }).replace(/\n$/, '');
}

/** Captures grouped by capture point, in time order. */
export function capturesByPoint(captures: readonly Capture[]): Map<string, Capture[]> {
  const out = new Map<string, Capture[]>();
  for (const c of captures) {
    const list = out.get(c.point);
    if (list) list.push(c);
    else out.set(c.point, [c]);
  }
  for (const list of out.values()) list.sort((a, b) => (a.timeNs < b.timeNs ? -1 : a.timeNs > b.timeNs ? 1 : 0));
  return out;
}

/** One pcap file per capture point: `node_iface.pcap` → bytes. */
export function capturesToPcaps(captures: readonly Capture[]): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  for (const [point, list] of capturesByPoint(captures)) {
    // node:iface → node_iface.pcap, each part a safe file-name component (no path, no NAME_MAX overflow).
    const name = `${point.split(':').map(fileNamePart).join('_')}.pcap`;
    out.set(name, writePcap(list.map((c) => ({ timeNs: c.timeNs, bytes: emitEthernet(c.frame) }))));
  }
  return out;
}
