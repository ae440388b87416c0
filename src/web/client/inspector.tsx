/** The hop inspector: tcpdump lines, frame fields, decisions, the chain walk and the origin chain to file:line. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { OriginLink, PathHop, ProbeView, StepJson, WebModel } from '../contract.ts';
import { hopPlace } from './steps.tsx';

/** Preformatted text that may scroll sideways: reachable by keyboard, named for screen readers. */
export function Pre({ label, text }: { label: string; text: string }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
    <section class="pre" tabIndex={0} aria-label={label}>
      <pre>{text}</pre>
    </section>
  );
}

function FileView({ lines, file, line }: { lines: readonly string[]; file: string; line: number }) {
  const ref = useRef<HTMLElement>(null);
  useEffect(() => {
    const el = ref.current?.querySelector('.hl') as HTMLElement | null;
    if (el && ref.current) ref.current.scrollTop = el.offsetTop - ref.current.clientHeight / 3;
  }, [file, line]);
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
    <section class="file" ref={ref} tabIndex={0} aria-label={`${file}, line ${line} highlighted`}>
      {lines.map((l, k) => (
        <div class={k + 1 === line ? 'hl' : undefined} data-line={k + 1}>
          <span class="ln">{k + 1}</span>
          {l}
        </div>
      ))}
    </section>
  );
}

/** An origin chain, innermost first; links with a file open it with the line highlighted. */
export function OriginChain({ model, chain }: { model: WebModel; chain: readonly OriginLink[] }) {
  const firstFile = chain.findIndex((o) => o.file && o.line && model.files[o.file]);
  const [open, setOpen] = useState(firstFile);
  useEffect(() => setOpen(firstFile), [chain]);
  const shown = open >= 0 ? chain[open] : undefined;
  return (
    <>
      <ol class="origin" aria-label="Origin chain, from the rule outwards">
        {chain.map((o, k) => (
          <li>
            {k > 0 && <span aria-hidden="true">← </span>}
            {o.label}
            {o.file && (
              <>
                {' '}
                <code>
                  {o.file}
                  {o.line ? `:${o.line}` : ''}
                </code>
                {model.files[o.file] && o.line ? (
                  <button type="button" aria-pressed={open === k} onClick={() => setOpen(k)}>
                    show line
                  </button>
                ) : null}
              </>
            )}
          </li>
        ))}
      </ol>
      {shown?.file && shown.line && model.files[shown.file] && (
        <FileView lines={model.files[shown.file]!} file={shown.file} line={shown.line} />
      )}
    </>
  );
}

function NetfilterStep({ model, s }: { model: WebModel; s: StepJson }) {
  const path = (s.path as string[] | undefined) ?? [];
  const family = s.family === 'bridge' ? 'ebtables' : 'iptables';
  return (
    <div class="card" data-step="netfilter">
      <p class="chain">
        {family} -t {String(s.table)} {String(s.hook)}: {path.join(' → ')}
        {', '}
        <b>
          {s.ruleNumber !== undefined ? `rule ${String(s.ruleNumber)} ` : ''}
          {String(s.ruleText)} ⇒ {String(s.verdict)}
        </b>
      </p>
      <p class="muted">
        decided in {String(s.chain)} after {String(s.rulesVisited)} rules
      </p>
      {s.origin && <OriginChain model={model} chain={s.origin} />}
    </div>
  );
}

export function Inspector({
  model,
  probe,
  hop,
  index,
}: {
  model: WebModel;
  probe: ProbeView;
  hop: PathHop;
  index: number;
}) {
  const layers = [...new Set(hop.fields.map((f) => f.layer))];
  const nf = hop.steps.filter((s) => s.kind === 'netfilter');
  const decisiveHere = index === probe.decisive;
  return (
    <div data-inspector-hop={index}>
      <h2>
        Hop {index + 1}: {hop.direction === 'in' ? '→' : '←'} {hopPlace(hop)}{' '}
        <span class={`leg ${decisiveHere ? 'drop' : hop.leg}`}>{decisiveHere ? 'DROP' : hop.leg}</span>
      </h2>
      {hop.end && (
        <div class="card error">
          <p>
            <strong>{hop.end.disposition}</strong>: {hop.end.reason}
          </p>
        </div>
      )}
      {nf.length > 0 && <h3>Chain walk</h3>}
      {nf.map((s) => (
        <NetfilterStep model={model} s={s} />
      ))}
      {hop.end?.origin && nf.length === 0 && (
        <>
          <h3>What decided</h3>
          <OriginChain model={model} chain={hop.end.origin} />
        </>
      )}
      <h3>{hop.point ? `tcpdump -e -vvv -nn at ${hop.point}` : 'The frame (no capture point here)'}</h3>
      <Pre label={`tcpdump lines at hop ${index + 1}`} text={hop.tcpdump} />
      <h3>Frame fields</h3>
      <table>
        <caption class="sr">Fields of the frame at this hop</caption>
        <thead>
          <tr>
            <th scope="col">layer</th>
            <th scope="col">field</th>
            <th scope="col">value</th>
          </tr>
        </thead>
        <tbody>
          {layers.flatMap((l) =>
            hop.fields
              .filter((f) => f.layer === l)
              .map((f) => (
                <tr>
                  <td>{l}</td>
                  <td>{f.name}</td>
                  <td>
                    <code>{f.value}</code>
                  </td>
                </tr>
              )),
          )}
        </tbody>
      </table>
      <h3>Decisions at this hop</h3>
      {hop.text.length === 0 ? (
        <p class="muted">none (the frame passes)</p>
      ) : (
        <Pre label={`decisions at hop ${index + 1}`} text={hop.text.join('\n')} />
      )}
    </div>
  );
}
