/**
 * Compiles a Proxmox VE node's firewall configuration into the rules `pve-firewall` (iptables backend) installs: the
 * iptables and ip6tables `filter` and `raw` tables, the ipsets and the ebtables `filter` table, as the exact rule
 * strings pve-firewall generates (they are what its change digests cover, and what `iptables-restore` reads). The
 * order of operations, the defaults and the quirks follow pve-firewall 6.0.4 (docs/proxmox.md names the ones that
 * surprise). Every generated rule carries its origin: the `.fw` line, option or NIC line it comes from, through the
 * security group and the guest NIC that pulled it in; fixed rules carry an implicit origin. Never throws.
 */
import { createHash } from 'node:crypto';
import { parseIpv6 } from '../addr/ipv6.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { implicit, type Origin, type Position } from '../source/origin.ts';
import type { CorosyncConf } from './corosync.ts';
import {
  checkPortList,
  expandMacro,
  type FwConfig,
  type FwConfigLike,
  type FwRule,
  type IpVersion,
  LOG_LEVELS,
  PROTOCOLS_WITH_PORTS,
  parseIpOrCidr,
  protoIsIcmp,
  resolveAlias,
} from './fw-config.ts';
import { type GuestConfig, type GuestNic, guestIface, nicsInFirewallOrder } from './guest-config.ts';

/** One generated rule: its text exactly as pve-firewall writes it (`-A CHAIN …`) and where it came from. */
export interface PveRule {
  readonly text: string;
  readonly origin: Origin;
}

/** Chain name → rules, for one table. */
export type PveRuleset = Map<string, PveRule[]>;

export interface PveIpset {
  readonly name: string;
  readonly family: 'inet' | 'inet6';
  /** `create …` then `add …` lines, as generated. */
  readonly lines: readonly string[];
  /** Each entry with where it came from (its `[IPSET]` line, the NIC whose MAC made a link-local, …). */
  readonly entries: readonly { readonly cidr: string; readonly nomatch: boolean; readonly origin: Origin }[];
  readonly origin: Origin;
}

export interface PveGuestInput {
  readonly config: GuestConfig;
  /** The guest's `<vmid>.fw`; undefined (or not present) when the file does not exist. */
  readonly fw?: FwConfig;
}

export interface PveNodeInput {
  readonly cluster: FwConfig;
  readonly host: FwConfig;
  /** The guests whose configuration lives on this node. */
  readonly guests: readonly PveGuestInput[];
  readonly corosync?: CorosyncConf;
  /** The node's name (which corosync node is "self"). */
  readonly nodeName: string;
  /** The network holding the node's cluster address (`pve-firewall localnet`), unless cluster.fw defines `local_network`. */
  readonly localNetwork?: string;
}

export interface PveCompiled {
  /** False when cluster.fw does not enable the firewall: then nothing is generated. */
  readonly enabled: boolean;
  readonly filter4: PveRuleset;
  readonly filter6: PveRuleset;
  readonly raw4: PveRuleset;
  readonly raw6: PveRuleset;
  /** Set name → set. */
  readonly ipsets: ReadonlyMap<string, PveIpset>;
  readonly ebtables: PveRuleset;
  readonly issues: readonly Issue[];
}

const ACCEPT_MARK_ON = '0x80000000/0x80000000';
const ACCEPT_MARK_OFF = '0x00000000/0x80000000';
const MAX_IPSET_ID = 31 - 'PVEFW-'.length - '_swap'.length;

/** FNV-1a 32-bit with the result masked to 31 bits, printed as uppercase hex (pve-common `fnv31a_hex`). */
export function fnv31aHex(text: string): string {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h & 0x7fffffff).toString(16).toUpperCase();
}

/** `PVEFW-<vmid>-<name>-v<4|6>`, hashed when longer than ipset names allow. */
export function ipsetChainName(vmid: string | number, name: string, ipversion: IpVersion): string {
  const id = `${vmid}-${name}-v${ipversion}`;
  return `PVEFW-${id.length > MAX_IPSET_ID ? fnv31aHex(id) : id}`;
}

/** The EUI-64 link-local address of a MAC (`fe80::…`), as pve-firewall derives it. */
export function macToLinkLocal(mac: string): string {
  const p = mac.split(':').map((x) => Number.parseInt(x, 16));
  p[0] = p[0]! ^ 0x02;
  const h = (a: number, b: number) => ((a << 8) | b).toString(16);
  return parseIpv6(`fe80::${h(p[0]!, p[1]!)}:${h(p[2]!, 0xff)}:${h(0xfe, p[3]!)}:${h(p[4]!, p[5]!)}`) as string;
}

/** A rule as pve-firewall's generator sees it (user rules and the fixed rules alike). */
interface GenRule {
  match?: string;
  target?: string;
  action?: string;
  ifaceIn?: string;
  ifaceOut?: string;
  source?: string;
  dest?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  icmpType?: string;
  dsttype?: string;
  log?: string;
  logmsg?: string;
  macro?: string;
}

class Ctx {
  readonly issues: Issue[] = [];
  /** pve-firewall substitutes a rule's action in place; the next use of the same rule sees the substituted one. */
  readonly actions = new Map<FwRule, string>();
  logRateLimit: string | undefined = '--limit 1/sec';
  constructor(readonly cluster: FwConfig) {}
  action(r: FwRule): string {
    return this.actions.get(r) ?? r.action;
  }
}

function addRule(
  rs: PveRuleset,
  chain: string,
  match: string,
  action: string,
  origin: Origin,
  ctx: Ctx,
  log?: string,
  logmsg?: string,
  vmid?: string | number,
): void {
  const rules = rs.get(chain);
  if (rules === undefined) {
    ctx.issues.push(issue('pve-internal', `no such chain '${chain}'`));
    return;
  }
  if (log !== undefined)
    rules.push({ text: `-A ${chain} ${match} ${logRuleBase(ctx, chain, vmid, logmsg, LOG_LEVELS[log]!)}`, origin });
  rules.push({ text: `-A ${chain} ${match.length > 0 ? `${match} ` : ''}${action}`, origin });
}

function logRuleBase(
  ctx: Ctx,
  chain: string,
  vmid: string | number | undefined,
  msg: string | undefined,
  level: number,
) {
  const rlimit = ctx.logRateLimit === undefined ? '' : `-m limit ${ctx.logRateLimit} `;
  return `${rlimit}-j NFLOG --nflog-prefix ":${vmid ?? 0}:${level}:${chain}: ${msg ?? ''}"`;
}

function createChain(rs: PveRuleset, chain: string, ctx: Ctx): boolean {
  if (chain.length > 28 || chain.includes(':')) {
    ctx.issues.push(issue('pve-chain-name', `invalid chain name '${chain}' (28 characters at most, no ':')`));
    return false;
  }
  if (!rs.has(chain)) rs.set(chain, []);
  return true;
}

class GenError extends Error {}

function srcOrDstMatch(
  adr: string,
  dir: 's' | 'd',
  ipversion: IpVersion,
  cluster: FwConfigLike | undefined,
  fw: (FwConfigLike & { vmid?: string }) | undefined,
): string {
  const srcdst = dir === 's' ? 'src' : 'dst';
  if (adr.startsWith('+')) {
    const m = /^\+(guest\/|dc\/|sdn\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(adr);
    if (!m) throw new GenError(`invalid security group name '${adr}'`);
    const scope = m[1] ?? '';
    const name = m[2]!;
    const inScope = (s: string) => scope === '' || scope === `${s}/`;
    let chain: string;
    if (inScope('guest') && fw?.ipsets.has(name)) chain = ipsetChainName(fw.vmid ?? 0, name, ipversion);
    else if (inScope('dc') && cluster?.ipsets.has(name)) chain = ipsetChainName(0, name, ipversion);
    else throw new GenError(`no such ipset '${name}'`);
    return `-m set --match-set ${chain} ${srcdst}`;
  }
  const am = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(adr);
  if (am) {
    const e = resolveAlias(am[2]!, am[1] ?? '', fw, cluster);
    if (!e) throw new GenError(`no such alias '${adr}'`);
    return `-${dir} ${e.cidr}`;
  }
  if (adr.includes('-')) return `-m iprange --${srcdst}-range ${adr}`;
  return `-${dir} ${adr}`;
}

function ruleToCmds(
  ctx: Ctx,
  rule: GenRule,
  chain: string,
  ipversion: IpVersion,
  cluster: FwConfigLike | undefined,
  fw: (FwConfigLike & { vmid?: string }) | undefined,
  vmid: string | number | undefined,
): string[] {
  const match: string[] = [];
  if (rule.match !== undefined) match.push(rule.match);
  else {
    if (rule.ifaceIn) match.push(`-i ${rule.ifaceIn}`);
    if (rule.ifaceOut) match.push(`-o ${rule.ifaceOut}`);
    if (rule.source) match.push(srcOrDstMatch(rule.source, 's', ipversion, cluster, fw));
    if (rule.dest) match.push(srcOrDstMatch(rule.dest, 'd', ipversion, cluster, fw));
    const proto = rule.proto;
    if (proto) {
      match.push(`-p ${proto}`);
      const isIcmp = protoIsIcmp(proto);
      const multiD = rule.dport !== undefined && checkPortList(rule.dport, isIcmp).multi;
      const multiS = rule.sport !== undefined && checkPortList(rule.sport, false).multi;
      const addDport = () => {
        if (rule.dport === undefined) return;
        if (proto === 'icmp') match.push(`-m icmp --icmp-type ${rule.dport}`);
        else if (proto === 'icmpv6') match.push(`-m icmpv6 --icmpv6-type ${rule.dport}`);
        else if (!PROTOCOLS_WITH_PORTS.has(proto)) throw new GenError(`protocol ${proto} does not have ports`);
        else if (multiD) match.push('--match multiport', `--dports ${rule.dport}`);
        else if (rule.dport) match.push(`--dport ${rule.dport}`);
      };
      const addSport = () => {
        if (!rule.sport) return;
        if (!PROTOCOLS_WITH_PORTS.has(proto)) throw new GenError(`protocol ${proto} does not have ports`);
        if (multiS) match.push('--match multiport', `--sports ${rule.sport}`);
        else match.push(`--sport ${rule.sport}`);
      };
      if (rule.icmpType) {
        if (!isIcmp) throw new GenError("'icmp-type' can only be set if 'icmp', 'icmpv6' or 'ipv6-icmp' is specified");
        match.push(`-m ${proto} --${proto === 'icmp' ? 'icmp-type' : 'icmpv6-type'} ${rule.icmpType}`);
      }
      if (multiS) addDport();
      addSport();
      if (!multiS) addDport();
    } else if (rule.dport || rule.sport) {
      throw new GenError(
        rule.dport
          ? `destination port '${rule.dport}', but no protocol specified`
          : `source port '${rule.sport}', but no protocol specified`,
      );
    }
    if (rule.dsttype) match.push(`-m addrtype --dst-type ${rule.dsttype}`);
  }
  const matchStr = match.join(' ');
  const action = rule.action ?? '';
  const target = rule.target ?? (action === 'PVEFW-SET-ACCEPT-MARK' ? `-g ${action}` : `-j ${action}`);
  const out: string[] = [];
  if (rule.log !== undefined && rule.log !== 'nolog')
    out.push(`-A ${chain} ${matchStr} ${logRuleBase(ctx, chain, vmid, rule.logmsg, LOG_LEVELS[rule.log]!)}`);
  out.push(`-A ${chain} ${matchStr} ${target}`);
  return out;
}

/** ruleset_generate_rule: a rule (or the rules its macro expands to), all or nothing. */
function generateRule(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  ipversion: IpVersion,
  rule: GenRule,
  origin: Origin,
  cluster?: FwConfigLike,
  fw?: FwConfigLike & { vmid?: string },
  vmid?: string | number,
): void {
  let rules: GenRule[];
  if (rule.macro !== undefined) {
    const exp = expandMacro(rule.macro, ipversion);
    if (exp === undefined) return;
    const { macro: _macro, ...rest } = rule;
    rules = exp.map((m) => ({ ...rest, ...m }));
  } else rules = [rule];
  const cmds: string[] = [];
  try {
    for (const r of rules) appendAll(cmds, ruleToCmds(ctx, r, chain, ipversion, cluster, fw, vmid));
  } catch (e) {
    if (!(e instanceof GenError) && !(e instanceof Error)) throw e;
    ctx.issues.push(
      issue(
        'pve-rule-skipped',
        `${origin.label}: ${(e as Error).message} (rule left out of ${chain})`,
        origin.pos,
        'warning',
      ),
    );
    return;
  }
  const list = rs.get(chain);
  if (list === undefined) return;
  for (const c of cmds) list.push({ text: c, origin });
}

function addChainPolicy(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  ipversion: IpVersion,
  vmid: string | number,
  policy: string,
  loglevel: string | undefined,
  acceptAction: string,
  origin: Origin,
): void {
  if (policy === 'ACCEPT') generateRule(ctx, rs, chain, ipversion, { action: acceptAction }, origin);
  else if (policy === 'DROP') {
    addRule(rs, chain, '', '-j PVEFW-Drop', origin, ctx);
    addRule(rs, chain, '', '-j DROP', origin, ctx, loglevel, `policy ${policy}: `, vmid);
  } else {
    addRule(rs, chain, '', '-j PVEFW-Reject', origin, ctx);
    addRule(rs, chain, '', '-g PVEFW-reject', origin, ctx, loglevel, `policy ${policy}: `, vmid);
  }
}

function addNdp(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  ipversion: IpVersion,
  options: Readonly<Record<string, string | number>>,
  direction: 'IN' | 'OUT',
  accept: string,
  origin: Origin,
): void {
  if (ipversion !== 6 || (options.ndp !== undefined && !options.ndp)) return;
  addRule(rs, chain, '-p icmpv6 --icmpv6-type router-solicitation', accept, origin, ctx);
  if (direction !== 'OUT' || options.radv)
    addRule(rs, chain, '-p icmpv6 --icmpv6-type router-advertisement', accept, origin, ctx);
  addRule(rs, chain, '-p icmpv6 --icmpv6-type neighbor-solicitation', accept, origin, ctx);
  addRule(rs, chain, '-p icmpv6 --icmpv6-type neighbor-advertisement', accept, origin, ctx);
}

function addConnFilters(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  allowInvalid: boolean,
  accept: string,
  origin: Origin,
) {
  if (!allowInvalid) addRule(rs, chain, '-m conntrack --ctstate INVALID', '-j DROP', origin, ctx);
  addRule(rs, chain, '-m conntrack --ctstate RELATED,ESTABLISHED', `-j ${accept}`, origin, ctx);
}

function logLevelOption(options: Readonly<Record<string, string | number>>, key: string): string | undefined {
  const v = options[key];
  if (v === undefined || v === '' || v === 'nolog') return undefined;
  return LOG_LEVELS[String(v)] !== undefined ? String(v) : undefined;
}

function addInputFilters(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  ipversion: IpVersion,
  hostOptions: Readonly<Record<string, string | number>>,
  loglevel: string | undefined,
  origin: Origin,
): void {
  const blacklist = ctx.cluster.ipsets.get('blacklist');
  if (blacklist) {
    if (!rs.has('PVEFW-blacklist')) {
      createChain(rs, 'PVEFW-blacklist', ctx);
      addRule(rs, 'PVEFW-blacklist', '', '-j DROP', origin, ctx, loglevel, 'DROP: ', 0);
    }
    addRule(
      rs,
      chain,
      `-m set --match-set ${ipsetChainName(0, 'blacklist', ipversion)} src`,
      '-j PVEFW-blacklist',
      {
        kind: 'file',
        label: 'cluster.fw [IPSET blacklist]',
        pos: blacklist.pos,
      },
      ctx,
    );
  }
  if (!(hostOptions.nosmurfs !== undefined && hostOptions.nosmurfs === 0) && ipversion === 4)
    addRule(rs, chain, '-m conntrack --ctstate INVALID,NEW', '-j PVEFW-smurfs', origin, ctx);
  if (hostOptions.tcpflags) addRule(rs, chain, '-p tcp', '-j PVEFW-tcpflags', origin, ctx);
}

/** The fixed chains (PVEFW-Drop, PVEFW-reject, …), per IP version. */
function stdChains(ipversion: IpVersion, smurfLog?: string, flagsLog?: string): [string, GenRule[]][] {
  const dropTail = (rejectAction: string): GenRule[] => [
    { action: 'DROP', match: '-m conntrack --ctstate INVALID' },
    { action: rejectAction, proto: 'udp', dport: '135,445' },
    { action: rejectAction, proto: 'udp', dport: '137:139' },
    { action: rejectAction, proto: 'udp', dport: '1024:65535', sport: '137' },
    { action: rejectAction, proto: 'tcp', dport: '135,139,445' },
    { action: 'DROP', proto: 'udp', dport: '1900' },
    { action: 'DROP', match: '-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN' },
    { action: 'DROP', proto: 'udp', sport: '53' },
  ];
  const tcpflags: GenRule[] = [
    { match: '-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG FIN,PSH,URG', target: '-g PVEFW-logflags' },
    { match: '-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE', target: '-g PVEFW-logflags' },
    { match: '-p tcp -m tcp --tcp-flags SYN,RST SYN,RST', target: '-g PVEFW-logflags' },
    { match: '-p tcp -m tcp --tcp-flags FIN,SYN FIN,SYN', target: '-g PVEFW-logflags' },
    { match: '-p tcp -m tcp --sport 0 --tcp-flags FIN,SYN,RST,ACK SYN', target: '-g PVEFW-logflags' },
  ];
  const logged = (log: string | undefined): GenRule =>
    log === undefined ? { action: 'DROP', logmsg: 'DROP: ' } : { action: 'DROP', logmsg: 'DROP: ', log };
  if (ipversion === 4) {
    const icmpAccept: GenRule[] = [
      { action: 'PVEFW-DropBroadcast' },
      { action: 'ACCEPT', proto: 'icmp', dport: 'fragmentation-needed' },
      { action: 'ACCEPT', proto: 'icmp', dport: 'time-exceeded' },
    ];
    return [
      ['PVEFW-SET-ACCEPT-MARK', [{ target: `-j MARK --set-mark ${ACCEPT_MARK_ON}` }]],
      [
        'PVEFW-DropBroadcast',
        [
          { action: 'DROP', dsttype: 'BROADCAST' },
          { action: 'DROP', dsttype: 'MULTICAST' },
          { action: 'DROP', dsttype: 'ANYCAST' },
          { action: 'DROP', dest: '224.0.0.0/4' },
        ],
      ],
      [
        'PVEFW-reject',
        [
          { action: 'DROP', dsttype: 'BROADCAST' },
          { action: 'DROP', source: '224.0.0.0/4' },
          { action: 'DROP', proto: 'icmp' },
          { match: '-p tcp', target: '-j REJECT --reject-with tcp-reset' },
          { match: '-p udp', target: '-j REJECT --reject-with icmp-port-unreachable' },
          { match: '-p icmp', target: '-j REJECT --reject-with icmp-host-unreachable' },
          { target: '-j REJECT --reject-with icmp-host-prohibited' },
        ],
      ],
      ['PVEFW-Drop', [...icmpAccept, ...dropTail('DROP')]],
      ['PVEFW-Reject', [...icmpAccept, ...dropTail('PVEFW-reject')]],
      ['PVEFW-tcpflags', tcpflags],
      [
        'PVEFW-smurfs',
        [
          { match: '-s 0.0.0.0/32', target: '-j RETURN' },
          { match: '-m addrtype --src-type BROADCAST', target: '-g PVEFW-smurflog' },
          { match: '-s 224.0.0.0/4', target: '-g PVEFW-smurflog' },
        ],
      ],
      ['PVEFW-smurflog', [logged(smurfLog)]],
      ['PVEFW-logflags', [logged(flagsLog)]],
    ];
  }
  const icmp6Accept: GenRule[] = [
    { action: 'PVEFW-reject', proto: 'tcp', dport: '43' },
    { action: 'PVEFW-DropBroadcast' },
    { action: 'ACCEPT', proto: 'icmpv6', dport: 'destination-unreachable' },
    { action: 'ACCEPT', proto: 'icmpv6', dport: 'time-exceeded' },
    { action: 'ACCEPT', proto: 'icmpv6', dport: 'packet-too-big' },
  ];
  return [
    ['PVEFW-SET-ACCEPT-MARK', [{ target: `-j MARK --set-mark ${ACCEPT_MARK_ON}` }]],
    ['PVEFW-DropBroadcast', [{ action: 'DROP', dest: 'ff00::/8' }]],
    [
      'PVEFW-reject',
      [
        { action: 'DROP', proto: 'icmpv6' },
        { match: '-p tcp', target: '-j REJECT --reject-with tcp-reset' },
        { match: '-p udp', target: '-j REJECT --reject-with icmp6-port-unreachable' },
        { target: '-j REJECT --reject-with icmp6-adm-prohibited' },
      ],
    ],
    ['PVEFW-Drop', [...icmp6Accept, ...dropTail('DROP')]],
    ['PVEFW-Reject', [...icmp6Accept, ...dropTail('PVEFW-reject')]],
    ['PVEFW-tcpflags', tcpflags],
    ['PVEFW-logflags', [logged(flagsLog)]],
  ];
}

/** The generator's view of a configured rule (its current action, per pve-firewall's in-place substitution). */
function userRule(ctx: Ctx, r: FwRule, extra: Partial<GenRule> = {}): GenRule {
  const g: GenRule = { action: ctx.action(r) };
  if (r.macro !== undefined) g.macro = r.macro;
  if (r.source !== undefined) g.source = r.source;
  if (r.dest !== undefined) g.dest = r.dest;
  if (r.proto !== undefined) g.proto = r.proto;
  if (r.dport !== undefined) g.dport = r.dport;
  if (r.sport !== undefined) g.sport = r.sport;
  if (r.icmpType !== undefined) g.icmpType = r.icmpType;
  if (r.log !== undefined) g.log = r.log;
  return { ...g, ...extra };
}

function substitute(ctx: Ctx, r: FwRule, map: Readonly<Record<string, string>>): string {
  const cur = ctx.action(r);
  const next = map[cur] ?? cur;
  ctx.actions.set(r, next);
  return next;
}

export function ruleOrigin(r: FwRule, file: FwConfig, via?: Origin): Origin {
  return {
    kind: 'file',
    label: `${basename(file.file)} rule '${r.text}'`,
    pos: r.pos,
    ...(via ? { via } : {}),
    data: { platform: 'proxmox', ruleType: r.type },
  };
}

export function basename(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

function generateGroupRules(ctx: Ctx, rs: PveRuleset, group: string, ipversion: IpVersion, via: Origin): void {
  const def = ctx.cluster.groups.get(group);
  if (!def) ctx.issues.push(issue('pve-no-such-group', `no such security group '${group}'`, via.pos, 'warning'));
  const gOrigin: Origin = def
    ? { kind: 'file', label: `cluster.fw security group ${group}`, pos: def.pos, via }
    : { kind: 'implicit', label: `empty chain for the unknown security group ${group}`, via };
  for (const dir of ['in', 'out'] as const) {
    const chain = `GROUP-${group}-${dir.toUpperCase()}`;
    createChain(rs, chain, ctx);
    addRule(rs, chain, '', `-j MARK --set-mark ${ACCEPT_MARK_OFF}`, gOrigin, ctx);
    for (const r of def?.rules ?? []) {
      if (r.type !== dir || !r.enable || r.errors || (r.ipversion !== undefined && r.ipversion !== ipversion)) continue;
      substitute(ctx, r, { ACCEPT: 'PVEFW-SET-ACCEPT-MARK', REJECT: 'PVEFW-reject' });
      generateRule(ctx, rs, chain, ipversion, userRule(ctx, r), ruleOrigin(r, ctx.cluster, gOrigin), ctx.cluster);
    }
  }
}

function addGroupRule(
  ctx: Ctx,
  rs: PveRuleset,
  chain: string,
  r: FwRule,
  direction: 'IN' | 'OUT',
  action: string,
  ipversion: IpVersion,
  origin: Origin,
  iface?: string,
): void {
  const group = r.action;
  const groupChain = `GROUP-${group}-${direction}`;
  if (!rs.has(groupChain)) generateGroupRules(ctx, rs, group, ipversion, origin);
  if (direction === 'OUT' && iface) addRule(rs, chain, `-o ${iface}`, `-j ${groupChain}`, origin, ctx);
  else if (direction === 'IN' && iface) addRule(rs, chain, `-i ${iface}`, `-j ${groupChain}`, origin, ctx);
  else addRule(rs, chain, '', `-j ${groupChain}`, origin, ctx);
  addRule(rs, chain, `-m mark --mark ${ACCEPT_MARK_ON}`, `-j ${action}`, origin, ctx);
}

function nfqueue(options: Readonly<Record<string, string | number>>): string {
  if (!options.ips) return 'ACCEPT';
  let action = 'NFQUEUE';
  const m = /^(\d+)(:(\d+))?$/.exec(String(options.ips_queues ?? ''));
  if (options.ips_queues && m)
    action += m[3] !== undefined ? ` --queue-balance ${m[1]}:${m[3]}` : ` --queue-num ${m[1]}`;
  return `${action} --queue-bypass`;
}

export function nicOrigin(g: GuestConfig, nic: GuestNic): Origin {
  return {
    kind: 'file',
    label: `${g.kind === 'qemu' ? 'VM' : 'CT'} ${g.vmid} ${nic.netid} (${guestIface(g, nic)}, firewall=1)`,
    pos: nic.pos,
    data: { platform: 'proxmox', vmid: g.vmid, netid: nic.netid, iface: guestIface(g, nic) },
  };
}

export function optionOrigin(fw: FwConfig, key: string, value: string, via: Origin): Origin {
  const pos = fw.optionPos[key];
  return pos
    ? { kind: 'file', label: `${basename(fw.file)} option ${key}: ${value}`, pos, via }
    : { kind: 'implicit', label: `${basename(fw.file)} default ${key}: ${value}`, via };
}

function tapRulesDirection(
  ctx: Ctx,
  rs: PveRuleset,
  g: GuestConfig,
  nic: GuestNic,
  fw: FwConfig,
  direction: 'IN' | 'OUT',
  ipversion: IpVersion,
): void {
  const vmid = g.vmid;
  const iface = guestIface(g, nic);
  const options = fw.options;
  const nicO = nicOrigin(g, nic);
  const loglevel = logLevelOption(options, `log_level_${direction.toLowerCase()}`);
  const chain = `${iface}-${direction}`;
  const ipfilterName = `ipfilter-${nic.netid}`;
  const explicitSet = fw.ipsets.get(ipfilterName);
  const ipfilterSet = options.ipfilter || explicitSet ? ipsetChainName(vmid, ipfilterName, ipversion) : undefined;
  const fwO: Origin = {
    kind: 'file',
    label: `${basename(fw.file)} enable: 1`,
    ...(fw.optionPos.enable ? { pos: fw.optionPos.enable } : {}),
    via: nicO,
  };
  if (!createChain(rs, chain, ctx)) return;
  const accept = nfqueue(options);
  addRule(rs, chain, '', `-j CONNMARK --set-mark ${vmid}`, fwO, ctx);
  if (!(options.dhcp !== undefined && options.dhcp === 0)) {
    const dO = optionOrigin(fw, 'dhcp', String(options.dhcp ?? 1), nicO);
    const [cs, ss] = ipversion === 4 ? ['68', '67'] : ['546', '547'];
    if (direction === 'OUT')
      generateRule(
        ctx,
        rs,
        chain,
        ipversion,
        { action: 'PVEFW-SET-ACCEPT-MARK', proto: 'udp', sport: cs, dport: ss },
        dO,
      );
    else generateRule(ctx, rs, chain, ipversion, { action: 'ACCEPT', proto: 'udp', sport: ss, dport: cs }, dO);
  }
  if (direction === 'OUT') {
    if (!(options.macfilter !== undefined && options.macfilter === 0))
      addRule(
        rs,
        chain,
        `-m mac ! --mac-source ${nic.mac}`,
        '-j DROP',
        optionOrigin(fw, 'macfilter', String(options.macfilter ?? 1), nicO),
        ctx,
      );
    if (ipversion === 6 && !options.radv)
      addRule(
        rs,
        chain,
        '-p icmpv6 --icmpv6-type router-advertisement',
        '-j DROP',
        optionOrigin(fw, 'radv', String(options.radv ?? 0), nicO),
        ctx,
      );
    if (ipfilterSet !== undefined) {
      const o: Origin = explicitSet
        ? {
            kind: 'file',
            label: `${basename(fw.file)} [IPSET ${ipfilterName}] (an explicit set turns the IP filter on${options.ipfilter ? '' : ', even with ipfilter off'})`,
            pos: explicitSet.pos,
            via: nicO,
          }
        : optionOrigin(fw, 'ipfilter', '1', nicO);
      addRule(rs, chain, `-m set ! --match-set ${ipfilterSet} src`, '-j DROP', o, ctx);
    }
    addRule(rs, chain, '', `-j MARK --set-mark ${ACCEPT_MARK_OFF}`, fwO, ctx);
  }
  const acceptAction = direction === 'OUT' ? '-g PVEFW-SET-ACCEPT-MARK' : `-j ${accept}`;
  addNdp(
    ctx,
    rs,
    chain,
    ipversion,
    options,
    direction,
    acceptAction,
    optionOrigin(fw, 'ndp', String(options.ndp ?? 1), nicO),
  );
  // user rules
  const lc = direction.toLowerCase();
  const guestConf = { ...fw, vmid };
  for (const r of fw.rules) {
    if (r.iface && r.iface !== nic.netid) continue;
    if (!r.enable || r.errors) continue;
    if (r.ipversion !== undefined && r.ipversion !== ipversion) continue;
    const o = ruleOrigin(r, fw, nicO);
    if (r.type === 'group') {
      addGroupRule(ctx, rs, chain, r, direction, direction === 'OUT' ? 'RETURN' : accept, ipversion, o);
    } else if (r.type === lc) {
      const logmsg = `${ctx.action(r)}: `;
      substitute(
        ctx,
        r,
        direction === 'OUT'
          ? { ACCEPT: 'PVEFW-SET-ACCEPT-MARK', REJECT: 'PVEFW-reject' }
          : { ACCEPT: accept, REJECT: 'PVEFW-reject' },
      );
      generateRule(ctx, rs, chain, ipversion, userRule(ctx, r, { logmsg }), o, ctx.cluster, guestConf, vmid);
    }
  }
  if (options.ips && direction === 'IN') {
    createChain(rs, 'PVEFW-IPS', ctx);
    addRule(
      rs,
      'PVEFW-IPS',
      `-m physdev --physdev-out ${iface} --physdev-is-bridged`,
      `-j ${accept}`,
      optionOrigin(fw, 'ips', '1', nicO),
      ctx,
    );
  }
  const policy = String(direction === 'OUT' ? (options.policy_out ?? 'ACCEPT') : (options.policy_in ?? 'DROP'));
  addChainPolicy(
    ctx,
    rs,
    chain,
    ipversion,
    vmid,
    policy,
    loglevel,
    direction === 'OUT' ? 'PVEFW-SET-ACCEPT-MARK' : accept,
    optionOrigin(fw, `policy_${lc}`, policy, nicO),
  );
  if (direction === 'IN')
    addRule(rs, 'PVEFW-FWBR-IN', `-m physdev --physdev-is-bridged --physdev-out ${iface}`, `-j ${chain}`, nicO, ctx);
  else addRule(rs, 'PVEFW-FWBR-OUT', `-m physdev --physdev-is-bridged --physdev-in ${iface}`, `-j ${chain}`, nicO, ctx);
}

function hostFirewall(
  ctx: Ctx,
  rs: PveRuleset,
  input: PveNodeInput,
  ipversion: IpVersion,
  localnet: { cidr: string; ipversion: IpVersion },
): void {
  const options = input.host.options;
  const cOptions = input.cluster.options;
  const hostO: Origin = { kind: 'implicit', label: 'pve-firewall host rules (host.fw enable)' };
  const corosyncRule = '-p udp --dport 5404:5405';
  const local = new Map<string, string>();
  const co = input.corosync;
  if (co) for (const a of co.addresses(ipversion)) if (a.node === input.nodeName) local.set(a.key, a.ip);
  const multicast = co?.transport === 'udp';
  const corosyncO: Origin = co ? { kind: 'file', label: 'corosync.conf', pos: co.pos } : hostO;
  for (const dir of ['IN', 'OUT'] as const) {
    const chain = `PVEFW-HOST-${dir}`;
    createChain(rs, chain, ctx);
    const loglevel = logLevelOption(options, `log_level_${dir.toLowerCase()}`);
    addRule(rs, chain, dir === 'IN' ? '-i lo' : '-o lo', '-j ACCEPT', hostO, ctx);
    addConnFilters(ctx, rs, chain, false, 'ACCEPT', hostO);
    addNdp(ctx, rs, chain, ipversion, options, dir, '-j RETURN', hostO);
    if (dir === 'IN') addInputFilters(ctx, rs, chain, ipversion, options, loglevel, hostO);
    addRule(rs, chain, '-p igmp', '-j RETURN', hostO, ctx);
    const lc = dir.toLowerCase();
    for (const [r, file] of [
      ...input.host.rules.map((r) => [r, input.host] as const),
      ...input.cluster.rules.map((r) => [r, input.cluster] as const),
    ]) {
      if (!r.enable || r.errors) continue;
      if (r.ipversion !== undefined && r.ipversion !== ipversion) continue;
      const o = ruleOrigin(r, file);
      if (r.type === 'group') addGroupRule(ctx, rs, chain, r, dir, 'RETURN', ipversion, o, r.iface);
      else if (r.type === lc) {
        const logmsg = `${ctx.action(r)}: `;
        substitute(ctx, r, { ACCEPT: 'RETURN', REJECT: 'PVEFW-reject' });
        const extra: Partial<GenRule> = { logmsg };
        if (r.iface) {
          if (dir === 'IN') extra.ifaceIn = r.iface;
          else extra.ifaceOut = r.iface;
        }
        generateRule(ctx, rs, chain, ipversion, userRule(ctx, r, extra), o, ctx.cluster, file, 0);
      }
    }
    if (dir === 'IN') {
      const mg = `-m set --match-set ${ipsetChainName(0, 'management', ipversion)} src`;
      const mO: Origin = {
        kind: 'implicit',
        label: 'pve-firewall: management ipset may reach the API, consoles, SSH, migration',
      };
      for (const p of ['8006', '5900:5999', '3128', '22', '60000:60050'])
        addRule(rs, chain, `${mg} -p tcp --dport ${p}`, '-j RETURN', mO, ctx);
    } else if (localnet.ipversion === ipversion) {
      const lO: Origin = { kind: 'implicit', label: `pve-firewall: the host may reach local_network ${localnet.cidr}` };
      for (const p of ['8006', '22', '5900:5999', '3128'])
        addRule(rs, chain, `-d ${localnet.cidr} -p tcp --dport ${p}`, '-j RETURN', lO, ctx);
    }
    if (co) {
      if (multicast)
        addRule(rs, chain, `-m addrtype --dst-type MULTICAST ${corosyncRule}`, '-j RETURN', corosyncO, ctx);
      for (const a of co.addresses(ipversion)) {
        const mine = local.get(a.key);
        if (a.node === input.nodeName || mine === undefined) continue;
        const m = dir === 'IN' ? `-d ${mine} -s ${a.ip}` : `-s ${mine} -d ${a.ip}`;
        addRule(rs, chain, `${m} ${corosyncRule}`, '-j RETURN', corosyncO, ctx);
      }
    }
    const policy = String(dir === 'IN' ? (cOptions.policy_in ?? 'DROP') : (cOptions.policy_out ?? 'ACCEPT'));
    const pos = input.cluster.optionPos[`policy_${lc}`];
    const pO: Origin = pos
      ? { kind: 'file', label: `cluster.fw option policy_${lc}: ${policy}`, pos }
      : implicit(`cluster.fw default policy_${lc}: ${policy}`);
    addChainPolicy(ctx, rs, chain, ipversion, 0, policy, loglevel, 'RETURN', pO);
  }
  addRule(rs, 'PVEFW-OUTPUT', '', '-j PVEFW-HOST-OUT', hostO, ctx);
  addRule(rs, 'PVEFW-INPUT', '', '-j PVEFW-HOST-IN', hostO, ctx);
}

function filterTable(
  ctx: Ctx,
  input: PveNodeInput,
  ipversion: IpVersion,
  localnet: { cidr: string; ipversion: IpVersion },
): PveRuleset {
  const rs: PveRuleset = new Map();
  const fixed: Origin = implicit('pve-firewall fixed rules');
  for (const c of ['PVEFW-INPUT', 'PVEFW-OUTPUT', 'PVEFW-FORWARD']) createChain(rs, c, ctx);
  const hostOptions = input.host.options;
  const loglevel = logLevelOption(hostOptions, 'log_level_out');
  const allowInvalid = Boolean(hostOptions.nf_conntrack_allow_invalid);
  const ciPos = input.host.optionPos.nf_conntrack_allow_invalid;
  addConnFilters(
    ctx,
    rs,
    'PVEFW-FORWARD',
    allowInvalid,
    'ACCEPT',
    ciPos
      ? { kind: 'file', label: `host.fw option nf_conntrack_allow_invalid: ${allowInvalid ? 1 : 0}`, pos: ciPos }
      : fixed,
  );
  createChain(rs, 'PVEFW-FWBR-IN', ctx);
  addInputFilters(ctx, rs, 'PVEFW-FWBR-IN', ipversion, hostOptions, loglevel, fixed);
  addRule(rs, 'PVEFW-FORWARD', '-m physdev --physdev-is-bridged --physdev-in fwln+', '-j PVEFW-FWBR-IN', fixed, ctx);
  createChain(rs, 'PVEFW-FWBR-OUT', ctx);
  addRule(rs, 'PVEFW-FORWARD', '-m physdev --physdev-is-bridged --physdev-out fwln+', '-j PVEFW-FWBR-OUT', fixed, ctx);
  for (const [chain, rules] of stdChains(
    ipversion,
    logLevelOption(hostOptions, 'smurf_log_level'),
    logLevelOption(hostOptions, 'tcp_flags_log_level'),
  )) {
    createChain(rs, chain, ctx);
    for (const r of rules) generateRule(ctx, rs, chain, ipversion, r, fixed, undefined, undefined, undefined);
  }
  if (!(hostOptions.enable !== undefined && hostOptions.enable === 0))
    hostFirewall(ctx, rs, input, ipversion, localnet);
  for (const kind of ['qemu', 'lxc'] as const) {
    for (const gi of sortedGuests(input.guests, kind)) {
      const fw = gi.fw;
      if (!fw?.present || !fw.options.enable) continue;
      for (const nic of nicsInFirewallOrder(gi.config)) {
        if (!nic.firewall) continue;
        tapRulesDirection(ctx, rs, gi.config, nic, fw, 'IN', ipversion);
        tapRulesDirection(ctx, rs, gi.config, nic, fw, 'OUT', ipversion);
      }
    }
  }
  if (rs.has('PVEFW-IPS'))
    rs.get('PVEFW-FORWARD')!.unshift({
      text: '-A PVEFW-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j PVEFW-IPS',
      origin: fixed,
    });
  return rs;
}

function sortedGuests(guests: readonly PveGuestInput[], kind: 'qemu' | 'lxc'): PveGuestInput[] {
  return guests
    .filter((g) => g.config.kind === kind)
    .sort((a, b) => (a.config.vmid < b.config.vmid ? -1 : a.config.vmid > b.config.vmid ? 1 : 0));
}

const HELPERS: Readonly<Record<string, { proto: string; dport: string; v6: boolean }>> = {
  amanda: { proto: 'udp', dport: '10080', v6: true },
  ftp: { proto: 'tcp', dport: '21', v6: true },
  irc: { proto: 'tcp', dport: '6667', v6: false },
  'netbios-ns': { proto: 'udp', dport: '137', v6: false },
  pptp: { proto: 'tcp', dport: '1723', v6: false },
  sane: { proto: 'tcp', dport: '6566', v6: true },
  sip: { proto: 'udp', dport: '5060', v6: true },
  snmp: { proto: 'udp', dport: '161', v6: false },
  tftp: { proto: 'udp', dport: '69', v6: true },
};

function rawTable(ctx: Ctx, host: FwConfig, ipversion: IpVersion): PveRuleset {
  const rs: PveRuleset = new Map();
  const o = host.options;
  const syn = Number(o.protection_synflood ?? 0);
  const helpers = String(o.nf_conntrack_helpers ?? '');
  if (syn !== 0 || helpers !== '') createChain(rs, 'PVEFW-PREROUTING', ctx);
  if (syn) {
    const rate = o.protection_synflood_rate || 200;
    const burst = o.protection_synflood_burst || 1000;
    const expire = Number(o.nf_conntrack_tcp_timeout_syn_recv || 60) * 1000;
    const mask = ipversion === 4 ? 32 : 64;
    addRule(
      rs,
      'PVEFW-PREROUTING',
      `-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -m hashlimit --hashlimit-above ${rate}/sec --hashlimit-burst ${burst} --hashlimit-mode srcip --hashlimit-name syn --hashlimit-htable-size 2097152 --hashlimit-srcmask ${mask} --hashlimit-htable-expire ${expire}`,
      '-j DROP',
      { kind: 'file', label: 'host.fw option protection_synflood: 1', pos: host.optionPos.protection_synflood! },
      ctx,
    );
  }
  for (const h of helpers === '' ? [] : helpers.split(',')) {
    const d = HELPERS[h];
    if (!d || (ipversion === 6 && !d.v6)) continue;
    addRule(
      rs,
      'PVEFW-PREROUTING',
      `-p ${d.proto} -m ${d.proto} --dport ${d.dport} -j CT`,
      `--helper ${h}`,
      {
        kind: 'file',
        label: `host.fw option nf_conntrack_helpers: ${helpers}`,
        pos: host.optionPos.nf_conntrack_helpers!,
      },
      ctx,
    );
  }
  return rs;
}

function roundPow2(n: number): number {
  let v = n - 1;
  for (const s of [1, 2, 4, 8, 16]) v |= v >> s;
  return v + 1;
}

interface SetEntry {
  readonly cidr: string;
  readonly nomatch?: boolean;
  readonly error?: string;
  /** The `[IPSET]` body line. */
  readonly pos?: Position;
  /** Where an entry no line holds comes from (a NIC's MAC, a container's ip=, local_network). */
  readonly origin?: Origin;
}

function ipsetChains(
  ctx: Ctx,
  out: Map<string, PveIpset>,
  vmid: string | number,
  cluster: FwConfigLike | undefined,
  fw: FwConfigLike,
  deviceIps: ReadonlyMap<string, readonly SetEntry[]> | undefined,
  sets: ReadonlyMap<string, { entries: readonly SetEntry[]; origin: Origin }>,
): void {
  for (const [name, def] of sets) {
    let entries = def.entries;
    const m = /^ipfilter-(net\d+)$/.exec(name);
    if (deviceIps && m) {
      const extra = deviceIps.get(m[1]!);
      if (extra) entries = [...entries, ...extra];
    }
    const nets: Record<4 | 6, Map<string, { nomatch: boolean; origin: Origin }>> = { 4: new Map(), 6: new Map() };
    for (const e of entries) {
      if (e.error !== undefined) continue;
      let c: { cidr: string; ipversion: IpVersion } | undefined;
      const am = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(e.cidr);
      if (am) {
        const a =
          cluster === undefined
            ? resolveAlias(am[2]!, am[1] ?? '', undefined, fw)
            : resolveAlias(am[2]!, am[1] ?? '', fw, cluster);
        if (!a) {
          ctx.issues.push(
            issue('pve-ipset-entry', `ipset ${name}: no such alias '${e.cidr}'`, def.origin.pos, 'warning'),
          );
          continue;
        }
        c = { cidr: a.cidr, ipversion: a.ipversion };
      } else c = parseIpOrCidr(e.cidr);
      if (!c) continue;
      let cidr = c.cidr;
      if (c.ipversion === 6) {
        const [addr, len] = cidr.split('/');
        cidr = (parseIpv6(addr!) as string) + (len !== undefined ? `/${len}` : '');
        cidr = cidr.replace(/\/128$/, '');
      } else cidr = cidr.replace(/\/32$/, '');
      const origin: Origin =
        e.origin ??
        (e.pos
          ? {
              kind: 'file',
              label: `${def.origin.label} entry ${e.nomatch ? '!' : ''}${e.cidr}`,
              pos: e.pos,
              via: def.origin,
            }
          : def.origin);
      nets[c.ipversion].set(cidr, { nomatch: e.nomatch === true, origin });
    }
    for (const v of [4, 6] as const) {
      const setName = ipsetChainName(vmid, name, v);
      const n = entries.length;
      const size = n <= 64 ? 64 : roundPow2(n);
      const family = v === 6 ? 'inet6' : 'inet';
      const lines = [`create ${setName} hash:net family ${family} hashsize ${size} maxelem ${size} bucketsize 12`];
      const list: { cidr: string; nomatch: boolean; origin: Origin }[] = [];
      for (const cidr of [...nets[v].keys()].sort()) {
        const { nomatch, origin } = nets[v].get(cidr)!;
        lines.push(`add ${setName} ${cidr}${nomatch ? ' nomatch' : ''}`);
        list.push({ cidr, nomatch, origin });
      }
      out.set(setName, { name: setName, family, lines, entries: list, origin: def.origin });
    }
  }
}

function compileIpsets(ctx: Ctx, input: PveNodeInput, localnet: string): Map<string, PveIpset> {
  const out = new Map<string, PveIpset>();
  for (const kind of ['qemu', 'lxc'] as const) {
    for (const gi of sortedGuests(input.guests, kind)) {
      const fw = gi.fw;
      if (!fw?.present) continue;
      const implicitSets = new Map<string, { entries: SetEntry[]; origin: Origin }>();
      const device = new Map<string, SetEntry[]>();
      for (const nic of gi.config.nics) {
        if (!nic.firewall) continue;
        const nicO = nicOrigin(gi.config, nic);
        if (fw.options.ipfilter && !fw.ipsets.has(`ipfilter-${nic.netid}`))
          implicitSets.set(`ipfilter-${nic.netid}`, { entries: [], origin: optionOrigin(fw, 'ipfilter', '1', nicO) });
        const set: SetEntry[] = [
          {
            cidr: macToLinkLocal(nic.mac),
            origin: { ...implicit(`link-local of ${nic.netid}'s MAC ${nic.mac}`), via: nicO },
          },
          {
            cidr: 'fe80::/10',
            nomatch: true,
            origin: { ...implicit('pve-firewall: other link-local addresses excluded'), via: nicO },
          },
        ];
        if (kind === 'lxc') {
          const m4 = /^(\d+\.\d+\.\d+\.\d+)(?:\/\d+)?$/.exec(nic.ip ?? '');
          if (m4) set.push({ cidr: m4[1]!, origin: { ...implicit(`${nic.netid} ip=${nic.ip}`), via: nicO } });
          const m6 = /^([0-9a-fA-F:.]+)(?:\/\d+)?$/.exec(nic.ip6 ?? '');
          if (m6 && nic.ip6!.includes(':'))
            set.push({ cidr: m6[1]!, origin: { ...implicit(`${nic.netid} ip6=${nic.ip6}`), via: nicO } });
        }
        device.set(nic.netid, set);
      }
      const explicit = new Map(
        [...fw.ipsets].map(([n, s]) => [
          n,
          {
            entries: s.entries,
            origin: { kind: 'file', label: `${basename(fw.file)} [IPSET ${n}]`, pos: s.pos } as Origin,
          },
        ]),
      );
      ipsetChains(ctx, out, gi.config.vmid, ctx.cluster, fw, device, explicit);
      ipsetChains(ctx, out, gi.config.vmid, ctx.cluster, fw, device, implicitSets);
    }
  }
  const clusterSets = new Map(
    [...ctx.cluster.ipsets].map(([n, s]) => [
      n,
      {
        entries: s.entries as readonly SetEntry[],
        origin: { kind: 'file', label: `cluster.fw [IPSET ${n}]`, pos: s.pos } as Origin,
      },
    ]),
  );
  const mgmt = clusterSets.get('management');
  const mgmtEntry: SetEntry = { cidr: localnet, origin: implicit(`local_network ${localnet} (pve-firewall localnet)`) };
  clusterSets.set('management', {
    entries: [...(mgmt?.entries ?? []), mgmtEntry],
    origin: mgmt?.origin ?? implicit(`pve-firewall management ipset (local_network ${localnet})`),
  });
  ipsetChains(ctx, out, 0, undefined, ctx.cluster, undefined, clusterSets);
  return out;
}

function ebtablesTable(ctx: Ctx, input: PveNodeInput): PveRuleset {
  const rs: PveRuleset = new Map();
  if (!Number(input.cluster.options.ebtables ?? 1)) return rs;
  const fixed = implicit('pve-firewall fixed ebtables rules');
  createChain(rs, 'PVEFW-FORWARD', ctx);
  createChain(rs, 'PVEFW-FWBR-OUT', ctx);
  addRule(rs, 'PVEFW-FORWARD', '-p IPv4', '-j ACCEPT', fixed, ctx);
  addRule(rs, 'PVEFW-FORWARD', '-p IPv6', '-j ACCEPT', fixed, ctx);
  addRule(rs, 'PVEFW-FORWARD', '-o fwln+', '-j PVEFW-FWBR-OUT', fixed, ctx);
  for (const kind of ['qemu', 'lxc'] as const) {
    for (const gi of sortedGuests(input.guests, kind)) {
      const fw = gi.fw;
      if (!fw?.present || !fw.options.enable) continue;
      for (const nic of nicsInFirewallOrder(gi.config)) {
        if (!nic.firewall) continue;
        const nicO = nicOrigin(gi.config, nic);
        const arp: { ip: string; origin: Origin }[] = [];
        const set = fw.ipsets.get(`ipfilter-${nic.netid}`);
        let failed = false;
        for (const e of set?.entries ?? []) {
          const c = parseIpOrCidr(e.cidr);
          if (!c) {
            // pve-firewall dies here: the rest of this guest's ebtables rules are not generated.
            ctx.issues.push(
              issue(
                'pve-ebtables-guest-skipped',
                `${basename(fw.file)} [IPSET ${set!.name}]: '${e.cidr}' is not an address; pve-firewall generates no further ebtables rules for guest ${gi.config.vmid}`,
                e.pos,
                'warning',
              ),
            );
            failed = true;
            break;
          }
          if (c.ipversion !== 4) continue;
          arp.push({
            ip: c.cidr,
            origin: {
              kind: 'file',
              label: `${basename(fw.file)} [IPSET ${set!.name}] entry ${e.cidr}`,
              pos: e.pos,
              via: nicO,
            },
          });
        }
        if (failed) break;
        if (kind === 'lxc' && nic.ip !== undefined && fw.options.ipfilter) {
          const ip = nic.ip.replace(/\/(\d+)$/, '');
          if (ip !== 'dhcp')
            arp.push({
              ip,
              origin: {
                kind: 'file',
                label: `CT ${gi.config.vmid} ${nic.netid} ip=${nic.ip}`,
                pos: nic.pos,
                via: nicO,
              },
            });
        }
        const iface = guestIface(gi.config, nic);
        const chain = `${iface}-OUT`;
        const mac = nic.mac.replace(/0([0-9a-f])/gi, '$1').toLowerCase();
        createChain(rs, chain, ctx);
        if (!(fw.options.macfilter !== undefined && fw.options.macfilter === 0))
          addRule(
            rs,
            chain,
            `-s ! ${mac}`,
            '-j DROP',
            optionOrigin(fw, 'macfilter', String(fw.options.macfilter ?? 1), nicO),
            ctx,
          );
        if (arp.length > 0) {
          const arpChain = `${chain}-ARP`;
          addRule(rs, chain, '-p ARP', `-j ${arpChain}`, arp[0]!.origin, ctx);
          createChain(rs, arpChain, ctx);
          for (const a of arp) addRule(rs, arpChain, `-p ARP --arp-ip-src ${a.ip}`, '-j RETURN', a.origin, ctx);
          addRule(
            rs,
            arpChain,
            '',
            '-j DROP',
            {
              kind: 'file',
              label: `${basename(fw.file)} [IPSET ipfilter-${nic.netid}]: ARP from other addresses`,
              ...(set ? { pos: set.pos } : {}),
              via: nicO,
            },
            ctx,
          );
        }
        if (fw.options.layer2_protocols !== undefined) {
          const pc = `${chain}-PROTO`;
          const po = optionOrigin(fw, 'layer2_protocols', String(fw.options.layer2_protocols), nicO);
          addRule(rs, chain, '', `-j ${pc}`, po, ctx);
          createChain(rs, pc, ctx);
          for (const p of String(fw.options.layer2_protocols).split(','))
            addRule(rs, pc, `-p ${p}`, '-j RETURN', po, ctx);
          addRule(rs, pc, '', '-j DROP', po, ctx);
        }
        addRule(rs, chain, '', '-j ACCEPT', nicO, ctx);
        addRule(rs, 'PVEFW-FWBR-OUT', `-i ${iface}`, `-j ${chain}`, nicO, ctx);
      }
    }
  }
  return rs;
}

/** pve-firewall `compile`: everything one node installs. */
export function compilePveFirewall(input: PveNodeInput): PveCompiled {
  const ctx = new Ctx(input.cluster);
  const empty = (): PveCompiled => ({
    enabled: false,
    filter4: new Map(),
    filter6: new Map(),
    raw4: new Map(),
    raw6: new Map(),
    ipsets: new Map(),
    ebtables: new Map(),
    issues: ctx.issues,
  });
  if (!input.cluster.options.enable) return empty();
  const rl = input.cluster.options.log_ratelimit;
  if (rl !== undefined) {
    const kv = new Map<string, string>();
    for (const [i, part] of String(rl).split(',').entries()) {
      const eq = part.indexOf('=');
      if (eq < 0 && i === 0) kv.set('enable', part);
      else kv.set(part.slice(0, eq), part.slice(eq + 1));
    }
    if (kv.get('enable') === '0') ctx.logRateLimit = undefined;
    else {
      if (kv.get('rate')) ctx.logRateLimit = `--limit ${kv.get('rate')}`;
      if (kv.get('burst')) ctx.logRateLimit += ` --limit-burst ${kv.get('burst')}`;
    }
  }
  const alias = input.cluster.aliases.get('local_network');
  const localnet =
    alias !== undefined
      ? { cidr: alias.cidr, ipversion: alias.ipversion }
      : (parseIpOrCidr(input.localNetwork ?? '127.0.0.0/8') ?? { cidr: '127.0.0.0/8', ipversion: 4 as const });
  const filter4 = filterTable(ctx, input, 4, localnet);
  const raw4 = rawTable(ctx, input.host, 4);
  const filter6 = filterTable(ctx, input, 6, localnet);
  const raw6 = rawTable(ctx, input.host, 6);
  const ebtables = ebtablesTable(ctx, input);
  const ipsets = compileIpsets(ctx, input, localnet.cidr);
  return { enabled: true, filter4, filter6, raw4, raw6, ipsets, ebtables, issues: ctx.issues };
}

/** The change digest pve-firewall appends to each chain (`PVESIG:`): SHA-1 of the rule strings, base64 unpadded. */
export function pveChainDigest(rules: readonly PveRule[]): string {
  const h = createHash('sha1');
  for (const r of rules) h.update(r.text);
  return h.digest('base64').replace(/=+$/, '');
}

function byteSort(names: Iterable<string>): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** What pve-firewall feeds `iptables-restore -T <table> -n` on a host where none of its chains exist yet. */
export function renderPveRestore(rs: PveRuleset, table: 'filter' | 'raw'): string {
  const lines = [`*${table}`];
  const chains = byteSort(rs.keys());
  for (const c of chains) lines.push(`:${c} - [0:0]`);
  for (const h of ['INPUT', 'OUTPUT', 'FORWARD', 'PREROUTING'])
    if (rs.has(`PVEFW-${h}`)) lines.push(`-A ${h} -j PVEFW-${h}`);
  for (const c of chains) {
    lines.push(`-F ${c}`);
    for (const r of rs.get(c)!) lines.push(r.text);
    lines.push(`-A ${c} -m comment --comment "PVESIG:${pveChainDigest(rs.get(c)!)}"`);
  }
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** What pve-firewall feeds `ebtables-restore` on a host whose filter table has only its empty built-in chains. */
export function renderPveEbtablesRestore(rs: PveRuleset): string {
  if (rs.size === 0) return '';
  const chains = byteSort(['FORWARD', 'INPUT', 'OUTPUT', ...rs.keys()]);
  const lines = ['*filter', ...chains.map((c) => `:${c} ACCEPT`)];
  for (const c of chains) for (const r of rs.get(c) ?? []) lines.push(r.text);
  lines.push('-A FORWARD -j PVEFW-FORWARD');
  return `${lines.join('\n')}\n`;
}

/** `ipset restore` input: the sets sorted by name, each `create` then its `add` lines. */
export function renderPveIpsetRestore(sets: ReadonlyMap<string, PveIpset>): string {
  return byteSort(sets.keys())
    .flatMap((n) => sets.get(n)!.lines)
    .map((l) => `${l}\n`)
    .join('');
}
