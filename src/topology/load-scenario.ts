/**
 * Loads a scenario directory: `scenario.yaml` plus the raw artifacts it names (virsh dumpxml, ip addr, ip route,
 * sysctl, ipvsadm -Ln), into the topology model — from disk, or from files held in memory (`scenario-source.ts`).
 * Never throws on bad input: every problem is an issue with file:line.
 */
import { existsSync, statSync } from 'node:fs';
import { join, posix } from 'node:path';
import { formatIpv4, type Ipv4, ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { parseIpv4Prefix } from '../addr/prefix.ts';
import { detectIpvsInput } from '../ipvs/ipvs-input.ts';
import { type ConnectionListing, readIpvsadmConnectionList, readProcIpVsConn } from '../ipvs/ipvsadm-conn-list.ts';
import { readIpvsadmList } from '../ipvs/ipvsadm-list-reader.ts';
import { type KeepalivedConfig, readKeepalivedConf } from '../ipvs/keepalived.ts';
import type { IpAddress, IpvsTable } from '../ipvs/model.ts';
import { readEtcHosts, readEtcServices } from '../ipvs/names.ts';
import { bindingForInterface, type Domain, type DomainInterface, readDomainXml } from '../libvirt/domain-xml.ts';
import type { NwFilter, NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import type { EbTable } from '../netfilter/ebtables-model.ts';
import { guessEbStyle, readEbtablesList } from '../netfilter/ebtables-read.ts';
import { type IpsetSet, readIpsetSave } from '../netfilter/ipset.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { looksLikeNftRuleset, readNftRuleset } from '../netfilter/nft-read.ts';
import { linkEbOrigins, linkIptOrigins } from '../proxmox/live.ts';
import { type PveBridgeConf, readNetworkInterfaces } from '../proxmox/network-interfaces.ts';
import { appendAll } from '../source/arrays.ts';
import { FileError } from '../source/files.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos, implicit, type Origin, type Position } from '../source/origin.ts';
import { type LinkInfo, readIpAddr } from './ip-addr.ts';
import { neighUsable, readIpNeigh } from './ip-neigh.ts';
import { readIpRoute, readIpRule } from './ip-route.ts';
import { keepalivedStrictTable } from './keepalived-strict.ts';

/** VRRP's multicast group (RFC 3768). */
const VRRP_GROUP = 0xe0000012 as Ipv4;

import type {
  AddressAssignment,
  Iface,
  IfaceKind,
  Listener,
  NeighbourEntry,
  Node,
  PortBinding,
  ProbeSpec,
  Route,
  RoutingRule,
  Scenario,
  Segment,
  SysctlValue,
} from './model.ts';
import { isIfaceKind } from './model.ts';
import { type PveHost, readPveHost, wirePveVlans } from './proxmox-host.ts';
import { type ScenarioFile, scenarioSchema } from './scenario-schema.ts';
import { diskSource, preparsedResult, type ScenarioSource } from './scenario-source.ts';
import { readSysctl } from './sysctl.ts';
import { parseYaml, positionOf, type YamlSource } from './yaml-source.ts';

/** A host's firewall rule set as captured. */
export interface HostRuleSet {
  readonly format: 'iptables-save' | 'nft';
  readonly text: string;
  /** The file it was read from (for messages). */
  readonly file: string;
}

/** A guest's /etc/hosts (name → its first address) and /etc/services (name → port), when the scenario has them. */
export interface GuestNames {
  readonly hosts?: ReadonlyMap<string, IpAddress>;
  readonly services?: ReadonlyMap<string, number>;
}

export interface LoadedScenario {
  readonly scenario: Scenario;
  /** Per director: its IPVS configuration. */
  readonly ipvs: ReadonlyMap<string, IpvsTable>;
  /** Per host: custom nwfilter definitions (they override built-ins of the same name). */
  readonly filters: ReadonlyMap<string, readonly NwFilter[]>;
  /** Per guest: the kernel release, when known. */
  readonly kernels: ReadonlyMap<string, string>;
  /** Per guest: its keepalived.conf, when given (the warnings it raised are in `keepalivedIssues`). */
  readonly keepalived: ReadonlyMap<string, KeepalivedConfig>;
  readonly keepalivedIssues: ReadonlyMap<string, readonly Issue[]>;
  /** Per guest: its keepalived.conf as given, verbatim (the lab runs real keepalived with it). */
  readonly keepalivedFiles?: ReadonlyMap<string, { readonly text: string; readonly file: string }>;
  /** Per host: the iptables filter table as installed (`iptables-save`), when given. */
  readonly installedIptables?: ReadonlyMap<string, IptTable>;
  /** The raw table of a host's iptables-save (NOTRACK before conntrack, for bridged IPv4 with br_netfilter). */
  readonly installedRaw?: ReadonlyMap<string, IptTable>;
  /**
   * Per host (and per guest that gives its own): its rule set as given (`iptables-save` or `nft list ruleset`), every
   * table, verbatim — the lab loads it into the node's namespace so that the kernel, not a model of it, evaluates it.
   */
  readonly hostRuleSets?: ReadonlyMap<string, HostRuleSet>;
  /** Per host: the ipsets its iptables rules match (`--match-set`), when known (Proxmox hosts). */
  readonly installedIpsets?: ReadonlyMap<string, ReadonlyMap<string, IpsetSet>>;
  /**
   * Per Proxmox host with `ebtables-filter:`: its live ebtables filter table, evaluated instead of the compiled one
   * (each rule pve-firewall's compilation also makes linked to that rule's origin).
   */
  readonly installedEbFilter?: ReadonlyMap<string, EbTable>;
  /** Per Proxmox host: what was read from its /etc/pve copy and compiled. */
  readonly proxmox?: ReadonlyMap<string, PveHost>;
  /** Per director: its connection table (`ipvsadm -L -n -c` or `/proc/net/ip_vs_conn`), when given. */
  readonly ipvsConnections?: ReadonlyMap<string, ConnectionListing>;
  /** Per guest: its /etc/hosts and /etc/services (from a bundle), for what it printed with names instead of numbers. */
  readonly etcNames?: ReadonlyMap<string, GuestNames>;
  /**
   * The scenario file's own `assumptions:` (what `lvsdoctor import` could not infer), with their evidence; they
   * are also the first entries of `scenario.assumptions`.
   */
  readonly declaredAssumptions: readonly DeclaredAssumption[];
}

export interface DeclaredAssumption {
  readonly assumed: string;
  readonly evidence: string;
  readonly origin: Origin;
}

export interface LoadResult {
  readonly value: LoadedScenario | undefined;
  readonly issues: readonly Issue[];
}

export const SCENARIO_FILE = 'scenario.yaml';

type MutIface = { -readonly [K in keyof Iface]: Iface[K] } & { addrs: AddressAssignment[] };

interface Ctx {
  readonly files: ScenarioSource;
  /** The scenario directory as messages name it. */
  readonly rel: string;
  readonly src: YamlSource;
  readonly issues: Issue[];
}

/** How messages name a file of the scenario. */
function fileName(label: string, ...parts: string[]): string {
  return label === '' ? posix.join(...parts) : join(label, ...parts);
}

/**
 * Warns, never silently, of bytes that are not UTF-8 (read as U+FFFD, so a name holding them matches nothing), at
 * the first line that has them. (An empty artifact is read as what it is: `iptables-save` prints nothing when no
 * table is loaded.)
 */
function noteOddText(ctx: Ctx, text: string, file: string): void {
  const bad = text.indexOf('\uFFFD');
  if (bad >= 0) {
    let line = 1;
    for (let i = text.indexOf('\n'); i >= 0 && i < bad; i = text.indexOf('\n', i + 1)) line++;
    ctx.issues.push(
      issue(
        'scenario.not-utf8',
        'bytes that are not UTF-8 are read as U+FFFD (\uFFFD): a name holding them matches no other',
        filePos(file, line),
        'warning',
      ),
    );
  }
}

function readArtifact(
  ctx: Ctx,
  rel: string,
  yamlPath: (string | number)[],
): { text: string; file: string; rel: string } | undefined {
  const file = fileName(ctx.rel, rel);
  // One read, no existence check first: a scenario names thousands of artifacts.
  let text: string | undefined;
  try {
    text = ctx.files.read(rel);
  } catch (e) {
    // A file that may not be read (a directory, outside the scenario, a FIFO, too big): an error at the line that
    // names it.
    if (!(e instanceof FileError)) throw e;
    ctx.issues.push(issue('scenario.file', e.message, positionOf(ctx.src, yamlPath)));
    return undefined;
  }
  if (text !== undefined) {
    noteOddText(ctx, text, file);
    return { text, file, rel };
  }
  ctx.issues.push(
    issue('scenario.missing-file', `file "${rel}" does not exist (looked in ${file})`, positionOf(ctx.src, yamlPath)),
  );
  return undefined;
}

function linkKind(l: LinkInfo, bridges: ReadonlySet<string>, taps: ReadonlySet<string>): IfaceKind {
  if (l.linkType === 'loopback') return 'loopback';
  if (l.linkType === 'ipip' || l.linkType === 'gre' || l.linkType === 'none' || l.devKind === 'ipip') return 'tunnel';
  if (l.devKind === 'bond') return 'bond';
  if (bridges.has(l.name) || l.devKind === 'bridge') return 'bridge';
  if (taps.has(l.name) || l.devKind === 'tun') return 'tap';
  if (l.devKind === 'macvlan' && l.lower !== undefined) return 'macvlan';
  if (l.devKind === 'vlan' && l.lower !== undefined && l.vlanId !== undefined) return 'vlan';
  // Any other kind of the model that `ip -d link` names alike (veth, …).
  if (l.devKind !== undefined && l.devKind !== 'macvlan' && l.devKind !== 'vlan' && isIfaceKind(l.devKind))
    return l.devKind;
  return 'ether';
}

function fromLinks(links: readonly LinkInfo[], taps: ReadonlySet<string>): Map<string, MutIface> {
  // A master is a bridge unless it is a bond (its MASTER flag, or `ip -d`'s `bond`).
  const bonds = new Set(links.flatMap((l) => (l.devKind === 'bond' ? [l.name] : [])));
  const bridges = new Set(links.flatMap((l) => (l.master && !bonds.has(l.master) ? [l.master] : [])));
  const out = new Map<string, MutIface>();
  for (const l of links) {
    const origin: Origin = { kind: 'file', label: `interface ${l.name}`, pos: l.pos };
    const kind = linkKind(l, bridges, taps);
    const iface: MutIface = {
      name: l.name,
      kind,
      mac: l.mac ?? ('00:00:00:00:00:00' as Mac),
      addrs: l.addrs.map((a) => ({
        prefix: a.prefix,
        label: a.label,
        origin: { kind: 'file', label: `address ${a.label}`, pos: a.pos },
      })),
      up: l.up,
      origin,
    };
    if (l.master) iface.master = l.master;
    if ((kind === 'macvlan' || kind === 'vlan') && l.lower !== undefined) iface.lower = l.lower;
    if (kind === 'vlan' && l.vlanId !== undefined) iface.vlanId = l.vlanId;
    if (l.mode !== undefined) iface.mode = l.mode;
    if (l.mtu !== 1500 && kind !== 'loopback') iface.mtu = l.mtu;
    if (l.permaddr !== undefined) PERMADDR.set(iface, l.permaddr);
    if (l.altnames !== undefined && l.altnames.length > 0) ALTNAMES.set(iface, l.altnames);
    out.set(l.name, iface);
  }
  return out;
}

/** A device's altnames (`altname enp3s0f0`): scenario.yaml may name it by any of them. */
const ALTNAMES = new WeakMap<MutIface, readonly string[]>();

/** The interface `name` names on a node: its own name, or one of its altnames. */
function ifaceNamed(n: Node | undefined, name: string): MutIface | undefined {
  if (!n) return undefined;
  const direct = n.interfaces.get(name) as MutIface | undefined;
  if (direct) return direct;
  for (const i of n.interfaces.values()) if (ALTNAMES.get(i as MutIface)?.includes(name)) return i as MutIface;
  return undefined;
}

/** A bond slave's own MAC (`permaddr`), by which its domain interface names it. */
const PERMADDR = new WeakMap<MutIface, Mac>();

function connectedRoutes(ifaces: Iterable<MutIface>): Route[] {
  const routes: Route[] = [];
  for (const i of ifaces) {
    if (i.kind === 'loopback') continue;
    for (const a of i.addrs) {
      if (a.prefix.len === 32) continue;
      const mask = a.prefix.len === 0 ? 0 : (0xffffffff << (32 - a.prefix.len)) >>> 0;
      routes.push({
        dst: { addr: ((a.prefix.addr & mask) >>> 0) as Ipv4, len: a.prefix.len },
        dev: i.name,
        src: a.prefix.addr,
        metric: 0,
        type: 'unicast',
        origin: implicit(`connected route of ${a.label} (added by the kernel)`),
      });
    }
  }
  return routes;
}

function sysctlMap(ctx: Ctx, rel: string | undefined, yamlPath: (string | number)[]): Map<string, SysctlValue> {
  const out = new Map<string, SysctlValue>();
  if (!rel) return out;
  const a = readArtifact(ctx, rel, yamlPath);
  if (!a) return out;
  const r = readSysctl(a.text, a.file);
  appendAll(ctx.issues, r.issues);
  for (const [k, v] of r.value ?? [])
    out.set(k, { value: v.value, origin: { kind: 'file', label: `${k} = ${v.value}`, pos: v.pos } });
  return out;
}

const MODELLED_TYPES = new Set(['bridge', 'network', 'ethernet']);

/** A domain interface the model can place: a tap (`<target dev>`) with a MAC, of a type that uses one. */
function modelledInterface(ifc: DomainInterface): ifc is DomainInterface & { mac: Mac; targetDev: string } {
  return ifc.mac !== undefined && ifc.targetDev !== undefined && MODELLED_TYPES.has(ifc.type);
}

/** `hosts.NAME.bindings`: a directory of `virsh nwfilter-binding-dumpxml` outputs, by port. */
function readBindingDir(ctx: Ctx, rel: string, hostName: string): Map<string, NwFilterBinding> {
  const out = new Map<string, NwFilterBinding>();
  const names = ctx.files.list(rel);
  if (names === undefined) {
    ctx.issues.push(
      issue(
        'scenario.missing-file',
        `directory "${rel}" does not exist (expected virsh nwfilter-binding-dumpxml outputs)`,
        positionOf(ctx.src, ['hosts', hostName, 'bindings']),
      ),
    );
    return out;
  }
  for (const name of names.filter((n) => n.endsWith('.xml')).sort()) {
    const file = fileName(ctx.rel, rel, name);
    const fileRel = posix.join(rel, name);
    const text = ctx.files.read(fileRel);
    if (text === undefined) continue;
    const r =
      preparsedResult<NwFilterBinding>(ctx.files, fileRel, 'binding', text, file) ?? readFilterBindingXml(text, file);
    appendAll(ctx.issues, r.issues);
    if (!r.value) continue;
    if (out.has(r.value.portdev))
      ctx.issues.push(
        issue('scenario.duplicate-binding', `a second filter binding for port ${r.value.portdev}`, filePos(file, 1)),
      );
    else out.set(r.value.portdev, r.value);
  }
  return out;
}

function parseTime(text: string | undefined, fallbackNs: bigint): bigint {
  if (!text) return fallbackNs;
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return fallbackNs;
  const ms = Date.parse(`${m[1]}${m[3]}`);
  const frac = (m[2] ?? '').padEnd(9, '0').slice(0, 9);
  return BigInt(ms) * 1_000_000n + BigInt(frac);
}

interface SchemaIssue {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

interface ZodIssueLike {
  readonly code?: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly errors?: readonly (readonly ZodIssueLike[])[];
}

/**
 * Zod issues with full paths. A value that matches no member of a union (`probes.0: Invalid input`) is explained by
 * the member it comes closest to (fewest issues): `probes.0.tcp: …`, `probes.0: Unrecognized key: "tpc"`.
 */
function schemaIssues(list: readonly ZodIssueLike[], base: readonly (string | number)[] = []): SchemaIssue[] {
  const out: SchemaIssue[] = [];
  for (const zi of list) {
    const path = [...base, ...zi.path.filter((p): p is string | number => typeof p !== 'symbol')];
    const branches = zi.code === 'invalid_union' ? (zi.errors ?? []).filter((b) => b.length > 0) : [];
    if (branches.length === 0) {
      out.push({ path, message: zi.message });
      continue;
    }
    const best = branches.reduce((a, b) => (b.length < a.length ? b : a));
    appendAll(out, schemaIssues(best, path));
  }
  return out;
}

/** Loads `dir/scenario.yaml` and everything it names. */
export function loadScenario(dir: string): LoadResult {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    return { value: undefined, issues: [issue('scenario.not-found', `scenario directory "${dir}" does not exist`)] };
  return loadScenarioFrom(diskSource(dir));
}

/**
 * Loads `scenario.yaml` and everything it names from a source: a directory on disk (`diskSource`) or files in
 * memory (`memorySource`, what an import builds). Messages name files as `source.label/path`.
 */
export function loadScenarioFrom(files: ScenarioSource): LoadResult {
  try {
    return loadFrom(files);
  } catch (e) {
    // A file that may not be read (outside the scenario, a link leading out, a FIFO, too big): an error, not a crash.
    if (!(e instanceof FileError)) throw e;
    return { value: undefined, issues: [issue('scenario.file', e.message)] };
  }
}

function loadFrom(files: ScenarioSource): LoadResult {
  const yamlFile = fileName(files.label, SCENARIO_FILE);
  const yamlText = files.read(SCENARIO_FILE);
  if (yamlText === undefined)
    return {
      value: undefined,
      issues: [
        issue('scenario.not-found', `expected ${SCENARIO_FILE} in the scenario directory`, filePos(yamlFile, 0)),
      ],
    };
  const { source, issues: yamlIssues } = parseYaml(yamlText, yamlFile);
  const issues: Issue[] = [...yamlIssues];
  if (yamlIssues.some((i) => i.severity === 'error')) return { value: undefined, issues };
  const data = scenarioSchema.safeParse(source.data);
  if (!data.success) {
    for (const zi of schemaIssues(data.error.issues)) {
      const path = zi.path;
      issues.push(
        issue('scenario.schema', `${path.length ? `${path.join('.')}: ` : ''}${zi.message}`, positionOf(source, path)),
      );
    }
    return { value: undefined, issues };
  }
  const ctx: Ctx = { files, rel: files.label, src: source, issues };
  const built = build(ctx, data.data, yamlFile);
  return { value: built, issues };
}

function build(ctx: Ctx, f: ScenarioFile, yamlFile: string): LoadedScenario | undefined {
  const at = (...p: (string | number)[]): Position => positionOf(ctx.src, p);
  const yamlOrigin = (label: string, ...p: (string | number)[]): Origin => ({ kind: 'scenario', label, pos: at(...p) });
  const nodes = new Map<string, Node>();
  const bindings: PortBinding[] = [];
  const declaredAssumptions: DeclaredAssumption[] = f.assumptions.map((a, k) => ({
    assumed: a.assumed,
    evidence: a.evidence,
    origin: yamlOrigin(`assumed: ${a.assumed}`, 'assumptions', k),
  }));
  const assumptions: string[] = declaredAssumptions.map((a) => `${a.assumed} [evidence: ${a.evidence}]`);
  const filters = new Map<string, NwFilter[]>();
  const ipvs = new Map<string, IpvsTable>();
  const kernels = new Map<string, string>();
  const ipvsConnections = new Map<string, ConnectionListing>();
  const keepalived = new Map<string, KeepalivedConfig>();
  const keepalivedIssues = new Map<string, Issue[]>();
  const keepalivedFiles = new Map<string, { text: string; file: string }>();
  const installedIptables = new Map<string, IptTable>();
  const installedRaw = new Map<string, IptTable>();
  const hostRuleSets = new Map<string, HostRuleSet>();
  const installedIpsets = new Map<string, ReadonlyMap<string, IpsetSet>>();
  const installedEbFilter = new Map<string, EbTable>();
  const proxmox = new Map<string, PveHost>();
  const pveBridges = new Map<string, ReadonlyMap<string, PveBridgeConf>>();

  // Domains: which host runs which guest, and the tap behind each guest NIC.
  interface DomainPlace {
    host: string;
    def: Domain;
  }
  const domains = new Map<string, DomainPlace>();
  const hostTaps = new Map<string, Set<string>>();
  /** Per host with `bindings:`: the live filter bindings by port. */
  const liveBindings = new Map<string, Map<string, NwFilterBinding>>();
  for (const [hostName, h] of Object.entries(f.hosts)) {
    const taps = new Set<string>();
    hostTaps.set(hostName, taps);
    if (h.platform === 'proxmox') {
      if (h.pve === undefined)
        ctx.issues.push(
          issue(
            'scenario.pve',
            'a Proxmox host needs pve: the directory holding its copy of /etc/pve',
            at('hosts', hostName, 'platform'),
          ),
        );
      else {
        const r = readPveHost(ctx.files, h.pve, fileName(ctx.rel, h.pve), at('hosts', hostName, 'pve'), h['pve-node']);
        appendAll(ctx.issues, r.issues);
        if (r.value && h['network-interfaces'] !== undefined) {
          const a = readArtifact(ctx, h['network-interfaces'], ['hosts', hostName, 'network-interfaces']);
          if (a) {
            const n = readNetworkInterfaces(a.text, a.file);
            appendAll(ctx.issues, n.issues);
            pveBridges.set(hostName, n.value ?? new Map());
          }
        }
        if (r.value) {
          proxmox.set(hostName, r.value);
          for (const d of r.value.domains) {
            domains.set(d.name, { host: hostName, def: d });
            for (const ifc of d.interfaces) if (ifc.targetDev) taps.add(ifc.targetDev);
          }
          if (r.value.filter4) installedIptables.set(hostName, r.value.filter4);
          installedIpsets.set(hostName, r.value.ipsets);
        }
      }
    } else if (h.pve !== undefined || h['pve-node'] !== undefined || h['network-interfaces'] !== undefined)
      ctx.issues.push(
        issue(
          'scenario.pve',
          'pve:, pve-node: and network-interfaces: need platform: proxmox',
          at(
            'hosts',
            hostName,
            h.pve !== undefined ? 'pve' : h['pve-node'] !== undefined ? 'pve-node' : 'network-interfaces',
          ),
        ),
      );
    h.domains.forEach((rel, k) => {
      const a = readArtifact(ctx, rel, ['hosts', hostName, 'domains', k]);
      if (!a) return;
      const r = preparsedResult<Domain>(ctx.files, a.rel, 'domain', a.text, a.file) ?? readDomainXml(a.text, a.file);
      appendAll(ctx.issues, r.issues);
      if (!r.value) return;
      if (domains.has(r.value.name))
        ctx.issues.push(
          issue(
            'scenario.duplicate-domain',
            `domain ${r.value.name} is listed twice`,
            at('hosts', hostName, 'domains', k),
          ),
        );
      domains.set(r.value.name, { host: hostName, def: r.value });
      for (const ifc of r.value.interfaces) if (ifc.targetDev) taps.add(ifc.targetDev);
    });
    if (h['nwfilter-dir']) {
      const names = ctx.files.list(h['nwfilter-dir']);
      if (names === undefined)
        ctx.issues.push(
          issue(
            'scenario.missing-file',
            `directory "${h['nwfilter-dir']}" does not exist`,
            at('hosts', hostName, 'nwfilter-dir'),
          ),
        );
      else {
        const defs: NwFilter[] = [];
        for (const name of names.filter((n) => n.endsWith('.xml')).sort()) {
          const file = fileName(ctx.rel, h['nwfilter-dir'], name);
          const fileRel = posix.join(h['nwfilter-dir'], name);
          const text = ctx.files.read(fileRel);
          if (text === undefined) continue;
          const r =
            preparsedResult<NwFilter>(ctx.files, fileRel, 'nwfilter', text, file) ?? readNwfilterXml(text, file);
          appendAll(ctx.issues, r.issues);
          if (r.value) defs.push(r.value);
        }
        filters.set(hostName, defs);
      }
    }
    if (h.bindings !== undefined) liveBindings.set(hostName, readBindingDir(ctx, h.bindings, hostName));
  }

  const domainsByHost = new Map<string, [string, DomainPlace][]>();
  for (const [domName, place] of domains) {
    const list = domainsByHost.get(place.host);
    if (list) list.push([domName, place]);
    else domainsByHost.set(place.host, [[domName, place]]);
  }

  // Hosts.
  for (const [hostName, h] of Object.entries(f.hosts)) {
    let ifaces = new Map<string, MutIface>();
    if (h['ip-addr']) {
      const a = readArtifact(ctx, h['ip-addr'], ['hosts', hostName, 'ip-addr']);
      if (a) {
        const r = readIpAddr(a.text, a.file);
        appendAll(ctx.issues, r.issues);
        ifaces = fromLinks(r.value ?? [], hostTaps.get(hostName) ?? new Set());
      }
    }
    // Every domain interface on this host: its tap must be a bridge port.
    for (const [domName, place] of domainsByHost.get(hostName) ?? []) {
      for (const ifc of place.def.interfaces) {
        const ifOrigin = ifc.origin;
        if (!modelledInterface(ifc)) {
          const what = ifc.mac ?? ifc.targetDev ?? ifc.type;
          const why = !MODELLED_TYPES.has(ifc.type)
            ? `interface type '${ifc.type}' is not modelled (bridge, network and ethernet are)`
            : `interface of domain ${domName} has no ${ifc.mac ? '<target dev>' : '<mac address>'} (a running domain's dumpxml has both)`;
          ctx.issues.push({
            ...issue(
              MODELLED_TYPES.has(ifc.type) ? 'domain.interface' : 'domain.interface-type',
              `${why}: left out of the model`,
              ifc.origin.pos,
              'warning',
            ),
            unsupported: true,
          });
          assumptions.push(
            `${hostName}: interface ${what} of domain ${domName} left out (${why}); its traffic is unknown`,
          );
          continue;
        }
        let tap = ifaces.get(ifc.targetDev);
        if (!tap) {
          // libvirt creates the tap with the guest MAC's first byte set to 0xfe.
          const tapMac = `fe${ifc.mac.slice(2)}` as Mac;
          tap = { name: ifc.targetDev, kind: 'tap', mac: tapMac, addrs: [], up: true, origin: ifOrigin };
          ifaces.set(tap.name, tap);
          assumptions.push(`${hostName}: tap ${ifc.targetDev} assumed up (no ip addr output lists it)`);
        }
        tap.kind = 'tap';
        const bridgeName = ifc.sourceBridge ?? ifc.sourceNetwork;
        if (!tap.master && bridgeName) tap.master = bridgeName;
        if (tap.master && !ifaces.has(tap.master)) {
          ifaces.set(tap.master, {
            name: tap.master,
            kind: 'bridge',
            mac: tap.mac,
            addrs: [],
            up: true,
            origin: ifOrigin,
          });
          assumptions.push(`${hostName}: bridge ${tap.master} assumed (named by domain ${domName})`);
        }
        const br = tap.master ? ifaces.get(tap.master) : undefined;
        if (br) br.kind = 'bridge';
        // A live binding on the port is the truth; the domain's <filterref> is the fallback.
        const live = liveBindings.get(hostName);
        const found = live?.get(ifc.targetDev);
        if (found) {
          live!.delete(ifc.targetDev);
          bindings.push({ host: hostName, domain: domName, binding: found });
        } else if (ifc.filterref) {
          const b = bindingForInterface(place.def, ifc);
          appendAll(ctx.issues, b.issues);
          if (b.value) bindings.push({ host: hostName, domain: domName, binding: b.value });
          if (live)
            assumptions.push(
              `${hostName}: no live filter binding for ${ifc.targetDev}; the domain XML's filterref ${ifc.filterref.filter} is assumed`,
            );
        }
      }
    }
    // Proxmox: each firewall bridge joins its vmbr through a veth pair (fwlnXiY on fwbrXiY, fwprXpY on vmbrN).
    for (const p of proxmox.get(hostName)?.pairs ?? []) {
      const origin: Origin = { kind: 'file', label: `firewall=1 (pve-firewall's ${p.fwbr} bridge)`, pos: p.pos };
      const mac = (ifaces.get(`tap${p.fwbr.slice(4)}`)?.mac ?? ('02:00:00:00:00:00' as Mac)) as Mac;
      if (!ifaces.has(p.bridge)) {
        ifaces.set(p.bridge, { name: p.bridge, kind: 'bridge', mac, addrs: [], up: true, origin });
        assumptions.push(`${hostName}: bridge ${p.bridge} assumed (named by a guest's netN line)`);
      }
      ifaces.set(p.fwln, {
        name: p.fwln,
        kind: 'veth',
        mac,
        addrs: [],
        up: true,
        origin,
        master: p.fwbr,
        peer: { node: hostName, iface: p.fwpr },
      });
      ifaces.set(p.fwpr, {
        name: p.fwpr,
        kind: 'veth',
        mac,
        addrs: [],
        up: true,
        origin,
        master: p.bridge,
        peer: { node: hostName, iface: p.fwln },
      });
    }
    const pveHost = proxmox.get(hostName);
    if (pveHost) wirePveVlans(pveHost, pveBridges.get(hostName), ifaces, assumptions, hostName);
    // Live bindings on ports no domain interface names: kept (they are what runs), said so.
    for (const b of liveBindings.get(hostName)?.values() ?? []) {
      bindings.push({ host: hostName, domain: b.ownerName ?? '?', binding: b });
      ctx.issues.push(
        issue(
          'scenario.binding-port',
          `filter binding on ${b.portdev} (${b.filter}) belongs to no interface of the domains listed for ${hostName}`,
          b.origin.pos ?? at('hosts', hostName, 'bindings'),
          'warning',
        ),
      );
    }
    const sysctl = sysctlMap(ctx, h.sysctl, ['hosts', hostName, 'sysctl']);
    // pve-firewall turns br_netfilter's iptables call on whenever it applies its rules (fact sheet §2.1); with
    // nftables: 1 it applies none (`update`: remove_pvefw_chains, return) and proxmox-firewall does not set it.
    const pveNode = proxmox.get(hostName);
    if (pveNode?.compiled.enabled && !pveNode.nft && !sysctl.has('net.bridge.bridge-nf-call-iptables'))
      sysctl.set('net.bridge.bridge-nf-call-iptables', {
        value: '1',
        origin: implicit('net.bridge.bridge-nf-call-iptables = 1 (set by pve-firewall when the firewall is enabled)'),
      });
    let hostNat: IptTable | undefined;
    let hostMangle: IptTable | undefined;
    if (h['iptables-save']) {
      const a = readArtifact(ctx, h['iptables-save'], ['hosts', hostName, 'iptables-save']);
      if (a) {
        // `nft list ruleset` in place of iptables-save: its ip/inet filter chains, read into the same model.
        const nft = looksLikeNftRuleset(a.text);
        const r = nft
          ? readNftRuleset(a.text, a.file)
          : readIptablesSave(a.text, a.file, 'ipv4', ['raw', 'nat', 'mangle'], { wholeNat: true });
        hostRuleSets.set(hostName, { format: nft ? 'nft' : 'iptables-save', text: a.text, file: a.file });
        appendAll(ctx.issues, r.issues);
        const filter = r.value?.find((t) => t.name === 'filter');
        // A Proxmox node's live rules: those pve-firewall's compilation makes too keep its origins (.fw line).
        const compiled = proxmox.get(hostName)?.filter4;
        if (filter) installedIptables.set(hostName, compiled ? linkIptOrigins(filter, compiled) : filter);
        const raw = r.value?.find((t) => t.name === 'raw');
        if (raw) installedRaw.set(hostName, raw);
        hostNat = r.value?.find((t) => t.name === 'nat');
        hostMangle = r.value?.find((t) => t.name === 'mangle');
      }
    }
    if (h['ipset-save']) {
      const a = readArtifact(ctx, h['ipset-save'], ['hosts', hostName, 'ipset-save']);
      if (a) {
        const r = readIpsetSave(a.text, a.file);
        appendAll(ctx.issues, r.issues);
        if (r.value) installedIpsets.set(hostName, r.value);
      }
    }
    if (h['ebtables-filter']) {
      const pve = proxmox.get(hostName);
      if (h.platform !== 'proxmox')
        ctx.issues.push(
          issue(
            'scenario.pve',
            'ebtables-filter: needs platform: proxmox (a libvirt host is modelled from its filter bindings)',
            at('hosts', hostName, 'ebtables-filter'),
          ),
        );
      else {
        const a = readArtifact(ctx, h['ebtables-filter'], ['hosts', hostName, 'ebtables-filter']);
        if (a) {
          const style = guessEbStyle(a.text);
          const r = readEbtablesList(a.text, a.file, { style });
          appendAll(
            ctx.issues,
            r.issues.filter((i) => i.code !== 'ebtables-empty'),
          );
          const t = r.value ?? { name: 'filter' as const, chains: [] };
          installedEbFilter.set(hostName, pve?.ebFilter ? linkEbOrigins(t, pve.ebFilter, style) : t);
        }
      }
    }
    // `ip route` of the host (a routing Proxmox node's default route): as given, else its connected routes only
    const hostRoutes = h['ip-route'] ? routesOf(ctx, h['ip-route'], ['hosts', hostName, 'ip-route']) : undefined;
    // `ip rule` of the host: policy routing, e.g. on the marks its mangle table sets (`fwmark`).
    const hostRules = h['ip-rule'] ? rulesOf(ctx, h['ip-rule'], ['hosts', hostName, 'ip-rule']) : undefined;
    nodes.set(hostName, {
      name: hostName,
      kind: 'host',
      role: 'other',
      interfaces: ifaces,
      routes: hostRoutes ?? connectedRoutes(ifaces.values()),
      neighbours: new Map(),
      sysctl,
      listeners: [],
      ttl: 64,
      ...(hostNat ? { nat: hostNat } : {}),
      ...(hostMangle ? { mangle: hostMangle } : {}),
      ...(hostRules ? { rules: hostRules } : {}),
      origin: yamlOrigin(`host ${hostName}`, 'hosts', hostName),
    });
  }

  // Guests.
  const listings: {
    guestName: string;
    text: string;
    file: string;
    etcHosts?: ReadonlyMap<string, IpAddress>;
    etcServices?: ReadonlyMap<string, number>;
  }[] = [];
  const etcNames = new Map<string, GuestNames>();
  for (const [guestName, g] of Object.entries(f.guests)) {
    const place = domains.get(guestName);
    if (!place) {
      ctx.issues.push(
        issue(
          'scenario.unknown-guest',
          `guest "${guestName}" is not the name of any domain listed under hosts.*.domains`,
          at('guests', guestName),
        ),
      );
      continue;
    }
    let ifaces = new Map<string, MutIface>();
    if (g['ip-addr']) {
      const a = readArtifact(ctx, g['ip-addr'], ['guests', guestName, 'ip-addr']);
      if (a) {
        const r = readIpAddr(a.text, a.file);
        appendAll(ctx.issues, r.issues);
        ifaces = fromLinks(r.value ?? [], new Set());
      }
    } else
      assumptions.push(`${guestName}: no ip addr output; interfaces named eth0… in domain order, without addresses`);
    // Pair each domain interface with the guest NIC of the same MAC.
    place.def.interfaces.forEach((ifc, k) => {
      if (!ifc.mac || !ifc.targetDev || !modelledInterface(ifc)) return;
      // A bond gives its slaves its own MAC; `permaddr` keeps the slave's, which the domain interface names. Only
      // NICs on the guest's virtual hardware pair (not macvlans, VLANs or bonds stacked on them).
      const hw = [...ifaces.values()].filter(
        (i) => i.kind === 'ether' || i.kind === 'veth' || i.kind === 'tap' || i.kind === 'tunnel',
      );
      let nic = hw.find((i) => PERMADDR.get(i) === ifc.mac) ?? hw.find((i) => i.mac === ifc.mac && !PERMADDR.has(i));
      nic ??= hw.find((i) => i.mac === ifc.mac);
      if (!nic) {
        const name = `eth${k}`;
        nic = {
          name,
          kind: 'ether',
          mac: ifc.mac,
          addrs: [],
          up: true,
          origin: implicit(`NIC for domain interface ${ifc.mac}`),
        };
        ifaces.set(name, nic);
        if (g['ip-addr'])
          ctx.issues.push(
            issue(
              'scenario.nic-missing',
              `no interface with MAC ${ifc.mac} (domain ${guestName}) in the guest's ip addr output`,
              at('guests', guestName, 'ip-addr'),
              'warning',
            ),
          );
      }
      nic.peer = { node: place.host, iface: ifc.targetDev };
      const host = nodes.get(place.host)!;
      const tap = host.interfaces.get(ifc.targetDev) as MutIface | undefined;
      if (tap) tap.peer = { node: guestName, iface: nic.name };
    });
    const routes: Route[] = g['ip-route']
      ? (routesOf(ctx, g['ip-route'], ['guests', guestName, 'ip-route']) ?? [])
      : [];
    let mangle: IptTable | undefined;
    let nat: IptTable | undefined;
    let filter: IptTable | undefined;
    let raw: IptTable | undefined;
    if (g['iptables-save']) {
      const a = readArtifact(ctx, g['iptables-save'], ['guests', guestName, 'iptables-save']);
      if (a) {
        // `nft list ruleset` in place of iptables-save: its ip/inet filter chains, read into the same model.
        const nft = looksLikeNftRuleset(a.text);
        const r = nft
          ? readNftRuleset(a.text, a.file)
          : readIptablesSave(a.text, a.file, 'ipv4', ['mangle', 'nat', 'raw']);
        // The lab loads it into the guest's namespace as it does a host's.
        hostRuleSets.set(guestName, { format: nft ? 'nft' : 'iptables-save', text: a.text, file: a.file });
        appendAll(ctx.issues, r.issues);
        mangle = r.value?.find((t) => t.name === 'mangle');
        nat = r.value?.find((t) => t.name === 'nat');
        filter = r.value?.find((t) => t.name === 'filter');
        raw = r.value?.find((t) => t.name === 'raw');
      }
    }
    const rules = g['ip-rule'] ? rulesOf(ctx, g['ip-rule'], ['guests', guestName, 'ip-rule']) : undefined;
    // The kernel adds connected routes (table main) for every address; ip route output lists them, but add what is
    // missing.
    for (const c of connectedRoutes(ifaces.values()))
      if (!routes.some((r) => (r.table ?? 'main') === 'main' && r.dst.addr === c.dst.addr && r.dst.len === c.dst.len))
        routes.push(c);
    if (!routes.some((r) => r.dst.len === 0)) assumptions.push(`${guestName}: no default route known`);
    const neighbours = new Map<Ipv4, NeighbourEntry>();
    if (g['ip-neigh']) {
      const a = readArtifact(ctx, g['ip-neigh'], ['guests', guestName, 'ip-neigh']);
      if (a) {
        const r = readIpNeigh(a.text, a.file);
        appendAll(ctx.issues, r.issues);
        for (const n of r.value ?? [])
          if (neighUsable(n) && !neighbours.has(n.ip))
            neighbours.set(n.ip, {
              mac: n.mac!,
              iface: n.dev,
              origin: {
                kind: 'file',
                label: `neighbour ${formatIpv4(n.ip)} lladdr ${n.mac} ${n.states.join(',')} dev ${n.dev}`,
                pos: n.pos,
              },
            });
      }
    }
    const sysctl = sysctlMap(ctx, g.sysctl, ['guests', guestName, 'sysctl']);
    if (!g.sysctl)
      assumptions.push(
        `${guestName}: no sysctl output; kernel defaults assumed (arp_ignore=0, arp_announce=0, rp_filter=0)`,
      );
    let role = g.role;
    // The guest's own /etc/hosts and /etc/services: the names its `ipvsadm -L` and its `tcpdump` without -n printed.
    const h = g['etc-hosts'] ? readArtifact(ctx, g['etc-hosts'], ['guests', guestName, 'etc-hosts']) : undefined;
    const sv = g['etc-services']
      ? readArtifact(ctx, g['etc-services'], ['guests', guestName, 'etc-services'])
      : undefined;
    const hr = h ? readEtcHosts(h.text, h.file) : undefined;
    const sr = sv ? readEtcServices(sv.text, sv.file) : undefined;
    appendAll(ctx.issues, hr?.issues ?? []);
    appendAll(ctx.issues, sr?.issues ?? []);
    if (hr?.value || sr?.value)
      etcNames.set(guestName, {
        ...(hr?.value ? { hosts: hr.value } : {}),
        ...(sr?.value ? { services: sr.value } : {}),
      });
    if (g.ipvsadm) {
      // Read once every guest's addresses are known: a listing without -n names them.
      const a = readArtifact(ctx, g.ipvsadm, ['guests', guestName, 'ipvsadm']);
      if (a) {
        listings.push({
          guestName,
          text: a.text,
          file: a.file,
          ...(hr?.value ? { etcHosts: hr.value } : {}),
          ...(sr?.value ? { etcServices: sr.value } : {}),
        });
      }
      role ??= 'director';
    }
    let strictDrops: IptTable | undefined;
    const joinedGroups: { iface: string; group: Ipv4; origin: Origin }[] = [];
    if (g.keepalived) {
      const a = readArtifact(ctx, g.keepalived, ['guests', guestName, 'keepalived']);
      if (a) {
        const r = readKeepalivedConf(a.text, a.file);
        appendAll(
          ctx.issues,
          r.issues.filter((i) => i.severity === 'error'),
        );
        keepalivedIssues.set(guestName, [...r.issues]);
        if (r.value) {
          keepalived.set(guestName, r.value);
          strictDrops = keepalivedStrictTable(r.value);
          // Multicast VRRP: keepalived joins 224.0.0.18 on each instance's interface (IP_ADD_MEMBERSHIP).
          for (const v of r.value.vrrpInstances)
            if (v.interface !== undefined && v.unicastPeers.length === 0 && v.virtualRouterId !== undefined)
              joinedGroups.push({
                iface: v.interface,
                group: VRRP_GROUP,
                origin: { kind: 'file', label: `vrrp_instance ${v.name} (keepalived joins 224.0.0.18)`, pos: v.pos },
              });
          keepalivedFiles.set(guestName, { text: a.text, file: a.file });
          // keepalived programs IPVS itself: without an ipvsadm listing, its configuration is the table.
          if (!ipvs.has(guestName) && r.value.table.services.length > 0) {
            ipvs.set(guestName, r.value.table);
            role ??= 'director';
          }
        }
      }
    }
    if (g['ipvsadm-connections']) {
      const a = readArtifact(ctx, g['ipvsadm-connections'], ['guests', guestName, 'ipvsadm-connections']);
      if (a) {
        const kind = detectIpvsInput(a.text);
        if (kind !== 'ipvsadm-connections' && kind !== 'proc-ip-vs-conn')
          ctx.issues.push(
            issue(
              'scenario.ipvs-connections',
              'expected `ipvsadm -L -n -c` output (or /proc/net/ip_vs_conn): a header "pro expire state source virtual destination"',
              filePos(a.file, 1),
            ),
          );
        else {
          const r =
            kind === 'ipvsadm-connections'
              ? readIpvsadmConnectionList(a.text, a.file)
              : readProcIpVsConn(a.text, a.file);
          appendAll(ctx.issues, r.issues);
          if (r.value) ipvsConnections.set(guestName, r.value);
        }
      }
    }
    if (g.kernel) kernels.set(guestName, g.kernel);
    const listeners: Listener[] = (g.listen ?? []).map((l, k) => {
      const [proto, port] = l.split('/');
      return {
        protocol: proto as 'tcp' | 'udp',
        port: Number(port),
        origin: yamlOrigin(`listens on ${l}`, 'guests', guestName, 'listen', k),
      };
    });
    nodes.set(guestName, {
      name: guestName,
      kind: 'guest',
      role: role ?? 'other',
      interfaces: ifaces,
      routes,
      ...(rules ? { rules } : {}),
      neighbours,
      sysctl,
      listeners,
      host: place.host,
      ttl: 64,
      origin: yamlOrigin(`guest ${guestName}`, 'guests', guestName),
      ...(mangle ? { mangle } : {}),
      ...(nat ? { nat } : {}),
      ...(filter && liveTable(filter) ? { filter } : {}),
      ...(raw && liveTable(raw) ? { raw } : {}),
      ...(strictDrops ? { keepalivedDrops: strictDrops } : {}),
      ...(joinedGroups.length > 0 ? { joinedGroups } : {}),
    });
  }
  const hostNames = new Map<string, IpAddress>();
  for (const n of nodes.values())
    for (const i of n.interfaces.values()) {
      const a = i.addrs[0]?.prefix.addr;
      if (a !== undefined && !hostNames.has(n.name)) hostNames.set(n.name, { family: 'ipv4', addr: a });
    }
  for (const l of listings) {
    const hosts = l.etcHosts ? new Map([...hostNames, ...l.etcHosts]) : hostNames;
    const r = readIpvsadmList(l.text, l.file, hosts, l.etcServices);
    appendAll(ctx.issues, r.issues);
    // A name nothing resolved stays a name: what that leaves out of the model is an assumption of the scenario.
    for (const e of r.value?.symbolic ?? []) assumptions.push(`${l.guestName}: ${e.assumption}`);
    // An ipvsadm listing is what the kernel has: it wins over a keepalived configuration of the same guest.
    if (r.value) ipvs.set(l.guestName, r.value.table);
  }
  for (const [domName, place] of domains)
    if (!f.guests[domName])
      assumptions.push(`${domName} (on ${place.host}): not described under guests; its traffic is not modelled`);

  // Real servers: guests that are destinations of some director.
  for (const [, table] of ipvs)
    for (const svc of table.services)
      for (const d of svc.destinations) {
        if (d.address.family !== 'ipv4') continue;
        for (const n of nodes.values())
          if (
            n.kind === 'guest' &&
            n.role === 'other' &&
            [...n.interfaces.values()].some((i) => i.addrs.some((a) => a.prefix.addr === (d.address.addr as Ipv4)))
          )
            (n as { role: string }).role = 'real-server';
      }

  // Gateway and client.
  if (f.gateway) {
    const gw = f.gateway;
    const prefix = parseIpv4Prefix(gw.ip)!;
    // With `vlan`, the address is on a VLAN device over the interface (a trunk port): `eth0.100@eth0`.
    const lanName = gw.vlan === undefined ? gw.interface : `${gw.interface}.${gw.vlan}`;
    const neighbours = new Map<Ipv4, NeighbourEntry>();
    for (const [ip, mac] of Object.entries(gw.neighbours))
      neighbours.set(ipv4(ip), {
        mac: parseMac(mac)!,
        iface: lanName,
        origin: yamlOrigin(`neighbour ${ip} lladdr ${mac}`, 'gateway', 'neighbours', ip),
      });
    const lan: MutIface = {
      name: lanName,
      kind: gw.vlan === undefined ? 'ether' : 'vlan',
      mac: parseMac(gw.mac)!,
      addrs: [{ prefix, label: lanName, origin: yamlOrigin(`gateway address ${gw.ip}`, 'gateway', 'ip') }],
      up: true,
      origin: yamlOrigin('gateway', 'gateway'),
    };
    const ifaces = new Map<string, MutIface>([[lan.name, lan]]);
    if (gw.vlan !== undefined) {
      lan.lower = gw.interface;
      lan.vlanId = gw.vlan;
      ifaces.set(gw.interface, {
        name: gw.interface,
        kind: 'ether',
        mac: lan.mac,
        addrs: [],
        up: true,
        origin: yamlOrigin(`gateway trunk carrying VLAN ${gw.vlan}`, 'gateway', 'vlan'),
      });
    }
    const routes: Route[] = connectedRoutes([lan]);
    if (f.client) {
      const wan: MutIface = {
        name: 'wan',
        kind: 'ether',
        mac: '84:78:ac:00:00:01' as Mac,
        addrs: [],
        up: true,
        pointToPoint: true,
        peer: { node: f.client.name, iface: 'eth0' },
        origin: implicit("the gateway's side towards the client (the internet)"),
      };
      ifaces.set('wan', wan);
      routes.push({
        dst: { addr: ipv4(f.client.ip), len: 32 },
        dev: 'wan',
        metric: 0,
        type: 'unicast',
        origin: implicit('route to the client through the internet'),
      });
    }
    nodes.set(gw.name, {
      name: gw.name,
      kind: 'gateway',
      role: 'other',
      interfaces: ifaces,
      routes,
      neighbours,
      sysctl: new Map([['net.ipv4.ip_forward', { value: '1', origin: implicit('the gateway forwards') }]]),
      listeners: [],
      ttl: 64,
      origin: yamlOrigin('gateway', 'gateway'),
    });
  }
  if (f.client) {
    const c = f.client;
    const gwName = f.gateway?.name;
    const eth0: MutIface = {
      name: 'eth0',
      kind: 'ether',
      mac: c.mac ? parseMac(c.mac)! : ('02:00:5e:00:00:01' as Mac),
      addrs: [
        {
          prefix: { addr: ipv4(c.ip), len: 32 },
          label: 'eth0',
          origin: yamlOrigin(`client address ${c.ip}`, 'client', 'ip'),
        },
      ],
      up: true,
      pointToPoint: true,
      ...(gwName ? { peer: { node: gwName, iface: 'wan' } } : {}),
      origin: yamlOrigin('client', 'client'),
    };
    nodes.set(c.name, {
      name: c.name,
      kind: 'client',
      role: 'other',
      interfaces: new Map([[eth0.name, eth0]]),
      routes: [
        {
          dst: { addr: 0 as Ipv4, len: 0 },
          dev: 'eth0',
          metric: 0,
          type: 'unicast',
          origin: implicit('the client reaches everything through the gateway'),
        },
      ],
      neighbours: new Map(),
      sysctl: new Map(),
      listeners: [],
      ttl: c.ttl,
      origin: yamlOrigin('client', 'client'),
    });
  }

  // Segments.
  const segments: Segment[] = [];
  for (const [segName, seg] of Object.entries(f.segments)) {
    const members = seg.members.flatMap((m, k) => {
      const [node, iface] = m.split(':') as [string, string];
      const n = nodes.get(node);
      const i = ifaceNamed(n, iface);
      if (!n || !i) {
        ctx.issues.push(
          issue(
            'scenario.unknown-interface',
            n
              ? `segment ${segName}: ${node} has no interface ${iface} (it has ${[...n.interfaces.keys()].join(', ')})`
              : `segment ${segName}: ${m} is not an interface of any node (known nodes: ${[...nodes.keys()].join(', ')})`,
            at('segments', segName, 'members', k),
          ),
        );
        return [];
      }
      i.segment = segName;
      // The device's own name from here on: routes, captures and the kernel use it.
      return [{ node, iface: i.name }];
    });
    segments.push({ name: segName, members, origin: yamlOrigin(`segment ${segName}`, 'segments', segName) });
  }
  if (f.gateway) {
    const gwIface = nodes.get(f.gateway.name)?.interfaces.get(f.gateway.interface) as MutIface | undefined;
    const seg = segments.find((s) => s.name === f.gateway!.segment);
    if (!seg)
      ctx.issues.push(
        issue(
          'scenario.unknown-segment',
          `gateway.segment "${f.gateway.segment}" is not defined under segments`,
          at('gateway', 'segment'),
        ),
      );
    else if (gwIface && !seg.members.some((m) => m.node === f.gateway!.name)) {
      gwIface.segment = seg.name;
      (seg.members as { node: string; iface: string }[]).push({ node: f.gateway.name, iface: f.gateway.interface });
    }
  }

  // Default listeners: a real server runs every service it is balanced to (it answers on its own address) — each
  // of them, not only the first: a guest behind VIP:80 and VIP:443, or DNS over TCP and UDP, runs both. A guest whose
  // sockets scenario.yaml lists (`listen`) keeps exactly those.
  const listed = new Set([...nodes.values()].filter((n) => n.listeners.length > 0).map((n) => n.name));
  for (const [, table] of ipvs)
    for (const svc of table.services)
      for (const d of svc.destinations) {
        if (d.address.family !== 'ipv4' || svc.key.kind !== 'addr') continue;
        for (const n of nodes.values()) {
          if (n.kind !== 'guest' || listed.has(n.name)) continue;
          if (![...n.interfaces.values()].some((i) => i.addrs.some((a) => a.prefix.addr === (d.address.addr as Ipv4))))
            continue;
          const proto = svc.key.protocol === 'UDP' ? 'udp' : 'tcp';
          if (n.listeners.some((l) => l.protocol === proto && l.port === d.port)) continue;
          (n.listeners as Listener[]).push({
            protocol: proto,
            port: d.port,
            origin: implicit(`assumed: ${n.name} runs the service on ${proto}/${d.port}`),
          });
          assumptions.push(`${n.name}: assumed to listen on ${proto}/${d.port} (its director balances to it)`);
        }
      }

  // Probes.
  const start = 1_700_000_000_000_000_000n;
  const probes: ProbeSpec[] = f.probes.flatMap((p, k): ProbeSpec[] => {
    const origin = yamlOrigin(`probe ${p.name}`, 'probes', k);
    const from = p.from;
    if (!nodes.has(from)) {
      ctx.issues.push(
        issue(
          'scenario.unknown-node',
          `probe ${p.name}: "from: ${from}" is not a node (known: ${[...nodes.keys()].join(', ')})`,
          at('probes', k),
        ),
      );
      return [];
    }
    const timeNs = parseTime(p.time, start + BigInt(k) * 1_000_000_000n);
    if ('tcp' in p) {
      const [ip, port] = p.tcp.split(':');
      const to = parseIpv4(ip ?? '');
      if (to === undefined) {
        ctx.issues.push(issue('scenario.schema', `probe ${p.name}: bad address in "${p.tcp}"`, at('probes', k, 'tcp')));
        return [];
      }
      return [
        {
          kind: 'tcp',
          name: p.name,
          from,
          to,
          dport: Number(port),
          sport: p.sport,
          seq: p.seq,
          ipId: p['ip-id'],
          window: p.window,
          tsval: p.tsval,
          timeNs,
          origin,
        },
      ];
    }
    return [{ kind: 'arp', name: p.name, from, target: ipv4(p.arp), timeNs, origin }];
  });

  const scenario: Scenario = {
    name: f.name,
    description: f.description,
    dir: ctx.files.dir,
    nodes,
    segments,
    bindings,
    probes,
    assumptions,
  };
  void yamlFile;
  return {
    scenario,
    ipvs,
    filters,
    kernels,
    keepalived,
    keepalivedIssues,
    installedIptables,
    declaredAssumptions,
    ...(hostRuleSets.size > 0 ? { hostRuleSets } : {}),
    ...(keepalivedFiles.size > 0 ? { keepalivedFiles } : {}),
    ...(installedIpsets.size > 0 ? { installedIpsets } : {}),
    ...(installedEbFilter.size > 0 ? { installedEbFilter } : {}),
    ...(installedRaw.size > 0 ? { installedRaw } : {}),
    ...(proxmox.size > 0 ? { proxmox } : {}),
    ...(ipvsConnections.size > 0 ? { ipvsConnections } : {}),
    ...(etcNames.size > 0 ? { etcNames } : {}),
  };
}

/** Whether a table can change anything: a built-in chain with rules or a policy other than ACCEPT. */
function liveTable(t: IptTable): boolean {
  return t.chains.some((c) => c.builtin && (c.rules.length > 0 || (c.policy ?? 'ACCEPT') !== 'ACCEPT'));
}

/** An `ip route` listing as the node's routes (undefined when the file cannot be read). */
/** A node's `ip rule` (policy routing: from/to/iif/oif/fwmark selectors); undefined when the file cannot be read. */
function rulesOf(ctx: Ctx, file: string, at: (string | number)[]): RoutingRule[] | undefined {
  const a = readArtifact(ctx, file, at);
  if (!a) return undefined;
  const r = readIpRule(a.text, a.file);
  appendAll(ctx.issues, r.issues);
  return (r.value ?? []).map((e) => ({
    priority: e.priority,
    not: e.not,
    ...(e.from ? { from: e.from } : {}),
    ...(e.to ? { to: e.to } : {}),
    ...(e.iif !== undefined ? { iif: e.iif } : {}),
    ...(e.oif !== undefined ? { oif: e.oif } : {}),
    ...(e.fwmark ? { fwmark: e.fwmark } : {}),
    action: e.action,
    origin: { kind: 'file', label: `rule ${e.priority}`, pos: e.pos },
  }));
}

function routesOf(ctx: Ctx, file: string, at: (string | number)[]): Route[] | undefined {
  const a = readArtifact(ctx, file, at);
  if (!a) return undefined;
  const r = readIpRoute(a.text, a.file);
  appendAll(ctx.issues, r.issues);
  return (r.value ?? []).map((e) => ({
    dst: e.dst,
    ...(e.via !== undefined ? { via: e.via } : {}),
    ...(e.dev !== undefined ? { dev: e.dev } : {}),
    ...(e.src !== undefined ? { src: e.src } : {}),
    metric: e.metric,
    type: e.type,
    ...(e.table !== 'main' ? { table: e.table } : {}),
    ...(e.onlink ? { onlink: true } : {}),
    ...(e.mtu !== undefined ? { mtu: e.mtu } : {}),
    ...(e.advmss !== undefined ? { advmss: e.advmss } : {}),
    origin: { kind: 'file', label: e.table === 'main' ? 'route' : `route (table ${e.table})`, pos: e.pos },
  }));
}
