import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectIpvsInput, readIpvsInput } from './ipvs-input.ts';

const DIR = fileURLToPath(new URL('../../fixtures/ipvs/', import.meta.url));
const fixture = (name: string) => readFileSync(DIR + name, 'utf8');

describe('detectIpvsInput', () => {
  it.each([
    ['listings/case-founding.txt', 'ipvsadm-list'],
    ['listings/c8-fwmark-persistent-360.txt', 'ipvsadm-list'],
    ['listings/render-stats.txt', 'ipvsadm-list'],
    ['listings/c11-rate-exact-ipv6-one-service.txt', 'ipvsadm-list'],
    ['listings/c20-dpvs-a.txt', 'ipvsadm-list'],
    ['save/c4-mh-tun.txt', 'ipvsadm-save'],
    ['save/c14a-names.txt', 'ipvsadm-save'],
    ['keepalived/director-full.conf', 'keepalived'],
    ['keepalived/fact-sheet-minimal-dr.conf', 'keepalived'],
    ['keepalived/syntax-errors.conf', 'keepalived'],
    ['proc/c1-procfs-ip_vs.txt', 'proc-ip-vs'],
    ['proc/c3-ipv6-tunnels-trailing.txt', 'proc-ip-vs'],
    ['connections/c13a-dr.txt', 'ipvsadm-connections'],
    ['timeout/c15-timeouts.txt', 'ipvsadm-timeout'],
  ])('recognises %s as %s', (name, kind) => {
    expect(detectIpvsInput(fixture(name))).toBe(kind);
  });

  it('recognises /proc/net/ip_vs_conn by its header', () => {
    expect(
      detectIpvsInput(
        `Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n${fixture('proc/c13e-ip_vs_conn-rows.txt')}`,
      ),
    ).toBe('proc-ip-vs-conn');
  });
});

describe('readIpvsInput', () => {
  it('reads a DPVS look-alike as a listing with an unsupported issue on its version line', () => {
    const r = readIpvsInput(fixture('listings/c20-dpvs-a.txt'), 'dpvs');
    expect(r.value?.kind).toBe('ipvsadm-list');
    expect(r.issues.map((i) => `${i.pos?.line}:${i.code}`)).toContain('2:ipvsadm-not-kernel-ipvs');
  });

  it('gives every kind a value when the input is good', () => {
    for (const name of ['save/c4-mh-tun.txt', 'keepalived/director-full.conf', 'proc/c1-procfs-ip_vs.txt']) {
      const r = readIpvsInput(fixture(name), name);
      expect(r.value && 'table' in r.value && r.value.table.services.length).toBeGreaterThan(0);
    }
  });

  it('reads a paste holding an ipvsadm listing and then cat /proc/net/ip_vs as the listing', () => {
    const text = [
      'root@lb1:~# ipvsadm -L -n',
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.0.2.208:80 rr',
      '  -> 192.0.2.226:80               Route   1      0          0',
      'root@lb1:~# cat /proc/net/ip_vs',
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn',
      'TCP  C00002D0:0050 rr',
      '  -> C00002E2:0050      Route   1      0          0',
    ].join('\n');
    expect(detectIpvsInput(text)).toBe('ipvsadm-list');
    const r = readIpvsInput(text, 'paste.txt');
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.issues.map((i) => `${i.pos?.line}:${i.code}`)).toContain('7:ipvsadm-skipped-line');
  });
});
