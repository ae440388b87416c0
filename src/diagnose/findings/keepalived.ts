/** keepalived: defaults that surprise, vrrp_strict's drop rules, and the VMAC against MAC anti-spoofing. */
import { type Mac, parseMac } from '../../addr/mac.ts';
import type { KeepalivedVrrpInstance } from '../../ipvs/keepalived.ts';
import { implicit } from '../../source/origin.ts';
import { commentName, shellCommand } from '../../source/shell.ts';
import { keepalivedStrictTable } from '../../topology/keepalived-strict.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import { walkFrame } from '../../trace/frame-walk.ts';
import { openSession } from '../../trace/session.ts';
import type { Hop, NetfilterStep } from '../../trace/types.ts';
import type { EthernetFrame } from '../../wire/types.ts';
import { ETHERTYPE_ARP, ETHERTYPE_IPV4 } from '../../wire/types.ts';
import { dropStep, endHop, guestEgressVerdict, tapOf } from '../facts.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { pveDropFixes, pveDropNic } from './pve-drop-fixes.ts';

/**
 * Proxmox: a gratuitous ARP from keepalived's VMAC walked out of the guest through the node; the drop by the
 * guest's own MAC filter (its OUT chain), when there is one.
 */
function pveVmacDrop(
  ctx: DiagnoseContext,
  guest: string,
  iface: string,
  frame: EthernetFrame,
): { hop: Hop; step: NetfilterStep } | undefined {
  const walk = walkFrame(openSession(ctx.loaded), guest, iface, frame, 1_700_000_000_000_000_000n);
  return walk?.drops.find((d) => pveDropNic(d.step).dir === 'OUT');
}

function fromIssues(
  code: string,
  kind: FindingKind,
  title: string,
  explanation: string,
): (ctx: Parameters<NonNullable<FindingKind['check']>>[0]) => Detected[] {
  return (ctx) => {
    const out: Detected[] = [];
    for (const [guest, issues] of ctx.loaded.keepalivedIssues)
      for (const i of issues.filter((x) => x.code === code))
        out.push({
          finding: {
            code: kind.code,
            severity: kind.severity,
            title: `${guest}: ${title} (${i.message})`,
            explanation,
            where: guest,
            culprit: { kind: 'file', label: i.message, ...(i.pos ? { pos: i.pos } : {}) },
          },
          fixes: [],
        });
    return out;
  };
}

export const keepalivedDefaultProtocol: FindingKind = {
  code: 'keepalived-default-protocol',
  severity: 'error',
  title: 'A keepalived virtual_server without protocol is a UDP service',
  source: 'static',
  needs: 'a keepalived.conf virtual_server with no `protocol` line',
  check(ctx) {
    return fromIssues(
      'keepalived-default-protocol',
      this,
      'no protocol, so keepalived creates a UDP service',
      'keepalived defaults a virtual_server without `protocol` to UDP ("no protocol set - defaulting to UDP"): TCP connections to the VIP are not balanced at all. Add `protocol TCP`.',
    )(ctx);
  },
};

export const keepalivedDefaultMethod: FindingKind = {
  code: 'keepalived-default-method',
  severity: 'warning',
  title: 'A keepalived virtual_server without lb_kind programs NAT',
  source: 'static',
  needs: 'a keepalived.conf virtual_server with no `lb_kind`/`lvs_method` line',
  check(ctx) {
    return fromIssues(
      'keepalived-default-method',
      this,
      'no lb_kind, so the real servers are programmed as NAT (Masq)',
      'keepalived defaults the forwarding method to NAT: the real servers then need their replies routed back through the director. For DR write `lb_kind DR`.',
    )(ctx);
  },
};

/** Adds `accept` to strict instances of `guest` (all, or the one named): keepalived then installs no drop rules. */
function acceptFix(guest: string, instance: string): FixProposal {
  return {
    id: `keepalived-accept:${guest}:${instance}`,
    title: `On ${guest}: add \`accept\` to vrrp_instance ${instance} (keepalived then lets traffic to its VIPs in)`,
    keeps:
      'vrrp_strict for everything else (RFC-conformant adverts, no authentication); only the drop of traffic to the VIPs goes',
    protectionRank: 90,
    artifacts: [],
    commands: [
      `# on ${commentName(guest)}: in keepalived.conf, inside vrrp_instance ${commentName(instance)} { … }, add the line`,
      '#     accept',
      shellCommand('systemctl', 'reload', 'keepalived'),
    ],
    apply: (s: LoadedScenario) => {
      const conf = s.keepalived.get(guest);
      const n = s.scenario.nodes.get(guest);
      if (!conf || !n) return s;
      const next = {
        ...conf,
        vrrpInstances: conf.vrrpInstances.map((v) => (v.name === instance ? { ...v, accept: true } : v)),
      };
      const keepalived = new Map(s.keepalived);
      keepalived.set(guest, next);
      const nodes = new Map(s.scenario.nodes);
      const { keepalivedDrops: _old, ...rest } = n;
      const drops = keepalivedStrictTable(next);
      nodes.set(guest, { ...rest, ...(drops ? { keepalivedDrops: drops } : {}) });
      return { ...s, keepalived, scenario: { ...s.scenario, nodes } };
    },
  };
}

function strictFinding(guest: string, v: KeepalivedVrrpInstance): Detected['finding'] {
  return {
    code: 'vrrp-strict-drops',
    severity: 'error',
    title: `${guest}: vrrp_instance ${v.name} is strict without accept — its VIPs drop incoming traffic`,
    explanation: `In strict mode keepalived (2.2.7, seen in the lab) installs its own nft table \`ip keepalived\` with \`ip daddr @vips drop\` in an input chain of priority -1 and \`ip saddr @vips drop\` in an output chain, the set holding the instance's VIPs (${v.virtualIpaddresses.map((x) => x.text).join(', ')}) unless \`accept\` is set: it runs before iptables INPUT and before IPVS (LOCAL_IN, priority 99), so the virtual services never see a packet. Add \`accept\` to the instance (or drop vrrp_strict). (Strict mode also ignores \`authentication\`, and a \`state MASTER\` below priority 255 starts as BACKUP.)`,
    where: guest,
    culprit: { kind: 'file', label: `vrrp_instance ${v.name}`, pos: v.pos },
  };
}

export const vrrpStrictDrops: FindingKind = {
  code: 'vrrp-strict-drops',
  severity: 'error',
  title: 'vrrp_strict makes keepalived drop traffic to the VIPs',
  source: 'static',
  needs: 'a keepalived vrrp_instance in strict mode (vrrp_strict, strict_mode, no_accept) without `accept`',
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    if (!hop || !drop || !drop.nft?.chain.startsWith('ip keepalived')) return undefined;
    const conf = ctx.loaded.keepalived.get(hop.place.node);
    const v = conf?.vrrpInstances.find((x) => x.pos === drop.origin.pos);
    if (!v) return undefined;
    return { finding: strictFinding(hop.place.node, v), fixes: [acceptFix(hop.place.node, v.name)] };
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const [guest, conf] of ctx.loaded.keepalived)
      for (const v of conf.vrrpInstances) {
        if (!v.strict || v.accept || v.virtualIpaddresses.length === 0) continue;
        out.push({ finding: strictFinding(guest, v), fixes: [acceptFix(guest, v.name)] });
      }
    return out;
  },
};

export const vmacBlocked: FindingKind = {
  code: 'vmac-blocked',
  severity: 'error',
  title: "keepalived's VMAC is dropped by MAC anti-spoofing",
  source: 'static',
  needs:
    'a keepalived vrrp_instance with use_vmac on a guest whose port filter drops frames from other MACs (no-mac-spoofing; on Proxmox the MAC filter, macfilter: 1 by default)',
  check(ctx) {
    const out: Detected[] = [];
    for (const [guest, conf] of ctx.loaded.keepalived) {
      const node = ctx.loaded.scenario.nodes.get(guest);
      const port = node && tapOf(ctx.loaded, node);
      if (!port) continue;
      for (const v of conf.vrrpInstances) {
        const vmac = v.useVmac && v.vmac ? parseMac(v.vmac) : undefined;
        if (!vmac) continue;
        const vip = v.virtualIpaddresses.find((x) => x.address.family === 'ipv4');
        const frame = {
          dst: 'ff:ff:ff:ff:ff:ff' as Mac,
          src: vmac,
          vlans: [],
          etherType: ETHERTYPE_ARP,
          payload: {
            kind: 'arp' as const,
            htype: 1,
            ptype: ETHERTYPE_IPV4,
            op: 2,
            sha: vmac,
            spa: (vip?.address.addr ?? 0) as never,
            tha: 'ff:ff:ff:ff:ff:ff' as Mac,
            tpa: (vip?.address.addr ?? 0) as never,
          },
        };
        if (ctx.loaded.proxmox?.has(port.host)) {
          const d = pveVmacDrop(ctx, guest, v.interface ?? port.nic.name, frame);
          if (d)
            out.push({
              finding: {
                code: this.code,
                severity: this.severity,
                title: `${guest}: frames from VMAC ${vmac} (vrrp_instance ${v.name}) are dropped on ${d.hop.place.node}:${d.hop.place.iface ?? ''}`,
                explanation: `With use_vmac keepalived sends its adverts, gratuitous ARP and VIP traffic from ${vmac}; on Proxmox node ${port.host} the guest's MAC filter (macfilter, on unless set to 0) lets frames leave the guest only from its NIC's own MAC, so ${d.step.family === 'bridge' ? 'ebtables' : 'iptables'} ${d.step.chain} "${d.step.ruleText}" drops them and the VIP is unreachable after a failover. Drop use_vmac, or turn the MAC filter off for that guest (macfilter: 0).`,
                where: `${d.hop.place.node}:${d.hop.place.iface ?? ''}`,
                culprit: d.step.origin,
              },
              fixes: pveDropFixes(ctx, d.hop, d.step),
            });
          continue;
        }
        const step = guestEgressVerdict(ctx.loaded, port.host, port.tap, frame);
        if (step?.verdict !== 'DROP') continue;
        out.push({
          finding: {
            code: this.code,
            severity: this.severity,
            title: `${guest}: frames from VMAC ${vmac} (vrrp_instance ${v.name}) are dropped on ${port.host}:${port.tap}`,
            explanation: `With use_vmac keepalived sends its adverts, gratuitous ARP and VIP traffic from ${vmac}; the port filter accepts only the interface's MAC, so ${step.chain} "${step.ruleText}" drops them and the VIP is unreachable after a failover. Drop use_vmac, or bind a filter that accepts the VMAC (e.g. MAC as a list with both addresses).`,
            where: `${port.host}:${port.tap}`,
            culprit: step.origin ?? implicit('filter'),
          },
          fixes: [],
        });
      }
    }
    return out;
  },
};
