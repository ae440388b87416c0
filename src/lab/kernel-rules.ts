/**
 * Texts the lab feeds to the kernel's tools: the project's compiled ebtables nat table as `ebtables-restore` input
 * (the fallback when no real libvirt is available), the nftables emulation of an LVS director (DR and NAT) for kernels
 * without IPVS, and `ipvsadm -R` input for kernels with it.
 */
import { KERNEL_SCHEDULERS } from '../ipvs/schedulers.ts';
import { EB_BUILTIN_CHAINS, type EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { DirectorDest, DirectorPlan, DirectorService } from './plan.ts';

/** `ebtables-restore` input for one table (user chains keep their policy, RETURN by default). */
export function ebtablesRestoreText(table: EbTable): string {
  const lines = [`*${table.name}`];
  const builtins = EB_BUILTIN_CHAINS[table.name];
  for (const b of builtins) {
    const c = table.chains.find((x) => x.name === b);
    lines.push(`:${b} ${c?.policy ?? 'ACCEPT'}`);
  }
  for (const c of table.chains) if (!builtins.includes(c.name)) lines.push(`:${c.name} ${c.policy}`);
  for (const c of table.chains)
    for (const r of c.rules) lines.push(`-A ${c.name} ${renderEbtablesRule(r, { style: 'nft' })}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export type DirectorMode =
  /** Every new flow to the first pick of a fresh IPVS (probes reload the table before each run). */
  | { readonly kind: 'fresh' }
  /** Flows spread over the real servers by a hash of the client address and port (interactive `lab up`). */
  | { readonly kind: 'spread' }
  /**
   * New flows of one service (`VIP:port/tcp|udp`) to one of its real servers (a probe pinned to it: IPVS's scheduler
   * would pick it for some client flow); the other services as `fresh`.
   */
  | {
      readonly kind: 'pinned';
      readonly service: string;
      readonly dest: { readonly ip: string; readonly port: number };
    };

/** The key `pinned` names a service by. */
export function serviceKey(svc: { vip: string; port: number; protocol: string }): string {
  return `${svc.vip}:${svc.port}/${svc.protocol}`;
}

/** The destination a pinned mode sends the service's new flows to, when it names this service. */
function pinnedDest(svc: DirectorService, mode: DirectorMode): DirectorDest | undefined {
  if (mode.kind !== 'pinned' || mode.service !== serviceKey(svc)) return undefined;
  return svc.allDests.find((d) => d.ip === mode.dest.ip && d.port === mode.dest.port);
}

/** The destinations a service's new flows go to, as an nftables expression mapping each flow to a value. */
function choice(svc: DirectorService, mode: DirectorMode, value: (d: DirectorDest) => string): string | undefined {
  const pinned = pinnedDest(svc, mode);
  if (pinned) return value(pinned);
  if (svc.dests.length === 0) return undefined;
  if (mode.kind !== 'spread' || svc.dests.length === 1) return value(svc.firstPick ?? svc.dests[0]!);
  // Weighted: a destination appears once per weight unit (rr ignores weights). A hash of the client's address and
  // port keeps every packet of a connection on one server (numgen would not).
  const slots = svc.scheduler === 'rr' ? svc.dests : svc.dests.flatMap((d) => Array(Math.min(d.weight, 16)).fill(d));
  const values = slots.map(value);
  if (new Set(values).size === 1) return values[0];
  const map = values.map((v, k) => `${k} : ${v}`).join(', ');
  // One fixed seed: the address and the port of a NAT destination are two hashes that must agree.
  return `jhash ip saddr . ${svc.protocol} sport mod ${slots.length} seed 0x6c766473 map { ${map} }`;
}

const NFT_TABLES = ['netdev lvsdoctor_lab', 'ip lvsdoctor_lab'] as const;

/**
 * nftables that do to a new flow what IPVS does, for a kernel without IPVS.
 *
 * DR (`netdev` ingress): frames for the director's MAC, to the VIP and port, leave the same NIC towards the chosen
 * real server with only the MAC addresses changed (`fwd ip to … device`, which resolves the real server's MAC
 * through the director's ARP table, like IPVS-DR) — or, when the director's route to the real server goes `via` a
 * router, the router's MAC, as `ip_vs_dr_xmit` resolves the route's next hop.
 *
 * NAT (`ip` table): at LOCAL_IN, where IPVS hooks, after the reverse-path filter, a packet to VIP:port gets the
 * real server's address and port (the checksums updated), is remembered in a set of connections, and is sent by
 * `dup to` — routed to the real server from the director's own stack without the forwarding check, with the TTL
 * decremented, as `ip_vs_nat_xmit` does — and the original dropped. The real server's reply reaches the director as
 * its gateway and is routed by the kernel (`ip_forward` and `rp_filter` as configured); at FORWARD, where IPVS's
 * `ip_vs_out` hooks, a reply of a remembered connection gets the VIP and port back as its source. Replies of
 * connections the director did not schedule (a client talking to a real server directly) pass unchanged, as with
 * IPVS.
 *
 * A service without a usable destination is rejected with ICMP port unreachable at LOCAL_IN, as IPVS does.
 */
export function directorNft(d: DirectorPlan, mode: DirectorMode): string {
  const dr = d.services.filter((s) => s.method === 'route' && s.dests.length > 0);
  const nat = d.services.filter((s) => s.method === 'masq' && s.dests.length > 0);
  const none = d.services.filter((s) => s.dests.length === 0);
  const lines: string[] = [];
  if (dr.length > 0) {
    lines.push('table netdev lvsdoctor_lab {');
    d.devices.forEach((dev, k) => {
      lines.push(`  chain ingress${k} {`, `    type filter hook ingress device "${dev.name}" priority 0;`);
      for (const svc of dr) {
        const m = `ether daddr ${dev.mac} ip daddr ${svc.vip} ${svc.protocol} dport ${svc.port}`;
        // To the real server, or to the router the director's route to it names (the frame still carries the VIP).
        lines.push(`    ${m} fwd ip to ${choice(svc, mode, (x) => x.via ?? x.ip)} device "${svc.outDev}"`);
      }
      lines.push('  }');
    });
    lines.push('}');
  }
  if (nat.length > 0 || none.length > 0) {
    lines.push('table ip lvsdoctor_lab {');
    nat.forEach((_svc, k) => {
      lines.push(
        `  set conn${k} { type ipv4_addr . inet_service . ipv4_addr . inet_service; flags dynamic, timeout; timeout 15m; }`,
      );
    });
    lines.push('  chain input {', '    type filter hook input priority 98;');
    nat.forEach((svc, k) => {
      const p = svc.protocol;
      lines.push(
        `    ip daddr ${svc.vip} ${p} dport ${svc.port} ip daddr set ${choice(svc, mode, (x) => x.ip)} ${p} dport set ${choice(svc, mode, (x) => String(x.port))} update @conn${k} { ip saddr . ${p} sport . ip daddr . ${p} dport } dup to ip daddr device "${svc.outDev}" drop`,
      );
    });
    for (const svc of none)
      lines.push(`    ip daddr ${svc.vip} ${svc.protocol} dport ${svc.port} reject with icmp type port-unreachable`);
    lines.push('  }');
    if (nat.length > 0) {
      lines.push('  chain forward {', '    type filter hook forward priority 100;');
      nat.forEach((svc, k) => {
        const p = svc.protocol;
        lines.push(
          `    ip daddr . ${p} dport . ip saddr . ${p} sport @conn${k} ip saddr set ${svc.vip} ${p} sport set ${svc.port}`,
        );
      });
      lines.push('  }');
    }
    lines.push('}');
  }
  lines.push('');
  return lines.join('\n');
}

/** `nft -f` input replacing the director's emulation (idempotent: the tables are created, deleted, recreated). */
export function directorNftReload(d: DirectorPlan, mode: DirectorMode): string {
  const reset = NFT_TABLES.flatMap((t) => [`table ${t} {}`, `delete table ${t}`]);
  return `${reset.join('\n')}\n${directorNft(d, mode)}`;
}

// ipvsadm passes the name to the kernel, which loads ip_vs_<name> (twos too, since Linux 6.2).
const IPVSADM_SCHEDULERS: ReadonlySet<string> = new Set(KERNEL_SCHEDULERS);

/** `ipvsadm -R` input programming real IPVS with the director's services (for kernels that have it). */
export function ipvsadmRestoreText(d: DirectorPlan, mode: DirectorMode = { kind: 'fresh' }): string {
  const lines: string[] = [];
  for (const svc of d.services) {
    const p = svc.protocol === 'udp' ? '-u' : '-t';
    const sched = IPVSADM_SCHEDULERS.has(svc.scheduler) ? svc.scheduler : 'rr';
    // Pinned: the chosen real server is the only one with a weight, so IPVS itself must send the new flow there.
    const pinned = pinnedDest(svc, mode);
    lines.push(`-A ${p} ${svc.vip}:${svc.port} -s ${sched}`);
    for (const x of svc.allDests)
      lines.push(
        `-a ${p} ${svc.vip}:${svc.port} -r ${x.ip}:${x.port} ${svc.method === 'masq' ? '-m' : '-g'} -w ${pinned ? (x === pinned ? Math.max(1, x.weight) : 0) : x.weight}`,
      );
  }
  lines.push('');
  return lines.join('\n');
}
