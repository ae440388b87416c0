/** The schema of `scenario.yaml`: only what the raw artifacts cannot tell. Documented in docs/scenario-format.md. */
import * as z from 'zod';
import { parseIpv4Prefix } from '../addr/prefix.ts';

const relFile = z.string().min(1, 'expected a file path relative to the scenario directory');
const ifaceRef = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+:[A-Za-z0-9_.@:-]+$/, 'expected "node:interface", e.g. "host1:eth0"');
const ipv4Text = z.ipv4({ message: 'expected an IPv4 address such as 192.0.2.1' });
// The same parser the loader uses decides (octets 0-255, prefix length 0-32), so what passes the schema loads.
const cidrText = z
  .string()
  .refine(
    (s) => s.includes('/') && parseIpv4Prefix(s) !== undefined,
    'expected an IPv4 address with prefix length 0-32, e.g. 192.0.2.1/24',
  );
const macText = z
  .string()
  .regex(/^([0-9A-Fa-f]{2}:){5}[0-9A-Fa-f]{2}$/, 'expected a MAC address such as 02:00:73:b6:53:c8');
const port = z.number().int().min(1).max(65535);

export const hostSchema = z.strictObject({
  'ip-addr': relFile.optional(),
  domains: z.array(relFile).default([]),
  'nwfilter-dir': relFile.optional(),
  bindings: relFile.optional(),
  sysctl: relFile.optional(),
  /** The host's `ip route` (e.g. a node routing between its bridges); without it, its connected routes only. */
  'ip-route': relFile.optional(),
  /** The host's `ip rule` (policy routing, e.g. `fwmark` rules on the marks its mangle table sets). */
  'ip-rule': relFile.optional(),
  'iptables-save': relFile.optional(),
  /** The host's `ipset save`: the sets its iptables rules match (`--match-set`) as the kernel has them. */
  'ipset-save': relFile.optional(),
  /** (`platform: proxmox`) the node's live `ebtables -t filter -L`: evaluated instead of the compiled ebtables rules. */
  'ebtables-filter': relFile.optional(),
  /** `proxmox`: the host is a Proxmox VE node; its guests, bridges and firewall come from `pve` (a copy of /etc/pve). */
  platform: z.enum(['libvirt', 'proxmox']).default('libvirt'),
  pve: relFile.optional(),
  /** Which node under `pve`/nodes/ this host is (default: the only one). */
  'pve-node': z.string().min(1).optional(),
  /** (`platform: proxmox`) the node's /etc/network/interfaces: which vmbr is VLAN-aware, its ports and VLANs. */
  'network-interfaces': relFile.optional(),
});

export const guestSchema = z.strictObject({
  role: z.enum(['director', 'real-server', 'other']).optional(),
  kernel: z.string().optional(),
  'ip-addr': relFile.optional(),
  'ip-route': relFile.optional(),
  'ip-rule': relFile.optional(),
  'ip-neigh': relFile.optional(),
  /**
   * The guest's own `iptables-save` (or `nft list ruleset`): mangle PREROUTING marks (fwmark services), nat POSTROUTING
   * (full NAT), filter INPUT/FORWARD/OUTPUT and raw PREROUTING/OUTPUT at its own hooks.
   */
  'iptables-save': relFile.optional(),
  sysctl: relFile.optional(),
  ipvsadm: relFile.optional(),
  'ipvsadm-connections': relFile.optional(),
  /** The guest's /etc/hosts and /etc/services: names of an `ipvsadm -L` listing without -n. */
  'etc-hosts': relFile.optional(),
  'etc-services': relFile.optional(),
  keepalived: relFile.optional(),
  listen: z.array(z.string().regex(/^(tcp|udp)\/\d+$/, 'expected "tcp/PORT" or "udp/PORT"')).optional(),
});

export const gatewaySchema = z.strictObject({
  name: z.string().default('gateway'),
  interface: z.string().default('eth0'),
  /** The gateway's LAN address is on this VLAN of its interface (a trunk): its frames carry the tag on the segment. */
  vlan: z.number().int().min(1).max(4094).optional(),
  mac: macText,
  ip: cidrText,
  neighbours: z.record(ipv4Text, macText).default({}),
});

export const clientSchema = z.strictObject({
  name: z.string().default('client'),
  ip: ipv4Text,
  mac: macText.optional(),
  ttl: z.number().int().min(1).max(255).default(64),
});

const timeText = z.iso.datetime({ offset: true, message: 'expected an ISO time such as 2016-06-07T11:39:19.372804Z' });

export const probeSchema = z.union([
  z.strictObject({
    name: z.string(),
    tcp: z.string().regex(/^\d+\.\d+\.\d+\.\d+:\d+$/, 'expected "VIP:PORT", e.g. "192.0.2.208:80"'),
    from: z.string().default('client'),
    sport: port.default(40000),
    seq: z.number().int().min(0).max(0xffffffff).default(1000),
    'ip-id': z.number().int().min(0).max(65535).default(1),
    window: z.number().int().min(0).max(65535).default(64240),
    tsval: z.number().int().min(0).max(0xffffffff).default(1),
    time: timeText.optional(),
  }),
  z.strictObject({
    name: z.string(),
    arp: ipv4Text,
    from: z.string().default('gateway'),
    time: timeText.optional(),
  }),
]);

/** Something the scenario's author (normally `lvsdoctor import`) could not know and assumed, with its evidence. */
export const assumptionSchema = z.strictObject({
  assumed: z.string().min(1, 'expected what was assumed or is unknown'),
  evidence: z.string().min(1, 'expected the evidence (or its absence) the assumption rests on'),
});

export const scenarioSchema = z.strictObject({
  name: z.string().min(1),
  description: z.string().default(''),
  segments: z.record(z.string(), z.strictObject({ members: z.array(ifaceRef).min(1) })).default({}),
  hosts: z.record(z.string(), hostSchema).default({}),
  guests: z.record(z.string(), guestSchema).default({}),
  gateway: gatewaySchema.extend({ segment: z.string() }).optional(),
  client: clientSchema.optional(),
  probes: z.array(probeSchema).default([]),
  assumptions: z.array(assumptionSchema).default([]),
});

export type ScenarioFile = z.infer<typeof scenarioSchema>;
