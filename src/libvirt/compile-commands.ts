/**
 * The command text libvirt 9.0 runs (`ebtables --concurrent -t nat …`, iptables teardown), as its util.firewall
 * log shows it: quoting, the jump matches into sub-chains, and the teardown sequences before new rules.
 */
import type { Mac } from '../addr/mac.ts';
import type { EbRule } from '../netfilter/ebtables-model.ts';

export const EB = 'ebtables --concurrent -t nat';

export function quote(arg: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function cmd(prefix: string, args: readonly string[]): string {
  return `${prefix} ${args.map(quote).join(' ')}`;
}

/** The ethertype match of the jump into a sub-chain, by chain-name prefix. */
export function jumpMatch(chain: string): { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> } {
  // Performance: the same (readonly) match for every port.
  let m = jumpMatchCache.get(chain);
  if (m === undefined) {
    m = computeJumpMatch(chain);
    jumpMatchCache.set(chain, m);
  }
  return m;
}

const jumpMatchCache = new Map<string, { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> }>();

function computeJumpMatch(chain: string): { argv: string[]; rule: Pick<EbRule, 'proto' | 'dst'> } {
  const et = (n: number) => ({
    argv: ['-p', `0x${n.toString(16).padStart(4, '0')}`],
    rule: { proto: { kind: 'ethertype' as const, value: n, negated: false } },
  });
  if (chain.startsWith('mac')) return { argv: [], rule: {} };
  if (chain.startsWith('stp')) {
    return { argv: ['-d', '01:80:c2:00:00:00'], rule: { dst: { addr: '01:80:c2:00:00:00' as Mac, negated: false } } };
  }
  if (chain.startsWith('vlan')) return et(0x8100);
  if (chain.startsWith('ipv4')) return et(0x0800);
  if (chain.startsWith('ipv6')) return et(0x86dd);
  if (chain.startsWith('rarp')) return et(0x8035);
  return et(0x0806);
}

export function iptablesTeardown(tool: string, ifn: string, temp: boolean): string[] {
  const [fo, fi, hi] = temp ? ['FP', 'FJ', 'HJ'] : ['FO', 'FI', 'HI'];
  const p = `${tool} -w`;
  const out = [
    `${p} -D libvirt-out -m physdev --physdev-is-bridged --physdev-out ${ifn} -g ${fo}-${ifn}`,
    `${p} -D libvirt-out -m physdev --physdev-out ${ifn} -g ${fo}-${ifn}`,
    `${p} -D libvirt-in -m physdev --physdev-in ${ifn} -g ${fi}-${ifn}`,
    `${p} -D libvirt-host-in -m physdev --physdev-in ${ifn} -g ${hi}-${ifn}`,
  ];
  if (!temp) out.push(`${p} -D libvirt-in-post -m physdev --physdev-in ${ifn} -j ACCEPT`);
  for (const c of [fo, fi, hi]) out.push(`${p} -F ${c}-${ifn}`, `${p} -X ${c}-${ifn}`);
  return out;
}

export function ebtablesTeardown(ifn: string, temp: boolean): string[] {
  const [i, o] = temp ? ['J', 'P'] : ['I', 'O'];
  return [
    `${EB} -D PREROUTING -i ${ifn} -j libvirt-${i}-${ifn}`,
    `${EB} -D POSTROUTING -o ${ifn} -j libvirt-${o}-${ifn}`,
    `${EB} -L libvirt-${i}-${ifn}`,
    `${EB} -L libvirt-${o}-${ifn}`,
    `${EB} -F libvirt-${i}-${ifn}`,
    `${EB} -X libvirt-${i}-${ifn}`,
    `${EB} -F libvirt-${o}-${ifn}`,
    `${EB} -X libvirt-${o}-${ifn}`,
  ];
}

/** `allTeardown`: what libvirt runs before installing learning-phase rules. */
export function allTeardown(ifn: string): string[] {
  return [
    ...iptablesTeardown('iptables', ifn, true),
    ...iptablesTeardown('ip6tables', ifn, true),
    ...ebtablesTeardown(ifn, true),
    ...iptablesTeardown('iptables', ifn, false),
    ...iptablesTeardown('ip6tables', ifn, false),
    ...ebtablesTeardown(ifn, false),
  ];
}
