import { describe, expect, it } from 'vitest';
import { readRecording as read } from '../../test/support/recordings.ts';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { renderIptablesS } from '../netfilter/iptables-render.ts';
import { renderOriginChain } from '../source/origin.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import type { NwFilter } from './nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from './nwfilter-xml.ts';

function binding(p: string) {
  const r = readFilterBindingXml(read(p), p);
  expect(r.issues).toEqual([]);
  return r.value!;
}

function filter(p: string): NwFilter {
  const r = readNwfilterXml(read(p), p);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return r.value!;
}

function compileCase(bindingFile: string, custom: NwFilter[] = []) {
  return compileBinding(binding(bindingFile), filterRegistry(custom));
}

describe('compiling the libvirt 9.0.0 recordings', () => {
  it('reproduces s1 (clean-traffic, one IP) byte for byte', () => {
    const c = compileCase('s1-clean-traffic-one-ip/binding.xml');
    expect(c.issues).toEqual([]);
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(read('s1-clean-traffic-one-ip/ebtables-t-nat-L.txt'));
  });

  it('reproduces the 126 commands libvirt ran for s1', () => {
    const c = compileCase('s1-clean-traffic-one-ip/binding.xml');
    expect(c.commands.join('\n')).toBe(read('s1-clean-traffic-one-ip/commands.txt').trimEnd());
  });

  it('reproduces s2 (IP list) listing and commands', () => {
    const c = compileCase('s2-clean-traffic-ip-plus-vip/binding.xml');
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(read('s2-clean-traffic-ip-plus-vip/ebtables-t-nat-L.txt'));
    expect(c.commands.join('\n')).toBe(read('s2-clean-traffic-ip-plus-vip/commands.txt').trimEnd());
  });

  it('installs the IP-learning basic rules when IP is missing (s3)', () => {
    const c = compileCase('s3-clean-traffic-ip-learning/binding.xml');
    expect(c.mode).toBe('ip-learning');
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(read('s3-clean-traffic-ip-learning/ebtables-t-nat-L.txt'));
    const recorded = read('s3-clean-traffic-ip-learning/commands.txt').trimEnd().split('\n');
    // The recording ends with the drop-all rules applied when the daemon stopped; the rest is the learning set-up.
    expect(c.commands).toEqual(recorded.slice(0, c.commands.length));
  });

  it('reproduces s4 (custom director filter with a tcp rule): listing, iptables -S and all commands', () => {
    const c = compileCase('s4-custom-director-filter/binding.xml', [
      filter('s4-custom-director-filter/filter-lvs-director-traffic.xml'),
    ]);
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(read('s4-custom-director-filter/ebtables-t-nat-L.txt'));
    expect(c.ipInstances).toHaveLength(1);
    expect(c.issues).toEqual([]);
    expect(renderIptablesS(c.filter4)).toBe(read('s4-custom-director-filter/iptables-S.txt'));
    expect(c.commands.join('\n')).toBe(read('s4-custom-director-filter/commands.txt').trimEnd());
  });

  it('shows no libvirt chains in iptables -S for clean-traffic on a fresh host (s2, s3)', () => {
    for (const dir of ['s2-clean-traffic-ip-plus-vip', 's3-clean-traffic-ip-learning']) {
      const c = compileBinding(binding(`${dir}/binding.xml`), filterRegistry([]), { libvirtBaseChains: false });
      expect(renderIptablesS(c.filter4)).toBe(read(`${dir}/iptables-S.txt`));
    }
  });

  it('lets the top-level IP win over inner filterref parameters (s5 with IP)', () => {
    const f = filter('s5-parameter-precedence-with-ip/filter-prec-test.xml');
    const c = compileCase('s5-parameter-precedence-with-ip/binding.xml', [f]);
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(
      read('s5-parameter-precedence-with-ip/ebtables-t-nat-L.txt'),
    );
  });

  it('uses inner filterref parameters when the binding has no IP, but never an inner MAC (s5 without IP)', () => {
    const f = filter('s5-parameter-precedence-without-ip/filter-prec-test.xml');
    const c = compileCase('s5-parameter-precedence-without-ip/binding.xml', [f]);
    expect(c.mode).toBe('filter');
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(
      read('s5-parameter-precedence-without-ip/ebtables-t-nat-L.txt'),
    );
  });

  it('reproduces s6 (LVS-DR workaround with parallel iterators) listing and commands', () => {
    const custom = [
      filter('s6-lvs-dr-director-workaround/filter-clean-traffic-lvs-dr.xml'),
      filter('s6-lvs-dr-director-workaround/filter-no-ip-spoofing-lvs-dr.xml'),
    ];
    const c = compileCase('s6-lvs-dr-director-workaround/binding.xml', custom);
    expect(c.issues).toEqual([]);
    expect(renderEbtablesList(c.nat, { style: 'nft' })).toBe(
      read('s6-lvs-dr-director-workaround/ebtables-t-nat-L.txt'),
    );
    expect(c.commands.join('\n')).toBe(read('s6-lvs-dr-director-workaround/commands.txt').trimEnd());
  });

  it('refuses s6 written with $RS_MAC and $VIP on one iterator, with libvirt wording, installing nothing', () => {
    const text = read('s6-lvs-dr-director-workaround/filter-no-ip-spoofing-lvs-dr.xml')
      .replace('$RS_MAC[@1]', '$RS_MAC')
      .replace('$VIP[@2]', '$VIP');
    const f = readNwfilterXml(text, 'no-ip-spoofing-lvs-dr.xml').value!;
    const c = compileCase('s6-lvs-dr-director-workaround/binding.xml', [
      filter('s6-lvs-dr-director-workaround/filter-clean-traffic-lvs-dr.xml'),
      f,
    ]);
    expect(c.mode).toBe('failed');
    expect(c.issues.map((i) => i.message)).toEqual([
      'Cardinality of list items must be the same for processing them in parallel',
    ]);
    expect(c.nat.chains.every((ch) => ch.rules.length === 0)).toBe(true);
  });
});

describe('origins of compiled rules', () => {
  it('trace the final DROP of I-vnet0-ipv4-ip back to no-ip-spoofing, clean-traffic and the domain interface', async () => {
    const { readDomainXml, bindingForInterface } = await import('./domain-xml.ts');
    const xml = `<domain type='kvm'>
  <name>r2-10105</name>
  <devices>
    <interface type='bridge'>
      <mac address='02:00:73:b6:53:c8'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='192.0.2.200'/>
      </filterref>
    </interface>
  </devices>
</domain>`;
    const d = readDomainXml(xml, 'r2-10105.xml').value!;
    const b = bindingForInterface(d, d.interfaces[0]!).value!;
    const c = compileBinding(b, filterRegistry());
    const chain = c.nat.chains.find((x) => x.name === 'I-vnet0-ipv4-ip')!;
    const drop = chain.rules[chain.rules.length - 1]!;
    expect(drop.target).toEqual({ kind: 'verdict', verdict: 'DROP' });
    expect(renderOriginChain(drop.origin)).toBe(
      [
        'nwfilter no-ip-spoofing rule #3 priority=1000 action=drop direction=out',
        'nwfilter no-ip-spoofing (chain ipv4-ip, priority -710, built-in)',
        'filterref no-ip-spoofing',
        'nwfilter clean-traffic (chain root, priority 0, built-in)',
        'filterref clean-traffic IP=192.0.2.200 (r2-10105.xml:9)',
        'domain r2-10105 interface 02:00:73:b6:53:c8 vnet0 (type bridge br0) (r2-10105.xml:4)',
        'domain r2-10105 (r2-10105.xml:1)',
      ].join(' ← '),
    );
    expect(drop.origin.data).toMatchObject({
      filter: 'no-ip-spoofing',
      priority: 1000,
      action: 'drop',
      position: 'built-in',
    });
  });
});
