/** The topology as SVG (positions laid out by ELK on the server), with the selected probe's path drawn on it. */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { KernelMarkView, ProbeView, TopoNode, WebModel } from '../contract.ts';

interface Station {
  readonly element: string;
  readonly leg: 'request' | 'reply';
  /** Indexes into the path of the hops drawn here. */
  readonly hops: number[];
}

/** Consecutive hops on the same element become one station of the route. */
export function stations(p: ProbeView): Station[] {
  const out: Station[] = [];
  p.path.forEach((h, k) => {
    const last = out[out.length - 1];
    if (last && last.element === h.element && last.leg === h.leg) last.hops.push(k);
    else out.push({ element: h.element, leg: h.leg, hops: [k] });
  });
  return out;
}

const centre = (n: TopoNode): [number, number] => [n.x + n.w / 2, n.y + n.h / 2];

export interface Marker {
  readonly element: string;
  readonly label: string;
  /** The place a flow was last seen (drawn solid; the other capture points dashed). */
  readonly last?: boolean;
}

export function Topology({
  model,
  probe,
  hop,
  onHop,
  flow,
  marks,
}: {
  model: WebModel;
  probe: ProbeView | undefined;
  hop: number;
  onHop: (k: number) => void;
  flow: readonly Marker[] | undefined;
  /** Kernel trace events of the probe placed on the topology (live evidence). */
  marks?: readonly KernelMarkView[];
}) {
  const t = model.topology;
  const [zoom, setZoom] = useState(1);
  const wrap = useRef<HTMLElement>(null);
  const fit = () => {
    const el = wrap.current;
    // Never below 0.75: the labels stay readable, the drawing scrolls instead.
    if (el && el.clientWidth > 0) setZoom(Math.max(0.75, Math.min(1, (el.clientWidth - 4) / t.width)));
  };
  // Fit the drawing to the width of its panel when it first shows (big fleets start zoomed out).
  useEffect(fit, [t]);
  const byId = useMemo(() => new Map(t.nodes.map((n) => [n.id, n])), [t]);
  const failingHosts = useMemo(
    () => new Set(model.fleet.hosts.filter((h) => h.failing > 0).map((h) => `n:${h.name}`)),
    [model],
  );
  const st = probe ? stations(probe) : [];
  const onPath = new Set(st.map((s) => s.element));
  // Offsets so that request and reply over the same elements stay apart.
  const pt = (el: string, leg: 'request' | 'reply'): [number, number] | undefined => {
    const n = byId.get(el);
    if (!n) return undefined;
    const [x, y] = centre(n);
    return leg === 'reply' ? [x + 6, y + 6] : [x - 4, y - 4];
  };
  const legs: { leg: 'request' | 'reply'; pts: [number, number][] }[] = [];
  st.forEach((s, k) => {
    const p = pt(s.element, s.leg);
    if (!p) return;
    const cur = legs[legs.length - 1];
    if (cur && cur.leg === s.leg) cur.pts.push(p);
    else {
      const prev = k > 0 ? pt(st[k - 1]!.element, s.leg) : undefined;
      legs.push({ leg: s.leg, pts: prev ? [prev, p] : [p] });
    }
  });
  const decisive = probe?.decisive !== undefined ? probe.path[probe.decisive] : undefined;
  const dropNode = decisive ? byId.get(decisive.element) : undefined;
  // One kernel mark per element: "disagree" wins over "agrees" (the step list and the evidence panel say each).
  const kernelAt = new Map<string, { agree: boolean; texts: string[] }>();
  for (const m of marks ?? []) {
    if (m.element === undefined || !byId.has(m.element)) continue;
    const cur = kernelAt.get(m.element) ?? { agree: true, texts: [] };
    cur.agree &&= m.agree;
    cur.texts.push(m.text);
    kernelAt.set(m.element, cur);
  }
  const disagreeAt = [...kernelAt].filter(([, k]) => !k.agree).map(([el]) => byId.get(el)!.label);
  const w = t.width * zoom;
  const h = t.height * zoom;
  const sorted = [...t.nodes].sort((a, b) => Number(b.kind === 'host') - Number(a.kind === 'host'));
  return (
    <div>
      <div class="topo-tools">
        <button type="button" onClick={() => setZoom((z) => Math.min(3, z * 1.25))} aria-label="Zoom in">
          +
        </button>
        <button type="button" onClick={() => setZoom((z) => Math.max(0.2, z / 1.25))} aria-label="Zoom out">
          −
        </button>
        <button type="button" onClick={() => setZoom(1)}>
          100%
        </button>
        <button type="button" onClick={fit}>
          fit width
        </button>
        <span class="muted">
          {t.mode === 'summary'
            ? `${t.nodes.filter((n) => n.kind === 'host-summary').length} hypervisors (one card each)`
            : ''}
        </span>
        <span class="legend" aria-hidden="true">
          <span>
            <i style="background:var(--req)" />
            request
          </span>
          <span>
            <i style="background:var(--rep)" />
            reply
          </span>
          <span>
            <i style="background:var(--bad)" />
            drop
          </span>
        </span>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard */}
      <section class="topo-wrap" ref={wrap} tabIndex={0} aria-label="Topology drawing">
        <svg
          width={w}
          height={h}
          viewBox={`0 0 ${t.width} ${t.height}`}
          role="img"
          aria-label={`Topology: ${t.nodes.filter((n) => n.kind === 'host' || n.kind === 'host-summary').length} hypervisors${probe ? `; path of ${probe.name} through ${st.length} places${decisive ? `, dropped at ${decisive.node}${decisive.iface ? `:${decisive.iface}` : ''}` : ''}` : ''}${kernelAt.size > 0 ? `; kernel trace events at ${kernelAt.size} places${disagreeAt.length ? `, the kernel and the model disagree at ${disagreeAt.join(', ')}` : ', all as the model'}` : ''}`}
        >
          {t.edges.map((e) => (
            <polyline class="edge" points={e.points.map((p) => p.join(',')).join(' ')} />
          ))}
          {sorted.map((n) => (
            <g
              class={`n${n.kind === 'host' ? '-host' : ''} k-${n.kind}${n.role ? ` r-${n.role.replace(' ', '-')}` : ''}${onPath.has(n.id) && n.kind !== 'host' ? ' on' : ''}${failingHosts.has(n.id) && n.kind === 'host-summary' ? ' failing' : ''}`}
              data-id={n.id}
            >
              <title>{`${n.label}${n.detail ? ` — ${n.detail}` : ''}`}</title>
              <rect x={n.x} y={n.y} width={n.w} height={n.h} rx={n.kind === 'host' ? 8 : 4} />
              <text x={n.x + 8} y={n.y + (n.kind === 'host' ? 19 : n.detail ? 17 : n.h / 2 + 4)} font-size="12">
                {n.kind === 'guest' || n.kind === 'host-summary' ? n.label : `${n.label}`}
                {n.kind === 'bridge' ? ' (bridge)' : ''}
                {n.detail && n.kind === 'host' && (
                  // A tspan flows after the name: no guess at the name's width (it ran into the address).
                  <tspan class="d" dx="10">
                    {n.detail}
                  </tspan>
                )}
              </text>
              {n.detail && n.kind !== 'host' && (
                <text class="d" x={n.x + 8} y={n.y + 32}>
                  {n.detail.length > 34 ? `${n.detail.slice(0, 33)}…` : n.detail}
                </text>
              )}
            </g>
          ))}
          {legs.map((l) => (
            <polyline class={`route ${l.leg}`} points={l.pts.map((p) => p.join(',')).join(' ')} />
          ))}
          {st.map((s, k) => {
            const p = pt(s.element, s.leg);
            if (!p) return null;
            const sel = s.hops.includes(hop);
            return (
              // biome-ignore lint/a11y/noStaticElementInteractions: a mouse shortcut; the step list beside the drawing is the keyboard way to the same hops
              <g
                class={`hopdot ${s.leg}${sel ? ' sel' : ''}`}
                data-station={k}
                onClick={() => onHop(s.hops[0]!)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter') onHop(s.hops[0]!);
                }}
              >
                <circle cx={p[0]} cy={p[1]} r={9} />
                <text x={p[0]} y={p[1] + 3} text-anchor="middle">
                  {k + 1}
                </text>
              </g>
            );
          })}
          {dropNode && (
            <g class="drop">
              <title>dropped here</title>
              <circle cx={dropNode.x + dropNode.w} cy={dropNode.y} r={11} />
              <line
                x1={dropNode.x + dropNode.w - 5}
                y1={dropNode.y - 5}
                x2={dropNode.x + dropNode.w + 5}
                y2={dropNode.y + 5}
              />
              <line
                x1={dropNode.x + dropNode.w - 5}
                y1={dropNode.y + 5}
                x2={dropNode.x + dropNode.w + 5}
                y2={dropNode.y - 5}
              />
            </g>
          )}
          {[...kernelAt].map(([el, k]) => {
            const n = byId.get(el)!;
            const x = n.x - 2;
            const y = n.y + n.h;
            return (
              <g class={`kmark ${k.agree ? 'agree' : 'disagree'}`} data-kernel-element={el}>
                <title>
                  {k.agree ? 'the kernel agrees with the model here' : 'the kernel and the model disagree here'}:{' '}
                  {k.texts.join('; ')}
                </title>
                <rect x={x - 9} y={y - 9} width={18} height={18} rx={3} transform={`rotate(45 ${x} ${y})`} />
                <text x={x} y={y + 4} text-anchor="middle">
                  {k.agree ? 'K' : '!'}
                </text>
              </g>
            );
          })}
          {(flow ?? []).map((m) => {
            const n = byId.get(m.element);
            if (!n) return null;
            return (
              <g class={`capmark${m.last ? ' last' : ''}`}>
                <title>{m.label}</title>
                <rect x={n.x - 5} y={n.y - 5} width={n.w + 10} height={n.h + 10} rx={8} />
              </g>
            );
          })}
        </svg>
      </section>
    </div>
  );
}
