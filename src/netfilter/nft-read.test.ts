import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderIptablesRule } from './iptables-render.ts';
import { readNftRuleset } from './nft-read.ts';

// fixtures/nft/docker-host.ruleset.txt was printed by `nft list ruleset` after, in a fresh namespace:
//   iptables -P FORWARD DROP; iptables -N DOCKER-USER; iptables -N DOCKER
//   iptables -A FORWARD -j DOCKER-USER
//   iptables -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
//   iptables -A FORWARD -o docker0 -j DOCKER
//   iptables -A FORWARD -i docker0 ! -o docker0 -j ACCEPT
//   iptables -A DOCKER -d 198.51.100.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
//   iptables -A DOCKER-USER -j RETURN
//   iptables -A FORWARD -m physdev --physdev-is-bridged -j ACCEPT
//   iptables -t nat -N DOCKER; iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
//   iptables -t nat -A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.2:80
//   nft add table inet guests
//   nft add chain inet guests forward_guests '{ type filter hook forward priority 10; policy accept; }'
//   nft add rule inet guests forward_guests ct state invalid drop
//   nft add rule inet guests forward_guests iifname "vnet*" tcp dport '{ 22, 80-90 }' accept
//   nft add rule inet guests forward_guests ip6 nexthdr icmpv6 accept
//   nft add rule inet guests forward_guests ip daddr 203.0.113.0/24 meta l4proto udp drop
//   nft add table bridge filter
//   nft add chain bridge filter forward '{ type filter hook forward priority -200; policy accept; }'
//   nft add rule bridge filter forward ether type arp accept
const FILE = 'docker-host.ruleset.txt';
const text = readFileSync(join(import.meta.dirname, '../../fixtures/nft', FILE), 'utf8');

describe('nft list ruleset in place of iptables-save', () => {
  const r = readNftRuleset(text, FILE);
  const t = r.value![0]!;
  const chain = (n: string) => t.chains.find((c) => c.name === n)!;

  it('reads the forward hook of the ip filter table as FORWARD, with its policy and its rules', () => {
    expect(chain('FORWARD')).toMatchObject({ builtin: true, policy: 'DROP' });
    const rules = chain('FORWARD').rules;
    expect(rules.map((x) => x.target)).toEqual([
      { kind: 'jump', chain: 'filter/DOCKER-USER' },
      { kind: 'verdict', verdict: 'ACCEPT' },
      { kind: 'jump', chain: 'filter/DOCKER' },
      { kind: 'verdict', verdict: 'ACCEPT' },
    ]);
    expect(rules[1]).toMatchObject({
      out: { name: 'docker0', negated: false },
      matches: [{ kind: 'conntrack', state: { states: ['RELATED', 'ESTABLISHED'], negated: false } }],
    });
    expect(chain('filter/DOCKER').rules[0]).toMatchObject({
      in: { name: 'docker0', negated: true },
      dst: { addr: '198.51.100.2', prefixLen: 32 },
      proto: { value: 6 },
      matches: [{ kind: 'tcp', dport: { lo: 80, hi: 80 } }],
    });
    expect(chain('INPUT')).toMatchObject({ policy: 'ACCEPT', rules: [] });
    // The second filter base chain on hook forward (priority 10) runs after iptables' FORWARD (priority 0).
    expect(chain('FORWARD').nextBaseChain).toBe('guests/forward_guests');
    expect(chain('guests/forward_guests')).toMatchObject({ builtin: true, policy: 'ACCEPT' });
    expect(chain('guests/forward_guests').rules.map((x) => x.target)).toEqual([
      { kind: 'verdict', verdict: 'DROP' },
      { kind: 'verdict', verdict: 'ACCEPT' },
      { kind: 'verdict', verdict: 'DROP' },
    ]);
  });

  it('says what it leaves out, on its line, and what that means for the verdict', () => {
    const w = r.issues.map((i) => `${i.pos?.line}: ${i.severity}: ${i.message}`);
    expect(w).toEqual([
      expect.stringMatching(
        /^8: warning: 'xt match physdev .*' is not read; the rule is left out, so packets it accepts go on/,
      ),
      expect.stringMatching(/^38: warning: table bridge filter is not evaluated: its rules act on bridged frames/),
    ]);
    expect(r.issues.some((i) => i.severity === 'error')).toBe(false);
  });

  it('reads the nat base chains as the nat table traces apply (dnat behind fib daddr type local)', () => {
    const nat = r.value!.find((t) => t.name === 'nat')!;
    const text = nat.chains.map(
      (c) => `${c.name}: ${c.rules.map((x) => renderIptablesRule(c.name, x, 'ipv4')).join(' | ')}`,
    );
    expect(text).toEqual([
      'PREROUTING: -A PREROUTING -m addrtype --dst-type LOCAL -j nat/DOCKER',
      'OUTPUT: ',
      'POSTROUTING: ',
      'nat/DOCKER: -A nat/DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 198.51.100.2:80',
    ]);
    // Quoted in nft's own words where a trace names the rule.
    expect(nat.chains[3]!.rules[0]!.nft?.text).toMatch(/dnat to 198\.51\.100\.2:80$/);
  });
});
