/**
 * The 24 filters libvirt 9.0.0 ships (`libvirt-daemon-config-nwfilter`, `/usr/share/libvirt/nwfilter/*.xml`),
 * written as data from their documented rules. `builtin-filters.test.ts` checks each one against the shipped XML.
 * Built-in filters have no file position; their origins say `built-in`.
 */
import { ATTRIBUTE_TABLES } from './nwfilter-attrs.ts';
import {
  defaultChainPriority,
  type NwAttrValue,
  type NwFilter,
  type NwFilterEntry,
  type NwProtocol,
  type NwRuleAction,
  type NwRuleDirection,
} from './nwfilter-model.ts';
import { filterOrigin, filterRefOrigin, ruleOrigin } from './nwfilter-xml.ts';

interface RuleSpec {
  readonly action: NwRuleAction;
  readonly direction: NwRuleDirection;
  readonly priority?: number;
  readonly protocol?: NwProtocol;
  readonly attrs?: Readonly<Record<string, string>>;
}

type EntrySpec = RuleSpec | { readonly ref: string };

interface FilterSpec {
  readonly chain?: string;
  readonly priority?: number;
  readonly entries: readonly EntrySpec[];
}

const DHCP_OUT: RuleSpec = {
  action: 'accept',
  direction: 'out',
  priority: 100,
  protocol: 'ip',
  attrs: {
    srcipaddr: '0.0.0.0',
    dstipaddr: '255.255.255.255',
    protocol: 'udp',
    srcportstart: '68',
    dstportstart: '67',
  },
};

const DHCPV6_OUT: RuleSpec = {
  action: 'accept',
  direction: 'out',
  priority: 100,
  protocol: 'ipv6',
  attrs: {
    protocol: 'udp',
    srcipaddr: 'FE80::',
    srcipmask: '10',
    dstipaddr: 'FF02::1:2',
    srcportstart: '546',
    dstportstart: '547',
  },
};

const RARP_ANNOUNCE = {
  opcode: 'Request_Reverse',
  dstmacaddr: 'ff:ff:ff:ff:ff:ff',
  arpsrcmacaddr: '$MAC',
  arpdstmacaddr: '$MAC',
  arpsrcipaddr: '0.0.0.0',
  arpdstipaddr: '0.0.0.0',
};

const SPECS: Readonly<Record<string, FilterSpec>> = {
  'allow-arp': { chain: 'arp', entries: [{ action: 'accept', direction: 'inout' }] },
  'allow-dhcp': {
    chain: 'ipv4',
    entries: [
      DHCP_OUT,
      {
        action: 'accept',
        direction: 'in',
        priority: 100,
        protocol: 'ip',
        attrs: { protocol: 'udp', srcportstart: '67', dstportstart: '68' },
      },
    ],
  },
  'allow-dhcp-server': {
    chain: 'ipv4',
    entries: [
      DHCP_OUT,
      {
        action: 'accept',
        direction: 'in',
        priority: 100,
        protocol: 'ip',
        attrs: { srcipaddr: '$DHCPSERVER', protocol: 'udp', srcportstart: '67', dstportstart: '68' },
      },
    ],
  },
  'allow-dhcpv6': {
    chain: 'ipv6',
    entries: [
      DHCPV6_OUT,
      {
        action: 'accept',
        direction: 'in',
        priority: 100,
        protocol: 'ipv6',
        attrs: { protocol: 'udp', srcportstart: '547', dstportstart: '546' },
      },
    ],
  },
  'allow-dhcpv6-server': {
    chain: 'ipv6',
    entries: [
      DHCPV6_OUT,
      {
        action: 'accept',
        direction: 'in',
        priority: 100,
        protocol: 'ipv6',
        attrs: { srcipaddr: '$DHCPSERVER', protocol: 'udp', srcportstart: '547', dstportstart: '546' },
      },
    ],
  },
  'allow-incoming-ipv4': { chain: 'ipv4', entries: [{ action: 'accept', direction: 'in' }] },
  'allow-incoming-ipv6': { chain: 'ipv6', entries: [{ action: 'accept', direction: 'in' }] },
  'allow-ipv4': { chain: 'ipv4', entries: [{ action: 'accept', direction: 'inout' }] },
  'allow-ipv6': { chain: 'ipv6', entries: [{ action: 'accept', direction: 'inout' }] },
  'clean-traffic': {
    chain: 'root',
    entries: [
      { ref: 'no-mac-spoofing' },
      { ref: 'no-ip-spoofing' },
      { action: 'accept', direction: 'out', priority: -650, protocol: 'mac', attrs: { protocolid: 'ipv4' } },
      { ref: 'allow-incoming-ipv4' },
      { ref: 'no-arp-spoofing' },
      { action: 'accept', direction: 'inout', priority: -500, protocol: 'mac', attrs: { protocolid: 'arp' } },
      { ref: 'no-other-l2-traffic' },
      { ref: 'qemu-announce-self' },
    ],
  },
  // Debian 9.0.0 ends with qemu-announce-self; newer upstream uses qemu-announce-self-rarp.
  'clean-traffic-gateway': {
    entries: [
      { ref: 'no-mac-spoofing' },
      { ref: 'no-ip-spoofing' },
      { ref: 'no-arp-spoofing' },
      { action: 'accept', direction: 'inout', priority: -500, protocol: 'mac', attrs: { protocolid: 'arp' } },
      { action: 'accept', direction: 'in', protocol: 'mac', attrs: { srcmacaddr: '$GATEWAY_MAC' } },
      { action: 'accept', direction: 'out', protocol: 'mac', attrs: { dstmacaddr: '$GATEWAY_MAC' } },
      { ref: 'no-other-l2-traffic' },
      { ref: 'qemu-announce-self' },
    ],
  },
  'no-arp-ip-spoofing': {
    chain: 'arp-ip',
    priority: -510,
    entries: [
      { action: 'return', direction: 'out', priority: 400, protocol: 'arp', attrs: { arpsrcipaddr: '$IP' } },
      { action: 'drop', direction: 'out', priority: 1000 },
    ],
  },
  'no-arp-mac-spoofing': {
    chain: 'arp-mac',
    priority: -520,
    entries: [
      { action: 'return', direction: 'out', priority: 350, protocol: 'arp', attrs: { arpsrcmacaddr: '$MAC' } },
      { action: 'drop', direction: 'out', priority: 1000 },
    ],
  },
  'no-arp-spoofing': { chain: 'root', entries: [{ ref: 'no-arp-mac-spoofing' }, { ref: 'no-arp-ip-spoofing' }] },
  'no-ip-multicast': {
    chain: 'ipv4',
    entries: [{ action: 'drop', direction: 'out', protocol: 'ip', attrs: { dstipaddr: '224.0.0.0', dstipmask: '4' } }],
  },
  'no-ip-spoofing': {
    chain: 'ipv4-ip',
    priority: -710,
    entries: [
      {
        action: 'return',
        direction: 'out',
        priority: 100,
        protocol: 'ip',
        attrs: { srcipaddr: '0.0.0.0', protocol: 'udp' },
      },
      { action: 'return', direction: 'out', priority: 500, protocol: 'ip', attrs: { srcipaddr: '$IP' } },
      { action: 'drop', direction: 'out', priority: 1000 },
    ],
  },
  'no-ipv6-multicast': {
    chain: 'ipv6',
    entries: [{ action: 'drop', direction: 'out', protocol: 'ipv6', attrs: { dstipaddr: 'FF00::', dstipmask: '8' } }],
  },
  'no-ipv6-spoofing': {
    chain: 'ipv6-ip',
    priority: -610,
    entries: [
      {
        action: 'return',
        direction: 'out',
        priority: 100,
        protocol: 'ipv6',
        attrs: { srcipaddr: 'FE80::', srcipmask: '10', protocol: 'udp' },
      },
      { action: 'return', direction: 'out', priority: 500, protocol: 'ipv6', attrs: { srcipaddr: '$IPV6' } },
      { action: 'drop', direction: 'out', priority: 1000 },
    ],
  },
  'no-mac-broadcast': {
    chain: 'ipv4',
    entries: [{ action: 'drop', direction: 'out', protocol: 'mac', attrs: { dstmacaddr: 'ff:ff:ff:ff:ff:ff' } }],
  },
  'no-mac-spoofing': {
    chain: 'mac',
    priority: -800,
    entries: [
      { action: 'return', direction: 'out', protocol: 'mac', attrs: { srcmacaddr: '$MAC' } },
      { action: 'drop', direction: 'out', protocol: 'mac' },
    ],
  },
  'no-other-l2-traffic': { entries: [{ action: 'drop', direction: 'inout', priority: 1000 }] },
  'no-other-rarp-traffic': { chain: 'rarp', entries: [{ action: 'drop', direction: 'inout', priority: 1000 }] },
  'qemu-announce-self': {
    chain: 'root',
    entries: [
      { action: 'accept', direction: 'out', protocol: 'mac', attrs: { protocolid: '0x835' } },
      { ref: 'qemu-announce-self-rarp' },
      { ref: 'no-other-rarp-traffic' },
    ],
  },
  'qemu-announce-self-rarp': {
    chain: 'rarp',
    entries: [
      {
        action: 'accept',
        direction: 'out',
        priority: 500,
        protocol: 'rarp',
        attrs: { srcmacaddr: '$MAC', ...RARP_ANNOUNCE },
      },
      { action: 'accept', direction: 'in', priority: 500, protocol: 'rarp', attrs: RARP_ANNOUNCE },
    ],
  },
};

function build(name: string, spec: FilterSpec): NwFilter {
  const chain = spec.chain ?? 'root';
  const priority = spec.priority ?? defaultChainPriority(chain);
  const origin = filterOrigin(name, chain, priority, undefined);
  let ruleIndex = 0;
  const entries: NwFilterEntry[] = spec.entries.map((e): NwFilterEntry => {
    if ('ref' in e)
      return {
        kind: 'filterref',
        filter: e.ref,
        params: new Map(),
        origin: filterRefOrigin(e.ref, new Map(), undefined, origin),
      };
    const protocol = e.protocol ?? 'none';
    const prio = e.priority ?? 500;
    const attrs = new Map<string, NwAttrValue>();
    if (protocol !== 'none') {
      for (const [attr] of ATTRIBUTE_TABLES[protocol]) {
        const raw = e.attrs?.[attr];
        if (raw !== undefined) attrs.set(attr, { raw, negated: false });
      }
    }
    return {
      kind: 'rule',
      action: e.action,
      direction: e.direction,
      priority: prio,
      statematch: true,
      protocol,
      attrs,
      origin: ruleOrigin(name, ruleIndex++, e.action, e.direction, prio, protocol, undefined, origin),
    };
  });
  return { name, chain, priority, entries, builtin: true, origin };
}

/** The built-in filters by name (libvirt 9.0.0 as shipped by Debian 12). */
export const builtinFilters: ReadonlyMap<string, NwFilter> = new Map(
  Object.entries(SPECS).map(([name, spec]) => [name, build(name, spec)]),
);

/** Built-ins overridden by custom filters of the same name (as `virsh nwfilter-define` does). */
export function filterRegistry(custom: readonly NwFilter[] = []): ReadonlyMap<string, NwFilter> {
  const m = new Map(builtinFilters);
  for (const f of custom) m.set(f.name, f);
  return m;
}
