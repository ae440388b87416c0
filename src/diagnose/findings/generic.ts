import { ruleQuote } from '../../trace/render-step.ts';
import { dropStep, endHop } from '../facts.ts';
import type { FindingKind } from './kind.ts';

/** Any other filter drop: named with its rule and origin, without a tailored fix. */
export const filterDrop: FindingKind = {
  code: 'filter-drop',
  severity: 'error',
  title: 'A firewall rule drops the probe',
  source: 'trace',
  needs: 'a trace that ends dropped-by-filter and that no more specific finding explains',
  detect(_ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    if (!hop || !drop) return undefined;
    const where = hop.place.iface ? `${hop.place.node}:${hop.place.iface}` : hop.place.node;
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${where}: ${drop.table} ${drop.hook} → ${ruleQuote(drop)} drops the ${trace.stage}`,
        explanation: `${trace.end.reason}.`,
        where,
        culprit: drop.origin,
      },
      fixes: [],
    };
  },
};

/** Every other way a probe can fail: the trace's end says where and why. */
export const probeFailed: FindingKind = {
  code: 'probe-failed',
  severity: 'error',
  title: 'A probe does not get its answer',
  source: 'trace',
  needs: 'a trace that does not end replied and that no more specific finding explains',
  detect(_ctx, trace) {
    if (trace.disposition === 'replied') return undefined;
    const e = trace.end;
    const where = e.place.iface ? `${e.place.node}:${e.place.iface}` : e.place.node;
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${trace.probe.name}: ${e.disposition} at ${where}`,
        explanation: `${e.reason}.`,
        where,
        ...(e.origin ? { culprit: e.origin } : {}),
      },
      fixes: [],
    };
  },
};
