/**
 * A hypervisor's iptables raw PREROUTING (NOTRACK before conntrack), held to the real kernel: the rules below are
 * loaded with iptables-restore (iptables-nft) into a namespace created here, and a TCP SYN per destination port is
 * sent to it from a second namespace over a veth pair. For every SYN, the raw rules lvsdoctor says matched must be
 * the ones whose counters the kernel incremented (`iptables-save -c`), and the conntrack state filter INPUT saw
 * (UNTRACKED after a NOTRACK rule, NEW otherwise; one counting rule per state) must be the one lvsdoctor gives the
 * packet. Root only; skipped with the reason otherwise. The namespaces are removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ipv4 } from '../src/addr/ipv4.ts';
import { mac } from '../src/addr/mac.ts';
import { evaluateIptables } from '../src/netfilter/iptables-eval.ts';
import { readIptablesSave } from '../src/netfilter/iptables-read.ts';
import type { EthernetFrame } from '../src/wire/types.ts';

const D = `lvsdrwd${process.pid}`;
const C = `lvsdrwc${process.pid}`;
const has = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const SKIP =
  process.platform !== 'linux'
    ? 'not Linux'
    : process.getuid?.() !== 0
      ? 'not root (needs network namespaces)'
      : !has('iptables-restore') || !has('ip')
        ? 'iptables or ip is not installed'
        : undefined;

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

function run(ns: string, args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8', ...(input ? { input } : {}) });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function syn(dport: number): EthernetFrame {
  return {
    src: mac('02:00:00:00:00:01'),
    dst: mac('02:00:00:00:00:02'),
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 6,
      src: ipv4('198.51.100.50'),
      dst: ipv4(VIP),
      payload: {
        kind: 'tcp',
        srcPort: 40000,
        dstPort: dport,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 64240,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      },
    },
  };
}

/** `-A …` lines of `iptables-save -c` with their packet counters, per table, in order. */
function counters(save: string): Map<string, number> {
  const out = new Map<string, number>();
  let table = '';
  for (const l of save.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1);
    const m = /^\[(\d+):\d+\] (-A .*)$/.exec(l);
    if (m) out.set(`${table} ${m[2]}`, Number(m[1]));
  }
  return out;
}

describe.skipIf(SKIP !== undefined)(`raw PREROUTING NOTRACK, held to the kernel${SKIP ? ` (${SKIP})` : ''}`, () => {
  afterAll(() => {
    spawnSync('ip', ['netns', 'del', D]);
    spawnSync('ip', ['netns', 'del', C]);
  });

  it('matches the rules the kernel counts and leaves the packets conntrack sees as UNTRACKED', () => {
    for (const ns of [D, C]) expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    expect(
      spawnSync('ip', ['link', 'add', 'lvsdrw0', 'netns', D, 'type', 'veth', 'peer', 'eth0', 'netns', C]).status,
    ).toBe(0);
    for (const [ns, dev, addr] of [
      [D, 'lvsdrw0', '198.51.100.11/24'],
      [C, 'eth0', '198.51.100.50/24'],
    ] as const) {
      expect(run(ns, ['ip', 'link', 'set', dev, 'up']).status).toBe(0);
      expect(run(ns, ['ip', 'addr', 'add', addr, 'dev', dev]).status).toBe(0);
    }
    // The director's interface is eth0 in the scenario: rename it so that `-i eth1` and `-i eth0` mean the same.
    expect(run(D, ['ip', 'link', 'set', 'lvsdrw0', 'down']).status).toBe(0);
    expect(run(D, ['ip', 'link', 'set', 'lvsdrw0', 'name', 'eth0']).status).toBe(0);
    expect(run(D, ['ip', 'link', 'set', 'eth0', 'up']).status).toBe(0);
    expect(run(D, ['ip', 'addr', 'add', `${VIP}/32`, 'dev', 'eth0']).status).toBe(0);
    expect(run(D, ['ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
    const load = run(D, ['iptables-restore'], RULES);
    expect(load.stderr).toBe('');
    for (const port of PORTS) {
      const before = counters(run(D, ['iptables-save', '-c']).stdout);
      // Nothing listens: the director answers RST, the connect fails at once (the SYN has passed PREROUTING/INPUT).
      run(C, ['timeout', '3', 'bash', '-c', `exec 3<>/dev/tcp/${VIP}/${port}`]);
      const afterText = run(D, ['iptables-save', '-c']).stdout;
      const after = counters(afterText);
      const counted = [...after].filter(([k, n]) => n > (before.get(k) ?? 0)).map(([k]) => k);
      const read = readIptablesSave(afterText, 'host.save', 'ipv4', ['raw']);
      expect(read.issues.filter((i) => i.severity === 'error')).toEqual([]);
      const raw = read.value!.find((t) => t.name === 'raw')!;
      const r = evaluateIptables(raw, 'PREROUTING', syn(port), { inIface: 'eth0' });
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
