import { describe, expect, it } from 'vitest';
import { IpvsEngine } from './engine.ts';
import { readIpvsInput } from './ipvs-input.ts';
import type { IpvsTable } from './model.ts';
import { type ClientSpec, parseClientSpec, runWorkload } from './workload.ts';

describe('parseClientSpec', () => {
  it('accepts a bare prefix or key=value pairs, with defaults', () => {
    expect(parseClientSpec(undefined)).toEqual({
      count: 254,
      net: { base: 0xc6336400, length: 24 },
      portLow: 1024,
      portHigh: 65535,
      seed: 1,
    });
    expect(parseClientSpec('count=1000,net=203.0.113.0/20,ports=2000-3000,seed=9')).toEqual({
      count: 1000,
      net: { base: 0xcb007000, length: 20 },
      portLow: 2000,
      portHigh: 3000,
      seed: 9,
    });
    expect(parseClientSpec('10.0.0.5')).toMatchObject({ count: 1, net: { length: 32 } });
    expect(parseClientSpec('ports=9-1')).toBe("ports must be LO-HI within 1-65535, not '9-1'");
    expect(parseClientSpec('colour=red')).toBe("unknown key 'colour' (count, net, ports, seed)");
  });
});

describe('runWorkload', () => {
  const save = [
    '-A -t 192.0.2.10:80 -s wrr',
    '-a -t 192.0.2.10:80 -r 198.51.100.11:80 -g -w 2',
    '-a -t 192.0.2.10:80 -r 198.51.100.12:80 -g -w 1',
    '-A -t [2001:db8::1]:80 -s rr',
    '-a -t [2001:db8::1]:80 -r [2001:db8::11]:80 -g -w 1',
    '-A --sctp-service 192.0.2.10:3868 -s rr',
    '-a --sctp-service 192.0.2.10:3868 -r 198.51.100.11:3868 -g -w 1',
    '',
  ].join('\n');

  it('offers every connection to each IPv4 TCP/UDP service and skips the others with the reason', () => {
    const input = readIpvsInput(save, 'rules.save').value!;
    const engine = new IpvsEngine((input as { table: IpvsTable }).table);
    const clients = parseClientSpec('count=10,seed=5') as ClientSpec;
    const r = runWorkload(engine, { connections: 30, clients, lifecycle: 'syn', intervalMs: 100 });
    expect(r.now).toBe(2900);
    expect(r.services.map((s) => [s.kind, s.title, s.kind === 'skipped' ? s.reason : ''])).toEqual([
      ['run', 'TCP  192.0.2.10:80', ''],
      ['skipped', 'TCP  [2001:db8::1]:80', 'IPv6 services are not simulated'],
      ['skipped', 'SCTP 192.0.2.10:3868', 'SCTP services are not simulated'],
    ]);
    const run = r.services[0]!;
    if (run.kind !== 'run') throw new Error('expected a run');
    // wrr with weights 2:1 (ip_vs_wrr_schedule): two of every three new connections go to the weight-2 server.
    expect(run.counts).toMatchObject({ scheduled: 30, existing: 0, noDestination: 0 });
    const byWeight = new Map(run.svc.dests.map((d) => [d.weight, run.perDest.get(d) ?? 0]));
    expect(byWeight).toEqual(
      new Map([
        [1, 10],
        [2, 20],
      ]),
    );
  });
});
