import { describe, expect, it } from 'vitest';
import { formatIssue } from '../source/issue.ts';
import { compilePveFirewall, fnv31aHex, ipsetChainName, macToLinkLocal, type PveNodeInput } from './compile.ts';
import { readFwConfig } from './fw-config.ts';
import { readGuestConfig } from './guest-config.ts';

function node(vmFw: string, opts: { conf?: string; cluster?: string } = {}): PveNodeInput {
  const cluster = readFwConfig(opts.cluster ?? '[OPTIONS]\nenable: 1\n', 'cluster.fw', 'cluster').value!;
  const fw = readFwConfig(vmFw, '100.fw', 'vm', { cluster }).value!;
  const config = readGuestConfig(
    opts.conf ?? 'name: lb1\nnet0: virtio=BC:24:11:00:00:0B,bridge=vmbr0,firewall=1\n',
    'qemu-server/100.conf',
    'qemu',
    '100',
  ).value!;
  return {
    cluster,
    host: readFwConfig('', 'host.fw', 'host').value!,
    guests: [{ config, fw }],
    nodeName: 'pve1',
    localNetwork: '192.0.2.0/24',
  };
}

const out4 = (n: PveNodeInput, chain: string) =>
  compilePveFirewall(n)
    .filter4.get(chain)
    ?.map((r) => r.text) ?? [];

describe('Proxmox firewall files', () => {
  it('reports a line before any section, an unknown option and an unparseable rule with file and line', () => {
    const r = readFwConfig(
      'junk\n[OPTIONS]\nbogus: 1\n[RULES]\nIN ACCEPT -p tcp -dport 80 -frobnicate 1\n',
      '100.fw',
      'vm',
    );
    expect(r.issues.map(formatIssue)).toEqual([
      '100.fw:1: warning: skip line - no section [pve-fw-no-section]',
      "100.fw:3: warning: can't parse option 'bogus: 1' [pve-fw-bad-option]",
      '100.fw:5: warning: unable to parse rule parameters: -frobnicate 1 [pve-fw-bad-rule]',
    ]);
  });

  it('keeps a rule with bad parameters but never compiles it', () => {
    const r = readFwConfig('[RULES]\nIN ACCEPT -dport 80\nIN ACCEPT -p tcp -dport 81\n', '100.fw', 'vm');
    expect(r.value!.rules[0]!.errors).toEqual([
      ['proto', "missing property - 'dport' requires this property"],
      ['dport', "protocol '' does not support ports"],
    ]);
    expect(r.issues[0]!.pos).toEqual({ file: '100.fw', line: 2 });
    const rules = out4(
      node('[OPTIONS]\nenable: 1\n[RULES]\nIN ACCEPT -dport 80\nIN ACCEPT -p tcp -dport 81\n'),
      'tap100i0-IN',
    );
    expect(rules).toContain('-A tap100i0-IN -p tcp --dport 81 -j ACCEPT');
    expect(rules.some((t) => t.includes('--dport 80'))).toBe(false);
  });

  it('does not recognise an [IPSET] section in host.fw (it has none)', () => {
    const r = readFwConfig('[RULES]\n[IPSET x]\n', 'host.fw', 'host');
    expect(r.issues.map(formatIssue)).toEqual([
      "host.fw:2: warning: errors in rule parameters: [IPSET x]; type: invalid rule type '[ipset' for rule_env 'host' (rule not compiled) [pve-fw-rule-errors]",
    ]);
  });

  it('reads a qemu-server NIC line: model=MAC, bridge, firewall, tag', () => {
    const r = readGuestConfig(
      'net1: virtio=BC:24:11:5E:7A:01,bridge=vmbr0,firewall=1,tag=20\n[snap]\nnet1: e1000=00:00:00:00:00:01\n',
      '101.conf',
      'qemu',
      '101',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.nics).toMatchObject([
      { netid: 'net1', index: 1, mac: 'BC:24:11:5E:7A:01', bridge: 'vmbr0', firewall: true, tag: 20 },
    ]);
  });

  it('names what is wrong with a NIC line, with file and line', () => {
    const r = readGuestConfig(
      'net0: virtio=zz,bridge=vmbr0\nnet1: virtio=BC:24:11:00:00:01,tag=5000\n',
      '102.conf',
      'qemu',
      '102',
    );
    expect(r.issues.map(formatIssue)).toEqual([
      "102.conf:1: error: net0: expected a MAC address, got 'zz' [pve-guest-bad-net]",
      '102.conf:2: error: net1: expected tag=1..4094, got tag=5000 [pve-guest-bad-net]',
    ]);
  });
});

describe('pve-firewall quirks (fact sheet §8)', () => {
  it('an explicit ipfilter-netN set turns the IP filter on even with ipfilter: 0', () => {
    const rules = out4(node('[OPTIONS]\nenable: 1\nipfilter: 0\n[IPSET ipfilter-net0]\n192.0.2.11\n'), 'tap100i0-OUT');
    expect(rules).toContain('-A tap100i0-OUT -m set ! --match-set PVEFW-100-ipfilter-net0-v4 src -j DROP');
  });

  it('a QEMU VM with ipfilter: 1 and no set gets an empty IPv4 set (and no ARP filter)', () => {
    const out = compilePveFirewall(node('[OPTIONS]\nenable: 1\nipfilter: 1\n'));
    expect(out.ipsets.get('PVEFW-100-ipfilter-net0-v4')!.entries).toEqual([]);
    expect(out.ipsets.get('PVEFW-100-ipfilter-net0-v6')!.entries.map((e) => e.cidr)).toEqual([
      'fe80::/10',
      'fe80::be24:11ff:fe00:b',
    ]);
    expect([...out.ebtables.keys()]).not.toContain('tap100i0-OUT-ARP');
  });

  it('DHCP is allowed unless dhcp: 0', () => {
    expect(out4(node('[OPTIONS]\nenable: 1\n'), 'tap100i0-OUT')[1]).toBe(
      '-A tap100i0-OUT -p udp --sport 68 --dport 67 -g PVEFW-SET-ACCEPT-MARK',
    );
    expect(out4(node('[OPTIONS]\nenable: 1\ndhcp: 0\n'), 'tap100i0-OUT').some((t) => t.includes('--dport 67'))).toBe(
      false,
    );
  });

  it('hashes ipset names that are too long (4-digit VMIDs, net10+)', () => {
    expect(ipsetChainName('1000', 'ipfilter-net0', 4)).toBe('PVEFW-70A81F3F');
    expect(ipsetChainName('100', 'ipfilter-net10', 4)).toBe('PVEFW-239002E4');
    expect(fnv31aHex('100-a-longer-name-which-translates-into-fnv-digest-v4')).toBe('4ABB0882');
    expect(ipsetChainName('100', 'ipfilter-net0', 4)).toBe('PVEFW-100-ipfilter-net0-v4');
  });

  it('derives the link-local address from the MAC', () => {
    expect(macToLinkLocal('0E:0B:38:B8:B3:21')).toBe('fe80::c0b:38ff:feb8:b321');
  });

  it('processes NICs in string order of the key (net10 before net2)', () => {
    const conf =
      'net2: virtio=BC:24:11:00:00:02,bridge=vmbr0,firewall=1\nnet10: virtio=BC:24:11:00:00:10,bridge=vmbr0,firewall=1\n';
    expect(out4(node('[OPTIONS]\nenable: 1\n', { conf }), 'PVEFW-FWBR-OUT')).toEqual([
      '-A PVEFW-FWBR-OUT -m physdev --physdev-is-bridged --physdev-in tap100i10 -j tap100i10-OUT',
      '-A PVEFW-FWBR-OUT -m physdev --physdev-is-bridged --physdev-in tap100i2 -j tap100i2-OUT',
    ]);
  });

  it('expands a macro with the user options and logs before the rule', () => {
    const rules = out4(
      node('[OPTIONS]\nenable: 1\n[RULES]\nIN DNS(ACCEPT) -source 198.51.100.0/24 -log info\n'),
      'tap100i0-IN',
    );
    expect(rules.filter((t) => t.includes('--dport 53'))).toEqual([
      '-A tap100i0-IN -s 198.51.100.0/24 -p udp --dport 53 -m limit --limit 1/sec -j NFLOG --nflog-prefix ":100:6:tap100i0-IN: ACCEPT: "',
      '-A tap100i0-IN -s 198.51.100.0/24 -p udp --dport 53 -j ACCEPT',
      '-A tap100i0-IN -s 198.51.100.0/24 -p tcp --dport 53 -m limit --limit 1/sec -j NFLOG --nflog-prefix ":100:6:tap100i0-IN: ACCEPT: "',
      '-A tap100i0-IN -s 198.51.100.0/24 -p tcp --dport 53 -j ACCEPT',
    ]);
  });

  it('generates nothing when cluster.fw does not enable the firewall', () => {
    const n = node('[OPTIONS]\nenable: 1\n', { cluster: '[OPTIONS]\nenable: 0\n' });
    const out = compilePveFirewall(n);
    expect(out.enabled).toBe(false);
    expect(out.filter4.size).toBe(0);
  });

  it('traces the ipfilter rule back to the option and the VM config line', () => {
    const r = compilePveFirewall(node('[OPTIONS]\nenable: 1\nipfilter: 1\n'))
      .filter4.get('tap100i0-OUT')!
      .find((x) => x.text.includes('match-set'))!;
    expect(r.origin.label).toBe('100.fw option ipfilter: 1');
    expect(r.origin.pos).toEqual({ file: '100.fw', line: 3 });
    expect(r.origin.via?.label).toBe('VM 100 net0 (tap100i0, firewall=1)');
    expect(r.origin.via?.pos).toEqual({ file: 'qemu-server/100.conf', line: 2 });
  });
});
