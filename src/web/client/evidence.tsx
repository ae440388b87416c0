/**
 * Live evidence (counter windows, kernel traces) beside the model's verdict: per probe the verdict of each source,
 * the counters that moved on the chains it walks with their rule's origin, and the kernel's events placed on its
 * hops ("the kernel and the model disagree here"); for the whole input the windows, the SNMP and IPVS counters, and
 * what could not be mapped, with the reason. It belongs to the unmodified model: a what-if re-trace has none.
 */
import type {
  CounterView,
  EvidenceVerdictView,
  EvidenceView,
  KernelMarkView,
  ProbeEvidenceView,
  ProbeView,
  WebModel,
} from '../contract.ts';
import { OriginChain } from './inspector.tsx';

const WORDS: Record<EvidenceVerdictView, string> = {
  confirmed: 'confirmed',
  contradicted: 'contradicted',
  'no-evidence': 'no evidence',
};
const TONE: Record<EvidenceVerdictView, string> = { confirmed: 'ok', contradicted: 'bad', 'no-evidence': 'warn' };

export const NOT_FOR_WHAT_IF =
  'Live evidence belongs to the unmodified model: a what-if re-trace has no live evidence (the counters and kernel traces were taken on the configuration as it is).';

/** `57` → `57`, `3420` → `3,420`. */
const n = (x: number) => x.toLocaleString('en-US');

export function evidenceOf(model: WebModel, probe: string): ProbeEvidenceView | undefined {
  return model.evidence?.probes.find((p) => p.probe === probe);
}

/** The small tag beside a probe in the list: what the live system says of the model's verdict. */
export function EvidenceTag({ ev }: { ev: ProbeEvidenceView }) {
  return (
    <small class={`ev ${TONE[ev.verdict]}`} data-evidence={ev.verdict}>
      live evidence: {WORDS[ev.verdict]}
    </small>
  );
}

function ruleName(c: { chain: string; ruleNumber?: number }): string {
  return `${c.chain} ${c.ruleNumber !== undefined ? `rule ${c.ruleNumber}` : 'policy'}`;
}

function windowOf(e: EvidenceView, node: string): string {
  const w = e.windows.find((x) => x.node === node);
  return w?.seconds !== undefined ? `in the ${w.seconds} s window` : 'in the window';
}

function Counter({ model, c, hop, decides }: { model: WebModel; c: CounterView; hop?: string; decides?: boolean }) {
  return (
    <li class="counter" data-counter={`${c.node} ${c.chain} ${c.ruleNumber ?? 'policy'}`}>
      <p>
        <strong>{c.rule ? ruleName(c.rule) : ruleName(c)}</strong> on {c.node}
        {decides ? ' (the rule the model decides on)' : ''}: <code>{c.rule?.text ?? c.text}</code> counted{' '}
        <b>
          {n(c.packets)} packets / {n(c.bytes)} bytes
        </b>{' '}
        {windowOf(model.evidence!, c.node)}
        {hop ? ` · at ${hop}` : ''} <span class="muted">({c.at})</span>
      </p>
      {c.rule && (
        <details>
          <summary>the rule's origin</summary>
          <OriginChain model={model} chain={c.rule.origin} />
        </details>
      )}
      {c.why && <p class="muted">not mapped: {c.why}</p>}
    </li>
  );
}

function Mark({ model, m, onHop }: { model: WebModel; m: KernelMarkView; onHop?: (k: number) => void }) {
  return (
    <li class={`kmark-item ${m.agree ? 'agree' : 'disagree'}`} data-kernel-mark={m.agree ? 'agree' : 'disagree'}>
      <p>
        <strong class={m.agree ? 'ok' : 'bad'}>
          {m.agree ? 'the kernel agrees here' : 'the kernel and the model disagree here'}
        </strong>{' '}
        ({m.node}
        {m.iface ? `:${m.iface}` : ''}){' '}
        {onHop && m.hops.length > 0 && (
          <button type="button" class="linkish" onClick={() => onHop(m.hops[0]!)}>
            show hop {m.hops[0]! + 1}
          </button>
        )}
      </p>
      <p>
        {m.text} <span class="muted">({m.at})</span>
      </p>
      {m.rule && (
        <details>
          <summary>
            the kernel's rule: {ruleName(m.rule)} <code>{m.rule.text}</code> — its origin
          </summary>
          <OriginChain model={model} chain={m.rule.origin} />
        </details>
      )}
    </li>
  );
}

/**
 * The selected probe's live evidence. With a what-if applied the probe drawn is the re-traced one: the evidence is
 * said to be the unmodified model's, and nothing of it is placed on the re-traced path.
 */
export function ProbeEvidencePanel({
  model,
  probe,
  whatIf,
  onHop,
}: {
  model: WebModel;
  probe: ProbeView;
  whatIf: boolean;
  onHop: (k: number) => void;
}) {
  const e = model.evidence;
  if (!e) return null;
  const ev = evidenceOf(model, probe.name);
  if (!ev) return null;
  const before = model.probes.find((p) => p.name === probe.name);
  const joined = e.joined;
  return (
    <section
      class={`card evidence ${TONE[ev.verdict]}`}
      aria-labelledby="evidence-title"
      data-evidence-probe={probe.name}
      data-evidence-verdict={ev.verdict}
    >
      <h3 id="evidence-title">Live evidence for {probe.name}</h3>
      <p>
        model: <b>{before?.disposition ?? probe.disposition}</b> · live system:{' '}
        <span class={`badge ${TONE[ev.verdict]}`}>{WORDS[ev.verdict]}</span>
      </p>
      {whatIf && (
        <p class="warning-text" data-evidence-what-if>
          {NOT_FOR_WHAT_IF}
        </p>
      )}
      {ev.counters && (
        <>
          <h4>
            Counters: <span class={TONE[ev.counters.verdict]}>{WORDS[ev.counters.verdict]}</span>
          </h4>
          <ul class="facts">
            {ev.counters.facts.map((f) => (
              <li>{f}</li>
            ))}
          </ul>
        </>
      )}
      {!whatIf && ev.moved.length > 0 && (
        <>
          <h4>Rule counters that moved on its chains ({ev.moved.length})</h4>
          <ul class="plain counters">
            {ev.moved.map((m) => (
              <Counter
                model={model}
                c={joined[m.counter]!}
                hop={`hop ${m.hop + 1} (${probe.path[m.hop]?.node ?? ''}${probe.path[m.hop]?.iface ? `:${probe.path[m.hop]!.iface}` : ''})`}
                decides={m.decides}
              />
            ))}
          </ul>
        </>
      )}
      {ev.kernel && (
        <>
          <h4>
            Kernel traces: <span class={TONE[ev.kernel.verdict]}>{WORDS[ev.kernel.verdict]}</span>
          </h4>
          {whatIf || ev.marks.length === 0 ? (
            <ul class="facts">
              {ev.kernel.facts.map((f) => (
                <li>{f}</li>
              ))}
            </ul>
          ) : (
            <ul class="plain marks">
              {ev.marks.map((m) => (
                <Mark model={model} m={m} onHop={onHop} />
              ))}
            </ul>
          )}
        </>
      )}
    </section>
  );
}

/** The input's live evidence as a whole: windows, SNMP and IPVS counters, and what the model cannot map. */
export function EvidenceOverview({ model }: { model: WebModel }) {
  const e = model.evidence;
  if (!e) return null;
  const k = e.kernel;
  const drops = (k?.drops ?? []).filter((d) => !d.seen);
  return (
    <section class="card info evidence-all" aria-labelledby="evidence-all-title" data-evidence-overview>
      <h3 id="evidence-all-title">Live evidence</h3>
      <ul class="facts">
        {e.windows.map((w) => (
          <li data-window={w.node}>
            {w.node}: {w.from === 'watch' ? 'watch window' : 'two bundles'}
            {w.seconds !== undefined ? ` of ${w.seconds} s` : ''}, {w.moved} rule counters moved
          </li>
        ))}
        {(k?.files ?? []).map((f) => (
          <li>
            {f.node}: kernel trace <code>{f.file}</code>, {f.events} netfilter events, {f.drops} drop events
          </li>
        ))}
      </ul>
      <p>
        {[
          ...(e.windows.length > 0 ? [`${e.joined.length} moved counters joined to the model`] : []),
          ...(k
            ? [
                `${k.joined.length} trace events joined to the model${k.setup ? ` (and ${k.setup} of the operator's tracing rules)` : ''}`,
              ]
            : []),
        ].join(', ')}
        .
      </p>
      {e.unmapped.length > 0 && (
        <details open data-unmapped-counters={e.unmapped.length}>
          <summary class="bad">Moved counters the model cannot map ({e.unmapped.length})</summary>
          <ul class="plain counters">
            {e.unmapped.map((c) => (
              <li class="counter" data-unmapped={`${c.node} ${c.source} ${c.table} ${c.chain}`}>
                <p>
                  <strong>
                    {c.node} {c.source} {c.table} {ruleName(c)}
                  </strong>{' '}
                  <code>{c.text}</code>: +{n(c.packets)} packets / +{n(c.bytes)} bytes{' '}
                  <span class="muted">({c.at})</span>
                </p>
                <p>why: {c.why}</p>
              </li>
            ))}
          </ul>
        </details>
      )}
      {k && k.unmapped.length > 0 && (
        <details open data-unmapped-events={k.unmapped.length}>
          <summary class="bad">Trace events the model cannot map ({k.unmapped.length})</summary>
          <ul class="facts">
            {k.unmapped.map((u) => (
              <li>
                {u.node}
                {u.iface ? `:${u.iface}` : ''} {u.family} {u.table} {u.chain} <code>{u.ruleText ?? u.what}</code>{' '}
                <span class="muted">({u.at})</span> — {u.why}
              </li>
            ))}
          </ul>
        </details>
      )}
      {e.stack.length > 0 && (
        <details data-stack-counters>
          <summary>Kernel counters that moved (SNMP, IPVS totals): {e.stack.length}</summary>
          <table>
            <caption class="sr">Kernel counters that moved in the window</caption>
            <thead>
              <tr>
                <th scope="col">node</th>
                <th scope="col">counter</th>
                <th scope="col">delta</th>
              </tr>
            </thead>
            <tbody>
              {e.stack.map((s) => (
                <tr>
                  <td>{s.node}</td>
                  <td>{s.name}</td>
                  <td>+{n(s.delta)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
      {e.ipvs.length > 0 && (
        <details open data-ipvs-counters>
          <summary>IPVS counters that moved, per real server: {e.ipvs.length}</summary>
          <table>
            <caption class="sr">IPVS per-service and per-real-server counters that moved</caption>
            <thead>
              <tr>
                <th scope="col">director</th>
                <th scope="col">service</th>
                <th scope="col">real server</th>
                <th scope="col">connections</th>
                <th scope="col">packets in / out</th>
              </tr>
            </thead>
            <tbody>
              {e.ipvs.map((d) => (
                <tr>
                  <td>{d.node}</td>
                  <td>{d.service}</td>
                  <td>{d.destination ?? '(the service)'}</td>
                  <td>+{n(d.conns)}</td>
                  <td>
                    +{n(d.inPkts)} / +{n(d.outPkts)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </details>
      )}
      {drops.length > 0 && (
        <details data-kernel-drops={drops.length}>
          <summary>Kernel drops: {drops.length}</summary>
          <ul class="facts">
            {drops.map((d) => (
              <li>
                {d.node}: {d.reason ?? '(no reason)'}
                {d.location ? ` at ${d.location}` : ''} <span class="muted">({d.at})</span> —{' '}
                {d.kind
                  ? `${d.kind}${d.probes?.length ? `; the model ends ${d.probes.join(', ')} so there` : '; no probe of the model ends so there'}`
                  : d.why}
              </li>
            ))}
          </ul>
        </details>
      )}
    </section>
  );
}
