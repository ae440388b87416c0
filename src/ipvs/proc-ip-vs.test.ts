import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { writeIpvsadmList } from './ipvsadm-list-writer.ts';
import { readProcIpVs, writeProcIpVs } from './proc-ip-vs.ts';

const DIR = fileURLToPath(new URL('../../fixtures/ipvs/proc/', import.meta.url));
const fixture = (name: string) => readFileSync(DIR + name, 'utf8');
const strip = (s: string) => s.replace(/[ \t]+$/gm, '');

describe('/proc/net/ip_vs', () => {
  it('re-writes the l3balancer fixture byte for byte, trailing spaces included (corpus C3)', () => {
    const text = fixture('c3-ipv6-tunnels-trailing.txt');
    const r = readProcIpVs(text, 'c3');
    expect(r.issues).toEqual([]);
    expect(writeProcIpVs(r.value!.table, r.value!.header)).toBe(text);
  });

  it('re-writes the procfs fixture whose trailing spaces were stripped (corpus C1)', () => {
    const text = fixture('c1-procfs-ip_vs.txt');
    const r = readProcIpVs(text, 'c1');
    expect(r.issues).toEqual([]);
    expect(strip(writeProcIpVs(r.value!.table, r.value!.header))).toBe(text);
  });

  it('decodes hex addresses, ports, fwmarks and uncompressed IPv6 into the model, in kernel order', () => {
    const r = readProcIpVs(fixture('c1-procfs-ip_vs.txt'), 'c1');
    const t = r.value!.table;
    expect(t.order).toBe('kernel');
    expect(t.services[0]!.key).toEqual({
      kind: 'addr',
      protocol: 'TCP',
      address: { family: 'ipv4', addr: ipv4('192.168.0.22') },
      port: 3306,
    });
    expect(t.services[3]!.key).toMatchObject({ address: { family: 'ipv6', addr: '2620::1' }, port: 80 });
    expect(t.services[4]!.key).toEqual({ kind: 'fwmark', fwmark: 0x10001000, family: 'ipv4' });
    expect(t.services[1]!.destinations[1]).toMatchObject({ weight: 100, activeConns: 1499, inactConns: 0 });
    expect(t.services[1]!.destinations[1]!.origin.pos?.line).toBe(10);
  });

  it('is shown by ipvsadm sorted and numeric (the IPv4 service with IPv6 tunnel destinations of corpus C3)', () => {
    const r = readProcIpVs(fixture('c3-ipv6-tunnels-trailing.txt'), 'c3');
    const out = writeIpvsadmList(r.value!.table, { header: r.value!.header! }).split('\n');
    expect(out[0]).toBe('IP Virtual Server version 1.2.1 (size=1048576)');
    expect(out).toContain('TCP  178.154.170.241:443 wrr');
    expect(out).toContain('  -> [2a02:6b8:b020:4602::a19]:443 Tunnel  46     0          0         ');
  });

  it('writes persistence with the hex netmask and the ops flag of IPv4 services ("ops " then the format\'s space)', () => {
    const r = readProcIpVs(
      'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nUDP  0A000001:0035 rr ops persistent 360 FFFFFF00\n  -> 0A000102:0035      Masq    1      0          3         \n',
      'p',
    );
    expect(r.issues).toEqual([]);
    const s = r.value!.table.services[0]!;
    expect(s).toMatchObject({ onePacket: true, persistence: { timeout: 360, netmask: 0xffffff00 } });
    expect(writeProcIpVs(r.value!.table).split('\n')[3]).toBe('UDP  0A000001:0035 rr ops  persistent 360 FFFFFF00');
  });

  it('reports malformed lines with their numbers and keeps the rest', () => {
    const r = readProcIpVs(
      '  -> 0A000102:0035      Masq    1      0          3\nTCP  0A000001:ZZZZ rr\nTCP  0A000001:0050 rr\n  -> 0A000102:0050      Bridge  1      0          3\n  -> 0A000103:0050      Route   1      0          0\n',
      'bad',
    );
    expect(r.issues.map((i) => `${i.pos?.line}:${i.code}`)).toEqual([
      '1:proc-ip-vs-orphan-destination',
      '2:proc-ip-vs-bad-service',
      '4:proc-ip-vs-bad-destination',
    ]);
    expect(r.value!.table.services[0]!.destinations).toHaveLength(1);
  });
});
