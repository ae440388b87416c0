import { describe, expect, it } from 'vitest';
import { readIpAddr } from './ip-addr.ts';

// As iproute2 6.x prints them (altnames, `@NONE`, `@ifN`, VMAC macvlans, bonds with permaddr).
const PLAIN = `1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: ens3: <BROADCAST,MULTICAST,SLAVE,UP,LOWER_UP> mtu 1500 qdisc fq_codel master bond0 state UP group default qlen 1000
    link/ether 52:54:00:aa:00:01 brd ff:ff:ff:ff:ff:ff
    altname enp0s3
3: ens4: <BROADCAST,MULTICAST,SLAVE,UP,LOWER_UP> mtu 1500 qdisc fq_codel master bond0 state UP group default qlen 1000
    link/ether 52:54:00:aa:00:01 brd ff:ff:ff:ff:ff:ff permaddr 52:54:00:aa:00:02
    altname enp0s4
4: bond0: <BROADCAST,MULTICAST,MASTER,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 52:54:00:aa:00:01 brd ff:ff:ff:ff:ff:ff
    inet 198.51.100.11/24 brd 198.51.100.255 scope global noprefixroute bond0
       valid_lft forever preferred_lft forever
5: bond0.20@bond0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 52:54:00:aa:00:01 brd ff:ff:ff:ff:ff:ff
    inet 203.0.113.11/24 brd 203.0.113.255 scope global bond0.20
       valid_lft forever preferred_lft forever
6: vrrp.51@bond0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000
    link/ether 00:00:5e:00:01:33 brd ff:ff:ff:ff:ff:ff
    inet 198.51.100.100/32 scope global vrrp.51
       valid_lft forever preferred_lft forever
7: tunl0@NONE: <NOARP,UP,LOWER_UP> mtu 1480 qdisc noqueue state UNKNOWN group default qlen 1000
    link/ipip 0.0.0.0 brd 0.0.0.0
    inet 198.51.100.100/32 scope global tunl0
       valid_lft forever preferred_lft forever
8: eth0@if12: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default qlen 1000
    link/ether 02:42:ac:11:00:02 brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 172.17.0.2/16 brd 172.17.255.255 scope global eth0
       valid_lft forever preferred_lft forever
`;

const DETAILED = `3: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000
    link/ether 52:54:00:bb:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 1  allmulti 0 minmtu 68 maxmtu 65535
    altname enp0s3
9: vip0@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 00:00:5e:00:01:0a brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 68 maxmtu 65535
    macvlan mode private bcqueuelen 1000 usedbcqueuelen 1000 addrgenmode eui64 numtxqueues 1 numrxqueues 1
10: mgmt@eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000
    link/ether 52:54:00:bb:00:01 brd ff:ff:ff:ff:ff:ff promiscuity 0  allmulti 0 minmtu 0 maxmtu 65535
    vlan protocol 802.1Q id 300 <REORDER_HDR> addrgenmode eui64 numtxqueues 1 numrxqueues 1
`;

describe('ip addr: the device kinds operators have', () => {
  it('infers bonds, slaves’ permaddr, VLANs, VMAC macvlans, tunl0@NONE and veths from plain output', () => {
    const r = readIpAddr(PLAIN, 'guest/ip-addr.txt');
    expect(r.issues).toEqual([]);
    const by = new Map(r.value!.map((l) => [l.name, l]));
    expect(by.get('bond0')!.devKind).toBe('bond');
    expect(by.get('ens3')!.master).toBe('bond0');
    expect(by.get('ens4')!.permaddr).toBe('52:54:00:aa:00:02');
    expect([by.get('bond0.20')!.devKind, by.get('bond0.20')!.vlanId, by.get('bond0.20')!.lower]).toEqual([
      'vlan',
      20,
      'bond0',
    ]);
    expect([by.get('vrrp.51')!.devKind, by.get('vrrp.51')!.lower]).toEqual(['macvlan', 'bond0']);
    expect(by.get('tunl0')!.lower).toBeUndefined();
    expect(by.get('tunl0')!.linkType).toBe('ipip');
    expect([by.get('eth0')!.devKind, by.get('eth0')!.peerIndex, by.get('eth0')!.lower, by.get('eth0')!.mtu]).toEqual([
      'veth',
      12,
      undefined,
      1450,
    ]);
  });

  it('takes the kind, VLAN id and macvlan mode from `ip -d` detail lines whatever the names', () => {
    const r = readIpAddr(DETAILED, 'guest/ip-link.txt');
    expect(r.issues).toEqual([]);
    const by = new Map(r.value!.map((l) => [l.name, l]));
    expect(by.get('eth0')!.devKind).toBeUndefined();
    expect([by.get('vip0')!.devKind, by.get('vip0')!.mode]).toEqual(['macvlan', 'private']);
    expect([by.get('mgmt')!.devKind, by.get('mgmt')!.vlanId]).toEqual(['vlan', 300]);
  });
});
