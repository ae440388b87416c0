import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runNwfilterCompile } from './cmd-nwfilter.ts';
import type { Io } from './io.ts';

const CWD = fileURLToPath(new URL('../../fixtures/libvirt/cli/', import.meta.url));

function run(file: string, format: string, filterDirs: string[] = ['filters'], interfaceMac?: string) {
  let out = '';
  let err = '';
  const io: Io = { stdout: (s) => (out += s), stderr: (s) => (err += s), cwd: CWD };
  const code = runNwfilterCompile(io, file, {
    filterDirs,
    format,
    ...(interfaceMac ? { interfaceMac } : {}),
  });
  return { code, out, err };
}

describe('lvsdoctor nwfilter compile', () => {
  it('prints the ebtables nat listing of a filterbinding with a custom filter', () => {
    const r = run('binding.xml', 'ebtables-nat-L');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    expect(r.out).toContain('Bridge chain: libvirt-I-vnet3, entries: 2, policy: RETURN');
    expect(r.out).toContain('Bridge chain: I-vnet3-mac, entries: 2, policy: RETURN');
    expect(r.out).toContain('-p IPv4 --ip-proto vrrp -j ACCEPT');
    expect(r.out).toContain('-s 02:00:73:b6:53:c8 -j RETURN');
  });

  it('prints iptables-save with the FI/FO/HI chains, physdev links and the comment', () => {
    const r = run('binding.xml', 'iptables-save');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      '-A FO-vnet3 -p tcp -m tcp --dport 80 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -m comment --comment "http to the VIP" -j ACCEPT',
    );
    expect(r.out).toContain('-A libvirt-out -m physdev --physdev-out vnet3 --physdev-is-bridged -g FO-vnet3');
    expect(r.out.startsWith('*filter\n:INPUT ACCEPT [0:0]\n')).toBe(true);
    expect(r.out.endsWith('COMMIT\n')).toBe(true);
  });

  it('prints ip6tables-save, ebtables-save, the legacy listing, iptables -S and JSON', () => {
    expect(run('binding.xml', 'ip6tables-save').out).toContain('-A FI-vnet3 -j DROP\n');
    expect(run('binding.xml', 'ebtables-save').out).toContain(':libvirt-I-vnet3 ACCEPT\n');
    const legacy = run('binding.xml', 'ebtables-legacy-L').out;
    expect(legacy).toContain('-s 2:0:73:b6:53:c8 -j RETURN');
    expect(legacy).toContain('policy: ACCEPT');
    expect(run('binding.xml', 'iptables-S').out).toContain('-N FI-vnet3\n');
    const json = JSON.parse(run('binding.xml', 'json').out);
    expect(json.mode).toBe('filter');
    const fo = json.iptables.filter.find((c: { name: string }) => c.name === 'FO-vnet3');
    expect(fo.rules[0].origin).toContain('nwfilter lvs-director rule #1');
  });

  it('accepts a domain XML and uses its first interface with a filterref', () => {
    const r = run('domain.xml', 'ebtables-nat-L', []);
    expect(r.code).toBe(0);
    expect(r.out).toContain('Bridge chain: I-vnet3-ipv4-ip, entries: 3, policy: RETURN');
    expect(r.out).toContain('--ip-src 192.0.2.200 -j RETURN');
  });

  it('selects a domain interface by MAC and reports a MAC that is not there', () => {
    expect(run('domain.xml', 'ebtables-nat-L', [], '02:00:73:B6:53:C8').code).toBe(0);
    const r = run('domain.xml', 'ebtables-nat-L', [], '02:00:00:00:00:99');
    expect(r.code).toBe(2);
    expect(r.err).toContain('domain.xml:1: error: no interface with MAC 02:00:00:00:00:99');
  });

  it('accepts a single interface element', () => {
    const r = run('interface.xml', 'iptables-save');
    expect(r.code).toBe(0);
    expect(r.out).toContain('-A FO-vnet3 -p tcp -m tcp --dport 80');
  });

  it('exits 2 with file:line when a referenced filter is missing', () => {
    const r = run('binding-missing-filter.xml', 'ebtables-nat-L');
    expect(r.code).toBe(2);
    expect(r.err).toContain("binding-missing-filter.xml:5: error: referenced filter 'no-such-filter' is missing");
    expect(r.out).toBe('');
  });

  it('exits 1 with libvirt reason when a continue rule needs iptables', () => {
    const r = run('binding-continue.xml', 'iptables-save');
    expect(r.code).toBe(1);
    expect(r.err).toContain("Chain 'CONTINUE' does not exist");
    expect(r.out).toBe('');
  });

  it('exits 1 with the reason libvirt 9.0 gives for --tcp-option 0 (iptables: Bad TCP option)', () => {
    for (const format of ['iptables-save', 'ebtables-save']) {
      const r = run('binding-tcp-option-zero.xml', format);
      expect(r.code).toBe(1);
      expect(r.out).toBe('');
      expect(r.err).toContain(
        "libvirt refuses the binding: internal error: Failed to apply firewall rules /usr/sbin/iptables -w -A FJ-vnet0 -p tcp --tcp-option 0 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: iptables v1.8.9 (nf_tables): Bad TCP option \"0\"\nTry `iptables -h' or 'iptables --help' for more information.",
      );
    }
  });

  it('exits 1 with libvirt wording when a variable cannot be resolved', () => {
    const r = run('binding-unresolved.xml', 'iptables-save');
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      'libvirt refuses the binding: Cannot instantiate filter due to unresolvable variables or unavailable list elements: VIP',
    );
  });

  it('exits 2 with file:line for a bad address, and warns about unknown attributes and elements', () => {
    const r = run('binding.xml', 'ebtables-nat-L', ['bad-filters']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('bad-filters/bad.xml:3: error: srcipaddr has illegal value 10.0.0.300');
    expect(r.err).toContain('bad-filters/bad.xml:3: warning: attribute bogus of <ip> is ignored by libvirt');
    expect(r.err).toContain('bad-filters/bad.xml:4: warning: unknown element <frobnicate>');
  });

  it('exits 2 for malformed XML, a missing file, a missing directory and an unknown format', () => {
    const bad = run('not-xml.xml', 'ebtables-nat-L');
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/not-xml\.xml:\d+(:\d+)?: error:/);
    expect(run('nope.xml', 'json').err).toContain('nope.xml: error: file "nope.xml" does not exist');
    expect(run('binding.xml', 'json', ['no-dir']).err).toContain('filter directory "no-dir" does not exist');
    expect(run('binding.xml', 'pretty').code).toBe(2);
  });
});
