/** Small questions diagnosis asks of traces and of the scenario. */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { IpvsService } from '../ipvs/model.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Iface, Node, PortBinding } from '../topology/model.ts';
import type { Hop, IpvsStep, NetfilterStep, Trace } from '../trace/types.ts';

export function endHop(t: Trace): Hop | undefined {
  const id = t.path[t.path.length - 1];
  return id === undefined ? undefined : t.hops[id];
}

export function dropStep(h: Hop): NetfilterStep | undefined {
  for (const s of h.steps) if (s.kind === 'netfilter' && s.verdict === 'DROP') return s;
  return undefined;
}

export function ipvsStep(h: Hop): IpvsStep | undefined {
  for (const s of h.steps) if (s.kind === 'ipvs') return s;
  return undefined;
}

/** Hops on the trace's path, in order. */
export function pathHops(t: Trace): Hop[] {
  return t.path.map((id) => t.hops[id]!);
}

export function bindingAt(loaded: LoadedScenario, host: string, portdev: string): PortBinding | undefined {
  return loaded.scenario.bindings.find((b) => b.host === host && b.binding.portdev === portdev);
}

/** The guest behind a host's tap. */
export function guestBehind(loaded: LoadedScenario, host: string, tap: string): Node | undefined {
  const i = loaded.scenario.nodes.get(host)?.interfaces.get(tap);
  if (i?.kind !== 'tap' || !i.peer) return undefined;
  return loaded.scenario.nodes.get(i.peer.node);
}

export function ownsAddress(n: Node, a: Ipv4): boolean {
  for (const i of n.interfaces.values()) for (const ad of i.addrs) if (ad.prefix.addr === a) return true;
  return false;
}

/** IPv4 address services of a director. */
export function ipv4Services(loaded: LoadedScenario, director: string): IpvsService[] {
  return (loaded.ipvs.get(director)?.services ?? []).filter(
    (s) => s.key.kind === 'addr' && s.key.address.family === 'ipv4',
  );
}

export function serviceVip(s: IpvsService): Ipv4 | undefined {
  return s.key.kind === 'addr' && s.key.address.family === 'ipv4' ? s.key.address.addr : undefined;
}

/** Every VIP of every director. */
export function allVips(loaded: LoadedScenario): Set<Ipv4> {
  const out = new Set<Ipv4>();
  for (const d of loaded.ipvs.keys()) for (const s of ipv4Services(loaded, d)) out.add(serviceVip(s)!);
  return out;
}

/** The NIC of the scenario that owns an address (for real-server MACs). */
export function nicOwning(loaded: LoadedScenario, a: Ipv4): { node: Node; iface: Iface } | undefined {
  for (const n of loaded.scenario.nodes.values())
    for (const i of n.interfaces.values())
      if (i.kind !== 'loopback' && i.addrs.some((x) => x.prefix.addr === a)) return { node: n, iface: i };
  return undefined;
}

/** Replaces one binding in a copy of the scenario (or removes it with `undefined`). */
export function withBinding(
  loaded: LoadedScenario,
  target: PortBinding,
  next: PortBinding | undefined,
): LoadedScenario {
  const bindings = loaded.scenario.bindings.flatMap((b) => (b === target ? (next ? [next] : []) : [b]));
  return { ...loaded, scenario: { ...loaded.scenario, bindings } };
}
