/** `captures` results for the page: each flow's points and where it was last seen, placed on the topology. */
import type { CorrelationReport } from '../capture/correlate.ts';
import type { CapturesView } from './contract.ts';

export function capturesView(r: CorrelationReport, places: Readonly<Record<string, string>>): CapturesView {
  return {
    points: r.points.map((p) => ({ name: p.name, file: p.file, packets: p.packets })),
    flows: r.flowReports.map((f) => {
      const last = f.details.at(-1)?.lastPoint ?? f.firstPoint;
      const points = [...new Set(f.details.flatMap((d) => d.path.map((s) => s.point)))];
      const element = places[last] ?? places[last.split(':')[0]!];
      return {
        id: f.id,
        endpoints: f.endpoints,
        packets: f.packets,
        missing: f.missing,
        lastPoint: last,
        ...(element ? { element } : {}),
        ...(f.handshake ? { handshake: f.handshake } : {}),
        points,
      };
    }),
    vanished: r.vanished,
  };
}
