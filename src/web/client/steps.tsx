/** The path as a list of hops beside the drawing: the keyboard way through the path. */
import type { ProbeEvidenceView, ProbeView } from '../contract.ts';

export function hopPlace(h: { node: string; iface?: string }): string {
  return h.iface ? `${h.node}:${h.iface}` : h.node;
}

/**
 * With live evidence, a hop carries what the live system said there: the rule counters that moved on its chains
 * and the kernel's traced events ("kernel agrees" / "kernel and model disagree here").
 */
export function StepList({
  probe,
  hop,
  onHop,
  evidence,
}: {
  probe: ProbeView;
  hop: number;
  onHop: (k: number) => void;
  evidence?: ProbeEvidenceView;
}) {
  return (
    <>
      <h3>Hops of {probe.name}</h3>
      <ol class="steps" aria-label={`Hops of ${probe.name}`}>
        {probe.path.map((h, k) => {
          const dies = k === probe.decisive;
          const first = h.text[0] ?? (h.point ? `seen at ${h.point}` : '');
          const counted = evidence?.moved.filter((m) => m.hop === k) ?? [];
          const marks = evidence?.marks.filter((m) => m.hops.includes(k)) ?? [];
          const disagree = marks.some((m) => !m.agree);
          return (
            <li>
              <button
                type="button"
                aria-current={k === hop}
                data-hop={k}
                onClick={() => onHop(k)}
                onKeyDown={(e) => {
                  if (e.key === 'ArrowDown' && k + 1 < probe.path.length) {
                    e.preventDefault();
                    onHop(k + 1);
                    (
                      e.currentTarget.closest('li')?.nextElementSibling?.querySelector('button') as HTMLElement
                    )?.focus();
                  }
                  if (e.key === 'ArrowUp' && k > 0) {
                    e.preventDefault();
                    onHop(k - 1);
                    (
                      e.currentTarget.closest('li')?.previousElementSibling?.querySelector('button') as HTMLElement
                    )?.focus();
                  }
                }}
              >
                <span class={`leg ${dies ? 'drop' : h.leg}`}>{dies ? 'DROP' : h.leg}</span>
                {h.direction === 'in' ? '→' : '←'} {hopPlace(h)} <span class="muted">{first.split('\n')[0]}</span>
                {counted.length > 0 && (
                  <span class="tag ok" data-hop-counted={counted.length}>
                    {counted.some((m) => m.decides) ? 'its rule counted' : `${counted.length} counter(s) moved`}
                  </span>
                )}
                {marks.length > 0 && (
                  <span class={`tag ${disagree ? 'bad' : 'ok'}`} data-hop-kernel={disagree ? 'disagree' : 'agree'}>
                    {disagree ? 'kernel and model disagree here' : 'kernel agrees'}
                  </span>
                )}
              </button>
            </li>
          );
        })}
      </ol>
    </>
  );
}
