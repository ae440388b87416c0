/**
 * What every walk and trace satisfies, checked where they are built so that a device that breaks it fails at once
 * instead of rendering a wrong story: hop ids are their index, a hop's parent was made before it, only the first
 * hop of a walk has no parent (a probe's trace in `probe.ts`, an ARP exchange in `ipv4-output.ts`); a trace's
 * decisive end is the end of the last hop on its path, and the path runs from the first hop by parents.
 * The checks are linear in hops (never in steps): they run on every trace.
 */
import type { Hop, Trace } from './types.ts';

/** Throws when the hops of one walk break its invariants; `what` names the walk (made only on failure). */
export function checkWalk(hops: readonly Hop[], what: () => string): void {
  for (let k = 0; k < hops.length; k++) {
    const h = hops[k]!;
    if (h.id !== k) fail(what, `hop ${k} has id ${h.id}`);
    if (h.parent === undefined) {
      if (k !== 0) fail(what, `hop ${k} has no parent`);
    } else if (!(h.parent >= 0 && h.parent < k)) fail(what, `hop ${k} has parent ${h.parent}, not an earlier hop`);
  }
}

/** Throws when a trace breaks the invariants of a walk or of its decisive end and path. */
export function checkTrace(t: Trace): void {
  const what = () => `trace of probe ${t.probe.name}`;
  checkWalk(t.hops, what);
  if (t.disposition !== t.end.disposition) fail(what, `disposition ${t.disposition} is not its end's`);
  if (t.path.length > 0) {
    if (t.path[0] !== 0) fail(what, `the path starts at hop ${t.path[0]}`);
    for (let k = 1; k < t.path.length; k++)
      if (t.hops[t.path[k]!]?.parent !== t.path[k - 1])
        fail(what, `path hop ${t.path[k]} is not a child of the one before`);
    if (t.hops[t.path[t.path.length - 1]!]!.end !== t.end) fail(what, "the end is not the last path hop's");
  }
}

function fail(what: () => string, why: string): never {
  throw new Error(`internal: ${what()}: ${why}`);
}
