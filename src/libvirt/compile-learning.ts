/**
 * IP address learning: the rules libvirt installs while it learns the guest's IP — `applyBasicRules`
 * (CTRL_IP_LEARNING=any) and `applyDHCPOnlyRules` (CTRL_IP_LEARNING=dhcp).
 */
import { IPV4_ANY, parseIpv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { EbPolicy, EbRule, EbStyle } from '../netfilter/ebtables-model.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit } from '../source/origin.ts';
import { allTeardown, EB } from './compile-commands.ts';
import { linkHooks, type TableBuilder } from './compile-shared.ts';
import type { CompiledBinding, RuleInstance } from './compile-types.ts';
import { emptyIptTable } from './iptables-compile.ts';
import type { NwFilterBinding } from './nwfilter-model.ts';

/** `applyBasicRules`: what the port gets while libvirt learns the guest's IP (CTRL_IP_LEARNING=any). */
export function learningRules(
  binding: NwFilterBinding,
  instances: RuleInstance[],
  issues: Issue[],
  table: TableBuilder,
  userPolicy: EbPolicy,
  style: EbStyle,
): CompiledBinding {
  const ifn = binding.portdev;
  const root = `libvirt-I-${ifn}`;
  const why = {
    ...implicit(
      `libvirt IP-address learning on ${ifn} (IP not given, CTRL_IP_LEARNING=any): basic rules until the guest's first IPv4 source address is seen`,
      { port: ifn, mac: binding.mac },
    ),
    via: binding.origin,
  };
  issues.push(
    issue(
      'nwfilter-ip-learning',
      `IP is referenced but not given: libvirt learns it from the first IPv4 packet ${binding.mac} sends (a director forwarding client traffic first would learn a client address)`,
      binding.origin.pos,
      'warning',
    ),
  );
  table.addChain(root, userPolicy, style, why);
  const mac = binding.mac;
  const rules: EbRule[] = [
    { src: { addr: mac, negated: true }, matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why },
    {
      proto: { kind: 'ethertype', value: 0x0800, negated: false },
      matches: [],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
      origin: why,
    },
    {
      proto: { kind: 'ethertype', value: 0x0806, negated: false },
      matches: [],
      target: { kind: 'verdict', verdict: 'ACCEPT' },
      origin: why,
    },
    { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why },
  ];
  for (const r of rules) table.append(root, r);
  const commands = [
    ...allTeardown(ifn),
    `${EB} -N libvirt-J-${ifn}`,
    `${EB} -A libvirt-J-${ifn} -s '!' ${mac} -j DROP`,
    `${EB} -A libvirt-J-${ifn} -p IPv4 -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -p ARP -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -j DROP`,
  ];
  linkHooks(table, binding, true, false, commands, true);
  commands.push(`${EB} -E libvirt-J-${ifn} libvirt-I-${ifn}`);
  return {
    binding,
    mode: 'ip-learning',
    nat: table.build(),
    commands,
    instances,
    ipInstances: [],
    filter4: emptyIptTable('ipv4', true),
    filter6: emptyIptTable('ipv6', true),
    issues,
  };
}

/** `applyDHCPOnlyRules`: CTRL_IP_LEARNING=dhcp while no lease has been seen. */
export function dhcpRules(
  binding: NwFilterBinding,
  instances: RuleInstance[],
  issues: Issue[],
  table: TableBuilder,
  userPolicy: EbPolicy,
  style: EbStyle,
): CompiledBinding {
  const ifn = binding.portdev;
  const mac = binding.mac;
  const why = {
    ...implicit(`libvirt DHCP snooping on ${ifn} (IP not given, CTRL_IP_LEARNING=dhcp)`, { port: ifn, mac }),
    via: binding.origin,
  };
  const I = `libvirt-I-${ifn}`;
  const O = `libvirt-O-${ifn}`;
  table.addChain(I, userPolicy, style, why);
  table.addChain(O, userPolicy, style, why);
  const commands = [...allTeardown(ifn), `${EB} -N libvirt-J-${ifn}`, `${EB} -N libvirt-P-${ifn}`];
  const udp = (sport: number, dport: number, src?: string) => ({
    kind: 'ip' as const,
    proto: { value: 17, negated: false },
    sport: { lo: sport, hi: sport, negated: false },
    dport: { lo: dport, hi: dport, negated: false },
    ...(src ? { src: { addr: parseIpv4(src) ?? IPV4_ANY, mask: 0xffffffff, negated: false } } : {}),
  });
  const ipv4 = { kind: 'ethertype' as const, value: 0x0800, negated: false };
  table.append(I, {
    src: { addr: mac, negated: false },
    proto: ipv4,
    matches: [udp(68, 67)],
    target: { kind: 'verdict', verdict: 'ACCEPT' },
    origin: why,
  });
  table.append(I, { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why });
  commands.push(
    `${EB} -A libvirt-J-${ifn} -s ${mac} -p ipv4 --ip-protocol udp --ip-sport 68 --ip-dport 67 -j ACCEPT`,
    `${EB} -A libvirt-J-${ifn} -j DROP`,
  );
  const servers = binding.params.get('DHCPSERVER') ?? [undefined];
  for (const server of servers) {
    for (const dst of [mac, 'ff:ff:ff:ff:ff:ff' as Mac]) {
      table.append(O, {
        dst: { addr: dst, negated: false },
        proto: ipv4,
        matches: [udp(67, 68, server)],
        target: { kind: 'verdict', verdict: 'ACCEPT' },
        origin: why,
      });
      commands.push(
        `${EB} -A libvirt-P-${ifn} -d ${dst} -p ipv4 --ip-protocol udp${server ? ` --ip-src ${server}` : ''} --ip-sport 67 --ip-dport 68 -j ACCEPT`,
      );
    }
  }
  table.append(O, { matches: [], target: { kind: 'verdict', verdict: 'DROP' }, origin: why });
  commands.push(`${EB} -A libvirt-P-${ifn} -j DROP`);
  linkHooks(table, binding, true, true, commands, true);
  commands.push(`${EB} -E libvirt-J-${ifn} libvirt-I-${ifn}`, `${EB} -E libvirt-P-${ifn} libvirt-O-${ifn}`);
  return {
    binding,
    mode: 'dhcp-learning',
    nat: table.build(),
    commands,
    instances,
    ipInstances: [],
    filter4: emptyIptTable('ipv4', true),
    filter6: emptyIptTable('ipv6', true),
    issues,
  };
}

/*
 * Bulk compiles (`compileBindings` with `commands: false`): every binding of the same shape — same top filter, same
 * variable names, list lengths and repeated positions — flattens, sorts, iterates and creates sub-chains the same
 * way, so that work is done once per shape into a `Plan`; per binding only the origins, the values taken from the
 * binding's variables (converted and translated) and the model objects are made. Anything the plan cannot decide
 * without the values (bad values, failing commands) falls back to `compileBinding` for that binding, and shapes
 * that fail or learn IP addresses use `compileBinding` throughout.
 */
