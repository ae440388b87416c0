/** A real server that does not answer on its own address: information, since clients reach it through the VIP. */

import type { AnyProbeSpec } from '../../topology/model.ts';
import type { PlannedProbe } from '../../trace/probe-plan.ts';
import type { Trace } from '../../trace/types.ts';
import type { Detected, FindingKind } from './kind.ts';

export const rsDirectUnreachableKind: FindingKind = {
  code: 'rs-direct-unreachable',
  severity: 'info',
  title: 'A real server does not answer the client on its own address',
  source: 'trace',
  needs:
    'a failed probe lvsdoctor added to reach a real server directly (never an error: clients use the VIP; in two-armed NAT real servers are private by design)',
};

export function rsDirectUnreachable(
  _loaded: unknown,
  t: Trace,
  planned: PlannedProbe<AnyProbeSpec>,
  why: Detected | undefined,
): Detected {
  const e = t.end;
  const where = e.place.iface ? `${e.place.node}:${e.place.iface}` : e.place.node;
  return {
    finding: {
      code: rsDirectUnreachableKind.code,
      severity: rsDirectUnreachableKind.severity,
      title: `${t.probe.name}: ${e.disposition} at ${where}`,
      explanation: `This probe checks ${planned.why}. It ends: ${t.summary}.${why && why.finding.code !== 'probe-failed' ? ` (${why.finding.code}: ${why.finding.title})` : ''} This is not a fault of the load-balanced service.`,
      where,
      ...(e.origin ? { culprit: e.origin } : {}),
    },
    fixes: [],
  };
}
