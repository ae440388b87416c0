/**
 * Joins the evidence of many bundles into one cluster: which hypervisor runs which domain, which guest bundle is
 * which domain (a guest NIC's MAC = the domain interface's MAC), which machine is the directors' gateway, which
 * hosts' uplinks share an L2 segment. Only unambiguous evidence is used; everything else becomes a note that the
 * scenario writer turns into a marked comment.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { formatIpv4Prefix, type Ipv4Prefix, prefixContains, prefixNetwork } from '../addr/prefix.ts';
import type { DomainFact, Evidence, LinkFact } from './evidence.ts';
import { macsOf, owns } from './evidence.ts';

export interface HostPlace {
  readonly node: string;
  readonly ev: Evidence;
}

export interface GuestPlace {
  /** The domain name (the guest's node name). */
  readonly node: string;
  readonly host: string;
  readonly domain: DomainFact;
  /** The guest bundle, when collected. */
  readonly ev?: Evidence;
  /** `vnet0 (br0)` for each interface. */
  readonly ports: readonly string[];
}

export interface Uplink {
  readonly host: string;
  readonly iface: string;
  readonly bridge: string;
}

export interface SegmentGuess {
  readonly name: string;
  readonly members: readonly Uplink[];
  /** Why these uplinks were joined (empty for a lone uplink). */
  readonly evidence: readonly string[];
  readonly networks: readonly Ipv4Prefix[];
}

export interface GatewayGuess {
  readonly ip: Ipv4Prefix;
  readonly mac?: Mac;
  readonly iface: string;
  readonly segment?: string;
  readonly neighbours: ReadonlyMap<Ipv4, Mac>;
  /** The bundle of the gateway itself, when collected. */
  readonly ev?: Evidence;
  readonly evidence: readonly string[];
  /** What could not be inferred (TODO in the YAML). */
  readonly todo: readonly string[];
}

/** Something the import could not infer or had to assume, and the evidence (or its absence) behind it. */
export interface Assumption {
  readonly assumed: string;
  readonly evidence: string;
}

export interface Cluster {
  readonly hosts: readonly HostPlace[];
  readonly guests: readonly GuestPlace[];
  /** Guest bundles that match no domain of a collected host (and are not the gateway). */
  readonly unplaced: readonly Evidence[];
  readonly segments: readonly SegmentGuess[];
  readonly gateway?: GatewayGuess;
  readonly notes: readonly string[];
  /** What the scenario assumes for lack of evidence (written under `assumptions:`). */
  readonly assumptions: readonly Assumption[];
}

/** A node name the scenario accepts (`[A-Za-z0-9_.-]`), unique among `taken`. */
export function nodeName(wanted: string, taken: Set<string>): string {
  const base = wanted.replace(/[^A-Za-z0-9_.-]/g, '_') || 'node';
  let name = base;
  for (let k = 2; taken.has(name); k++) name = `${base}-${k}`;
  taken.add(name);
  return name;
}

function isTap(l: LinkFact, taps: ReadonlySet<string>): boolean {
  return taps.has(l.name) || l.infoKind === 'tun';
}

/** The guests' ports of a host: taps, and on a Proxmox node the fwpr ends of its firewall bridges' veth pairs. */
function tapsOf(ev: Evidence): Set<string> {
  const taps = new Set<string>();
  for (const d of ev.domains ?? []) for (const i of d.def.interfaces) if (i.targetDev) taps.add(i.targetDev);
  for (const b of ev.bindings ?? []) taps.add(b.def.portdev);
  for (const p of ev.pve?.pairs ?? []) taps.add(p.fwpr);
  return taps;
}

/** Proxmox: a guest NIC's firewall bridge (fwbrXiY) → the vmbr its veth pair joins; other bridges are themselves. */
function outerBridge(ev: Evidence, br: string | undefined): string | undefined {
  return ev.pve?.pairs.find((p) => p.fwbr === br)?.bridge ?? br;
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    if (p !== x) {
      p = this.find(p);
      this.parent.set(x, p);
    }
    return p;
  }
  union(a: string, b: string): boolean {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return false;
    this.parent.set(rb, ra);
    return true;
  }
}

function networkKey(p: Ipv4Prefix): string {
  return formatIpv4Prefix({ addr: prefixNetwork(p), len: p.len });
}

export function inferCluster(all: readonly Evidence[]): Cluster {
  const notes: string[] = [];
  const assumptions: Assumption[] = [];
  const assume = (assumed: string, evidence: string) => assumptions.push({ assumed, evidence });
  const taken = new Set<string>(['gateway', 'client']);
  const hosts: HostPlace[] = all
    .filter((e) => e.bundle.kind === 'hypervisor')
    .map((ev) => {
      const node = nodeName(ev.bundle.hostname.split('.')[0] ?? ev.bundle.hostname, taken);
      if (node !== ev.bundle.hostname.split('.')[0])
        notes.push(`hypervisor ${ev.bundle.hostname} (${ev.bundle.path}) is named ${node} (name taken or not usable)`);
      return { node, ev };
    });

  // Domains → hosts; domain MACs → domains.
  const byMac = new Map<Mac, { host: HostPlace; domain: DomainFact }[]>();
  const domainSeen = new Map<string, string>();
  for (const h of hosts)
    for (const d of h.ev.domains ?? []) {
      if (domainSeen.has(d.name)) {
        notes.push(`domain ${d.name} is listed on ${domainSeen.get(d.name)} and on ${h.node}: only the first is used`);
        continue;
      }
      // A Proxmox guest is running when its taps exist (its config names them whether it runs or not).
      if (h.ev.pve && h.ev.links && d.def.interfaces.length > 0) {
        const names = new Set(h.ev.links.map((l) => l.name));
        if (d.def.interfaces.every((i) => !i.targetDev || !names.has(i.targetDev))) {
          notes.push(`guest ${d.name} on ${h.node} left out: none of its taps exists (guest not running?)`);
          assume(
            `guest ${d.name} on ${h.node} is not running and is left out of the scenario`,
            `${h.node}'s ip -j link lists none of ${d.def.interfaces.map((i) => i.targetDev).join(', ')} (the taps of ${d.file.replace(/^.*?(?=nodes\/)/, '')})`,
          );
          continue;
        }
      }
      // A running domain's interfaces have taps; one without any is not running (nothing of it can be traced).
      if (d.def.interfaces.length > 0 && d.def.interfaces.every((i) => !i.targetDev)) {
        notes.push(`domain ${d.name} on ${h.node} left out: no interface has a target dev (domain not running?)`);
        assume(
          `domain ${d.name} on ${h.node} is not running and is left out of the scenario`,
          `${h.node}'s virsh dumpxml ${d.name} names no <target dev> for any interface`,
        );
        continue;
      }
      const bad = d.def.interfaces.filter(
        (i) => !i.mac || !i.targetDev || !['bridge', 'network', 'ethernet'].includes(i.type),
      );
      for (const i of bad) {
        const what = i.targetDev
          ? `interface type '${i.type}' is not modelled`
          : `interface ${i.mac ?? '?'} has no target dev`;
        notes.push(`domain ${d.name} on ${h.node}: ${what}; that interface is left out of the model`);
        assume(
          `the traffic of domain ${d.name}'s interface ${i.targetDev ?? i.mac ?? i.type} (on ${h.node}) is unknown: left out of the model`,
          `${h.node}'s virsh dumpxml ${d.name}: <interface type='${i.type}'>${i.targetDev ? ` on ${i.targetDev}` : ' without <target dev>'} (lvsdoctor models bridge, network and ethernet interfaces)`,
        );
      }
      domainSeen.set(d.name, h.node);
      taken.add(d.name);
      for (const i of d.def.interfaces)
        if (i.mac) byMac.set(i.mac, [...(byMac.get(i.mac) ?? []), { host: h, domain: d }]);
    }

  // Guest bundles → domains, by MAC.
  const guestBundles = all.filter((e) => e.bundle.kind === 'guest');
  const matched = new Map<string, Evidence>();
  const others: Evidence[] = [];
  for (const ev of guestBundles) {
    const hits = new Map<string, { host: HostPlace; domain: DomainFact }>();
    for (const m of macsOf(ev)) for (const hit of byMac.get(m) ?? []) hits.set(hit.domain.name, hit);
    if (hits.size === 1) {
      const [name] = [...hits.keys()];
      if (matched.has(name!)) {
        notes.push(
          `two guest bundles match domain ${name}: ${matched.get(name!)!.bundle.path} and ${ev.bundle.path}; the first is used`,
        );
        assume(
          `guest ${name} is described by bundle ${matched.get(name!)!.bundle.name}, not ${ev.bundle.name}`,
          `both bundles have a NIC whose MAC is an interface of domain ${name} (ambiguous; the first given is used)`,
        );
      } else matched.set(name!, ev);
    } else if (hits.size > 1) {
      notes.push(
        `guest bundle ${ev.bundle.path} (${ev.bundle.hostname}) matches several domains (${[...hits.keys()].join(', ')}): not placed`,
      );
      assume(
        `guest bundle ${ev.bundle.name} (${ev.bundle.hostname}) describes none of the domains`,
        `its NICs' MACs match several domains (${[...hits.keys()].join(', ')}): ambiguous, not placed`,
      );
    } else others.push(ev);
  }

  const guests: GuestPlace[] = [];
  for (const h of hosts)
    for (const d of h.ev.domains ?? []) {
      if (domainSeen.get(d.name) !== h.node) continue;
      const ev = matched.get(d.name);
      const ports = d.def.interfaces.map((i) => {
        const br = i.sourceBridge ?? i.sourceNetwork ?? i.sourceDev ?? i.type;
        const outer = outerBridge(h.ev, i.sourceBridge);
        return `${i.targetDev ?? '?'} (${br}${outer !== i.sourceBridge ? ` → ${outer}` : ''})`;
      });
      guests.push({ node: d.name, host: h.node, domain: d, ...(ev ? { ev } : {}), ports });
    }

  // Uplinks: the one non-tap port of each bridge.
  const uplinks: Uplink[] = [];
  for (const h of hosts) {
    const links = h.ev.links ?? [];
    const taps = tapsOf(h.ev);
    const bridges = new Set(links.flatMap((l) => (l.master ? [l.master] : [])));
    for (const l of links) if (l.infoKind === 'bridge') bridges.add(l.name);
    // A Proxmox firewall bridge holds one guest tap and its veth end: never an uplink.
    for (const p of h.ev.pve?.pairs ?? []) bridges.delete(p.fwbr);
    for (const br of [...bridges].sort()) {
      const ports = links.filter((l) => l.master === br && !isTap(l, taps));
      const hasTaps = links.some((l) => l.master === br && isTap(l, taps));
      if (ports.length === 1) uplinks.push({ host: h.node, iface: ports[0]!.name, bridge: br });
      else if (ports.length > 1 && hasTaps) {
        notes.push(
          `TODO ${h.node}: bridge ${br} has several non-guest ports (${ports.map((p) => p.name).join(', ')}); which one leads to the LAN is not known`,
        );
        assume(
          `${h.node}: bridge ${br} has no uplink in the scenario (its guests reach no other host)`,
          `${h.node}'s ip -j link shows several non-guest ports on ${br} (${ports.map((p) => p.name).join(', ')}); which one leads to the LAN is ambiguous`,
        );
      } else if (ports.length === 0 && hasTaps)
        notes.push(`${h.node}: bridge ${br} has no uplink (its guests talk only among themselves and to the host)`);
    }
  }

  // What lies behind an uplink: its bridge's and ports' MACs, the guests on that bridge.
  const guestEv = new Map(guests.flatMap((g) => (g.ev ? [[g.node, g.ev] as const] : [])));
  const behind = new Map<string, Set<Mac>>();
  const networks = new Map<string, Map<string, Ipv4Prefix>>();
  const key = (u: Uplink) => `${u.host}:${u.iface}`;
  const guestsByHost = new Map<string, GuestPlace[]>();
  for (const g of guests) guestsByHost.set(g.host, [...(guestsByHost.get(g.host) ?? []), g]);
  const hostByNode = new Map(hosts.map((h) => [h.node, h]));
  for (const u of uplinks) {
    const h = hostByNode.get(u.host)!;
    const linkByName = new Map((h.ev.links ?? []).map((l) => [l.name, l]));
    const macs = new Set<Mac>();
    const nets = new Map<string, Ipv4Prefix>();
    for (const l of h.ev.links ?? [])
      if (l.name === u.bridge || l.master === u.bridge) {
        if (l.mac) macs.add(l.mac);
        if (l.name === u.bridge || l.name === u.iface)
          for (const p of l.addrs) if (p.len < 32) nets.set(networkKey(p), p);
      }
    for (const g of guestsByHost.get(u.host) ?? []) {
      for (const i of g.domain.def.interfaces) {
        const br = outerBridge(h.ev, (i.targetDev ? linkByName.get(i.targetDev)?.master : undefined) ?? i.sourceBridge);
        if (br !== u.bridge) continue;
        if (i.mac) macs.add(i.mac);
        const gev = guestEv.get(g.node);
        const nic = gev?.links?.find((l) => l.mac === i.mac);
        for (const p of nic?.addrs ?? []) if (p.len < 32) nets.set(networkKey(p), p);
      }
    }
    behind.set(key(u), macs);
    networks.set(key(u), nets);
  }

  const uf = new UnionFind();
  const why = new Map<string, string[]>();
  const link = (a: Uplink, b: Uplink, reason: string) => {
    if (a.host === b.host && a.iface === b.iface) return;
    if (uf.union(key(a), key(b))) why.set(key(a), [...(why.get(key(a)) ?? []), reason]);
  };
  const macOwner = new Map<Mac, Uplink>();
  for (const u of uplinks) for (const m of behind.get(key(u))!) if (!macOwner.has(m)) macOwner.set(m, u);
  for (const u of uplinks) {
    const h = hostByNode.get(u.host)!;
    for (const f of h.ev.fdb ?? []) {
      if (f.local || f.port !== u.iface) continue;
      const other = macOwner.get(f.mac);
      if (other && other.host !== u.host)
        link(u, other, `${u.host}'s bridge ${u.bridge} learned ${f.mac} (${other.host}) on ${u.iface}`);
    }
    for (const n of h.ev.neigh ?? []) {
      if (n.dev !== u.bridge && n.dev !== u.iface) continue;
      const other = macOwner.get(n.mac);
      if (other && other.host !== u.host)
        link(u, other, `${u.host} has ${formatIpv4(n.ip)} lladdr ${n.mac} (${other.host}) on ${n.dev}`);
    }
  }
  const byNet = new Map<string, Uplink[]>();
  for (const u of uplinks) for (const k of networks.get(key(u))!.keys()) byNet.set(k, [...(byNet.get(k) ?? []), u]);
  for (const [net, us] of byNet)
    for (const u of us.slice(1)) link(us[0]!, u, `${us[0]!.host} and ${u.host} both have addresses in ${net}`);

  const groups = new Map<string, Uplink[]>();
  for (const u of uplinks) groups.set(uf.find(key(u)), [...(groups.get(uf.find(key(u))) ?? []), u]);
  const segs = [...groups.values()];
  const segments: SegmentGuess[] = segs.map((members, k) => {
    const nets = new Map<string, Ipv4Prefix>();
    for (const u of members) for (const [nk, p] of networks.get(key(u))!) nets.set(nk, p);
    const evidence = members.flatMap((u) => why.get(key(u)) ?? []);
    const name = segs.length === 1 ? 'lan' : `lan${k + 1}`;
    return { name, members, evidence, networks: [...nets.values()] };
  });
  if (segments.length > 1) {
    notes.push(
      `TODO the uplinks form ${segments.length} segments (${segments.map((s) => s.members.map(key).join('+')).join(' | ')}): no bundle shows they share one; merge them under segments: if they do`,
    );
    assume(
      `the uplinks form ${segments.length} separate segments (${segments.map((s) => `${s.name}: ${s.members.map(key).join(', ')}`).join('; ')})`,
      'no FDB entry, neighbour entry or shared subnet joins them (if they do share a switch, merge them under segments:)',
    );
  }

  // The gateway: the guests' (else the hosts') default route.
  const gateway = inferGateway(hosts, guests, others, segments, uplinks, notes);
  if (!gateway)
    assume(
      'there is no gateway and no client: nothing is probed from outside',
      'no collected guest or host has a default route',
    );
  for (const t of gateway?.todo ?? [])
    assume(`the gateway: unknown ${t}`, gateway!.evidence.join('; ') || 'no bundle of the router');
  const unplaced = others.filter((e) => e !== gateway?.ev);
  for (const e of unplaced) {
    notes.push(
      `guest bundle ${e.bundle.path} (${e.bundle.hostname}) matches no domain of the collected hypervisors: not in the scenario`,
    );
    assume(
      `guest bundle ${e.bundle.name} (${e.bundle.hostname}) is not in the scenario`,
      `none of its MACs (${[...macsOf(e)].join(', ') || 'no interface known'}) is an interface of a domain on the collected hypervisors`,
    );
  }
  if (hosts.length === 0)
    assume(
      'no guest is placed on a host',
      'no hypervisor bundle was given (run the collector without --guest on the hosts)',
    );
  return { hosts, guests, unplaced, segments, ...(gateway ? { gateway } : {}), notes, assumptions };
}

function mostCommon<T>(xs: readonly T[]): T | undefined {
  const n = new Map<T, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
}

const USABLE_NEIGH = /REACHABLE|STALE|PERMANENT|DELAY|PROBE|NOARP/;

function inferGateway(
  hosts: readonly HostPlace[],
  guests: readonly GuestPlace[],
  others: readonly Evidence[],
  segments: readonly SegmentGuess[],
  uplinks: readonly Uplink[],
  notes: string[],
): GatewayGuess | undefined {
  const guestVias = guests.flatMap((g) => (g.ev?.defaultVia !== undefined ? [g.ev.defaultVia] : []));
  const hostVias = hosts.flatMap((h) => (h.ev.defaultVia !== undefined ? [h.ev.defaultVia] : []));
  const via = mostCommon(guestVias) ?? mostCommon(hostVias);
  if (via === undefined) {
    notes.push('TODO gateway: no collected guest or host has a default route; gateway: is left out');
    return undefined;
  }
  const evidence: string[] = [
    guestVias.length > 0
      ? `default route of ${guests
          .filter((g) => g.ev?.defaultVia === via)
          .map((g) => g.node)
          .join(', ')} via ${formatIpv4(via)}`
      : `default route of the hosts via ${formatIpv4(via)}`,
  ];
  const todo: string[] = [];
  const gwEv = others.find((e) => owns(e, via));
  let ip: Ipv4Prefix | undefined;
  let mac: Mac | undefined;
  let iface = 'eth0';
  const neighbours = new Map<Ipv4, Mac>();
  if (gwEv) {
    const l = gwEv.links!.find((x) => x.addrs.some((p) => p.addr === via))!;
    ip = l.addrs.find((p) => p.addr === via);
    if (l.mac) mac = l.mac;
    iface = l.name;
    evidence.push(`${gwEv.bundle.hostname} (${gwEv.bundle.path}) owns ${formatIpv4(via)} on ${l.name}`);
    if (gwEv.neigh)
      for (const n of gwEv.neigh)
        if (n.dev === l.name && USABLE_NEIGH.test(n.state) && ip && prefixContains(ip, n.ip))
          neighbours.set(n.ip, n.mac);
    if (!gwEv.neigh) todo.push("the gateway's ARP cache (its bundle has no neighbour table)");
  } else {
    todo.push(
      `the gateway's ARP cache (run the collector with --guest on the router ${formatIpv4(via)} to know it; empty means it must ARP)`,
    );
    for (const g of guests)
      for (const n of g.ev?.neigh ?? [])
        if (n.ip === via && mac === undefined) {
          mac = n.mac;
          evidence.push(`${g.node}'s neighbour table: ${formatIpv4(via)} lladdr ${n.mac}`);
        }
    if (mac === undefined)
      for (const h of hosts)
        for (const n of h.ev.neigh ?? [])
          if (n.ip === via && mac === undefined) {
            mac = n.mac;
            evidence.push(`${h.node}'s neighbour table: ${formatIpv4(via)} lladdr ${n.mac}`);
          }
    if (mac === undefined) todo.push(`the gateway's MAC (nobody's neighbour table has ${formatIpv4(via)})`);
    const withPrefix = [...guests.flatMap((g) => g.ev?.links ?? []), ...hosts.flatMap((h) => h.ev.links ?? [])]
      .flatMap((l) => l.addrs)
      .find((p) => p.len < 32 && prefixContains(p, via));
    ip = withPrefix ? { addr: via, len: withPrefix.len } : { addr: via, len: 24 };
    if (!withPrefix) todo.push(`the gateway's prefix length (/24 assumed)`);
  }
  // Its segment: an uplink whose FDB learned the gateway's MAC, or whose networks contain its address.
  const cands = new Set<string>();
  for (const s of segments) {
    if (s.networks.some((p) => prefixContains(p, via))) cands.add(s.name);
    if (mac)
      for (const u of s.members) {
        const h = hosts.find((x) => x.node === u.host)!;
        if ((h.ev.fdb ?? []).some((f) => f.mac === mac && f.port === u.iface)) cands.add(s.name);
      }
  }
  let segment: string | undefined;
  if (cands.size === 1) segment = [...cands][0];
  else if (cands.size === 0 && segments.length === 1) {
    segment = segments[0]!.name;
    evidence.push(`the only segment is ${segment}`);
  } else if (segments.length === 0) todo.push('the segment of the gateway (no host uplink is known)');
  else
    todo.push(
      `the segment of the gateway (candidates: ${[...(cands.size ? cands : segments.map((s) => s.name))].join(', ')})`,
    );
  void uplinks;
  return {
    ip: ip ?? { addr: via, len: 24 },
    ...(mac ? { mac } : {}),
    iface,
    ...(segment ? { segment } : {}),
    neighbours,
    ...(gwEv ? { ev: gwEv } : {}),
    evidence,
    todo,
  };
}
