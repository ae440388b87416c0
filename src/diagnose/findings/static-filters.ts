/** Static checks of the filter bindings of directors: IP learning, IPv6 VIPs. */
import { formatServiceKey } from '../../ipvs/model.ts';
import { ETHERTYPE_IPV6 } from '../../wire/types.ts';
import { bindingAt, bindingMode, guestEgressVerdict, tapOf } from '../facts.ts';
import { removeFilterrefFix } from '../fixes.ts';
import type { Detected, FindingKind } from './kind.ts';

export const ipLearningDirector: FindingKind = {
  code: 'ip-learning-director',
  severity: 'warning',
  title: "A director's filter learns its IP address from the first packet it sends",
  source: 'static',
  needs: "a director whose filter references $IP without an IP parameter (libvirt's IP learning, CTRL_IP_LEARNING=any)",
  check(ctx) {
    const out: Detected[] = [];
    for (const name of ctx.loaded.ipvs.keys()) {
      const director = ctx.loaded.scenario.nodes.get(name);
      const port = director && tapOf(ctx.loaded, director);
      const b = port && bindingAt(ctx.loaded, port.host, port.tap);
      if (!b) continue;
      if (bindingMode(ctx.loaded, b) !== 'ip-learning') continue;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `${b.binding.filter} on director ${name} (${b.host}:${b.binding.portdev}) has no IP: libvirt learns it`,
          explanation: `Until it learns, libvirt lets any IPv4 from the guest's MAC pass; then it locks the filter to the first non-zero IPv4 source it saw. A director that forwards a client's packet (DR or NAT keep the client address) before sending its own traffic locks onto that client's address, and from then on drops its own traffic and every other client's. Give IP explicitly (the director's address and the VIPs).`,
          where: `${b.host}:${b.binding.portdev}`,
          culprit: b.binding.origin,
        },
        fixes: [removeFilterrefFix(b)],
      });
    }
    return out;
  },
};

export const ipv6VipDropped: FindingKind = {
  code: 'ipv6-vip-dropped',
  severity: 'error',
  title: "The director's filter drops all IPv6",
  source: 'static',
  needs:
    'an IPv6 virtual service on a director whose port filter drops IPv6 frames (clean-traffic allows only IPv4, ARP and RARP)',
  check(ctx) {
    const out: Detected[] = [];
    for (const [name, table] of ctx.loaded.ipvs) {
      const svc = table.services.find((s) => s.key.kind === 'addr' && s.key.address.family === 'ipv6');
      const director = ctx.loaded.scenario.nodes.get(name);
      const port = director && tapOf(ctx.loaded, director);
      if (!svc || !port) continue;
      const frame = {
        dst: port.nic.mac,
        src: port.nic.mac,
        vlans: [],
        etherType: ETHERTYPE_IPV6,
        payload: { kind: 'raw' as const, bytes: new Uint8Array(40) },
      };
      const step = guestEgressVerdict(ctx.loaded, port.host, port.tap, frame);
      if (step?.verdict !== 'DROP') continue;
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          title: `${formatServiceKey(svc.key)} on ${name}: ${port.host}:${port.tap} drops every IPv6 frame (${step.chain} "${step.ruleText}")`,
          explanation: `The port filter passes only the protocols it names; IPv6 from and to the director falls to ${step.chain} "${step.ruleText}". Add IPv6 rules (no-ipv6-spoofing with IPV6, allow-incoming-ipv6) to the director's filter.`,
          where: `${port.host}:${port.tap}`,
          culprit: step.origin,
        },
        fixes: [],
      });
    }
    return out;
  },
};
