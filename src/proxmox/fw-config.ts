/**
 * Reader for the Proxmox VE firewall files: `cluster.fw` (datacenter), `host.fw` (one node) and `<vmid>.fw` (one VM
 * or container). It follows pve-firewall's own parser line by line: sections are recognised only where the file type
 * allows them, options are checked per file type, rules are parsed and then verified against the aliases and ipsets
 * known at that point (the cluster's, and the file's own ones read so far), and every line pve-firewall would warn
 * about and skip becomes an issue with file:line. A rule with bad parameters is kept with its errors (pve-firewall
 * shows it in the GUI but never compiles it). Never throws.
 */
import { parseIpv4 } from '../addr/ipv4.ts';
import { parseIpv6 } from '../addr/ipv6.ts';
import { ICMP_TYPES_BY_NAME, ICMPV6_TYPES_BY_NAME, protocolByName } from '../netfilter/names.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import { filePos, type Position } from '../source/origin.ts';
import { canonicalMacro, MACROS, MACROS_V6, type MacroRule, V6_ONLY_MACROS } from './macros.ts';

/** Which file a configuration came from; `ct` is a container's `<vmid>.fw`. */
export type FwEnv = 'cluster' | 'host' | 'vm' | 'ct';
type RuleEnv = FwEnv | 'group';

export type IpVersion = 4 | 6;

export interface FwRule {
  /** `in`, `out`, `forward` or `group` (lowercased). */
  readonly type: string;
  /** ACCEPT/DROP/REJECT, or the group name for `GROUP`. */
  readonly action: string;
  /** Canonical macro name for `MACRO(ACTION)`. */
  readonly macro?: string;
  readonly enable: boolean;
  readonly iface?: string;
  readonly proto?: string;
  readonly dport?: string;
  readonly sport?: string;
  readonly source?: string;
  readonly dest?: string;
  readonly log?: string;
  readonly icmpType?: string;
  readonly comment?: string;
  /** IP version the rule is limited to (from its addresses, aliases or ICMP protocol). */
  readonly ipversion?: IpVersion;
  /** Parameter → message, in the order found; a rule with errors is never compiled. */
  readonly errors?: readonly (readonly [string, string])[];
  /** The line as written (trimmed). */
  readonly text: string;
  readonly pos: Position;
}

export interface FwAlias {
  readonly name: string;
  /** Without a /32 or /128. */
  readonly cidr: string;
  readonly ipversion: IpVersion;
  readonly comment?: string;
  readonly pos: Position;
}

export interface FwIpsetEntry {
  /** An address, CIDR or alias name as written (/32, /128 stripped). */
  readonly cidr: string;
  readonly nomatch: boolean;
  readonly comment?: string;
  readonly error?: string;
  readonly pos: Position;
}

export interface FwIpset {
  readonly name: string;
  readonly comment?: string;
  readonly entries: readonly FwIpsetEntry[];
  readonly pos: Position;
}

export interface FwGroup {
  readonly name: string;
  readonly comment?: string;
  readonly rules: readonly FwRule[];
  readonly pos: Position;
}

export type FwOptionValue = string | number;

export interface FwConfig {
  readonly env: FwEnv;
  readonly file: string;
  /** False when the file was empty (pve-firewall treats a guest file without content as absent). */
  readonly present: boolean;
  readonly options: Readonly<Record<string, FwOptionValue>>;
  /** Where each option was set. */
  readonly optionPos: Readonly<Record<string, Position>>;
  readonly rules: readonly FwRule[];
  /** Lowercased alias name → alias. */
  readonly aliases: ReadonlyMap<string, FwAlias>;
  /** Lowercased ipset name → set. */
  readonly ipsets: ReadonlyMap<string, FwIpset>;
  /** Lowercased group name → group (cluster.fw only). */
  readonly groups: ReadonlyMap<string, FwGroup>;
}

const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]+$/;
const MAX_IPSET_NAME = 64;
const MAX_GROUP_NAME = 18;
const MAX_ALIAS_NAME = 64;

export const LOG_LEVELS: Readonly<Record<string, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};
const LOG_RE = 'emerg|alert|crit|err|warning|notice|info|debug|nolog';

/** Protocols whose rules may name ports (names and numbers, as pve-firewall lists them). */
export const PROTOCOLS_WITH_PORTS: ReadonlySet<string> = new Set([
  'udp',
  '17',
  'udplite',
  '136',
  'tcp',
  '6',
  'dccp',
  '33',
  'sctp',
  '132',
]);

export function protoIsIcmp(proto: string): boolean {
  return proto === 'icmp' || proto === 'icmpv6' || proto === 'ipv6-icmp';
}

/** pve-firewall's own ICMP type name lists (icmp: iptables names plus `any`; icmpv6: ip6tables names). */
const ICMP_NAMES = new Set([...ICMP_TYPES_BY_NAME.keys(), 'any']);
const ICMPV6_NAMES = new Set(ICMPV6_TYPES_BY_NAME.keys());

/** `/etc/services` names pve-firewall accepts in port lists (Debian netbase; the ones seen in firewall rules). */
const SERVICES: Readonly<Record<string, number>> = {
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  tftp: 69,
  http: 80,
  pop3: 110,
  sunrpc: 111,
  ntp: 123,
  imap2: 143,
  snmp: 161,
  bgp: 179,
  ldap: 389,
  https: 443,
  submissions: 465,
  syslog: 514,
  submission: 587,
  ldaps: 636,
  rsync: 873,
  imaps: 993,
  pop3s: 995,
  openvpn: 1194,
  mysql: 3306,
  postgresql: 5432,
  'http-alt': 8080,
};

export function servicePort(name: string): number | undefined {
  return SERVICES[name];
}

/** One element of a port list: `N`, `N:M`, a service name, or (for ICMP dports) a type name. */
export function checkPortList(str: string, dport: boolean): { multi: boolean } {
  let count = 0;
  let icmp = false;
  const elements = str.split(',');
  if (elements.some((e) => e === '')) throw new Error('extraneous commas in list');
  for (const item of elements) {
    const m = /^([0-9]+):([0-9]+)$/.exec(item);
    if (m) {
      count += 2;
      const a = Number(m[1]);
      const b = Number(m[2]);
      if (a > 65535) throw new Error(`invalid port '${m[1]}'`);
      if (b > 65535) throw new Error(`invalid port '${m[2]}'`);
      if (a > b) throw new Error(`backwards range '${a}:${b}' not allowed, did you mean '${b}:${a}'?`);
    } else if (/^[0-9]+$/.test(item)) {
      count += 1;
      if (Number(item) > 65535) throw new Error(`invalid port '${item}'`);
    } else if (dport && (ICMP_NAMES.has(item) || ICMPV6_NAMES.has(item))) icmp = true;
    else if (SERVICES[item] === undefined) throw new Error(`invalid port '${item}'`);
  }
  if (icmp && count > 0) throw new Error('ICMP ports not allowed in port range');
  if (count > 15) throw new Error('too many entries in port list (> 15 numbers)');
  return { multi: elements.length > 1 };
}

/** An IP or CIDR (`/32`, `/128` stripped) and its version, or undefined. */
export function parseIpOrCidr(text: string): { cidr: string; ipversion: IpVersion } | undefined {
  const m = /^([^/]+)(?:\/(\d+))?$/.exec(text);
  if (!m) return undefined;
  const len = m[2] === undefined ? undefined : Number(m[2]);
  if (parseIpv4(m[1]!) !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(m[1]!)) {
    if (len !== undefined && len > 32) return undefined;
    return { cidr: len === 32 ? m[1]! : text, ipversion: 4 };
  }
  if (m[1]!.includes(':') && parseIpv6(m[1]!) !== undefined) {
    if (len !== undefined && len > 128) return undefined;
    return { cidr: len === 128 ? m[1]! : text, ipversion: 6 };
  }
  return undefined;
}

/** pve-firewall's address-list check: one family; ranges only alone. Undefined version for ipsets and aliases. */
function addressListVersion(str: string): IpVersion | undefined {
  if (str.startsWith('+')) {
    if (str.length > MAX_IPSET_NAME + 1) throw new Error('ipset name too long');
    return undefined;
  }
  if (/^(dc\/|guest\/)?[A-Za-z][A-Za-z0-9_-]+$/.test(str)) {
    if (str.length > MAX_ALIAS_NAME) throw new Error('alias name too long');
    return undefined;
  }
  const elements = str.split(',');
  if (elements.some((e) => e === '')) throw new Error('extraneous commas in list');
  let version: IpVersion | undefined;
  let range = false;
  for (const el of elements) {
    let v: IpVersion | undefined;
    const dash = el.indexOf('-');
    if (dash >= 0) {
      range = true;
      const a = parseIpOrCidr(el.slice(0, dash));
      const b = parseIpOrCidr(el.slice(dash + 1));
      if (!a || !b || a.ipversion !== b.ipversion || a.cidr.includes('/') || b.cidr.includes('/'))
        throw new Error(`invalid IP address: Invalid range ${el}`);
      v = a.ipversion;
    } else {
      const a = parseIpOrCidr(el);
      if (!a) throw new Error(`invalid IP address: Invalid IP ${el}`);
      v = a.ipversion;
    }
    if (version !== undefined && v !== version)
      throw new Error(`detected mixed ipv4/ipv6 addresses in address list '${str}'`);
    version = v;
  }
  if (range && elements.length > 1) throw new Error("you can't use a range in a list");
  return version;
}

/** Looks up an alias: the guest's own first (unless `dc/`), then the cluster's (unless `guest/`). */
export function resolveAlias(
  name: string,
  scope: string,
  local: FwConfigLike | undefined,
  cluster: FwConfigLike | undefined,
): FwAlias | undefined {
  const key = name.toLowerCase();
  let e: FwAlias | undefined;
  if (scope !== 'dc/' && local) e = local.aliases.get(key);
  if (scope !== 'guest/' && !e && cluster) e = cluster.aliases.get(key);
  return e;
}

/** What rule verification needs of a configuration (also satisfied by one still being read). */
export interface FwConfigLike {
  readonly aliases: ReadonlyMap<string, FwAlias>;
  readonly ipsets: ReadonlyMap<string, FwIpset>;
}

const DIRECTIONS: Readonly<Record<RuleEnv, readonly string[]>> = {
  ct: ['in', 'out', 'group'],
  vm: ['in', 'out', 'group'],
  group: ['in', 'out', 'forward'],
  cluster: ['in', 'out', 'forward', 'group'],
  host: ['in', 'out', 'forward', 'group'],
};

interface RawRule {
  type: string;
  action: string;
  macro?: string;
  enable: boolean;
  iface?: string;
  proto?: string;
  dport?: string;
  sport?: string;
  source?: string;
  dest?: string;
  log?: string;
  icmpType?: string;
  comment?: string;
}

/** Splits a rule line like pve-firewall's parse_fw_rule; a string is the reason it cannot be parsed at all. */
function parseRuleLine(line: string): RawRule | string {
  let rest = line;
  let comment: string | undefined;
  const hash = rest.indexOf('#');
  if (hash >= 0) {
    comment = rest.slice(hash + 1).trim();
    rest = rest.slice(0, hash);
  }
  let enable = true;
  if (rest.startsWith('|')) {
    enable = false;
    rest = rest.slice(1);
  }
  const head = /^(\S+)\s+(\S+)\s*/.exec(rest);
  if (!head) return `unable to parse rule: ${rest}`;
  rest = rest.slice(head[0].length);
  const r: RawRule = { type: head[1]!.toLowerCase(), action: head[2]!, enable };
  if (comment !== undefined) r.comment = comment;
  if (r.type === 'in' || r.type === 'out' || r.type === 'forward') {
    const m = /^(\S+)\((ACCEPT|DROP|REJECT)\)$/.exec(r.action);
    if (m) {
      r.macro = m[1]!;
      r.action = m[2]!;
    }
  }
  const opts: readonly [RegExp, (v: string) => void][] = [
    [/^(?:-p|--?proto) (\S+)\s*/, (v) => (r.proto = v)],
    [/^--?dport (\S+)\s*/, (v) => (r.dport = v)],
    [/^--?sport (\S+)\s*/, (v) => (r.sport = v)],
    [/^--?source (\S+)\s*/, (v) => (r.source = v)],
    [/^--?dest (\S+)\s*/, (v) => (r.dest = v)],
    [new RegExp(`^--?log (${LOG_RE})\\s*`), (v) => (r.log = v)],
    [/^--?icmp-type (\S+)\s*/, (v) => (r.icmpType = v)],
  ];
  outer: while (rest.length > 0) {
    const i = /^-i (\S+)\s*/.exec(rest);
    if (i) {
      r.iface = i[1]!;
      rest = rest.slice(i[0].length);
      continue;
    }
    if (r.type === 'group') break;
    for (const [re, set] of opts) {
      const m = re.exec(rest);
      if (m) {
        set(m[1]!);
        rest = rest.slice(m[0].length);
        continue outer;
      }
    }
    break;
  }
  if (rest.length > 0) return `unable to parse rule parameters: ${rest}`;
  return r;
}

/** The rules a macro expands to for one IP version (undefined: none in that version). */
export function expandMacro(macro: string, ipversion: IpVersion | undefined): readonly MacroRule[] | undefined {
  if (ipversion === 6 && MACROS_V6[macro]) return MACROS_V6[macro];
  if (ipversion === 4 && V6_ONLY_MACROS.has(macro)) return undefined;
  return MACROS[macro];
}

/** pve-firewall's verify_rule: the rule with its IP version and the errors that keep it from being compiled. */
function verifyRule(r: RawRule, env: RuleEnv, cluster: FwConfigLike | undefined, local: FwConfigLike | undefined) {
  const errors: [string, string][] = [];
  const add = (param: string, msg: string) => {
    if (!errors.some(([p]) => p === param)) errors.push([param, msg]);
  };
  let ipversion: IpVersion | undefined;
  const setVersion = (v: IpVersion | undefined) => {
    if (v === undefined) return;
    if (ipversion !== undefined && v !== ipversion) throw new Error('detected mixed ipv4/ipv6 addresses in rule');
    ipversion = v;
  };
  const checkRef = (param: 'source' | 'dest') => {
    const value = r[param];
    if (!value) return;
    if (value.startsWith('+')) {
      const m = /^\+(guest\/|dc\/|sdn\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(value);
      if (!m) add(param, `invalid ipset name '${value}'`);
      else if (!cluster?.ipsets.has(m[2]!) && !local?.ipsets.has(m[2]!)) add(param, `no such ipset '${m[2]}'`);
      return;
    }
    const m = /^(guest\/|dc\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(value);
    if (!m) return;
    const key = m[2]!.toLowerCase();
    if (!cluster?.aliases.has(key) && !local?.aliases.has(key)) add(param, `no such alias '${value}'`);
    const e = resolveAlias(m[2]!, m[1] ?? '', local, cluster);
    setVersion(e?.ipversion);
  };
  const allowed = DIRECTIONS[env];
  if (!allowed.includes(r.type)) add('type', `invalid rule type '${r.type}' for rule_env '${env}'`);
  if (r.type === 'in' || r.type === 'out' || r.type === 'forward') {
    if (r.type === 'forward' && r.action === 'REJECT') add('action', 'cannot define REJECT rules on forward chain');
    if (!/^(ACCEPT|DROP|REJECT)$/.test(r.action)) add('action', `unknown action '${r.action}'`);
  } else if (r.type === 'group') {
    if (env === 'group') add('type', 'security groups not allowed');
    if (!NAME_RE.test(r.action)) add('action', 'invalid characters in security group name');
  } else add('type', `unknown rule type '${r.type}'`);
  if (r.iface !== undefined) {
    if (env === 'group') add('type', 'parameter -i not allowed for this rule type');
    if (!/^[a-zA-Z][a-zA-Z0-9_.@-]{1,19}$/.test(r.iface)) add('iface', `invalid format - invalid interface name`);
    if ((env === 'vm' || env === 'ct') && !/^net(\d+)$/.test(r.iface))
      add('iface', "value does not match the regex pattern 'net\\d+'");
  }
  let macro: string | undefined;
  if (r.macro !== undefined) {
    macro = canonicalMacro(r.macro);
    if (macro === undefined) add('macro', `unknown macro '${r.macro}'`);
  }
  try {
    let isIcmp = false;
    if (r.proto) {
      if (!/^\d+$/.test(r.proto) && protocolByName(r.proto) === undefined && r.proto !== 'icmpv6')
        add('proto', `unknown protocol '${r.proto}'`);
      if (r.proto === 'icmp') setVersion(4);
      if (r.proto === 'icmpv6' || r.proto === 'ipv6-icmp') setVersion(6);
      isIcmp = protoIsIcmp(r.proto);
    }
    if (r.dport) {
      try {
        checkPortList(r.dport, isIcmp);
      } catch (e) {
        add('dport', (e as Error).message);
      }
      if (!r.proto) add('proto', "missing property - 'dport' requires this property");
      if (!PROTOCOLS_WITH_PORTS.has(r.proto ?? '') && !isIcmp)
        add('dport', `protocol '${r.proto ?? ''}' does not support ports`);
    }
    if (r.icmpType) {
      const proto = r.proto ?? '';
      if (!isIcmp) add('proto', "missing property - 'icmp-type' requires this property");
      if (r.dport) add('icmp-type', "'icmp-type' cannot be specified together with 'dport'");
      if (proto === 'icmp' && !ICMP_NAMES.has(r.icmpType) && !/^\d+$/.test(r.icmpType))
        add('icmp-type', `invalid icmp-type '${r.icmpType}' for proto 'icmp'`);
      else if ((proto === 'icmpv6' || proto === 'ipv6-icmp') && !ICMPV6_NAMES.has(r.icmpType))
        add('icmp-type', `invalid icmp-type '${r.icmpType}' for proto '${proto}'`);
    }
    if (r.sport) {
      try {
        checkPortList(r.sport, false);
      } catch (e) {
        add('sport', (e as Error).message);
      }
      if (!r.proto) add('proto', "missing property - 'sport' requires this property");
      if (!PROTOCOLS_WITH_PORTS.has(r.proto ?? '')) add('sport', `protocol '${r.proto ?? ''}' does not support ports`);
    }
    for (const param of ['source', 'dest'] as const) {
      const v = r[param];
      if (!v) continue;
      try {
        setVersion(addressListVersion(v));
      } catch (e) {
        add(param, (e as Error).message);
      }
      checkRef(param);
    }
  } catch (e) {
    add('source', (e as Error).message);
  }
  if (macro !== undefined && errors.length === 0) {
    for (const m of expandMacro(macro, ipversion) ?? []) {
      for (const k of ['proto', 'dport', 'sport'] as const) {
        const mv = m[k];
        const uv = r[k];
        if (mv !== undefined && uv !== undefined && mv !== uv)
          add(k, `parameter '${k}' already define in macro (value = '${mv}')`);
      }
    }
  }
  return { macro, ipversion, errors };
}

/**
 * What pve-firewall's `/\s*#\s*(.*?)\s*$/` (with `spaces`) or `/#\s*(.*?)\s*$/` finds, without the regex's
 * quadratic time on long runs of spaces: where the comment starts (with the spaces before the first `#` when
 * `spaces`), and its text (index 1, trimmed).
 */
function trailingComment(line: string, spaces: boolean): { readonly index: number; readonly 1: string } | undefined {
  const hash = line.indexOf('#');
  if (hash < 0) return undefined;
  let index = hash;
  if (spaces) while (index > 0 && /\s/.test(line[index - 1]!)) index--;
  return { index, 1: line.slice(hash + 1).trim() };
}

function optionFor(env: FwEnv, line: string, now: number | undefined): [string, FwOptionValue] | string {
  let m: RegExpExecArray | null;
  const fail = `can't parse option '${line}'`;
  switch (env) {
    case 'vm':
    case 'ct':
      m = /^(enable|dhcp|ndp|radv|macfilter|ipfilter|ips):\s*(0|1)\s*$/i.exec(line);
      if (m) return [m[1]!.toLowerCase(), Number(m[2])];
      m = new RegExp(`^(log_level_in|log_level_out):\\s*((${LOG_RE})\\s*)?$`, 'i').exec(line);
      if (m) return [m[1]!.toLowerCase(), m[2] ? m[3]!.toLowerCase() : ''];
      m = /^(policy_(in|out)):\s*(ACCEPT|DROP|REJECT)\s*$/i.exec(line);
      if (m) return [m[1]!.toLowerCase(), m[3]!.toUpperCase()];
      m = /^(ips_queues):\s*((\d+)(:(\d+))?)\s*$/i.exec(line);
      if (m) return [m[1]!.toLowerCase(), m[2]!];
      m = /^(layer2_protocols):\s*(\S+)\s*$/i.exec(line);
      if (m) return [m[1]!.toLowerCase(), m[2]!];
      return fail;
    case 'host':
      m =
        /^(enable|nosmurfs|tcpflags|ndp|log_nf_conntrack|nf_conntrack_allow_invalid|protection_synflood|nftables):\s*(0|1)\s*$/i.exec(
          line,
        );
      if (m) return [m[1]!.toLowerCase(), Number(m[2])];
      m = new RegExp(
        `^(log_level_(?:in|out|forward)|tcp_flags_log_level|smurf_log_level):\\s*((${LOG_RE})\\s*)?$`,
        'i',
      ).exec(line);
      if (m) return [m[1]!.toLowerCase(), m[2] ? m[3]!.toLowerCase() : ''];
      m = /^(nf_conntrack_helpers):\s*(\S+)\s*$/i.exec(line);
      if (m) {
        const helpers = m[2]!.toLowerCase();
        const known = ['amanda', 'ftp', 'irc', 'netbios-ns', 'pptp', 'sane', 'sip', 'snmp', 'tftp'];
        for (const h of helpers.split(',')) if (!known.includes(h)) return `unknown helper ${h}`;
        return [m[1]!.toLowerCase(), helpers];
      }
      m =
        /^(nf_conntrack_max|nf_conntrack_tcp_timeout_established|nf_conntrack_tcp_timeout_syn_recv|protection_synflood_rate|protection_synflood_burst|protection_limit):\s*(\d+)\s*$/i.exec(
          line,
        );
      if (m) return [m[1]!.toLowerCase(), Number(m[2])];
      return fail;
    case 'cluster':
      m = /^(enable):\s*(\d+)\s*$/i.exec(line);
      if (m) {
        let v = Number(m[2]);
        // A value above 1 is the time the GUI's safe-enable switched the firewall on: on for 60 seconds only.
        if (v > 1 && (now === undefined || now - v > 60)) v = 0;
        return ['enable', v];
      }
      m = /^(ebtables):\s*(0|1)\s*$/i.exec(line);
      if (m) return ['ebtables', Number(m[2])];
      m = /^(policy_(in|out|forward)):\s*(ACCEPT|DROP|REJECT)\s*$/i.exec(line);
      if (m) return [m[1]!.toLowerCase(), m[3]!.toUpperCase()];
      m = /^(log_ratelimit):\s*(\S+)\s*$/.exec(line);
      if (m) return ['log_ratelimit', m[2]!];
      return fail;
  }
}

export interface FwReadOptions {
  /** The cluster configuration, read first (aliases and ipsets rules and ipset entries may refer to). */
  readonly cluster?: FwConfigLike;
  /** Current UNIX time, for cluster `enable: <timestamp>` (without it such a value counts as off). */
  readonly now?: number;
}

/** Reads one firewall file of the given kind. */
export function readFwConfig(text: string, file: string, env: FwEnv, opts: FwReadOptions = {}): ReadResult<FwConfig> {
  const issues: Issue[] = [];
  const options: Record<string, FwOptionValue> = {};
  const optionPos: Record<string, Position> = {};
  const rules: FwRule[] = [];
  const aliases = new Map<string, FwAlias>();
  const ipsets = new Map<string, FwIpset & { entries: FwIpsetEntry[] }>();
  const groups = new Map<string, FwGroup & { rules: FwRule[] }>();
  const self: FwConfigLike = { aliases, ipsets };
  const cluster = env === 'cluster' ? self : opts.cluster;
  const has = {
    options: true,
    aliases: env !== 'host',
    ipset: env !== 'host',
    rules: true,
    groups: env === 'cluster',
  };
  let section: 'options' | 'aliases' | 'rules' | 'groups' | 'ipset' | undefined;
  let group: (FwGroup & { rules: FwRule[] }) | undefined;
  let set: (FwIpset & { entries: FwIpsetEntry[] }) | undefined;
  let keys = new Set<string>();
  const warn = (pos: Position, code: string, msg: string) => issues.push(issue(code, msg, pos, 'warning'));
  for (const [idx, rawLine] of text.split('\n').entries()) {
    const line = rawLine.replace(/^[ \t]+|[ \t\r]+$/g, '');
    const pos = filePos(file, idx + 1);
    if (line.startsWith('#') || /^\s*$/.test(line)) continue;
    let m: RegExpExecArray | null;
    if (has.options && /^\[options\]$/i.test(line)) {
      section = 'options';
      continue;
    }
    if (has.aliases && /^\[aliases\]$/i.test(line)) {
      section = 'aliases';
      continue;
    }
    m = has.groups ? /^\[group\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line) : null;
    if (m) {
      const name = m[1]!.toLowerCase();
      if (name.length > MAX_GROUP_NAME || !NAME_RE.test(name)) {
        section = undefined;
        warn(
          pos,
          'pve-fw-bad-group-name',
          name.length > MAX_GROUP_NAME ? 'security group name too long' : `invalid security group name '${name}'`,
        );
        continue;
      }
      section = 'groups';
      group = { name, rules: [], pos, ...(m[2] ? { comment: m[2] } : {}) };
      groups.set(name, group);
      continue;
    }
    if (has.rules && /^\[rules\]$/i.test(line)) {
      section = 'rules';
      continue;
    }
    m = has.ipset ? /^\[ipset\s+(\S+)\]\s*(?:#\s*(.*?)\s*)?$/i.exec(line) : null;
    if (m) {
      const name = m[1]!.toLowerCase();
      if (name.length > MAX_IPSET_NAME || !NAME_RE.test(name)) {
        section = undefined;
        warn(
          pos,
          'pve-fw-bad-ipset-name',
          name.length > MAX_IPSET_NAME ? 'ipset name too long' : `invalid ipset name '${name}'`,
        );
        continue;
      }
      section = 'ipset';
      set = { name, entries: [], pos, ...(m[2] ? { comment: m[2] } : {}) };
      ipsets.set(name, set);
      keys = new Set();
      continue;
    }
    if (section === undefined) {
      warn(pos, 'pve-fw-no-section', 'skip line - no section');
      continue;
    }
    switch (section) {
      case 'options': {
        const o = optionFor(env, line, opts.now);
        if (typeof o === 'string') {
          warn(pos, 'pve-fw-bad-option', o);
          continue;
        }
        options[o[0]] = o[1];
        optionPos[o[0]] = pos;
        continue;
      }
      case 'aliases': {
        const comment = trailingComment(line, true);
        const body = comment ? line.slice(0, comment.index) : line;
        const am = /^(\S+)\s(\S+)$/.exec(body);
        if (!am) {
          warn(pos, 'pve-fw-bad-alias', `expected '<name> <ip or cidr>', got '${line}'`);
          continue;
        }
        const c = parseIpOrCidr(am[2]!);
        if (!c) {
          warn(pos, 'pve-fw-bad-alias', 'value does not look like a valid IP address or CIDR network');
          continue;
        }
        aliases.set(am[1]!.toLowerCase(), {
          name: am[1]!,
          cidr: c.cidr,
          ipversion: c.ipversion,
          pos,
          ...(comment?.[1] ? { comment: comment[1] } : {}),
        });
        continue;
      }
      case 'rules':
      case 'groups': {
        const r = parseRuleLine(line);
        if (typeof r === 'string') {
          warn(pos, 'pve-fw-bad-rule', r);
          continue;
        }
        const env2: RuleEnv = section === 'groups' ? 'group' : env;
        const v = verifyRule(r, env2, cluster, section === 'groups' ? undefined : self);
        const { macro: _m, ...base } = r;
        const rule: FwRule = {
          ...base,
          ...(v.macro !== undefined ? { macro: v.macro } : r.macro !== undefined ? { macro: r.macro } : {}),
          ...(v.ipversion !== undefined ? { ipversion: v.ipversion } : {}),
          ...(v.errors.length > 0 ? { errors: v.errors } : {}),
          text: line,
          pos,
        };
        if (v.errors.length > 0)
          warn(
            pos,
            'pve-fw-rule-errors',
            `errors in rule parameters: ${line}${v.errors.map(([p, msg]) => `; ${p}: ${msg}`).join('')} (rule not compiled)`,
          );
        if (section === 'groups') group!.rules.push(rule);
        else rules.push(rule);
        continue;
      }
      case 'ipset': {
        const cm = trailingComment(line, false);
        const body = cm ? line.slice(0, cm.index) : line;
        const em = /^(!)?\s*(\S+)\s*$/.exec(body);
        if (!em) {
          warn(pos, 'pve-fw-bad-ipset-entry', `expected '[!]<ip|cidr|alias>', got '${line}'`);
          continue;
        }
        let cidr = em[2]!;
        let error: string | undefined;
        const am = /^(dc\/|guest\/)?([A-Za-z][A-Za-z0-9_-]+)$/.exec(cidr);
        if (am) {
          if (!resolveAlias(am[2]!, am[1] ?? '', env === 'cluster' ? undefined : self, cluster))
            error = `no such alias '${am[2]}'`;
        } else {
          const c = parseIpOrCidr(cidr);
          if (!c) error = 'value does not look like a valid IP address or CIDR network';
          else cidr = c.cidr;
        }
        if (error === undefined && keys.has(cidr)) error = `duplicate ipset entry for '${cidr}'`;
        if (/\/0+$/.test(cidr)) error = 'a zero prefix is not allowed in ipset entries';
        keys.add(cidr);
        if (error !== undefined)
          warn(pos, 'pve-fw-bad-ipset-entry', `errors in ipset '${set!.name}': ${line}: ${error}`);
        set!.entries.push({
          cidr,
          nomatch: em[1] !== undefined,
          pos,
          ...(cm?.[1] ? { comment: cm[1] } : {}),
          ...(error !== undefined ? { error } : {}),
        });
        continue;
      }
    }
  }
  return {
    value: { env, file, present: text.length > 0, options, optionPos, rules, aliases, ipsets, groups },
    issues,
  };
}

/** An empty configuration (a file that does not exist). */
export function emptyFwConfig(env: FwEnv, file: string): FwConfig {
  return {
    env,
    file,
    present: false,
    options: {},
    optionPos: {},
    rules: [],
    aliases: new Map(),
    ipsets: new Map(),
    groups: new Map(),
  };
}

export type { MacroRule };
