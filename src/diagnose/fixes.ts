/**
 * Fix proposals for nwfilter findings. Each is a concrete artifact set (nwfilter XML, binding XML, the domain
 * interface's new <filterref>) plus the virsh commands to apply it, and a function that applies it to the model
 * so diagnosis can prove it by re-tracing.
 */
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import { filterRegistry } from '../libvirt/builtin-filters.ts';
import type { NwFilter, NwFilterEntry, NwRule } from '../libvirt/nwfilter-model.ts';
import { readNwfilterXml } from '../libvirt/nwfilter-xml.ts';
import { commentName, fileNamePart, shellCommand } from '../source/shell.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { PortBinding } from '../topology/model.ts';
import { ipv4Services, nicOwning, serviceVip, withBinding } from './facts.ts';
import { filterrefXml, writeFilterBindingXml, writeNwfilterXml } from './nwfilter-writer.ts';
import type { FixArtifact, FixProposal } from './types.ts';

const PREFIX = 'lvsdoctor-dr-';
const NO_FILTERS = {};

function bindingLabel(b: PortBinding): string {
  return `${fileNamePart(b.host)}-${fileNamePart(b.binding.portdev)}`;
}

function bindingPath(b: PortBinding, dir: string): string {
  return `${dir}/binding-${fileNamePart(b.binding.portdev)}.xml`;
}

function nwfilterPath(name: string, dir: string): string {
  return `${dir}/nwfilter-${fileNamePart(name)}.xml`;
}

/** `virsh edit --domain NAME`: the name quoted, and never taken for an option. */
function editCommand(b: PortBinding): string {
  return shellCommand('virsh', 'edit', '--domain', b.domain);
}

function liveCommands(b: PortBinding, bindingFile: string): string[] {
  return [
    `# on ${commentName(b.host)}, effective at once (until the guest restarts):`,
    shellCommand('virsh', 'nwfilter-binding-delete', '--binding', b.binding.portdev),
    shellCommand('virsh', 'nwfilter-binding-create', '--file', bindingFile),
  ];
}

function bindingArtifact(
  b: PortBinding,
  filter: string,
  params: ReadonlyMap<string, readonly string[]>,
  dir: string,
): FixArtifact {
  return {
    path: bindingPath(b, dir),
    content: writeFilterBindingXml({
      ownerName: b.binding.ownerName ?? b.domain,
      ...(b.binding.ownerUuid ? { ownerUuid: b.binding.ownerUuid } : {}),
      portdev: b.binding.portdev,
      mac: b.binding.mac,
      filter,
      params,
    }),
  };
}

function interfaceArtifact(
  b: PortBinding,
  filter: string | undefined,
  params: ReadonlyMap<string, readonly string[]>,
  dir: string,
): FixArtifact {
  const body = filter === undefined ? '      (no <filterref> element)' : filterrefXml(filter, params);
  return {
    path: `${dir}/interface-${b.binding.mac.replace(/:/g, '')}.txt`,
    content: [
      `In \`${editCommand(b)}\`, the <interface> with <mac address='${b.binding.mac}'/> should carry:`,
      '',
      body,
      '',
    ].join('\n'),
  };
}

/** The article's fix: delete the filterref. Works, and removes every protection. */
export function removeFilterrefFix(b: PortBinding): FixProposal {
  const dir = `remove-filterref-${bindingLabel(b)}`;
  return {
    id: `remove-filterref:${b.host}:${b.binding.portdev}`,
    title: `Remove the <filterref filter='${b.binding.filter}'> from ${b.domain}'s interface ${b.binding.mac}`,
    keeps: 'nothing: the guest may then send frames with any MAC, IP or ARP content',
    protectionRank: 0,
    artifacts: [interfaceArtifact(b, undefined, new Map(), dir)],
    commands: [
      `# persistent: delete the <filterref> element of interface ${b.binding.mac}, then restart the guest`,
      editCommand(b),
      `# on ${commentName(b.host)}, effective at once:`,
      shellCommand('virsh', 'nwfilter-binding-delete', '--binding', b.binding.portdev),
    ],
    apply: (s) => withBinding(s, b, undefined),
  };
}

/** Adds addresses to the binding's IP list (e.g. the VIP, so ARP and VIP-sourced packets pass). */
export function addToIpListFix(b: PortBinding, addrs: readonly Ipv4[], why: string): FixProposal | undefined {
  const current = b.binding.params.get('IP') ?? [];
  const add = addrs.map(formatIpv4).filter((a) => !current.includes(a));
  if (add.length === 0) return undefined;
  const params = new Map(b.binding.params);
  params.set('IP', [...current, ...add]);
  // Performance: one replacement binding however often the fix is applied, so compiled rules are reused.
  const replacement: PortBinding = { ...b, binding: { ...b.binding, params } };
  const dir = `add-ip-${bindingLabel(b)}`;
  const bindingFile = bindingPath(b, dir);
  return {
    id: `add-ip:${b.host}:${b.binding.portdev}:${add.join(',')}`,
    title: `Add ${add.join(', ')} to the IP parameter of ${b.domain}'s ${b.binding.filter} (${why})`,
    keeps: `all of ${b.binding.filter}; only the list of source addresses the guest may use grows by ${add.join(', ')}`,
    protectionRank: 90,
    artifacts: [interfaceArtifact(b, b.binding.filter, params, dir), bindingArtifact(b, b.binding.filter, params, dir)],
    commands: [
      `# persistent: replace the <filterref> of interface ${b.binding.mac} with ${dir}/interface-*.txt`,
      editCommand(b),
      ...liveCommands(b, bindingFile),
    ],
    apply: (s) => withBinding(s, b, replacement),
  };
}

/** Finds the chain of filter names from `top` down to `leaf` through filterrefs. */
function refPath(
  registry: ReadonlyMap<string, NwFilter>,
  top: string,
  leaf: string,
  seen = new Set<string>(),
): string[] | undefined {
  if (top === leaf) return [leaf];
  if (seen.has(top)) return undefined;
  seen.add(top);
  const f = registry.get(top);
  if (!f) return undefined;
  for (const e of f.entries) {
    if (e.kind !== 'filterref') continue;
    const sub = refPath(registry, e.filter, leaf, seen);
    if (sub) return [top, ...sub];
  }
  return undefined;
}

/**
 * A director filter for LVS-DR: the bound filter with `no-ip-spoofing` replaced by a variant that also lets
 * through IPv4 addressed to a VIP and sent to a real server's MAC. MAC spoofing, ARP spoofing and the source check
 * of the director's own traffic stay; the VIPs join the IP list so the director may answer ARP for them.
 */
export function drDirectorFilterFix(loaded: LoadedScenario, b: PortBinding, director: string): FixProposal | undefined {
  const custom = loaded.filters.get(b.host) ?? [];
  const registry = filterRegistry(custom);
  const path = refPath(registry, b.binding.filter, 'no-ip-spoofing');
  if (!path) return undefined;
  const vips: Ipv4[] = [];
  const rsMacs: Mac[] = [];
  const unknownRs: string[] = [];
  for (const svc of ipv4Services(loaded, director)) {
    const route = svc.destinations.filter((d) => d.forwarding?.kind === 'route' && d.address.family === 'ipv4');
    if (route.length === 0) continue;
    const vip = serviceVip(svc)!;
    if (!vips.includes(vip)) vips.push(vip);
    for (const d of route) {
      const nic = nicOwning(loaded, d.address.addr as Ipv4);
      if (!nic) unknownRs.push(formatIpv4(d.address.addr as Ipv4));
      else if (!rsMacs.includes(nic.iface.mac)) rsMacs.push(nic.iface.mac);
    }
  }
  if (vips.length === 0 || rsMacs.length === 0) return undefined;
  const rename = (n: string) => (path.includes(n) ? `${PREFIX}${n}` : n);
  const files: { name: string; xml: string }[] = [];
  for (const name of path) {
    const f = registry.get(name)!;
    let entries: NwFilterEntry[] = f.entries.map((e) =>
      e.kind === 'filterref' ? { ...e, filter: rename(e.filter) } : e,
    );
    const comments = new Map<number, string>();
    if (name === 'no-ip-spoofing') {
      const dropAt = entries.findIndex((e) => e.kind === 'rule' && e.action === 'drop');
      const extra: NwRule = {
        kind: 'rule',
        action: 'return',
        direction: 'out',
        priority: 600,
        statematch: true,
        protocol: 'ip',
        attrs: new Map([
          ['dstmacaddr', { raw: '$RS_MAC[@1]', negated: false }],
          ['dstipaddr', { raw: '$VIP[@2]', negated: false }],
        ]),
        origin: { kind: 'fix', label: 'lvsdoctor: LVS-DR forwarding exception' },
      };
      const at = dropAt < 0 ? entries.length : dropAt;
      entries = [...entries.slice(0, at), extra, ...entries.slice(at)];
      comments.set(
        at,
        'LVS-DR: forwarded frames keep the client source IP; accept them only to a VIP and a real-server MAC',
      );
    }
    files.push({ name: rename(name), xml: writeNwfilterXml({ ...f, name: rename(name), entries }, comments) });
  }
  const dir = `dr-director-filter-${bindingLabel(b)}`;
  const ipList = [...(b.binding.params.get('IP') ?? [])];
  for (const v of vips.map(formatIpv4)) if (!ipList.includes(v)) ipList.push(v);
  const params = new Map(b.binding.params);
  params.set('IP', ipList);
  params.set('VIP', vips.map(formatIpv4));
  params.set('RS_MAC', rsMacs);
  const top = rename(b.binding.filter);
  const artifacts: FixArtifact[] = [
    ...files.map((f) => ({ path: nwfilterPath(f.name, dir), content: f.xml })),
    interfaceArtifact(b, top, params, dir),
    bindingArtifact(b, top, params, dir),
  ];
  // The model is built from the artifacts themselves, so what is verified is what the user applies. Performance:
  // parsed when the fix is first applied (static checks propose it again for every scenario they look at).
  let parsedOnce: NwFilter[] | undefined;
  // Performance: the same replacement binding and host filter list (per list it replaces) on every application,
  // so the host's compiled rules are reused.
  const replacement: PortBinding = { ...b, binding: { ...b.binding, filter: top, params } };
  const merged = new WeakMap<object, NwFilter[]>();
  const parsed = () =>
    (parsedOnce ??= files.flatMap((f) => readNwfilterXml(f.xml, nwfilterPath(f.name, dir)).value ?? []));
  return {
    id: `dr-director-filter:${b.host}:${b.binding.portdev}`,
    title: `Bind ${top} to ${b.domain}'s interface ${b.binding.mac}: ${b.binding.filter} whose IPv4 anti-spoofing also passes DR-forwarded frames to VIP ${vips.map(formatIpv4).join(', ')} sent to real-server MACs ${rsMacs.join(', ')}`,
    keeps: `MAC anti-spoofing, ARP anti-spoofing (IP list ${ipList.join(', ')}), IPv4 source checks for the director's own traffic; other IPv4 with a foreign source is still dropped${unknownRs.length ? ` (real servers ${unknownRs.join(', ')} are not in the scenario: add their MACs to RS_MAC)` : ''}`,
    protectionRank: 80,
    artifacts,
    commands: [
      `# on ${commentName(b.host)}: define the filters`,
      ...files.map((f) => shellCommand('virsh', 'nwfilter-define', '--file', nwfilterPath(f.name, dir))),
      `# persistent: replace the <filterref> of interface ${b.binding.mac} with ${dir}/interface-*.txt`,
      editCommand(b),
      ...liveCommands(b, bindingPath(b, dir)),
    ],
    apply: (s) => {
      const next = withBinding(s, b, replacement);
      const filters = new Map(next.filters);
      const before = filters.get(b.host);
      let after = merged.get(before ?? NO_FILTERS);
      if (after === undefined) {
        const fresh = parsed();
        after = [...(before ?? []).filter((f) => !fresh.some((p) => p.name === f.name)), ...fresh];
        merged.set(before ?? NO_FILTERS, after);
      }
      filters.set(b.host, after);
      return { ...next, filters };
    },
  };
}
