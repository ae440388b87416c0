import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { readIpvsadmList } from './ipvsadm-list-reader.ts';
import { writeIpvsadmList } from './ipvsadm-list-writer.ts';
import { readIpvsadmSave, writeIpvsadmSave } from './ipvsadm-save.ts';
import { offlineResolver } from './names.ts';

const DIR = fileURLToPath(new URL('../../fixtures/ipvs/', import.meta.url));
const fixture = (name: string) => readFileSync(DIR + name, 'utf8');
const rulesOnly = (text: string) =>
  text
    .split('\n')
    .filter((l) => !l.startsWith('['))
    .join('\n');
const codes = (issues: readonly { code: string; pos?: { line: number } }[]) =>
  issues.map((i) => `${i.pos?.line}:${i.code}`);

describe('ipvsadm -S -n round trip', () => {
  for (const name of ['save/c4-mh-tun.txt', 'save/c14c-tcp-udp-nat.txt']) {
    it(`re-writes ${name} byte for byte`, () => {
      const text = fixture(name);
      const r = readIpvsadmSave(text, name);
      expect(r.issues).toEqual([]);
      expect(writeIpvsadmSave(r.value!.table)).toBe(rulesOnly(text));
    });
  }

  it('reads the table in kernel order: each -a goes to the head of its service', () => {
    const r = readIpvsadmSave(fixture('save/c14c-tcp-udp-nat.txt'), 'c14c');
    expect(r.value!.command).toBe('[root@node4 ~]# cat /etc/sysconfig/ipvsadm-config');
    const udp = r.value!.table.services[1]!;
    expect(r.value!.table.order).toBe('kernel');
    expect(udp.destinations.map((d) => [d.address.addr, d.port, d.forwarding?.kind, d.weight])).toEqual([
      [ipv4('192.168.3.104'), 5001, 'masq', 1],
      [ipv4('192.168.3.103'), 5000, 'masq', 2],
    ]);
    expect(udp.destinations[0]!.origin.pos?.line).toBe(7);
    expect(udp.destinations[0]!.origin.via).toBe(udp.origin);
  });

  it('agrees with the ipvsadm -L -n listing of the same table (corpus C14c)', () => {
    const r = readIpvsadmSave(fixture('save/c14c-tcp-udp-nat.txt'), 'c14c');
    const listing = writeIpvsadmList(r.value!.table).split('\n');
    expect(listing).toContain('UDP  192.168.3.2:5000 wlc');
    expect(listing).toContain('  -> 192.168.3.104:5001           Masq    1      0          0         ');
  });

  it('reads mh scheduler flags and tunnel types (corpus C4)', () => {
    const svc = readIpvsadmSave(fixture('save/c4-mh-tun.txt'), 'c4').value!.table.services[1]!;
    expect(svc.scheduler).toBe('mh');
    expect(svc.schedFlags).toBe(3);
    expect(svc.destinations[0]!.forwarding).toEqual({ kind: 'tunnel', encap: { type: 'ipip' } });
  });
});

describe('non-numeric saves (ipvsadm -S without -n)', () => {
  it('resolves well-known service names and re-writes them as ipvsadm -S does', () => {
    const text = fixture('save/c14a-names.txt');
    const r = readIpvsadmSave(text, 'c14a');
    expect(r.issues).toEqual([]);
    expect(r.value!.table.services[0]!.key).toMatchObject({ port: 80 });
    expect(writeIpvsadmSave(r.value!.table, { names: offlineResolver() })).toBe(rulesOnly(text));
    expect(writeIpvsadmSave(r.value!.table)).toBe(
      '-A -t 192.168.2.100:80 -s rr\n-a -t 192.168.2.100:80 -r 192.168.2.30:80 -g -w 1\n-a -t 192.168.2.100:80 -r 192.168.2.40:80 -g -w 1\n',
    );
  });

  it('reports host names as unsupported with their lines and keeps the numeric services (corpus C14b)', () => {
    const r = readIpvsadmSave(fixture('save/c14b-names-persistent.txt'), 'c14b');
    expect(codes(r.issues)).toEqual([
      '8:ipvsadm-names',
      '9:ipvsadm-save-destination-skipped',
      '10:ipvsadm-save-destination-skipped',
      '11:ipvsadm-names',
      '12:ipvsadm-save-destination-skipped',
      '13:ipvsadm-save-destination-skipped',
    ]);
    expect(r.issues[0]!.unsupported).toBe(true);
    expect(r.value!.table.services.map((s) => [s.key.kind === 'addr' && s.key.port, s.persistence?.timeout])).toEqual([
      [80, 600],
      [443, 600],
    ]);
  });

  it('writes host names from a resolver, IPv6 names in brackets', () => {
    const r = readIpvsadmSave('-A -t [2001:db8::1]:443 -s rr\n-a -t [2001:db8::1]:443 -r [2001:db8::2] -g\n', 'x');
    const names = offlineResolver(new Map([['2001:db8::2', 'rs1.example']]));
    expect(writeIpvsadmSave(r.value!.table, { names })).toBe(
      '-A -t [2001:db8::1]:https -s rr\n-a -t [2001:db8::1]:https -r [rs1.example]:https -g -w 1\n',
    );
  });
});

describe('readIpvsadmSave semantics of ipvsadm-restore', () => {
  it('applies ipvsadm defaults: wlc, DR, weight 1, -p alone = 360 s, port from the service', () => {
    const r = readIpvsadmSave('ipvsadm -A -t 10.0.0.1:80 -p\nipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2\n# comment\n', 'x');
    expect(r.issues).toEqual([]);
    const s = r.value!.table.services[0]!;
    expect([s.scheduler, s.persistence?.timeout, s.persistence?.netmask]).toEqual(['wlc', 360, 0xffffffff]);
    expect(s.destinations[0]).toMatchObject({ port: 80, forwarding: { kind: 'route' }, weight: 1 });
  });

  it('forces the service port for DR and TUN, warning about the lost remapping', () => {
    const r = readIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -g -w 1\n', 'x');
    expect(codes(r.issues)).toEqual(['2:ipvsadm-save-port-forced']);
    expect(r.value!.table.services[0]!.destinations[0]!.port).toBe(80);
  });

  it('reads fwmark, IPv6 fwmark, netmasks, one-packet, pe, thresholds and GUE/GRE tunnels', () => {
    const text = [
      '-A -f 2882430849 -s wlc -p 300 -M 255.255.255.0',
      '-a -f 2882430849 -r 10.0.0.2:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
      '-A -f 2 -6 -s rr -p 60 -M 64',
      '-a -f 2 -6 -r [2001:db8::2]:0 -i -w 1 --tun-type gre --tun-csum',
      '-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip -o',
      '-a -u 10.0.0.1:5060 -r 10.0.0.3:5060 -m -w 2 -x 100 -y 50',
      '',
    ].join('\n');
    const r = readIpvsadmSave(text, 'x');
    expect(r.issues).toEqual([]);
    const [a, b, c] = r.value!.table.services;
    expect(a!.key).toEqual({ kind: 'fwmark', fwmark: 2882430849, family: 'ipv4' });
    expect(a!.destinations[0]!.forwarding).toEqual({
      kind: 'tunnel',
      encap: { type: 'gue', port: 6080, csum: 'remcsum' },
    });
    expect(b!.persistence).toEqual({ timeout: 60, netmask: 64 });
    expect(c).toMatchObject({ onePacket: true, persistence: { timeout: 60, netmask: 0xffffffff, pe: 'sip' } });
    expect(c!.destinations[0]).toMatchObject({ upperThreshold: 100, lowerThreshold: 50 });
    // -x/-y are not saved by ipvsadm -S; fwmarks ≥ 2^31 print negative (%d) and, compared as a signed difference,
    // sort before everything else.
    expect(writeIpvsadmSave(r.value!.table)).toBe(
      [
        '-A -f -1412536447 -s wlc -p 300 -M 255.255.255.0',
        '-a -f -1412536447 -r 10.0.0.2:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-remcsum',
        '-A -u 10.0.0.1:5060 -s rr -p 60 --pe sip -o',
        '-a -u 10.0.0.1:5060 -r 10.0.0.3:5060 -m -w 2',
        '-A -f 2 -6 -s rr -p 60 -M 64',
        '-a -f 2 -6 -r [2001:db8::2]:0 -i -w 1 --tun-type gre --tun-csum',
        '',
      ].join('\n'),
    );
  });

  it('reports bad rules with line numbers and keeps the rest', () => {
    const text = [
      '-A -t 10.0.0.1:80 -s roundrobin',
      '-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g',
      '-A -t 10.0.0.9:80 -s rr',
      '-a -t 10.0.0.9:80 -r 10.0.0.2:80 -g -w heavy',
      '-a -t 10.0.0.8:80 -r 10.0.0.2:80 -g',
      '-A -t 10.0.0.9:80 -s rr',
      '-A -t 10.0.0.7:0 -s rr',
      '-A -t 10.0.0.6:80 -s rr -o',
      '-a -t 10.0.0.9:80 -r 10.0.0.3 -g -y 5',
      '-L -n',
      'hello',
      '-A -t 10.0.0.5:80 -s rr --bogus',
      '-a -t 10.0.0.9:80 -r 10.0.0.4 -m -g',
      '-A -t 10.0.0.4:80 -s mh -b sh-port',
    ].join('\n');
    const r = readIpvsadmSave(text, 'bad.rules');
    expect(codes(r.issues)).toEqual([
      '1:ipvsadm-unknown-scheduler',
      '2:ipvsadm-save-destination-skipped',
      '4:ipvsadm-save-bad-rule',
      '5:ipvsadm-save-no-service',
      '6:ipvsadm-save-duplicate-service',
      '7:ipvsadm-save-zero-port',
      '8:ipvsadm-save-ops',
      '9:ipvsadm-save-bad-rule',
      '10:ipvsadm-save-bad-rule',
      '11:ipvsadm-save-bad-line',
      '12:ipvsadm-save-bad-rule',
      '13:ipvsadm-save-bad-rule',
      '14:ipvsadm-save-bad-sched-flag',
    ]);
    expect(r.issues[0]!.message).toContain('Scheduler or persistence engine not found');
    expect(r.value!.table.services.map((s) => s.scheduler)).toEqual(['rr', 'mh']);
  });

  it('clears the table on -C and returns no value for empty input', () => {
    const r = readIpvsadmSave('-A -t 10.0.0.1:80 -s rr\n-C\n-A -t 10.0.0.2:80 -s rr\n', 'x');
    expect(r.value!.table.services).toHaveLength(1);
    const e = readIpvsadmSave('\n', 'e');
    expect(e.value).toBeUndefined();
    expect(codes(e.issues)).toEqual(['0:ipvsadm-save-empty']);
  });
});

describe('names in listings', () => {
  it('truncates IPv4 names to 33 (service) and 28 (real server) characters as ipvsadm does (corpus C9)', () => {
    const r = readIpvsadmSave('-A -t 10.45.0.1:80 -s rr\n-a -t 10.45.0.1:80 -r 10.44.241.66:80 -m -w 1\n', 'x');
    const names = offlineResolver(
      new Map([
        ['10.45.0.1', 'ip-10-45-0-1.ap-southeast-1.compute.internal'],
        ['10.44.241.66', 'ip-10-44-241-66.ap-southeast-1.compute.internal'],
      ]),
    );
    const out = writeIpvsadmList(r.value!.table, { names }).split('\n');
    expect(out[3]).toBe('TCP  ip-10-45-0-1.ap-southeast-1. rr');
    expect(out[4]).toBe('  -> ip-10-44-241-66.ap-southeast Masq    1      0          0         ');
  });

  it('never truncates IPv6 names, which overflow their columns (corpus C10)', () => {
    const r = readIpvsadmSave(
      '-A -t [2001:db8:42:1::1]:443 -s rr\n-a -t [2001:db8:42:1::1]:443 -r [2001:db8::10]:6443 -m -w 1\n',
      'x',
    );
    const names = offlineResolver(new Map([['2001:db8::10', 'sas-test-k8s0.net.yandex.net']]));
    const out = writeIpvsadmList(r.value!.table, { names }).split('\n');
    expect(out[3]).toBe('TCP  [2001:db8:42:1::1]:https rr');
    expect(out[4]).toBe('  -> [sas-test-k8s0.net.yandex.net]:6443 Masq    1      0          0         ');
  });

  it('reads the numeric listing of the same table back', () => {
    const r = readIpvsadmList(writeIpvsadmList(readIpvsadmSave(fixture('save/c4-mh-tun.txt'), 'c4').value!.table), 'l');
    expect(r.issues).toEqual([]);
    expect(r.value!.table.services).toHaveLength(2);
  });
});
