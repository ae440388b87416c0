/**
 * Proxmox's own firewall assertions (142 upstream, 244 checks when the missing zones are expanded) and our 16 LVS
 * examples, each packet walked hop by hop through the rules lvsdoctor compiled, evaluated by lvsdoctor's iptables
 * evaluator (real semantics: PVEFW-Drop and PVEFW-reject are walked, ipsets matched with hash:net semantics, the
 * accept mark carried between hops). The verdict must equal the expected one. Read from ../shared at run time.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { externalSuite, skippedBecause } from '../../test/support/conformance.ts';
import { loadPveConformanceCase, pveConformanceCases } from '../../test/support/pve-conformance.ts';
import type { Ipv4 } from '../addr/ipv4.ts';
import { ICMP_TYPES_BY_NAME } from '../netfilter/names.ts';
import type { EthernetFrame, L4Payload } from '../wire/types.ts';
import { compilePveFirewall } from './compile.ts';
import { endpointMac, ipv4OrZero, type PveEndpoint, pveNodeModel, pveSimulate } from './simulate.ts';

const suite = externalSuite('conformance/pve-firewall/');
const cases = pveConformanceCases(suite.dir);
const ZONES = ['host', 'outside', 'nfvm', 'vm100', 'ct200'];

function zone(z: string): PveEndpoint {
  if (z === 'host') return { kind: 'host' };
  if (z === 'outside') return { kind: 'port', bridge: 'vmbr0', port: 'eth0' };
  if (z === 'nfvm') return { kind: 'port', bridge: 'vmbr0', port: 'tapXYZ' };
  const br = /^([a-zA-Z][a-zA-Z0-9]{0,9})\/(\S+)$/.exec(z);
  if (br) return { kind: 'port', bridge: br[1]!, port: br[2]! };
  const g = /^(vm|ct)(\d+)(?:i(\d))?$/.exec(z);
  if (g) return { kind: 'guest', vmid: g[2]!, netid: `net${g[3] ?? 0}` };
  throw new Error(`unknown zone ${z}`);
}

function parseAssertion(line: string): Record<string, string> {
  const body = /^\{(.*)\}\s*$/.exec(line)![1]!;
  const out: Record<string, string> = {};
  for (const part of body.split(',')) {
    if (part.trim() === '') continue;
    const [k, v] = part.split('=>').map((x) => x.trim());
    out[k!] = v!.replace(/^'(.*)'$/, '$1');
  }
  return out;
}

function frameFor(t: Record<string, string>, from: string, to: string, mac: EthernetFrame['src']): EthernetFrame {
  const src = ipv4OrZero(t.source ?? (from === 'host' ? '172.16.1.2' : '100.100.1.2'));
  const dst = ipv4OrZero(t.dest ?? (to === 'host' ? '172.16.1.2' : '100.200.3.4'));
  const proto = t.proto ?? 'tcp';
  const dport = t.dport === undefined ? 0 : Number(t.dport);
  const sport = t.sport === undefined ? 0 : Number(t.sport);
  let protocol: number;
  let payload: L4Payload;
  if (proto === 'tcp') {
    protocol = 6;
    payload = {
      kind: 'tcp',
      srcPort: sport,
      dstPort: dport,
      seq: 1,
      ack: 0,
      flags: 0x02,
      window: 64240,
      urgent: 0,
      options: [],
      payload: new Uint8Array(),
    };
  } else if (proto === 'udp') {
    protocol = 17;
    payload = { kind: 'udp', srcPort: sport, dstPort: dport, payload: new Uint8Array() };
  } else if (proto === 'icmp') {
    protocol = 1;
    const named = ICMP_TYPES_BY_NAME.get(t.dport ?? '');
    payload = { kind: 'icmp', type: named?.type ?? dport, code: named?.code ?? 0, rest: 0, payload: new Uint8Array() };
  } else {
    protocol = proto === 'igmp' ? 2 : proto === 'icmpv6' ? 58 : 253;
    payload = { kind: 'raw', bytes: new Uint8Array(8) };
  }
  return {
    dst: '02:00:00:00:00:02' as EthernetFrame['dst'],
    src: mac,
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol,
      src,
      dst,
      payload,
    },
  };
}

let upstreamChecks = 0;
let upstreamAssertions = 0;

describe('pve-firewall conformance: verdicts', () => {
  skippedBecause(suite.skip);
  if (suite.skip !== undefined) return;
  for (const c of cases) {
    const { input } = loadPveConformanceCase(c);
    const model = pveNodeModel(input, compilePveFirewall(input));
    const lines = readFileSync(new URL('tests', c.dir), 'utf8').split('\n');
    describe(c.name, () => {
      lines.forEach((line, idx) => {
        if (!/^\{.*\}\s*$/.test(line)) return;
        const t = parseAssertion(line);
        const pairs: [string, string][] =
          t.to === undefined
            ? ZONES.filter((z) => z !== t.from).map((z) => [t.from!, z])
            : t.from === undefined
              ? ZONES.filter((z) => z !== t.to).map((z) => [z, t.to!])
              : [[t.from, t.to]];
        if (c.name.startsWith('test-')) {
          upstreamAssertions++;
          upstreamChecks += pairs.length;
        }
        it(`line ${idx + 1}: ${line.trim()}`, () => {
          for (const [from, to] of pairs) {
            const fromE = zone(from);
            const frame = frameFor(t, from, to, endpointMac(input, fromE));
            // The harness gives the address types (default UNICAST) instead of a host's routing table.
            const addrType = (_a: Ipv4, which: 'src' | 'dst') => (which === 'dst' ? t.dsttype : t.srctype) ?? 'UNICAST';
            const r = pveSimulate(model, frame, fromE, zone(to), { addrType });
            expect({ from, to, verdict: r.verdict, problems: r.problems }).toEqual({
              from,
              to,
              verdict: t.action,
              problems: [],
            });
          }
        });
      });
    });
  }
  it('counted 142 upstream assertions expanding to 244 checks', () => {
    expect({ upstreamAssertions, upstreamChecks }).toEqual({ upstreamAssertions: 142, upstreamChecks: 244 });
  });
});
