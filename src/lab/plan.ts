/**
 * The lab plan: what to create on the real kernel for a scenario — namespaces, veth pairs, bridges, addresses,
 * routes, sysctls, neighbours, director emulations, servers, capture points. Pure: computed from the model only,
 * so it can be checked without root. `build.ts` carries it out.
 */

import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { formatIpv4Prefix, prefixContains } from '../addr/prefix.ts';
import type { IpvsService } from '../ipvs/model.ts';
import { renderPveEbtablesRestore, renderPveIpsetRestore, renderPveRestore } from '../proxmox/compile.ts';
import { maxOf } from '../source/arrays.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Iface, Node, NodeKind, PortBinding } from '../topology/model.ts';
import { lookupRoute } from '../trace/node-config.ts';
import { plannedSpecs } from '../trace/probe-plan.ts';
import { idleTunnel } from './limits.ts';

export interface LabNamespace {
  readonly node: string;
  readonly ns: string;
  readonly kind: NodeKind | 'segment';
}

export interface LinkEnd {
  readonly ns: string;
  readonly name: string;
  readonly mac?: Mac;
  readonly master?: string;
  readonly up: boolean;
}

export interface VethPlan {
  readonly a: LinkEnd;
  readonly b: LinkEnd;
}

export interface AddrPlan {
  readonly ns: string;
  readonly dev: string;
  readonly cidr: string;
  readonly label?: string;
}

export interface NeighPlan {
  readonly ns: string;
  readonly ip: string;
  readonly mac: Mac;
  readonly dev: string;
}

export interface DirectorDest {
  readonly ip: string;
  readonly port: number;
  readonly weight: number;
  /**
   * The next hop the director's route to the real server names (`via`), when the real server is not on-link: DR
   * hands the frame to it, as `ip_vs_dr_xmit` does with the route's neighbour.
   */
  readonly via?: string;
}

export interface DirectorService {
  readonly vip: string;
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly scheduler: string;
  /** How every destination is reached: DR (`route`) or NAT (`masq`). */
  readonly method: 'route' | 'masq';
  /** Usable destinations (weight > 0), in the kernel's iteration order. */
  readonly dests: readonly DirectorDest[];
  /** Every destination as configured (weight 0 included), for real IPVS. */
  readonly allDests: readonly DirectorDest[];
  /** The device that reaches the destinations. */
  readonly outDev: string;
  /** The destination a fresh IPVS would pick first (undefined: none usable). */
  readonly firstPick?: DirectorDest;
}

export interface DirectorPlan {
  readonly node: string;
  readonly ns: string;
  /** NICs on which the emulation listens (name and MAC). */
  readonly devices: readonly { readonly name: string; readonly mac: Mac }[];
  readonly services: readonly DirectorService[];
}

export interface ServerPlan {
  readonly node: string;
  readonly ns: string;
  readonly protocol: 'tcp' | 'udp';
  readonly port: number;
}

export interface CapturePlan {
  /** `node:iface`, as the simulator names capture points. */
  readonly point: string;
  readonly ns: string;
  readonly iface: string;
}

export interface BindingPlan {
  readonly host: string;
  readonly ns: string;
  readonly binding: PortBinding;
}

/** A macvlan (keepalived's VMAC) or VLAN device made on a lower device of its namespace. */
export interface StackedPlan {
  readonly ns: string;
  readonly name: string;
  readonly kind: 'macvlan' | 'vlan';
  readonly lower: string;
  readonly mac?: Mac;
  readonly vlanId?: number;
  readonly mode?: string;
  readonly up: boolean;
}

/**
 * A host's own rule set (`iptables-save` or `nft list ruleset`), loaded verbatim into its namespace; or (`pve`) a
 * Proxmox node's rules as pve-firewall installs them: `ipset restore`, then `iptables-restore -n` of the filter
 * table, then `ebtables-restore --noflush`, each text what lvsdoctor's compiler generates from its /etc/pve.
 */
export type HostRulesPlan =
  | {
      readonly host: string;
      readonly ns: string;
      readonly format: 'iptables-save' | 'nft';
      readonly text: string;
      readonly file: string;
    }
  | {
      readonly host: string;
      readonly ns: string;
      readonly format: 'pve';
      readonly ipsets: string;
      readonly text: string;
      readonly ebtables: string;
      readonly file: string;
    };

export interface LabPlan {
  readonly prefix: string;
  readonly namespaces: readonly LabNamespace[];
  readonly nsOf: ReadonlyMap<string, string>;
  readonly bridges: readonly { readonly ns: string; readonly name: string; readonly mac?: Mac; readonly up: boolean }[];
  readonly veths: readonly VethPlan[];
  readonly dummies: readonly LinkEnd[];
  /** Devices stacked on others (macvlan, VLAN), made after the links. */
  readonly stacked: readonly StackedPlan[];
  readonly addrs: readonly AddrPlan[];
  readonly routes: readonly { readonly ns: string; readonly args: readonly string[] }[];
  /** Policy routing rules (`ip rule add …`), added after the routes; the kernel's default rules stay. */
  readonly rules: readonly { readonly ns: string; readonly args: readonly string[] }[];
  /** Per namespace, in order. */
  readonly sysctls: ReadonlyMap<string, readonly (readonly [string, string])[]>;
  readonly neighbours: readonly NeighPlan[];
  readonly directors: readonly DirectorPlan[];
  readonly servers: readonly ServerPlan[];
  readonly captures: readonly CapturePlan[];
  readonly bindings: readonly BindingPlan[];
  /** Hosts' own firewall rule sets, loaded before the filter bindings. */
  readonly hostRules: readonly HostRulesPlan[];
  /** What the lab cannot reproduce faithfully. */
  readonly warnings: readonly string[];
  /** Services the lab cannot emulate (tunnel, mixed forwarding methods), as `VIP:PORT`. */
  readonly unsupportedServices: readonly string[];
}

/** Sysctls copied from the model (others in the artifacts are not applied). */
const SYSCTL_PER_IFACE = new Set([
  'arp_ignore',
  'arp_announce',
  'rp_filter',
  'arp_filter',
  'proxy_arp',
  'accept_local',
]);

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function usableMac(m: Mac): Mac | undefined {
  return m === ('00:00:00:00:00:00' as Mac) ? undefined : m;
}

/** Namespace names: PREFIX + node name. */
export function nsName(prefix: string, node: string): string {
  return `${prefix}${safeName(node)}`;
}

function sysctlFor(node: Node, ns: string, out: Map<string, [string, string][]>): string[] {
  const warnings: string[] = [];
  const list: [string, string][] = [
    ['net.ipv6.conf.all.disable_ipv6', '1'],
    ['net.ipv6.conf.default.disable_ipv6', '1'],
    ['net.ipv4.conf.all.rp_filter', '0'],
    ['net.ipv4.conf.default.rp_filter', '0'],
    ['net.ipv4.conf.all.arp_ignore', '0'],
    ['net.ipv4.conf.all.arp_announce', '0'],
    ['net.ipv4.ip_forward', node.kind === 'gateway' ? '1' : '0'],
  ];
  if (node.kind === 'client') list.push(['net.ipv4.ip_default_ttl', String(node.ttl)]);
  // br_netfilter's switches are per namespace and on (1) in a new one; on a host they are what its sysctl says, and
  // off where it says nothing (br_netfilter not loaded), as the simulator reads them.
  if (node.kind === 'host')
    for (const t of ['iptables', 'ip6tables', 'arptables']) {
      const key = `net.bridge.bridge-nf-call-${t}`;
      list.push([key, node.sysctl.get(key)?.value.trim() === '1' ? '1' : '0']);
    }
  for (const [key, v] of node.sysctl) {
    const m = /^net\.ipv4\.conf\.([^.]+)\.([a-z_]+)$/.exec(key);
    if (key === 'net.ipv4.ip_forward') list.push([key, v.value]);
    else if (m && SYSCTL_PER_IFACE.has(m[2]!)) list.push([key, v.value]);
  }
  out.set(ns, list);
  return warnings;
}

function kernelFirstPick(svc: { scheduler: string; dests: readonly DirectorDest[] }): DirectorDest | undefined {
  if (svc.dests.length === 0) return undefined;
  if (svc.scheduler === 'wrr') {
    const max = maxOf(svc.dests.map((d) => d.weight));
    return svc.dests.find((d) => d.weight === max);
  }
  // rr, lc, wlc, sed, nq, fo… from a fresh state all pick the first usable destination.
  return svc.dests[0];
}

function directorPlan(
  loaded: LoadedScenario,
  node: Node,
  ns: string,
  services: readonly IpvsService[],
  warnings: string[],
  unsupported: string[],
): DirectorPlan {
  const nics = [...node.interfaces.values()].filter((i) => i.kind !== 'loopback');
  const local = (a: Ipv4) => [...node.interfaces.values()].some((i) => i.addrs.some((x) => x.prefix.addr === a));
  const out: DirectorService[] = [];
  for (const svc of services) {
    if (svc.key.kind !== 'addr' || svc.key.address.family !== 'ipv4' || svc.key.protocol === 'SCTP') {
      warnings.push(`${node.name}: service ${JSON.stringify(svc.key)} is not emulated (only IPv4 TCP/UDP services)`);
      continue;
    }
    const vip = svc.key.address.addr as Ipv4;
    const name = `${formatIpv4(vip)}:${svc.key.port}`;
    const methods = new Set(svc.destinations.map((d) => d.forwarding?.kind ?? 'route'));
    if (methods.has('tunnel') || methods.has('local') || methods.size > 1) {
      warnings.push(
        `${node.name}: ${name} forwards by ${[...methods].join(' and ')}; the lab emulates DR (Route) and NAT (Masq) services only`,
      );
      unsupported.push(name);
      continue;
    }
    const method = methods.has('masq') ? 'masq' : 'route';
    if (!local(vip)) {
      warnings.push(
        `${node.name}: VIP ${formatIpv4(vip)} is not an address of the director; IPVS would not see its packets, so the lab installs no rule`,
      );
      continue;
    }
    const allDests: DirectorDest[] = svc.destinations
      .filter((d) => d.address.family === 'ipv4')
      .map((d) => {
        const via = lookupRoute(node, d.address.addr as Ipv4)?.via;
        return {
          ip: formatIpv4(d.address.addr as Ipv4),
          port: d.port,
          weight: d.weight ?? 1,
          ...(via !== undefined ? { via: formatIpv4(via) } : {}),
        };
      });
    const dests = allDests.filter((d) => d.weight > 0);
    const firstDest = svc.destinations[0];
    const rsAddr = firstDest && firstDest.address.family === 'ipv4' ? (firstDest.address.addr as Ipv4) : undefined;
    const rsRoute = rsAddr !== undefined ? lookupRoute(node, rsAddr) : undefined;
    const outNic =
      (rsAddr !== undefined ? nics.find((i) => i.addrs.some((a) => prefixContains(a.prefix, rsAddr))) : undefined) ??
      (rsRoute?.dev !== undefined ? nics.find((i) => i.name === rsRoute.dev) : undefined) ??
      nics[0];
    const scheduler = svc.scheduler ?? 'rr';
    if (!['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo'].includes(scheduler))
      warnings.push(`${node.name}: scheduler ${scheduler} of ${name} is emulated as rr`);
    const pick = kernelFirstPick({ scheduler, dests });
    out.push({
      vip: formatIpv4(vip),
      port: svc.key.port,
      protocol: svc.key.protocol === 'UDP' ? 'udp' : 'tcp',
      scheduler,
      method,
      dests,
      allDests,
      outDev: outNic?.name ?? 'eth0',
      ...(pick ? { firstPick: pick } : {}),
    });
    void loaded;
  }
  return { node: node.name, ns, devices: nics.map((i) => ({ name: i.name, mac: i.mac })), services: out };
}

export function planLab(loaded: LoadedScenario, prefix: string): LabPlan {
  const s = loaded.scenario;
  const namespaces: LabNamespace[] = [];
  const nsOf = new Map<string, string>();
  for (const n of s.nodes.values()) {
    const ns = nsName(prefix, n.name);
    namespaces.push({ node: n.name, ns, kind: n.kind });
    nsOf.set(n.name, ns);
  }
  const bridges: { ns: string; name: string; mac?: Mac; up: boolean }[] = [];
  const veths: VethPlan[] = [];
  const dummies: LinkEnd[] = [];
  const stacked: StackedPlan[] = [];
  const addrs: AddrPlan[] = [];
  const routes: { ns: string; args: string[] }[] = [];
  const rules: { ns: string; args: string[] }[] = [];
  // Named tables (no /etc/iproute2/rt_tables in the lab) get numbers of their own, the same in routes and rules.
  const tableIds = new Map<string, string>();
  const tableId = (t: string): string => {
    if (/^\d+$/.test(t) || t === 'main' || t === 'local' || t === 'default') return t;
    let id = tableIds.get(t);
    if (id === undefined) {
      id = String(10000 + tableIds.size);
      tableIds.set(t, id);
    }
    return id;
  };
  const sysctls = new Map<string, [string, string][]>();
  const neighbours: NeighPlan[] = [];
  const warnings: string[] = [];
  const unsupportedServices: string[] = [];
  const captures: CapturePlan[] = [];
  const done = new Set<string>();
  const end = (node: Node, i: Iface): LinkEnd => ({
    ns: nsOf.get(node.name)!,
    name: i.name,
    ...(usableMac(i.mac) ? { mac: i.mac } : {}),
    ...(i.master ? { master: i.master } : {}),
    up: i.up,
  });

  // Segments: one namespace with one bridge; each member joins through a veth.
  const segMember = new Map<string, { ns: string; port: string }>();
  s.segments.forEach((seg, k) => {
    const ns = `${prefix}seg${k}`;
    namespaces.push({ node: `segment ${seg.name}`, ns, kind: 'segment' });
    bridges.push({ ns, name: 'segbr', up: true });
    sysctls.set(ns, [
      ['net.ipv6.conf.all.disable_ipv6', '1'],
      ['net.ipv6.conf.default.disable_ipv6', '1'],
    ]);
    seg.members.forEach((m, j) => {
      segMember.set(`${m.node}:${m.iface}`, { ns, port: `p${j}` });
    });
  });

  for (const n of s.nodes.values()) {
    const ns = nsOf.get(n.name)!;
    for (const w of sysctlFor(n, ns, sysctls)) warnings.push(w);
    for (const i of n.interfaces.values()) {
      const key = `${n.name}:${i.name}`;
      if (idleTunnel(i)) {
        // tunl0 of a loaded ipip module, down and without an address: it carries nothing (and this kernel may have
        // no ipip to make it from).
        warnings.push(`${key} (a tunnel device, down, no address) is left out`);
        continue;
      }
      // tcpdump cannot listen on a device that is down (nothing passes there either).
      if (i.kind !== 'loopback' && i.up) captures.push({ point: key, ns, iface: i.name });
      if (i.kind === 'loopback') {
        // lo exists in every namespace.
      } else if (i.kind === 'bridge')
        bridges.push({ ns, name: i.name, ...(usableMac(i.mac) ? { mac: i.mac } : {}), up: i.up });
      else if ((i.kind === 'macvlan' || i.kind === 'vlan') && i.lower !== undefined) {
        // Stacked on a device of the same namespace: made once the links exist.
        stacked.push({
          ns,
          name: i.name,
          kind: i.kind,
          lower: i.lower,
          ...(usableMac(i.mac) ? { mac: i.mac } : {}),
          ...(i.vlanId !== undefined ? { vlanId: i.vlanId } : {}),
          ...(i.mode !== undefined ? { mode: i.mode } : {}),
          up: i.up,
        });
        done.add(key);
      } else if (!done.has(key)) {
        const seg = segMember.get(key);
        const peerNode = i.peer ? s.nodes.get(i.peer.node) : undefined;
        const peerIface = i.peer ? peerNode?.interfaces.get(i.peer.iface) : undefined;
        if (peerNode && peerIface) {
          veths.push({ a: end(n, i), b: end(peerNode, peerIface) });
          done.add(key);
          done.add(`${peerNode.name}:${peerIface.name}`);
        } else if (seg) {
          veths.push({ a: end(n, i), b: { ns: seg.ns, name: seg.port, master: 'segbr', up: true } });
          done.add(key);
        } else {
          dummies.push(end(n, i));
          done.add(key);
          if (n.kind === 'host' || n.kind === 'guest')
            warnings.push(`${key} is connected to nothing in the scenario (created as a dummy interface)`);
        }
      }
      for (const a of i.addrs) {
        if (i.kind === 'loopback' && a.prefix.addr === (0x7f000001 as Ipv4) && a.prefix.len === 8) continue;
        addrs.push({
          ns,
          dev: i.name,
          cidr: formatIpv4Prefix(a.prefix),
          ...(a.label && a.label !== i.name && a.label.startsWith(`${i.name}:`) ? { label: a.label } : {}),
        });
      }
    }
    // Routes: direct ones first so that gateways are reachable when routes through them are added.
    const rs = [...n.routes].sort((a, b) => Number(a.via !== undefined) - Number(b.via !== undefined));
    for (const r of rs) {
      if (r.type === 'local' || r.type === 'broadcast' || r.type === 'multicast' || r.type === 'anycast') continue;
      if (r.table === 'local') continue;
      const dst = r.dst.len === 0 ? 'default' : formatIpv4Prefix(r.dst);
      const args: string[] = r.type === 'unicast' ? [dst] : [r.type, dst];
      if (r.type === 'unicast') {
        if (r.via !== undefined) args.push('via', formatIpv4(r.via));
        if (r.dev !== undefined) args.push('dev', r.dev);
        if (r.src !== undefined) args.push('src', formatIpv4(r.src));
        if (r.via !== undefined && (n.kind === 'client' || r.onlink)) args.push('onlink');
      }
      if (r.table !== undefined && r.table !== 'main') args.push('table', tableId(r.table));
      if (r.metric) args.push('metric', String(r.metric));
      if (r.mtu !== undefined) args.push('mtu', String(r.mtu));
      if (r.advmss !== undefined) args.push('advmss', String(r.advmss));
      routes.push({ ns, args });
    }
    for (const rule of n.rules ?? []) {
      const a = rule.action;
      const stock =
        !rule.not &&
        !rule.from &&
        !rule.to &&
        rule.iif === undefined &&
        rule.oif === undefined &&
        !rule.fwmark &&
        a.kind === 'lookup' &&
        a.suppressPrefixLength === undefined &&
        ((rule.priority === 0 && a.table === 'local') ||
          (rule.priority === 32766 && a.table === 'main') ||
          (rule.priority === 32767 && a.table === 'default'));
      if (stock) continue;
      const args: string[] = ['priority', String(rule.priority)];
      if (rule.not) args.push('not');
      args.push('from', rule.from ? formatIpv4Prefix(rule.from) : 'all');
      if (rule.to) args.push('to', formatIpv4Prefix(rule.to));
      if (rule.iif !== undefined) args.push('iif', rule.iif);
      if (rule.oif !== undefined) args.push('oif', rule.oif);
      if (rule.fwmark) args.push('fwmark', `0x${rule.fwmark.value.toString(16)}/0x${rule.fwmark.mask.toString(16)}`);
      switch (a.kind) {
        case 'lookup':
          args.push('lookup', tableId(a.table));
          if (a.suppressPrefixLength !== undefined) args.push('suppress_prefixlength', String(a.suppressPrefixLength));
          break;
        case 'goto':
          args.push('goto', String(a.target));
          break;
        case 'blackhole':
        case 'unreachable':
        case 'prohibit':
          args.push(a.kind);
          break;
        case 'nop':
          args.push('nop');
          break;
      }
      rules.push({ ns, args });
    }
    for (const [ip, e] of n.neighbours) {
      const dev = e.iface ?? [...n.interfaces.values()].find((i) => i.kind !== 'loopback')?.name;
      if (dev) neighbours.push({ ns, ip: formatIpv4(ip), mac: e.mac, dev });
    }
  }

  // The client reaches everything through its point-to-point link: static neighbours on both ends stand in for the
  // internet between them (no ARP on that link, as in the model).
  for (const c of s.nodes.values()) {
    if (c.kind !== 'client') continue;
    for (const i of c.interfaces.values()) {
      if (!i.pointToPoint || !i.peer) continue;
      const gw = s.nodes.get(i.peer.node);
      const gwIf = gw?.interfaces.get(i.peer.iface);
      if (!gw || !gwIf) continue;
      const targets = new Set<string>();
      // Every TCP target of the probe plan (the scenario's probes and the ones lvsdoctor adds, e.g. real servers).
      for (const p of plannedSpecs(loaded)) if (p.kind === 'tcp' && p.from === c.name) targets.add(formatIpv4(p.to));
      for (const t of loaded.ipvs.values())
        for (const svc of t.services)
          if (svc.key.kind === 'addr' && svc.key.address.family === 'ipv4')
            targets.add(formatIpv4(svc.key.address.addr as Ipv4));
      for (const t of targets) neighbours.push({ ns: nsOf.get(c.name)!, ip: t, mac: gwIf.mac, dev: i.name });
      for (const a of i.addrs)
        neighbours.push({ ns: nsOf.get(gw.name)!, ip: formatIpv4(a.prefix.addr), mac: i.mac, dev: gwIf.name });
    }
  }

  const directors: DirectorPlan[] = [];
  for (const [name, table] of loaded.ipvs) {
    const node = s.nodes.get(name);
    if (!node) continue;
    directors.push(directorPlan(loaded, node, nsOf.get(name)!, table.services, warnings, unsupportedServices));
  }
  const servers: ServerPlan[] = [];
  for (const n of s.nodes.values())
    if (n.kind === 'guest')
      for (const l of n.listeners)
        servers.push({ node: n.name, ns: nsOf.get(n.name)!, protocol: l.protocol, port: l.port });
  const bindings: BindingPlan[] = s.bindings.map((b) => ({ host: b.host, ns: nsOf.get(b.host)!, binding: b }));
  const hostRules: HostRulesPlan[] = [];
  for (const [host, r] of loaded.hostRuleSets ?? []) {
    const ns = nsOf.get(host);
    if (!ns) continue;
    hostRules.push({ host, ns, format: r.format, text: r.text, file: r.file });
    // nftables resolves `iif`/`oif` names to devices when the rules are loaded: a device the rule set names that the
    // host's ip addr does not list (libvirt's virbr0, docker0) existed on the host; it is made here, down.
    const node = s.nodes.get(host);
    if (r.format !== 'nft' || !node) continue;
    const named = new Set([...r.text.matchAll(/\b[io]if "([^"]+)"/g)].map((m) => m[1]!));
    for (const dev of named)
      if (!node.interfaces.has(dev) && /^[A-Za-z0-9_.-]{1,15}$/.test(dev)) {
        dummies.push({ ns, name: dev, up: false });
        warnings.push(`${host}:${dev} is named by the host's rule set (iif/oif) but not in its ip addr: created, down`);
      }
  }
  for (const [host, pve] of loaded.proxmox ?? []) {
    const ns = nsOf.get(host);
    if (!ns || loaded.hostRuleSets?.has(host) || !pve.compiled.enabled) continue;
    if (pve.nft) {
      // proxmox-firewall: its inet table (a guest table is a stated limit, src/lab/limits.ts)
      if (pve.nft.hostScript)
        hostRules.push({
          host,
          ns,
          format: 'nft',
          text: pve.nft.hostScript,
          file: `proxmox-firewall's inet table for ${pve.files.nodeName} (compiled from its /etc/pve)`,
        });
      continue;
    }
    hostRules.push({
      host,
      ns,
      format: 'pve',
      ipsets: renderPveIpsetRestore(pve.compiled.ipsets),
      text: renderPveRestore(pve.compiled.filter4, 'filter'),
      ebtables: renderPveEbtablesRestore(pve.compiled.ebtables),
      file: `pve-firewall's rules for ${pve.files.nodeName} (compiled from its /etc/pve)`,
    });
  }
  return {
    prefix,
    namespaces,
    nsOf,
    bridges,
    veths,
    dummies,
    addrs,
    routes,
    rules,
    stacked,
    sysctls,
    neighbours,
    directors,
    servers,
    captures,
    bindings,
    hostRules,
    warnings,
    unsupportedServices,
  };
}
