import { describe, expect, it } from 'vitest';
import { formatIpv4 } from '../addr/ipv4.ts';
import { neighUsable, readIpNeigh } from './ip-neigh.ts';

const show = (text: string) =>
  (readIpNeigh(text, 'n.txt').value ?? []).map(
    (n) =>
      `${formatIpv4(n.ip)} ${n.dev} ${n.mac ?? '-'} ${n.states.join(',')} ${neighUsable(n) ? 'usable' : 'unusable'} :${n.pos.line}`,
  );

describe('ip neigh reader', () => {
  it('reads `ip neigh show` text: usable entries, failed ones without an address, IPv6 skipped', () => {
    expect(
      show(
        [
          '192.0.2.1 dev eth0 lladdr 84:78:ac:27:6c:41 REACHABLE',
          '198.51.100.9 dev eth1 FAILED',
          'fe80::1 dev eth0 lladdr 84:78:ac:27:6c:41 router STALE',
          '192.0.2.7 dev eth0 lladdr 02:00:5e:00:53:07 PERMANENT',
          '',
        ].join('\n'),
      ),
    ).toEqual([
      '192.0.2.1 eth0 84:78:ac:27:6c:41 REACHABLE usable :1',
      '198.51.100.9 eth1 - FAILED unusable :2',
      '192.0.2.7 eth0 02:00:5e:00:53:07 PERMANENT usable :4',
    ]);
  });

  it('reads `ip -j neigh` JSON', () => {
    expect(
      show(
        JSON.stringify([
          { dst: '203.0.113.4', dev: 'eth0', lladdr: '02:00:5e:00:53:04', state: ['STALE'] },
          { dst: '203.0.113.5', dev: 'eth0', state: ['INCOMPLETE'] },
          { dst: '2001:db8::1', dev: 'eth0', lladdr: '02:00:5e:00:53:04', state: ['STALE'] },
        ]),
      ),
    ).toEqual(['203.0.113.4 eth0 02:00:5e:00:53:04 STALE usable :1', '203.0.113.5 eth0 - INCOMPLETE unusable :1']);
  });

  it('reports what it cannot read with file:line and what it expected', () => {
    const r = readIpNeigh('192.0.2.1 dev eth0 lladdr 84:78:ac:27:6c:41 REACHABLE\ngarbage here\n', 'n.txt');
    expect(r.issues.map((i) => `${i.pos?.file}:${i.pos?.line} ${i.message}`)).toEqual([
      'n.txt:2 expected "ADDRESS dev DEV [lladdr MAC] STATE" as `ip neigh show` prints it, got "garbage here"',
    ]);
    const j = readIpNeigh('[{"dst": "192.0.2.1",\n "dev": }]', 'n.json');
    expect(j.value).toBeUndefined();
    expect(j.issues[0]!.message).toMatch(/^not valid `ip -j neigh` JSON/);
    expect(j.issues[0]!.pos?.file).toBe('n.json');
  });
});
