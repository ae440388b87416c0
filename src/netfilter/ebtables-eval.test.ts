import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { implicit } from '../source/origin.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { type EbEvalContext, evaluateEbtables as evaluateFull, summarizeEbtables } from './ebtables-eval.ts';
import type { EbChain, EbPolicy, EbRule, EbTable } from './ebtables-model.ts';
import { jump, verdict } from './ebtables-model.ts';

const o = (label: string) => implicit(label);

/**
 * Every evaluation in this file also checks that the summary the simulator uses (no record of each visited rule)
 * says exactly what the full evaluation says: same verdict, deciding rule or policy, jumps and returns, problems,
 * number of rules visited and whether any matched.
 */
function evaluateEbtables(t: EbTable, hook: string, frame: EthernetFrame, ctx?: EbEvalContext) {
  const full = evaluateFull(t, hook, frame, ctx);
  expect(summarizeEbtables(t, hook, frame, ctx)).toEqual({
    verdict: full.verdict,
    decidedBy: full.decidedBy,
    events: full.events,
    problems: full.problems,
    visitedCount: full.visited.length,
    anyMatched: full.visited.some((v) => v.matched),
  });
  return full;
}

function chain(name: string, policy: EbPolicy, rules: Omit<EbRule, 'origin'>[], builtin = false): EbChain {
  return {
    name,
    builtin,
    policy,
    policyOrigin: o(`${name} policy`),
    rules: rules.map((r, i) => ({ ...r, origin: o(`${name} rule ${i}`) })),
    origin: o(name),
  };
}

function table(...chains: EbChain[]): EbTable {
  return { name: 'nat', chains };
}

const GUEST = mac('02:00:73:b6:53:c8');
const RS = mac('02:00:73:b6:53:e2');

function tcpFrame(
  src: string,
  dst: string,
  opts: { srcMac?: string; dstMac?: string; dport?: number; tos?: number } = {},
): EthernetFrame {
  return {
    src: mac(opts.srcMac ?? GUEST),
    dst: mac(opts.dstMac ?? RS),
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: opts.tos ?? 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol: 6,
      src: ipv4(src),
      dst: ipv4(dst),
      payload: {
        kind: 'tcp',
        srcPort: 51643,
        dstPort: opts.dport ?? 80,
        seq: 1,
        ack: 0,
        flags: 2,
        window: 14600,
        urgent: 0,
        options: [],
        payload: new Uint8Array(),
      },
    },
  };
}

function arpFrame(spa: string, tpa: string, op = 1): EthernetFrame {
  return {
    src: GUEST,
    dst: mac('ff:ff:ff:ff:ff:ff'),
    vlans: [],
    etherType: 0x0806,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op,
      sha: GUEST,
      spa: ipv4(spa),
      tha: mac('00:00:00:00:00:00'),
      tpa: ipv4(tpa),
    },
  };
}

const ip4 = { kind: 'ethertype' as const, value: 0x0800, negated: false };

describe('evaluateEbtables', () => {
  it('applies the base chain policy when no rule matches', () => {
    const t = table(
      chain(
        'PREROUTING',
        'DROP',
        [{ in: { name: 'vnet1', negated: false }, matches: [], target: verdict('ACCEPT') }],
        true,
      ),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('192.0.2.200', '192.0.2.226'), { inIface: 'vnet0' });
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'policy', chain: 'PREROUTING', policy: 'DROP' });
    expect(r.visited.map((v) => v.matched)).toEqual([false]);
  });

  it('resumes in the caller after a RETURN from a user chain', () => {
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          { in: { name: 'vnet+', negated: false }, matches: [], target: jump('spoof') },
          { matches: [], target: verdict('DROP') },
        ],
        true,
      ),
      chain('spoof', 'RETURN', [
        {
          proto: ip4,
          matches: [{ kind: 'ip', src: { addr: ipv4('192.0.2.200'), mask: 0xffffffff, negated: false } }],
          target: verdict('RETURN'),
        },
        { matches: [], target: verdict('ACCEPT') },
      ]),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('192.0.2.200', '192.0.2.226'), { inIface: 'vnet0' });
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'PREROUTING', index: 1 });
    expect(r.events).toEqual([
      { kind: 'jump', from: 'PREROUTING', index: 0, to: 'spoof' },
      { kind: 'return', from: 'spoof', to: 'PREROUTING', toIndex: 0, reason: 'rule' },
    ]);
    expect(r.visited.map((v) => `${v.chain}#${v.index}:${v.matched}`)).toEqual([
      'PREROUTING#0:true',
      'spoof#0:true',
      'PREROUTING#1:true',
    ]);
  });

  it('decides in a user chain when a rule there drops (the DR director case)', () => {
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [{ in: { name: 'vnet0', negated: false }, matches: [], target: jump('I-vnet0-ipv4-ip') }],
        true,
      ),
      chain('I-vnet0-ipv4-ip', 'RETURN', [
        {
          proto: ip4,
          matches: [{ kind: 'ip', src: { addr: ipv4('192.0.2.200'), mask: 0xffffffff, negated: false } }],
          target: verdict('RETURN'),
        },
        { matches: [], target: verdict('DROP') },
      ]),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('192.243.119.145', '192.0.2.208'), { inIface: 'vnet0' });
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', chain: 'I-vnet0-ipv4-ip', index: 1 });
    if (r.decidedBy.kind === 'rule') expect(r.decidedBy.rule.origin.label).toBe('I-vnet0-ipv4-ip rule 1');
  });

  it('falls off a user chain with policy RETURN back into the caller', () => {
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          { matches: [], target: jump('empty') },
          { matches: [], target: verdict('DROP') },
        ],
        true,
      ),
      chain('empty', 'RETURN', []),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('10.0.0.1', '10.0.0.2'));
    expect(r.verdict).toBe('DROP');
    expect(r.events[1]).toEqual({ kind: 'return', from: 'empty', to: 'PREROUTING', toIndex: 0, reason: 'policy' });
  });

  it('ends with the user chain policy when it is ACCEPT (legacy) or DROP', () => {
    for (const policy of ['ACCEPT', 'DROP'] as const) {
      const t = table(
        chain(
          'PREROUTING',
          'ACCEPT',
          [
            { matches: [], target: jump('user') },
            { matches: [], target: verdict('DROP') },
          ],
          true,
        ),
        chain('user', policy, []),
      );
      const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('10.0.0.1', '10.0.0.2'));
      expect(r.verdict).toBe(policy);
      expect(r.decidedBy).toMatchObject({ kind: 'policy', chain: 'user', policy });
    }
  });

  it('goes on after CONTINUE', () => {
    const t = table(
      chain(
        'PREROUTING',
        'DROP',
        [
          { matches: [], target: verdict('CONTINUE') },
          { proto: ip4, matches: [], target: verdict('ACCEPT') },
        ],
        true,
      ),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('10.0.0.1', '10.0.0.2'));
    expect(r.verdict).toBe('ACCEPT');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', index: 1 });
  });

  it('honours negation and masks on MACs, addresses and ports', () => {
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          { src: { addr: GUEST, negated: true }, matches: [], target: verdict('DROP') },
          {
            dst: { addr: mac('02:00:73:00:00:00'), mask: mac('ff:ff:ff:00:00:00'), negated: false },
            proto: ip4,
            matches: [
              {
                kind: 'ip',
                dst: { addr: ipv4('192.0.2.0'), mask: 0xffffff00, negated: false },
                dport: { lo: 80, hi: 80, negated: true },
              },
            ],
            target: verdict('DROP'),
          },
        ],
        true,
      ),
    );
    expect(
      evaluateEbtables(t, 'PREROUTING', tcpFrame('1.1.1.1', '192.0.2.208', { srcMac: '02:00:00:00:00:01' })).verdict,
    ).toBe('DROP');
    expect(evaluateEbtables(t, 'PREROUTING', tcpFrame('1.1.1.1', '192.0.2.208')).verdict).toBe('ACCEPT');
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('1.1.1.1', '192.0.2.208', { dport: 443 }));
    expect(r.verdict).toBe('DROP');
    expect(r.decidedBy).toMatchObject({ kind: 'rule', index: 1 });
  });

  it('matches ARP fields and the gratuitous flag', () => {
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          {
            proto: { kind: 'ethertype', value: 0x0806, negated: false },
            matches: [{ kind: 'arp', op: { value: 1, negated: false }, gratuitous: { negated: false } }],
            target: verdict('DROP'),
          },
        ],
        true,
      ),
    );
    expect(evaluateEbtables(t, 'PREROUTING', arpFrame('192.0.2.208', '192.0.2.208')).verdict).toBe('DROP');
    expect(evaluateEbtables(t, 'PREROUTING', arpFrame('192.0.2.200', '192.0.2.208')).verdict).toBe('ACCEPT');
    expect(evaluateEbtables(t, 'PREROUTING', arpFrame('192.0.2.208', '192.0.2.208', 2)).verdict).toBe('ACCEPT');
  });

  it('sees the TPID as the ethertype of a tagged frame and matches VLAN fields', () => {
    const tagged: EthernetFrame = { ...tcpFrame('10.0.0.1', '10.0.0.2'), vlans: [{ pcp: 3, dei: false, vid: 42 }] };
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          { proto: ip4, matches: [], target: verdict('DROP') },
          {
            proto: { kind: 'ethertype', value: 0x8100, negated: false },
            matches: [
              {
                kind: 'vlan',
                id: { value: 42, negated: false },
                prio: { value: 3, negated: false },
                encap: { value: 0x0800, negated: false },
              },
            ],
            target: verdict('DROP'),
          },
        ],
        true,
      ),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tagged);
    expect(r.decidedBy).toMatchObject({ kind: 'rule', index: 1 });
  });

  it('reports a jump to a missing chain and an IPv6 match it cannot evaluate', () => {
    const v6: EthernetFrame = {
      src: GUEST,
      dst: RS,
      vlans: [],
      etherType: 0x86dd,
      payload: { kind: 'raw', bytes: new Uint8Array(40) },
    };
    const t = table(
      chain(
        'PREROUTING',
        'ACCEPT',
        [
          { matches: [], target: jump('nowhere') },
          {
            proto: { kind: 'ethertype', value: 0x86dd, negated: false },
            matches: [{ kind: 'ip6', proto: { value: 6, negated: false } }],
            target: verdict('DROP'),
          },
        ],
        true,
      ),
    );
    const r = evaluateEbtables(t, 'PREROUTING', v6);
    expect(r.problems).toEqual(['PREROUTING rule 1 jumps to missing chain nowhere']);
    expect(r.visited[1]).toMatchObject({
      matched: false,
      unsupported: 'ip6 match on an IPv6 frame is not evaluated yet',
    });
    expect(r.verdict).toBe('ACCEPT');
  });

  it('stops a jump loop', () => {
    const t = table(
      chain('PREROUTING', 'ACCEPT', [{ matches: [], target: jump('a') }], true),
      chain('a', 'RETURN', [{ matches: [], target: jump('a') }]),
    );
    const r = evaluateEbtables(t, 'PREROUTING', tcpFrame('10.0.0.1', '10.0.0.2'));
    expect(r.verdict).toBe('DROP');
    expect(r.problems[0]).toMatch(/loop/);
  });

  it('matches interface wildcards by prefix only (`vnet+`), and a name shorter than the prefix never', () => {
    const t = table(
      chain(
        'FORWARD',
        'ACCEPT',
        [
          { out: { name: 'vnet1+', negated: false }, matches: [], target: verdict('DROP') },
          { out: { name: 'tap+', negated: true }, matches: [], target: verdict('CONTINUE') },
          { in: { name: '+', negated: false }, matches: [], target: verdict('RETURN') },
        ],
        true,
      ),
    );
    const f = arpFrame('192.0.2.1', '192.0.2.2');
    const cases: [string | undefined, string | undefined, 'ACCEPT' | 'DROP', number][] = [
      ['eth0', 'vnet12', 'DROP', 1],
      ['eth0', 'vnet1', 'DROP', 1],
      ['eth0', 'vnet', 'ACCEPT', 3],
      ['eth0', 'vnet2', 'ACCEPT', 3],
      ['eth0', 'tap0', 'ACCEPT', 3],
      [undefined, 'v', 'ACCEPT', 3],
      [undefined, undefined, 'ACCEPT', 3],
    ];
    for (const [inIface, outIface, v, n] of cases) {
      const ctx = { ...(inIface ? { inIface } : {}), ...(outIface ? { outIface } : {}) };
      const r = evaluateEbtables(t, 'FORWARD', f, ctx);
      expect([outIface, r.verdict, r.visited.length]).toEqual([outIface, v, n]);
    }
  });

  it('skips the dispatch rules of other ports exactly as evaluating them would (counts, matches, outcome)', () => {
    const out = (name: string, target = jump(`O-${name}`)) => ({
      out: { name, negated: false },
      matches: [],
      target,
    });
    const inn = (name: string) => ({ in: { name, negated: false }, matches: [], target: jump(`I-${name}`) });
    const ports = Array.from({ length: 12 }, (_, k) => `vnet${k}`);
    // Rules that look like dispatch rules: with one more criterion (they can match only the port they name, and
    // are evaluated there), a wildcard or a negation (they match other ports: never skipped), both ports.
    const lookalikes: Omit<EbRule, 'origin'>[] = [
      { ...out('vnet3'), proto: ip4 },
      { ...out('vnet4'), src: { addr: GUEST, mask: mac('ff:ff:ff:ff:ff:ff'), negated: false } },
      { ...out('vnet5'), dst: { addr: RS, mask: mac('ff:ff:ff:ff:ff:ff'), negated: false } },
      { ...out('vnet6'), logicalOut: { name: 'br0', negated: false } },
      { ...out('vnet7'), logicalIn: { name: 'br0', negated: false } },
      { ...out('vnet8'), matches: [{ kind: 'arp', op: { value: 1, negated: false } }] },
      { out: { name: 'vnet9+', negated: false }, matches: [], target: verdict('DROP') },
      { out: { name: 'vnet10', negated: true }, matches: [], target: verdict('CONTINUE') },
      {
        in: { name: 'eth0', negated: false },
        out: { name: 'vnet11', negated: false },
        matches: [],
        target: verdict('DROP'),
      },
    ];
    const t = table(
      chain(
        'POSTROUTING',
        'ACCEPT',
        [
          ...ports.slice(0, 6).map((p) => out(p)),
          ...ports.map(inn),
          ...lookalikes,
          ...ports.slice(6).map((p) => out(p)),
          out('vnet2', verdict('DROP')),
          ...ports.map((p) => out(p, verdict('DROP'))),
        ],
        true,
      ),
      ...ports.flatMap((p) => [
        chain(`O-${p}`, 'RETURN', [{ proto: ip4, matches: [], target: verdict('DROP') }]),
        chain(`I-${p}`, 'RETURN', []),
      ]),
    );
    for (const frame of [arpFrame('192.0.2.1', '192.0.2.2'), tcpFrame('192.0.2.1', '192.0.2.2')])
      for (const inIface of [undefined, 'eth0', 'vnet1', 'vnet7'])
        for (const outIface of [
          undefined,
          'vnet0',
          'vnet2',
          'vnet3',
          'vnet4',
          'vnet5',
          'vnet6',
          'vnet7',
          'vnet8',
          'vnet9',
          'vnet10',
          'vnet11',
          'vnet99',
        ]) {
          const ctx = { ...(inIface ? { inIface } : {}), ...(outIface ? { outIface } : {}) };
          evaluateEbtables(t, 'POSTROUTING', frame, ctx);
        }
    // And the summary does skip: a port no dispatch rule names visits (counts) every rule.
    const r = summarizeEbtables(t, 'POSTROUTING', arpFrame('192.0.2.1', '192.0.2.2'), { outIface: 'tap0' });
    expect(r.verdict).toBe('ACCEPT');
    expect(r.visitedCount).toBe(t.chains[0]!.rules.length);
  });
});
