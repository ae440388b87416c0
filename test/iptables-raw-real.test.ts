/**
 * A hypervisor's iptables raw PREROUTING (NOTRACK before conntrack), held to the real kernel: the rules below are
 * loaded with iptables-restore (iptables-nft) into a namespace created here, and a TCP SYN per destination port is
 * sent to it from a second namespace over a veth pair. For every SYN, the raw rules lvsdoctor says matched must be
 * the ones whose counters the kernel incremented (`iptables-save -c`), and the conntrack state filter INPUT saw
 * (UNTRACKED after a NOTRACK rule, NEW otherwise; one counting rule per state) must be the one lvsdoctor gives the
 * packet. Root only; skipped with the reason otherwise. The namespaces are removed afterwards.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateIptables } from '../src/netfilter/iptables-eval.ts';
import { readIptablesSave } from '../src/netfilter/iptables-read.ts';
import {
  clientSyn,
  directorAndClient,
  netnsSkip,
  removeNamespaces,
  nsRun as run,
  synCounted,
} from './support/director-netns.ts';

const D = `lvsdrwd${process.pid}`;
const C = `lvsdrwc${process.pid}`;
const SKIP = netnsSkip();

const VIP = '198.51.100.100';
// Both spellings iptables-nft saves (NOTRACK and CT --notrack), a chain, and filter INPUT rules counting each state.
const RULES = `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:EXEMPT - [0:0]
-A PREROUTING -d ${VIP}/32 -p tcp -m tcp --dport 80 -j NOTRACK
-A PREROUTING -d ${VIP}/32 -p tcp -j EXEMPT
-A EXEMPT -p tcp -m multiport --dports 443,8443 -j CT --notrack
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -d ${VIP}/32 -p tcp -m conntrack --ctstate UNTRACKED -j ACCEPT
-A INPUT -d ${VIP}/32 -p tcp -m conntrack --ctstate NEW -j ACCEPT
-A INPUT -d ${VIP}/32 -p tcp -m conntrack --ctstate INVALID -j ACCEPT
COMMIT
`;
const PORTS = [80, 443, 8443, 22];

describe.skipIf(SKIP !== undefined)(`raw PREROUTING NOTRACK, held to the kernel${SKIP ? ` (${SKIP})` : ''}`, () => {
  afterAll(() => removeNamespaces(D, C));

  it('matches the rules the kernel counts and leaves the packets conntrack sees as UNTRACKED', () => {
    directorAndClient(D, C, 'lvsdrw0', VIP);
    const load = run(D, ['iptables-restore'], RULES);
    expect(load.stderr).toBe('');
    for (const port of PORTS) {
      const { save: afterText, counted } = synCounted(D, C, VIP, port);
      const read = readIptablesSave(afterText, 'host.save', 'ipv4', ['raw']);
      expect(read.issues.filter((i) => i.severity === 'error')).toEqual([]);
      const raw = read.value!.find((t) => t.name === 'raw')!;
      const r = evaluateIptables(raw, 'PREROUTING', clientSyn(VIP, port), { inIface: 'eth0' });
      const untracked = r.visited.some((v) => v.matched && v.rule.target?.kind === 'notrack');
      const lines = afterText.split('\n');
      const mine = r.visited
        .filter((v) => v.matched)
        .map((v) => `raw ${lines[(v.rule.origin.pos?.line ?? 0) - 1]!.replace(/^\[\d+:\d+\] /, '')}`);
      expect({ port, rules: mine }).toEqual({ port, rules: counted.filter((k) => k.startsWith('raw ')) });
      expect({ port, state: counted.filter((k) => k.startsWith('filter ')) }).toEqual({
        port,
        state: [
          `filter -A INPUT -d ${VIP}/32 -p tcp -m conntrack --ctstate ${untracked ? 'UNTRACKED' : 'NEW'} -j ACCEPT`,
        ],
      });
    }
  });
});
