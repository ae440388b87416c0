/**
 * A kube-proxy node's iptables-save (fixtures/iptables/kube-proxy-host.save, printed by iptables-save 1.8.9 (nf_tables)
 * after kube-proxy's own rules were added in a namespace): what the model evaluates for bridged and routed traffic, and
 * what it reports as not modelled with what that means for a verdict.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { mac } from '../addr/mac.ts';
import { synFrame } from '../diagnose/facts.ts';
import type { EthernetFrame } from '../wire/types.ts';
import { evaluateIptables } from './iptables-eval.ts';
import { readIptablesSave } from './iptables-read.ts';

const FILE = 'kube-proxy-host.save';
const text = readFileSync(new URL(`../../fixtures/iptables/${FILE}`, import.meta.url), 'utf8');

function syn(dst: string): EthernetFrame {
  return synFrame(mac('02:00:00:00:00:01'), mac('02:00:00:00:00:02'), ipv4('203.0.113.50'), ipv4(dst), 80);
}

describe("kube-proxy's chains", () => {
  const r = readIptablesSave(text, FILE, 'ipv4');
  const filter = r.value!.find((t) => t.name === 'filter')!;

  it('reads every rule (mark, conntrack with negated states, comments) and reports the nat marks it leaves out', () => {
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(filter.chains.find((c) => c.name === 'KUBE-FIREWALL')!.rules).toHaveLength(2);
    const notModelled = r.issues.filter((i) => i.code === 'iptables-table-not-modelled').map((i) => i.message);
    // KUBE-MARK-DROP's mark is what KUBE-FIREWALL drops: without nat the traced mark is 0, so that drop never applies.
    expect(notModelled).toEqual([
      expect.stringMatching(/^nat KUBE-MARK-DROP -j MARK .*mark 0, so their verdict may differ/),
      expect.stringMatching(/^nat KUBE-MARK-MASQ -j MARK /),
      expect.stringMatching(/^nat KUBE-POSTROUTING -j MARK /),
    ]);
  });

  it('KUBE-FIREWALL hooks INPUT and OUTPUT only: bridged and forwarded packets never meet it', () => {
    const fwd = evaluateIptables(filter, 'FORWARD', syn('198.51.100.100'), { ctState: 'NEW', ctDir: 'ORIGINAL' });
    expect(fwd.verdict).toBe('ACCEPT');
    expect(fwd.visited.some((v) => v.chain === 'KUBE-FIREWALL')).toBe(false);
    // KUBE-FORWARD drops INVALID (a one-way DR flow through a node's bridge), as any stateful FORWARD does.
    const invalid = evaluateIptables(filter, 'FORWARD', syn('198.51.100.100'), {
      ctState: 'INVALID',
      ctDir: 'ORIGINAL',
    });
    expect(invalid).toMatchObject({ verdict: 'DROP', decidedBy: { kind: 'rule', chain: 'KUBE-FORWARD', index: 0 } });
  });

  it('its marked-packet drop applies when the mark is there, and its localnet drop to 127.0.0.0/8 from outside', () => {
    const marked = evaluateIptables(filter, 'INPUT', syn('198.51.100.100'), { mark: 0x8000, ctState: 'NEW' });
    expect(marked).toMatchObject({ verdict: 'DROP', decidedBy: { kind: 'rule', chain: 'KUBE-FIREWALL', index: 0 } });
    const local = evaluateIptables(filter, 'INPUT', syn('127.0.0.1'), { ctState: 'NEW', ctDir: 'ORIGINAL' });
    expect(local).toMatchObject({ verdict: 'DROP', decidedBy: { kind: 'rule', chain: 'KUBE-FIREWALL', index: 1 } });
    const reply = evaluateIptables(filter, 'INPUT', syn('127.0.0.1'), { ctState: 'ESTABLISHED', ctDir: 'REPLY' });
    expect(reply.verdict).toBe('ACCEPT');
  });
});
