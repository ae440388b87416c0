import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { writeIpvsadmList } from './ipvsadm-list-writer.ts';
import { readIpvsadmSave, writeIpvsadmSave } from './ipvsadm-save.ts';
import { readKeepalivedConf } from './keepalived.ts';

const DIR = fileURLToPath(new URL('../../fixtures/ipvs/keepalived/', import.meta.url));
const fixture = (name: string) => readFileSync(DIR + name, 'utf8');
const codes = (issues: readonly { code: string; pos?: { line: number } }[]) =>
  issues.map((i) => `${i.pos?.line}:${i.code}`);

describe('readKeepalivedConf on the fact sheet sample', () => {
  it('programs exactly the IPVS state the fact sheet gives (ipvsadm -S -n)', () => {
    const r = readKeepalivedConf(fixture('fact-sheet-minimal-dr.conf'), 'keepalived.conf');
    expect(r.issues).toEqual([]);
    expect(writeIpvsadmSave(r.value!.table)).toBe(
      '-A -t 192.168.122.100:80 -s rr -p 50\n-a -t 192.168.122.100:80 -r 192.168.122.11:80 -g -w 1\n',
    );
  });

  it('round-trips through the save format to the same table', () => {
    const r = readKeepalivedConf(fixture('fact-sheet-minimal-dr.conf'), 'keepalived.conf');
    const save = writeIpvsadmSave(r.value!.table);
    const back = readIpvsadmSave(save, 'save');
    expect(back.issues).toEqual([]);
    expect(writeIpvsadmSave(back.value!.table)).toBe(save);
    expect(writeIpvsadmList(back.value!.table)).toBe(writeIpvsadmList(r.value!.table));
  });

  it('keeps the health checker as data with inherited defaults', () => {
    const v = readKeepalivedConf(fixture('fact-sheet-minimal-dr.conf'), 'k').value!;
    const vs = v.virtualServers[0]!;
    expect(vs.delayLoop).toBe(6);
    const rs = vs.realServers[0]!;
    expect(rs.checkers).toHaveLength(1);
    expect(rs.checkers[0]).toMatchObject({ type: 'TCP_CHECK', connectTimeout: 3, retry: 1, delayBeforeRetry: 1 });
    expect(rs.checkers[0]!.pos.line).toBe(9);
    expect(v.table.services[0]!.destinations[0]!.origin.pos?.line).toBe(7);
    expect(v.table.services[0]!.origin.pos?.line).toBe(1);
  });
});

describe("keepalived's defaults", () => {
  it('makes a service without protocol UDP, real servers without lb_kind NAT, and wlc without lb_algo, each reported', () => {
    const r = readKeepalivedConf(fixture('defaults.conf'), 'defaults.conf');
    expect(codes(r.issues)).toEqual([
      '2:keepalived-default-protocol',
      '2:keepalived-default-scheduler',
      '2:keepalived-default-method',
    ]);
    expect(r.issues.every((i) => i.severity === 'warning')).toBe(true);
    const svc = r.value!.table.services[0]!;
    expect(svc.key).toMatchObject({ kind: 'addr', protocol: 'UDP', port: 1358 });
    expect(svc.scheduler).toBe('wlc');
    // Kernel order: the last real_server of the file is the head of the list.
    expect(svc.destinations.map((d) => [d.forwarding?.kind, d.port, d.weight])).toEqual([
      ['masq', 0, 2],
      ['masq', 1358, 1],
    ]);
    expect(writeIpvsadmSave(svc ? r.value!.table : r.value!.table)).toBe(
      [
        '-A -u 10.10.10.2:1358 -s wlc -p 50',
        '-a -u 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1',
        '-a -u 10.10.10.2:1358 -r 192.168.200.3:0 -m -w 2',
        '',
      ].join('\n'),
    );
  });

  it('forces persistence 360 for a virtual server without port', () => {
    const r = readKeepalivedConf('virtual_server 10.0.0.1 {\n  protocol TCP\n  lb_algo rr\n  lb_kind DR\n}\n', 'k');
    expect(codes(r.issues)).toEqual(['1:keepalived-zero-port']);
    expect(r.value!.table.services[0]!.persistence).toEqual({ timeout: 360, netmask: 0xffffffff });
  });
});

describe('readKeepalivedConf on a full director configuration', () => {
  const r = readKeepalivedConf(fixture('director-full.conf'), 'director.conf');
  const v = r.value!;

  it('reads it without errors, warning once per real server whose port DR cannot honour', () => {
    expect(codes(r.issues)).toEqual(['37:keepalived-port-ignored', '51:keepalived-port-ignored']);
    expect(r.issues[0]!.message).toBe(
      'DR cannot remap ports: real server port 80 is replaced by the service port 8080',
    );
  });

  it('reads global_defs items that touch LVS and VRRP', () => {
    expect(v.globals).toEqual({
      routerId: 'LVS_DIRECTOR1',
      vrrpStrict: true,
      lvsTimeouts: { tcp: 7200, tcpfin: 120, udp: 300 },
      lvsSyncDaemon: { interface: 'eth0', instance: 'VI_1' },
    });
  });

  it('reads the vrrp_instance basics, with vrrp_strict turning accept off below priority 255', () => {
    const vi = v.vrrpInstances[0]!;
    expect(vi).toMatchObject({
      name: 'VI_1',
      state: 'MASTER',
      interface: 'eth0',
      virtualRouterId: 51,
      priority: 150,
      advertInt: 1,
      useVmac: true,
      vmac: '00:00:5e:00:01:33',
      strict: true,
      accept: false,
    });
    expect(vi.virtualIpaddresses.map((x) => [x.address.addr, x.prefixLength, x.dev])).toEqual([
      [ipv4('192.168.122.100'), 24, 'eth0'],
      [ipv4('192.168.122.101'), undefined, undefined],
    ]);
  });

  it('expands the virtual_server_group into one service per address, range member and fwmark', () => {
    expect(writeIpvsadmSave(v.table)).toBe(
      [
        '-A -t 192.168.122.100:80 -s wlc',
        '-a -t 192.168.122.100:80 -r 192.168.122.11:80 -g -w 3',
        '-a -t 192.168.122.100:80 -r 192.168.122.12:80 -g -w 1',
        '-A -t 192.168.122.110:8080 -s wlc',
        '-a -t 192.168.122.110:8080 -r 192.168.122.11:8080 -g -w 3',
        '-a -t 192.168.122.110:8080 -r 192.168.122.12:8080 -g -w 1',
        '-A -t 192.168.122.111:8080 -s wlc',
        '-a -t 192.168.122.111:8080 -r 192.168.122.11:8080 -g -w 3',
        '-a -t 192.168.122.111:8080 -r 192.168.122.12:8080 -g -w 1',
        '-A -t 192.168.122.112:8080 -s wlc',
        '-a -t 192.168.122.112:8080 -r 192.168.122.11:8080 -g -w 3',
        '-a -t 192.168.122.112:8080 -r 192.168.122.12:8080 -g -w 1',
        '-A -t [2001:db8::1]:443 -s mh -b mh-fallback',
        '-a -t [2001:db8::1]:443 -r [2001:db8:42::1]:8443 -m -w 2',
        '-a -t [2001:db8::1]:443 -r [2001:db8:42::2]:443 -g -w 1',
        '-A -f 7 -s wlc',
        '-a -f 7 -r 192.168.122.11:0 -g -w 3',
        '-a -f 7 -r 192.168.122.12:0 -g -w 1',
        '-A -f 10 -s sh -p 360 -M 255.255.255.0 -b sh-fallback,sh-port',
        '-a -f 10 -r 10.0.1.21:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
        '',
      ].join('\n'),
    );
  });

  it('keeps thresholds, inhibit_on_failure, checkers and the sorry server as data', () => {
    const group = v.virtualServers[0]!;
    expect(group.form).toBe('group');
    expect(group.services).toHaveLength(5);
    expect(group.realServers.map((x) => x.inhibitOnFailure)).toEqual([false, true]);
    const http = group.realServers[0]!.checkers[0]!;
    expect(http).toMatchObject({ type: 'HTTP_GET', connectTimeout: 3, retry: 3, delayBeforeRetry: 2 });
    expect(http.urls).toEqual([{ path: '/health', statusCode: '200' }]);
    expect(group.realServers[1]!.checkers[0]).toMatchObject({ type: 'TCP_CHECK', connectPort: 80, connectTimeout: 5 });
    const d = group.services[0]!.destinations.find((x) => x.weight === 3)!;
    expect([d.upperThreshold, d.lowerThreshold]).toEqual([100, 50]);
    const misc = v.virtualServers[1]!.realServers[0]!.checkers[0]!;
    expect(misc).toMatchObject({ type: 'MISC_CHECK', miscPath: '/usr/local/bin/check_rs 10.0.1.21', retry: 0 });
    expect(v.virtualServers[2]!.sorryServer?.port).toBe(443);
  });

  it('renders the table as a canonical ipvsadm -L -n listing', () => {
    const out = writeIpvsadmList(v.table).split('\n');
    expect(out).toContain('TCP  [2001:db8::1]:443 mh (mh-fallback)');
    expect(out).toContain('FWM  10 sh (sh-fallback,sh-port) persistent 360 mask 255.255.255.0');
    expect(out).toContain('  -> 10.0.1.21:0                  Tunnel  1      0          0         ');
  });
});

describe('keepalived syntax errors and unsupported constructs', () => {
  const r = readKeepalivedConf(fixture('syntax-errors.conf'), 'bad.conf');

  it('reports each problem with its line', () => {
    expect(codes(r.issues)).toEqual([
      '13:keepalived-syntax',
      '25:keepalived-unclosed-block',
      '21:keepalived-unclosed-block',
      '1:keepalived-include',
      '3:keepalived-unknown-scheduler',
      '4:keepalived-bad-method',
      '2:keepalived-default-method',
      '6:keepalived-bad-real-server',
      '10:keepalived-bad-value',
      '15:keepalived-bad-value',
      '16:keepalived-bad-value',
      '18:keepalived-bad-vip',
      '14:keepalived-missing-argument',
      '14:keepalived-no-interface',
    ]);
    expect(r.issues.find((i) => i.code === 'keepalived-include')!.unsupported).toBe(true);
    expect(r.issues.find((i) => i.code === 'keepalived-bad-method')!.message).toContain("'dr'");
  });

  it('still yields what is certain: the services and the valid real server', () => {
    const svcs = r.value!.table.services;
    expect(svcs.map((s) => s.scheduler)).toEqual(['wlc', 'rr']);
    expect(svcs[0]!.destinations.map((d) => d.address.addr)).toEqual([ipv4('192.168.122.12')]);
    expect(svcs[1]!.destinations.map((d) => d.port)).toEqual([8443]);
  });

  it('reports conditional lines, parameters and sequence blocks as unsupported', () => {
    const x = readKeepalivedConf('@lb1 global_defs {\n}\n$IF=eth0\n~SEQ(i, 1, 1, 3)\n', 'x');
    expect(codes(x.issues)).toEqual([
      '1:keepalived-conditional',
      '3:keepalived-parameter',
      '4:keepalived-sequence',
      '0:keepalived-empty',
    ]);
    expect(x.issues.slice(0, 3).every((i) => i.unsupported)).toBe(true);
  });

  it('reads comments starting with # or ! anywhere on a line, and quoted strings with spaces', () => {
    const x = readKeepalivedConf(
      'virtual_server 10.0.0.1 80 { ! inline\n protocol TCP # c\n lb_algo rr\n lb_kind DR\n real_server 10.0.0.2 80 { MISC_CHECK { misc_path "/bin/check a b" } }\n}\n',
      'x',
    );
    expect(x.issues).toEqual([]);
    expect(x.value!.virtualServers[0]!.realServers[0]!.checkers[0]!.miscPath).toBe('/bin/check a b');
  });

  it('returns no value for empty input', () => {
    const x = readKeepalivedConf('# nothing\n', 'x');
    expect(x.value).toBeUndefined();
    expect(codes(x.issues)).toEqual(['0:keepalived-empty']);
  });
});
