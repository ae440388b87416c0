/** `ipvsadm -L --timeout` (`Timeout (tcp tcpfin udp): 900 120 300`) and `--set` semantics. */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';

export interface IpvsTimeouts {
  /** ESTABLISHED timeout, seconds. */
  readonly tcp: number;
  /** FIN_WAIT timeout, seconds. */
  readonly tcpfin: number;
  readonly udp: number;
}

/** Kernel defaults (tcp_timeouts / udp_timeouts). */
export const DEFAULT_TIMEOUTS: IpvsTimeouts = { tcp: 900, tcpfin: 120, udp: 300 };

export function writeIpvsadmTimeout(t: IpvsTimeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** `ipvsadm --set tcp tcpfin udp`: 0 leaves a value unchanged. */
export function applySetTimeouts(current: IpvsTimeouts, set: IpvsTimeouts): IpvsTimeouts {
  return {
    tcp: set.tcp || current.tcp,
    tcpfin: set.tcpfin || current.tcpfin,
    udp: set.udp || current.udp,
  };
}

/** Reads the last `Timeout (tcp tcpfin udp): …` line of the input (prompt lines and repeated runs tolerated). */
export function readIpvsadmTimeout(text: string, file: string): ReadResult<IpvsTimeouts> {
  const issues: Issue[] = [];
  let value: IpvsTimeouts | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '').trim();
    if (!line.startsWith('Timeout')) continue;
    const m = /^Timeout \(tcp tcpfin udp\):\s+(\d+)\s+(\d+)\s+(\d+)$/.exec(line.replace(/\s+/g, ' '));
    if (!m) {
      issues.push(
        issue(
          'ipvsadm-timeout-bad-line',
          `expected 'Timeout (tcp tcpfin udp): TCP TCPFIN UDP', got '${line}'`,
          filePos(file, i + 1),
        ),
      );
      continue;
    }
    value = { tcp: Number(m[1]), tcpfin: Number(m[2]), udp: Number(m[3]) };
  }
  if (value === undefined && issues.length === 0)
    issues.push(issue('ipvsadm-timeout-empty', 'no ipvsadm --timeout line found', filePos(file, 0)));
  return { value, issues };
}
