/**
 * The tables of an `iptables-save` a caller does not evaluate (security, unknown ones; nat and mangle where a reader's
 * caller leaves them out, and the part of an evaluated nat table traces do not apply — a director's DNAT): a host with
 * Docker, kube-proxy or a libvirt NAT network has them. They are read — chains declared, every rule's chain and target
 * checked — and each kind of rule that could change a traced packet's fate is reported once per table, chain and
 * target with what leaving it out means for the verdict. Rules that cannot change a verdict (SNAT
 * after filtering, TOS/TTL/MSS changes, jumps, RETURN, ACCEPT) are counted, not reported one by one.
 */
import { type Issue, issue } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';

const BUILTIN: Readonly<Record<string, readonly string[]>> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/** What a target in a table does to a traced packet's verdict when it is left out; undefined: nothing. */
function consequence(table: string, target: string, args: string): string | undefined {
  switch (target) {
    case 'DNAT':
    case 'REDIRECT':
    case 'NETMAP':
      return 'rewrites the destination before routing and the filter table; traces do not apply it, so a probe matching it is traced to its original destination (a published Docker or kube-proxy port looks unreachable or reaches the wrong node)';
    case 'TPROXY':
      return 'diverts matching packets to a local socket; traces forward them instead';
    case 'MARK':
    case 'CONNMARK':
      return 'sets a packet or connection mark that traces do not set: filter rules matching -m mark/-m connmark (and policy routing on fwmark) see mark 0, so their verdict may differ';
    case 'NOTRACK':
      return 'turns connection tracking off for matching packets (state UNTRACKED); traces track them, so -m conntrack/-m state rules see NEW/ESTABLISHED instead';
    case 'CT':
      return /--notrack\b/.test(args)
        ? 'turns connection tracking off for matching packets (state UNTRACKED); traces track them, so -m conntrack/-m state rules see NEW/ESTABLISHED instead'
        : undefined;
    case 'DROP':
    case 'REJECT':
      return `drops matching packets in the ${table} table before the filter table; traces do not apply it, so a probe it drops may be reported as passing`;
    case 'SNAT':
    case 'MASQUERADE':
      // After the filter verdict of the forward path; replies are un-NATed by conntrack.
      return undefined;
    default:
      return undefined;
  }
}

interface OpenTable {
  readonly name: string;
  readonly line: number;
  readonly chains: Set<string>;
  rules: number;
  /** `chain -j TARGET` → first line and count. */
  readonly effects: Map<string, { line: number; count: number; what: string }>;
}

/**
 * Reads one non-filter table starting at a `*NAME` line: call `line` for each following line until it returns false
 * (COMMIT seen); `finish` reports what was read.
 */
export class OtherTableReader {
  private readonly t: OpenTable;

  constructor(
    name: string,
    lineNo: number,
    private readonly file: string,
    private readonly issues: Issue[],
    /** The save-line word splitter of iptables-read.ts (quotes, escapes). */
    private readonly split: (line: string) => readonly { readonly text: string }[] | undefined,
    /** Targets the caller applies in traces (e.g. a hypervisor's DNAT/REDIRECT/SNAT/MASQUERADE): not reported. */
    private readonly applied: ReadonlySet<string> = new Set(),
  ) {
    this.t = { name, line: lineNo, chains: new Set(), rules: 0, effects: new Map() };
    if (BUILTIN[name] === undefined)
      issues.push(
        issue(
          'iptables-unknown-table',
          `table ${name} is not one iptables has (filter, nat, mangle, raw, security); read as declared, not modelled`,
          filePos(file, lineNo),
          'warning',
        ),
      );
  }

  /** One line of the table (trimmed, not blank or a comment); false after COMMIT. */
  line(line: string, lineNo: number): boolean {
    const t = this.t;
    const pos = filePos(this.file, lineNo);
    if (line === 'COMMIT') {
      this.finish();
      return false;
    }
    if (line.startsWith(':')) {
      const m = /^:(\S+) (\S+)(?: \[\d+:\d+\])?$/.exec(line);
      if (!m)
        this.issues.push(issue('iptables-bad-chain', `expected ':CHAIN POLICY [packets:bytes]', got '${line}'`, pos));
      else t.chains.add(m[1]!);
      return true;
    }
    const words = this.split(line.replace(/^\[\d+:\d+\]\s+/, ''));
    if (words === undefined) {
      this.issues.push(issue('iptables-bad-quote', 'unterminated double quote', pos));
      return true;
    }
    if (words[0]?.text !== '-A' || words[1] === undefined) {
      this.issues.push(issue('iptables-stray-line', `expected ':CHAIN', '-A CHAIN …' or COMMIT, got '${line}'`, pos));
      return true;
    }
    const chain = words[1].text;
    if (!t.chains.has(chain)) {
      this.issues.push(issue('iptables-unknown-chain', `rule for chain ${chain} that was not declared with ':'`, pos));
      return true;
    }
    t.rules++;
    const j = words.findIndex((w) => w.text === '-j' || w.text === '--jump' || w.text === '-g' || w.text === '--goto');
    const target = j >= 0 ? words[j + 1]?.text : undefined;
    if (target === undefined || t.chains.has(target) || this.applied.has(target)) return true;
    const what = consequence(
      t.name,
      target,
      words
        .slice(j + 2)
        .map((w) => w.text)
        .join(' '),
    );
    if (what === undefined) return true;
    const key = `${chain} -j ${target}`;
    const e = t.effects.get(key);
    if (e) e.count++;
    else t.effects.set(key, { line: lineNo, count: 1, what });
    return true;
  }

  private done = false;

  /** Reports the table (once). */
  finish(): void {
    if (this.done) return;
    this.done = true;
    const t = this.t;
    for (const [key, e] of t.effects)
      this.issues.push(
        issue(
          'iptables-table-not-modelled',
          `${t.name} ${key} (${e.count} rule${e.count === 1 ? '' : 's'}, first here) ${e.what}`,
          filePos(this.file, e.line),
          'warning',
        ),
      );
    this.issues.push(
      issue(
        'iptables-table-read',
        `table ${t.name} read (${t.chains.size} chains, ${t.rules} rules); traces do not evaluate it here${t.effects.size === 0 ? ': none of these rules changes a traced verdict' : ''}`,
        filePos(this.file, t.line),
        'info',
      ),
    );
  }
}
