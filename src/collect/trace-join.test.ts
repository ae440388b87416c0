/**
 * Kernel traces recorded on a real kernel (fixtures/kernel-traces/founding-real, made by test/trace-real.test.ts:
 * the founding case with real libvirt bindings, `nft monitor trace`, `xtables-monitor --trace`, kfree_skb through
 * tracefs and perf) joined to the model of examples/kvm-lvs-dr, and to two wrong models.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseIpv4 } from '../addr/ipv4.ts';
import { diagnose } from '../diagnose/diagnose.ts';
import { findFix } from '../diagnose/fix-list.ts';
import { readEbtablesCounters, readNftRules, readSaveCounters } from '../netfilter/counter-read.ts';
import { readEbtablesList } from '../netfilter/ebtables-read.ts';
import { readIptablesSave } from '../netfilter/iptables-read.ts';
import { readNftMonitorTrace, readXtablesMonitorTrace } from '../netfilter/trace-read.ts';
import { renderOriginChain } from '../source/origin.ts';
import { compileAllHostRules, modelHostRules } from '../topology/host-rules.ts';
import { type LoadedScenario, loadScenario } from '../topology/load-scenario.ts';
import { readKernelDrops } from './kernel-drops.ts';
import { readListing } from './kernel-trace-input.ts';
import {
  joinKernelTraces,
  type KernelTraceInput,
  type NodeListings,
  packetIsHop,
  placeTraceEvents,
  renderKernelTraces,
} from './trace-join.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DIR = join(ROOT, 'fixtures', 'kernel-traces', 'founding-real');
const text = (f: string) => readFileSync(join(DIR, f), 'utf8');

function load(name: string): LoadedScenario {
  return loadScenario(join(ROOT, 'examples', name)).value!;
}

function listings(): NodeListings {
  return {
    xtables: [
      ...readEbtablesCounters(text('ebtables-nat.txt'), 'ebtables-nat.txt', 'nat').value!,
      ...readSaveCounters(text('iptables-save.txt'), 'iptables-save.txt', 'iptables').value!,
    ],
    nft: readNftRules(text('nft-ruleset-handles.txt'), 'nft-ruleset-handles.txt').value!,
  };
}

function inputs(files: readonly string[]): KernelTraceInput[] {
  return files.map((f) => {
    if (f.startsWith('kfree')) {
      const r = readKernelDrops(text(f), f);
      expect(r.issues).toEqual([]);
      return { node: 'host1', file: f, events: [], drops: r.value! };
    }
    const r = f.startsWith('nft') ? readNftMonitorTrace(text(f), f) : readXtablesMonitorTrace(text(f), f);
    expect(r.issues).toEqual([]);
    return { node: 'host1', file: f, events: r.value!, drops: [] };
  });
}

function joinTo(model: LoadedScenario, files: readonly string[]) {
  return joinKernelTraces(
    diagnose(model),
    inputs(files),
    compileAllHostRules(model).hostRules,
    new Map([['host1', listings()]]),
    model.scenario,
  );
}

describe('kernel traces of the founding case joined to the model', () => {
  for (const file of ['nft-monitor-trace.txt', 'xtables-monitor-trace.txt'])
    it(`joins every event of ${file} to a model rule with its origin and confirms both failing probes`, () => {
      const k = joinTo(load('kvm-lvs-dr'), [file]);
      expect(k.unmapped.map((u) => `${u.event.pos.line}: ${u.why}`)).toEqual([]);
      expect(k.setup).toBeGreaterThan(0);
      expect(k.joined.length).toBeGreaterThan(20);
      const drop = k.joined.find((j) => j.event.verdict === 'drop' && j.rule!.chain === 'I-vnet0-ipv4-ip')!;
      expect(drop).toMatchObject({ node: 'host1', iface: 'vnet0', where: 'port vnet0 of bridge br0' });
      expect(drop.rule!.ruleNumber).toBe(3);
      expect(renderOriginChain(drop.rule!.origin)).toMatch(/no-ip-spoofing.*clean-traffic/);
      const by = Object.fromEntries(k.probes.map((p) => [p.probe, p]));
      expect(by['http-to-vip']!.verdict, by['http-to-vip']!.facts.join('\n')).toBe('confirmed');
      expect(by['http-to-vip']!.facts[0]).toMatch(/^the kernel (passes|drops) http-to-vip at host1 (eth0|vnet0)/);
      expect(by['http-to-vip']!.facts.join('\n')).toMatch(
        /the kernel drops http-to-vip at host1 vnet0 I-vnet0-ipv4-ip rule 3 as the model does \(.*id [0-9a-f]+, .*:\d+; 3 events in all\) — .*no-ip-spoofing/,
      );
      expect(by['arp-for-vip']!.verdict, by['arp-for-vip']!.facts.join('\n')).toBe('confirmed');
      expect(by['arp-for-vip']!.facts.join('\n')).toMatch(
        /the kernel drops arp-for-vip at host1 vnet0 I-vnet0-arp-ip rule 2/,
      );
      // host1 is the only traced node: the probe to the real server on host2 has no evidence.
      expect(by['tcp-rs-192.0.2.226-80']!.verdict).toBe('no-evidence');
    });

  it('places xtables-monitor events of a policy rule ebtables-nft re-added after the trace (a later `ebtables -L`)', () => {
    // Every user chain's last `counter … accept` (its policy rule) listed with a later handle, as after `ebtables -L`.
    const readded = text('nft-ruleset-handles.txt').replace(
      /^(\s*counter packets \d+ bytes \d+ accept) # handle (\d+)(\n\s*\})/gm,
      (_m, rule: string, h: string, end: string) => `${rule} # handle ${Number(h) + 1000}${end}`,
    );
    expect(readded).not.toBe(text('nft-ruleset-handles.txt'));
    const join = (handles: string) =>
      joinKernelTraces(
        diagnose(load('kvm-lvs-dr')),
        inputs(['xtables-monitor-trace.txt']),
        compileAllHostRules(load('kvm-lvs-dr')).hostRules,
        new Map([['host1', { ...listings(), nft: readNftRules(handles, 'nft-a.txt').value! }]]),
        load('kvm-lvs-dr').scenario,
      );
    expect(join(readded).unmapped.map((u) => `${u.event.pos.line}: ${u.why}`)).toEqual([]);
    // A rule that decides and is gone from the listing (not a policy rule) stays unplaced, said so.
    const gone = text('nft-ruleset-handles.txt').replace(
      /(chain I-vnet0-ipv4-ip \{[^}]*?counter packets \d+ bytes \d+ drop) # handle (\d+)/,
      (_m, rule: string, h: string) => `${rule} # handle ${Number(h) + 1000}`,
    );
    expect(gone).not.toBe(text('nft-ruleset-handles.txt'));
    expect(join(gone).unmapped.map((u) => u.why)).toContainEqual(
      expect.stringMatching(/^no rule with handle \d+ in bridge nat/),
    );
  });

  it('contradicts the model with the fix applied (no binding on vnet0): the kernel traversed rules it does not have', () => {
    const base = load('kvm-lvs-dr');
    const k = joinTo(findFix(base, 'remove-filterref').fix!.apply(base), ['nft-monitor-trace.txt']);
    const http = k.probes.find((p) => p.probe === 'http-to-vip')!;
    expect(http.verdict).toBe('contradicted');
    const facts = http.facts.join('\n');
    expect(facts).toMatch(
      /the kernel and the model disagree at host1 vnet0 \(bridge nat PREROUTING\): the kernel dropped http-to-vip at I-vnet0-ipv4-ip rule 3/,
    );
    expect(facts).toMatch(/the kernel traversed .*which the model does not have/);
    expect(k.unmapped.length).toBeGreaterThan(0);
  });

  it('contradicts a stale filter parameter (the VIP added to IP): the kernel drops the ARP reply the model lets pass', () => {
    const base = load('kvm-lvs-dr');
    const stale = findFix(base, 'add-ip').fix!.apply(base);
    const k = joinTo(stale, ['xtables-monitor-trace.txt']);
    const arp = k.probes.find((p) => p.probe === 'arp-for-vip')!;
    expect(arp.verdict, arp.facts.join('\n')).toBe('contradicted');
    expect(arp.facts.join('\n')).toMatch(/the kernel and the model disagree at host1 vnet0/);
  });

  it('sets the kernel’s drop reasons (tracefs and perf) against the model’s ends at host1', () => {
    for (const f of ['kfree-skb-tracefs.txt', 'kfree-skb-perf.txt']) {
      const k = joinTo(load('kvm-lvs-dr'), [f]);
      const nf = k.drops.filter((d) => d.event.reason === 'NETFILTER_DROP');
      expect(nf.length).toBeGreaterThan(1);
      for (const d of nf) expect(d.probes).toEqual(expect.arrayContaining(['http-to-vip', 'arp-for-vip']));
      // Drops with no counterpart in the model (other processes of the machine) are listed with why.
      for (const d of k.drops.filter((x) => !x.kind)) expect(d.why).toMatch(/no counterpart/);
      const http = k.probes.find((p) => p.probe === 'http-to-vip')!;
      expect(http.verdict).toBe('confirmed');
      expect(http.facts.join('\n')).toMatch(
        /dropped a packet of http-to-vip's protocol with NETFILTER_DROP at nft_do_chain\+0x46f, where the model's http-to-vip ends \(netfilter drop\)/,
      );
      expect(renderKernelTraces(k)).toContain('kernel drops:');
    }
  });
});

describe('IPv4 rules traced by xtables-monitor (iptables-nft -j TRACE)', () => {
  it('are joined by their save text to the model’s iptables filter rule, and a rule the model lacks is listed', () => {
    const save = [
      '*filter',
      ':INPUT ACCEPT [0:0]',
      ':FORWARD ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':LV-IN - [0:0]',
      '-A INPUT -i eth0 -j LV-IN',
      '-A LV-IN -s 192.0.2.200/32 -p udp -m udp --dport 9 -j DROP',
      'COMMIT',
    ].join('\n');
    const filter4 = readIptablesSave(save, 'host1/iptables-save.txt', 'ipv4').value!.find((t) => t.name === 'filter')!;
    const nat = readEbtablesList(
      'Bridge table: nat\n\nBridge chain: PREROUTING, entries: 0, policy: ACCEPT\n',
      'eb.txt',
    ).value!;
    const trace = readXtablesMonitorTrace(
      [
        'PACKET: 2 56ae34b5 IN=eth0 MACSRC=2:0:73:b6:53:c8 MACDST=8e:97:e:53:5e:63 MACPROTO=0800 SRC=192.0.2.200 DST=192.0.2.1 LEN=36 SPORT=37112 DPORT=9 ',
        ' TRACE: 2 56ae34b5 raw:PREROUTING:rule:0x2:CONTINUE  -4 -t raw -A PREROUTING -p udp -j TRACE',
        ' TRACE: 2 56ae34b5 raw:PREROUTING:policy:ACCEPT ',
        ' TRACE: 2 56ae34b5 filter:INPUT:rule:0x3:JUMP:LV-IN  -4 -t filter -A INPUT -i eth0 -j LV-IN',
        ' TRACE: 2 56ae34b5 filter:LV-IN:rule:0x4:DROP  -4 -t filter -A LV-IN -s 192.0.2.200/32 -p udp -m udp --dport 9 -j DROP',
        ' TRACE: 2 56ae34b5 filter:LV-IN:rule:0x5:ACCEPT  -4 -t filter -A LV-IN -s 192.0.2.99/32 -j ACCEPT',
      ].join('\n'),
      'xt4.txt',
    );
    const model = load('kvm-lvs-dr');
    const k = joinKernelTraces(
      diagnose(model),
      [{ node: 'host1', file: 'xt4.txt', events: trace.value!, drops: [] }],
      new Map([['host1', { nat, filter4, issues: [] }]]),
      new Map(),
      model.scenario,
    );
    expect(k.setup).toBe(2); // the TRACE rule and its raw table's policy
    expect(k.joined.map((j) => `${j.rule!.chain} ${j.rule!.ruleNumber} ${j.event.verdict}`)).toEqual([
      'INPUT 1 jump',
      'LV-IN 1 drop',
    ]);
    expect(k.joined[1]!.rule!.origin.pos).toMatchObject({ file: 'host1/iptables-save.txt', line: 7 });
    expect(k.unmapped.map((u) => u.why)).toEqual([
      "no rule of the model's LV-IN reads '-A LV-IN -s 192.0.2.99/32 -j ACCEPT' (installed rules drift from the model)",
    ]);
  });
});

describe("pwru's events joined to the model", () => {
  const pwru = (iface: string, func: string) =>
    `0xffff88810a2b3c00 1   ~bin/python3:123 4026532512 0            ${iface}:7      0x0800 1500  60    192.243.119.145:51643->192.0.2.208:80(tcp) ${func}`;
  const HEAD =
    'SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   TUPLE FUNC';

  function run(lines: string[]) {
    const r = readKernelDrops([HEAD, ...lines].join('\n'), 'pwru.txt');
    expect(r.issues).toEqual([]);
    const model = load('kvm-lvs-dr');
    return joinKernelTraces(
      diagnose(model),
      [{ node: 'host1', file: 'pwru.txt', events: [], drops: r.value! }],
      compileAllHostRules(model).hostRules,
      new Map(),
      model.scenario,
    ).probes.find((p) => p.probe === 'http-to-vip')!;
  }

  it('confirms the probe where pwru saw it on a port the model takes it through, and its filter drop by reason', () => {
    const p = run([
      pwru('vnet0', 'br_handle_frame'),
      pwru('vnet0', 'kfree_skb_reason(SKB_DROP_REASON_NETFILTER_DROP)'),
    ]);
    expect(p.verdict).toBe('confirmed');
    expect(p.facts.join('\n')).toMatch(
      /the kernel saw http-to-vip at host1 vnet0, where the model takes it \(pwru.txt:2\) \(br_handle_frame\)/,
    );
    expect(p.facts.join('\n')).toMatch(
      /the kernel of host1 dropped http-to-vip with NETFILTER_DROP at kfree_skb_reason/,
    );
  });

  it('contradicts when pwru saw the probe on a port of the node the model never takes it through', () => {
    const p = run([pwru('vnet9', 'br_handle_frame')]);
    expect(p.verdict).toBe('contradicted');
    expect(p.facts[0]).toMatch(
      /the kernel saw http-to-vip at vnet9 \(br_handle_frame\), where the model never takes it/,
    );
  });
});

describe('nft trace events of the inet and netdev families (recorded in namespaces, nft 1.0.6)', () => {
  it('counts the netdev chain that marks the packet as the tracing setup, lists the inet events with why', () => {
    const FAM = join(ROOT, 'fixtures', 'kernel-traces', 'nft-families');
    const events = readNftMonitorTrace(readFileSync(join(FAM, 'nft-monitor-trace.txt'), 'utf8'), 'fam.txt').value!;
    const listing = readListing(readFileSync(join(FAM, 'nft-ruleset-handles.txt'), 'utf8'), 'ruleset.txt')!;
    expect(listing.issues).toEqual([]);
    const l = loadScenario(join(ROOT, 'examples', 'kvm-lvs-dr')).value!;
    const placed = placeTraceEvents(
      [{ node: 'host1', file: 'fam.txt', events, drops: [] }],
      compileAllHostRules(l).hostRules,
      new Map([['host1', listing.value]]),
      l.scenario,
    );
    expect(
      placed.map((p) => [p.event.family, p.event.chain, 'setup' in p ? 'setup' : 'why' in p ? p.why : '']),
    ).toEqual([
      ['netdev', 'ing', 'setup'],
      ['netdev', 'ing', 'setup'],
      ['inet', 'input', 'the model has no nft table inet fw (not made by libvirt)'],
      ['inet', 'udp_in', 'the model has no nft table inet fw (not made by libvirt)'],
    ]);
  });
});

describe("a hypervisor's nat table in kernel traces (Docker's ip nat, recorded: fixtures/kernel-traces/dr-docker-forward-drop)", () => {
  const REC = join(ROOT, 'fixtures', 'kernel-traces', 'dr-docker-forward-drop', 'kvm1');
  const model = loadScenario(join(ROOT, 'fixtures', 'scenarios', 'dr-docker-forward-drop')).value!;
  const rec = (f: string) => readFileSync(join(REC, f), 'utf8');
  const listing: NodeListings = {
    xtables: readSaveCounters(rec('end/iptables-save.txt'), 'kvm1/end/iptables-save.txt', 'iptables').value!,
    nft: readNftRules(rec('nft-ruleset-handles.txt'), 'kvm1/nft-ruleset-handles.txt').value!,
  };
  // The first probe's SYN: the bridge's tracing rule, nat PREROUTING (policy accept), filter FORWARD (policy drop).
  const syn = rec('nft-monitor-trace.txt').split('\n').slice(6, 17).join('\n');
  const join1 = (text: string, report = diagnose(model)) =>
    joinKernelTraces(
      report,
      [{ node: 'kvm1', file: 'kvm1/trace.txt', events: readNftMonitorTrace(text, 'kvm1/trace.txt').value!, drops: [] }],
      modelHostRules(model),
      new Map([['kvm1', listing]]),
      model.scenario,
    );

  it('joins the nat PREROUTING policy to the model’s nat table (the host’s iptables-save), the probe confirmed', () => {
    const k = join1(syn);
    expect(k.unmapped).toEqual([]);
    const nat = k.joined.filter((e) => e.event.table === 'nat');
    expect(nat.map((e) => `${e.event.chain} ${e.rule!.text}`)).toEqual(['PREROUTING policy: ACCEPT']);
    expect(renderOriginChain(nat[0]!.rule!.origin)).toMatch(/kvm1\/iptables-save\.txt:\d+/);
    const p = k.probes.find((x) => x.probe === 'tcp-198.51.100.100-80')!;
    expect(p.verdict).toBe('confirmed');
    expect(p.facts.join('\n')).toMatch(
      /passes tcp-198\.51\.100\.100-80 at kvm1 br0 PREROUTING policy as the model does/,
    );
    expect(p.facts.join('\n')).toMatch(/drops tcp-198\.51\.100\.100-80 at kvm1 br0 FORWARD policy as the model does/);
  });

  it('a DNATed packet’s later events carry the new destination: placed on the hop whose nat step rewrote it', () => {
    // As the kernel traces it when nat PREROUTING DNATs the VIP:80 to 198.51.100.21:8080: filter FORWARD sees the
    // rewritten packet.
    const dnatted = syn.replace(
      /(trace id 3129333e ip filter FORWARD packet: .*?ip daddr )198\.51\.100\.100(.*?tcp dport )80 /,
      '$1198.51.100.21$2' + '8080 ',
    );
    expect(dnatted).not.toBe(syn);
    const FWD = /at kvm1 br0 FORWARD/;
    // The model without the DNAT: the FORWARD pass is no packet of the probe.
    const plain = join1(dnatted).probes.find((x) => x.probe === 'tcp-198.51.100.100-80')!;
    expect(plain.facts.join('\n')).not.toMatch(FWD);
    // The model's nat PREROUTING step DNATs it at the hop the kernel's nat event is on: the FORWARD pass is its.
    const report = diagnose(model);
    const t = report.traces.find((x) => x.probe.name === 'tcp-198.51.100.100-80')!;
    const hop = t.hops.find(
      (h) =>
        h.place.node === 'kvm1' &&
        h.steps.some((s) => s.kind === 'netfilter' && s.family === 'ipv4' && s.hook === 'FORWARD'),
    )!;
    const l3 = hop.frame.payload;
    if (l3.kind !== 'ipv4') throw new Error('not an IPv4 hop');
    const [fwd] = readNftMonitorTrace(dnatted, 'x').value!.filter((e) => e.chain === 'FORWARD');
    expect(packetIsHop(fwd!.packet!, hop)).toBe(false);
    hop.steps.unshift({
      kind: 'netfilter',
      family: 'ipv4',
      table: 'nat',
      hook: 'PREROUTING',
      verdict: 'ACCEPT',
      chain: 'PREROUTING',
      ruleNumber: 1,
      ruleText:
        '-A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 198.51.100.21:8080',
      origin: { kind: 'implicit', label: 'test' },
      path: ['PREROUTING'],
      rulesVisited: 1,
      dnat: { from: l3.dst, to: parseIpv4('198.51.100.21')!, fromPort: 80, toPort: 8080 },
    });
    expect(packetIsHop(fwd!.packet!, hop)).toBe(true);
    const p = join1(dnatted, report).probes.find((x) => x.probe === 'tcp-198.51.100.100-80')!;
    expect(p.verdict).toBe('confirmed');
    expect(p.facts.join('\n')).toMatch(/drops tcp-198\.51\.100\.100-80 at kvm1 br0 FORWARD policy as the model does/);
  });
});

describe('nft trace events in the mangle chains of a host read from nft list ruleset (recorded, nft 1.0.6)', () => {
  it("joins firewalld's mangle_PREROUTING, its zone chains and the marking rule to the model's mangle table", () => {
    const DIR2 = join(ROOT, 'fixtures', 'kernel-traces', 'firewalld-mangle');
    const events = readNftMonitorTrace(readFileSync(join(DIR2, 'nft-monitor-trace.txt'), 'utf8'), 'trace.txt').value!;
    const listing = readListing(readFileSync(join(DIR2, 'nft-ruleset-handles.txt'), 'utf8'), 'ruleset.txt')!;
    const l = loadScenario(join(ROOT, 'fixtures', 'scenarios', 'dr-firewalld-nft-mangle-mark-healthy')).value!;
    const placed = placeTraceEvents(
      [{ node: 'kvm1', file: 'trace.txt', events, drops: [] }],
      modelHostRules(l),
      new Map([['kvm1', listing.value]]),
      l.scenario,
    );
    const mangle = placed.filter((p) => p.event.chain.startsWith('mangle_'));
    expect(mangle.length).toBe(9);
    for (const p of mangle) expect('rule' in p && p.rule !== undefined, `${p.event.chain} joined`).toBe(true);
    const mark = mangle.find((p) => p.event.chain === 'mangle_PRE_public_allow')!;
    expect('rule' in mark && mark.rule?.origin.pos?.line).toBe(35);
    const policy = mangle.at(-1)!;
    expect(policy.event.what).toBe('policy');
    expect('rule' in policy && policy.rule?.text).toBe('policy: ACCEPT');
    // and the filter chains beside them, as before
    const drop = placed.at(-1)!;
    expect(drop.event.verdict).toBe('drop');
    expect('rule' in drop && drop.rule?.chain).toBe('firewalld/filter_IN_public');
  });
});
