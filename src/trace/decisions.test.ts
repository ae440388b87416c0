import { describe, expect, it } from 'vitest';
import { bridgedPair, loggingFirewall, tcpProbe, trace } from '../../test/support/tiny-net.ts';
import { ipv4 } from '../addr/ipv4.ts';
import { answer, type DecisionLog } from './decisions.ts';

const KNOWN = {
  a: { neighbours: { '198.51.100.20': '52:54:00:00:00:0b' } },
  b: { listen: [80], neighbours: { '198.51.100.10': '52:54:00:00:00:0a' } },
};

describe('the one door for engine decisions (decisions.ts)', () => {
  it('records every decision of a walk with its host, its hop and the index its step took there', () => {
    const log: DecisionLog = { decisions: [] };
    const fw = loggingFirewall([], (table) => (table === 'filter' ? 'ACCEPT' : undefined));
    const t = trace(bridgedPair(KNOWN), tcpProbe('a', '198.51.100.20', 80), { firewalls: { host: fw } }, log);
    expect(t.disposition).toBe('replied');
    const kinds = new Set(log.decisions.map((d) => d.question.kind));
    expect([...kinds].sort()).toEqual(['br-netfilter', 'conf', 'ebtables', 'route']);
    for (const d of log.decisions) {
      expect(t.hops).toContain(d.hop);
      const q = d.question.kind;
      if ((q === 'ebtables' || q === 'br-netfilter') && d.answer) expect(d.hop.steps[d.pos]).toBe(d.answer);
    }
    // The filter FORWARD decision on the way out of vnet1 sits where its step is.
    const fwd = log.decisions.find((d) => d.question.kind === 'ebtables' && d.question.hook === 'FORWARD')!;
    expect(fwd.host).toBe('host');
    expect(fwd.hop.place).toEqual({ node: 'host', iface: 'vnet1' });
  });

  it('asks the same engines a walk would when asked again outside a walk', () => {
    const s = bridgedPair({ a: { ...KNOWN.a, sysctl: { 'net.ipv4.conf.all.rp_filter': 2 } } });
    const a = s.nodes.get('a')!;
    expect(answer({ node: a }, { kind: 'conf', key: 'rp_filter', iface: 'eth0' }).value).toBe(2);
    expect(answer({ node: a }, { kind: 'route', dst: ipv4('198.51.100.20') })?.dev).toBe('eth0');
    expect(answer({ node: a }, { kind: 'sysctl', key: 'net.ipv4.ip_forward' }).on).toBe(false);
    // No engine on the node: no rule has a say, and IPVS does not handle the packet.
    const frame = trace(s, tcpProbe('a', '198.51.100.20', 80)).hops[1]!.frame;
    expect(answer({ node: a }, { kind: 'ebtables', table: 'filter', hook: 'FORWARD', frame, ctx: {} })).toBeUndefined();
    expect(answer({ node: a }, { kind: 'ipvs-in', fwmark: 0, frame, nowNs: 0n, directorIp: undefined })).toEqual({
      kind: 'not-ipvs',
    });
  });
});
