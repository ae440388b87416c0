/**
 * CTRL_IP_LEARNING=dhcp without an IP parameter: until libvirt has snooped a DHCP lease for the port it installs
 * DHCP-only rules, so a guest with a static address has every frame but DHCP dropped, both ways. That is the cause to
 * name — not anti-spoofing of the VIP, which only shows once the port has an IP list.
 */
import type { Ipv4 } from '../../addr/ipv4.ts';
import type { Origin } from '../../source/origin.ts';
import type { PortBinding } from '../../topology/model.ts';
import { allVips, bindingMode, dropStep, endHop, guestBehind } from '../facts.ts';
import { addToIpListFix, removeFilterrefFix } from '../fixes.ts';
import type { FixProposal } from '../types.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';

const DHCP_SNOOPING = 'libvirt DHCP snooping on ';

/** True when a drop comes from libvirt's DHCP-only learning rules. */
export function isDhcpLearningDrop(o: Origin | undefined): boolean {
  for (let cur = o; cur; cur = cur.via) if (cur.label.startsWith(DHCP_SNOOPING)) return true;
  return false;
}

function detected(ctx: DiagnoseContext, kind: FindingKind, b: PortBinding, culprit?: Origin): Detected {
  const guest = guestBehind(ctx.loaded, b.host, b.binding.portdev);
  const own: Ipv4[] = [];
  const vips = allVips(ctx.loaded);
  let answersFromVip: Ipv4[] = [];
  if (guest)
    for (const i of guest.interfaces.values()) {
      if (i.kind === 'loopback' || i.kind === 'tunnel') {
        answersFromVip = [...answersFromVip, ...i.addrs.map((a) => a.prefix.addr).filter((a) => vips.has(a))];
        continue;
      }
      if (i.mac === b.binding.mac) for (const a of i.addrs) own.push(a.prefix.addr);
    }
  const fixes: FixProposal[] = [];
  const add = addToIpListFix(
    b,
    [...own, ...answersFromVip],
    'the guest has a static address: name it instead of learning it',
  );
  if (add) fixes.push(add);
  fixes.push(removeFilterrefFix(b));
  return {
    finding: {
      code: kind.code,
      severity: kind.severity,
      title: `${b.domain}'s port ${b.host}:${b.binding.portdev} waits for a DHCP lease (CTRL_IP_LEARNING=dhcp, no IP): every frame but DHCP is dropped`,
      explanation: `${b.binding.filter} on ${b.domain} has no IP parameter and CTRL_IP_LEARNING=dhcp, so libvirt learns the address only from a DHCP exchange it snoops; until then it installs DHCP-only rules that drop all other traffic to and from the guest. ${b.domain} has a static address (it never asks DHCP), so it stays cut off — ARP for it and its replies alike. Name its address${answersFromVip.length ? 'es (and the VIP it answers from)' : ''} in IP, or use CTRL_IP_LEARNING=any.`,
      where: `${b.host}:${b.binding.portdev}`,
      ...(culprit ? { culprit } : {}),
    },
    fixes,
  };
}

export const ipLearningDhcpStatic: FindingKind = {
  code: 'ip-learning-dhcp-static',
  severity: 'error',
  title: 'CTRL_IP_LEARNING=dhcp on a guest with a static address drops all its traffic',
  source: 'trace',
  needs:
    'a port filter that references $IP with CTRL_IP_LEARNING=dhcp and no IP parameter, on a guest whose address is static',
  detect(ctx, trace) {
    if (trace.disposition === 'replied') return undefined;
    const hop = endHop(trace);
    const drop = hop && dropStep(hop);
    const origin = drop?.origin ?? trace.end.origin;
    if (!isDhcpLearningDrop(origin)) return undefined;
    const port = origin?.data?.port;
    const mac = origin?.data?.mac;
    const b = ctx.loaded.scenario.bindings.find(
      (x) =>
        x.binding.portdev === port &&
        (mac === undefined || x.binding.mac === mac) &&
        bindingMode(ctx.loaded, x) === 'dhcp-learning',
    );
    return b ? detected(ctx, this, b, origin) : undefined;
  },
  check(ctx) {
    const out: Detected[] = [];
    for (const b of ctx.loaded.scenario.bindings)
      if (bindingMode(ctx.loaded, b) === 'dhcp-learning' && guestBehind(ctx.loaded, b.host, b.binding.portdev))
        out.push(detected(ctx, this, b, b.binding.origin));
    return out;
  },
};
