/**
 * `lvsdoctor import BUNDLE... -o DIR`: builds a scenario directory (the format of examples/, docs/scenario-format.md)
 * from collector bundles — first as a map of files in memory (which `diagnose BUNDLE…` loads directly), then
 * written to DIR. Artifacts are copied as the commands printed them into one folder per node; scenario.yaml
 * names them, and says in comments what was inferred from which evidence and what could not be (`TODO`,
 * `ASSUMED`). Drift between the hosts' live rules and what their domains' XML compiles to is reported.
 */
import { existsSync, lstatSync, mkdtempSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIpv4 } from '../addr/ipv4.ts';
import { formatIpv4Prefix } from '../addr/prefix.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import { compileBindings } from '../libvirt/compile.ts';
import type { NwFilter } from '../libvirt/nwfilter-model.ts';
import { readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { appendAll } from '../source/arrays.ts';
import {
  checkNoneExist,
  FileError,
  isContainedRel,
  prepareOutputDir,
  readInputText,
  writeNewFile,
} from '../source/files.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { fileNamePart } from '../source/shell.ts';
import { memorySource, type PreParsed, type ScenarioSource } from '../topology/scenario-source.ts';
import { type Bundle, outputOf, readBundle, whyUnavailable } from './bundle.ts';
import {
  compareBindings,
  compareEbtables,
  compareIptables,
  type DriftEntry,
  ebtablesStyle,
  impliedBindings,
} from './drift.ts';
import { type Evidence, type Gap, gatherEvidence } from './evidence.ts';
import { type Assumption, type Cluster, type GuestPlace, type HostPlace, inferCluster } from './infer.ts';
import { pveBundleFiles, pveNodeOf } from './proxmox-bundle.ts';
import { comparePveNode, PVE_LIVE, type PveDriftResult } from './proxmox-drift.ts';

export interface ImportOptions {
  /** The scenario directory to write (created; must be empty or an earlier import). */
  readonly out: string;
  /** Scenario name (default: the directory's base name). */
  readonly name?: string;
}

export interface ImportTimings {
  readMs: number;
  inferMs: number;
  /** Building the scenario's files in memory. */
  buildMs: number;
  /** Writing them to the scenario directory (0 when kept in memory). */
  writeMs: number;
  driftMs: number;
}

export interface ImportResult {
  /**
   * The scenario directory (for an import kept in memory: how messages name it, '' for none), or undefined when
   * nothing could be built.
   */
  readonly dir: string | undefined;
  /** The scenario's files, path relative to the scenario → text (what is written to the directory). */
  readonly files?: ReadonlyMap<string, string>;
  /** The domain, binding and filter XML the import parsed, by scenario path (the loader reuses them). */
  readonly preparsed?: ReadonlyMap<string, PreParsed>;
  /** Unreadable bundles and other input problems (errors stop the import). */
  readonly issues: readonly Issue[];
  readonly drift: readonly DriftEntry[];
  /** What is unknown, assumed or inferred, one line each (also in import-report.txt). */
  readonly notes: readonly string[];
  /** What the scenario assumes, with its evidence (written under `assumptions:` in scenario.yaml). */
  readonly assumptions: readonly Assumption[];
  readonly cluster?: Cluster;
  readonly timings: ImportTimings;
}

/** The marker an import leaves, so that a later import may overwrite the directory. */
export const IMPORT_REPORT = 'import-report.txt';

/** Client address written when no bundle tells it (TEST-NET-3, a documentation address). */
export const ASSUMED_CLIENT = '203.0.113.10';

function yamlKey(s: string): string {
  return /^[A-Za-z0-9_./-]+$/.test(s) && !/^[-.]/.test(s) ? s : JSON.stringify(s);
}

function yamlStr(s: string): string {
  return /^[A-Za-z0-9_./:-]+$/.test(s) && !/^[-:.]|^(true|false|null|yes|no|on|off|~)$/i.test(s) && !/^\d/.test(s)
    ? s
    : JSON.stringify(s);
}

function comment(s: string): string {
  return s.replace(/\n/g, ' ');
}

/** A node, domain, port or filter name as one file-name component (distinct names give distinct files). */
const safeFile = fileNamePart;

/** Copies of a bundle's outputs, by command id → file name in the node's folder. */
const HOST_FILES: readonly (readonly [string, string])[] = [
  ['ip-j-addr', 'ip-addr.json'],
  ['ip-addr', 'ip-addr.txt'],
  ['ip-j-link', 'ip-link.json'],
  ['ip-route', 'ip-route.txt'],
  ['ip-j-route', 'ip-route.json'],
  ['ip-j-neigh', 'ip-neigh.json'],
  ['sysctl-net', 'sysctl.txt'],
  ['bridge-j-link', 'bridge-link.json'],
  ['bridge-j-fdb', 'bridge-fdb.json'],
  ['bridge-j-vlan', 'bridge-vlan.json'],
  ['ebtables-nat', 'ebtables-nat.txt'],
  ['ebtables-filter', 'ebtables-filter.txt'],
  ['iptables-save', 'iptables-save.txt'],
  ['ip6tables-save', 'ip6tables-save.txt'],
  ['nft-ruleset', 'nft-ruleset.txt'],
  ['ipset-save', 'ipset-save.txt'],
  ['virsh-nwfilter-list', 'nwfilter-list.txt'],
  ['virsh-binding-list', 'nwfilter-binding-list.txt'],
];

const GUEST_FILES: readonly (readonly [string, string])[] = [
  ['ip-j-addr', 'ip-addr.json'],
  ['ip-addr', 'ip-addr.txt'],
  ['ip-route', 'ip-route.txt'],
  ['ip-j-neigh', 'ip-neigh.json'],
  ['ip-neigh', 'ip-neigh.txt'],
  ['sysctl-net', 'sysctl.txt'],
  ['ss-listen', 'ss-listen.txt'],
  ['ipvsadm-Ln', 'ipvsadm-Ln.txt'],
  ['ipvsadm-Sn', 'ipvsadm-Sn.txt'],
  ['ipvsadm-Lnc', 'ipvsadm-Lnc.txt'],
  ['ipvsadm-stats', 'ipvsadm-Ln-stats.txt'],
  ['ipvsadm-timeout', 'ipvsadm-timeout.txt'],
  ['etc-hosts', 'etc-hosts.txt'],
  ['etc-services', 'etc-services.txt'],
];

/** The scenario's files as they are built: path relative to the scenario → text. */
class Writer {
  readonly files = new Map<string, string>();
  readonly preparsed = new Map<string, PreParsed>();
  write(rel: string, content: string): string {
    this.files.set(rel, content);
    return rel;
  }
  /** Writes an XML file whose parse (under the file name `parsed.file`) can be reused by the loader. */
  writeParsed(rel: string, parsed: PreParsed): string {
    this.preparsed.set(rel, parsed);
    return this.write(rel, parsed.text);
  }
  /** Copies a bundle file unchanged. */
  copyFile(b: Bundle, file: string, rel: string): string | undefined {
    const text = b.files.get(file);
    return text === undefined ? undefined : this.write(rel, text);
  }
  /** Copies a command's output when it succeeded; returns its path relative to the scenario. */
  copy(b: Bundle, id: string, rel: string): string | undefined {
    const c = b.commands.get(id);
    return c?.status === 'ok' ? this.copyFile(b, c.out, rel) : undefined;
  }
}

/** The list of files an import wrote, kept in its directory: a later import into it removes those and nothing else. */
export const IMPORT_LIST = '.lvsdoctor-import';

/** Writes the files under `root` (new files only, never through links: see writeNewFile), then their list. */
function writeFiles(root: string, files: ReadonlyMap<string, string>): void {
  checkNoneExist(root, [...files.keys(), IMPORT_LIST]);
  for (const [rel, content] of files) writeNewFile(root, rel, content);
  writeNewFile(root, IMPORT_LIST, `${[...files.keys()].join('\n')}\n`);
}

/**
 * Makes `out` ready: created when missing; when it holds an earlier import, the files that import listed are
 * removed (only those, only regular files, and the directories they leave empty); anything else in it stops the
 * import. Never follows a link inside `out`.
 */
function prepareOut(out: string, issues: Issue[]): boolean {
  try {
    prepareOutputDir(out, '-o');
  } catch (e) {
    if (!(e instanceof FileError)) throw e;
    issues.push(issue('import.out', e.message));
    return false;
  }
  const listFile = join(out, IMPORT_LIST);
  let listed = new Set<string>();
  if (lstatSync(listFile, { throwIfNoEntry: false })?.isFile())
    listed = new Set(
      readInputText(listFile, { noFollow: true })
        .split('\n')
        .filter((l) => isContainedRel(l)),
    );
  const files: string[] = [];
  const dirs: string[] = [];
  let unknown: string | undefined;
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(out, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(out, r));
      if (st.isDirectory()) {
        walk(r);
        dirs.push(r);
      } else if (st.isFile() && (listed.has(r) || r === IMPORT_LIST)) files.push(r);
      else unknown ??= r;
      if (unknown !== undefined) return;
    }
  };
  try {
    walk('');
  } catch (e) {
    issues.push(issue('import.out', `cannot use ${out}: ${(e as Error).message}`));
    return false;
  }
  if (unknown !== undefined) {
    issues.push(
      issue(
        'import.out-not-empty',
        listed.size > 0
          ? `${out} holds ${unknown}, which the earlier import there did not write: choose a new directory (nothing was removed)`
          : `${out} exists and is not empty (nor an earlier import): choose a new directory for the scenario`,
      ),
    );
    return false;
  }
  for (const f of files) unlinkSync(join(out, f));
  for (const d of dirs) rmdirSync(join(out, d));
  return true;
}

interface HostOut {
  readonly ipAddr?: string;
  readonly domains: string[];
  /** Proxmox: the copy of /etc/pve (`pve:`) and the node it describes. */
  readonly pve?: string;
  readonly pveNode?: string;
  /** Proxmox: the copy of /etc/network/interfaces (`network-interfaces:`). */
  readonly networkInterfaces?: string;
  /** Proxmox: the live listings the trace follows (`iptables-save:`, `ipset-save:`, `ebtables-filter:`) by key. */
  readonly pveLive?: readonly (readonly [string, string])[];
  /** Proxmox: the live firewall against what /etc/pve compiles to. */
  readonly pveDrift?: PveDriftResult;
  readonly nwfilterDir?: string;
  /** Directory of the live filter bindings (`hosts.NAME.bindings`). */
  readonly bindings?: string;
  readonly sysctl?: string;
  readonly filters: NwFilter[];
}

function writeHost(w: Writer, h: HostPlace, c: Cluster, issues: Issue[]): HostOut {
  const b = h.ev.bundle;
  const dir = safeFile(h.node);
  const copied = new Map<string, string>();
  for (const [id, name] of HOST_FILES) {
    const rel = w.copy(b, id, `${dir}/${name}`);
    if (rel) copied.set(id, rel);
  }
  w.copyFile(b, 'manifest.tsv', `${dir}/manifest.tsv`);
  const domains: string[] = [];
  // A Proxmox node: its /etc/pve files as a copy of /etc/pve, which the loader compiles as pve-firewall does.
  let pve: string | undefined;
  let netif: string | undefined;
  if (h.ev.pve) {
    pve = `${dir}/etc-pve`;
    for (const f of pveBundleFiles(b)) w.write(`${pve}/${f.rel}`, f.text);
    netif = w.copy(b, 'pve-network-interfaces', `${dir}/network-interfaces`);
  }
  for (const g of c.guests)
    if (g.host === h.node && !h.ev.pve) {
      const d = g.domain;
      const result = { value: d.def, issues: d.issues };
      domains.push(
        w.writeParsed(`${dir}/${safeFile(d.name)}.xml`, { kind: 'domain', text: d.text, file: d.file, result }),
      );
    }
  let bindings: string | undefined;
  for (const bd of h.ev.bindings ?? []) {
    bindings = `${dir}/bindings`;
    const result = { value: bd.def, issues: bd.issues };
    w.writeParsed(`${bindings}/${safeFile(bd.def.portdev)}.xml`, {
      kind: 'binding',
      text: bd.text,
      file: bd.file,
      result,
    });
  }
  const filters: NwFilter[] = [];
  let nwfilterDir: string | undefined;
  for (const f of h.ev.customFilters ?? []) {
    nwfilterDir = `${dir}/nwfilters`;
    const rel = `${nwfilterDir}/${safeFile(f.name)}.xml`;
    const r = readNwfilterXml(f.text, rel);
    w.writeParsed(rel, { kind: 'nwfilter', text: f.text, file: rel, result: r });
    appendAll(issues, r.issues);
    if (r.value) filters.push(r.value);
  }
  const ipAddr = (h.ev.links ? copied.get('ip-j-addr') : undefined) ?? copied.get('ip-addr');
  const sysctl = copied.get('sysctl-net');
  // A Proxmox node's live rules: compared with what /etc/pve compiles to, and what the trace follows.
  let pveDrift: PveDriftResult | undefined;
  const pveLive: [string, string][] = [];
  if (h.ev.pve) {
    const readIssues: Issue[] = [];
    pveDrift = comparePveNode(h.node, b, h.ev.pve, (id) => copied.get(id) ?? id, readIssues);
    for (const i of readIssues) pveDrift.notes.push(`${h.node}: not fully compared: ${formatIssueShort(i)}`);
    for (const [id, key] of [
      [PVE_LIVE.iptables, 'iptables-save'],
      [PVE_LIVE.ipset, 'ipset-save'],
      [PVE_LIVE.ebtables, 'ebtables-filter'],
    ] as const) {
      const rel = copied.get(id);
      if (rel && pveDrift.live.has(id)) pveLive.push([key, rel]);
    }
  }
  return {
    ...(ipAddr ? { ipAddr } : {}),
    domains,
    ...(pve ? { pve, pveNode: pveNodeOf(b) } : {}),
    ...(netif ? { networkInterfaces: netif } : {}),
    ...(pveDrift ? { pveDrift, pveLive } : {}),
    ...(nwfilterDir ? { nwfilterDir } : {}),
    ...(bindings ? { bindings } : {}),
    ...(sysctl ? { sysctl } : {}),
    filters,
  };
}

interface GuestOut {
  readonly ipAddr?: string;
  readonly ipRoute?: string;
  readonly ipNeigh?: string;
  readonly sysctl?: string;
  readonly ipvsadm?: string;
  readonly etcHosts?: string;
  readonly etcServices?: string;
  readonly listen?: readonly string[];
  readonly kernel?: string;
  readonly comments: string[];
}

function writeGuest(w: Writer, g: GuestPlace, notes: string[], assumptions: Assumption[]): GuestOut {
  const comments = [`on ${g.host}: ${g.ports.join(', ')}`];
  const ev = g.ev;
  if (!ev) {
    comments.push(
      'TODO not collected: run the collector with --guest in it; its NICs, addresses and sysctls are unknown',
    );
    notes.push(`guest ${g.node} (on ${g.host}) was not collected: addresses, routes and sysctls unknown`);
    const macs = g.domain.def.interfaces.flatMap((i) => (i.mac ? [i.mac] : []));
    assumptions.push({
      assumed: `guest ${g.node} (on ${g.host}) was not collected: its addresses, routes, neighbours, sysctls and IPVS table are unknown (kernel defaults, NICs named eth0… in domain order)`,
      evidence: `no guest bundle has a NIC with ${macs.length === 1 ? 'the MAC' : 'a MAC'} ${macs.join(', ') || '(none)'} of domain ${g.node} (${g.host}'s virsh dumpxml ${g.node})`,
    });
    return { comments };
  }
  const b = ev.bundle;
  const dir = `guests/${safeFile(g.node)}`;
  const copied = new Map<string, string>();
  for (const [id, name] of GUEST_FILES) {
    // The text neighbour table only stands in for an unusable `ip -j neigh`.
    if (id === 'ip-neigh' && ev.neigh) continue;
    const rel = w.copy(b, id, `${dir}/${name}`);
    if (rel) copied.set(id, rel);
  }
  let k = 0;
  for (const [id] of b.commands)
    if (id.startsWith('keepalived-conf-')) {
      const rel = w.copy(b, id, `${dir}/keepalived-${++k}.conf`);
      if (rel) comments.push(`keepalived configuration collected: ${rel} (${b.commands.get(id)!.command})`);
    }
  w.copyFile(b, 'manifest.tsv', `${dir}/manifest.tsv`);
  comments.push(`bundle ${b.name} (hostname ${b.hostname})`);
  for (const u of ev.unknown) {
    comments.push(`unknown: ${u}`);
    notes.push(`${g.node}: unknown ${u}`);
  }
  appendAll(assumptions, gapAssumptions(`guest ${g.node}`, ev.gaps));
  const ipAddr = (ev.links ? copied.get('ip-j-addr') : undefined) ?? copied.get('ip-addr');
  const ipRoute = copied.get('ip-route');
  const ipNeigh = (ev.neigh ? copied.get('ip-j-neigh') : undefined) ?? copied.get('ip-neigh');
  const sysctl = copied.get('sysctl-net');
  // IPVS: a director is a guest with services whose VIP it holds (a backup keeps the table without the VIP).
  let ipvsadm: string | undefined;
  const table = ev.ipvs;
  if (table && table.services.length > 0) {
    const vips = table.services.flatMap((s) =>
      s.key.kind === 'addr' && s.key.address.family === 'ipv4' ? [s.key.address.addr] : [],
    );
    const held = vips.filter((v) => (ev.links ?? []).some((l) => l.addrs.some((p) => p.addr === v)));
    if (held.length > 0 || vips.length === 0) {
      ipvsadm = copied.get('ipvsadm-Ln');
      comments.push(
        held.length > 0
          ? `director: holds VIP ${[...new Set(held)].map(formatIpv4).join(', ')} and has IPVS services`
          : 'director: IPVS services by firewall mark',
      );
    } else {
      comments.push(
        `has IPVS services for ${[...new Set(vips)].map(formatIpv4).join(', ')} but does not hold the VIP (a backup director?): not modelled as director`,
      );
      notes.push(`${g.node}: IPVS table without its VIP (backup director?): not modelled as director`);
      assumptions.push({
        assumed: `${g.node} is not a director (its IPVS table is left out of the model)`,
        evidence: `ipvsadm -Ln lists services for ${[...new Set(vips)].map(formatIpv4).join(', ')} but none of its interfaces holds the VIP (a backup director?)`,
      });
    }
  } else if (b.commands.get('ipvsadm-Ln')?.status === 'skipped')
    comments.push(`IPVS: ${whyUnavailable(b, 'ipvsadm-Ln') ?? 'not run'}`);
  const listen = ev.listen && ev.listen.length > 0 ? ev.listen : undefined;
  return {
    ...(ipAddr ? { ipAddr } : {}),
    ...(ipRoute ? { ipRoute } : {}),
    ...(ipNeigh ? { ipNeigh } : {}),
    ...(sysctl ? { sysctl } : {}),
    ...(ipvsadm ? { ipvsadm } : {}),
    ...(ipvsadm && copied.has('etc-hosts') ? { etcHosts: copied.get('etc-hosts')! } : {}),
    ...(ipvsadm && copied.has('etc-services') ? { etcServices: copied.get('etc-services')! } : {}),
    ...(listen ? { listen } : {}),
    ...(b.kernel ? { kernel: b.kernel } : {}),
    comments,
  };
}

/** A bundle's gaps as assumptions of the scenario, with the manifest line as evidence. */
function gapAssumptions(who: string, gaps: readonly Gap[]): Assumption[] {
  return gaps.map((g) => ({
    assumed: `${who}: ${g.what} unknown`,
    evidence: `${g.why}${g.where ? ` (${g.where})` : ''}`,
  }));
}

function renderYaml(
  name: string,
  c: Cluster,
  hostsOut: ReadonlyMap<string, HostOut>,
  guestsOut: ReadonlyMap<string, GuestOut>,
  bundles: number,
  assumptions: readonly Assumption[],
): string {
  const L: string[] = [];
  L.push(`# Built by \`lvsdoctor import\` from ${bundles} bundle(s). Artifacts sit beside this file as the collector`);
  L.push('# recorded them (each folder keeps its bundle manifest). Comments say what each entry was inferred from;');
  L.push('# "TODO" marks what no bundle could tell and "ASSUMED" a stand-in value: check those before trusting a');
  L.push('# diagnosis. Drift between live rules and the domain XML is listed in import-report.txt.');
  L.push(`name: ${yamlStr(name)}`);
  L.push(
    `description: ${JSON.stringify(`imported: ${c.hosts.length} hypervisor(s), ${c.guests.filter((g) => g.ev).length} of ${c.guests.length} guest(s) collected`)}`,
  );
  L.push('');
  L.push('segments:');
  if (c.segments.length === 0) L.push('  {}  # TODO no host uplink known: add segments.NAME.members [host:nic, …]');
  const gwSeg = c.gateway?.segment;
  for (const s of c.segments) {
    L.push(`  ${s.name}:`);
    if (s.evidence.length === 0 && s.members.length === 1)
      L.push(`    # ${s.members[0]!.host}'s uplink ${s.members[0]!.iface} (bridge ${s.members[0]!.bridge})`);
    for (const e of s.evidence) L.push(`    # ${comment(e)}`);
    if (s.networks.length) L.push(`    # subnets: ${s.networks.map(formatIpv4Prefix).join(', ')}`);
    L.push(`    members: [${s.members.map((u) => `${u.host}:${u.iface}`).join(', ')}]`);
    if (gwSeg === s.name) L.push(`    # the gateway joins this segment (gateway.segment)`);
  }
  L.push('');
  L.push('hosts:');
  if (c.hosts.length === 0) L.push('  {}  # TODO no hypervisor bundle');
  for (const h of c.hosts) {
    const o = hostsOut.get(h.node)!;
    L.push(`  ${yamlKey(h.node)}:  # bundle ${h.ev.bundle.name}`);
    for (const u of h.ev.unknown) L.push(`    # unknown: ${comment(u)}`);
    if (o.ipAddr) L.push(`    ip-addr: ${yamlStr(o.ipAddr)}`);
    else L.push('    # TODO ip-addr: no `ip addr` output; taps and bridges are assumed from the domain XML');
    if (o.pve) {
      L.push(`    platform: proxmox  # bundle meta platform (pve-firewall's files under /etc/pve)`);
      L.push(`    pve: ${yamlStr(o.pve)}  # /etc/pve files of node ${o.pveNode}: guests, firewall`);
      if (o.networkInterfaces)
        L.push(
          `    network-interfaces: ${yamlStr(o.networkInterfaces)}  # /etc/network/interfaces: VLAN-aware bridges`,
        );
      else
        L.push(
          '    # TODO network-interfaces: /etc/network/interfaces not collected; vmbr bridges taken as not VLAN-aware',
        );
      // The trace follows what the kernel filters with: the node's live rules (their drift is in import-report.txt).
      for (const [key, rel] of o.pveLive ?? [])
        L.push(
          `    ${key}: ${yamlStr(rel)}  # live: the trace follows what the kernel has, not what /etc/pve compiles to`,
        );
    } else L.push(`    domains: [${o.domains.map(yamlStr).join(', ')}]`);
    if (o.nwfilterDir) L.push(`    nwfilter-dir: ${yamlStr(o.nwfilterDir)}`);
    if (o.bindings) L.push(`    bindings: ${yamlStr(o.bindings)}  # live: virsh nwfilter-binding-dumpxml`);
    if (o.sysctl) L.push(`    sysctl: ${yamlStr(o.sysctl)}`);
  }
  L.push('');
  L.push('guests:');
  if (c.guests.length === 0) L.push('  {}');
  for (const g of c.guests) {
    const o = guestsOut.get(g.node)!;
    const entries: string[] = [];
    if (o.kernel) entries.push(`    kernel: ${yamlStr(o.kernel)}`);
    if (o.ipAddr) entries.push(`    ip-addr: ${yamlStr(o.ipAddr)}`);
    if (o.ipRoute) entries.push(`    ip-route: ${yamlStr(o.ipRoute)}`);
    if (o.ipNeigh) entries.push(`    ip-neigh: ${yamlStr(o.ipNeigh)}`);
    if (o.sysctl) entries.push(`    sysctl: ${yamlStr(o.sysctl)}`);
    if (o.ipvsadm) entries.push(`    ipvsadm: ${yamlStr(o.ipvsadm)}`);
    if (o.etcHosts) entries.push(`    etc-hosts: ${yamlStr(o.etcHosts)}`);
    if (o.etcServices) entries.push(`    etc-services: ${yamlStr(o.etcServices)}`);
    if (o.listen) entries.push(`    listen: [${o.listen.join(', ')}]  # ss -Hltnu`);
    L.push(`  ${yamlKey(g.node)}:${entries.length === 0 ? ' {}' : ''}`);
    for (const cm of o.comments) L.push(`    # ${comment(cm)}`);
    appendAll(L, entries);
  }
  L.push('');
  const gw = c.gateway;
  if (gw) {
    for (const e of gw.evidence) L.push(`# gateway: ${comment(e)}`);
    for (const t of gw.todo) L.push(`# TODO gateway: ${comment(t)}`);
    const complete = gw.mac !== undefined && gw.segment !== undefined;
    const p = complete ? '' : '# ';
    if (!complete) L.push('# TODO gateway: incomplete, left commented out: fill in mac and segment, then uncomment');
    L.push(`${p}gateway:`);
    if (gw.iface !== 'eth0') L.push(`${p}  interface: ${yamlStr(gw.iface)}`);
    L.push(`${p}  mac: ${gw.mac ?? 'TODO'}`);
    L.push(`${p}  ip: ${formatIpv4Prefix(gw.ip)}`);
    L.push(`${p}  segment: ${gw.segment ?? 'TODO'}`);
    if (gw.neighbours.size > 0) {
      L.push(`${p}  neighbours:  # the gateway's own ARP cache`);
      for (const [ip, mac] of [...gw.neighbours].sort((a, b) => a[0] - b[0]))
        L.push(`${p}    ${formatIpv4(ip)}: ${mac}`);
    }
    L.push('');
    if (complete) {
      L.push('# ASSUMED client: no bundle can tell who the clients are; a documentation address stands in for any');
      L.push(
        '# client behind the gateway. Replace it with a real client address when one matters (rp_filter, routes).',
      );
      L.push('client:');
      L.push(`  ip: ${ASSUMED_CLIENT}`);
      L.push('');
    }
  } else {
    L.push('# TODO gateway: not inferred (no default route in any bundle). Without gateway and client there are no');
    L.push('# probes from outside. Fill in and uncomment:');
    L.push('# gateway: { mac: TODO, ip: TODO/24, segment: TODO }');
    L.push(`# client: { ip: ${ASSUMED_CLIENT} }`);
    L.push('');
  }
  L.push('# probes: none listed, so lvsdoctor probes every VIP by TCP from the client and by ARP from the gateway.');
  L.push('');
  if (assumptions.length === 0) L.push('assumptions: []  # nothing had to be assumed');
  else {
    L.push('# What no bundle could tell, and what was assumed instead; diagnose repeats these with its findings.');
    L.push('assumptions:');
    for (const a of assumptions) {
      L.push(`  - assumed: ${JSON.stringify(a.assumed)}`);
      L.push(`    evidence: ${JSON.stringify(a.evidence)}`);
    }
  }
  return `${L.join('\n')}\n`;
}

function renderReport(r: {
  dir: string;
  cluster: Cluster;
  drift: readonly DriftEntry[];
  notes: readonly string[];
  issues: readonly Issue[];
}): string {
  const c = r.cluster;
  const L: string[] = [];
  L.push(`lvsdoctor import: ${r.dir || '(in memory, not written)'}`);
  L.push(
    `  hypervisors: ${c.hosts.map((h) => h.node).join(', ') || 'none'}; guests: ${c.guests.length} (${c.guests.filter((g) => g.ev).length} collected)`,
  );
  for (const g of c.guests)
    if (g.ev) L.push(`  ${g.node} on ${g.host} ${g.ports.join(', ')} ← bundle ${g.ev.bundle.hostname}`);
  for (const s of c.segments) L.push(`  segment ${s.name}: ${s.members.map((u) => `${u.host}:${u.iface}`).join(', ')}`);
  if (c.gateway)
    L.push(
      `  gateway ${formatIpv4Prefix(c.gateway.ip)} ${c.gateway.mac ?? '(MAC unknown)'}${c.gateway.segment ? ` on ${c.gateway.segment}` : ''}`,
    );
  L.push('');
  if (r.drift.length === 0)
    L.push('drift: none (live bindings and rules match what the domain XML or /etc/pve compiles to)');
  else {
    L.push(`drift: ${r.drift.length}`);
    for (const d of r.drift) {
      L.push(`  ${d.host} ${d.area} ${d.subject}: ${d.message}`);
      for (const l of d.lines.slice(0, 20)) L.push(`      ${l}`);
      if (d.lines.length > 20) L.push(`      … ${d.lines.length - 20} more`);
    }
  }
  if (r.notes.length) {
    L.push('');
    L.push('unknown, assumed or to check:');
    for (const n of r.notes) L.push(`  - ${n}`);
  }
  return `${L.join('\n')}\n`;
}

function formatIssueShort(i: Issue): string {
  return `${i.pos ? `${i.pos.file}:${i.pos.line}: ` : ''}${i.message}`;
}

/** Live rules against what the domains' filters compile to, per host. */
function driftOf(c: Cluster, hostsOut: ReadonlyMap<string, HostOut>, notes: string[]): DriftEntry[] {
  const drift: DriftEntry[] = [];
  for (const h of c.hosts) {
    const b = h.ev.bundle;
    const pd = hostsOut.get(h.node)?.pveDrift;
    if (h.ev.pve) {
      if (pd) {
        appendAll(drift, pd.drift);
        appendAll(notes, pd.notes);
      }
      continue;
    }
    const domains = (h.ev.domains ?? []).map((d) => d.def);
    const implied = impliedBindings(domains);
    if (h.ev.bindings)
      drift.push(
        ...compareBindings(
          h.node,
          h.ev.bindings.map((x) => x.def),
          implied,
        ),
      );
    const style = ebtablesStyle(outputOf(b, 'version-ebtables'));
    const registry = filterRegistry(hostsOut.get(h.node)?.filters ?? []);
    const compiled = compileBindings([...implied.values()], registry, { style, commands: false });
    const nat = outputOf(b, 'ebtables-nat');
    if (!h.ev.domains)
      notes.push(`${h.node}: rules not compared (domains unknown: ${whyUnavailable(b, 'virsh-list')})`);
    else if (nat === undefined) notes.push(`${h.node}: ebtables not compared (${whyUnavailable(b, 'ebtables-nat')})`);
    else {
      const readIssues: Issue[] = [];
      drift.push(
        ...compareEbtables(h.node, nat, compiled.nat, style, `${safeFile(h.node)}/ebtables-nat.txt`, readIssues),
      );
      for (const i of readIssues) notes.push(`${h.node}: ebtables not fully compared: ${formatIssueShort(i)}`);
    }
    if (h.ev.domains)
      for (const [id, area, table] of [
        ['iptables-save', 'iptables', compiled.filter4],
        ['ip6tables-save', 'ip6tables', compiled.filter6],
      ] as const) {
        const text = outputOf(b, id);
        if (text === undefined) notes.push(`${h.node}: ${area} not compared (${whyUnavailable(b, id)})`);
        else {
          const readIssues: Issue[] = [];
          appendAll(drift, compareIptables(h.node, area, text, table, `${safeFile(h.node)}/${id}.txt`, readIssues));
          for (const i of readIssues) notes.push(`${h.node}: ${area} not fully compared: ${formatIssueShort(i)}`);
        }
      }
  }
  return drift;
}

interface BuildOptions {
  /** Scenario name. */
  readonly name: string;
  /** How the report names the scenario directory. */
  readonly dir: string;
  /** Called after inference, before anything is built: false stops the import (it pushed an issue saying why). */
  readonly ready?: (issues: Issue[]) => boolean;
  /** Bundles the caller already read (path → result); the others are read here. */
  readonly read?: ReadonlyMap<string, ReadResult<Bundle>>;
}

/** Reads bundles and builds the scenario's files in memory (nothing is written). */
function buildImport(paths: readonly string[], o: BuildOptions): ImportResult {
  const timings: ImportTimings = { readMs: 0, inferMs: 0, buildMs: 0, writeMs: 0, driftMs: 0 };
  const issues: Issue[] = [];
  let t = performance.now();
  const evidence: Evidence[] = [];
  for (const p of paths) {
    const r = o.read?.get(p) ?? readBundle(p);
    appendAll(issues, r.issues);
    if (r.value) {
      const ev = gatherEvidence(r.value);
      appendAll(issues, ev.issues);
      evidence.push(ev);
    }
  }
  timings.readMs = performance.now() - t;
  if (evidence.length === 0) {
    if (paths.length === 0) issues.push(issue('import.no-bundle', 'no bundle given'));
    return { dir: undefined, issues, drift: [], notes: [], assumptions: [], timings };
  }
  t = performance.now();
  const cluster = inferCluster(evidence);
  const notes = [...cluster.notes];
  for (const h of cluster.hosts) for (const u of h.ev.unknown) notes.push(`${h.node}: unknown ${u}`);
  if (cluster.hosts.length === 0) notes.push('TODO no hypervisor bundle: guests cannot be placed on hosts');
  timings.inferMs = performance.now() - t;

  if (o.ready && !o.ready(issues))
    return { dir: undefined, issues, drift: [], notes, assumptions: cluster.assumptions, cluster, timings };
  t = performance.now();
  const w = new Writer();
  const hostsOut = new Map<string, HostOut>();
  for (const h of cluster.hosts) hostsOut.set(h.node, writeHost(w, h, cluster, issues));
  const assumptions: Assumption[] = [...cluster.assumptions];
  for (const h of cluster.hosts) appendAll(assumptions, gapAssumptions(`host ${h.node}`, h.ev.gaps));
  for (const h of cluster.hosts) {
    const pd = hostsOut.get(h.node)?.pveDrift;
    if (pd && pd.drift.length > 0)
      assumptions.push({
        assumed: `${h.node}'s firewall is what its kernel had when collected (${[...pd.live].join(', ')}), not what its /etc/pve compiles to: they differ in ${pd.drift.length} place(s) (import-report.txt lists them with both origins)`,
        evidence: `${pd.drift[0]!.subject}: ${pd.drift[0]!.message}`,
      });
  }
  const guestsOut = new Map<string, GuestOut>();
  for (const g of cluster.guests) guestsOut.set(g.node, writeGuest(w, g, notes, assumptions));
  if (cluster.gateway?.ev) {
    const b = cluster.gateway.ev.bundle;
    for (const [id, name] of GUEST_FILES) w.copy(b, id, `gateway/${name}`);
    w.copyFile(b, 'manifest.tsv', 'gateway/manifest.tsv');
  }
  for (const g of cluster.gateway?.todo ?? []) notes.push(`TODO gateway: ${g}`);
  if (cluster.gateway) notes.push(`ASSUMED client ${ASSUMED_CLIENT} (no bundle describes the clients)`);
  if (cluster.gateway?.mac !== undefined && cluster.gateway.segment !== undefined)
    assumptions.push({
      assumed: `the client is ${ASSUMED_CLIENT} (a documentation address) behind the gateway, TTL 64`,
      evidence: 'no bundle can tell who the clients are',
    });
  w.write('scenario.yaml', renderYaml(o.name, cluster, hostsOut, guestsOut, evidence.length, assumptions));
  timings.buildMs = performance.now() - t;

  t = performance.now();
  const drift = driftOf(cluster, hostsOut, notes);
  timings.driftMs = performance.now() - t;
  w.write(IMPORT_REPORT, renderReport({ dir: o.dir, cluster, drift, notes, issues }));
  return {
    dir: o.dir,
    files: w.files,
    preparsed: w.preparsed,
    issues,
    drift,
    notes,
    assumptions,
    cluster,
    timings,
  };
}

/** Reads bundles and writes the scenario directory. */
export function importBundles(paths: readonly string[], o: ImportOptions): ImportResult {
  const name = o.name ?? (o.out.replace(/\/+$/, '').split('/').pop() || 'imported');
  const r = buildImport(paths, { name, dir: o.out, ready: (issues) => prepareOut(o.out, issues) });
  if (r.files === undefined) return r;
  const t = performance.now();
  writeFiles(o.out, r.files);
  r.timings.writeMs = performance.now() - t;
  return r;
}

export interface MemoryImportOptions {
  /** Scenario name (default `imported`). */
  readonly name?: string;
  /** How messages name the scenario directory (default '': files are named relative to the scenario). */
  readonly label?: string;
  /** Bundles the caller already read (path → result): not read again. */
  readonly read?: ReadonlyMap<string, ReadResult<Bundle>>;
}

/** Reads bundles and builds the scenario in memory only (for `diagnose BUNDLE…`): load it with `importedSource`. */
export function importToMemory(paths: readonly string[], o: MemoryImportOptions = {}): ImportResult {
  return buildImport(paths, { name: o.name ?? 'imported', dir: o.label ?? '', ...(o.read ? { read: o.read } : {}) });
}

/** The scenario an import built, as a source for `loadScenarioFrom` (it reuses the import's XML parses). */
export function importedSource(r: ImportResult): ScenarioSource | undefined {
  if (r.files === undefined || r.dir === undefined) return undefined;
  return memorySource(r.files, { label: r.dir, ...(r.preparsed ? { preparsed: r.preparsed } : {}) });
}

/** The import report as text (what `lvsdoctor import` prints). */
export function renderImportReport(r: ImportResult): string {
  if (!r.cluster || r.dir === undefined) return '';
  return renderReport({ dir: r.dir, cluster: r.cluster, drift: r.drift, notes: r.notes, issues: r.issues });
}

/** Imports bundles into a fresh temporary scenario directory; the caller removes it. */
export function importToTemp(paths: readonly string[]): ImportResult {
  const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-import-'));
  return importBundles(paths, { out: dir, name: 'imported' });
}

/** True when the argument looks like a bundle rather than a scenario directory. */
export function isBundlePath(p: string): boolean {
  if (/\.tar\.gz$|\.tgz$/.test(p)) return true;
  return existsSync(join(p, 'manifest.tsv')) && !existsSync(join(p, 'scenario.yaml'));
}
