/**
 * A scenario host declared `platform: proxmox`: its copy of `/etc/pve` read into what the rest of the model knows —
 * one domain-like definition per guest (each NIC a tap on its bridge: `fwbrXiY` when `firewall=1`, else `vmbrN`),
 * the `fwlnXiY`/`fwprXpY` veth pair joining each firewall bridge to its vmbr, and the iptables filter table and
 * ipsets pve-firewall generates for the node (`src/proxmox` compiler), every rule keeping its Proxmox origin. With
 * host.fw `nftables: 1` the node is proxmox-firewall's instead: taps straight in their vmbr, and its
 * `inet proxmox-firewall` and `bridge proxmox-firewall-guests` tables (`compile-nft.ts`, `nft-model.ts`).
 * Layout read (as on a node): `firewall/cluster.fw`, `firewall/<vmid>.fw`, `nodes/<node>/host.fw`,
 * `nodes/<node>/qemu-server/<vmid>.conf`, `nodes/<node>/lxc/<vmid>.conf`. Never throws.
 */
import { posix } from 'node:path';
import { parseMac } from '../addr/mac.ts';
import type { Domain, DomainInterface } from '../libvirt/domain-xml.ts';
import type { EbTable } from '../netfilter/ebtables-model.ts';
import { readEbtablesSave } from '../netfilter/ebtables-read.ts';
import type { IpsetSet } from '../netfilter/ipset.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import {
  compilePveFirewall,
  type PveCompiled,
  type PveNodeInput,
  renderPveEbtablesRestore,
} from '../proxmox/compile.ts';
import { compileProxmoxFirewallNft } from '../proxmox/compile-nft.ts';
import type { GuestKind } from '../proxmox/guest-config.ts';
import { guestIface } from '../proxmox/guest-config.ts';
import { pveFilterTable, pveIpsets } from '../proxmox/model.ts';
import type { PveBridgeConf } from '../proxmox/network-interfaces.ts';
import { type PveNftModel, pveNftModel } from '../proxmox/nft-model.ts';
import { type PveGuestSource, type PveNodeFiles, pveNodeInput } from '../proxmox/node-files.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit, type Origin, type Position } from '../source/origin.ts';
import type { Iface } from './model.ts';

/** The veth pair pve-firewall's bridge setup adds between a guest NIC's firewall bridge and its vmbr. */
export interface PveVethPair {
  /** `fwbr100i0`, the bridge the guest's tap is a port of. */
  readonly fwbr: string;
  /** `fwln100i0`, the end on the firewall bridge. */
  readonly fwln: string;
  /** `fwpr100p0`, the end on the vmbr. */
  readonly fwpr: string;
  /** `vmbr0`. */
  readonly bridge: string;
  readonly pos: Position;
}

export interface PveHost {
  /** Guest name (the config's `name:`, else its vmid) → its NICs as a domain. */
  readonly domains: readonly Domain[];
  readonly pairs: readonly PveVethPair[];
  readonly input: PveNodeInput;
  readonly compiled: PveCompiled;
  /**
   * The host's own filter rules: pve-firewall's generated filter table (built-in chains jumping to PVEFW-*), or
   * with host.fw `nftables: 1` proxmox-firewall's `inet proxmox-firewall`; undefined when the firewall is off.
   */
  readonly filter4?: IptTable;
  /**
   * host.fw `nftables: 1`: proxmox-firewall filters (both its tables, as the evaluator's model); no fwbr bridges, and
   * pve-firewall's iptables/ebtables rules are not installed.
   */
  readonly nft?: PveNftModel;
  readonly ipsets: ReadonlyMap<string, IpsetSet>;
  /** The generated ebtables filter table (MAC filter, ARP sender allow-list), hooked into FORWARD. */
  readonly ebFilter?: EbTable;
  /** The files it was built from (fixes edit them and rebuild with `pveHostFrom`). */
  readonly files: PveNodeFiles;
}

export interface PveFiles {
  read(rel: string): string | undefined;
  list(rel: string): readonly string[] | undefined;
}

/**
 * Reads the node `nodeName` (default: the only directory under `nodes/`) of the `/etc/pve` copy at `dir`; `label`
 * is how messages name that directory, `at` the scenario position blamed for a missing layout.
 */
export function readPveHost(
  files: PveFiles,
  dir: string,
  label: string,
  at: Position,
  nodeName: string | undefined,
): { value: PveHost | undefined; issues: Issue[] } {
  const issues: Issue[] = [];
  const rel = (...p: string[]) => posix.join(dir, ...p);
  const name = (...p: string[]) => posix.join(label, ...p);
  const nodes = files.list(rel('nodes'));
  if (nodes === undefined) {
    issues.push(issue('scenario.pve', `expected a copy of /etc/pve with a nodes/ directory in ${name()}`, at));
    return { value: undefined, issues };
  }
  const node = nodeName ?? (nodes.length === 1 ? nodes[0] : undefined);
  if (node === undefined || !nodes.includes(node)) {
    issues.push(
      issue(
        'scenario.pve',
        node === undefined
          ? `${name('nodes')} holds ${nodes.length} nodes (${nodes.join(', ') || 'none'}): expected pve-node: NAME`
          : `no node "${node}" in ${name('nodes')} (found: ${nodes.join(', ') || 'none'})`,
        at,
      ),
    );
    return { value: undefined, issues };
  }
  const text = (...p: string[]) => {
    const t = files.read(rel(...p));
    return t === undefined ? undefined : { file: name(...p), text: t };
  };
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  for (const [kind, sub] of [
    ['qemu', 'qemu-server'],
    ['lxc', 'lxc'],
  ] as const satisfies readonly (readonly [GuestKind, string])[]) {
    for (const f of [...(files.list(rel('nodes', node, sub)) ?? [])].sort()) {
      const m = /^(\d+)\.conf$/.exec(f);
      if (!m) continue;
      const conf = text('nodes', node, sub, f);
      if (!conf) continue;
      guests.push({ kind, vmid: m[1]!, conf });
      const fw = text('firewall', `${m[1]}.fw`);
      if (fw) guestFw.set(m[1]!, fw);
    }
  }
  const cluster = text('firewall', 'cluster.fw');
  const host = text('nodes', node, 'host.fw');
  const corosync = text('corosync.conf');
  const files_: PveNodeFiles = {
    nodeName: node,
    guestFw,
    guests,
    ...(cluster ? { cluster } : {}),
    ...(host ? { host } : {}),
    ...(corosync ? { corosync } : {}),
  };
  const built = pveHostFrom(files_);
  appendAll(issues, built.issues);
  return { value: built.value, issues };
}

/** Builds the host model from a node's files: guests as domains, veth pairs, the compiled rules. */
export function pveHostFrom(files: PveNodeFiles): { value: PveHost | undefined; issues: Issue[] } {
  const issues: Issue[] = [];
  const r = pveNodeInput(files);
  appendAll(issues, r.issues);
  const input = r.value;
  if (!input) return { value: undefined, issues };
  const compiled = compilePveFirewall(input);
  // host.fw nftables: 1: proxmox-firewall filters instead — no fwbr bridges (qemu-server's tap_plug puts the tap in
  // the vmbr), its two nftables tables, and pve-firewall removes its own rules (fact sheet §2.2, §3)
  const nftBackend = Number(input.host.options.nftables ?? 0) === 1;
  let nft: PveNftModel | undefined;
  if (nftBackend) {
    const n = compileProxmoxFirewallNft(input);
    appendAll(issues, n.issues);
    nft = pveNftModel(n);
    appendAll(issues, nft.issues);
  } else appendAll(issues, compiled.issues);
  const domains: Domain[] = [];
  const pairs: PveVethPair[] = [];
  for (const g of input.guests) {
    const c = g.config;
    const interfaces: DomainInterface[] = [];
    for (const nic of c.nics) {
      const mac = parseMac(nic.mac);
      if (mac === undefined || nic.bridge === undefined) {
        issues.push({
          ...issue(
            'scenario.pve-nic',
            `${c.vmid} ${nic.netid}: ${mac === undefined ? `MAC "${nic.mac}" not understood` : 'no bridge='}: left out of the model`,
            nic.pos,
            'warning',
          ),
          unsupported: true,
        });
        continue;
      }
      const tap = guestIface(c, nic);
      const fwbr = `fwbr${c.vmid}i${nic.index}`;
      const origin = { kind: 'file' as const, label: `${c.vmid} ${nic.netid}: ${nic.value}`, pos: nic.pos };
      const viaFwbr = nic.firewall && !nftBackend;
      interfaces.push({ type: 'bridge', mac, targetDev: tap, sourceBridge: viaFwbr ? fwbr : nic.bridge, origin });
      if (viaFwbr)
        pairs.push({
          fwbr,
          fwln: `fwln${c.vmid}i${nic.index}`,
          fwpr: `fwpr${c.vmid}p${nic.index}`,
          bridge: nic.bridge,
          pos: nic.pos,
        });
    }
    domains.push({
      name: c.name ?? c.vmid,
      interfaces,
      origin: { kind: 'file', label: `guest ${c.vmid}`, pos: { file: c.file, line: 0 } },
    });
  }
  let filter4: IptTable | undefined = nft?.host;
  if (compiled.enabled && !nftBackend) {
    const t = pveFilterTable(compiled.filter4, 'ipv4');
    appendAll(issues, t.issues);
    filter4 = t.table;
  }
  return {
    value: {
      domains,
      pairs,
      input,
      compiled,
      ...(filter4 ? { filter4 } : {}),
      ...(nft ? { nft } : {}),
      ipsets: nft ? nft.ipsets : pveIpsets(compiled.ipsets),
      ...(compiled.enabled && !nftBackend ? pveEbFilter(compiled, issues) : {}),
      files,
    },
    issues,
  };
}

/**
 * The ebtables filter table pve-firewall applies (`ebtables-restore`, then `-A FORWARD -j PVEFW-FORWARD` when the
 * hook is missing: fact sheet §4.9), read back with the `ebtables-save` reader, each rule given the origin the
 * compiler recorded (same chains, same order).
 */
export function pveEbFilter(compiled: PveCompiled, issues: Issue[]): { ebFilter?: EbTable } {
  if (!compiled.ebtables.has('PVEFW-FORWARD')) return {};
  const r = readEbtablesSave(renderPveEbtablesRestore(compiled.ebtables), 'pve-firewall ebtables');
  appendAll(issues, r.issues);
  const t = r.value?.find((x) => x.name === 'filter');
  if (!t) return {};
  const hook = readEbtablesSave(
    '*filter\n:FORWARD ACCEPT\n:PVEFW-FORWARD ACCEPT\n-A FORWARD -j PVEFW-FORWARD\n',
    'hook',
  ).value?.[0]?.chains.find((c) => c.name === 'FORWARD')?.rules[0];
  const chains = t.chains.map((c) => {
    const gen = compiled.ebtables.get(c.name);
    if (gen) return { ...c, rules: c.rules.map((x, i) => (gen[i] ? { ...x, origin: gen[i]!.origin } : x)) };
    if (c.name === 'FORWARD' && c.rules.length === 0 && hook)
      return { ...c, rules: [{ ...hook, origin: implicit('pve-firewall hook ebtables FORWARD → PVEFW-FORWARD') }] };
    return c;
  });
  return { ebFilter: { ...t, chains } };
}

type MutIface = { -readonly [K in keyof Iface]: Iface[K] };

/**
 * A Proxmox node's guest VLANs (`netN: …,tag=T`) on its bridges (fact sheet §2.1, `tap_plug`): on a VLAN-aware
 * vmbr (`bridge-vlan-aware yes` in /etc/network/interfaces) the guest's port there — the tap, or with
 * `firewall=1` the `fwprXpY` end — gets `pvid T untagged` (and its `trunks`), a NIC without a tag VLAN 1 untagged
 * plus the bridge's `bridge-vids` tagged, the uplinks (`bridge-ports`) `bridge-pvid` untagged and `bridge-vids`
 * tagged; on a vmbr that is not VLAN-aware the port is plugged into `vmbrNvT` instead, a bridge holding the
 * uplink's VLAN device `<uplink>.T`. Without an interfaces file a vmbr is taken as not VLAN-aware (said so).
 */
export function wirePveVlans(
  pve: PveHost,
  bridges: ReadonlyMap<string, PveBridgeConf> | undefined,
  ifaces: Map<string, MutIface>,
  assumptions: string[],
  hostName: string,
): void {
  const pairsByFwbr = new Map(pve.pairs.map((p) => [p.fwbr, p]));
  const assumed = new Set<string>();
  const uplinksOf = (bridge: string): string[] => {
    const conf = bridges?.get(bridge);
    if (conf) return conf.ports.filter((p) => ifaces.has(p));
    return [...ifaces.values()]
      .filter((i) => i.master === bridge && i.kind !== 'tap' && !/^(fwpr|tap|veth)\d/.test(i.name))
      .map((i) => i.name);
  };
  const awareBridges = new Set<string>();
  for (const g of pve.input.guests)
    for (const nic of g.config.nics) {
      if (nic.bridge === undefined) continue;
      const tap = guestIface(g.config, nic);
      const port = nic.firewall ? pairsByFwbr.get(`fwbr${g.config.vmid}i${nic.index}`)?.fwpr : tap;
      const p = port === undefined ? undefined : ifaces.get(port);
      if (!p) continue;
      const conf = bridges?.get(nic.bridge);
      const origin: Origin = {
        kind: 'file',
        label: `${g.config.vmid} ${nic.netid}: ${nic.value}`,
        pos: nic.pos,
      };
      if (conf?.vlanAware) {
        awareBridges.add(nic.bridge);
        const trunks = nic.trunks ?? [];
        p.bridgeVlans =
          nic.tag !== undefined
            ? { pvid: nic.tag, untagged: [nic.tag], tagged: trunks, origin }
            : { pvid: 1, untagged: [1], tagged: trunks.length > 0 ? trunks : conf.vids, origin };
        continue;
      }
      if (nic.tag === undefined) continue;
      if (!conf && !assumed.has(nic.bridge)) {
        assumed.add(nic.bridge);
        assumptions.push(
          `${hostName}: ${nic.bridge} assumed not VLAN-aware (no network-interfaces: its bridge-vlan-aware is unknown), so tagged guest ports sit on ${nic.bridge}v<tag>`,
        );
      }
      const vbr = `${nic.bridge}v${nic.tag}`;
      p.master = vbr;
      const ups = uplinksOf(nic.bridge);
      if (!ifaces.has(vbr))
        ifaces.set(vbr, {
          name: vbr,
          kind: 'bridge',
          mac: (ups[0] ? ifaces.get(ups[0])?.mac : undefined) ?? p.mac,
          addrs: [],
          up: true,
          origin: { ...origin, label: `${origin.label} (tag=${nic.tag} on ${nic.bridge}, not VLAN-aware: ${vbr})` },
        });
      for (const u of ups) {
        const name = `${u}.${nic.tag}`;
        if (ifaces.has(name)) continue;
        ifaces.set(name, {
          name,
          kind: 'vlan',
          mac: ifaces.get(u)!.mac,
          addrs: [],
          up: true,
          lower: u,
          vlanId: nic.tag,
          master: vbr,
          origin: { ...origin, label: `${origin.label} (${vbr} bridges ${u} VLAN ${nic.tag})` },
        });
      }
    }
  for (const name of awareBridges) {
    const conf = bridges!.get(name)!;
    const br = ifaces.get(name);
    if (!br) continue;
    const origin: Origin = { kind: 'file', label: `iface ${name}: bridge-vlan-aware yes`, pos: conf.vlanAwarePos };
    br.vlanFiltering = true;
    br.bridgeVlans = { pvid: conf.pvid, untagged: [conf.pvid], tagged: [], origin };
    for (const u of conf.ports) {
      const up = ifaces.get(u);
      if (up)
        up.bridgeVlans = {
          pvid: conf.pvid,
          untagged: [conf.pvid],
          tagged: conf.vids,
          origin: { kind: 'file', label: `iface ${name}: bridge-ports ${u}, bridge-vids`, pos: conf.vidsPos },
        };
    }
  }
}
