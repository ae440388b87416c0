/**
 * What the kernel here (and the lab built on it) cannot show. A scenario that needs any of it gets no lab verdict:
 * `lab` names each reason and exits 4 — neither a pass nor a failure, and never an internal error. Pure given the
 * kernel's capabilities, so the reasons can be listed without root (the corpus test prints them for every scenario it
 * leaves to the simulator).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { formatIpv4, type Ipv4 } from '../addr/ipv4.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Iface } from '../topology/model.ts';
import { kernelHasIpvs, whichCommand } from './preflight.ts';

/** `lab` cannot show the scenario on this kernel; each reason is one line. */
export class LabLimitError extends Error {
  constructor(readonly reasons: readonly string[]) {
    super(`this kernel cannot show the scenario: ${reasons.join('; ')}`);
  }
}

export interface KernelCapabilities {
  /** IPIP tunnels (`tunl0`): the ipip module is loaded or loadable, or built in. */
  readonly ipip: boolean;
  /** Why not, when `ipip` is false. */
  readonly ipipMissing?: string;
  /** Real IPVS and ipvsadm (otherwise the nftables emulation plays the directors). */
  readonly ipvs: boolean;
  /** 802.1Q VLAN devices (`type vlan`). */
  readonly vlan: boolean;
  /**
   * VLAN-filtering bridges (`ip link set BR type bridge vlan_filtering 1`, CONFIG_BRIDGE_VLAN_FILTERING, which needs
   * 802.1Q): without it the kernel answers "Operation not supported". Absent: not known (taken as there).
   */
  readonly bridgeVlanFiltering?: boolean;
}

/**
 * What /proc/config.gz says of an option: `y`/`m`, `off` (`# … is not set`, or — `absentIsOff` — not listed at all,
 * as an option whose dependencies are off is not), undefined when unknown (no config.gz).
 */
function configSays(option: string, absentIsOff = false): 'y' | 'm' | 'off' | undefined {
  try {
    const text = gunzipSync(readFileSync('/proc/config.gz')).toString('latin1');
    const m = new RegExp(`^${option}=([ym])$`, 'm').exec(text);
    return m ? (m[1] as 'y' | 'm') : absentIsOff || text.includes(`# ${option} is not set`) ? 'off' : undefined;
  } catch {
    return undefined;
  }
}

let known: KernelCapabilities | undefined;
let dummyType: 'dummy' | 'ifb' | undefined;

/**
 * The link type for an interface connected to nothing (a dummy in the model: `docker0` with no containers, a
 * kube-ipvs0-like device holding a VIP): `dummy`, or on a kernel without it (CONFIG_DUMMY not set) `ifb`, which
 * behaves the same for the lab — always up, NOARP, its addresses local, whatever is sent through it dropped.
 */
export function dummyLinkType(): 'dummy' | 'ifb' {
  dummyType ??= existsSync('/sys/module/dummy') || configSays('CONFIG_DUMMY') !== 'off' ? 'dummy' : 'ifb';
  return dummyType;
}

/** The running kernel's capabilities (checked once). */
export function kernelCapabilities(): KernelCapabilities {
  if (known) return known;
  let ipip = existsSync('/sys/module/ipip');
  let ipipMissing: string | undefined;
  if (!ipip) {
    const config = configSays('CONFIG_NET_IPIP');
    const loadable =
      config !== 'off' &&
      whichCommand('modprobe') !== undefined &&
      spawnSync('modprobe', ['-n', '-q', 'ipip'], { stdio: 'ignore', timeout: 5000 }).status === 0;
    ipip = loadable;
    if (!ipip)
      ipipMissing =
        config === 'off'
          ? 'this kernel has no IPIP (CONFIG_NET_IPIP is not set), so no tunl0 can exist'
          : 'this kernel has no ipip module loaded or loadable (modprobe ipip), so no tunl0 can exist';
  }
  known = {
    ipip,
    ...(ipipMissing ? { ipipMissing } : {}),
    ipvs: whichCommand('ipvsadm') !== undefined && kernelHasIpvs(),
    vlan: existsSync('/proc/net/vlan') || configSays('CONFIG_VLAN_8021Q') !== 'off',
    // A bool option (no module): listed `=y` when built; missing when 802.1Q, which it depends on, is off.
    bridgeVlanFiltering: configSays('CONFIG_BRIDGE_VLAN_FILTERING', true) !== 'off',
  };
  return known;
}

/** A tunnel device that is down and has no address: it carries nothing, and the lab need not build it. */
export function idleTunnel(i: Iface): boolean {
  return i.kind === 'tunnel' && !i.up && i.addrs.length === 0;
}

const EMULATED_SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'sed', 'nq', 'fo']);

/** Why the lab cannot show this scenario on a kernel with `caps` (empty: it can). One line each. */
export function labLimits(
  loaded: LoadedScenario,
  caps: KernelCapabilities,
  /**
   * `lab vrrp` runs real keepalived and compares VRRP only (no probe goes through IPVS): keepalived's strict-mode
   * rules are then there, and a director's own tables judge adverts and gratuitous ARPs as the kernel loads them.
   */
  o: { readonly runsKeepalived?: boolean } = {},
): string[] {
  const out: string[] = [];
  const s = loaded.scenario;
  // A tunl0 that is down and has no address (the ipip module merely loaded) carries nothing: the lab leaves it out.
  const tunnels = [...s.nodes.values()].flatMap((n) =>
    [...n.interfaces.values()].filter((i) => i.kind === 'tunnel' && !idleTunnel(i)).map((i) => `${n.name}:${i.name}`),
  );
  const tunServices: string[] = [];
  for (const t of loaded.ipvs.values())
    for (const svc of t.services)
      if (svc.destinations.some((d) => d.forwarding?.kind === 'tunnel'))
        tunServices.push(
          svc.key.kind === 'addr' && svc.key.address.family === 'ipv4'
            ? `${formatIpv4(svc.key.address.addr as Ipv4)}:${svc.key.port}`
            : 'a fwmark service',
        );
  if (tunnels.length > 0 || tunServices.length > 0) {
    const what = [
      ...(tunnels.length ? [`tunnel devices ${tunnels.join(', ')}`] : []),
      ...(tunServices.length ? [`TUN (ipip) services ${tunServices.join(', ')}`] : []),
    ].join('; ');
    if (!caps.ipip) out.push(`IPIP (LVS-TUN): ${caps.ipipMissing ?? 'no ipip here'} (${what})`);
    else if (tunServices.length > 0 && !caps.ipvs)
      out.push(
        `IPIP (LVS-TUN): the nftables director emulation cannot encapsulate, and there is no IPVS here (${what})`,
      );
    else out.push(`IPIP (LVS-TUN): the lab does not build tunl0 devices yet (${what})`);
  }
  const conns = [...(loaded.ipvsConnections ?? [])].filter(([, l]) => l.rows.length > 0);
  if (conns.length > 0)
    out.push(
      `pinned connections (ipvsadm -Lnc on ${conns.map(([d, l]) => `${d}: ${l.rows.length}`).join(', ')}): a lab director starts with an empty connection table; IPVS makes entries only for traffic it schedules, and the lab does not replay the listed connections before its probes (the nftables emulation keeps no IPVS connection state at all)`,
    );
  // A guest's own iptables-save is loaded into its namespace (a real server's filter INPUT is the kernel's), but a
  // director's own tables meet IPVS's packets where IPVS hooks (mangle before it, filter INPUT before ip_vs_in, OUTPUT
  // and nat POSTROUTING on what it transmits): the lab's nftables emulation of IPVS forwards DR at netdev ingress, before
  // all of them, and NAT by `dup` at input, so it would differ for that reason alone.
  const ownTables = [...s.nodes.values()].flatMap((n) => {
    if (!loaded.ipvs.has(n.name)) return [];
    const t = (['mangle', 'nat', 'filter', 'raw'] as const).filter((k) => n[k] !== undefined);
    return t.length > 0 ? [`${n.name} (${t.join(', ')})`] : [];
  });
  // `lab vrrp` sends no probe through IPVS: VRRP adverts and gratuitous ARPs meet the director's tables as they load.
  if (ownTables.length > 0 && !o.runsKeepalived)
    out.push(
      `a director's own iptables tables (${ownTables.join(', ')}): the lab emulates IPVS with nftables (DR at netdev ingress, NAT by dup at input), which does not pass them where IPVS does; the lab loads the guest's rule set, but only real IPVS would be judged by it as the simulator judges it`,
    );
  // A Proxmox node's live listings (what `import` names when its bundle has them): an `ebtables -L` listing cannot be
  // loaded into a kernel, and the lab loads a host's iptables-save without the sets it matches.
  const live = [
    ...[...(loaded.installedEbFilter?.keys() ?? [])].map((h) => `${h} (ebtables-filter)`),
    ...[...(loaded.proxmox?.keys() ?? [])]
      .filter((h) => loaded.hostRuleSets?.has(h))
      .map((h) => `${h} (iptables-save with pve-firewall's ipsets)`),
  ];
  if (live.length > 0)
    out.push(
      `a Proxmox node's live rules (${live.join(', ')}): the lab loads the rules /etc/pve compiles to, not an \`ebtables -L\` listing or a node's live ipsets; remove those keys from scenario.yaml to run what /etc/pve compiles to`,
    );
  // proxmox-firewall (host.fw nftables: 1): the lab loads pve-firewall's form only. Its guest table could not be
  // loaded on every kernel either: `ct state` in the bridge family needs nf_conntrack_bridge, `reject` there
  // nft_reject_bridge (`nft -f` of upstream's skeleton fails on kernels without them).
  const nftNodes = [...(loaded.proxmox ?? [])].filter(([, p]) => p.nft?.guests !== undefined).map(([h]) => h);
  if (nftNodes.length > 0)
    out.push(
      `proxmox-firewall's guest table (nftables: 1, a guest with its firewall on) on ${nftNodes.join(', ')}: the lab loads only its inet table; the guest table needs bridge-family conntrack (nf_conntrack_bridge) and bridge reject, which not every kernel has; the simulator evaluates it`,
    );
  const bonds = [...s.nodes.values()].flatMap((n) =>
    [...n.interfaces.values()].filter((i) => i.kind === 'bond').map((i) => `${n.name}:${i.name}`),
  );
  if (bonds.length > 0) out.push(`bonds (${bonds.join(', ')}) are not built by the lab`);
  const vlans = [...s.nodes.values()].flatMap((n) =>
    [...n.interfaces.values()].filter((i) => i.kind === 'vlan').map((i) => `${n.name}:${i.name}`),
  );
  if (vlans.length > 0 && !caps.vlan)
    out.push(
      `VLAN devices (${vlans.join(', ')}): this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q is not set)`,
    );
  const vlanFiltering = [...s.nodes.values()].flatMap((n) =>
    [...n.interfaces.values()].filter((i) => i.vlanFiltering).map((i) => `${n.name}:${i.name}`),
  );
  if (vlanFiltering.length > 0)
    out.push(
      caps.bridgeVlanFiltering === false
        ? `VLAN-filtering bridges (${vlanFiltering.join(', ')}): this kernel cannot make them (CONFIG_BRIDGE_VLAN_FILTERING is not set: \`ip link set BRIDGE type bridge vlan_filtering 1\` fails with "Operation not supported")`
        : `VLAN-filtering bridges (${vlanFiltering.join(', ')}): the lab does not set bridge vlan_filtering or the ports' VLANs yet`,
    );
  if (!caps.ipvs)
    for (const [d, t] of loaded.ipvs)
      for (const svc of t.services) {
        if (svc.key.kind === 'fwmark') {
          out.push(
            `fwmark service ${svc.key.fwmark} on ${d}: the nftables emulation (no IPVS here) programs address services only`,
          );
          continue;
        }
        const sched = svc.scheduler ?? 'rr';
        if (!EMULATED_SCHEDULERS.has(sched))
          out.push(
            `scheduler ${sched} on ${d}: the nftables emulation (no IPVS here) has no ${sched}; its choice of real server cannot be reproduced`,
          );
      }
  for (const [g, k] of loaded.keepalived)
    for (const inst of k.vrrpInstances)
      if ((inst.strict || k.globals.vrrpStrict) && !inst.accept && !o.runsKeepalived)
        out.push(
          `keepalived vrrp_strict without accept on ${g} (${inst.name}): lab run runs no keepalived, so the nft drop rules it installs for the VIPs (ip keepalived, input priority -1, before the DR emulation's netdev ingress would not see them anyway) are not there; lab vrrp runs keepalived but sends no probes`,
        );
  return [...new Set(out)];
}
