/**
 * What libvirt installs on a host: every filter binding of its guests compiled into one ebtables nat table and the
 * iptables filter table. A fact of the model (the simulator, the checks, the lab and `rules` all read it), so it
 * sits below trace/.
 */
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBindings } from '../libvirt/compile.ts';
import type { NwFilter, NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import type { EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import { appendAll } from '../source/arrays.ts';
import type { Issue } from '../source/issue.ts';
import type { LoadedScenario } from './load-scenario.ts';
import type { PortBinding } from './model.ts';

export interface HostRules {
  readonly nat: EbTable;
  /** libvirt's iptables filter table (FI-/FO-/HI- chains); bridged traffic sees it only through br_netfilter. */
  readonly filter4?: IptTable;
  /** The host's own iptables raw table, when its iptables-save was given (see `modelHostRules`). */
  readonly raw4?: IptTable;
  /**
   * The host's own nat and mangle tables (its iptables-save `*nat`/`*mangle`, or the nat base chains of its nft
   * ruleset), as the walk applies them (`trace/host-nat.ts`); see `modelHostRules`.
   */
  readonly nat4?: IptTable;
  readonly mangle4?: IptTable;
  /** Set when `filter4` is the host's own iptables filter table as installed (its iptables-save), not libvirt's. */
  readonly installed?: true;
  /**
   * The host's ebtables filter table as the walk evaluates it (pve-firewall's, on a Proxmox host whose iptables
   * rules are evaluated; see `modelHostRules`). libvirt installs no ebtables filter rules.
   */
  readonly ebFilter?: EbTable;
  readonly issues: readonly Issue[];
}

/**
 * Performance: scenarios are immutable and fixes copy only what they change, so a host whose custom filters (by
 * identity) and bindings (by identity, in order) are those of an earlier compile gets that compile's result.
 */
interface CacheEntry {
  readonly custom: readonly NwFilter[] | undefined;
  readonly style: EbStyle;
  readonly bindings: readonly NwFilterBinding[];
  readonly rules: HostRules;
}
const NO_BINDINGS = {};
const cache = new WeakMap<object, CacheEntry[]>();
const byHostCache = new WeakMap<readonly PortBinding[], Map<string, NwFilterBinding[]>>();

function bindingsByHost(all: readonly PortBinding[]): Map<string, NwFilterBinding[]> {
  let m = byHostCache.get(all);
  if (m === undefined) {
    m = new Map();
    for (const b of all) {
      let list = m.get(b.host);
      if (list === undefined) {
        list = [];
        m.set(b.host, list);
      }
      list.push(b.binding);
    }
    byHostCache.set(all, m);
  }
  return m;
}

export function compileHostRules(loaded: LoadedScenario, host: string, style: EbStyle): HostRules {
  const custom = loaded.filters.get(host);
  const bindings = bindingsByHost(loaded.scenario.bindings).get(host) ?? [];
  const key = bindings[0] ?? NO_BINDINGS;
  let entries = cache.get(key);
  if (entries === undefined) {
    entries = [];
    cache.set(key, entries);
  }
  for (const e of entries) {
    if (e.custom !== custom || e.style !== style || e.bindings.length !== bindings.length) continue;
    if (e.bindings.every((b, i) => b === bindings[i])) return e.rules;
  }
  const registry = filterRegistry(custom ?? []);
  const r = compileBindings(bindings, registry, { style, commands: false });
  const rules: HostRules = { nat: r.nat, filter4: r.filter4, issues: r.issues };
  if (entries.length >= 8) entries.shift();
  entries.push({ custom, style, bindings: [...bindings], rules });
  return rules;
}

/** Every host's rules, and the problems met compiling them (e.g. an unknown filter), hosts in scenario order. */
export function compileAllHostRules(
  loaded: LoadedScenario,
  style: EbStyle = 'nft',
): { readonly hostRules: ReadonlyMap<string, HostRules>; readonly issues: readonly Issue[] } {
  const hostRules = new Map<string, HostRules>();
  const issues: Issue[] = [];
  for (const node of loaded.scenario.nodes.values()) {
    if (node.kind !== 'host') continue;
    const r = compileHostRules(loaded, node.name, style);
    appendAll(issues, r.issues);
    hostRules.set(node.name, r);
  }
  return { hostRules, issues };
}

/**
 * The rules the model evaluates on every host, for joining live evidence to them: libvirt's compiled tables, and where
 * the scenario gives a host's iptables-save, that host's own filter (libvirt's chains among Docker's, firewalld's…)
 * and raw tables in place of libvirt's filter table, and its nat and mangle tables — the tables the simulator
 * evaluates (`openSession`, `trace/host-nat.ts`).
 */
export function modelHostRules(loaded: LoadedScenario, style: EbStyle = 'nft'): ReadonlyMap<string, HostRules> {
  const { hostRules } = compileAllHostRules(loaded, style);
  const nodes = loaded.scenario.nodes;
  const hostTable = (host: string, t: 'nat' | 'mangle') => {
    const n = nodes.get(host);
    return n?.kind === 'host' ? n[t] : undefined;
  };
  if (
    !loaded.installedIptables?.size &&
    !loaded.installedRaw?.size &&
    ![...hostRules.keys()].some((h) => hostTable(h, 'nat') || hostTable(h, 'mangle'))
  )
    return hostRules;
  const out = new Map<string, HostRules>();
  for (const [host, r] of hostRules) {
    const filter = loaded.installedIptables?.get(host);
    const raw = loaded.installedRaw?.get(host);
    const nat = hostTable(host, 'nat');
    const mangle = hostTable(host, 'mangle');
    // As the session's firewall of the host: pve-firewall's ebtables filter table beside its iptables rules.
    const ebFilter = filter ? loaded.proxmox?.get(host)?.ebFilter : undefined;
    out.set(
      host,
      filter || raw || nat || mangle
        ? {
            ...r,
            ...(filter ? { filter4: filter, installed: true as const } : {}),
            ...(raw ? { raw4: raw } : {}),
            ...(nat ? { nat4: nat } : {}),
            ...(mangle ? { mangle4: mangle } : {}),
            ...(ebFilter ? { ebFilter } : {}),
          }
        : r,
    );
  }
  return out;
}
