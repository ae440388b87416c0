/**
 * Texts the lab feeds to the kernel's tools: the project's compiled ebtables nat table as `ebtables-restore` input
 * (the fallback when no real libvirt is available), and the nftables emulation of an LVS-DR director.
 */
import { EB_BUILTIN_CHAINS, type EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import type { DirectorPlan, DirectorService } from './plan.ts';

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
  | { readonly kind: 'spread' };

function target(svc: DirectorService, mode: DirectorMode): string | undefined {
  if (svc.dests.length === 0) return undefined;
  if (mode.kind === 'fresh' || svc.dests.length === 1) return (svc.firstPick ?? svc.dests[0]!).ip;
  // Weighted: a destination appears once per weight unit (rr ignores weights).
  const slots = svc.scheduler === 'rr' ? svc.dests : svc.dests.flatMap((d) => Array(Math.min(d.weight, 16)).fill(d));
  const map = slots.map((d, k) => `${k} : ${d.ip}`).join(', ');
  return `jhash ip saddr . ${svc.protocol} sport mod ${slots.length} map { ${map} }`;
}

/**
 * An nftables `netdev` table that does what IPVS-DR does to a new flow: frames for the director's MAC, to the VIP
 * and port, leave the same NIC towards the chosen real server with only the MAC addresses changed
 * (`fwd ip to … device`, which resolves the real server's MAC through the director's ARP table, like IPVS).
 * A service without a usable destination drops the packets.
 */
export function directorNft(d: DirectorPlan, mode: DirectorMode): string {
  const lines = ['table netdev lvsdoctor_lab {'];
  d.devices.forEach((dev, k) => {
    lines.push(`  chain ingress${k} {`, `    type filter hook ingress device "${dev.name}" priority 0;`);
    for (const svc of d.services) {
      const m = `ether daddr ${dev.mac} ip daddr ${svc.vip} ${svc.protocol} dport ${svc.port}`;
      const t = target(svc, mode);
      lines.push(t === undefined ? `    ${m} drop` : `    ${m} fwd ip to ${t} device "${svc.outDev}"`);
    }
    lines.push('  }');
  });
  lines.push('}', '');
  return lines.join('\n');
}
