import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { readIpvsadmList } from './ipvsadm-list-reader.ts';
import { formatLargeNumber, writeIpvsadmList } from './ipvsadm-list-writer.ts';
import { formatServiceKey, type IpvsTable } from './model.ts';
import { readEtcHosts, readEtcServices } from './names.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/ipvs/listings/', import.meta.url));

function fixture(name: string): string {
  return readFileSync(FIXTURES + name, 'utf8');
}

/** Drops the shell lines before the listing, as the writer never prints them. */
function listingPart(text: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^(IP Virtual Server|Prot )/.test(l));
  return lines.slice(start).join('\n');
}

function stripTrailing(text: string): string {
  return text.replace(/[ \t]+$/gm, '');
}

function roundTrip(text: string, file: string): string {
  const r = readIpvsadmList(text, file);
  expect(r.issues).toEqual([]);
  const l = r.value!;
  return writeIpvsadmList(l.table, {
    format: l.format,
    exact: l.exact,
    header: l.header ?? false,
    nosort: true,
  });
}

describe('ipvsadm -L -n round trip', () => {
  for (const name of [
    'render-dr-one-halfopen.txt',
    'render-mixed.txt',
    'render-stats.txt',
    'render-stats-exact.txt',
    'render-rate.txt',
    'render-thresholds.txt',
    'render-persistent-conn.txt',
    'render-tun-info.txt',
  ]) {
    it(`re-renders ${name} byte for byte`, () => {
      const text = fixture(name);
      expect(roundTrip(text, name)).toBe(text);
    });
  }

  it('re-renders the founding case listing, whose trailing spaces the article stripped', () => {
    const text = fixture('case-founding.txt');
    const out = roundTrip(text, 'case-founding.txt');
    expect(stripTrailing(out)).toBe(text);
    expect(out.split('\n')[4]).toBe('  -> 192.0.2.226:80               Route   2      0          0         ');
  });

  for (const name of ['c8-fwmark-persistent-360.txt', 'c8-fwmark-persistent-3600.txt']) {
    it(`re-renders the real listing ${name} up to trailing spaces`, () => {
      const text = fixture(name);
      expect(stripTrailing(roundTrip(text, name))).toBe(stripTrailing(listingPart(text)));
    });
  }

  it('re-renders the real mh listing of corpus C7, whose archived copy shifted one column by a space', () => {
    const text = fixture('c7-mh-weight0.txt');
    const collapse = (s: string) => s.replace(/[ \t]+/g, ' ').replace(/ $/gm, '');
    expect(collapse(roundTrip(text, 'c7'))).toBe(collapse(listingPart(text)));
  });

  it('re-renders the single-service --rate --exact IPv6 listing without a version line', () => {
    const text = fixture('c11-rate-exact-ipv6-one-service.txt');
    const r = readIpvsadmList(text, 'c11');
    expect(r.value!.header).toBeUndefined();
    expect(r.value!.format).toBe('rate');
    expect(r.value!.exact).toBe(true);
    expect(roundTrip(text, 'c11')).toBe(listingPart(text));
  });
});

describe('readIpvsadmList', () => {
  it('reads the founding case with a shell prompt line before it', () => {
    const text = `[root@d1 ~]# ipvsadm -ln --sort\n${fixture('case-founding.txt')}`;
    const r = readIpvsadmList(text, 'director1.txt');
    expect(r.issues).toEqual([]);
    const l = r.value!;
    expect(l.command).toBe('[root@d1 ~]# ipvsadm -ln --sort');
    expect(l.header).toEqual({ version: '1.2.1', size: 4096 });
    expect(l.table.order).toBe('sorted');
    const svc = l.table.services[0]!;
    expect(svc.key).toEqual({
      kind: 'addr',
      protocol: 'TCP',
      address: { family: 'ipv4', addr: ipv4('192.0.2.208') },
      port: 80,
    });
    expect(svc.scheduler).toBe('rr');
    expect(svc.origin.pos).toEqual({ file: 'director1.txt', line: 5 });
    const d = svc.destinations[0]!;
    expect(d).toMatchObject({ port: 80, forwarding: { kind: 'route' }, weight: 2, activeConns: 0, inactConns: 0 });
    expect(d.origin.pos).toEqual({ file: 'director1.txt', line: 6 });
    expect(d.origin.via).toBe(svc.origin);
  });

  it('tolerates collapsed whitespace and CRLF line ends', () => {
    const text =
      'IP Virtual Server version 1.2.1 (size=4096)\r\nProt LocalAddress:Port Scheduler Flags\r\n-> RemoteAddress:Port Forward Weight ActiveConn InActConn\r\nFWM 10 wlc persistent 360 mask 255.255.255.0\r\n -> 192.168.39.7:0 Route 1 0 15\r\n';
    const r = readIpvsadmList(text, 'x');
    expect(r.issues).toEqual([]);
    const svc = r.value!.table.services[0]!;
    expect(svc.key).toEqual({ kind: 'fwmark', fwmark: 10, family: 'ipv4' });
    expect(svc.persistence).toEqual({ timeout: 360, netmask: 0xffffff00 });
    expect(svc.destinations[0]!.inactConns).toBe(15);
  });

  it('reads a negative fwmark printed by ipvsadm 1.31 back as the unsigned mark', () => {
    const r = readIpvsadmList(fixture('c19-negative-fwmark.txt'), 'c19');
    expect(r.value!.table.services[0]!.key).toEqual({ kind: 'fwmark', fwmark: 2882430849, family: 'ipv4' });
    // The host name of the real server is not numeric: reported, not guessed.
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([['ipvsadm-names', 5]]);
  });

  it('reads service names of a non-numeric listing as ports and keeps unknown host names symbolic with their lines', () => {
    const r = readIpvsadmList(fixture('c10-ipv6-names.txt'), 'c10');
    const codes = r.issues.map((i) => `${i.pos?.line}:${i.code}`);
    expect(codes).toEqual([
      '5:ipvsadm-port-name',
      '6:ipvsadm-symbolic-name',
      '7:ipvsadm-symbolic-name',
      '8:ipvsadm-symbolic-name',
      '9:ipvsadm-port-name',
      '10:ipvsadm-port-name',
      '11:ipvsadm-port-name',
    ]);
    expect(r.issues.find((i) => i.code === 'ipvsadm-symbolic-name')!.severity).toBe('warning');
    expect(r.value!.symbolic.map((e) => `${e.host}:${e.port}`)).toEqual([
      'sas-test-k8s0.net.yandex.net:6443',
      'sas-test-k8s1.net.yandex.net:6443',
      'sas-test-k8s2.net.yandex.net:6443',
    ]);
    const [https, dns] = r.value!.table.services;
    expect(https!.key).toMatchObject({ port: 443 });
    expect(https!.destinations).toEqual([]);
    expect(dns!.destinations.map((d) => d.port)).toEqual([53, 53]);
  });

  it('reports DPVS listings as not kernel IPVS and FullNat as unsupported, still reading the services', () => {
    const r = readIpvsadmList(fixture('c20-dpvs-b.txt'), 'dpvs');
    const codes = r.issues.map((i) => `${i.pos?.line}:${i.code}`);
    expect(codes).toContain('2:ipvsadm-not-kernel-ipvs');
    expect(codes).toContain('5:ipvsadm-unknown-service-option');
    expect(codes).toContain('6:ipvsadm-fullnat');
    expect(r.value!.table.services.map((s) => s.scheduler)).toEqual(['rr', 'conhash']);
  });

  it('reads the irregular 2010 listing with names and Local as issues, never throwing', () => {
    const r = readIpvsadmList(fixture('c21-irregular-local.txt'), 'c21');
    expect(r.value).toBeDefined();
    expect(r.issues.length).toBeGreaterThan(0);
    expect(r.issues.every((i) => i.pos !== undefined && i.pos.line > 0)).toBe(true);
  });

  it('reports a real server line before any service as an orphan', () => {
    const r = readIpvsadmList(fixture('c14c-fragment.txt'), 'frag');
    expect(r.issues.map((i) => `${i.pos?.line}:${i.code}`)).toEqual(['1:ipvsadm-orphan-destination']);
    expect(r.value!.table.services[0]!.destinations).toHaveLength(2);
  });

  it('reads a paste: prompts, the command, an elision, trailing output and a cat /proc/net/ip_vs are skipped and said', () => {
    const text = [
      'root@lb1:~# ipvsadm -L -n',
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.0.2.208:80 rr',
      '  -> 192.0.2.226:80               Route   1      0          0',
      '...',
      'TCP  192.0.2.208:443 rr',
      '  -> 192.0.2.227:443              Route   1      0          0',
      'root@lb1:~# cat /proc/net/ip_vs',
      'IP Virtual Server version 1.2.1 (size=4096)',
      'TCP  C00002D0:0050 rr',
      'root@lb1:~# ',
    ].join('\n');
    const r = readIpvsadmList(text, 'paste.txt');
    expect(r.issues.map((i) => `${i.pos?.line}:${i.severity}:${i.code}`)).toEqual([
      '7:warning:ipvsadm-skipped-line',
      '10:warning:ipvsadm-skipped-line',
      '11:warning:ipvsadm-second-listing',
    ]);
    expect(r.issues[0]!.message).toContain('an elision');
    expect(r.issues[1]!.message).toContain('a shell prompt or command');
    expect(r.value!.command).toBe('root@lb1:~# ipvsadm -L -n');
    expect(r.value!.table.services.map((s) => s.destinations.length)).toEqual([1, 1]);
  });

  it('reads a listing without -n through the names the scenario knows, and keeps the others symbolic', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  vip.example.com:http wlc',
      '  -> web1:http                    Route   1      0          0',
      '  -> web9.example.com:http        Route   1      0          0',
    ].join('\n');
    const hosts = new Map([
      ['vip.example.com', { family: 'ipv4' as const, addr: parseIpv4('192.0.2.208')! }],
      ['web1', { family: 'ipv4' as const, addr: parseIpv4('192.0.2.226')! }],
    ]);
    const r = readIpvsadmList(text, 'names.txt', hosts);
    const svc = r.value!.table.services[0]!;
    expect(svc.key).toMatchObject({ port: 80 });
    expect(svc.destinations.map((d) => d.port)).toEqual([80]);
    expect(r.issues.filter((i) => i.severity !== 'info').map((i) => `${i.pos?.line}:${i.code}`)).toEqual([
      '6:ipvsadm-symbolic-name',
    ]);
    expect(r.value!.symbolic).toMatchObject([
      { role: 'real-server', host: 'web9.example.com', port: 80, service: 'TCP 192.0.2.208:80' },
    ]);
    expect(r.value!.symbolic[0]!.assumption).toContain('a verdict for this service does not cover this one');
    expect(r.value!.symbolic[0]!.origin.pos).toMatchObject({ file: 'names.txt', line: 6 });
  });

  it('resolves names through /etc/hosts and /etc/services of a bundle; a symbolic service keeps its real servers as listed', () => {
    const etcHosts = readEtcHosts(
      ['# comment', '127.0.0.1 localhost', '192.0.2.208  lb-vip.corp lb-vip', '2001:db8::5 web6', 'garbage'].join('\n'),
      'etc/hosts',
    );
    expect(etcHosts.issues.map((i) => `${i.pos?.line}:${i.code}`)).toEqual(['5:etc-hosts-bad-line']);
    const etcServices = readEtcServices(
      ['myapp 8443/tcp app-tls # ours', 'myapp 9443/udp', 'other 70000/tcp'].join('\n'),
      'etc/services',
    );
    expect(etcServices.value!.get('app-tls')).toBe(8443);
    expect(etcServices.value!.get('myapp')).toBe(8443);
    expect(etcServices.issues.map((i) => `${i.pos?.line}:${i.code}`)).toEqual(['3:etc-services-bad-line']);
    const text = [
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  lb-vip:myapp rr',
      '  -> 192.0.2.226:app-tls          Masq    1      0          0',
      'TCP  [web6]:https rr',
      '  -> [web6]:https                 Local   1      0          0',
      'TCP  edge.example.net:custom rr',
      '  -> 192.0.2.227:custom           Route   1      0          0',
      'UDP  192.0.2.208:wibble rr',
    ].join('\n');
    const r = readIpvsadmList(text, 'n.txt', etcHosts.value, etcServices.value);
    expect(r.value!.table.services.map((s) => formatServiceKey(s.key))).toEqual([
      'TCP 192.0.2.208:8443',
      'TCP [2001:db8::5]:443',
    ]);
    expect(r.value!.table.services[0]!.destinations.map((d) => d.port)).toEqual([8443]);
    expect(r.value!.symbolic.map((e) => `${e.origin.pos?.line}:${e.role}:${e.host}:${e.port}`)).toEqual([
      '7:service:edge.example.net:custom',
      '8:real-server:192.0.2.227:custom',
      '9:service:192.0.2.208:wibble',
    ]);
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(r.issues.find((i) => i.pos?.line === 7)!.message).toContain("no probe's verdict covers them");
  });

  it('names the line and what was expected for malformed lines, and keeps what is certain', () => {
    const text = [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.0.2.208:80 rr',
      '  -> 192.0.2.226:80               Route   two    0          0',
      '  -> 192.0.2.227:80               Route   1      0          0',
      'TCP  192.0.2.300:80 rr',
      '  -> 192.0.2.228:80               Route   1      0          0',
      'UDP  192.0.2.208:53 rr persistent',
      'hello world',
      '  -> 192.0.2.229:53               Bridge  1      0          0',
    ].join('\n');
    const r = readIpvsadmList(text, 'bad.txt');
    expect(r.issues.map((i) => `${i.pos?.file}:${i.pos?.line}:${i.code}`)).toEqual([
      'bad.txt:5:ipvsadm-bad-destination',
      'bad.txt:7:ipvsadm-bad-service',
      'bad.txt:8:ipvsadm-destination-skipped',
      'bad.txt:9:ipvsadm-bad-service',
      'bad.txt:10:ipvsadm-skipped-line',
      'bad.txt:11:ipvsadm-bad-forward',
    ]);
    expect(r.issues[0]!.message).toContain('Forward Weight ActiveConn InActConn');
    expect(r.issues[1]!.message).toContain("'192.0.2.300' is not a numeric IPv4 address");
    const svcs = r.value!.table.services;
    expect(svcs).toHaveLength(2);
    expect(svcs[0]!.destinations.map((d) => d.port)).toEqual([80]);
    expect(svcs[1]!.persistence).toBeUndefined();
  });

  it('returns no value and one issue for input without a listing', () => {
    const r = readIpvsadmList('', 'empty.txt');
    expect(r.value).toBeUndefined();
    expect(r.issues.map((i) => i.code)).toEqual(['ipvsadm-empty']);
  });

  it('reads --nosort listings as kernel order', () => {
    const r = readIpvsadmList(`# ipvsadm -Ln --nosort\n${fixture('case-founding.txt')}`, 'x');
    expect(r.value!.table.order).toBe('kernel');
  });

  it('stops at a second listing with a warning', () => {
    const one = fixture('case-founding.txt');
    const r = readIpvsadmList(one + one, 'x');
    expect(r.issues.map((i) => `${i.pos?.line}:${i.code}`)).toEqual(['6:ipvsadm-second-listing']);
    expect(r.value!.table.services).toHaveLength(1);
  });
});

describe('writeIpvsadmList', () => {
  it('sorts like ipvsadm, including the signed-difference quirk for addresses 2^31 apart', () => {
    const mk = (a: string, port: number) => ({
      address: { family: 'ipv4' as const, addr: ipv4(a) },
      port,
      forwarding: { kind: 'route' as const },
      weight: 1,
      origin: { kind: 'implicit' as const, label: 't' },
    });
    const table: IpvsTable = {
      order: 'kernel',
      services: [
        {
          key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: ipv4('10.0.0.1') }, port: 80 },
          scheduler: 'rr',
          schedFlags: 0,
          onePacket: false,
          destinations: [mk('10.0.0.9', 80), mk('10.0.0.3', 81), mk('10.0.0.3', 80)],
          origin: { kind: 'implicit', label: 't' },
        },
        {
          key: { kind: 'addr', protocol: 'TCP', address: { family: 'ipv4', addr: ipv4('192.168.0.1') }, port: 80 },
          scheduler: 'rr',
          schedFlags: 0,
          onePacket: false,
          destinations: [],
          origin: { kind: 'implicit', label: 't' },
        },
      ],
    };
    const out = writeIpvsadmList(table).split('\n');
    expect(out.slice(3)).toEqual([
      'TCP  192.168.0.1:80 rr',
      'TCP  10.0.0.1:80 rr',
      '  -> 10.0.0.3:80                  Route   1      0          0         ',
      '  -> 10.0.0.3:81                  Route   1      0          0         ',
      '  -> 10.0.0.9:80                  Route   1      0          0         ',
      '',
    ]);
  });

  it('abbreviates large counters exactly like print_largenum', () => {
    expect(formatLargeNumber(99_999_999, false)).toBe(' 99999999');
    expect(formatLargeNumber(150_000_000, false)).toBe('  150000K');
    expect(formatLargeNumber(2_110_123_456, false)).toBe('    2110M');
    expect(formatLargeNumber(123_456_789_012_345, false)).toBe('     123T');
    expect(formatLargeNumber(2_110_123_456, true)).toBe(' 2110123456');
    expect(formatLargeNumber(0, true)).toBe('        0');
  });
});

describe('a huge pasted line', () => {
  it('is quoted cut at 160 characters, so the error after it is not buried', () => {
    const r = readIpvsadmList(`junk ${'x'.repeat(1_000_000)}\n`, 'big.txt');
    const ignored = r.issues.find((i) => i.code === 'ipvsadm-ignored-line');
    expect(ignored?.message.length).toBeLessThan(260);
    expect(ignored?.message).toContain('… (1000005 characters)');
    expect(r.issues.find((i) => i.code === 'ipvsadm-empty')?.message).toContain('in lines 1-2');
  });
});
