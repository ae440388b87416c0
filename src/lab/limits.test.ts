import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadScenario } from '../topology/load-scenario.ts';
import { type DirectorMode, directorNft, ipvsadmRestoreText } from './kernel-rules.ts';
import { type KernelCapabilities, labLimits } from './limits.ts';
import { planLab } from './plan.ts';

const ROOT = join(import.meta.dirname, '..', '..', 'fixtures', 'scenarios');
const load = (name: string) => loadScenario(join(ROOT, name)).value!;
const bare: KernelCapabilities = { ipip: false, ipipMissing: 'no ipip here', ipvs: false, vlan: false };
const full: KernelCapabilities = { ipip: true, ipvs: true, vlan: true };

describe('what the lab says the kernel cannot show', () => {
  it('LVS-TUN: no ipip, or ipip without IPVS, or (with both) no tunl0 built yet — each its own reason', () => {
    const tun = load('tun-healthy');
    expect(labLimits(tun, bare)).toEqual([expect.stringMatching(/^IPIP \(LVS-TUN\): no ipip here \(.*web1:tunl0/)]);
    expect(labLimits(tun, { ...full, ipvs: false })).toEqual([expect.stringContaining('cannot encapsulate')]);
    expect(labLimits(tun, full)).toEqual([expect.stringContaining('does not build tunl0')]);
  });

  it('a tunl0 that is down with no address (ipip merely loaded) is no TUN: left out of the plan, no limit', () => {
    const s = load('dr-rs-vip-on-dummy-sysctl-conf-healthy');
    expect(labLimits(s, bare)).toEqual([]);
    const plan = planLab(s, 'p-');
    expect(plan.captures.some((c) => c.iface === 'tunl0')).toBe(false);
    expect(plan.dummies.some((d) => d.name === 'tunl0')).toBe(false);
  });

  it('pinned connections, VLANs without 802.1Q, sh and fwmark without IPVS, vrrp_strict: named', () => {
    expect(labLimits(load('dr-conn-deleted-server'), full)).toEqual([
      expect.stringContaining('ipvsadm -Lnc on lb1: 4'),
    ]);
    expect(labLimits(load('dr-host-vlan-bridge-healthy'), bare)).toEqual([expect.stringContaining('kvm1:eno1.100')]);
    expect(labLimits(load('dr-host-vlan-bridge-healthy'), full)).toEqual([]);
    expect(labLimits(load('dr-sh-weight0-no-fallback'), bare)).toEqual([
      expect.stringContaining('scheduler sh on lb1'),
    ]);
    expect(labLimits(load('dr-sh-weight0-no-fallback'), full)).toEqual([]);
    expect(labLimits(load('dr-fwmark-mangle-healthy'), bare)).toEqual([
      expect.stringContaining("a director's own iptables tables (lb1 (mangle))"),
      expect.stringContaining('fwmark service 1'),
    ]);
    expect(labLimits(load('ha-vrrp-strict-no-accept'), full)).toEqual([
      expect.stringContaining('vrrp_strict without accept on lb1'),
      expect.stringContaining('vrrp_strict without accept on lb2'),
    ]);
    expect(labLimits(load('dr-two-rs-healthy'), bare)).toEqual([]);
  });

  it("a director's own tables (full NAT, INPUT) are the simulator's alone; a real server's own filter is the kernel's", () => {
    for (const caps of [bare, full]) {
      expect(labLimits(load('nat-one-armed-full-nat-healthy'), caps)).toEqual([
        expect.stringContaining("a director's own iptables tables (lb1 (nat)): the lab emulates IPVS with nftables"),
      ]);
      expect(labLimits(load('dr-director-input-drops-vip-port'), caps)).toEqual([
        expect.stringContaining("a director's own iptables tables (lb1 (filter))"),
      ]);
      expect(labLimits(load('dr-rs-input-drops-http'), caps)).toEqual([]);
    }
    // Hosts' rule sets (Docker's *nat among them) are loaded for real: no limit.
    expect(labLimits(load('dr-docker-forward-drop'), bare)).toEqual([]);
  });
});

describe('the plan of a host with its own rule set', () => {
  it('loads the iptables-save verbatim and switches br_netfilter as the host sysctl says (off where it is silent)', () => {
    const s = load('dr-docker-forward-drop');
    const plan = planLab(s, 'p-');
    expect(plan.hostRules.map((r) => [r.host, r.format])).toEqual([
      ['kvm1', 'iptables-save'],
      ['kvm2', 'iptables-save'],
    ]);
    expect(plan.hostRules[0]!.text).toContain(':FORWARD DROP');
    expect(plan.hostRules[0]!.text).toContain('*nat');
    expect(plan.sysctls.get('p-kvm1')).toContainEqual(['net.bridge.bridge-nf-call-iptables', '1']);
    const quiet = planLab(load('dr-conntrack-invalid-director-host'), 'p-');
    expect(quiet.sysctls.get('p-kvm2')).toContainEqual(['net.bridge.bridge-nf-call-iptables', '0']);
  });

  it('makes (down) the devices an nft rule set names with iif/oif that the host does not list', () => {
    const plan = planLab(load('dr-nft-docker-libvirt-brnf-forward-drop'), 'p-');
    expect(plan.dummies).toContainEqual({ ns: 'p-kvm1', name: 'virbr0', up: false });
  });
});

describe('directors for a probe pinned to one real server', () => {
  const plan = planLab(load('dr-two-rs-healthy'), 'p-');
  const d = plan.directors[0]!;
  const pin: DirectorMode = {
    kind: 'pinned',
    service: '198.51.100.100:80/tcp',
    dest: { ip: '198.51.100.22', port: 80 },
  };

  it('the emulation sends the service to that server, real IPVS keeps a weight for it alone', () => {
    expect(directorNft(d, { kind: 'fresh' })).toContain('fwd ip to 198.51.100.21 ');
    expect(directorNft(d, pin)).toContain('fwd ip to 198.51.100.22 ');
    expect(ipvsadmRestoreText(d, pin)).toContain('-r 198.51.100.22:80 -g -w 1');
    expect(ipvsadmRestoreText(d, pin)).toContain('-r 198.51.100.21:80 -g -w 0');
  });

  it('a DR real server behind a router is handed to the router', () => {
    const routed = planLab(load('dr-routed-rs-across-l3'), 'p-').directors[0]!;
    expect(directorNft(routed, { kind: 'fresh' })).toContain('fwd ip to 198.51.100.254 ');
  });
});
