/** One decision of a hop in words, as `lvsdoctor trace` prints it (shared by the CLI and the web app). */

import { formatIpv4 } from '../addr/ipv4.ts';
import { assertNever } from '../source/assert-never.ts';
import { formatPosition, type Origin, renderOriginChain } from '../source/origin.ts';
import type { NetfilterStep, Step } from './types.ts';

function originShort(o: Origin | undefined): string {
  if (!o) return '';
  return o.pos ? ` [${formatPosition(o.pos)}]` : ` [${o.label}]`;
}

export function renderStep(s: Step): string | undefined {
  switch (s.kind) {
    case 'capture':
      return undefined;
    case 'netfilter':
      return `${s.nft ? 'nft' : s.family === 'bridge' ? 'ebtables' : 'iptables'} -t ${s.table} ${s.hook}: ${s.path.join(' → ')} ⇒ ${s.verdict}${s.mark ? ` with mark 0x${s.mark.after.toString(16)}` : ''}${natText(s)} by ${ruleQuote(s)}\n      from ${renderOriginChain(s.origin, '\n        ← ')}`;
    case 'bridge':
      return `bridge ${s.bridge}: ${s.decision}${s.ports.length ? ` → ${s.ports.join(', ')}` : ''}${s.learned ? ` (learned ${s.learned})` : ''}`;
    case 'segment':
      return `segment ${s.segment}: ${s.decision} → ${s.to.join(', ')}`;
    case 'l2':
      return `${s.accepted ? 'accepted' : 'ignored'}: ${s.reason}`;
    case 'arp':
      return `ARP ${s.action}: ${s.reason}${originShort(s.origin)}`;
    case 'rp-filter':
      return `rp_filter=${s.mode} ${s.passed ? 'passes' : 'DROPS'}: ${s.reason}${originShort(s.origin)}`;
    case 'route':
      return `route ${formatIpv4(s.dst)}${s.nextHop !== undefined && s.nextHop !== s.dst ? ` via ${formatIpv4(s.nextHop)}` : ''} dev ${s.outIface ?? '?'}${originShort(s.origin)}`;
    case 'neighbour':
      return `neighbour ${formatIpv4(s.ip)} dev ${s.iface}: ${s.mac ?? 'UNRESOLVED'} (${s.source}${s.arp ? `, ${s.arp.hops.length} hops of ARP walked` : ''})${originShort(s.origin)}`;
    case 'ipvs':
      return `IPVS ${s.service}: ${s.explanation}${originShort(s.serviceOrigin)}`;
    case 'forward':
      return `forwarded, ttl ${s.ttlBefore} → ${s.ttlAfter}`;
    case 'deliver':
      return `delivered to ${s.socket}${originShort(s.origin)}`;
    case 'reply':
      return `answers: ${s.what}`;
    case 'note':
      return s.text;
    default:
      return assertNever(s, 'step');
  }
}

/**
 * The deciding rule in the syntax of its source: `chain FORWARD rule 3 "-A FORWARD … -j DROP"` from iptables-save,
 * `nft chain firewalld/filter_FORWARD "ct state invalid drop"` from `nft list ruleset`.
 */
export function ruleQuote(s: NetfilterStep): string {
  if (s.nft) return `nft chain ${s.nft.chain} "${s.ruleText}"`;
  return `${s.chain}${s.ruleNumber !== undefined ? ` rule ${s.ruleNumber}` : ''} "${s.ruleText}"`;
}

/** What a nat step rewrote: `, destination A:P → B:Q` or `, source A → B`. */
function natText(s: NetfilterStep): string {
  const port = (p: number | undefined) => (p !== undefined ? `:${p}` : '');
  if (s.dnat)
    return `, destination ${formatIpv4(s.dnat.from)}${port(s.dnat.fromPort)} → ${formatIpv4(s.dnat.to)}${port(s.dnat.toPort)}`;
  if (s.snat)
    return `, source ${formatIpv4(s.snat.from)}${port(s.snat.fromPort)} → ${formatIpv4(s.snat.to)}${port(s.snat.toPort)}`;
  return '';
}
