/**
 * A director's iptables mangle PREROUTING (the marks of IPVS fwmark services), held to the real kernel: the rules
 * below are loaded with iptables-restore (iptables-nft) into a namespace created here that plays the director, and a
 * TCP SYN per destination port is sent to its VIP from a second namespace over a veth pair. For every SYN, the
 * mangle rules lvsdoctor says matched must be exactly the ones whose counters the kernel incremented
 * (`iptables-save -c`), and the mark lvsdoctor computes must be the one the kernel's filter INPUT saw (a
 * `-m mark --mark` rule per expected mark counts it). Root only; skipped with the reason otherwise. The namespaces
 * are removed afterwards.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateIptables } from '../src/netfilter/iptables-eval.ts';
import { readIptablesSave } from '../src/netfilter/iptables-read.ts';
import {
  clientSyn,
  directorAndClient,
  netnsSkip,
  removeNamespaces,
  nsRun as run,
  synCounted,
} from './support/director-netns.ts';

const D = `lvsdmgd${process.pid}`;
const C = `lvsdmgc${process.pid}`;
const SKIP = netnsSkip();

const VIP = '198.51.100.100';
// What the director loads: a rule bound to an interface it does not have, the fwmark rule of FWM 1 (80, 443), a
// chain that ORs bit 0x4 into the mark of TCP to 443 and 8080, and filter INPUT rules that count each final mark.
const RULES = `*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:EXTRA - [0:0]
-A PREROUTING -d ${VIP}/32 -i eth1 -p tcp -j MARK --set-xmark 0x9/0xffffffff
-A PREROUTING -d ${VIP}/32 -p tcp -m multiport --dports 80,443 -j MARK --set-xmark 0x1/0xffffffff
-A PREROUTING -d ${VIP}/32 -p tcp -j EXTRA
-A EXTRA -p tcp -m multiport --dports 443,8080 -j MARK --set-xmark 0x4/0x4
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -d ${VIP}/32 -p tcp -m mark --mark 0x0 -j ACCEPT
-A INPUT -d ${VIP}/32 -p tcp -m mark --mark 0x1 -j ACCEPT
-A INPUT -d ${VIP}/32 -p tcp -m mark --mark 0x4 -j ACCEPT
-A INPUT -d ${VIP}/32 -p tcp -m mark --mark 0x5 -j ACCEPT
COMMIT
`;
const PORTS = [80, 443, 8080, 22];

describe.skipIf(SKIP !== undefined)(`mangle PREROUTING marks, held to the kernel${SKIP ? ` (${SKIP})` : ''}`, () => {
  afterAll(() => removeNamespaces(D, C));

  it('matches the rules the kernel counts and sets the mark filter INPUT sees', () => {
    directorAndClient(D, C, 'lvsdmg0', VIP);
    const load = run(D, ['iptables-restore'], RULES);
    expect(load.stderr).toBe('');
    for (const port of PORTS) {
      const { save: afterText, counted } = synCounted(D, C, VIP, port);
      const read = readIptablesSave(afterText, 'director.save', 'ipv4', ['mangle']);
      expect(read.issues.filter((i) => i.severity === 'error')).toEqual([]);
      const mangle = read.value!.find((t) => t.name === 'mangle')!;
      const r = evaluateIptables(mangle, 'PREROUTING', clientSyn(VIP, port), { inIface: 'eth0' });
      const lines = afterText.split('\n');
      const mine = r.visited
        .filter((v) => v.matched)
        .map((v) => `mangle ${lines[(v.rule.origin.pos?.line ?? 0) - 1]!.replace(/^\[\d+:\d+\] /, '')}`);
      expect({ port, rules: mine }).toEqual({ port, rules: counted.filter((k) => k.startsWith('mangle ')) });
      expect({ port, mark: counted.filter((k) => k.startsWith('filter ')) }).toEqual({
        port,
        mark: [`filter -A INPUT -d ${VIP}/32 -p tcp -m mark --mark 0x${r.mark.toString(16)} -j ACCEPT`],
      });
    }
  });
});
