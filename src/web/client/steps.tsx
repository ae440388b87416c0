/** The path as a list of hops beside the drawing: the keyboard way through the path. */
import type { ProbeView } from '../contract.ts';

export function hopPlace(h: { node: string; iface?: string }): string {
  return h.iface ? `${h.node}:${h.iface}` : h.node;
}

export function StepList({ probe, hop, onHop }: { probe: ProbeView; hop: number; onHop: (k: number) => void }) {
  return (
    <>
      <h3>Hops of {probe.name}</h3>
      <ol class="steps" aria-label={`Hops of ${probe.name}`}>
        {probe.path.map((h, k) => {
          const dies = k === probe.decisive;
          const first = h.text[0] ?? (h.point ? `seen at ${h.point}` : '');
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
              </button>
            </li>
          );
        })}
      </ol>
    </>
  );
}
