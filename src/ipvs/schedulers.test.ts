import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import type { DestState } from './dest-state.ts';
import type { IpvsDestination, IpvsService } from './model.ts';
import { SH_FALLBACK, SH_PORT } from './model.ts';
import { hash32, SourceHashScheduler } from './sched-hash.ts';
import { scheduleInput } from './scheduler.ts';
import { SCHEDULER_FACTORIES } from './schedulers.ts';
import { ServiceState } from './service-state.ts';

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

describe('every scheduler (conformance)', () => {
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
        for (const d of svc.dests) d.overloaded = true;
        for (const inp of inputs.slice(0, 5)) expect(svc.scheduler!.schedule(svc, inp)).toBeUndefined();
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
