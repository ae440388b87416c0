import { describe, expect, it } from 'vitest';
import { lvsLan, tcpProbe, tinyLoaded, traceLoaded } from '../../test/support/tiny-net.ts';
import { sysctlFix } from './sysctl-fix.ts';

describe('sysctl fixes (sysctl-fix.ts)', () => {
  it('set the kernel values on the named node only, leaving every other node the same object', () => {
    // arp_ignore=0 on a DR real server: it answers ARP for the VIP (the ARP problem); the fix sets it back to 1.
    const { scenario, engines } = lvsLan('Route', { sysctl: {} });
    const loaded = tinyLoaded(scenario, engines);
    const probe = tcpProbe('c', '198.51.100.100', 80);
    const before = traceLoaded(loaded, probe);
    // rs answers the client's ARP for the VIP, so the SYN goes to rs and never meets the director.
    const rs = scenario.nodes.get('rs')!;
    const fix = sysctlFix(rs, [['net.ipv4.conf.all.arp_ignore', '1']], 'answer ARP only for eth0 addresses', 50);
    const fixed = fix.apply(loaded);
    expect(fixed.scenario.nodes.get('rs')!.sysctl.get('net.ipv4.conf.all.arp_ignore')?.value).toBe('1');
    for (const name of ['c', 'd']) expect(fixed.scenario.nodes.get(name)).toBe(scenario.nodes.get(name));
    expect(fixed.scenario.nodes.get('rs')!.interfaces).toBe(rs.interfaces);
    const after = traceLoaded(fixed, probe);
    expect(after.disposition).toBe('replied');
    expect(after.hops.some((h) => h.place.node === 'd')).toBe(true);
    expect(before.hops.some((h) => h.place.node === 'd')).toBe(false);
    expect(fix.artifacts[0]!.content).toBe('# answer ARP only for eth0 addresses\nnet.ipv4.conf.all.arp_ignore = 1\n');
  });
});
