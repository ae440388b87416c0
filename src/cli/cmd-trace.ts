import { checkNoneExist, prepareOutputDir, writeNewFile } from '../source/files.ts';
import { openSession, probesOf, runProbe } from '../trace/session.ts';
import { capturesToPcaps } from '../trace/tcpdump-lines.ts';
import { type Io, reportIssues, UsageError } from './io.ts';
import { toJsonText, traceJson } from './json.ts';
import { renderTrace } from './render-trace.ts';
import { loadForCommand } from './scenario-input.ts';

export interface TraceOptions {
  readonly json: boolean;
  readonly probe?: string;
  readonly pcapDir?: string;
}

export function runTrace(io: Io, dir: string, o: TraceOptions): number {
  if (o.pcapDir !== undefined) prepareOutputDir(o.pcapDir, '--pcap-dir');
  const loaded = loadForCommand(io, dir);
  if (!loaded) return 2;
  const session = openSession(loaded);
  if (reportIssues(io, session.issues)) return 2;
  let probes = probesOf(loaded);
  if (o.probe !== undefined) {
    probes = probes.filter((p) => p.name === o.probe);
    if (probes.length === 0)
      throw new UsageError(
        `no probe named "${o.probe}" (probes: ${
          probesOf(loaded)
            .map((p) => p.name)
            .join(', ') || 'none'
        })`,
      );
  }
  const traces = probes.map((p) => runProbe(session, p));
  if (o.pcapDir !== undefined) {
    const all = traces.flatMap((t) => t.captures);
    const files = capturesToPcaps(all);
    checkNoneExist(o.pcapDir, files.keys());
    for (const [name, bytes] of files) writeNewFile(o.pcapDir, name, bytes);
    if (!o.json) io.stderr(`wrote ${files.size} pcap files to ${o.pcapDir}\n`);
  }
  if (o.json) io.stdout(toJsonText({ scenario: loaded.scenario.name, traces: traces.map((t) => traceJson(t, true)) }));
  else io.stdout(`${traces.map(renderTrace).join('\n\n')}\n`);
  return traces.every((t) => t.disposition === 'replied') ? 0 : 1;
}
