import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import {
  formatExpire,
  isTemplateRow,
  readIpvsadmConnectionList,
  readProcIpVsConn,
  templateFwmark,
  writeIpvsadmConnectionList,
} from './ipvsadm-conn-list.ts';
import { applySetTimeouts, DEFAULT_TIMEOUTS, readIpvsadmTimeout, writeIpvsadmTimeout } from './ipvsadm-timeout.ts';

const DIR = fileURLToPath(new URL('../../fixtures/ipvs/', import.meta.url));
const fixture = (name: string) => readFileSync(DIR + name, 'utf8');
const fromHeader = (text: string) => text.slice(text.indexOf('IPVS connection entries'));
const codes = (issues: readonly { code: string; pos?: { line: number } }[]) =>
  issues.map((i) => `${i.pos?.line}:${i.code}`);

describe('ipvsadm -L -n -c', () => {
  it('re-renders the fact sheet listing byte for byte (template minutes above 99, IP fwmark templates)', () => {
    const text = fixture('connections/render-mixed.txt');
    const r = readIpvsadmConnectionList(text, 'render-mixed');
    expect(r.issues).toEqual([]);
    expect(writeIpvsadmConnectionList(r.value!.rows)).toBe(text);
    const rows = r.value!.rows;
    expect(rows.map((x) => [x.protocol, x.expires, x.state])).toEqual([
      ['TCP', 57, 'SYN_RECV'],
      ['TCP', 899, 'ESTABLISHED'],
      ['TCP', 10800, 'NONE'],
      ['UDP', 219, 'UDP'],
      ['IP', 948, 'NONE'],
    ]);
    expect(rows.map(isTemplateRow)).toEqual([false, false, true, false, true]);
    expect(templateFwmark(rows[4]!)).toBe(10);
  });

  for (const name of ['c13a-dr.txt', 'c13b-nat.txt', 'c13c-template.txt']) {
    it(`re-renders the real listing ${name} byte for byte after its prompt`, () => {
      const text = fixture(`connections/${name}`);
      const r = readIpvsadmConnectionList(text, name);
      expect(r.issues).toEqual([]);
      expect(r.value!.command).toMatch(/ipvsadm -[lL]n/);
      expect(writeIpvsadmConnectionList(r.value!.rows)).toBe(fromHeader(text));
    });
  }

  it('reads indented rows without header and rows with an author note after a tab', () => {
    const d = readIpvsadmConnectionList(fixture('connections/c13d-udp-indented.txt'), 'c13d');
    expect(codes(d.issues)).toEqual(['0:ipvsadm-conn-no-header']);
    expect(d.value!.rows[1]).toMatchObject({ protocol: 'UDP', state: 'UDP', expires: 219 });
    const f = readIpvsadmConnectionList(fixture('connections/c13f-template-annotation.txt'), 'c13f');
    expect(codes(f.issues)).toEqual(['2:ipvsadm-conn-annotation', '0:ipvsadm-conn-no-header']);
    expect(f.value!.rows[1]!.source).toEqual({ address: { family: 'ipv4', addr: ipv4('172.168.2.219') }, port: 0 });
  });

  it('flags the hand-written negative examples of the corpus with their lines', () => {
    const text = [
      'IPVS connection entries',
      'pro state expire    source             virtual            destination',
      'TCP 10793  NONE        192.0.2.100:0      10.96.1.100:80     10.0.1.6:8080',
      'TCP 01:00  BOGUS       192.0.2.100:1      10.96.1.100:80     10.0.1.6:8080',
      'TCP 01:00  ESTABLISHED 192.0.2.100:1      10.96.1.300:80     10.0.1.6:8080',
      'TCP 01:00  ESTABLISHED 192.0.2.100:2      10.96.1.100:80     10.0.1.6:8080',
    ].join('\n');
    const r = readIpvsadmConnectionList(text, 'bad');
    expect(codes(r.issues)).toEqual([
      '2:ipvsadm-conn-bad-header',
      '3:ipvsadm-conn-bad-row',
      '4:ipvsadm-conn-bad-row',
      '5:ipvsadm-conn-bad-row',
    ]);
    expect(r.issues[1]!.message).toContain("expected the remaining time as MM:SS, got '10793'");
    expect(r.value!.rows).toHaveLength(1);
  });

  it('renders the --persistent-conn header and pe columns', () => {
    const r = readIpvsadmConnectionList(
      'IPVS connection entries\npro expire state       source             virtual            destination        pe name          pe_data\nUDP 00:10  UDP         10.0.0.9:5060      10.0.0.1:5060      10.0.0.3:5060      sip              abc@host\n',
      'pe',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.persistentConn).toBe(true);
    expect(r.value!.rows[0]).toMatchObject({ peName: 'sip', peData: 'abc@host' });
    expect(writeIpvsadmConnectionList(r.value!.rows, true).split('\n')[2]).toBe(
      'UDP 00:10  UDP         10.0.0.9:5060      10.0.0.1:5060      10.0.0.3:5060      sip              abc@host          ',
    );
  });

  it('formats expiry as %02d:%02d with uncapped minutes', () => {
    expect(formatExpire(0)).toBe('00:00');
    expect(formatExpire(10803)).toBe('180:03');
  });
});

describe('/proc/net/ip_vs_conn', () => {
  it('reads hex rows and shows them as ipvsadm -c does (corpus C13e)', () => {
    const r = readProcIpVsConn(fixture('proc/c13e-ip_vs_conn-rows.txt'), 'c13e');
    expect(r.issues).toEqual([]);
    expect(writeIpvsadmConnectionList(r.value!.rows).split('\n').slice(2)).toEqual([
      'TCP 01:05  FIN_WAIT    192.168.0.6:39478  172.16.0.100:80    10.0.0.17:80',
      'IP  15:48  NONE        192.168.0.6:0      0.0.0.10:0         10.0.0.17:0',
      '',
    ]);
  });

  it('reads IPv6 rows, the sync variant with its Origin column, and reports bad rows', () => {
    const text = [
      'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires PEName PEData',
      'TCP 2001:0db8:0000:0000:0000:0000:0000:0009 9C40 2001:0db8:0000:0000:0000:0000:0000:0001 0050 2001:0db8:0000:0000:0000:0000:0000:0002 0050 ESTABLISHED LOCAL     899',
      'TCP C0A80006 XYZ1 AC100064 0050 0A000011 0050 FIN_WAIT LOCAL 65',
    ].join('\n');
    const r = readProcIpVsConn(text, 'sync');
    expect(codes(r.issues)).toEqual(['3:proc-ip-vs-conn-bad-row']);
    expect(writeIpvsadmConnectionList(r.value!.rows).split('\n')[2]).toBe(
      'TCP 14:59  ESTABLISHED [2001:db8::9]:40000 [2001:db8::1]:80   [2001:db8::2]:80',
    );
  });
});

describe('ipvsadm -L --timeout', () => {
  it('reads the last timeout line of a session (corpus C15) and writes it back', () => {
    const r = readIpvsadmTimeout(fixture('timeout/c15-timeouts.txt'), 'c15');
    expect(r.issues).toEqual([]);
    expect(r.value).toEqual({ tcp: 1, tcpfin: 2, udp: 1 });
    expect(writeIpvsadmTimeout(DEFAULT_TIMEOUTS)).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
  });

  it('leaves a value unchanged when --set gives 0', () => {
    expect(applySetTimeouts(DEFAULT_TIMEOUTS, { tcp: 0, tcpfin: 30, udp: 0 })).toEqual({
      tcp: 900,
      tcpfin: 30,
      udp: 300,
    });
  });

  it('reports a malformed line with its number', () => {
    const r = readIpvsadmTimeout('Timeout (tcp tcpfin udp): 900 120\n', 't');
    expect(codes(r.issues)).toEqual(['1:ipvsadm-timeout-bad-line']);
    expect(r.value).toBeUndefined();
  });
});
