import { describe, expect, it } from 'vitest';
import { formatIpv4 } from '../addr/ipv4.ts';
import { formatIssue } from '../source/issue.ts';
import { readIpAddr } from './ip-addr.ts';
import { readIpRoute } from './ip-route.ts';
import { readSysctl } from './sysctl.ts';

const IP_ADDR = `[root@rs2 ~]# ip addr
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
    inet 198.51.100.10/32 scope global lo:vip
       valid_lft forever preferred_lft forever
2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000
    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff
    inet 198.51.100.21/24 brd 198.51.100.255 scope global eth0
       valid_lft forever preferred_lft forever
    inet 198.51.100.30/24 brd 198.51.100.255 scope global secondary eth0:1
       valid_lft forever preferred_lft forever
    inet6 fe80::5054:ff:fe12:3456/64 scope link
       valid_lft forever preferred_lft forever
3: eth0.100@eth0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop master br1 state DOWN group default qlen 1000
    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff
`;

describe('ip addr reader', () => {
  it('reads interfaces, labels, secondary addresses, masters and lower devices', () => {
    const r = readIpAddr(IP_ADDR, 'rs2/ip-addr.txt');
    expect(r.issues).toEqual([]);
    const links = r.value!;
    expect(links.map((l) => l.name)).toEqual(['lo', 'eth0', 'eth0.100']);
    expect(links[0]!.addrs.map((a) => `${formatIpv4(a.prefix.addr)}/${a.prefix.len} ${a.label}`)).toEqual([
      '127.0.0.1/8 lo',
      '198.51.100.10/32 lo:vip',
    ]);
    expect(links[1]!.addrs[1]!.secondary).toBe(true);
    expect(links[1]!.addrs[1]!.label).toBe('eth0:1');
    expect(links[1]!.mac).toBe('52:54:00:12:34:56');
    expect(links[2]!.lower).toBe('eth0');
    expect(links[2]!.master).toBe('br1');
    expect(links[2]!.up).toBe(false);
    expect(links[1]!.addrs[0]!.pos).toEqual({ file: 'rs2/ip-addr.txt', line: 10 });
  });

  it('reads ip -j addr JSON the same way', () => {
    const json = JSON.stringify([
      {
        ifindex: 2,
        ifname: 'eth0',
        flags: ['BROADCAST', 'UP'],
        mtu: 1500,
        link_type: 'ether',
        address: '52:54:00:aa:bb:cc',
        addr_info: [{ family: 'inet', local: '203.0.113.5', prefixlen: 24, label: 'eth0' }],
      },
    ]);
    const r = readIpAddr(json, 'x.json');
    expect(r.issues).toEqual([]);
    expect(formatIpv4(r.value![0]!.addrs[0]!.prefix.addr)).toBe('203.0.113.5');
  });

  it('names the file and line of a malformed address', () => {
    const r = readIpAddr(
      '2: eth0: <UP> mtu 1500\n    link/ether 52:54:00:aa:bb:cc brd ff:ff:ff:ff:ff:ff\n    inet 010.0.0.1/24 scope global eth0\n',
      'g/ip.txt',
    );
    expect(r.issues.map(formatIssue)).toEqual([
      'g/ip.txt:3: error: expected an IPv4 address/prefix after "inet", found "010.0.0.1/24" [ip-addr.inet]',
    ]);
  });

  it('rejects text that is not ip addr output', () => {
    const r = readIpAddr('hello world\n', 'g/ip.txt');
    expect(r.issues.length).toBeGreaterThan(0);
    expect(r.issues[0]!.pos).toEqual({ file: 'g/ip.txt', line: 1 });
  });
});

describe('ip route reader', () => {
  it('reads default, connected, typed and metric routes', () => {
    const r = readIpRoute(
      'default via 198.51.100.1 dev eth0 proto dhcp metric 100\n198.51.100.0/24 dev eth0 proto kernel scope link src 198.51.100.21\nblackhole 203.0.113.0/24\n',
      'r.txt',
    );
    expect(r.issues).toEqual([]);
    const [d, c, b] = r.value!;
    expect(d!.dst.len).toBe(0);
    expect(formatIpv4(d!.via!)).toBe('198.51.100.1');
    expect(d!.metric).toBe(100);
    expect(formatIpv4(c!.src!)).toBe('198.51.100.21');
    expect(b!.type).toBe('blackhole');
  });

  it('reports a bad gateway with its line', () => {
    const r = readIpRoute('default via 198.51.100.300 dev eth0\n', 'r.txt');
    expect(r.issues.map(formatIssue)).toEqual([
      'r.txt:1: error: expected an IPv4 address after "via", found "198.51.100.300" [ip-route.addr]',
    ]);
  });
});

describe('sysctl reader', () => {
  it('reads sysctl -a and sysctl.conf styles, normalising slashes', () => {
    const r = readSysctl('# comment\nnet.ipv4.conf.all.arp_ignore = 1\nnet/ipv4/conf/lo/arp_announce=2\n', 's.txt');
    expect(r.issues).toEqual([]);
    expect(r.value!.get('net.ipv4.conf.all.arp_ignore')!.value).toBe('1');
    expect(r.value!.get('net.ipv4.conf.lo.arp_announce')!.pos.line).toBe(3);
  });

  it('names the line that is not key = value', () => {
    const r = readSysctl('net.ipv4.ip_forward = 1\nthis is not a sysctl\n', 's.txt');
    expect(r.issues.map(formatIssue)).toEqual([
      's.txt:2: error: expected "key = value", found "this is not a sysctl" [sysctl.syntax]',
    ]);
  });
});
