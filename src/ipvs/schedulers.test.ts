import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import type { DestState } from './dest-state.ts';
import type { IpvsDestination, IpvsService } from './model.ts';
import { MH_FALLBACK, MH_PORT, SH_FALLBACK, SH_PORT } from './model.ts';
import { hash32, SourceHashScheduler } from './sched-hash.ts';
import type { LocalityLeastConnectionReplicationScheduler } from './sched-lblc.ts';
import { weightedLeastLinear } from './sched-least.ts';
import { MaglevScheduler, MH_HASH1, MH_HASH2, mhHash } from './sched-mh.ts';
import { PowerOfTwoScheduler } from './sched-twos.ts';
import { scheduleInput } from './scheduler.ts';
import { KERNEL_SCHEDULERS, SCHEDULER_FACTORIES, UNMODELLED_SCHEDULERS } from './schedulers.ts';
import { ServiceState } from './service-state.ts';
import { hsiphash1u32, hsiphashKey } from './siphash.ts';

const origin = { kind: 'implicit' as const, label: 'test' };

function dest(name: string, weight: number): IpvsDestination {
  return {
    address: { family: 'ipv4', addr: ipv4(name) },
    port: 80,
    forwarding: { kind: 'route' },
    weight,
    origin,
  };
}

function service(scheduler: string, dests: readonly IpvsDestination[], schedFlags = 0): ServiceState {
  const config: IpvsService = {
    key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: ipv4('192.0.2.208') }, port: 80 },
    scheduler,
    schedFlags,
    onePacket: false,
    destinations: dests,
    origin,
  };
  return new ServiceState(config, 'classic');
}

/** Weights in kernel list order, named A, B, C… as 10.0.0.1, 10.0.0.2, … */
function lettered(weights: readonly number[]): IpvsDestination[] {
  return weights.map((w, i) => dest(`10.0.0.${i + 1}`, w));
}

const LETTER = (d: DestState | undefined) => (d ? 'ABCDEFGH'[(d.addrKey & 255) - 1]! : '-');

function picks(svc: ServiceState, n: number, bindAfter = false): string {
  const input = scheduleInput();
  let out = '';
  for (let i = 0; i < n; i++) {
    const d = svc.scheduler!.schedule(svc, input);
    if (d && bindAfter) d.bind(false, false);
    out += LETTER(d);
  }
  return out;
}

describe('wrr follows the kernel current-weight algorithm', () => {
  it.each([
    [[4, 3, 2], 'AABABCABC' + 'AABABCABC'],
    [[3, 1], 'AAAB' + 'AAAB'],
    [[2, 2, 1], 'ABABC' + 'ABABC'],
    [[4, 2], 'AAB' + 'AAB'],
    [[1, 0, 1], 'ACACAC'],
  ])('weights %j in list order give %s', (weights, expected) => {
    expect(picks(service('wrr', lettered(weights)), expected.length)).toBe(expected);
  });

  it('skips an overloaded server and fails with the kernel message when all are overloaded', () => {
    const svc = service('wrr', lettered([4, 3, 2]));
    svc.dests[0]!.overloaded = true;
    expect(picks(svc, 6)).toBe('BBCBCB'.slice(0, 6));
    for (const d of svc.dests) d.overloaded = true;
    expect(svc.scheduler!.schedule(svc, scheduleInput())).toBeUndefined();
    expect(svc.scheduler!.failure).toBe('no destination available: all destinations are overloaded');
  });

  it('restarts from the list head and keeps the current weight after a destination change', () => {
    const svc = service('wrr', lettered([1, 1]));
    expect(picks(svc, 1)).toBe('A');
    // dest_changed: cl = head, mw = 2, cw stays 1 (not above mw, gcd 1) → A, B, then cw wraps to 2 → B.
    svc.editDestination(svc.dests[1]!, { weight: 2 });
    expect(picks(svc, 3)).toBe('ABB');
  });
});

describe('rr', () => {
  it('cycles in list order, skipping weight 0 and overloaded servers, ignoring weights', () => {
    const svc = service('rr', lettered([5, 0, 1, 1]));
    svc.dests[3]!.overloaded = true;
    expect(picks(svc, 5)).toBe('ACACA');
  });

  it('gives the first connection to the most recently added server (added at the list head)', () => {
    const svc = service('rr', []);
    svc.addDestination(dest('10.0.0.1', 1)); // ipvsadm -a RS1
    svc.addDestination(dest('10.0.0.2', 1)); // ipvsadm -a RS2
    expect(svc.dests.map(LETTER).join('')).toBe('BA');
    expect(picks(svc, 3)).toBe('BAB');
  });

  it('keeps its place when a server is added or the last chosen one is deleted', () => {
    const svc = service('rr', lettered([1, 1, 1]));
    expect(picks(svc, 2)).toBe('AB');
    svc.addDestination(dest('10.0.0.4', 1)); // list D A B C, pointer still on B
    expect(picks(svc, 1)).toBe('C');
    svc.removeDestination(svc.dests[3]!); // C removed: pointer moves to its predecessor B
    expect(picks(svc, 3)).toBe('DAB');
  });

  it('returns undefined when every server has weight 0', () => {
    expect(picks(service('rr', lettered([0, 0])), 2)).toBe('--');
  });
});

describe('least-connection family', () => {
  it('wlc gives ties to the head of the list and then balances by overhead / weight', () => {
    const svc = service('wlc', lettered([1, 2]));
    // A: 0 → A (tie at 0 goes to the head); then B until B's overhead/2 exceeds A's.
    expect(picks(svc, 6, true)).toBe('ABBABB');
  });

  it('lc ignores weights other than 0', () => {
    expect(picks(service('lc', lettered([1, 0, 5])), 4, true)).toBe('ACAC');
  });

  it('nq returns the first idle server, then the shortest expected delay', () => {
    // idle A, idle B, then B while 2·3 > (active_B+1)·1, i.e. until B has 5 active.
    expect(picks(service('nq', lettered([1, 3])), 7, true)).toBe('ABBBBBA');
  });

  it('sed minimises (active + 1) / weight', () => {
    expect(picks(service('sed', lettered([1, 3])), 5, true)).toBe('BBABB');
  });

  it('fo always picks the highest weight, the first one on ties', () => {
    expect(picks(service('fo', lettered([2, 5, 5])), 3, true)).toBe('BBB');
  });

  it('ovf overflows to the next highest weight once active connections exceed the weight', () => {
    expect(picks(service('ovf', lettered([1, 2])), 5, true)).toBe('BBBAA');
  });
});

describe('sh and dh', () => {
  it('hash_32 matches the kernel golden-ratio hash', () => {
    expect(hash32(0xc0a8010a, 8)).toBe(SourceHashScheduler.bucket(0xc0a8010a, 0, 0));
    expect(SourceHashScheduler.bucket(ipv4('192.168.1.10'), 0, 0)).toBe(248);
    expect(SourceHashScheduler.bucket(ipv4('10.0.0.1'), 0, 0)).toBe(39);
    expect(SourceHashScheduler.bucket(ipv4('172.16.5.9'), 0, 0)).toBe(115);
    expect(SourceHashScheduler.bucket(ipv4('192.168.1.10'), 40000, 0)).toBe(156);
  });

  it('sh fills buckets by weight and maps clients as the fact sheet vectors say', () => {
    const svc = service('sh', [dest('10.0.0.2', 2), dest('10.0.0.1', 1)]);
    const input = scheduleInput();
    const pick = (client: string) => {
      input.saddr = ipv4(client);
      return LETTER(svc.scheduler!.schedule(svc, input));
    };
    expect(pick('192.168.1.10')).toBe('A');
    expect(pick('10.0.0.1')).toBe('B');
    expect(pick('172.16.5.9')).toBe('B');
  });

  it('sh returns no destination for a weight-0 bucket unless sh-fallback is set', () => {
    const input = scheduleInput();
    input.saddr = ipv4('192.168.1.10'); // bucket 248 → 10.0.0.1
    const plain = service('sh', [dest('10.0.0.2', 2), dest('10.0.0.1', 0)]);
    expect(plain.scheduler!.schedule(plain, input)).toBeUndefined();
    const fb = service('sh', [dest('10.0.0.2', 2), dest('10.0.0.1', 0)], SH_FALLBACK | SH_PORT);
    input.sport = 0;
    expect(LETTER(fb.scheduler!.schedule(fb, input))).toBe('B');
  });

  it('dh sends every connection of one VIP to the same server', () => {
    const svc = service('dh', lettered([1, 1, 1]));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    const first = svc.scheduler!.schedule(svc, input);
    for (let i = 0; i < 10; i++) {
      input.saddr = ipv4(`198.51.100.${i + 1}`);
      expect(svc.scheduler!.schedule(svc, input)).toBe(first);
    }
  });
});

/** Schedulers whose kernel code reuses a cached server even when its threshold OVERLOAD flag is set. */
const KEEPS_CACHED_OVERLOADED: ReadonlySet<string> = new Set(['lblc']);

describe('every scheduler (conformance)', () => {
  it('covers every scheduler of Linux 6.12', () => {
    expect(Object.keys(SCHEDULER_FACTORIES).sort()).toEqual([...KERNEL_SCHEDULERS].sort());
    expect(UNMODELLED_SCHEDULERS).toEqual([]);
  });

  for (const name of Object.keys(SCHEDULER_FACTORIES)) {
    describe(name, () => {
      const inputs = Array.from({ length: 200 }, (_, i) => ({
        saddr: (0xc6336400 + i * 7919) >>> 0,
        sport: 1024 + ((i * 104729) % 60000),
        daddr: ipv4('192.0.2.208'),
        dport: 80,
      }));

      it('never picks a weight-0 server', () => {
        const svc = service(name, lettered([0, 3, 0, 1, 2, 0]));
        for (const inp of inputs) {
          const d = svc.scheduler!.schedule(svc, inp);
          if (d) {
            expect(d.weight).toBeGreaterThan(0);
            d.bind(false, false);
          }
        }
      });

      it('never picks an overloaded server and fails when all are overloaded', () => {
        const svc = service(name, lettered([1, 2, 3]));
        svc.dests[1]!.overloaded = true;
        for (const inp of inputs) expect(svc.scheduler!.schedule(svc, inp)).not.toBe(svc.dests[1]);
        // lblc reuses its cached server without looking at the OVERLOAD flag (ip_vs_lblc_schedule), so start afresh.
        const fresh = KEEPS_CACHED_OVERLOADED.has(name) ? service(name, lettered([1, 2, 3])) : svc;
        for (const d of fresh.dests) d.overloaded = true;
        for (const inp of inputs.slice(0, 5)) expect(fresh.scheduler!.schedule(fresh, inp)).toBeUndefined();
      });

      it('returns undefined without servers', () => {
        const svc = service(name, []);
        expect(svc.scheduler!.schedule(svc, inputs[0]!)).toBeUndefined();
      });

      it('is deterministic: the same state and packets give the same picks', () => {
        const run = () => {
          const svc = service(name, lettered([2, 3, 1, 4]));
          return inputs
            .map((inp) => {
              const d = svc.scheduler!.schedule(svc, inp);
              d?.bind(false, false);
              return LETTER(d);
            })
            .join('');
        };
        expect(run()).toBe(run());
      });

      it('uses every server with a positive weight when connections keep arriving from many clients', () => {
        if (name === 'dh' || name === 'fo') return; // by design one server per VIP / the heaviest only
        const svc = service(name, lettered([1, 1, 1]));
        const seen = new Set<string>();
        for (const inp of inputs) {
          const d = svc.scheduler!.schedule(svc, inp);
          d?.bind(false, false);
          seen.add(LETTER(d));
        }
        expect(
          [...seen]
            .filter((x) => x !== '-')
            .sort()
            .join(''),
        ).toBe('ABC');
      });
    });
  }
});

/** SipHash-1-3 with BigInt, written from the algorithm description, as an independent check of the fast version. */
function referenceHsiphash(x: number, k0: bigint, k1: bigint): number {
  const M = (1n << 64n) - 1n;
  const rotl = (v: bigint, n: bigint) => ((v << n) | (v >> (64n - n))) & M;
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M;
    v1 = rotl(v1, 13n) ^ v0;
    v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M;
    v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & M;
    v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & M;
    v1 = rotl(v1, 17n) ^ v2;
    v2 = rotl(v2, 32n);
  };
  const b = (4n << 56n) | BigInt(x >>> 0);
  v3 ^= b;
  round();
  v0 ^= b;
  v2 ^= 0xffn;
  round();
  round();
  round();
  return Number((v0 ^ v1 ^ v2 ^ v3) & 0xffffffffn);
}

describe('hsiphash (64-bit SipHash-1-3 as lib/siphash.c)', () => {
  it('matches the fact sheet vectors', () => {
    const k = hsiphashKey(2654435761);
    expect(hsiphash1u32(0, k)).toBe(0x1d5a77c2);
    expect(hsiphash1u32(0xc0a8010a, k)).toBe(0xd5e959b6);
  });

  it('agrees with a BigInt reference on many inputs and keys', () => {
    for (let i = 0; i < 500; i++) {
      const x = Math.imul(i + 1, 0x9e3779b1) >>> 0;
      const k0 = (i * 7919) >>> 0;
      const k1 = (0xffffffff - i * 104729) >>> 0;
      expect(hsiphash1u32(x, hsiphashKey(k0, k1))).toBe(referenceHsiphash(x, BigInt(k0), BigInt(k1)));
    }
  });
});

describe('mh (Maglev hashing, M = 4093)', () => {
  const three = (w2 = 1) => service('mh', [dest('10.0.0.3', 1), dest('10.0.0.2', w2), dest('10.0.0.1', 1)]);

  it('derives offset 3167 and skip 700 for 10.0.0.1:80', () => {
    expect(mhHash(ipv4('10.0.0.1'), 80, MH_HASH1, 0) % 4093).toBe(3167);
    expect((mhHash(ipv4('10.0.0.1'), 80, MH_HASH2, 0) % 4092) + 1).toBe(700);
  });

  it('fills the table 1365/1364/1364 with equal weights and 1024/2046/1023 when the middle server weighs 2', () => {
    const a = three();
    expect((a.scheduler as MaglevScheduler).slotCounts(a)).toEqual([1365, 1364, 1364]);
    const b = three(2);
    expect((b.scheduler as MaglevScheduler).slotCounts(b)).toEqual([1024, 2046, 1023]);
  });

  it('maps clients as the fact sheet vectors say', () => {
    const svc = three();
    const input = scheduleInput();
    const pick = (client: string) => {
      input.saddr = ipv4(client);
      return LETTER(svc.scheduler!.schedule(svc, input));
    };
    expect(pick('192.168.1.10')).toBe('A'); // 10.0.0.1
    expect(pick('10.0.0.1')).toBe('C'); // 10.0.0.3
    expect(pick('172.16.5.9')).toBe('B'); // 10.0.0.2
  });

  it('keeps the slots of a server set to weight 0: no destination without mh-fallback, another server with it', () => {
    const plain = three();
    plain.editDestination(plain.dests[2]!, { weight: 0 }); // 10.0.0.1 quiesced, last_weight stays 1
    expect((plain.scheduler as MaglevScheduler).slotCounts(plain)).toEqual([1365, 1364, 1364]);
    const input = scheduleInput();
    input.saddr = ipv4('192.168.1.10');
    expect(plain.scheduler!.schedule(plain, input)).toBeUndefined();
    const fb = service('mh', [dest('10.0.0.3', 1), dest('10.0.0.2', 1), dest('10.0.0.1', 1)], MH_FALLBACK);
    fb.editDestination(fb.dests[2]!, { weight: 0 });
    const d = fb.scheduler!.schedule(fb, input);
    expect(d).toBeDefined();
    expect(d!.weight).toBe(1);
  });

  it('gives no slots to a server added with weight 0', () => {
    const svc = service('mh', [dest('10.0.0.3', 1), dest('10.0.0.2', 0), dest('10.0.0.1', 1)]);
    const counts = (svc.scheduler as MaglevScheduler).slotCounts(svc);
    expect(counts[1]).toBe(0);
    expect(counts[0]! + counts[2]!).toBe(4093);
  });

  it('hashes the source port too with mh-port', () => {
    const svc = three();
    svc.schedFlags; // flags are fixed per service; build one with mh-port
    const withPort = service('mh', [dest('10.0.0.3', 1), dest('10.0.0.2', 1), dest('10.0.0.1', 1)], MH_PORT);
    const seen = new Set<string>();
    const input = scheduleInput();
    input.saddr = ipv4('192.168.1.10');
    for (let p = 1024; p < 1064; p++) {
      input.sport = p;
      seen.add(LETTER(withPort.scheduler!.schedule(withPort, input)));
    }
    expect([...seen].sort().join('')).toBe('ABC');
  });

  it('supports the other table sizes of CONFIG_IP_VS_MH_TAB_INDEX and rejects non-primes', () => {
    expect(new MaglevScheduler(251).size).toBe(251);
    expect(() => new MaglevScheduler(4096)).toThrow(RangeError);
  });
});

describe('lblc and lblcr (keyed by the destination address)', () => {
  const bindingPicks = (name: string, weights: number[], n: number) => {
    const svc = service(name, lettered(weights));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    let out = '';
    for (let i = 0; i < n; i++) {
      const d = svc.scheduler!.schedule(svc, input);
      d?.bind(false, false);
      out += LETTER(d);
    }
    return out;
  };

  it('lblc stays on the cached server until it has more active connections than its weight and another is idle', () => {
    // A (wlc tie → head), A (1 ≤ 1), then A has 2 > 1 while B has 0·2 < 1 → wlc picks B; B is never "overloaded"
    // afterwards because no server is below half its weight any more.
    expect(bindingPicks('lblc', [1, 1], 6)).toBe('AABBBB');
  });

  it('lblc reuses the cached server although its threshold OVERLOAD flag is set (kernel behaviour)', () => {
    const svc = service('lblc', lettered([1, 1]));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    const first = svc.scheduler!.schedule(svc, input)!;
    first.overloaded = true;
    expect(svc.scheduler!.schedule(svc, input)).toBe(first);
  });

  it('lblc forgets an entry unused for lblc_expiration (24 h)', () => {
    const svc = service('lblc', lettered([1, 1]));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    svc.scheduler!.schedule(svc, input)!.bind(false, false); // A cached
    svc.dests[1]!.bind(false, false);
    svc.dests[1]!.bind(false, false); // B more loaded than A
    svc.dests[0]!.bind(false, false);
    svc.dests[0]!.bind(false, false); // A: 3 active, B: 2 — A is 3 > 1 but nobody below half: stays A
    expect(LETTER(svc.scheduler!.schedule(svc, input))).toBe('A');
    input.now = 24 * 3600 * 1000 + 1;
    expect(LETTER(svc.scheduler!.schedule(svc, input))).toBe('B'); // fresh wlc choice
  });

  it('lblcr grows the server set when its least-loaded member is lblc-overloaded', () => {
    // A, A, then A is lblc-overloaded → wlc adds B to the set {B, A}; B, B (set_min: B's overhead ≤ A's);
    // then B's 768 > A's 512 → set_min picks A, and A is not lblc-overloaded (nobody below half its weight).
    expect(bindingPicks('lblcr', [1, 1], 6)).toBe('AABBBA');
    const svc = service('lblcr', lettered([1, 1]));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    for (let i = 0; i < 3; i++) svc.scheduler!.schedule(svc, input)!.bind(false, false);
    const entry = (svc.scheduler as LocalityLeastConnectionReplicationScheduler).cache.get(input.daddr)!;
    expect(entry.set.map(LETTER).join('')).toBe('BA');
  });

  it('lblcr drops the most loaded member of an unchanged set after lblcr_expiration', () => {
    const svc = service('lblcr', lettered([1, 1]));
    const input = scheduleInput();
    input.daddr = ipv4('192.0.2.208');
    for (let i = 0; i < 3; i++) svc.scheduler!.schedule(svc, input)!.bind(false, false);
    // set {B, A}; A has 2 active, B 1. A day later (entry used within the day) the most loaded, A, is removed.
    const s = svc.scheduler as LocalityLeastConnectionReplicationScheduler;
    input.now = 12 * 3600 * 1000;
    s.schedule(svc, input);
    input.now = 24 * 3600 * 1000 + 1;
    s.schedule(svc, input);
    expect(s.cache.get(input.daddr)!.set.map(LETTER).join('')).toBe('B');
  });
});

describe('twos (power of two choices, seeded)', () => {
  it('gives the first eligible server weight + 1 of total + 1 chances when overheads are equal', () => {
    // With no connections the second choice never wins (0 > 0 is false): P(A) = (1 + 1) / (1 + 3 + 1) = 0.4.
    const svc = service('twos', lettered([1, 3]));
    let a = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) if (LETTER(svc.scheduler!.schedule(svc, scheduleInput())) === 'A') a++;
    expect(a / n).toBeGreaterThan(0.38);
    expect(a / n).toBeLessThan(0.42);
  });

  it('takes the second draw when its overhead per weight is lower', () => {
    const sched = new PowerOfTwoScheduler(1);
    // seed 1: first xorshift32 value 270369 → r1 = 270369 % 3 = 0 → choice1 = A (first eligible).
    expect(new PowerOfTwoScheduler(1).nextU32()).toBe(270369);
    const svc = service('twos', lettered([1, 1]));
    svc.dests[0]!.bind(false, false); // A has one active connection
    const d = sched.schedule(svc);
    // choice2 from the second draw r2 ∈ {0, 1, 2}: 0 and 1 land on A (weight + 1 chances), 2 on B, and B then wins
    // because 1·256 > 1·0.
    const probe = new PowerOfTwoScheduler(1);
    probe.nextU32();
    const r2 = probe.nextU32() % 3;
    expect(LETTER(d)).toBe(r2 <= 1 ? 'A' : 'B');
  });
});

describe('overload flag rules', () => {
  const withThreshold = (mode: 'classic' | 'totalconns', u: number, l: number) => {
    const config: IpvsService = {
      key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: ipv4('192.0.2.208') }, port: 80 },
      scheduler: 'rr',
      schedFlags: 0,
      onePacket: false,
      destinations: [{ ...dest('10.0.0.1', 1), upperThreshold: u, lowerThreshold: l }],
      origin,
    };
    return new ServiceState(config, mode).dests[0]!;
  };

  for (const mode of ['classic', 'totalconns'] as const) {
    it(`${mode}: sets the flag when the total reaches u and clears it below l`, () => {
      const d = withThreshold(mode, 4, 2);
      for (let i = 0; i < 3; i++) d.bind(false, i % 2 === 0);
      expect(d.overloaded).toBe(false);
      d.bind(false, false);
      expect(d.overloaded).toBe(true);
      d.unbind(false, false); // 3
      d.unbind(false, true); // 2
      expect(d.overloaded).toBe(true);
      d.unbind(false, false); // 1 < l
      expect(d.overloaded).toBe(false);
    });

    it(`${mode}: without l, clears at 75 % of u (u = 10: at 7 connections)`, () => {
      const d = withThreshold(mode, 10, 0);
      for (let i = 0; i < 10; i++) d.bind(false, false);
      expect(d.overloaded).toBe(true);
      d.unbind(false, false);
      d.unbind(false, false); // 8
      expect(d.overloaded).toBe(true);
      d.unbind(false, false); // 7
      expect(d.overloaded).toBe(false);
    });

    it(`${mode}: templates never count`, () => {
      const d = withThreshold(mode, 1, 0);
      d.bind(true, false);
      expect(d.overloaded).toBe(false);
      expect(d.persistConns).toBe(1);
    });
  }

  it('classic: lowering u on edit keeps the flag clear until the next connection; 6.12 sets it at once', () => {
    const classic = withThreshold('classic', 0, 0);
    const current = withThreshold('totalconns', 0, 0);
    for (const d of [classic, current]) for (let i = 0; i < 5; i++) d.bind(false, false);
    classic.setThresholds(3, 0);
    current.setThresholds(3, 0);
    expect(classic.overloaded).toBe(false);
    expect(current.overloaded).toBe(true);
    classic.bind(false, false);
    expect(classic.overloaded).toBe(true);
  });
});

describe('indexed wlc and sed', () => {
  for (const [name, sed] of [
    ['wlc', false],
    ['sed', true],
  ] as const)
    for (const mode of ['classic', 'totalconns'] as const)
      it(`${name} (${mode}) always picks what the kernel's linear scan picks, through random changes`, () => {
        let x = 12345;
        const rnd = (n: number) => {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          return (x >>> 0) % n;
        };
        const config: IpvsService = {
          key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: ipv4('192.0.2.208') }, port: 80 },
          scheduler: name,
          schedFlags: 0,
          onePacket: false,
          destinations: lettered([1, 2, 3, 0, 5]),
          origin,
        };
        const svc = new ServiceState(config, mode);
        const input = scheduleInput();
        let added = 0;
        for (let step = 0; step < 5000; step++) {
          const ds = svc.dests;
          const op = rnd(100);
          if (ds.length > 0 && op < 40) ds[rnd(ds.length)]!.bind(false, rnd(3) === 0);
          else if (ds.length > 0 && op < 65) {
            const d = ds[rnd(ds.length)]!;
            if (d.activeConns > 0) d.unbind(false, false);
            else if (d.inactConns > 0) d.unbind(false, true);
          } else if (ds.length > 0 && op < 75) ds[rnd(ds.length)]!.overloaded = rnd(2) === 0;
          else if (ds.length > 0 && op < 82) svc.editDestination(ds[rnd(ds.length)]!, { weight: rnd(6) });
          else if (op < 86 && ds.length < 12) svc.addDestination(dest(`10.0.1.${++added}`, rnd(5)));
          else if (op < 88 && ds.length > 1) svc.removeDestination(ds[rnd(ds.length)]!);
          else if (ds.length > 0 && op < 92) {
            const d = ds[rnd(ds.length)]!;
            d.activeConns++;
            d.inactConns--;
            d.inactConns++;
            d.activeConns--;
          }
          expect(svc.scheduler!.schedule(svc, input)).toBe(weightedLeastLinear(svc, sed));
        }
      });
});
