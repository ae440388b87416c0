import { describe, expect, it } from 'vitest';
import {
  type CounterSource,
  countDeltas,
  readCounterPair,
  readEbtablesCounters,
  readNftCounters,
  readSaveCounters,
  ruleCountKey,
} from './counter-read.ts';

// As ebtables-nft 1.8.9 prints `ebtables -t nat -L --Lc` (and `--Ln` numbers).
const EB = `Bridge table: nat

Bridge chain: PREROUTING, entries: 1, policy: ACCEPT
-i vnet0 -j libvirt-I-vnet0 , pcnt = 120 -- bcnt = 9000

Bridge chain: I-vnet0-ipv4-ip, entries: 3, policy: RETURN
-p IPv4 --ip-src 0.0.0.0 --ip-proto udp -j RETURN , pcnt = 0 -- bcnt = 0
-p IPv4 --ip-src 192.0.2.10 -j RETURN , pcnt = 63 -- bcnt = 5000
-j DROP , pcnt = 57 -- bcnt = 3420
`;

describe('counter listings', () => {
  it('reads ebtables --Lc rules with chain, position, text and counts', () => {
    const r = readEbtablesCounters(EB, 'eb.txt');
    expect(r.issues).toEqual([]);
    expect(r.value!.map((c) => [c.table, c.chain, c.ruleNumber, c.text, c.packets, c.bytes, c.pos.line])).toEqual([
      ['nat', 'PREROUTING', 1, '-i vnet0 -j libvirt-I-vnet0', 120, 9000, 4],
      ['nat', 'I-vnet0-ipv4-ip', 1, '-p IPv4 --ip-src 0.0.0.0 --ip-proto udp -j RETURN', 0, 0, 7],
      ['nat', 'I-vnet0-ipv4-ip', 2, '-p IPv4 --ip-src 192.0.2.10 -j RETURN', 63, 5000, 8],
      ['nat', 'I-vnet0-ipv4-ip', 3, '-j DROP', 57, 3420, 9],
    ]);
  });

  it('reads --Ln numbered listings the same, and says which rule lacks counters', () => {
    const r = readEbtablesCounters(
      'Bridge chain: X, entries: 2, policy: ACCEPT\n1. -j DROP , pcnt = 2 -- bcnt = 3\n2. -j ACCEPT\n',
      'f',
      'filter',
    );
    expect(r.value!.map((c) => [c.text, c.packets])).toEqual([['-j DROP', 2]]);
    expect(r.issues.map((i) => `${i.pos?.file}:${i.pos?.line} ${i.message}`)).toEqual([
      "f:3 rule 2 of X: no ', pcnt = N -- bcnt = M' (was it listed with --Lc?)",
    ]);
  });

  it('reads iptables-save -c rules and policies, and the legacy ebtables-save -c N M form', () => {
    const r = readSaveCounters(
      '*filter\n:INPUT ACCEPT [10:800]\n:FI-vnet0 - [0:0]\n[5:300] -A FI-vnet0 -p tcp --dport 80 -j DROP\n[1:60] -A FI-vnet0 -j RETURN\nCOMMIT\n',
      'ipt.txt',
      'iptables',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.map((c) => [c.chain, c.ruleNumber, c.text, c.packets, c.bytes])).toEqual([
      ['INPUT', undefined, 'policy: ACCEPT', 10, 800],
      ['FI-vnet0', 1, '-A FI-vnet0 -p tcp --dport 80 -j DROP', 5, 300],
      ['FI-vnet0', 2, '-A FI-vnet0 -j RETURN', 1, 60],
    ]);
    const l = readSaveCounters('*nat\n-A PREROUTING -i vnet0 -j libvirt-I-vnet0 -c 7 420\n', 'eb-save', 'ebtables');
    expect(l.value!.map((c) => [c.chain, c.text, c.packets, c.bytes])).toEqual([
      ['PREROUTING', '-A PREROUTING -i vnet0 -j libvirt-I-vnet0', 7, 420],
    ]);
    const bad = readSaveCounters('-A X -j DROP\n*filter\n-A X -j DROP\n', 'x', 'iptables');
    expect(bad.issues.map((i) => `${i.pos?.line} ${i.code}`)).toEqual(['1 counters-bad-line', '3 counters-missing']);
  });

  it('reads nft list ruleset counters numbered among the rules of their chain', () => {
    const r = readNftCounters(
      'table bridge filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tether type ip counter packets 0 bytes 0\n\t\tip protocol tcp counter packets 4 bytes 240 drop\n\t}\n}\n',
      'nft.txt',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.map((c) => [c.table, c.chain, c.ruleNumber, c.text, c.packets])).toEqual([
      ['bridge filter', 'FORWARD', 1, 'ether type ip counter', 0],
      ['bridge filter', 'FORWARD', 2, 'ip protocol tcp counter drop', 4],
    ]);
    expect(readNftCounters('table ip x {\n chain y {\n', 'cut').issues[0]?.code).toBe('counters-unbalanced');
  });

  it('keeps only what moved, and counts a rule changed in the window from zero', () => {
    const a = readEbtablesCounters(EB, 'a').value!;
    const b = readEbtablesCounters(
      EB.replace('pcnt = 57 -- bcnt = 3420', 'pcnt = 114 -- bcnt = 6840').replace(
        '--ip-src 192.0.2.10 -j RETURN , pcnt = 63',
        '--ip-src 192.0.2.11 -j RETURN , pcnt = 63',
      ),
      'b',
    ).value!;
    const d = countDeltas(a, b);
    expect(d.moved.map((m) => [ruleCountKey(m), m.packets, m.bytes])).toEqual([
      ['ebtables\tnat\tI-vnet0-ipv4-ip\t2', 63, 5000],
      ['ebtables\tnat\tI-vnet0-ipv4-ip\t3', 57, 3420],
    ]);
    expect(d.changed.map((c) => c.text)).toEqual(['-p IPv4 --ip-src 192.0.2.11 -j RETURN']);
  });

  it('pairs the two ends by key however they are listed: reordered, and a chain listed twice (in the order listed)', () => {
    const a = readEbtablesCounters(EB, 'a.txt').value!;
    const b = readEbtablesCounters(EB.replace('pcnt = 57 -- bcnt = 3420', 'pcnt = 60 -- bcnt = 3600'), 'b.txt').value!;
    const moved = (x: typeof a, y: typeof b) => countDeltas(x, y).moved.map((m) => [ruleCountKey(m), m.packets]);
    // In order (paired by index) and reversed (paired by key): the same deltas.
    expect(moved(a, b)).toEqual([['ebtables\tnat\tI-vnet0-ipv4-ip\t3', 3]]);
    expect(moved([...a].reverse(), b)).toEqual([['ebtables\tnat\tI-vnet0-ipv4-ip\t3', 3]]);
    // The chain listed twice at both ends: its rules pair in the order listed (pairing every rule with the last
    // listing of its key, as a map does, would see counters move where the two ends list the same counts).
    const twice = `${EB}\nBridge chain: I-vnet0-ipv4-ip, entries: 3, policy: RETURN\n-p IPv4 -j RETURN , pcnt = 0 -- bcnt = 0\n-j ACCEPT , pcnt = 0 -- bcnt = 0\n-j DROP , pcnt = 50 -- bcnt = 3000\n`;
    const a2 = readEbtablesCounters(twice, 'a.txt').value!;
    const b2 = readEbtablesCounters(twice, 'b.txt').value!;
    expect(a2.length).toBe(b2.length);
    expect(moved(a2, b2)).toEqual([]);
    const b3 = readEbtablesCounters(twice.replace('pcnt = 50 -- bcnt = 3000', 'pcnt = 52 -- bcnt = 3100'), 'b.txt');
    expect(moved(a2, b3.value!)).toEqual([['ebtables\tnat\tI-vnet0-ipv4-ip\t3', 2]]);
  });

  it("reads a window's two ends keeping only the lines they list differently, with the deltas and issues of a full read", () => {
    const full = (source: CounterSource, a: string, b: string, table?: string) => {
      const read = (t: string, f: string) =>
        source === 'ebtables'
          ? readEbtablesCounters(t, f, table)
          : source === 'nft'
            ? readNftCounters(t, f)
            : readSaveCounters(t, f, source);
      return [read(a, 'a'), read(b, 'b')] as const;
    };
    const SAVE =
      '*filter\n:INPUT ACCEPT [10:800]\n:FI-vnet0 - [0:0]\n[5:300] -A FI-vnet0 -p tcp --dport 80 -j DROP\n-A FI-vnet0 -j ACCEPT\n[1:60] -A FI-vnet0 -j RETURN\nCOMMIT\n';
    const NFT =
      'table bridge filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tether type ip counter packets 0 bytes 0\n\t\tip protocol tcp counter packets 4 bytes 240 drop\n\t}\n}\n';
    const cases: [CounterSource, string, string, string | undefined][] = [
      // Counters moved (a rule, a policy); a rule's text changed; a line without counters read at both ends.
      ['ebtables', EB, EB.replace('pcnt = 57 -- bcnt = 3420', 'pcnt = 60 -- bcnt = 3600'), 'nat'],
      ['ebtables', EB, EB.replace('--ip-src 192.0.2.10', '--ip-src 192.0.2.11').replace('9000', '9100'), 'nat'],
      ['ebtables', `${EB}-j ACCEPT\n`, `${EB}-j ACCEPT\n`.replace('pcnt = 0 --', 'pcnt = 1 --'), 'nat'],
      // A chain renamed at the same line: the rules after it are other rules (read in full).
      [
        'ebtables',
        EB,
        EB.replace('chain: I-vnet0-ipv4-ip', 'chain: I-vnet1-ipv4-ip').replace('= 63 --', '= 64 --'),
        'nat',
      ],
      ['iptables', SAVE, SAVE.replace('[10:800]', '[12:900]').replace('[5:300]', '[6:360]'), undefined],
      // A rule moved to another chain at the same line renumbers the chains: read in full.
      ['iptables', SAVE, SAVE.replace('[5:300] -A FI-vnet0', '[5:300] -A FO-vnet0'), undefined],
      ['nft', NFT, NFT.replace('packets 4 bytes 240', 'packets 9 bytes 540'), undefined],
      ['nft', NFT, NFT.replace('ether type ip counter packets 0 bytes 0', 'ether type ip'), undefined],
      ['nft', NFT, NFT.replace('policy accept;', 'policy drop;'), undefined],
    ];
    for (const [source, a, b, table] of cases) {
      const [fa, fb] = full(source, a, b, table);
      const p = readCounterPair(source, { text: a, file: 'a' }, { text: b, file: 'b' }, table);
      expect(p.start.issues).toEqual(fa.issues);
      expect(p.end.issues).toEqual(fb.issues);
      expect(countDeltas(p.start.value!, p.end.value!)).toEqual(countDeltas(fa.value!, fb.value!));
      expect(p.end.value!.length).toBeLessThanOrEqual(fb.value!.length);
    }
    // Only the lines listed differently are kept when nothing else differs.
    const p = readCounterPair(
      'ebtables',
      { text: EB, file: 'a' },
      { text: EB.replace('= 57 --', '= 58 --'), file: 'b' },
    );
    expect(p.end.value!.map((c) => c.pos.line)).toEqual([9]);
  });
});
