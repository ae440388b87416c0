/**
 * Compiles a Proxmox VE node's firewall configuration into the guest part of what `proxmox-firewall` (the nftables
 * backend, `host.fw nftables: 1`) installs: the commands it adds to `table bridge proxmox-firewall-guests` on top of
 * its static skeleton (`resources/proxmox-firewall.nft`, not reproduced here): the cluster ipsets as `v4-dc/<name>`
 * sets, the security groups as `group-<name>-in|out|forward` chains, and per enabled guest one `guest-<vmid>-in` and
 * one `guest-<vmid>-out` chain with its ipsets, ipfilter and macfilter rules, option jumps, user rules, log and
 * policy, and its NICs in the `vm-map-in` / `vm-map-out` dispatch maps. Order and forms follow proxmox-firewall
 * 1.2.3's integration-test snapshot (docs/proxmox.md says what differs from pve-firewall). The host/cluster table
 * (`table inet proxmox-firewall`) and SDN sets are not generated. Every line keeps its origin. Never throws.
 */
import { ICMP_TYPES_BY_NAME, ICMPV6_TYPES_BY_NAME } from '../netfilter/names.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit, type Origin } from '../source/origin.ts';
import { macToLinkLocal, nicOrigin, optionOrigin, type PveNodeInput, ruleOrigin } from './compile.ts';
import {
  expandMacro,
  type FwConfig,
  type FwOptionValue,
  type FwRule,
  type IpVersion,
  LOG_LEVELS,
  type MacroRule,
  parseIpOrCidr,
  resolveAlias,
  servicePort,
} from './fw-config.ts';
import { type GuestConfig, guestIface, nicsInFirewallOrder } from './guest-config.ts';

export const PVE_NFT_GUEST_TABLE = 'bridge proxmox-firewall-guests';
export const PVE_NFT_HOST_TABLE = 'inet proxmox-firewall';
export type PveNftTable = typeof PVE_NFT_GUEST_TABLE | typeof PVE_NFT_HOST_TABLE;

/** One `nft -f` command line and where it came from. */
export interface PveNftLine {
  readonly text: string;
  readonly origin: Origin;
  /** The table the command is about. */
  readonly table: PveNftTable;
}

export interface PveNftCompiled {
  /** False when cluster.fw does not enable the firewall: nothing is generated. */
  readonly enabled: boolean;
  /** host.fw asks for the nftables backend (`nftables: 1`). */
  readonly hostWantsNftables: boolean;
  /** host.fw `enable` (default on): the host/cluster table is generated; off, proxmox-firewall deletes it. */
  readonly hostEnabled: boolean;
  readonly lines: readonly PveNftLine[];
  readonly issues: readonly Issue[];
  /** Rules pve-firewall's parser refuses (the reader warned) that proxmox-firewall's accepts and compiles. */
  readonly acceptedDespiteErrors: readonly FwRule[];
}

class NftError extends Error {}

interface Scope {
  readonly cluster: FwConfig;
  readonly fw: FwConfig | undefined;
  readonly vmid: string | undefined;
}

const V6_ICMP_NFT: Readonly<Record<string, string>> = {
  'neighbor-solicitation': 'nd-neighbor-solicit',
  'neighbour-solicitation': 'nd-neighbor-solicit',
  'neighbor-advertisement': 'nd-neighbor-advert',
  'neighbour-advertisement': 'nd-neighbor-advert',
  'router-solicitation': 'nd-router-solicit',
  'router-advertisement': 'nd-router-advert',
  redirect: 'nd-redirect',
};

/** `dc`-style set name for an nftables set: `v4-dc/name`, `v6-guest-100/name`. */
export function pveNftSetName(ipversion: IpVersion, scope: string, name: string): string {
  return `v${ipversion}-${scope}/${name}`;
}

/** An address as proxmox-firewall writes it: a CIDR with its prefix always (`/32`, `/128`), ranges as `a-b`. */
function nftAddr(text: string): { text: string; ipversion: IpVersion } | undefined {
  const r = /^([^-]+)-([^-]+)$/.exec(text);
  if (r) {
    const a = parseIpOrCidr(r[1]!);
    return a ? { text, ipversion: a.ipversion } : undefined;
  }
  const p = parseIpOrCidr(text);
  if (!p) return undefined;
  return { text: text.includes('/') ? text : `${text}/${p.ipversion === 4 ? 32 : 128}`, ipversion: p.ipversion };
}

/** One address spec (`-source`/`-dest`, or an ipset entry) resolved: per IP version its nft match, or none. */
function addressMatch(spec: string, dir: 'saddr' | 'daddr', sc: Scope): Partial<Record<IpVersion, string>> {
  if (spec.startsWith('+')) {
    const m = /^\+(guest\/|dc\/|sdn\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(spec);
    if (!m) throw new NftError(`invalid ipset reference '${spec}'`);
    const scope = m[1] ?? '';
    const name = m[2]!;
    const key = name.toLowerCase();
    let set: string;
    if ((scope === '' || scope === 'guest/') && sc.fw?.ipsets.has(key) && sc.vmid !== undefined)
      set = `guest-${sc.vmid}/${name}`;
    else if ((scope === '' || scope === 'dc/') && sc.cluster.ipsets.has(key)) set = `dc/${name}`;
    else if (scope === 'sdn/') throw new NftError(`SDN ipset '${spec}' (SDN is not modelled)`);
    else throw new NftError(`no such ipset '${spec}'`);
    const one = (v: IpVersion) => {
      const fam = v === 4 ? 'ip' : 'ip6';
      return `${fam} ${dir} @v${v}-${set} ${fam} ${dir} != @v${v}-${set}-nomatch`;
    };
    return { 4: one(4), 6: one(6) };
  }
  const parts: { text: string; ipversion: IpVersion }[] = [];
  for (const el of spec.split(',')) {
    const am = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(el);
    if (am) {
      const e = resolveAlias(am[2]!, am[1] ?? '', sc.fw, sc.cluster);
      if (!e) throw new NftError(`no such alias '${el}'`);
      parts.push(nftAddr(e.cidr)!);
      continue;
    }
    const a = nftAddr(el);
    if (!a) throw new NftError(`invalid address '${el}'`);
    parts.push(a);
  }
  const v = parts[0]!.ipversion;
  const body = parts.length === 1 ? parts[0]!.text : `{ ${parts.map((p) => p.text).join(', ')} }`;
  return { [v]: `${v === 4 ? 'ip' : 'ip6'} ${dir} ${body}` };
}

function portMatch(list: string): string {
  const items = list.split(',').map((p) => {
    const [a, b] = p.split(':').map((x) => (/^\d+$/.test(x) ? x : String(servicePort(x) ?? x)));
    return b === undefined ? a! : `${a}-${b}`;
  });
  return items.length === 1 ? items[0]! : `{ ${items.join(', ')} }`;
}

function icmpMatch(proto: string, type: string): string {
  const v6 = proto === 'icmpv6' || proto === 'ipv6-icmp';
  const kw = v6 ? 'icmpv6' : 'icmp';
  const named = (v6 ? ICMPV6_TYPES_BY_NAME : ICMP_TYPES_BY_NAME).get(type);
  if (/^\d+(\/\d+)?$/.test(type)) {
    const [t, c] = type.split('/');
    return c === undefined ? `${kw} type ${t}` : `${kw} type ${t} ${kw} code ${c}`;
  }
  if (named?.code !== undefined) return `${kw} type ${named.type} ${kw} code ${named.code}`;
  return `${kw} type ${v6 ? (V6_ICMP_NFT[type] ?? type) : type}`;
}

/**
 * A rule's or policy's verdict. In the bridge table's IN direction (a guest's or group's) REJECT is a plain drop;
 * everywhere else it jumps to `do-reject` (`rule.rs` `generate_verdict`).
 */
function verdict(action: string, dir: Dir, table: PveNftTable): string {
  switch (action) {
    case 'ACCEPT':
      return 'accept';
    case 'DROP':
      return 'drop';
    case 'REJECT':
      return dir === 'in' && table === PVE_NFT_GUEST_TABLE ? 'drop' : 'jump do-reject';
    default:
      throw new NftError(`unknown action '${action}'`);
  }
}

type Dir = 'in' | 'out' | 'forward';

class NftCtx {
  readonly lines: PveNftLine[] = [];
  /** The table the next commands are about. */
  table: PveNftTable = PVE_NFT_GUEST_TABLE;
  readonly issues: Issue[] = [];
  readonly acceptedDespiteErrors: FwRule[] = [];
  /** `limit rate 1/second burst 5 packets ` or empty when log_ratelimit is off. */
  logLimit = 'limit rate 1/second burst 5 packets ';
  constructor(readonly cluster: FwConfig) {}
  add(text: string, origin: Origin): void {
    this.lines.push({ text, origin, table: this.table });
  }
  rule(chain: string, body: string, origin: Origin): void {
    this.add(`add rule ${this.table} ${chain} ${body}`, origin);
  }
  chain(chain: string, origin: Origin): void {
    this.add(`add chain ${this.table} ${chain}`, origin);
    this.add(`flush chain ${this.table} ${chain}`, origin);
  }
  log(chain: string, vmid: string, level: string | undefined, action: string, origin: Origin): void {
    if (level === undefined || level === 'nolog') return;
    const n = LOG_LEVELS[level];
    if (n === undefined) return;
    this.rule(chain, `${this.logLimit}log prefix ":${vmid}:${n}:${chain}: ${action}: " group 0`, origin);
  }
}

function setDecl(ctx: NftCtx, name: string, ipversion: IpVersion, origin: Origin): void {
  for (const n of [name, `${name}-nomatch`]) {
    ctx.add(`add set ${ctx.table} ${n} { type ipv${ipversion}_addr; flags interval; auto-merge; }`, origin);
    ctx.add(`flush set ${ctx.table} ${n}`, origin);
  }
}

function elements(ctx: NftCtx, set: string, items: readonly string[], origin: Origin): void {
  if (items.length > 0) ctx.add(`add element ${ctx.table} ${set} { ${items.join(', ')} }`, origin);
}

/** Declares an ipset (both versions, each with its `-nomatch` twin) and its elements, in proxmox-firewall's order. */
function ipsetSets(
  ctx: NftCtx,
  scope: string,
  name: string,
  entries: readonly { cidr: string; nomatch: boolean }[],
  sc: Scope,
  origin: Origin,
): void {
  for (const v of [4, 6] as const) {
    const set = pveNftSetName(v, scope, name);
    setDecl(ctx, set, v, origin);
    const match: string[] = [];
    const nomatch: string[] = [];
    for (const e of entries) {
      let addrs: { text: string; ipversion: IpVersion }[];
      const direct = nftAddr(e.cidr);
      if (direct) addrs = [direct];
      else {
        const am = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(e.cidr);
        const a = am ? resolveAlias(am[2]!, am[1] ?? '', sc.fw, sc.cluster) : undefined;
        if (!a) {
          ctx.issues.push(
            issue('pve-nft-bad-entry', `ipset ${name}: cannot resolve '${e.cidr}'`, origin.pos, 'warning'),
          );
          continue;
        }
        addrs = [nftAddr(a.cidr)!];
      }
      for (const a of addrs) if (a.ipversion === v) (e.nomatch ? nomatch : match).push(a.text);
    }
    elements(ctx, set, match, origin);
    elements(ctx, `${set}-nomatch`, nomatch, origin);
  }
}

/**
 * A macro's rules. proxmox-firewall has one table for both IP versions (`Ping` is an ICMP and an ICMPv6 echo
 * request): for a rule not bound to a version, pve-firewall's IPv4 and IPv6 expansions together, each entry once.
 */
function macroRules(macro: string, ipversion: IpVersion | undefined): readonly MacroRule[] {
  if (ipversion !== undefined) return expandMacro(macro, ipversion) ?? [];
  const seen = new Set<string>();
  return [...(expandMacro(macro, 4) ?? []), ...(expandMacro(macro, 6) ?? [])].filter((m) => {
    const k = JSON.stringify(m);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The nft rule bodies for one user rule (one per IP version its addresses need; macros expand to several). */
function ruleBodies(r: FwRule, sc: Scope, action: string, ifm: string): string[] {
  const protos: { proto?: string; dport?: string; sport?: string }[] =
    r.macro !== undefined
      ? macroRules(r.macro, r.ipversion).map((m) => ({
          proto: m.proto,
          ...(m.dport !== undefined ? { dport: m.dport } : {}),
          ...(m.sport !== undefined ? { sport: m.sport } : {}),
        }))
      : [
          {
            ...(r.proto !== undefined ? { proto: r.proto } : {}),
            ...(r.dport !== undefined ? { dport: r.dport } : {}),
            ...(r.sport !== undefined ? { sport: r.sport } : {}),
          },
        ];
  const src = r.source !== undefined ? addressMatch(r.source, 'saddr', sc) : undefined;
  const dst = r.dest !== undefined ? addressMatch(r.dest, 'daddr', sc) : undefined;
  const versions: (IpVersion | undefined)[] =
    src === undefined && dst === undefined
      ? [undefined]
      : ([4, 6] as const).filter((v) => (src === undefined || src[v]) && (dst === undefined || dst[v]));
  const out: string[] = [];
  for (const p of protos) {
    let l4 = '';
    if (p.proto !== undefined) {
      if (r.icmpType !== undefined && /^(icmp|icmpv6|ipv6-icmp)$/.test(p.proto))
        l4 = `${icmpMatch(p.proto, r.icmpType)} `;
      else if (p.dport !== undefined && /^(icmp|icmpv6|ipv6-icmp)$/.test(p.proto))
        l4 = `${icmpMatch(p.proto, p.dport)} `;
      else {
        l4 = `meta l4proto ${p.proto === 'ipv6-icmp' ? 'icmpv6' : p.proto} `;
        if (p.sport !== undefined) l4 += `th sport ${portMatch(p.sport)} `;
        if (p.dport !== undefined) l4 += `th dport ${portMatch(p.dport)} `;
      }
    }
    for (const v of versions) {
      const addr = [v !== undefined ? src?.[v] : undefined, v !== undefined ? dst?.[v] : undefined]
        .filter((x) => x !== undefined)
        .map((x) => `${x} `)
        .join('');
      out.push(`${ifm}${l4}${addr}${action}`);
    }
  }
  return out;
}

/**
 * The interface match of a rule with `-i`: in a guest's chains the guest's own port (`oifname` for traffic to it,
 * `iifname` from it), in the host/cluster chains the host's interface (`iifname` in, `oifname` out); a FORWARD rule
 * cannot have one (`rule.rs` `handle_iface`).
 */
function ifaceMatch(iface: string | undefined, dir: Dir, guest: boolean): string {
  if (iface === undefined) return '';
  if (dir === 'forward') throw new NftError('an interface (-i) cannot be used in the FORWARD direction');
  const key = (dir === 'in') === guest ? 'oifname' : 'iifname';
  return `meta ${key} ${iface} `;
}

function userRules(
  ctx: NftCtx,
  chain: string,
  vmid: string,
  rules: readonly FwRule[],
  dir: Dir,
  sc: Scope,
  file: FwConfig,
  g: GuestConfig | undefined,
  via?: Origin,
): void {
  const guest = sc.vmid !== undefined;
  for (const r of rules) {
    if (r.type !== dir && r.type !== 'group') continue;
    if (r.enable && [r.source, r.dest].some((a) => a?.startsWith('+sdn/'))) {
      ctx.issues.push(
        issue('pve-nft-rule-skipped', `${r.text}: an SDN ipset (SDN is not modelled): rule left out`, r.pos, 'warning'),
      );
      continue;
    }
    // proxmox-firewall's own parser accepts ranges inside address lists (the snapshot has one); pve-firewall's does not
    if (!r.enable || (r.errors ?? []).some(([, m]) => !/range in a list/.test(m))) continue;
    if (r.errors && !ctx.acceptedDespiteErrors.includes(r)) ctx.acceptedDespiteErrors.push(r);
    const o = ruleOrigin(r, file, via);
    let iface: string | undefined;
    if (r.iface !== undefined && g !== undefined) {
      const nic = g.nics.find((n) => n.netid === r.iface);
      if (!nic) continue;
      iface = guestIface(g, nic);
    } else if (r.iface !== undefined) iface = r.iface;
    try {
      if (r.type === 'group') {
        // a group with an interface is left out of FORWARD (rule.rs: RuleGroup)
        if (dir === 'forward' && iface !== undefined) continue;
        ctx.rule(chain, `${ifaceMatch(iface, dir, guest)}jump group-${r.action.toLowerCase()}-${dir}`, o);
        continue;
      }
      const v = verdict(r.action, dir, ctx.table);
      const bodies = ruleBodies(r, sc, v, ifaceMatch(iface, dir, guest));
      for (const b of bodies) {
        const prefix = b.slice(0, b.lastIndexOf(v));
        if (r.log !== undefined && r.log !== 'nolog') {
          const n = LOG_LEVELS[r.log];
          if (n !== undefined)
            ctx.rule(chain, `${prefix}${ctx.logLimit}log prefix ":${vmid}:${n}:${chain}: ${r.action}: " group 0`, o);
        }
        ctx.rule(chain, b, o);
      }
    } catch (e) {
      if (!(e instanceof NftError)) throw e;
      ctx.issues.push(issue('pve-nft-rule-skipped', `${r.text}: ${e.message}`, r.pos, 'warning'));
    }
  }
}

function guestChains(ctx: NftCtx, g: GuestConfig, fw: FwConfig): void {
  const vmid = g.vmid;
  const opts = fw.options;
  const gO: Origin = {
    kind: 'file',
    label: `${fw.file} option enable: 1`,
    pos: fw.optionPos.enable!,
    data: { platform: 'proxmox', vmid },
  };
  const sc: Scope = { cluster: ctx.cluster, fw, vmid };
  const cin = `guest-${vmid}-in`;
  const cout = `guest-${vmid}-out`;
  ctx.chain(cin, gO);
  ctx.rule(cin, 'jump pre-vm-in', implicit('proxmox-firewall: conntrack and ARP first (pre-vm-in)'));
  ctx.chain(cout, gO);
  ctx.rule(cout, 'jump pre-vm-out', implicit('proxmox-firewall: conntrack first (pre-vm-out)'));
  for (const s of [...fw.ipsets.values()]) {
    ipsetSets(ctx, `guest-${vmid}`, s.name, s.entries, sc, {
      kind: 'file',
      label: `${fw.file} [IPSET ${s.name}]`,
      pos: s.pos,
    });
  }
  const nics = nicsInFirewallOrder(g).filter((n) => n.firewall);
  if (opts.ipfilter) {
    for (const nic of nics) {
      const iface = guestIface(g, nic);
      const name = `ipfilter-${nic.netid}`;
      const nO = nicOrigin(g, nic);
      const explicit = fw.ipsets.get(name);
      const o: Origin = explicit
        ? { kind: 'file', label: `${fw.file} [IPSET ${name}] (used because ipfilter: 1)`, pos: explicit.pos, via: nO }
        : optionOrigin(fw, 'ipfilter', '1', nO);
      if (!explicit) {
        // the implied set: the MAC's link-local address, and a container's ip=/ip6= (no fe80::/10 nomatch)
        const entries: { cidr: string; nomatch: boolean }[] = [{ cidr: macToLinkLocal(nic.mac), nomatch: false }];
        if (g.kind === 'lxc')
          for (const ip of [nic.ip, nic.ip6])
            if (ip?.includes('/')) {
              const a = parseIpOrCidr(ip.split('/')[0]!);
              if (a) entries.push({ cidr: a.cidr, nomatch: false });
            }
        ipsetSets(ctx, `guest-${vmid}`, name, entries, sc, o);
      }
      const s4 = `@v4-guest-${vmid}/${name}`;
      const s6 = `@v6-guest-${vmid}/${name}`;
      ctx.rule(cin, `meta oifname ${iface} arp daddr ip != ${s4} drop`, o);
      ctx.rule(cout, `meta iifname ${iface} ip saddr != ${s4} drop`, o);
      ctx.rule(cout, `meta iifname ${iface} ip saddr ${s4}-nomatch drop`, o);
      ctx.rule(cout, `meta iifname ${iface} ip6 saddr != ${s6} drop`, o);
      ctx.rule(cout, `meta iifname ${iface} ip6 saddr ${s6}-nomatch drop`, o);
      ctx.rule(cout, `meta iifname ${iface} arp saddr ip != ${s4} drop`, o);
    }
  }
  if (!(opts.macfilter !== undefined && opts.macfilter === 0) && nics.length > 0) {
    const o = optionOrigin(fw, 'macfilter', String(opts.macfilter ?? 1), implicit(`guest ${vmid}`));
    const pairs = nics.map((n) => `${guestIface(g, n)} . ${n.mac.toLowerCase()}`).join(', ');
    ctx.rule(cout, `iifname . ether saddr != { ${pairs} } drop`, o);
    ctx.rule(cout, `iifname . arp saddr ether != { ${pairs} } drop`, o);
  }
  const onOff = (key: string, def: number) => {
    const v = opts[key];
    return v === undefined ? def : Number(v) ? 1 : 0;
  };
  const optO = (key: string, def: number) => optionOrigin(fw, key, String(opts[key] ?? def), implicit(`guest ${vmid}`));
  const dhcp = onOff('dhcp', 1) ? 'allow' : 'block';
  ctx.rule(cin, `jump ${dhcp}-dhcp-in`, optO('dhcp', 1));
  ctx.rule(cout, `jump ${dhcp}-dhcp-out`, optO('dhcp', 1));
  const ndp = onOff('ndp', 1) ? 'allow' : 'block';
  ctx.rule(cin, `jump ${ndp}-ndp-in`, optO('ndp', 1));
  ctx.rule(cout, `jump ${ndp}-ndp-out`, optO('ndp', 1));
  ctx.rule(cout, `jump ${onOff('radv', 0) ? 'allow' : 'block'}-ra-out`, optO('radv', 0));
  ctx.rule(cout, 'meta protocol arp accept', implicit('proxmox-firewall: outgoing ARP accepted after the filters'));
  for (const [dir, chain, map, nameKey] of [
    ['in', cin, 'vm-map-in', 'oifname'],
    ['out', cout, 'vm-map-out', 'iifname'],
  ] as const) {
    ctx.rule(chain, `ct mark set ${vmid}`, implicit(`proxmox-firewall: conntrack mark = VMID ${vmid}`));
    userRules(ctx, chain, vmid, fw.rules, dir, sc, fw, g);
    if (nics.length > 0)
      ctx.add(
        `add element ${ctx.table} ${map} { ${nics.map((n) => `${guestIface(g, n)} : goto ${chain}`).join(', ')} }`,
        { kind: 'implicit', label: `proxmox-firewall: ${nameKey} of VMID ${vmid}'s firewalled NICs → ${chain}` },
      );
    const policy = String(dir === 'in' ? (opts.policy_in ?? 'DROP') : (opts.policy_out ?? 'ACCEPT'));
    const pO = optionOrigin(fw, `policy_${dir}`, policy, implicit(`guest ${vmid}`));
    ctx.log(chain, vmid, opts[`log_level_${dir}`] as string | undefined, policy, pO);
    try {
      ctx.rule(chain, verdict(policy, dir, ctx.table), pO);
    } catch {
      ctx.issues.push(
        issue('pve-nft-policy', `policy_${dir}: ${policy} is not ACCEPT, DROP or REJECT`, pO.pos, 'error'),
      );
    }
  }
}

/** The conntrack helpers `nf_conntrack_helpers` can name (proxmox-ve-rs `resources/ct_helper.json`). */
const CT_HELPERS: Readonly<
  Record<string, { readonly proto: 'tcp' | 'udp'; readonly port: number; readonly v4only: boolean }>
> = {
  amanda: { proto: 'udp', port: 10080, v4only: false },
  ftp: { proto: 'tcp', port: 21, v4only: false },
  irc: { proto: 'tcp', port: 6667, v4only: true },
  'netbios-ns': { proto: 'udp', port: 137, v4only: true },
  pptp: { proto: 'tcp', port: 1723, v4only: true },
  sane: { proto: 'tcp', port: 6566, v4only: false },
  sip: { proto: 'udp', port: 5060, v4only: false },
  snmp: { proto: 'udp', port: 161, v4only: true },
  tftp: { proto: 'udp', port: 69, v4only: false },
};

/** The management set (`v4-dc/management`, `v6-…`): the cluster's `[IPSET management]` plus the local network. */
function managementSet(ctx: NftCtx, input: PveNodeInput, sc: Scope): void {
  const s = input.cluster.ipsets.get('management');
  const entries = (s?.entries ?? []).filter((e) => !e.error).map((e) => ({ cidr: e.cidr, nomatch: e.nomatch }));
  const alias = input.cluster.aliases.get('local_network');
  const localnet = alias?.cidr ?? input.localNetwork;
  if (localnet !== undefined) entries.push({ cidr: localnet, nomatch: false });
  const o: Origin = s
    ? { kind: 'file', label: 'cluster.fw [IPSET management]', pos: s.pos }
    : alias
      ? { kind: 'file', label: `cluster.fw alias local_network ${alias.cidr}`, pos: alias.pos }
      : implicit(`proxmox-firewall: management addresses = the node's local network ${localnet ?? '(unknown)'}`);
  ipsetSets(ctx, 'dc', 'management', entries, sc, o);
}

/** The cluster's ipsets (but `management` and `ipfilter-*`) and security groups, in the table `ctx.table`. */
function clusterObjects(ctx: NftCtx, input: PveNodeInput, sc: Scope): void {
  managementSet(ctx, input, sc);
  for (const name of [...input.cluster.ipsets.keys()].sort()) {
    if (name === 'management' || name.startsWith('ipfilter-')) continue;
    const s = input.cluster.ipsets.get(name)!;
    const entries = s.entries.filter((e) => !e.error).map((e) => ({ cidr: e.cidr, nomatch: e.nomatch }));
    ipsetSets(ctx, 'dc', s.name, entries, sc, { kind: 'file', label: `cluster.fw [IPSET ${s.name}]`, pos: s.pos });
  }
  for (const name of [...input.cluster.groups.keys()].sort()) {
    const grp = input.cluster.groups.get(name)!;
    const gO: Origin = { kind: 'file', label: `cluster.fw security group ${grp.name}`, pos: grp.pos };
    for (const dir of ['in', 'out', 'forward'] as const) {
      const chain = `group-${name}-${dir}`;
      ctx.chain(chain, gO);
      userRules(ctx, chain, '0', grp.rules, dir, sc, input.cluster, undefined, gO);
    }
  }
}

/** One log rule (`log-invalid-tcp`, `log-smurfs`, a policy's) at a level, when the level logs. */
function logRule(ctx: NftCtx, chain: string, level: FwOptionValue | undefined, action: string, origin: Origin): void {
  ctx.log(chain, '0', level === undefined ? undefined : String(level), action, origin);
}

/**
 * `table inet proxmox-firewall`: what `full_host_fw` adds when host.fw's `enable` is on — the management and cluster
 * sets, the groups, the cluster chains (rules, then the log rule and the policy of each direction), the conntrack
 * helpers, the host options (NDP, SYN flood, TCP flags, smurfs, invalid conntrack) and the host rules.
 */
function hostTable(ctx: NftCtx, input: PveNodeInput): void {
  const sc: Scope = { cluster: input.cluster, fw: undefined, vmid: undefined };
  const host = input.host;
  const hopt = host.options;
  clusterObjects(ctx, input, sc);
  for (const dir of ['in', 'out', 'forward'] as const) {
    const chain = `cluster-${dir}`;
    userRules(ctx, chain, '0', input.cluster.rules, dir, sc, input.cluster, undefined);
    const def = dir === 'in' ? 'DROP' : 'ACCEPT';
    const policy = String(input.cluster.options[`policy_${dir}`] ?? def);
    const pO = optionOrigin(input.cluster, `policy_${dir}`, policy, implicit(`cluster ${dir.toUpperCase()} policy`));
    logRule(ctx, chain, hopt[`log_level_${dir}`], policy, pO);
    try {
      ctx.rule(chain, verdict(policy, dir, ctx.table), pO);
    } catch {
      ctx.issues.push(
        issue('pve-nft-policy', `policy_${dir}: ${policy} is not ACCEPT, DROP or REJECT`, pO.pos, 'error'),
      );
    }
  }
  const helpers = hopt.nf_conntrack_helpers;
  if (helpers !== undefined) {
    const hO = optionOrigin(host, 'nf_conntrack_helpers', String(helpers), implicit('conntrack helpers'));
    for (const name of String(helpers).split(',')) {
      const h = CT_HELPERS[name];
      if (!h) {
        ctx.issues.push(issue('pve-nft-ct-helper', `unknown conntrack helper '${name}'`, hO.pos, 'warning'));
        continue;
      }
      const obj = `helper-${name}-${h.proto}`;
      ctx.add(
        `add ct helper ${ctx.table} ${obj} { type "${name}" protocol ${h.proto};${h.v4only ? ' l3proto ip;' : ''} }`,
        hO,
      );
      const m = `meta l4proto ${h.proto} th dport ${h.port}`;
      ctx.rule('ct-in', `${m} ct state { new, established } accept`, hO);
      ctx.rule('ct-in', `${m} ct helper set "${obj}"`, hO);
      ctx.rule('ct-in', `ct helper "${name}" accept`, hO);
    }
  }
  const on = (key: string, def: boolean) => (hopt[key] === undefined ? def : Boolean(Number(hopt[key])));
  const hO = (key: string, def: boolean) =>
    optionOrigin(host, key, String(hopt[key] ?? (def ? 1 : 0)), implicit('host option'));
  const ndp = on('ndp', true) ? 'allow' : 'block';
  ctx.rule('option-in', `jump ${ndp}-ndp-in`, hO('ndp', true));
  ctx.rule('option-out', `jump ${ndp}-ndp-out`, hO('ndp', true));
  if (on('protection_synflood', false)) {
    const o = hO('protection_synflood', false);
    const rate = Number(hopt.protection_synflood_rate ?? 200);
    const burst = Number(hopt.protection_synflood_burst ?? 1000);
    ctx.rule('option-in', 'jump block-synflood', o);
    for (const [v, fam] of [
      [4, 'ip'],
      [6, 'ip6'],
    ] as const)
      ctx.rule(
        'ratelimit-synflood',
        `update @v${v}-synflood-limit { ${fam} saddr limit rate over ${rate}/second burst ${burst} packets } drop`,
        o,
      );
  }
  if (on('tcpflags', false)) {
    const o = hO('tcpflags', false);
    ctx.rule('option-in', 'jump block-invalid-tcp', o);
    logRule(ctx, 'log-invalid-tcp', hopt.tcp_flags_log_level, 'DROP', o);
  }
  if (on('nosmurfs', true)) {
    const o = hO('nosmurfs', true);
    ctx.rule('option-in', 'jump block-smurfs', o);
    logRule(ctx, 'log-smurfs', hopt.smurf_log_level, 'DROP', o);
  }
  if (!on('nf_conntrack_allow_invalid', false)) {
    const o = optionOrigin(host, 'nf_conntrack_allow_invalid', '0', implicit('traffic in conntrack state INVALID'));
    ctx.table = PVE_NFT_GUEST_TABLE;
    ctx.rule('invalid-conntrack', 'drop', o);
    ctx.table = PVE_NFT_HOST_TABLE;
    ctx.rule('invalid-conntrack', 'drop', o);
  }
  for (const dir of ['in', 'out', 'forward'] as const)
    userRules(ctx, `host-${dir}`, '0', host.rules, dir, sc, host, undefined);
}

/**
 * What proxmox-firewall adds to its skeleton for this node's configuration, in its order (`full_host_fw`): the
 * host/cluster table `inet proxmox-firewall` (or its deletion when host.fw turns the host firewall off), then the
 * guest table `bridge proxmox-firewall-guests` (the cluster sets and groups again, then each enabled guest).
 */
export function compileProxmoxFirewallNft(input: PveNodeInput): PveNftCompiled {
  const ctx = new NftCtx(input.cluster);
  const hostWantsNftables = Boolean(Number(input.host.options.nftables ?? 0));
  const hostEnabled = input.host.options.enable === undefined || Boolean(Number(input.host.options.enable));
  if (!input.cluster.options.enable)
    return { enabled: false, hostWantsNftables, hostEnabled, lines: [], issues: ctx.issues, acceptedDespiteErrors: [] };
  const rl = input.cluster.options.log_ratelimit;
  if (rl !== undefined) {
    const kv = new Map<string, string>([
      ['enable', '1'],
      ['rate', '1/second'],
      ['burst', '5'],
    ]);
    for (const [i, part] of String(rl).split(',').entries()) {
      const eq = part.indexOf('=');
      if (eq < 0 && i === 0) kv.set('enable', part);
      else kv.set(part.slice(0, eq), part.slice(eq + 1));
    }
    ctx.logLimit = kv.get('enable') === '0' ? '' : `limit rate ${kv.get('rate')} burst ${kv.get('burst')} packets `;
  }
  ctx.table = PVE_NFT_HOST_TABLE;
  if (hostEnabled) hostTable(ctx, input);
  else
    ctx.add(`delete table ${PVE_NFT_HOST_TABLE}`, optionOrigin(input.host, 'enable', '0', implicit('host firewall')));
  ctx.table = PVE_NFT_GUEST_TABLE;
  const guests = [...input.guests]
    .sort((a, b) => Number(a.config.vmid) - Number(b.config.vmid))
    .filter(({ fw }) => fw?.present && Number(fw.options.enable ?? 0));
  if (guests.length > 0) clusterObjects(ctx, input, { cluster: input.cluster, fw: undefined, vmid: undefined });
  else ctx.add(`delete table ${PVE_NFT_GUEST_TABLE}`, implicit('proxmox-firewall: no guest has its firewall enabled'));
  for (const { config, fw } of guests) guestChains(ctx, config, fw!);
  return {
    enabled: true,
    hostWantsNftables,
    hostEnabled,
    lines: ctx.lines,
    issues: ctx.issues,
    acceptedDespiteErrors: ctx.acceptedDespiteErrors,
  };
}

/** The commands of one table. */
export function pveNftTableLines(out: PveNftCompiled, table: PveNftTable): readonly PveNftLine[] {
  return out.lines.filter((l) => l.table === table);
}

/** The commands as an `nft -f` script (to load after proxmox-firewall's skeleton). */
export function renderPveNft(out: PveNftCompiled): string {
  return out.lines.map((l) => `${l.text}\n`).join('');
}
