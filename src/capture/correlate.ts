/**
 * Finds where packets vanish across capture points. See docs/captures.md for the method; in short:
 *
 * 1. **Identity.** Every captured packet gets a key from fields that survive DR MAC rewrites, NAT and tunnels: IP id,
 *    protocol, fragment offset, TCP seq/ack/flags/TSval/TSecr and payload length, a digest of the first 64 payload
 *    bytes (ICMP: type/code/id/seq; ARP: operation and protocol addresses, its hardware addresses with the digest). Addresses, ports, MACs, TTL and checksums are *not* in
 *    the key, so one packet is recognised before and after a rewrite; tunnels are looked through (IPIP, GRE). Fields a
 *    capture lacks (IP id in `tcpdump -nn` text, payload in any text) are left out of every key of the run.
 * 2. **Clocks.** Each pair of points that saw the same frames gives time differences; with traffic both ways the
 *    offset is the midpoint of the two directions (as NTP does), with one-way traffic it is the median when that is
 *    above 1 ms (a LAN does not take milliseconds) and 0 otherwise. Offsets are chained from the point with most
 *    matches.
 * 3. **Path.** A packet's sightings are split into legs (same MACs, addresses and tunnel); a new leg means a rewrite
 *    at the point the two legs share, which pins the order even when clocks cannot. Within a leg, corrected time
 *    orders the points.
 * 4. **Expected next.** Learned per flow and direction from packets that went on from the same station; else from
 *    other flows with the same MAC header at that point; else a frame sent back out of the interface it came in by
 *    is expected at the point it came from; with a model (`expect`), the simulated path decides.
 *
 * The stages live in files of their own: `correlate-keys.ts` (hashing, columns, packets and flows),
 * `correlate-ingest.ts` (captured packets to columns and keys), `correlate-clocks.ts`, `correlate-paths.ts` (legs,
 * order, expected next) and `correlate-report.ts` (the report and its types).
 */
import type { Issue } from '../source/issue.ts';
import { Clocks } from './correlate-clocks.ts';
import { Ingest } from './correlate-ingest.ts';
import { Flows, Packets } from './correlate-keys.ts';
import { Paths } from './correlate-paths.ts';
import { type CorrelateOptions, type CorrelationReport, Report } from './correlate-report.ts';
import type { PacketSink } from './pcapng.ts';
import type { FieldKnowledge } from './scanner.ts';

export {
  type OffsetMethod,
  ONE_WAY_OFFSET_THRESHOLD_NS,
  TWO_WAY_OFFSET_THRESHOLD_NS,
} from './correlate-clocks.ts';
export type { PointInfo } from './correlate-ingest.ts';
export { MAX_POINTS } from './correlate-keys.ts';
export type {
  CorrelateOptions,
  CorrelationReport,
  ExpectedHop,
  ExpectedPath,
  FlowQuery,
  FlowReport,
  MissingReport,
  PacketReport,
  PointReport,
  Sighting,
  VanishPoint,
} from './correlate-report.ts';

/** Collects the packets of every capture point, then correlates them (`finish`). */
export class Correlator {
  private readonly x = new Ingest();

  constructor(private readonly options: CorrelateOptions = {}) {}

  /** Registers a capture point; returns its index. */
  addPoint(name: string, file: string): number {
    return this.x.addPoint(name, file);
  }

  /** What the capture of a point could carry (from its scan summary). */
  setPointKnowledge(p: number, fields: FieldKnowledge, linkTypes: readonly number[]): void {
    this.x.setPointKnowledge(p, fields, linkTypes);
  }

  addIssues(issues: readonly Issue[]): void {
    this.x.addIssues(issues);
  }

  /** The bytes of all captures to be read (sizes the columns once; see `Ingest.expectBytes`). */
  expectBytes(total: number, recordOverhead: number): void {
    this.x.expectBytes(total, recordOverhead);
  }

  /** A sink that records packets of point `p`. */
  sink(p: number): PacketSink {
    return this.x.sink(p);
  }

  get sightingCount(): number {
    return this.x.c.n;
  }

  /** Rows the columns have room for (the memory kept per packet is fixed, so this is what reading costs). */
  get rowCapacity(): number {
    return this.x.c.cap;
  }

  finish(): CorrelationReport {
    const x = this.x;
    // Fields a capture lacks are left out of every key of the run.
    let useIpid = true;
    let useDig = true;
    for (const f of x.pointFields) {
      if (!f.ipId) useIpid = false;
      if (!f.payload) useDig = false;
    }
    const packets = new Packets(x.c, useIpid, useDig);
    const flows = new Flows(x, packets);
    const clocks = new Clocks(x, packets, flows);
    const paths = new Paths(x, packets, flows, clocks);
    return new Report(x, packets, flows, clocks, paths, this.options, useIpid, useDig).build();
  }
}
