/**
 * Drift: where what a host runs differs from what its domains' XML says it should run. Three comparisons:
 * - filter bindings: the live `virsh nwfilter-binding-dumpxml` against the bindings the domain XML implies;
 * - ebtables: the installed `ebtables -t nat -L --Lc` (counters stripped) against our compilation of the bindings,
 *   rendered in the same listing style, chain by chain;
 * - iptables/ip6tables: libvirt's chains in `iptables-save`/`ip6tables-save` against the compiled filter tables.
 */
import { bindingForInterface, type Domain } from '../libvirt/domain-xml.ts';
import type { NwFilterBinding } from '../libvirt/nwfilter-model.ts';
import type { EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import type { IptTable } from '../netfilter/iptables-model.ts';
import { renderIptablesSave } from '../netfilter/iptables-render.ts';

export interface DriftEntry {
  readonly host: string;
  /** `binding`, `ebtables` or `iptables`/`ip6tables`. */
  readonly area: 'binding' | 'ebtables' | 'iptables' | 'ip6tables';
  /** Port or chain concerned. */
  readonly subject: string;
  readonly message: string;
  /** Lines installed but not compiled (`+`) and compiled but not installed (`-`). */
  readonly lines: readonly string[];
}

interface Listing {
  /** Chain name → header (`entries`, `policy`) and rule lines (counters stripped). */
  readonly chains: Map<string, { policy: string; rules: string[] }>;
}

/** Parses `ebtables -t TABLE -L [--Lc]` output; counters (` , pcnt = N -- bcnt = N`) are dropped. */
export function parseEbtablesListing(text: string): Listing {
  const chains = new Map<string, { policy: string; rules: string[] }>();
  let cur: { policy: string; rules: string[] } | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\s+$/, '');
    const head = /^Bridge chain: ([^,]+), entries: \d+, policy: (\S+)$/.exec(line);
    if (head) {
      cur = { policy: head[2]!, rules: [] };
      chains.set(head[1]!, cur);
      continue;
    }
    if (line === '' || line.startsWith('Bridge table:')) continue;
    if (cur) cur.rules.push(line.replace(/\s*,\s*pcnt = \d+ -- bcnt = \d+$/, '').replace(/\s+$/, ''));
  }
  return { chains };
}

/** The style of an `ebtables --version` line: `ebtables 1.8.9 (nf_tables)` is nft, `v2.0.x (legacy)` legacy. */
export function ebtablesStyle(versionText: string | undefined): EbStyle {
  if (versionText === undefined) return 'nft';
  return /nf_tables/.test(versionText) || !/legacy|v2\.0/.test(versionText) ? 'nft' : 'legacy';
}

const LIBVIRT_EB_CHAIN = /^(libvirt-[IOPJ]-|[IOPJ]-)/;

/** Compares the installed nat table with the compiled one (only libvirt's chains and the jumps into them). */
export function compareEbtables(host: string, installedText: string, compiled: EbTable, style: EbStyle): DriftEntry[] {
  const out: DriftEntry[] = [];
  const installed = parseEbtablesListing(installedText);
  const mine = parseEbtablesListing(renderEbtablesList(compiled, { style }));
  const relevant = (chain: string, rule?: string) =>
    LIBVIRT_EB_CHAIN.test(chain) || (rule !== undefined && /-j (libvirt-[IOPJ]-)/.test(rule));
  const names = new Set([...installed.chains.keys(), ...mine.chains.keys()]);
  for (const name of [...names].sort()) {
    const a = installed.chains.get(name);
    const c = mine.chains.get(name);
    if (a && !c) {
      if (!LIBVIRT_EB_CHAIN.test(name)) {
        const jumps = a.rules.filter((r) => relevant(name, r));
        const others = a.rules.filter((r) => !relevant(name, r));
        if (jumps.length > 0)
          out.push({
            host,
            area: 'ebtables',
            subject: name,
            message: `${name} jumps into libvirt chains no binding explains`,
            lines: jumps.map((r) => `+ ${r}`),
          });
        if (others.length > 0)
          out.push({
            host,
            area: 'ebtables',
            subject: name,
            message: `${name} has ${others.length} rule(s) not made by libvirt (they are not modelled)`,
            lines: others.map((r) => `+ ${r}`),
          });
        continue;
      }
      out.push({
        host,
        area: 'ebtables',
        subject: name,
        message: `chain ${name} is installed but no filter binding of the domains makes it (stale, or a binding not in the XML)`,
        lines: a.rules.map((r) => `+ ${r}`),
      });
      continue;
    }
    if (c && !a) {
      out.push({
        host,
        area: 'ebtables',
        subject: name,
        message: `chain ${name} is missing: the domains' filters compile to it but it is not installed`,
        lines: c.rules.map((r) => `- ${r}`),
      });
      continue;
    }
    if (!a || !c) continue;
    const builtin = !LIBVIRT_EB_CHAIN.test(name);
    const ar = builtin ? a.rules.filter((r) => relevant(name, r)) : a.rules;
    const cr = builtin ? c.rules.filter((r) => relevant(name, r)) : c.rules;
    if (builtin) {
      const others = a.rules.filter((r) => !relevant(name, r));
      if (others.length > 0)
        out.push({
          host,
          area: 'ebtables',
          subject: name,
          message: `${name} has ${others.length} rule(s) not made by libvirt (they are not modelled)`,
          lines: others.map((r) => `+ ${r}`),
        });
    }
    if (ar.join('\n') === cr.join('\n')) continue;
    // The order of the jumps in built-in chains follows the order the guests started in: not drift.
    if (builtin && [...ar].sort().join('\n') === [...cr].sort().join('\n')) continue;
    const extra = ar.filter((r) => !cr.includes(r));
    const missing = cr.filter((r) => !ar.includes(r));
    out.push({
      host,
      area: 'ebtables',
      subject: name,
      message:
        extra.length === 0 && missing.length === 0
          ? `chain ${name}: the same rules in another order`
          : `chain ${name} differs from what the filters compile to`,
      lines: [...extra.map((r) => `+ ${r}`), ...missing.map((r) => `- ${r}`)],
    });
  }
  return out;
}

/** Chains of the filter table in `iptables-save` output with their rules (counters stripped). */
function parseSaveFilter(text: string): Map<string, string[]> {
  const chains = new Map<string, string[]>();
  let inFilter = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) inFilter = line === '*filter';
    if (!inFilter) continue;
    const decl = /^:(\S+)/.exec(line);
    if (decl) {
      chains.set(decl[1]!, chains.get(decl[1]!) ?? []);
      continue;
    }
    const rule = /^(?:\[\d+:\d+\]\s+)?-A (\S+) (.*)$/.exec(line);
    if (rule) chains.get(rule[1]!)?.push(rule[2]!.trim()) ?? chains.set(rule[1]!, [rule[2]!.trim()]);
  }
  return chains;
}

const LIBVIRT_IPT_CHAIN = /^(libvirt-(in|out|in-post|host-in)$|[FH][IOJP]-)/;

/** Compares libvirt's chains of an installed `iptables-save -c` with the compiled filter table. */
export function compareIptables(
  host: string,
  area: 'iptables' | 'ip6tables',
  installedText: string,
  compiled: IptTable,
): DriftEntry[] {
  const out: DriftEntry[] = [];
  const installed = parseSaveFilter(installedText);
  const mine = parseSaveFilter(renderIptablesSave(compiled));
  const relevant = (chain: string) => LIBVIRT_IPT_CHAIN.test(chain);
  const names = new Set([...installed.keys(), ...mine.keys()].filter(relevant));
  // The global chains exist once any binding ever had iptables rules; empty ones carry no meaning.
  for (const name of [...names].sort()) {
    const a = installed.get(name);
    const c = mine.get(name);
    if (a && !c) {
      if (a.length === 0) continue;
      out.push({
        host,
        area,
        subject: name,
        message: `${area} chain ${name} is installed but the domains' filters do not make it`,
        lines: a.map((r) => `+ ${r}`),
      });
    } else if (c && !a) {
      if (c.length === 0) continue;
      out.push({
        host,
        area,
        subject: name,
        message: `${area} chain ${name} is missing: the domains' filters compile to it`,
        lines: c.map((r) => `- ${r}`),
      });
    } else if (a && c && a.join('\n') !== c.join('\n')) {
      out.push({
        host,
        area,
        subject: name,
        message: `${area} chain ${name} differs from what the filters compile to`,
        lines: [
          ...a.filter((r) => !c.includes(r)).map((r) => `+ ${r}`),
          ...c.filter((r) => !a.includes(r)).map((r) => `- ${r}`),
        ],
      });
    }
  }
  return out;
}

function paramsText(b: NwFilterBinding): string {
  return [...b.params.entries()]
    .filter(([k, v]) => !(k === 'MAC' && v.length === 1 && v[0] === b.mac))
    .map(([k, v]) => `${k}=${v.join(',')}`)
    .sort()
    .join(' ');
}

/** The bindings the domains' XML implies on a host, by port. */
export function impliedBindings(domains: readonly Domain[]): Map<string, NwFilterBinding> {
  const out = new Map<string, NwFilterBinding>();
  for (const d of domains)
    for (const ifc of d.interfaces) {
      if (!ifc.filterref || !ifc.targetDev || !ifc.mac) continue;
      const b = bindingForInterface(d, ifc);
      if (b.value) out.set(ifc.targetDev, b.value);
    }
  return out;
}

/** Compares live filter bindings with those implied by the domain XML. */
export function compareBindings(
  host: string,
  live: readonly NwFilterBinding[],
  implied: ReadonlyMap<string, NwFilterBinding>,
): DriftEntry[] {
  const out: DriftEntry[] = [];
  const liveBy = new Map(live.map((b) => [b.portdev, b]));
  const ports = new Set([...liveBy.keys(), ...implied.keys()]);
  for (const port of [...ports].sort()) {
    const l = liveBy.get(port);
    const x = implied.get(port);
    const show = (b: NwFilterBinding) => `${b.filter}${paramsText(b) ? ` ${paramsText(b)}` : ''} mac ${b.mac}`;
    if (l && !x)
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `binding on ${port} (${show(l)}) is live but no domain interface has this filterref (nwfilter-binding-create by hand?)`,
        lines: [`+ ${show(l)}`],
      });
    else if (x && !l)
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `no live binding on ${port}, but the domain XML binds ${show(x)} (deleted with nwfilter-binding-delete?)`,
        lines: [`- ${show(x)}`],
      });
    else if (l && x && (l.filter !== x.filter || paramsText(l) !== paramsText(x) || l.mac !== x.mac))
      out.push({
        host,
        area: 'binding',
        subject: port,
        message: `binding on ${port} differs from the domain XML`,
        lines: [`+ ${show(l)}`, `- ${show(x)}`],
      });
  }
  return out;
}
