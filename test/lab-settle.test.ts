/**
 * The lab probes only once its links are up. A veth's operational state and a bridge port's state follow carrier
 * through the kernel's linkwatch, which handles a veth's event at once only when its ifindex differs from its
 * peer's; the two ends of a veth between namespaces often get the same ifindex (each namespace numbers its own), and
 * then the port can stay `disabled` for up to a second while `ip link` shows it `NO-CARRIER` (up, with carrier, not
 * running). A probe sent then loses its broadcast on that port: in lab-random-202025 the real server missed the
 * gateway's ARP request for the VIP, only the director answered, and the probe succeeded where it otherwise fails.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labDown, labUp } from '../src/lab/lab.ts';
import { LAB_SKIP_REASON, load } from './lab-helpers.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'lab');

interface JsonLink {
  readonly ifname: string;
  readonly flags: readonly string[];
  readonly operstate?: string;
  readonly linkinfo?: { readonly info_slave_kind?: string; readonly info_slave_data?: { readonly state?: string } };
}

/** Interfaces that are up with carrier but not operational, and bridge ports with carrier that do not forward. */
function notUp(ns: string): string[] {
  const links = JSON.parse(execFileSync('ip', ['-n', ns, '-d', '-j', 'link', 'show']).toString()) as JsonLink[];
  const out: string[] = [];
  for (const l of links) {
    if (!l.flags.includes('UP') || !l.flags.includes('LOWER_UP') || l.flags.includes('LOOPBACK')) continue;
    const port = l.linkinfo?.info_slave_kind === 'bridge' ? l.linkinfo.info_slave_data?.state : undefined;
    if (!['UP', 'UNKNOWN'].includes(l.operstate ?? '') || (port !== undefined && port !== 'forwarding'))
      out.push(`${ns} ${l.ifname}: <${l.flags.join(',')}> operstate ${l.operstate}${port ? `, port ${port}` : ''}`);
  }
  return out;
}

describe.skipIf(LAB_SKIP_REASON !== undefined)('lab up', () => {
  it('returns only when every interface with carrier is operational and every such bridge port forwards', async () => {
    const loaded = load(join(FIXTURES, 'lab-random-202025'));
    for (let k = 0; k < 4; k++) {
      const lab = await labUp(loaded, { filters: 'compiled', directorMode: { kind: 'fresh' } });
      try {
        expect(lab.plan.namespaces.flatMap((n) => notUp(n.ns))).toEqual([]);
        expect(lab.warnings.filter((w) => w.includes('still coming up'))).toEqual([]);
      } finally {
        await labDown(lab);
      }
    }
  }, 120_000);
});
