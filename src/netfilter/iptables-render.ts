/**
 * `iptables-save` / `ip6tables-save` and `iptables -S` text as iptables-nft 1.8.9 (Debian 12) prints it: header
 * matches (`-s`, `-d`, `-i`, `-o`, `-p`) first, then every `-m` match in rule order with its save form, then the
 * target. User chains are listed sorted by name (byte order), after the built-in chains.
 */
import {
  CT_STATE_ORDER,
  IPT_BUILTIN_CHAINS,
  type IptChain,
  type IptMatch,
  type IptRange,
  type IptRule,
  type IptTable,
  type IptTarget,
  tcpFlagsText,
} from './iptables-model.ts';
import { PROTOCOL_NAMES } from './names.ts';

/** `xtables_save_string`: bare when only `[A-Za-z0-9_-]`, else double-quoted with `"`, `\` and `'` escaped. */
export function saveString(value: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(value)) return value;
  return `"${value.replace(/["\\']/g, (c) => `\\${c}`)}"`;
}

function neg(n: boolean | undefined): string {
  return n ? ' !' : '';
}

function portText(opt: string, r: IptRange): string {
  return `${neg(r.negated)} ${opt} ${r.lo === r.hi ? r.lo : `${r.lo}:${r.hi}`}`;
}

/** tcp/udp print a port range only when it is not 0:65535 (or negated). */
function tcpudpPort(opt: string, r: IptRange | undefined): string {
  if (r === undefined) return '';
  if (r.lo === 0 && r.hi === 0xffff && !r.negated) return '';
  return portText(opt, r);
}

function matchName(m: IptMatch): string {
  return m.kind === 'conntrack' && m.legacy ? 'state' : m.kind;
}

/** The save text of one match, including its leading ` -m NAME`. */
export function renderIptablesMatch(m: IptMatch, family: 'ipv4' | 'ipv6'): string {
  let s = ` -m ${matchName(m)}`;
  switch (m.kind) {
    case 'mac':
      return `${s}${neg(m.negated)} --mac-source ${m.source}`;
    case 'iprange':
      if (m.src) s += `${neg(m.src.negated)} --src-range ${m.src.from}-${m.src.to}`;
      if (m.dst) s += `${neg(m.dst.negated)} --dst-range ${m.dst.from}-${m.dst.to}`;
      return s;
    case 'dscp':
      return `${s}${neg(m.negated)} --dscp 0x${m.value.toString(16).padStart(2, '0')}`;
    case 'tcp':
      s += tcpudpPort('--sport', m.sport) + tcpudpPort('--dport', m.dport);
      if (m.option) s += `${neg(m.option.negated)} --tcp-option ${m.option.value}`;
      if (m.flags)
        s += `${neg(m.flags.negated)} --tcp-flags ${tcpFlagsText(m.flags.mask)} ${tcpFlagsText(m.flags.comp)}`;
      return s;
    case 'udp':
      return s + tcpudpPort('--sport', m.sport) + tcpudpPort('--dport', m.dport);
    case 'sctp':
      if (m.sport) s += portText('--sport', m.sport);
      if (m.dport) s += portText('--dport', m.dport);
      return s;
    case 'icmp':
      s += `${neg(m.negated)}`;
      if (m.type === 0xff) return `${s} --icmp-type any`;
      s += ` --icmp-type ${m.type}`;
      if (m.codeLo !== 0 || m.codeHi !== 0xff) s += `/${m.codeLo}`;
      return s;
    case 'icmp6':
      s += `${neg(m.negated)} --icmpv6-type ${m.type}`;
      if (m.codeLo !== 0 || m.codeHi !== 0xff) s += `/${m.codeLo}`;
      return s;
    case 'conntrack':
      if (m.state) {
        const states = CT_STATE_ORDER.filter((x) => m.state?.states.includes(x));
        s += `${neg(m.state.negated)} ${m.legacy ? '--state' : '--ctstate'} ${states.join(',')}`;
      }
      if (m.dir) s += ` --ctdir ${m.dir}`;
      return s;
    case 'set':
      return `${s}${neg(m.negated)} --match-set ${m.name} ${m.flags.join(',')}`;
    case 'connlimit':
      return `${s} ${m.upto ? '--connlimit-upto' : '--connlimit-above'} ${m.limit} --connlimit-mask ${m.mask} ${m.daddr ? '--connlimit-daddr' : '--connlimit-saddr'}`;
    case 'comment':
      return `${s} --comment ${saveString(m.text)}`;
    case 'mark':
      return `${s}${neg(m.negated)} --mark 0x${m.value.toString(16)}${m.mask === 0xffffffff ? '' : `/0x${m.mask.toString(16)}`}`;
    case 'addrtype':
      if (m.src) s += `${neg(m.src.negated)} --src-type ${m.src.type}`;
      if (m.dst) s += `${neg(m.dst.negated)} --dst-type ${m.dst.type}`;
      return s;
    case 'limit':
      return `${s} --limit ${m.rate}${m.burst !== undefined && m.burst !== 5 ? ` --limit-burst ${m.burst}` : ''}`;
    case 'multiport':
      return `${s}${neg(m.negated)} --${m.which} ${m.ranges.map((r) => (r.lo === r.hi ? `${r.lo}` : `${r.lo}:${r.hi}`)).join(',')}`;
    case 'physdev':
      if (m.in) s += `${neg(m.in.negated)} --physdev-in ${m.in.name}`;
      if (m.out) s += `${neg(m.out.negated)} --physdev-out ${m.out.name}`;
      if (m.isIn) s += `${neg(m.isIn.negated)} --physdev-is-in`;
      if (m.isOut) s += `${neg(m.isOut.negated)} --physdev-is-out`;
      if (m.isBridged) s += `${neg(m.isBridged.negated)} --physdev-is-bridged`;
      return s;
  }
  void family;
}

function targetText(t: IptTarget, family: 'ipv4' | 'ipv6'): string {
  switch (t.kind) {
    case 'verdict':
      return ` -j ${t.verdict}`;
    case 'jump':
      return ` -j ${t.chain}`;
    case 'goto':
      return ` -g ${t.chain}`;
    case 'mark':
      return ` -j MARK --set-xmark 0x${t.value.toString(16)}/0x${t.mask.toString(16)}`;
    case 'connmark':
      return ` -j CONNMARK --set-xmark 0x${t.value.toString(16)}/0x${t.mask.toString(16)}`;
    case 'nflog':
      return ` -j NFLOG${t.prefix !== undefined ? ` --nflog-prefix ${saveString(t.prefix)}` : ''}${t.group !== undefined && t.group !== 0 ? ` --nflog-group ${t.group}` : ''}`;
    case 'notrack':
      return t.ct ? ' -j CT --notrack' : ' -j NOTRACK';
    case 'nfqueue':
      return ` -j NFQUEUE${t.queue ? ` ${t.queue}` : ''}${t.bypass ? ' --queue-bypass' : ''}`;
    case 'snat':
      return ` -j SNAT --to-source ${t.toSource}${t.toPorts ? `:${portRangeText(t.toPorts)}` : ''}`;
    case 'masquerade':
      return ` -j MASQUERADE${t.toPorts ? ` --to-ports ${portRangeText(t.toPorts)}` : ''}`;
    case 'dnat':
      return ` -j DNAT --to-destination ${t.toDest}${t.toPort !== undefined ? `:${t.toPort}` : ''}`;
    case 'passive':
      return ` -j ${t.name}${t.args ? ` ${t.args}` : ''}`;
    case 'redirect':
      return ` -j REDIRECT${t.toPort !== undefined ? ` --to-ports ${t.toPort}` : ''}`;
    case 'reject':
      return ` -j REJECT --reject-with ${t.with || (family === 'ipv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable')}`;
  }
}

function portRangeText(r: { readonly lo: number; readonly hi: number }): string {
  return r.lo === r.hi ? `${r.lo}` : `${r.lo}-${r.hi}`;
}

function protoText(value: number): string {
  return PROTOCOL_NAMES.get(value) ?? `${value}`;
}

/** The rule as `iptables-save` prints it after `-A CHAIN` (leading space included when non-empty). */
export function renderIptablesRuleBody(rule: IptRule, family: 'ipv4' | 'ipv6'): string {
  let s = '';
  // iptables-nft prints nothing for an address match with prefix length 0 that is not negated.
  if (rule.src && (rule.src.prefixLen > 0 || rule.src.negated))
    s += `${neg(rule.src.negated)} -s ${rule.src.addr}/${rule.src.prefixLen}`;
  if (rule.dst && (rule.dst.prefixLen > 0 || rule.dst.negated))
    s += `${neg(rule.dst.negated)} -d ${rule.dst.addr}/${rule.dst.prefixLen}`;
  if (rule.in) s += `${neg(rule.in.negated)} -i ${rule.in.name}`;
  if (rule.out) s += `${neg(rule.out.negated)} -o ${rule.out.name}`;
  if (rule.proto && rule.proto.value !== 0) s += `${neg(rule.proto.negated)} -p ${protoText(rule.proto.value)}`;
  for (const m of rule.matches) s += renderIptablesMatch(m, family);
  if (rule.target) s += targetText(rule.target, family);
  return s;
}

/** `-A CHAIN ...` */
export function renderIptablesRule(chain: string, rule: IptRule, family: 'ipv4' | 'ipv6'): string {
  return `-A ${chain}${renderIptablesRuleBody(rule, family)}`;
}

function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Built-in chains in hook order, then user chains sorted by name. */
export function iptablesListingOrder(table: IptTable): IptChain[] {
  const builtins = IPT_BUILTIN_CHAINS.map((n) => table.chains.find((c) => c.name === n)).filter(
    (c): c is IptChain => c !== undefined,
  );
  const user = table.chains.filter((c) => !IPT_BUILTIN_CHAINS.includes(c.name));
  user.sort((a, b) => byteCompare(a.name, b.name));
  return [...builtins, ...user];
}

export interface IptSaveOptions {
  /** Print `[packets:bytes]` from the model instead of `[0:0]`. */
  readonly counters?: boolean;
}

/** One table as `iptables-save` prints it, without the `# Generated`/`# Completed` comment lines. */
export function renderIptablesSave(table: IptTable, options: IptSaveOptions = {}): string {
  const chains = iptablesListingOrder(table);
  const lines = [`*${table.name}`];
  for (const c of chains) {
    const cnt = options.counters && c.counters ? `[${c.counters.packets}:${c.counters.bytes}]` : '[0:0]';
    lines.push(`:${c.name} ${c.builtin ? (c.policy ?? 'ACCEPT') : '-'} ${cnt}`);
  }
  for (const c of chains) for (const r of c.rules) lines.push(renderIptablesRule(c.name, r, table.family));
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** `iptables -S` (all chains of the filter table). */
export function renderIptablesS(table: IptTable): string {
  const chains = iptablesListingOrder(table);
  const lines: string[] = [];
  for (const c of chains) if (c.builtin) lines.push(`-P ${c.name} ${c.policy ?? 'ACCEPT'}`);
  for (const c of chains) if (!c.builtin) lines.push(`-N ${c.name}`);
  for (const c of chains) for (const r of c.rules) lines.push(renderIptablesRule(c.name, r, table.family));
  return `${lines.join('\n')}\n`;
}
