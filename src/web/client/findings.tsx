/** Findings with their why, fixes with what they keep, their files and commands, and the what-if. */
import { useState } from 'preact/hooks';
import type { FixView, WebModel, WhatIfRequest, WhatIfResult } from '../contract.ts';
import { NOT_FOR_WHAT_IF } from './evidence.tsx';
import { OriginChain, Pre } from './inspector.tsx';

/** The what-if the app holds: the fixes and parameters asked for, and the re-traced answer once it came. */
export interface WhatIfState {
  readonly request: WhatIfRequest;
  readonly result?: WhatIfResult;
  readonly pending: boolean;
  readonly error?: string;
}

function download(path: string, content: string) {
  return {
    href: `data:text/plain;charset=utf-8,${encodeURIComponent(content)}`,
    download: path.split('/').pop() ?? 'fix.txt',
  };
}

function FixCard({ fix, on, toggle }: { fix: FixView; on: boolean; toggle: (on: boolean) => void }) {
  const id = `whatif-${fix.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <div class={`card ${fix.verified ? 'info' : 'warning'}`} data-fix={fix.id}>
      <p>
        <strong>{fix.verified ? '✓ verified' : '✗ not sufficient'}</strong>
        {fix.safest ? ' · keeps the most protection' : ''}: {fix.title}
      </p>
      <p>
        <span class="muted">keeps:</span> {fix.keeps}
      </p>
      <p>
        <span class="muted">re-traced:</span>{' '}
        {fix.retraced.map((r) => `${r.probe} ${r.before} → ${r.after}`).join('; ')}
      </p>
      {fix.requires.length > 0 && (
        <p>
          <span class="muted">with first:</span> {fix.requires.join(', ')}
        </p>
      )}
      <label class="switch" for={id}>
        <input
          id={id}
          type="checkbox"
          role="switch"
          aria-checked={on}
          checked={on}
          data-whatif={fix.id}
          onChange={(e) => toggle((e.currentTarget as HTMLInputElement).checked)}
        />
        what-if: apply this fix and re-trace
      </label>
      <details>
        <summary>files and virsh commands</summary>
        <ul>
          {fix.artifacts.map((a) => (
            <li>
              <a {...download(a.path, a.content)}>{a.path}</a>
            </li>
          ))}
        </ul>
        <Pre label="virsh commands" text={fix.commands.join('\n')} />
      </details>
    </div>
  );
}

function ParamEditor({
  model,
  whatIf,
  apply,
}: {
  model: WebModel;
  whatIf: WhatIfState;
  apply: (r: WhatIfRequest) => void;
}) {
  const [sel, setSel] = useState(0);
  const b = model.bindings[sel];
  const [name, setName] = useState('IP');
  const [value, setValue] = useState(() => (b?.params.IP ?? []).join(' '));
  if (!b) return null;
  const pick = (k: number) => {
    setSel(k);
    setValue((model.bindings[k]?.params[name] ?? []).join(' '));
  };
  return (
    <form
      class="card"
      aria-label="Edit a filter parameter"
      onSubmit={(e) => {
        e.preventDefault();
        const values = value.split(/[\s,]+/).filter(Boolean);
        apply({
          fixes: whatIf.request.fixes,
          params: [
            ...whatIf.request.params.filter((p) => !(p.host === b.host && p.port === b.port && p.name === name)),
            { host: b.host, port: b.port, name, values },
          ],
        });
      }}
    >
      <p>
        <strong>What-if: edit a filter parameter</strong>
      </p>
      <p>
        <label>
          binding{' '}
          <select value={String(sel)} onChange={(e) => pick(Number((e.currentTarget as HTMLSelectElement).value))}>
            {model.bindings.slice(0, 500).map((x, k) => (
              <option value={String(k)}>
                {x.host}:{x.port} ({x.domain}, {x.filter})
              </option>
            ))}
          </select>
        </label>
      </p>
      <p>
        <label>
          parameter{' '}
          <input size={8} value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        </label>{' '}
        <label>
          values{' '}
          <input
            size={28}
            value={value}
            data-param-values
            onInput={(e) => setValue((e.currentTarget as HTMLInputElement).value)}
          />
        </label>
      </p>
      <button type="submit">re-trace with this value</button>
    </form>
  );
}

export function FindingsPanel({
  model,
  whatIf,
  apply,
}: {
  model: WebModel;
  whatIf: WhatIfState;
  apply: (r: WhatIfRequest) => void;
}) {
  const toggle = (id: string, on: boolean) => {
    const fixes = on ? [...whatIf.request.fixes, id] : whatIf.request.fixes.filter((f) => f !== id);
    apply({ fixes, params: whatIf.request.params });
  };
  const r = whatIf.result;
  return (
    <>
      <h2>Findings</h2>
      {model.findings.length === 0 && <p>No finding.</p>}
      {model.findings.map((f) => (
        <div class={`card ${f.severity}`} data-finding={f.key}>
          <p>
            <strong>
              [{f.severity}] {f.code}
            </strong>
            : {f.title}
          </p>
          <p>
            <span class="muted">where:</span> {f.where} · <span class="muted">seen in:</span>{' '}
            {f.probes.length ? f.probes.join(', ') : 'the configuration'}
          </p>
          <details>
            <summary>why, and the culprit's origin</summary>
            <p>{f.explanation}</p>
            {f.culprit && <OriginChain model={model} chain={f.culprit} />}
          </details>
        </div>
      ))}
      <h2>Fixes</h2>
      <div aria-live="polite" role="status" class="whatif-status">
        {whatIf.pending && <p>re-tracing…</p>}
        {whatIf.error && <p class="bad">{whatIf.error}</p>}
        {r && !whatIf.pending && (
          <div class="card" data-whatif-result>
            <p>
              <strong>what-if</strong> ({r.applied.length ? r.applied.join(' + ') : 'parameter edit'}
              {r.request.params.map((p) => `; ${p.host}:${p.port} ${p.name}=${p.values.join(' ')}`).join('')}),
              re-traced in {r.ms} ms:
            </p>
            {model.evidence && (
              <p class="warning-text" data-whatif-no-evidence>
                {NOT_FOR_WHAT_IF}
              </p>
            )}
            <table>
              <caption class="sr">Verdict of each probe before and after</caption>
              <thead>
                <tr>
                  <th scope="col">probe</th>
                  <th scope="col">before</th>
                  <th scope="col">after</th>
                </tr>
              </thead>
              <tbody>
                {r.verdicts.map((v) => (
                  <tr data-verdict-probe={v.probe} data-after={v.after}>
                    <td>{v.probe}</td>
                    <td class={v.before === 'replied' ? 'ok' : 'bad'}>{v.before}</td>
                    <td class={v.after === 'replied' ? 'ok' : 'bad'}>{v.after}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <button type="button" onClick={() => apply({ fixes: [], params: [] })}>
              back to the configuration as it is
            </button>
          </div>
        )}
      </div>
      {model.fixes.map((f) => (
        <FixCard fix={f} on={whatIf.request.fixes.includes(f.id)} toggle={(on) => toggle(f.id, on)} />
      ))}
      {model.bindings.length > 0 && <ParamEditor model={model} whatIf={whatIf} apply={apply} />}
    </>
  );
}
