/**
 * What a bundle tells, read into plain facts: links with their MACs and bridge masters, IPv4 addresses, neighbour
 * and FDB entries, default routes, domains, filter bindings, custom filters, IPVS tables and listening sockets.
 * Every reader tolerates a missing or malformed output: the fact is then unknown and the reason is kept.
 */
import type { Ipv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { type Ipv4Prefix, parseIpv4Prefix } from '../addr/prefix.ts';
import { readIpvsadmList } from '../ipvs/ipvsadm-list-reader.ts';
import type { IpvsTable } from '../ipvs/model.ts';
import { builtinFilters } from '../libvirt/builtin-filters.ts';
import { type Domain, readDomainXml } from '../libvirt/domain-xml.ts';
import type { NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import { readFilterBindingXml } from '../libvirt/nwfilter-xml.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import { readIpNeigh } from '../topology/ip-neigh.ts';
import { readIpRoute } from '../topology/ip-route.ts';
import { type PveHost, pveHostFrom } from '../topology/proxmox-host.ts';
import { type Bundle, bundleFile, outputOf, whyUnavailable } from './bundle.ts';
import { isProxmoxBundle, pveFilesFromBundle } from './proxmox-bundle.ts';

export interface LinkFact {
  readonly name: string;
  readonly mac?: Mac;
  readonly master?: string;
  /** `bridge`, `veth`, `tun`, `vlan`, `bond`… (`ip -d` linkinfo), or undefined for plain NICs. */
  readonly infoKind?: string;
  readonly linkType: string;
  readonly up: boolean;
  readonly addrs: readonly Ipv4Prefix[];
}

export interface NeighFact {
  readonly ip: Ipv4;
  readonly dev: string;
  readonly mac: Mac;
  readonly state: string;
}

export interface FdbFact {
  readonly mac: Mac;
  readonly port: string;
  readonly master?: string;
  /** Local addresses of the bridge itself (`permanent` on the port). */
  readonly local: boolean;
}

export interface DomainFact {
  readonly name: string;
  /** Output id in the bundle and the XML text. */
  readonly id: string;
  readonly text: string;
  readonly def: Domain;
  /** The file name the parse used in positions, and what it reported (for a loader that reuses the parse). */
  readonly file: string;
  readonly issues: readonly Issue[];
}

export interface BindingFact {
  readonly id: string;
  readonly text: string;
  readonly def: NwFilterBinding;
  readonly file: string;
  readonly issues: readonly Issue[];
}

export interface FilterFact {
  readonly name: string;
  readonly id: string;
  readonly text: string;
}

export interface Gap {
  readonly what: string;
  readonly why: string;
  /** `bundle/manifest.tsv:LINE`, when the manifest records the command. */
  readonly where?: string;
}

/** Facts of one bundle; `unknown` says what could not be read and why. */
export interface Evidence {
  readonly bundle: Bundle;
  readonly links?: readonly LinkFact[];
  readonly neigh?: readonly NeighFact[];
  readonly fdb?: readonly FdbFact[];
  readonly defaultVia?: Ipv4;
  readonly domains?: readonly DomainFact[];
  readonly bindings?: readonly BindingFact[];
  /** Filters named by nwfilter-list that are not libvirt built-ins. */
  readonly customFilters?: readonly FilterFact[];
  readonly ipvs?: IpvsTable;
  readonly listen?: readonly string[];
  /**
   * A Proxmox VE host: its /etc/pve files read and compiled (guests as domains, fwbr veth pairs, pve-firewall's
   * rules). Its `domains` are then the guests of its qemu-server/lxc configs.
   */
  readonly pve?: PveHost;
  /** Things the bundle does not tell, with the reason (e.g. "virsh: tool not installed"). */
  readonly unknown: readonly string[];
  /** The same, structured: what is unknown, why, and the manifest line that records it. */
  readonly gaps: readonly Gap[];
  readonly issues: readonly Issue[];
}

function json(b: Bundle, id: string, issues: Issue[]): unknown[] | undefined {
  const text = outputOf(b, id);
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text.trim() === '' ? '[]' : text);
    return Array.isArray(v) ? v : undefined;
  } catch (e) {
    const c = b.commands.get(id)!;
    issues.push(
      issue('bundle.json', `${c.command}: not JSON (${(e as Error).message})`, filePos(bundleFile(b, c.out), 1)),
    );
    return undefined;
  }
}

interface JLink {
  ifname?: string;
  address?: string;
  master?: string;
  link_type?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number }[];
}

function readLinks(b: Bundle, issues: Issue[]): LinkFact[] | undefined {
  const addrs = json(b, 'ip-j-addr', issues) as JLink[] | undefined;
  const links = (json(b, 'ip-j-link', issues) as JLink[] | undefined) ?? addrs;
  if (!links) return undefined;
  const byName = new Map<string, Ipv4Prefix[]>();
  for (const l of addrs ?? []) {
    if (!l.ifname) continue;
    byName.set(
      l.ifname,
      (l.addr_info ?? []).flatMap((a) => {
        if (a.family !== 'inet') return [];
        const p = parseIpv4Prefix(`${a.local}/${a.prefixlen}`);
        return p ? [p] : [];
      }),
    );
  }
  return links.flatMap((l): LinkFact[] => {
    if (!l.ifname) return [];
    const mac = l.address ? parseMac(l.address) : undefined;
    return [
      {
        name: l.ifname,
        ...(mac ? { mac } : {}),
        ...(l.master ? { master: l.master } : {}),
        ...(l.linkinfo?.info_kind ? { infoKind: l.linkinfo.info_kind } : {}),
        linkType: l.link_type ?? 'unknown',
        up: (l.flags ?? []).includes('UP'),
        addrs: byName.get(l.ifname) ?? [],
      },
    ];
  });
}

function readNeigh(b: Bundle, issues: Issue[]): NeighFact[] | undefined {
  const text = outputOf(b, 'ip-j-neigh');
  if (text === undefined) return undefined;
  const r = readIpNeigh(text.trim() === '' ? '[]' : text, bundleFile(b, b.commands.get('ip-j-neigh')!.out));
  appendAll(issues, r.issues);
  return r.value?.flatMap((n) => (n.mac ? [{ ip: n.ip, dev: n.dev, mac: n.mac, state: n.states.join(',') }] : []));
}

function readFdb(b: Bundle, issues: Issue[]): FdbFact[] | undefined {
  const rows = json(b, 'bridge-j-fdb', issues) as
    | { mac?: string; ifname?: string; master?: string; state?: string; flags?: string[] }[]
    | undefined;
  if (!rows) return undefined;
  return rows.flatMap((r) => {
    const mac = r.mac ? parseMac(r.mac) : undefined;
    if (!mac || !r.ifname) return [];
    return [
      {
        mac,
        port: r.ifname,
        ...(r.master ? { master: r.master } : {}),
        local: r.state === 'permanent' || (r.flags ?? []).includes('self'),
      },
    ];
  });
}

/** The default route's gateway, from `ip route show` text. */
function readDefaultVia(b: Bundle): Ipv4 | undefined {
  const text = outputOf(b, 'ip-route');
  if (text === undefined) return undefined;
  const r = readIpRoute(text, bundleFile(b, 'cmd/ip-route.out'));
  return (r.value ?? []).find((e) => e.dst.len === 0 && e.via !== undefined)?.via;
}

function idsWithPrefix(b: Bundle, prefix: string): string[] {
  return [...b.commands.keys()].filter((k) => k.startsWith(prefix)).sort();
}

/** `ss -Hltnu`: `tcp LISTEN 0 511 0.0.0.0:80 0.0.0.0:*` → `tcp/80`. */
function readListen(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w.length < 5) continue;
    const proto = w[0];
    if (proto !== 'tcp' && proto !== 'udp') continue;
    if (proto === 'tcp' && w[1] !== 'LISTEN') continue;
    const m = /:(\d+)$/.exec(w[4] ?? '');
    if (m) out.add(`${proto}/${m[1]}`);
  }
  return [...out].sort((a, b) => Number(a.split('/')[1]) - Number(b.split('/')[1]) || a.localeCompare(b));
}

/** Reads every fact a bundle holds. */
export function gatherEvidence(b: Bundle): Evidence {
  const issues: Issue[] = [];
  const unknown: string[] = [];
  const gaps: Gap[] = [];
  const need = (id: string, what: string) => {
    const why = whyUnavailable(b, id);
    if (why === undefined) return;
    unknown.push(`${what}: ${why}`);
    const pos = b.commands.get(id)?.pos;
    gaps.push({ what, why, ...(pos ? { where: `${b.name}/manifest.tsv:${pos.line}` } : {}) });
  };
  const links = readLinks(b, issues);
  if (!links) need('ip-j-link', 'interfaces');
  const neigh = readNeigh(b, issues);
  if (!neigh) need('ip-j-neigh', 'neighbours');
  const defaultVia = readDefaultVia(b);
  if (outputOf(b, 'ip-route') === undefined) need('ip-route', 'routes');
  if (b.commands.get('sysctl-net')?.status !== 'ok') need('sysctl-net', 'sysctls');
  const base: { -readonly [K in keyof Evidence]: Evidence[K] } = { bundle: b, unknown, gaps, issues };
  if (links) base.links = links;
  if (neigh) base.neigh = neigh;
  if (defaultVia !== undefined) base.defaultVia = defaultVia;

  if (b.kind === 'hypervisor') {
    const fdb = readFdb(b, issues);
    if (fdb) base.fdb = fdb;
    else need('bridge-j-fdb', 'bridge forwarding database');
    if (isProxmoxBundle(b)) {
      const files = pveFilesFromBundle(b);
      appendAll(issues, files.issues);
      const built = pveHostFrom(files.files);
      appendAll(issues, built.issues);
      if (built.value) {
        base.pve = built.value;
        base.domains = built.value.domains.map((def, k) => {
          const conf = built.value!.input.guests[k]!.config;
          const id = `pve-${conf.kind === 'lxc' ? 'lxc' : 'qemu-server'}-${conf.vmid}`;
          return { name: def.name, id, text: outputOf(b, id) ?? '', def, file: conf.file, issues: [] };
        });
      }
    } else if (outputOf(b, 'virsh-list') === undefined) need('virsh-list', 'domains');
    else {
      const domains: DomainFact[] = [];
      for (const id of idsWithPrefix(b, 'domain-')) {
        const text = outputOf(b, id);
        if (text === undefined) {
          need(id, `domain XML (${id.slice(7)})`);
          continue;
        }
        const file = bundleFile(b, b.commands.get(id)!.out);
        const r = readDomainXml(text, file);
        appendAll(issues, r.issues);
        if (r.value) domains.push({ name: r.value.name, id, text, def: r.value, file, issues: r.issues });
      }
      base.domains = domains;
    }
    if (isProxmoxBundle(b)) {
      // No libvirt on a Proxmox node: no filter bindings, no nwfilters.
    } else if (outputOf(b, 'virsh-binding-list') === undefined) need('virsh-binding-list', 'filter bindings');
    else {
      const bindings: BindingFact[] = [];
      for (const id of idsWithPrefix(b, 'binding-')) {
        const text = outputOf(b, id);
        if (text === undefined) {
          need(id, `filter binding (${id.slice(8)})`);
          continue;
        }
        const file = bundleFile(b, b.commands.get(id)!.out);
        const r = readFilterBindingXml(text, file);
        appendAll(issues, r.issues);
        if (r.value) bindings.push({ id, text, def: r.value, file, issues: r.issues });
      }
      base.bindings = bindings;
    }
    if (isProxmoxBundle(b)) {
      // pve-firewall's own files stand in for nwfilters (base.pve).
    } else if (outputOf(b, 'virsh-nwfilter-list') === undefined) need('virsh-nwfilter-list', 'nwfilter definitions');
    else {
      const customFilters: FilterFact[] = [];
      for (const id of idsWithPrefix(b, 'nwfilter-')) {
        const text = outputOf(b, id);
        const name = /<filter\s[^>]*name=['"]([^'"]+)['"]/.exec(text ?? '')?.[1] ?? id.slice(9);
        if (builtinFilters.has(name)) continue;
        if (text === undefined) {
          need(id, `nwfilter ${name}`);
          continue;
        }
        customFilters.push({ name, id, text });
      }
      base.customFilters = customFilters;
    }
    if (outputOf(b, 'ebtables-nat') === undefined) need('ebtables-nat', 'installed ebtables rules');
  } else {
    const ipvsText = outputOf(b, 'ipvsadm-Ln');
    if (ipvsText !== undefined) {
      const r = readIpvsadmList(ipvsText, bundleFile(b, b.commands.get('ipvsadm-Ln')!.out));
      appendAll(issues, r.issues);
      if (r.value) base.ipvs = r.value.table;
    } else if (b.commands.get('ipvsadm-Ln')?.status !== 'skipped') need('ipvsadm-Ln', 'IPVS table');
    const ss = outputOf(b, 'ss-listen');
    if (ss !== undefined) base.listen = readListen(ss);
  }
  return base;
}

/** All MACs of a bundle's links (not the all-zero loopback address). */
export function macsOf(e: Evidence): Set<Mac> {
  return new Set((e.links ?? []).flatMap((l) => (l.mac && l.mac !== '00:00:00:00:00:00' ? [l.mac] : [])));
}

/** True when a link or one of its addresses owns the IPv4 address. */
export function owns(e: Evidence, a: Ipv4): boolean {
  return (e.links ?? []).some((l) => l.addrs.some((p) => p.addr === a));
}
