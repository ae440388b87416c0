/**
 * Several nftables base chains on one hook, held to the real kernel: a ruleset with filter chains on the output hook
 * at different and equal priorities (some accepting, some dropping, policies accept and drop) is loaded into a network
 * namespace created here; one UDP datagram per destination port is sent from inside it; the real `nft list ruleset`
 * (with the counters the kernel kept) is read by lvsdoctor, which evaluates the same datagrams. For every port, the
 * rules lvsdoctor says matched must be exactly the ones whose counters the kernel incremented, and the datagram must
 * leave (it reaches the socket's route) exactly when lvsdoctor says ACCEPT. Root only; skipped with the reason
 * otherwise. The namespace is removed afterwards.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { ipv4 } from '../src/addr/ipv4.ts';
import { mac } from '../src/addr/mac.ts';
import { evaluateIptables } from '../src/netfilter/iptables-eval.ts';
import { readNftRuleset } from '../src/netfilter/nft-read.ts';
import type { EthernetFrame } from '../src/wire/types.ts';

const NS = `lvsdnft${process.pid}`;
const has = (c: string): boolean => spawnSync('sh', ['-c', `command -v ${c}`]).status === 0;
const SKIP =
  process.platform !== 'linux'
    ? 'not Linux'
    : process.getuid?.() !== 0
      ? 'not root (needs a network namespace)'
      : !has('nft') || !has('ip')
        ? 'nft or ip is not installed'
        : undefined;

// Chain a (inet, priority 0) is created before chain b (ip, priority 0): the kernel runs b first. c runs before
// both (-10), d after them (10) with policy drop. Every rule counts; they all match UDP only (nothing listens, so the
// kernel answers a delivered datagram with an ICMP port unreachable that also passes the output hook).
const RULESET = `
table inet a {
  chain out_a {
    type filter hook output priority 0; policy accept;
    udp dport 1001 counter accept
    udp dport 1002 counter drop
    udp dport 1007 counter
  }
}
table ip b {
  chain out_b {
    type filter hook output priority filter; policy accept;
    udp dport 1003 counter accept
    udp dport 1007 counter drop
    meta l4proto udp counter
  }
  chain out_c {
    type filter hook output priority -10; policy accept;
    udp dport 1004 counter drop
    udp dport 1005 counter accept
    meta l4proto udp counter
  }
  chain out_d {
    type filter hook output priority 10; policy drop;
    udp dport 1001 counter accept
    udp dport 1003 counter accept
    udp dport 1005 counter accept
  }
}
`;
const PORTS = [1001, 1002, 1003, 1004, 1005, 1006, 1007];

function ns(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('ip', ['netns', 'exec', NS, ...args], { encoding: 'utf8', ...(input ? { input } : {}) });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function udp(dport: number): EthernetFrame {
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
      protocol: 17,
      src: ipv4('192.0.2.1'),
      dst: ipv4('192.0.2.1'),
      payload: { kind: 'udp', srcPort: 40000, dstPort: dport, payload: new Uint8Array([0x78]) },
    },
  };
}

describe.skipIf(SKIP !== undefined)(
  `nft base chains on one hook, held to the kernel${SKIP ? ` (${SKIP})` : ''}`,
  () => {
    afterAll(() => {
      spawnSync('ip', ['netns', 'del', NS]);
    });

    it('every base chain runs in priority order (equal: the later one first), accept goes on, drop ends', () => {
      expect(spawnSync('ip', ['netns', 'add', NS]).status).toBe(0);
      expect(ns(['ip', 'link', 'set', 'lo', 'up']).status).toBe(0);
      expect(ns(['ip', 'addr', 'add', '192.0.2.1/32', 'dev', 'lo']).status).toBe(0);
      const load = ns(['nft', '-f', '-'], RULESET);
      expect(load.stderr).toBe('');
      for (const port of PORTS) {
        // Counters before and after each datagram: which rules this one packet matched.
        const before = ns(['nft', 'list', 'ruleset']).stdout;
        // A refused datagram makes the send fail with EPERM (the output hook dropped it).
        const sent = ns(['bash', '-c', `echo x > /dev/udp/192.0.2.1/${port}`]);
        const after = ns(['nft', 'list', 'ruleset']).stdout;
        const real = countedLines(before, after);
        const read = readNftRuleset(after, 'ruleset.txt');
        expect(read.issues.filter((i) => i.severity === 'error')).toEqual([]);
        const r = evaluateIptables(read.value![0]!, 'OUTPUT', udp(port));
        const mine = r.visited
          .filter((v) => v.matched)
          .map((v) => v.rule.origin.pos?.line ?? 0)
          .sort((x, y) => x - y);
        expect({ port, lines: mine }).toEqual({ port, lines: real });
        expect({ port, verdict: r.verdict }).toEqual({ port, verdict: sent.status === 0 ? 'ACCEPT' : 'DROP' });
      }
    });
  },
);

/** Line numbers (1-based, in `after`) of the rules whose packet counter went up. */
function countedLines(before: string, after: string): number[] {
  const count = (l: string) => Number(/counter packets (\d+)/.exec(l)?.[1] ?? 0);
  const b = before.split('\n');
  return after
    .split('\n')
    .map((l, i) => ({ l, i }))
    .filter(({ l, i }) => /counter packets/.test(l) && count(l) > count(b[i] ?? ''))
    .map(({ i }) => i + 1);
}
