/** Reader for `ip addr show` (alias `ip a`) text output, and for `ip -j addr` JSON. */

import { parseIpv6 } from '../addr/ipv6.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { type Ipv4Prefix, parseIpv4Prefix } from '../addr/prefix.ts';
import { ifnameMessage, ifnameProblem } from '../source/ifname.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';

export interface InterfaceAddress {
  readonly prefix: Ipv4Prefix;
  /** The label (`lo:0`, `eth0:vip`), equal to the interface name when none was given. */
  readonly label: string;
  readonly scope: string;
  readonly secondary: boolean;
  readonly pos: Position;
}

export interface LinkInfo {
  readonly index: number;
  readonly name: string;
  /** The lower device of `eth0.100@eth0` (or the peer of a veth as `ip` prints it). */
  readonly lower?: string;
  readonly flags: readonly string[];
  readonly up: boolean;
  readonly mtu: number;
  readonly master?: string;
  readonly linkType: string;
  /**
   * The device's kind (`ip -d` prints it on the line after `link/`; without `-d` it is inferred where the output
   * tells: `vrrp.N@eth0` with a VRRP MAC is keepalived's macvlan, `eth0.100@eth0` a VLAN, `@ifN` a veth whose peer
   * lives in another namespace, a `MASTER` flag a bond).
   */
  readonly devKind?: DevKind;
  /** VLAN id of a VLAN sub-interface. */
  readonly vlanId?: number;
  /** macvlan mode (`private`, `vepa`, `bridge`, `passthru`, `source`), bond mode. */
  readonly mode?: string;
  /** For a veth printed as `eth0@if12`: the peer's ifindex in another namespace. */
  readonly peerIndex?: number;
  /** `permaddr` of a bond slave: its own MAC before the bond gave it the bond's. */
  readonly permaddr?: Mac;
  readonly mac?: Mac;
  /** `altname` lines (iproute2 >= 5.5): other names of the same device, accepted wherever a name is. */
  readonly altnames?: readonly string[];
  readonly addrs: readonly InterfaceAddress[];
  readonly addrs6: readonly string[];
  readonly pos: Position;
}

export type DevKind = 'macvlan' | 'vlan' | 'bond' | 'veth' | 'bridge' | 'dummy' | 'ipip' | 'tun' | 'other';

const DETAIL_KINDS: Readonly<Record<string, DevKind>> = {
  macvlan: 'macvlan',
  macvtap: 'macvlan',
  ipvlan: 'macvlan',
  vlan: 'vlan',
  bond: 'bond',
  team: 'bond',
  veth: 'veth',
  bridge: 'bridge',
  dummy: 'dummy',
  ipip: 'ipip',
  tun: 'tun',
};

/** keepalived's VMAC (RFC 5798): 00:00:5e:00:01:VRID. */
export function isVrrpMac(mac: string): boolean {
  return /^00:00:5e:00:01:[0-9a-f]{2}$/i.test(mac);
}

/** What the name, flags and MAC of a link tell about its kind when `ip` printed no details. */
function inferKind(l: Mutable): void {
  if (l.lower === 'NONE') delete l.lower;
  const ifN = l.lower !== undefined ? /^if(\d+)$/.exec(l.lower) : null;
  if (ifN) {
    l.devKind ??= 'veth';
    l.peerIndex = Number(ifN[1]);
    delete l.lower;
    return;
  }
  if (l.devKind !== undefined) return;
  if (l.flags.includes('MASTER')) {
    l.devKind = 'bond';
    return;
  }
  if (l.lower !== undefined) {
    const rest = l.name.startsWith(`${l.lower}.`) ? l.name.slice(l.lower.length + 1) : '';
    const vlan = /^\d+$/.test(rest) ? [rest, rest] : null;
    if (vlan) {
      l.devKind = 'vlan';
      l.vlanId ??= Number(vlan[1]);
    } else if ((l.mac !== undefined && isVrrpMac(l.mac)) || /^vrrp6?\.\d+$/.test(l.name)) l.devKind = 'macvlan';
  }
}

type Mutable = { -readonly [K in keyof LinkInfo]: LinkInfo[K] } & {
  addrs: InterfaceAddress[];
  addrs6: string[];
};

const HEAD = /^(\d+):\s+([^:\s@]+)(?:@([^:\s]+))?:\s+<([^>]*)>(.*)$/;

/** Drops a first line that is a shell prompt or the command itself (`$ ip addr`, `[root@h ~]# ip a`). */
export function isCommandLine(line: string, command: RegExp): boolean {
  return command.test(line.replace(/^.*?[#$>]\s*/, '')) && /[#$>]/.test(line);
}

export function readIpAddr(text: string, file: string): ReadResult<LinkInfo[]> {
  // JSON starts with `[{`, `[]` or `{` — a shell prompt such as `[root@h ~]#` does not.
  if (/^\s*(\[\s*[{\]]|\{)/.test(text)) return readIpAddrJson(text, file);
  const issues: Issue[] = [];
  const links: Mutable[] = [];
  let cur: Mutable | undefined;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    // trimEnd, not /\s+$/: the regex is quadratic on a long run of spaces.
    const line = raw.trimEnd();
    if (line.trim() === '') return;
    if (i === 0 && /[#$]\s*ip\b/.test(line)) return;
    const pos = filePos(file, lineNo);
    const head = HEAD.exec(line);
    if (head) {
      const rest = head[5]!;
      const bad = ifnameProblem(head[2]!);
      if (bad !== undefined) issues.push(issue('interface-name', ifnameMessage('interface', head[2]!, bad), pos));
      const flags = head[4]!.split(',').filter((f) => f !== '');
      const mtu = /\bmtu (\d+)/.exec(rest);
      // The kernel's MTU is an unsigned int (ip prints %u): larger cannot come from `ip addr`.
      if (mtu && !(mtu[1]!.length <= 10 && Number(mtu[1]) <= 0xffffffff))
        issues.push(issue('ip-addr.mtu', `expected an MTU 0-4294967295, found "${mtu[1]!.slice(0, 40)}"`, pos));
      const master = /\bmaster (\S+)/.exec(rest);
      cur = {
        index: Number(head[1]),
        name: head[2]!,
        flags,
        up: flags.includes('UP'),
        mtu: mtu ? Number(mtu[1]) : 1500,
        linkType: 'unknown',
        addrs: [],
        addrs6: [],
        pos,
      };
      if (head[3] !== undefined) cur.lower = head[3];
      if (master) cur.master = master[1]!;
      links.push(cur);
      return;
    }
    if (!/^\s/.test(line)) {
      issues.push(
        issue(
          'ip-addr.syntax',
          `expected an interface line like "2: eth0: <...> mtu 1500 ...", found "${line.trim()}"`,
          pos,
        ),
      );
      return;
    }
    if (!cur) {
      issues.push(issue('ip-addr.syntax', 'expected an interface line before its details', pos));
      return;
    }
    const words = line.trim().split(/\s+/);
    const w0 = words[0]!;
    if (w0.startsWith('link/')) {
      cur.linkType = w0.slice(5);
      if (words[1] !== undefined && cur.linkType !== 'none') {
        const m = parseMac(words[1]);
        if (m !== undefined) cur.mac = m;
        else if (cur.linkType === 'ether' || cur.linkType === 'loopback')
          issues.push(issue('ip-addr.mac', `expected a MAC address after ${w0}, found "${words[1]}"`, pos));
      }
      const perm = words.indexOf('permaddr');
      if (perm >= 0) {
        const m = parseMac(words[perm + 1] ?? '');
        if (m !== undefined) cur.permaddr = m;
      }
      return;
    }
    // `ip -d`: the device kind and its details on the line after `link/` (`vlan protocol 802.1Q id 100 …`).
    const detail = DETAIL_KINDS[w0];
    if (detail !== undefined && cur.devKind === undefined) {
      cur.devKind = detail;
      const id = words.indexOf('id');
      if (detail === 'vlan' && id >= 0 && Number.isInteger(Number(words[id + 1]))) cur.vlanId = Number(words[id + 1]);
      const mode = words.indexOf('mode');
      if (mode >= 0 && words[mode + 1] !== undefined) cur.mode = words[mode + 1]!;
      return;
    }
    if (w0 === 'inet') {
      const prefix = parseIpv4Prefix(words[1] ?? '');
      if (!prefix) {
        issues.push(
          issue('ip-addr.inet', `expected an IPv4 address/prefix after "inet", found "${words[1] ?? ''}"`, pos),
        );
        return;
      }
      const scopeAt = words.indexOf('scope');
      const scope = scopeAt >= 0 ? (words[scopeAt + 1] ?? 'global') : 'global';
      // The label is the last word when it is not a keyword value (`... scope global secondary eth0:1`).
      const last = words[words.length - 1]!;
      const label = last.startsWith(cur.name) ? last : cur.name;
      cur.addrs.push({ prefix, label, scope, secondary: words.includes('secondary'), pos });
      return;
    }
    if (w0 === 'inet6') {
      const [addr] = (words[1] ?? '').split('/');
      if (parseIpv6(addr ?? '') === undefined)
        issues.push(
          issue('ip-addr.inet6', `expected an IPv6 address/prefix after "inet6", found "${words[1] ?? ''}"`, pos),
        );
      else cur.addrs6.push(words[1]!);
      return;
    }
    if (w0 === 'altname' && words[1] !== undefined) {
      cur.altnames = [...(cur.altnames ?? []), words[1]];
      return;
    }
    // valid_lft lines, vlan/bridge details of `ip -d`: nothing the model needs.
  });
  if (links.length === 0)
    issues.push(issue('ip-addr.empty', 'expected `ip addr` output, found no interface', filePos(file, 1)));
  for (const l of links) inferKind(l);
  return { value: links, issues };
}

interface JsonAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
  label?: string;
  secondary?: boolean;
}
interface JsonLink {
  ifindex?: number;
  ifname?: string;
  link?: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  link_type?: string;
  address?: string;
  permaddr?: string;
  altnames?: string[];
  linkinfo?: { info_kind?: string; info_data?: { mode?: string; id?: number } };
  addr_info?: JsonAddrInfo[];
}

function readIpAddrJson(text: string, file: string): ReadResult<LinkInfo[]> {
  const issues: Issue[] = [];
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    return {
      value: undefined,
      issues: [issue('ip-addr.json', `expected \`ip -j addr\` JSON: ${(e as Error).message}`, filePos(file, 1))],
    };
  }
  if (!Array.isArray(data))
    return { value: undefined, issues: [issue('ip-addr.json', 'expected a JSON array of links', filePos(file, 1))] };
  const links: Mutable[] = [];
  for (const [n, l] of (data as JsonLink[]).entries()) {
    const pos = filePos(file, 1);
    if (typeof l.ifname !== 'string') {
      issues.push(issue('ip-addr.json', `link #${n + 1} has no "ifname"`, pos));
      continue;
    }
    const bad = ifnameProblem(l.ifname);
    if (bad !== undefined) issues.push(issue('interface-name', ifnameMessage('"ifname"', l.ifname, bad), pos));
    const flags = l.flags ?? [];
    const addrs: InterfaceAddress[] = [];
    const addrs6: string[] = [];
    for (const a of l.addr_info ?? []) {
      if (a.family === 'inet') {
        const prefix = parseIpv4Prefix(`${a.local}/${a.prefixlen}`);
        if (!prefix) issues.push(issue('ip-addr.inet', `link ${l.ifname}: bad address ${a.local}/${a.prefixlen}`, pos));
        else
          addrs.push({
            prefix,
            label: a.label ?? l.ifname,
            scope: a.scope ?? 'global',
            secondary: a.secondary === true,
            pos,
          });
      } else if (a.family === 'inet6' && a.local) addrs6.push(`${a.local}/${a.prefixlen}`);
    }
    const mac = l.address ? parseMac(l.address) : undefined;
    const link: Mutable = {
      index: l.ifindex ?? n + 1,
      name: l.ifname,
      flags,
      up: flags.includes('UP'),
      mtu: l.mtu ?? 1500,
      linkType: l.link_type ?? 'unknown',
      addrs,
      addrs6,
      pos,
      ...(l.link ? { lower: l.link } : {}),
      ...(l.master ? { master: l.master } : {}),
      ...(mac ? { mac } : {}),
      ...(Array.isArray(l.altnames) ? { altnames: l.altnames.filter((x) => typeof x === 'string') } : {}),
    };
    const info = l.linkinfo;
    const kind = info?.info_kind !== undefined ? DETAIL_KINDS[info.info_kind] : undefined;
    if (kind !== undefined) link.devKind = kind;
    else if (info?.info_kind !== undefined) link.devKind = 'other';
    if (info?.info_data?.mode !== undefined) link.mode = info.info_data.mode;
    if (kind === 'vlan' && info?.info_data?.id !== undefined) link.vlanId = info.info_data.id;
    const perm = l.permaddr ? parseMac(l.permaddr) : undefined;
    if (perm) link.permaddr = perm;
    inferKind(link);
    links.push(link);
  }
  return { value: links, issues };
}
