/**
 * IPVS protocol state tables (ip_vs_proto_tcp.c, ip_vs_proto_udp.c): state names, default timeouts, which states
 * count as active, and the TCP transition tables. For DR and TUN the director only sees client→server packets
 * (IP_VS_CONN_F_NOOUTPUT), so the INPUT-ONLY table applies.
 */
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from '../wire/types.ts';

export const TCP_STATE_NAMES = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
] as const;
export type TcpStateName = (typeof TCP_STATE_NAMES)[number];

export const S_NONE = 0;
export const S_ESTABLISHED = 1;
export const S_SYN_SENT = 2;
export const S_SYN_RECV = 3;
export const S_FIN_WAIT = 4;
export const S_TIME_WAIT = 5;
export const S_CLOSE = 6;
export const S_CLOSE_WAIT = 7;
export const S_LAST_ACK = 8;
export const S_LISTEN = 9;
export const S_SYNACK = 10;

/** Default TCP timeouts in seconds, indexed by state (tcp_timeouts[]). */
export const TCP_TIMEOUTS: readonly number[] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];
export const UDP_TIMEOUT = 300;

/** tcp_state_active_table: ESTABLISHED, SYN_SENT, SYN_RECV, SYNACK. */
export function tcpStateActive(s: number): boolean {
  return s === S_ESTABLISHED || s === S_SYN_SENT || s === S_SYN_RECV || s === S_SYNACK;
}

export type TcpDirection = 'input' | 'output' | 'input-only';

// Short names as in ip_vs_proto_tcp.c (sNO never appears as a target state).
const sES = S_ESTABLISHED;
const sSS = S_SYN_SENT;
const sSR = S_SYN_RECV;
const sFW = S_FIN_WAIT;
const sTW = S_TIME_WAIT;
const sCL = S_CLOSE;
const sCW = S_CLOSE_WAIT;
const sLA = S_LAST_ACK;
const sLI = S_LISTEN;

// Rows: syn, fin, ack, rst. Columns: current state in TCP_STATE_NAMES order.
const INPUT: readonly (readonly number[])[] = [
  [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  [sCL, sCW, sSS, sTW, sTW, sTW, sCL, sCW, sLA, sLI, sTW],
  [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sSR],
];
const OUTPUT: readonly (readonly number[])[] = [
  [sSS, sES, sSS, sSR, sSS, sSS, sSS, sSS, sSS, sLI, sSR],
  [sTW, sFW, sSS, sTW, sFW, sTW, sCL, sTW, sLA, sLI, sTW],
  [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sLA, sES, sES],
  [sCL, sCL, sSS, sCL, sCL, sTW, sCL, sCL, sCL, sCL, sCL],
];
const INPUT_ONLY: readonly (readonly number[])[] = [
  [sSR, sES, sES, sSR, sSR, sSR, sSR, sSR, sSR, sSR, sSR],
  [sCL, sFW, sSS, sTW, sFW, sTW, sCL, sCW, sLA, sLI, sTW],
  [sES, sES, sSS, sES, sFW, sTW, sCL, sCW, sCL, sLI, sES],
  [sCL, sCL, sCL, sSR, sCL, sCL, sCL, sCL, sLA, sLI, sCL],
];

/** tcp_state_idx: RST > SYN > FIN > ACK; -1 when none of them is set (state unchanged). */
export function tcpStateIndex(flags: number): number {
  if (flags & TCP_RST) return 3;
  if (flags & TCP_SYN) return 0;
  if (flags & TCP_FIN) return 1;
  if (flags & TCP_ACK) return 2;
  return -1;
}

/** The state after a packet with `flags` in `direction`, from `state`. */
export function nextTcpState(state: number, flags: number, direction: TcpDirection): number {
  const idx = tcpStateIndex(flags);
  if (idx < 0) return state;
  const table = direction === 'input' ? INPUT : direction === 'output' ? OUTPUT : INPUT_ONLY;
  return table[idx]![state]!;
}
