/**
 * Reader for the guest configurations the Proxmox firewall looks at: the `netN:` lines of a QEMU VM
 * (`/etc/pve/qemu-server/<vmid>.conf`) or an LXC container (`/etc/pve/lxc/<vmid>.conf`). What the firewall uses is the
 * MAC, the bridge, the `firewall` flag, the VLAN tag (which bridge the port lands in) and, for containers, the static
 * `ip=`/`ip6=` addresses (they go into the ipfilter set). Snapshot sections (`[name]`) are not the running
 * configuration and are skipped. Never throws.
 */
import { parseMac } from '../addr/mac.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export type GuestKind = 'qemu' | 'lxc';

export interface GuestNic {
  /** `net0` … */
  readonly netid: string;
  readonly index: number;
  /** As written in the line (pve-firewall compares and prints it so). */
  readonly mac: string;
  readonly bridge?: string;
  readonly firewall: boolean;
  readonly tag?: number;
  /** `trunks=vid[-vid][;…]`: VLANs the port also carries tagged (VLAN-aware bridges only). */
  readonly trunks?: readonly (readonly [number, number])[];
  readonly model?: string;
  /** Containers: `ip=` / `ip6=` as written (`dhcp`, `manual`, `auto` or an address with a prefix). */
  readonly ip?: string;
  readonly ip6?: string;
  readonly linkDown?: boolean;
  /** The whole value, for fixes that rewrite it. */
  readonly value: string;
  readonly pos: Position;
}

export interface GuestConfig {
  readonly kind: GuestKind;
  readonly vmid: string;
  readonly file: string;
  readonly name?: string;
  readonly nics: readonly GuestNic[];
}

const QEMU_MODELS = new Set([
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'virtio',
  'vmxnet3',
]);

const QEMU_KEYS = new Set([
  'macaddr',
  'model',
  'bridge',
  'tag',
  'trunks',
  'firewall',
  'link_down',
  'rate',
  'queues',
  'mtu',
  'host-tunnel',
]);
const LXC_KEYS = new Set([
  'name',
  'hwaddr',
  'bridge',
  'firewall',
  'ip',
  'gw',
  'ip6',
  'gw6',
  'type',
  'tag',
  'trunks',
  'mtu',
  'rate',
  'link_down',
  'host-managed',
]);

/** Parses one `netN` value; a string is what is wrong with it. */
export function parseNetValue(
  netid: string,
  value: string,
  kind: GuestKind,
  pos: Position,
): { nic: GuestNic; problems: string[] } | string {
  const m = /^net(\d+)$/.exec(netid);
  if (!m) return `expected a key netN, got '${netid}'`;
  const kv = new Map<string, string>();
  const problems: string[] = [];
  let model: string | undefined;
  let mac: string | undefined;
  for (const [i, part] of value.split(',').entries()) {
    if (part.trim() === '') continue;
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    if (kind === 'qemu' && i === 0 && QEMU_MODELS.has(k)) {
      model = k;
      if (v !== '') mac = v;
      continue;
    }
    if (eq < 0) {
      if (kind === 'qemu' && i === 0 && !QEMU_KEYS.has(k)) return `unknown NIC model '${k}'`;
      return `expected key=value, got '${part}'`;
    }
    const keys = kind === 'qemu' ? QEMU_KEYS : LXC_KEYS;
    if (!keys.has(k)) problems.push(`unknown property '${k}' (ignored)`);
    if (kv.has(k)) return `property '${k}' given twice`;
    kv.set(k, v);
  }
  if (kind === 'qemu') {
    model ??= kv.get('model');
    mac ??= kv.get('macaddr');
  } else mac = kv.get('hwaddr');
  if (mac === undefined)
    return kind === 'qemu'
      ? 'no MAC address (a NIC without one gets a random MAC when the VM starts; write it as <model>=<MAC>)'
      : 'no hwaddr= (the container gets a random MAC at start; the firewall cannot know it)';
  if (parseMac(mac) === undefined) return `expected a MAC address, got '${mac}'`;
  const fw = kv.get('firewall');
  if (fw !== undefined && fw !== '0' && fw !== '1') return `expected firewall=0 or firewall=1, got firewall=${fw}`;
  const tagText = kv.get('tag');
  let tag: number | undefined;
  if (tagText !== undefined) {
    if (!/^\d+$/.test(tagText) || Number(tagText) < 1 || Number(tagText) > 4094)
      return `expected tag=1..4094, got tag=${tagText}`;
    tag = Number(tagText);
  }
  const trunksText = kv.get('trunks');
  let trunks: [number, number][] | undefined;
  if (trunksText !== undefined) {
    trunks = [];
    for (const part of trunksText.split(';')) {
      const t = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
      const a = Number(t?.[1]);
      const b = t?.[2] === undefined ? a : Number(t[2]);
      if (!t || a < 1 || b > 4094 || a > b)
        return `expected trunks=vid[-vid][;vid…] with VLAN ids 1..4094, got trunks=${trunksText}`;
      trunks.push([a, b]);
    }
  }
  const bridge = kv.get('bridge');
  const ip = kv.get('ip');
  const ip6 = kv.get('ip6');
  const nic: GuestNic = {
    netid,
    index: Number(m[1]),
    mac,
    firewall: fw === '1',
    value,
    pos,
    ...(bridge !== undefined ? { bridge } : {}),
    ...(tag !== undefined ? { tag } : {}),
    ...(trunks !== undefined ? { trunks } : {}),
    ...(model !== undefined ? { model } : {}),
    ...(ip !== undefined ? { ip } : {}),
    ...(ip6 !== undefined ? { ip6 } : {}),
    ...(kv.get('link_down') === '1' ? { linkDown: true } : {}),
  };
  return { nic, problems };
}

/** Reads a qemu-server or LXC configuration file: its `netN:` lines (and `name:`/`hostname:`). */
export function readGuestConfig(text: string, file: string, kind: GuestKind, vmid: string): ReadResult<GuestConfig> {
  const issues: Issue[] = [];
  const nics: GuestNic[] = [];
  let name: string | undefined;
  let inSnapshot = false;
  text.split('\n').forEach((raw, idx) => {
    const line = raw.replace(/\r$/, '').trim();
    const pos = filePos(file, idx + 1);
    if (line === '' || line.startsWith('#')) return;
    if (/^\[.*\]$/.test(line)) {
      inSnapshot = true;
      return;
    }
    if (inSnapshot) return;
    const m = /^([a-z][a-z0-9_-]*):\s*(.*)$/i.exec(line);
    if (!m) {
      issues.push(issue('pve-guest-bad-line', `expected 'key: value', got '${line}'`, pos));
      return;
    }
    const key = m[1]!;
    if (key === 'name' || key === 'hostname') name = m[2]!;
    if (!/^net\d+$/.test(key)) return;
    const r = parseNetValue(key, m[2]!, kind, pos);
    if (typeof r === 'string') {
      issues.push(issue('pve-guest-bad-net', `${key}: ${r}`, pos));
      return;
    }
    for (const p of r.problems) issues.push(issue('pve-guest-net-property', `${key}: ${p}`, pos, 'warning'));
    nics.push(r.nic);
  });
  return { value: { kind, vmid, file, nics, ...(name !== undefined ? { name } : {}) }, issues };
}

/** NICs in the order pve-firewall processes them: string order of the key (`net0, net1, net10, net2`). */
export function nicsInFirewallOrder(g: GuestConfig): GuestNic[] {
  return [...g.nics].sort((a, b) => (a.netid < b.netid ? -1 : a.netid > b.netid ? 1 : 0));
}

/** The host-side interface of a NIC: `tap<vmid>i<n>` (QEMU) or `veth<vmid>i<n>` (LXC). */
export function guestIface(g: { kind: GuestKind; vmid: string }, nic: { index: number }): string {
  return `${g.kind === 'qemu' ? 'tap' : 'veth'}${g.vmid}i${nic.index}`;
}
