/**
 * A hypervisor's mangle marks reach its policy routing (issue 14): a MARK in mangle PREROUTING on what a guest of its
 * libvirt NAT network sends is what `ip rule … fwmark` selects a table by — here one whose default route is a
 * blackhole — while the same host without the mark routes the guest's traffic out and MASQUERADEs it.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-host-tables-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The libvirt NAT network scenario with kvm2's ip rule / ip route, and a MARK on virbr0 when `mark`. */
function scenario(name: string, mark: boolean): string {
  const dir = join(root, name);
  cpSync('fixtures/scenarios/dr-libvirt-nat-guest-client-healthy', dir, { recursive: true });
  const save = join(dir, 'kvm2/iptables-save.txt');
  const rule =
    '-A PREROUTING -i virbr0 -m comment --comment "guests of the NAT network" -j MARK --set-xmark 0x1/0xffffffff\n';
  const text = readFileSync(save, 'utf8').replace(
    ':LIBVIRT_PRT - [0:0]\n',
    `:LIBVIRT_PRT - [0:0]\n${mark ? rule : ''}`,
  );
  writeFileSync(save, text);
  writeFileSync(
    join(dir, 'kvm2/ip-rule.txt'),
    '0:\tfrom all lookup local\n100:\tfrom all fwmark 0x1 lookup 100\n32766:\tfrom all lookup main\n32767:\tfrom all lookup default\n',
  );
  writeFileSync(
    join(dir, 'kvm2/ip-route.txt'),
    [
      'default via 198.51.100.1 dev br0 proto static metric 425',
      '192.168.122.0/24 dev virbr0 proto kernel scope link src 192.168.122.1',
      '198.51.100.0/24 dev br0 proto kernel scope link src 198.51.100.3 metric 425',
      'blackhole default table 100',
      '',
    ].join('\n'),
  );
  const yaml = join(dir, 'scenario.yaml');
  writeFileSync(
    yaml,
    readFileSync(yaml, 'utf8').replace(
      '    iptables-save: kvm2/iptables-save.txt',
      '    iptables-save: kvm2/iptables-save.txt\n    ip-rule: kvm2/ip-rule.txt\n    ip-route: kvm2/ip-route.txt',
    ),
  );
  return dir;
}

describe("a hypervisor's mangle marks and its policy routing", () => {
  it('routes a marked guest packet by the fwmark rule (a blackhole), an unmarked one by main', async () => {
    const marked = await runCli('diagnose', '--json', scenario('marked', true));
    const plain = await runCli('diagnose', '--json', scenario('plain', false));
    const probe = (out: string) =>
      (JSON.parse(out) as { probes: { probe: { name: string }; disposition: string; summary: string }[] }).probes.find(
        (p) => p.probe.name === 'app1-to-vip',
      );
    expect(plain.code).toBe(0);
    expect(probe(plain.stdout)?.disposition).toBe('replied');
    expect(marked.code).toBe(1);
    expect(probe(marked.stdout)).toMatchObject({ disposition: 'no-route' });
    expect(probe(marked.stdout)?.summary).toMatch(/blackhole/);
  });
});
