/**
 * nft base chains that act as iptables' mangle table (type filter on prerouting/postrouting, type route on output) read
 * into the mangle table traces apply: every base chain of a hook in the kernel's priority order, their marks
 * (`meta mark set`, with and/or/xor) and drops, and what is not applied said on its line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { synFrame } from '../diagnose/facts.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { evaluateIptables } from './iptables-eval.ts';
import { readNftRuleset } from './nft-read.ts';

// fixtures/nft/firewalld-mangle.ruleset.txt is what `nft list ruleset` (nftables v1.0.6) printed in a fresh network
// namespace after `nft -f fixtures/nft/firewalld-mangle.nft`: iptables-nft's empty mangle table, firewalld's
// mangle_PREROUTING (priority mangle + 10) marking the VIP's traffic, and an admin's table on raw, mangle - 5, srcnat + 10.
const FILE = 'firewalld-mangle.ruleset.txt';
const text = readFileSync(join(import.meta.dirname, '../../fixtures/nft', FILE), 'utf8');

function tcp(src: string, dst: string, dport: number): EthernetFrame {
  return synFrame(mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), ipv4(src), ipv4(dst), dport);
}

describe('nft mangle base chains', () => {
  const r = readNftRuleset(text, FILE);
  const mangle = r.value!.find((t) => t.name === 'mangle')!;
  const chain = (n: string) => mangle.chains.find((c) => c.name === n)!;

  it('reads a prerouting chain before conntrack (priority raw) as the raw table, its notrack read there only', () => {
    const raw = r.value!.find((t) => t.name === 'raw')!;
    const pre = raw.chains.find((c) => c.name === 'PREROUTING')!;
    expect(pre.nft?.chain).toBe('lvs_guard/pre');
    expect(pre.nextBaseChain).toBeUndefined();
    const e = evaluateIptables(raw, 'PREROUTING', tcp('203.0.113.50', '198.51.100.100', 80), { inIface: 'br0' });
    expect(e.verdict).toBe('DROP');
    expect(e.decidedBy).toMatchObject({ kind: 'rule', chain: 'PREROUTING' });
    const one = (chain: string, rule: string) => {
      const t = `table ip t {\n\tchain p {\n\t\t${chain}\n\t\t${rule}\n\t}\n}\n`;
      return readNftRuleset(t, 'x.txt');
    };
    const untracked = one(
      'type filter hook prerouting priority raw; policy accept;',
      'ip daddr 198.51.100.100 notrack',
    );
    expect(untracked.issues).toEqual([]);
    expect(untracked.value!.find((t) => t.name === 'raw')!.chains[0]!.rules[0]!.target).toEqual({
      kind: 'notrack',
      ct: false,
    });
    // After conntrack, notrack has nothing to undo: said on its line.
    const late = one('type filter hook prerouting priority mangle; policy accept;', 'ip daddr 198.51.100.100 notrack');
    expect(late.issues[0]?.message).toMatch(/^'notrack in a chain on hook prerouting at priority -150' is not read/);
  });

  it('reads every base chain of a hook in priority order (mangle -150, mangle + 10, filter + 10)', () => {
    const order: string[] = [];
    for (let c = chain('PREROUTING'); c; c = chain(c.nextBaseChain ?? '')) {
      order.push(c.nft!.chain);
      if (c.nextBaseChain === undefined) break;
    }
    expect(order).toEqual(['mangle/PREROUTING', 'firewalld/mangle_PREROUTING', 'firewalld/filter_PREROUTING']);
    // mangle - 5 (-155) runs before iptables-nft's mangle OUTPUT (-150)
    expect(chain('OUTPUT').nft?.chain).toBe('lvs_guard/out');
    expect(chain('OUTPUT').nextBaseChain).toBe('mangle/OUTPUT');
    expect(chain('POSTROUTING').nft?.chain).toBe('lvs_guard/post');
    // Keeps the listing's file:line.
    expect(chain('OUTPUT').origin.pos?.line).toBe(50);
  });

  it('reads meta mark set with and/or as MARK --set-xmark, and applies it through the firewalld zone chains', () => {
    const allow = chain('firewalld/mangle_PRE_public_allow').rules[0]!;
    expect(allow.target).toEqual({ kind: 'mark', value: 0x64, mask: 0xff });
    expect(allow.origin.pos?.line).toBe(30);
    const e = evaluateIptables(mangle, 'PREROUTING', tcp('198.51.100.50', '198.51.100.100', 80), {
      inIface: 'br0',
      mark: 0x1234,
    });
    expect(e.verdict).toBe('ACCEPT');
    expect(e.mark).toBe(0x1264);
    expect(evaluateIptables(mangle, 'PREROUTING', tcp('198.51.100.50', '198.51.100.100', 443), {}).mark).toBe(0);
  });

  it('splits a mark with a verdict into the MARK and the verdict (type route output: mark then accept)', () => {
    const rules = chain('OUTPUT').rules;
    expect(rules.map((x) => x.target)).toEqual([
      { kind: 'mark', value: 1, mask: 0xffffffff },
      { kind: 'verdict', verdict: 'ACCEPT' },
      // ip dscp set / tcp option maxseg size set: read as rules that change nothing a trace decides on
      undefined,
      undefined,
    ]);
    const e = evaluateIptables(mangle, 'OUTPUT', tcp('198.51.100.2', '198.51.100.100', 80), { outIface: 'br0' });
    expect(e).toMatchObject({ verdict: 'ACCEPT', mark: 1 });
    // postrouting (srcnat + 10): a marked packet is dropped
    const p = evaluateIptables(mangle, 'POSTROUTING', tcp('198.51.100.2', '198.51.100.100', 80), { mark: 0x64 });
    expect(p.verdict).toBe('DROP');
  });

  it('says on its line what is not applied, and where traces evaluate a chain out of the kernel order', () => {
    const w = r.issues.map((i) => `${i.pos?.line}: ${i.severity}: ${i.code}: ${i.message}`);
    expect(w).toEqual([
      expect.stringMatching(
        /^47: warning: nft-rule-not-modelled: 'ct mark set meta mark' is not read; the rule is left out, so the connection's mark is not kept/,
      ),
      expect.stringMatching(/^53: info: nft-statement-not-applied: 'ip dscp set cs1' is not applied/),
      expect.stringMatching(
        /^54: info: nft-statement-not-applied: 'tcp option maxseg size set rt mtu' is not applied \(MSS clamping\)/,
      ),
      expect.stringMatching(
        /^57: warning: nft-chain-order: chain lvs_guard\/post \(hook postrouting priority 110\) runs after lvs_guard\/nat_post \(priority 100\) in the kernel, but traces evaluate it before as mangle POSTROUTING/,
      ),
    ]);
  });

  it('says nothing of the order where the later chain holds IPv6 rules only (firewalld filter_PREROUTING)', () => {
    const t = [
      'table inet firewalld {',
      '\tchain nat_PREROUTING {',
      '\t\ttype nat hook prerouting priority dstnat + 10; policy accept;',
      '\t\tip daddr 192.0.2.10 tcp dport 8080 dnat ip to 198.51.100.21:80',
      '\t}',
      '\tchain filter_PREROUTING {',
      '\t\ttype filter hook prerouting priority filter + 10; policy accept;',
      '\t\ticmpv6 type { nd-router-advert, nd-neighbor-solicit } accept',
      '\t\tmeta nfproto ipv6 fib saddr . mark . iif oif missing drop',
      '\t}',
      '}',
      '',
    ].join('\n');
    expect(readNftRuleset(t, 'fw.txt').issues).toEqual([]);
    const v4 = t.replace(
      'icmpv6 type { nd-router-advert, nd-neighbor-solicit } accept',
      'ip saddr 203.0.113.0/24 drop',
    );
    expect(readNftRuleset(v4, 'fw.txt').issues.map((i) => i.code)).toEqual(['nft-chain-order']);
  });

  it('reads meta mark set in its printed forms: a value, &, |, ^, and says what it cannot', () => {
    const one = (rule: string) => {
      const t = `table ip t {\n\tchain p {\n\t\ttype filter hook prerouting priority mangle; policy accept;\n\t\t${rule}\n\t}\n}\n`;
      const x = readNftRuleset(t, 'x.txt');
      return { target: x.value!.find((v) => v.name === 'mangle')?.chains[0]?.rules[0]?.target, issues: x.issues };
    };
    expect(one('meta mark set 0x00000005').target).toEqual({ kind: 'mark', value: 5, mask: 0xffffffff });
    expect(one('meta mark set meta mark | 0x00000004').target).toEqual({ kind: 'mark', value: 4, mask: 4 });
    expect(one('meta mark set meta mark & 0x000000ff').target).toEqual({ kind: 'mark', value: 0, mask: 0xffffff00 });
    expect(one('meta mark set meta mark ^ 0x00000003').target).toEqual({ kind: 'mark', value: 3, mask: 0 });
    expect(one('mark set mark and 0xff00 xor 0x1').target).toEqual({ kind: 'mark', value: 1, mask: 0xffff00ff });
    const ct = one('meta mark set ct mark');
    expect(ct.target).toBeUndefined();
    expect(ct.issues[0]?.message).toMatch(/^'meta mark set ct mark' is not read; .* the mark it had/);
    expect(one('tcp dport 80 tproxy ip to 127.0.0.1:3128').issues[0]?.message).toMatch(
      /diversion to a local transparent proxy is not applied/,
    );
    expect(one('ip daddr set 192.0.2.1').issues[0]?.message).toMatch(/original destination/);
  });
});
