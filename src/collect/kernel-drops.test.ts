/**
 * Kernel drop readers: kfree_skb as perf script and tracefs printed it on a 6.18 kernel
 * (fixtures/kernel-traces/founding-real), dropwatch lines, and pwru's default output. pwru could not be recorded
 * here (it needs kprobes, which this kernel is built without): its lines are written after the format its source
 * prints (internal/pwru/output.go: SKB, CPU, PROCESS, NETNS, MARK/x, IFACE, PROTO, MTU, LEN, TUPLE, FUNC).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dropKindOf, readKernelDrops } from './kernel-drops.ts';

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'kernel-traces', 'founding-real');

describe('kernel drop readers', () => {
  for (const [file, tool] of [
    ['kfree-skb-tracefs.txt', 'tracefs'],
    ['kfree-skb-perf.txt', 'perf'],
  ] as const)
    it(`reads ${tool}'s kfree_skb lines with reason, location and protocol`, () => {
      const r = readKernelDrops(readFileSync(join(DIR, file), 'utf8'), file);
      expect(r.issues).toEqual([]);
      const nf = r.value!.filter((e) => e.reason === 'NETFILTER_DROP');
      expect(nf.length).toBeGreaterThan(0);
      expect(nf[0]).toMatchObject({ tool, drop: true, location: 'nft_do_chain+0x46f', count: 1 });
      expect(r.value!.some((e) => e.reason === 'OTHERHOST' && e.protocol === 2048)).toBe(true);
      expect(dropKindOf(nf[0]!)!.dispositions).toEqual(['dropped-by-filter']);
    });

  it('reads dropwatch lines; a netfilter freeing site means a filter drop on kernels without reasons', () => {
    const r = readKernelDrops(
      'Initializing kallsyms db\ndropwatch> start\n2 drops at nf_hook_slow+a4 (0xffffffff8fb4a0b4) [software]\n1 drops at location 0xffffffff81572ec8\n',
      'dw.txt',
    );
    expect(r.issues).toEqual([]);
    expect(r.value!.map((e) => [e.tool, e.count, e.location])).toEqual([
      ['dropwatch', 2, 'nf_hook_slow+a4'],
      ['dropwatch', 1, '0xffffffff81572ec8'],
    ]);
    expect(dropKindOf(r.value![0]!)?.kind).toBe('netfilter drop');
    expect(dropKindOf(r.value![1]!)).toBeUndefined();
  });

  it("reads pwru's default output: path events and drops with reason, interface, netns and tuple", () => {
    const r = readKernelDrops(
      [
        'SKB                CPU PROCESS          NETNS      MARK/x        IFACE       PROTO  MTU   LEN   TUPLE FUNC',
        '0xffff88810a2b3c00 1   ~bin/python3:123 4026532512 0            vnet0:7      0x0800 1500  60    192.243.119.145:51643->192.0.2.208:80(tcp) br_handle_frame',
        '0xffff88810a2b3c00 1   ~bin/python3:123 4026532512 0            vnet0:7      0x0800 1500  60    192.243.119.145:51643->192.0.2.208:80(tcp) kfree_skb_reason(SKB_DROP_REASON_NETFILTER_DROP)',
      ].join('\n'),
      'pwru.txt',
    );
    expect(r.issues).toEqual([]);
    expect(r.value![0]).toMatchObject({ tool: 'pwru', drop: false, location: 'br_handle_frame', iface: 'vnet0' });
    expect(r.value![1]).toMatchObject({
      drop: true,
      reason: 'NETFILTER_DROP',
      netns: '4026532512',
      protocol: 2048,
      tuple: { src: '192.243.119.145', sport: 51643, dst: '192.0.2.208', dport: 80, proto: 'tcp' },
    });
  });

  it('names file and line of what it cannot read', () => {
    const r = readKernelDrops(
      'what\nSKB CPU PROCESS NETNS MARK/x IFACE PROTO MTU LEN TUPLE FUNC\nnot-an-skb 1 x\n',
      'x.txt',
    );
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([
      ['drops-bad-line', 1],
      ['drops-bad-line', 3],
    ]);
  });
});
