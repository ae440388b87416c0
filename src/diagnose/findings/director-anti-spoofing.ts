import { formatIpv4, ipv4 } from '../../addr/ipv4.ts';
import { findOrigin } from '../../source/origin.ts';
import type { Node } from '../../topology/model.ts';
import type { NetfilterStep } from '../../trace/types.ts';
import {
  bindingAt,
  endHop,
  guestEgressDrop,
  guestEgressVerdict,
  ipv4Services,
  nicOwning,
  ownsAddress,
  serviceVip,
  synFrame,
  tapOf,
} from '../facts.ts';
import { drDirectorFilterFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { pveDirectorDrop } from './pve-director.ts';

/** A client address for questions asked of the configuration alone (documentation range). */
const ANY_CLIENT = ipv4('203.0.113.77');

function explain(
  ctx: DiagnoseContext,
  host: string,
  tap: string,
  guest: Node,
  clientIp: number,
  drop: NetfilterStep,
  kind: FindingKind,
  example = false,
): Detected {
  const b = bindingAt(ctx.loaded, host, tap);
  const ipList = b?.binding.params.get('IP') ?? [];
  const filter = findOrigin(drop.origin, 'nwfilter-rule')?.data?.filter ?? 'the filter';
  const bridge = ctx.loaded.scenario.nodes.get(host)?.interfaces.get(tap)?.master ?? '?';
  const fixes: FixProposal[] = [];
  if (b) {
    const safer = drDirectorFilterFix(ctx.loaded, b, guest.name);
    if (safer) fixes.push(safer);
    fixes.push(removeFilterrefFix(b));
  }
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${host} drops what director ${guest.name} forwards: ${drop.chain} ${drop.ruleText}`,
      explanation:
        `In DR mode IPVS rewrites only the MAC addresses; the IP header keeps the client's source address ` +
        `${example ? `(any client; e.g. ${formatIpv4(clientIp as never)})` : formatIpv4(clientIp as never)}. On ${host}, bridge ${bridge}, port ${tap}, the libvirt filter ` +
        `${String(filter)} lets IPv4 leave the guest only from ${ipList.length ? `IP=${ipList.join(',')}` : 'its learned address'}, ` +
        `so every forwarded frame is taken for spoofing and dropped by ${drop.chain} rule ${drop.ruleNumber ?? '(policy)'} ` +
        `"${drop.ruleText}".`,
      where: `${host}:${tap}`,
      culprit: drop.origin,
    },
    fixes,
  };
}

/** The founding case: a DR director's port filter drops what the director forwards. */
export const directorAntiSpoofing: FindingKind = {
  code: 'director-anti-spoofing',
  severity: 'error',
  title: "The director's port filter drops the packets it forwards",
  source: 'trace',
  needs:
    "a frame forwarded by an IPVS director (client source address) dropped by an ebtables rule at the director's tap, or on a Proxmox host by pve-firewall's IP filter on the director NIC — in a trace, or (libvirt) for a made-up client address",
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    // a Proxmox node's drop is told in its own terms first (on an nftables node it also meets the tap)
    const pve = pveDirectorDrop(ctx, trace, this);
    if (pve) return pve;
    const d = guestEgressDrop(ctx.loaded, endHop(trace));
    if (!d) return undefined;
    if (!ctx.loaded.ipvs.has(d.guest.name)) return undefined;
    const p = d.hop.frame.payload;
    if (p.kind !== 'ipv4' || ownsAddress(d.guest, p.src)) return undefined;
    return explain(ctx, d.host, d.tap, d.guest, p.src, d.drop, this);
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const name of ctx.loaded.ipvs.keys()) {
      const director = ctx.loaded.scenario.nodes.get(name);
      const port = director && tapOf(ctx.loaded, director);
      if (!director || !port) continue;
      for (const svc of ipv4Services(ctx.loaded, name)) {
        const d = svc.destinations.find(
          (x) => (x.forwarding?.kind ?? 'route') === 'route' && x.address.family === 'ipv4',
        );
        if (!d || svc.key.kind !== 'addr') continue;
        const rsMac = nicOwning(ctx.loaded, d.address.addr as never)?.iface.mac ?? port.nic.mac;
        const frame = synFrame(port.nic.mac, rsMac, ANY_CLIENT, serviceVip(svc)!, svc.key.port);
        const step = guestEgressVerdict(ctx.loaded, port.host, port.tap, frame);
        if (step?.verdict === 'DROP') {
          out.push(explain(ctx, port.host, port.tap, director, ANY_CLIENT, step, this, true));
          break;
        }
      }
    }
    return out;
  },
};
