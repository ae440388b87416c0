/**
 * The fleet: hypervisors at a glance, IPVS clusters with their probes, findings grouped by code, and every guest
 * in a windowed list (only the rows in view are in the DOM, so 8,000 guests do not freeze the page).
 */
import { useMemo, useState } from 'preact/hooks';
import type { FleetGuest, WebModel } from '../contract.ts';

const ROW = 28;

/**
 * "not checked", with the reason shown on hover and on keyboard focus (a tooltip the button describes itself by;
 * Escape hides it, a click pins it).
 */
function UncheckedTag({ id, why }: { id: string; why: string }) {
  const [pinned, setPinned] = useState(false);
  const [hidden, setHidden] = useState(false);
  return (
    <span class="uc" data-unchecked-tag>
      <button
        type="button"
        aria-describedby={id}
        aria-expanded={pinned}
        onClick={() => setPinned((p) => !p)}
        onBlur={() => setHidden(false)}
        onKeyDown={(e) => {
          if (e.key === 'Escape') {
            setPinned(false);
            setHidden(true);
          }
        }}
      >
        not checked
      </button>
      <span role="tooltip" id={id} class={`tip${pinned ? ' open' : ''}`} style={hidden ? 'display:none' : undefined}>
        {why}
      </span>
    </span>
  );
}
const VIEW = 420;

function GuestList({ guests }: { guests: readonly FleetGuest[] }) {
  const [top, setTop] = useState(0);
  const first = Math.max(0, Math.floor(top / ROW) - 5);
  const last = Math.min(guests.length, first + Math.ceil(VIEW / ROW) + 10);
  const rows = [];
  for (let k = first; k < last; k++) {
    const g = guests[k]!;
    rows.push(
      <li class="row" style={`top:${(k + 1) * ROW}px`} data-guest={g.name}>
        <span>{g.name}</span>
        <span>{g.host}</span>
        <span>{g.role}</span>
        <span>{g.ips}</span>
        <span>{g.port}</span>
        <span class={g.findings.length ? 'bad' : 'ok'}>{g.findings.length ? g.findings.join(', ') : 'no finding'}</span>
      </li>,
    );
  }
  return (
    <section
      class="vlist"
      aria-label={`Guests (${guests.length}): name, hypervisor, role, addresses, port, findings`}
      // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard
      tabIndex={0}
      onScroll={(e) => setTop((e.currentTarget as HTMLElement).scrollTop)}
    >
      <div class="row head" aria-hidden="true">
        <span>guest</span>
        <span>hypervisor</span>
        <span>role</span>
        <span>addresses</span>
        <span>port</span>
        <span>findings</span>
      </div>
      <div style={`height:${guests.length * ROW}px`} />
      <ul class="plain">{rows}</ul>
    </section>
  );
}

export function FleetPanel({ model }: { model: WebModel }) {
  const f = model.fleet;
  const [q, setQ] = useState('');
  const [onlyFailing, setOnlyFailing] = useState(false);
  const shown = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return f.guests.filter(
      (g) =>
        (!onlyFailing || g.findings.length > 0) &&
        (!needle ||
          g.name.toLowerCase().includes(needle) ||
          g.host.toLowerCase().includes(needle) ||
          g.ips.includes(needle) ||
          g.findings.some((x) => x.includes(needle))),
    );
  }, [f, q, onlyFailing]);
  const failingGuests = f.guests.filter((g) => g.findings.length > 0).length;
  const unchecked = f.clusters.filter((c) => c.unchecked !== undefined).length;
  return (
    <div class="fleet" id="panel-fleet" role="tabpanel" aria-labelledby="tab-fleet">
      <h2>Fleet</h2>
      <div class="kpis">
        <div class="kpi" data-kpi="hosts">
          <b>{f.hosts.length}</b>hypervisors
        </div>
        <div class="kpi" data-kpi="guests">
          <b>{f.guests.length}</b>guests
        </div>
        <div class="kpi">
          <b>{f.clusters.length}</b>IPVS services
        </div>
        <div class="kpi" data-kpi="unchecked">
          <b class={unchecked ? 'warn-text' : 'ok'}>{unchecked}</b>services not checked
        </div>
        <div class="kpi">
          <b class={failingGuests ? 'bad' : 'ok'}>{failingGuests}</b>guests with a finding
        </div>
        <div class="kpi">
          <b class={model.probes.some((p) => !p.ok) ? 'bad' : 'ok'}>
            {model.probes.filter((p) => !p.ok).length}/{model.probes.length}
          </b>
          probes failing
        </div>
      </div>
      <h3>Clusters</h3>
      <ul class="plain directors" aria-label="Directors: services, and how many no probe checked">
        {f.directors.map((d) => (
          <li data-director={d.name} data-unchecked-count={d.unchecked}>
            <strong>{d.name}</strong>: {d.services} service{d.services === 1 ? '' : 's'}
            {d.unchecked > 0 ? (
              <span class="warn-text">
                {' '}
                · {d.unchecked} not checked (the verdict does not vouch for {d.unchecked === 1 ? 'it' : 'them'})
              </span>
            ) : (
              ' · all checked'
            )}
          </li>
        ))}
      </ul>
      <table>
        <thead>
          <tr>
            <th scope="col">service</th>
            <th scope="col">director</th>
            <th scope="col">real servers</th>
            <th scope="col">probes</th>
          </tr>
        </thead>
        <tbody>
          {f.clusters.map((c, k) => (
            <tr data-cluster={`${c.service} on ${c.director}`}>
              <td>{c.service}</td>
              <td>{c.director}</td>
              <td>{c.realServers.join(', ')}</td>
              <td>
                {c.unchecked !== undefined && <UncheckedTag id={`uc-${k}`} why={c.unchecked} />}
                {c.probes.map((p) => (
                  <span class={p.ok ? 'ok' : 'bad'}>
                    {p.ok ? '✓' : '✗'} {p.probe}
                    {p.ok ? '' : ` (${p.disposition})`}{' '}
                  </span>
                ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Findings by kind</h3>
      {f.byFinding.length === 0 && <p>No finding.</p>}
      {f.byFinding.map((g) => (
        <details class="card">
          <summary>
            <strong>{g.code}</strong> ({g.severity}) — {g.count} place{g.count === 1 ? '' : 's'}: {g.title}
          </summary>
          <p>
            {g.where.slice(0, 60).join(', ')}
            {g.where.length > 60 ? ` … and ${g.where.length - 60} more` : ''}
          </p>
        </details>
      ))}
      <h3>Hypervisors</h3>
      <ul class="hostgrid plain" aria-label="Hypervisors, red with guests that have findings">
        {f.hosts.map((h) => (
          <li
            class={h.failing ? 'f' : ''}
            title={`${h.name}: ${h.guests} guests, ${h.directors} directors, ${h.realServers} real servers, ${h.failing} with findings`}
          >
            {h.name} {h.failing ? `✗${h.failing}` : '✓'}
          </li>
        ))}
      </ul>
      <h3>Guests</h3>
      <p>
        <label>
          filter{' '}
          <input
            type="search"
            value={q}
            data-fleet-filter
            onInput={(e) => setQ((e.currentTarget as HTMLInputElement).value)}
          />
        </label>{' '}
        <label>
          <input
            type="checkbox"
            checked={onlyFailing}
            onChange={(e) => setOnlyFailing((e.currentTarget as HTMLInputElement).checked)}
          />{' '}
          only guests with findings
        </label>{' '}
        <span class="muted" data-fleet-count={shown.length}>
          {shown.length} shown
        </span>
      </p>
      <GuestList guests={shown} />
    </div>
  );
}
