/** `captures` results on the topology: each flow's capture points and the place it was last seen. */
import type { CapturesView, WebModel } from '../contract.ts';
import { type Marker, Topology } from './topology.tsx';

export function CapturesPanel({
  model,
  captures,
  flow,
  onFlow,
}: {
  model: WebModel;
  captures: CapturesView;
  flow: number | undefined;
  onFlow: (id: number) => void;
}) {
  const f = captures.flows.find((x) => x.id === flow) ?? captures.flows[0];
  const markers: Marker[] = f
    ? f.points.flatMap((p) => {
        const el = model.topology.places[p] ?? model.topology.places[p.split(':')[0]!];
        return el
          ? [{ element: el, label: `${p}${p === f.lastPoint ? ' (last seen)' : ''}`, last: p === f.lastPoint }]
          : [];
      })
    : [];
  return (
    <div class="diag" id="panel-captures" role="tabpanel" aria-labelledby="tab-captures">
      <section aria-label="Flows">
        <h2>Flows</h2>
        <ul class="plain">
          {captures.flows.map((x) => (
            <li>
              <button
                type="button"
                class={`probe ${x.missing ? 'bad' : 'ok'}`}
                aria-pressed={x === f}
                onClick={() => onFlow(x.id)}
              >
                <span class={`v ${x.missing ? 'bad' : 'ok'}`}>{x.missing ? `✗ ${x.missing} missing` : '✓'}</span>{' '}
                {x.endpoints}
                <small>
                  {x.packets} packet{x.packets === 1 ? '' : 's'}, last seen at {x.lastPoint}
                  {x.handshake ? `, handshake ${x.handshake}` : ''}
                </small>
              </button>
            </li>
          ))}
        </ul>
        <h3>Capture points</h3>
        <ul>
          {captures.points.map((p) => (
            <li>
              {p.name}: {p.packets} packet{p.packets === 1 ? '' : 's'} (
              <span title={p.file}>{p.file.split('/').pop()}</span>)
            </li>
          ))}
        </ul>
        {captures.vanished.length > 0 && (
          <>
            <h3>Where packets vanished</h3>
            <ul>
              {captures.vanished.map((v) => (
                <li class="bad">
                  {v.packets} after {v.after}, expected at {v.expected}
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
      <section aria-label="Topology with the flow's capture points">
        <h2>{f ? `Flow ${f.endpoints}: seen at ${f.points.join(', ')}` : 'No flow'}</h2>
        <Topology model={model} probe={undefined} hop={-1} onHop={() => {}} flow={markers} />
      </section>
      <section aria-label="Flow details">
        {f && (
          <>
            <h2>Last seen at {f.lastPoint}</h2>
            <p>
              {f.packets} packet{f.packets === 1 ? '' : 's'}; {f.missing} missing where{' '}
              {f.missing === 1 ? 'it' : 'they'} should have gone next. Solid outline: where it was last seen; dashed:
              the other points that saw it.
            </p>
          </>
        )}
      </section>
    </div>
  );
}
