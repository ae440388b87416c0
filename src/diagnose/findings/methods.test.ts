import { describe, expect, it } from 'vitest';
import { lvsLan, tcpProbe, tinyLoaded, traceLoaded } from '../../../test/support/tiny-net.ts';
import { tunNoIpip, tunRpFilter } from './methods.ts';

const PROBE = tcpProbe('c', '198.51.100.100', 80);

describe('findings on how IPVS forwards (methods.ts)', () => {
  it('tun-no-ipip explains a TUN probe dropped where tunl0 is missing, and its fix makes the probe reply', () => {
    const { scenario, engines } = lvsLan('Tunnel', {
      ifaces: { eth0: { mac: '52:54:00:00:00:21', addrs: ['198.51.100.21/24'], segment: 'lan' } },
    });
    const loaded = tinyLoaded(scenario, engines);
    const t = traceLoaded(loaded, PROBE);
    expect(t.end.cause).toBe('no-ipip');
    const d = tunNoIpip.detect!({ loaded }, t)!;
    expect(d.finding).toMatchObject({ code: 'tun-no-ipip', where: 'rs' });
    const fixed = d.fixes[0]!.apply(loaded);
    expect(traceLoaded(fixed, PROBE).disposition).toBe('replied');
  });

  it('tun-rp-filter explains decapsulated packets dropped by strict rp_filter on tunl0 (max of all and tunl0)', () => {
    const { scenario, engines } = lvsLan('Tunnel', {
      sysctl: {
        'net.ipv4.conf.all.arp_ignore': 1,
        'net.ipv4.conf.all.arp_announce': 2,
        'net.ipv4.conf.tunl0.rp_filter': 1,
      },
    });
    const loaded = tinyLoaded(scenario, engines);
    const t = traceLoaded(loaded, PROBE);
    expect(t.disposition).toBe('dropped-by-kernel');
    expect(t.end.cause).toBe('rp-filter');
    const d = tunRpFilter.detect!({ loaded }, t)!;
    expect(d.finding).toMatchObject({ code: 'tun-rp-filter', where: 'rs:tunl0' });
    expect(traceLoaded(d.fixes[0]!.apply(loaded), PROBE).disposition).toBe('replied');
  });

  it('neither explains a TUN cluster that works', () => {
    const { scenario, engines } = lvsLan('Tunnel');
    const loaded = tinyLoaded(scenario, engines);
    const t = traceLoaded(loaded, PROBE);
    expect(t.disposition).toBe('replied');
    expect(tunNoIpip.check!({ loaded })).toEqual([]);
    expect(tunRpFilter.check!({ loaded })).toEqual([]);
  });
});
