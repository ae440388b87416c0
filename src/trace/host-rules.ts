/** What libvirt installs on a host: every filter binding of its guests compiled into one ebtables nat table and the iptables filter table. */
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBindings } from '../libvirt/compile.ts';
import type { EbStyle } from '../netfilter/ebtables-model.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { HostRules } from './session.ts';

export function compileHostRules(loaded: LoadedScenario, host: string, style: EbStyle): HostRules {
  const registry = filterRegistry(loaded.filters.get(host) ?? []);
  const bindings = loaded.scenario.bindings.filter((b) => b.host === host).map((b) => b.binding);
  const r = compileBindings(bindings, registry, { style });
  return { nat: r.nat, filter4: r.filter4, issues: r.issues };
}
