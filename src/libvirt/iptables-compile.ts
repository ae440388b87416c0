/**
 * The iptables/ip6tables half of `ebiptablesApplyNewRules` for one port: libvirt's global chains (`libvirt-in`,
 * `libvirt-out`, `libvirt-in-post`, `libvirt-host-in`, hooked from FORWARD/INPUT), the per-interface chains
 * `FI-`/`FO-`/`HI-<if>` with their `physdev` links, and the rules in sorted instance order (fact sheet §3.3 step 6).
 */

import { parseIpv4 } from '../addr/ipv4.ts';
import { ipv6ToGroups, parseIpv6 } from '../addr/ipv6.ts';
import type { IptChain, IptFamily, IptMatch, IptRule, IptTable } from '../netfilter/iptables-model.ts';
import { IPT_BUILTIN_CHAINS } from '../netfilter/iptables-model.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { TypedAttr } from './ebtables-translate.ts';
import {
  IPT_TEMP_CHAIN,
  type IptCopy,
  type IptRootChain,
  iptablesCopies,
  iptFamilyOf,
  translateIptablesRule,
} from './iptables-translate.ts';
import type { NwProtocol, NwRule } from './nwfilter-model.ts';

export const LIBVIRT_BASE_CHAINS = ['libvirt-in', 'libvirt-out', 'libvirt-in-post', 'libvirt-host-in'] as const;

export interface IpInstance {
  readonly rule: NwRule;
  readonly origin: Origin;
  readonly combos: readonly ReadonlyMap<string, TypedAttr>[];
}

interface MutableChain {
  chain: Omit<IptChain, 'rules'>;
  rules: IptRule[];
}

/** A filter table under construction (one per family). */
export class IptTableBuilder {
  readonly chains = new Map<string, MutableChain>();
  constructor(readonly family: IptFamily) {
    for (const name of IPT_BUILTIN_CHAINS) {
      this.chains.set(name, {
        chain: {
          name,
          builtin: true,
          policy: 'ACCEPT',
          policyOrigin: implicit(
            `${family === 'ipv4' ? 'iptables' : 'ip6tables'} filter ${name} default policy ACCEPT`,
          ),
          origin: implicit(`built-in chain ${name}`),
        },
        rules: [],
      });
    }
  }
  has(name: string): boolean {
    return this.chains.has(name);
  }
  addChain(name: string, origin: Origin): void {
    if (!this.chains.has(name)) this.chains.set(name, { chain: { name, builtin: false, origin }, rules: [] });
  }
  append(chain: string, rule: IptRule): void {
    const c = this.chains.get(chain);
    if (c === undefined) throw new Error(`internal: chain ${chain} not created`);
    c.rules.push(rule);
  }
  /** libvirt's global chains and their hooks (created once, never removed). */
  addBaseChains(): void {
    if (this.chains.has('libvirt-in')) return;
    const why = (c: string) =>
      implicit(`libvirt nwfilter global chain ${c} (created with the first iptables rules, never removed)`);
    for (const c of LIBVIRT_BASE_CHAINS) this.addChain(c, why(c));
    const hook = (from: string, to: string) =>
      this.append(from, { matches: [], target: { kind: 'jump', chain: to }, origin: why(to) });
    hook('INPUT', 'libvirt-host-in');
    hook('FORWARD', 'libvirt-in');
    hook('FORWARD', 'libvirt-out');
    hook('FORWARD', 'libvirt-in-post');
  }
  build(): IptTable {
    return {
      family: this.family,
      name: 'filter',
      chains: [...this.chains.values()].map((c) => ({ ...c.chain, rules: c.rules })),
    };
  }
}

export interface IptCompileResult {
  readonly commands: readonly string[];
  /** Set when a command would fail (libvirt then refuses the binding). */
  readonly failure?: string;
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_.:/@%+=,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

function physdevLinks(ifn: string, via: Origin): { chain: string; match: IptMatch; target: IptRule['target'] }[] {
  void via;
  return [
    {
      chain: 'libvirt-out',
      match: { kind: 'physdev', out: { name: ifn, negated: false }, isBridged: { negated: false } },
      target: { kind: 'goto', chain: `FO-${ifn}` },
    },
    {
      chain: 'libvirt-in',
      match: { kind: 'physdev', in: { name: ifn, negated: false } },
      target: { kind: 'goto', chain: `FI-${ifn}` },
    },
    {
      chain: 'libvirt-host-in',
      match: { kind: 'physdev', in: { name: ifn, negated: false } },
      target: { kind: 'goto', chain: `HI-${ifn}` },
    },
    {
      chain: 'libvirt-in-post',
      match: { kind: 'physdev', in: { name: ifn, negated: false } },
      target: { kind: 'verdict', verdict: 'ACCEPT' },
    },
  ];
}

/** The ipsets a host has, by name, with their family (`ipset create NAME hash:ip family inet|inet6`). */
export type IpsetFamilies = ReadonlyMap<string, IptFamily>;

/**
 * libvirt builds every iptables/ip6tables rule of a binding before it applies any (ebtables included): the first
 * rule it cannot build fails the binding ahead of every refusal by the tools. Undefined when all can be built.
 */
export function iptablesBuildError(instances: readonly IpInstance[]): string | undefined {
  for (const inst of instances) {
    if (!inst.combos.some((a) => a.has('ipset') && !a.has('ipsetflags'))) continue;
    const state = inst.combos[0]?.get('state')?.value as string | undefined;
    for (const attrs of inst.combos) {
      for (const req of iptablesCopies(inst.rule.direction, inst.rule.statematch, state)) {
        const e = translateIptablesRule(inst.rule.protocol, attrs, inst.rule.action, req)?.buildError;
        if (e !== undefined) return e;
      }
    }
  }
  return undefined;
}

/** Fills `table` with the port's chains and rules for one family; returns libvirt's commands for them. */
export function compileIptablesFamily(
  family: IptFamily,
  ifn: string,
  instances: readonly IpInstance[],
  table: IptTableBuilder,
  bindingOrigin: Origin,
  ipsets?: IpsetFamilies,
): IptCompileResult {
  const mine = instances.filter((i) => iptFamilyOf(i.rule.protocol as NwProtocol) === family);
  if (mine.length === 0) return { commands: [] };
  const tool = family === 'ipv4' ? 'iptables' : 'ip6tables';
  const p = `${tool} -w`;
  const commands: string[] = [
    `${p} -D libvirt-out -m physdev --physdev-is-bridged --physdev-out ${ifn} -g FP-${ifn}`,
    `${p} -D libvirt-out -m physdev --physdev-out ${ifn} -g FP-${ifn}`,
    `${p} -D libvirt-in -m physdev --physdev-in ${ifn} -g FJ-${ifn}`,
    `${p} -D libvirt-host-in -m physdev --physdev-in ${ifn} -g HJ-${ifn}`,
    `${p} -F FP-${ifn}`,
    `${p} -X FP-${ifn}`,
    `${p} -F FJ-${ifn}`,
    `${p} -X FJ-${ifn}`,
    `${p} -F HJ-${ifn}`,
    `${p} -X HJ-${ifn}`,
    `${p} -N libvirt-in`,
    `${p} -N libvirt-out`,
    `${p} -N libvirt-in-post`,
    `${p} -N libvirt-host-in`,
    `${p} -D FORWARD -j libvirt-in`,
    `${p} -D FORWARD -j libvirt-out`,
    `${p} -D FORWARD -j libvirt-in-post`,
    `${p} -D INPUT -j libvirt-host-in`,
    `${p} -I FORWARD 1 -j libvirt-in`,
    `${p} -I FORWARD 2 -j libvirt-out`,
    `${p} -I FORWARD 3 -j libvirt-in-post`,
    `${p} -I INPUT 1 -j libvirt-host-in`,
    `${p} -N FP-${ifn}`,
    `${p} -N FJ-${ifn}`,
    `${p} -N HJ-${ifn}`,
    `${p} -A libvirt-out -m physdev --physdev-is-bridged --physdev-out ${ifn} -g FP-${ifn}`,
    `${p} -A libvirt-in -m physdev --physdev-in ${ifn} -g FJ-${ifn}`,
    `${p} -A libvirt-host-in -m physdev --physdev-in ${ifn} -g HJ-${ifn}`,
    `${p} -D libvirt-in-post -m physdev --physdev-in ${ifn} -j ACCEPT`,
    `${p} -A libvirt-in-post -m physdev --physdev-in ${ifn} -j ACCEPT`,
  ];
  table.addBaseChains();
  const chainOrigin = (c: IptRootChain) => ({
    ...implicit(
      `libvirt ${tool} chain ${c}-${ifn} (${c === 'FI' ? 'forwarded from' : c === 'FO' ? 'forwarded to' : 'to the host from'} the guest)`,
      { chain: `${c}-${ifn}`, port: ifn },
    ),
    via: bindingOrigin,
  });
  for (const c of ['FO', 'FI', 'HI'] as const) table.addChain(`${c}-${ifn}`, chainOrigin(c));
  for (const l of physdevLinks(ifn, bindingOrigin)) {
    table.append(l.chain, {
      matches: [l.match],
      ...(l.target ? { target: l.target } : {}),
      origin: { ...implicit(`libvirt link for port ${ifn} in ${l.chain}`), via: bindingOrigin },
    });
  }
  for (const inst of mine) {
    const state = inst.combos[0]?.get('state')?.value as string | undefined;
    const copies = iptablesCopies(inst.rule.direction, inst.rule.statematch, state);
    for (const attrs of inst.combos) {
      for (const req of copies) {
        const t = translateIptablesRule(inst.rule.protocol, attrs, inst.rule.action, req);
        if (t === undefined) continue;
        if (t.buildError !== undefined) return { commands, failure: t.buildError };
        const temp = `${IPT_TEMP_CHAIN[req.chain]}-${ifn}`;
        const args = t.argv.map(quote).join(' ');
        commands.push(`${p} -A ${temp} ${args}`);
        const refused = iptablesRefusal(tool, temp, t, attrs, inst.rule.action, ipsets);
        if (refused !== undefined) {
          // ip6tables warns about `-p ah` (an extension header, never the upper protocol) while it parses; libvirt's
          // message carries that stderr line too (verified with libvirt 9.0).
          const warning =
            inst.rule.protocol === 'ah-ipv6'
              ? 'Warning: never matched protocol: ah. use extension match instead.\n'
              : '';
          return {
            commands,
            failure: `internal error: Failed to apply firewall rules /usr/sbin/${tool} -w -A ${temp} ${args}: ${warning}${refused}`,
          };
        }
        table.append(`${req.chain}-${ifn}`, { ...t.rule, origin: inst.origin });
      }
    }
  }
  return { commands };
}

/**
 * What iptables/ip6tables print when they refuse a rule: the refusal (below), after the warning libxt_iprange prints
 * while it parses each reversed range before that point ("xt_iprange: range A-B is reversed and will never match",
 * verified with libvirt 9.0, whose message carries the tool's whole stderr). Undefined when the rule is accepted.
 */
function iptablesRefusal(
  tool: string,
  chain: string,
  copy: IptCopy,
  attrs: ReadonlyMap<string, TypedAttr>,
  action: NwRule['action'],
  ipsets: IpsetFamilies | undefined,
): string | undefined {
  const refused = iptablesRefusalOnly(tool, chain, copy, attrs, action, ipsets);
  if (refused === undefined) return undefined;
  let warnings = '';
  for (const m of copy.rule.matches) {
    if (m.kind !== 'iprange') continue;
    const r = m.src ?? m.dst;
    if (r === undefined) continue;
    const from = addrKey(r.from, tool);
    const to = addrKey(r.to, tool);
    // Parsing stops at a value the tool cannot read (the refusal itself).
    if (from === undefined || to === undefined) break;
    if (from > to) warnings += `xt_iprange: range ${r.from}-${r.to} is reversed and will never match\n`;
  }
  return `${warnings}${refused}`;
}

/** An address as a comparable key in the tool's family; undefined when that tool cannot read it. */
function addrKey(text: string, tool: string): string | undefined {
  if (tool === 'iptables') {
    const a = parseIpv4(text);
    return a === undefined ? undefined : (a >>> 0).toString(16).padStart(8, '0');
  }
  if (!text.includes(':')) return undefined;
  const a = parseIpv6(text);
  return a === undefined
    ? undefined
    : ipv6ToGroups(a)
        .map((g) => g.toString(16).padStart(4, '0'))
        .join('');
}

/**
 * Why iptables/ip6tables 1.8.9 (nf_tables) refuses a rule libvirt appends, in the order it finds out (all verified
 * with libvirt 9.0): option parsing (`--tcp-option 0`), then the target (`continue` has no chain `CONTINUE`), then
 * the kernel (a negated `/0` address: `RULE_APPEND failed`). Undefined when the rule is accepted.
 */
function iptablesRefusalOnly(
  tool: string,
  chain: string,
  copy: IptCopy,
  attrs: ReadonlyMap<string, TypedAttr>,
  action: NwRule['action'],
  ipsets: IpsetFamilies | undefined,
): string | undefined {
  const help = `\nTry \`${tool} -h' or '${tool} --help' for more information.`;
  // Options in command-line order: -m iprange comes before --tcp-option.
  for (const m of copy.rule.matches) {
    if (m.kind !== 'iprange' || tool !== 'ip6tables') continue;
    for (const [side, r] of [
      ['src', m.src],
      ['dst', m.dst],
    ] as const) {
      const bad = r && [r.from, r.to].find((a) => !a.includes(':'));
      if (bad !== undefined)
        return `${tool} v1.8.9 (nf_tables): iprange: Bad value for "--${side}-range" option: "${bad}"${help}`;
    }
  }
  const opt = attrs.get('option');
  if (opt !== undefined && opt.value === 0) return `${tool} v1.8.9 (nf_tables): Bad TCP option "0"${help}`;
  const set = copy.rule.matches.find((m) => m.kind === 'set');
  if (set !== undefined && ipsets !== undefined) {
    const fam = ipsets.get(set.name);
    if (fam === undefined) return `${tool} v1.8.9 (nf_tables): Set ${set.name} doesn't exist.\n${help}`;
    if (fam !== (tool === 'iptables' ? 'ipv4' : 'ipv6')) {
      return `${tool} v1.8.9 (nf_tables): The protocol family of set ${set.name} is ${fam === 'ipv4' ? 'IPv4' : 'IPv6'}, which is not applicable.\n${help}`;
    }
  }
  if (action === 'continue') return `${tool} v1.8.9 (nf_tables): Chain 'CONTINUE' does not exist${help}`;
  for (const side of ['src', 'dst']) {
    const a = attrs.get(`${side}ipaddr`);
    if (a?.negated && attrs.get(`${side}ipmask`)?.value === 0)
      return `${tool} v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain ${chain}`;
  }
  return undefined;
}

/** A table with only the built-in chains (and libvirt's global chains when `base`). */
export function emptyIptTable(family: IptFamily, base: boolean): IptTable {
  // Performance: the table is the same for every port (readonly data), so it is built once per kind.
  const key = `${family}${base}`;
  let t = emptyTables.get(key);
  if (t === undefined) {
    const b = new IptTableBuilder(family);
    if (base) b.addBaseChains();
    t = b.build();
    emptyTables.set(key, t);
  }
  return t;
}
const emptyTables = new Map<string, IptTable>();
