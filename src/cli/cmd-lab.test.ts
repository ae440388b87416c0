import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { labUnavailable, preflight } from '../lab/preflight.ts';
import { runLab } from './cmd-lab.ts';
import type { Io } from './io.ts';

const examples = join(import.meta.dirname, '..', '..', 'examples');
const skip = labUnavailable();

function io() {
  const out = { stdout: '', stderr: '' };
  const sink: Io = { stdout: (s) => (out.stdout += s), stderr: (s) => (out.stderr += s) };
  return { out, sink };
}

describe('the lab command', () => {
  it('names what is missing when the machine cannot run the lab', () => {
    expect(
      labUnavailable({
        root: false,
        missing: ['tcpdump (tcpdump)'],
        libvirt: false,
        libvirtMissing: [],
        ipvs: false,
        python: 'python3',
      }),
    ).toBe('the lab needs root (network namespaces, bridges, ebtables); missing commands: tcpdump (tcpdump)');
  });

  describe.skipIf(skip !== undefined)('on a real kernel', () => {
    it('runs the founding case: the probes fail, and the simulator agrees (exit 1)', async () => {
      const { out, sink } = io();
      const code = await runLab(sink, 'run', join(examples, 'kvm-lvs-dr'), { filters: 'compiled', timeoutMs: 4000 });
      expect(code).toBe(1);
      expect(out.stdout).toContain('probe http-to-vip');
      expect(out.stdout).toContain('request last seen at host1:vnet0');
      expect(out.stdout).toContain('✓ kernel and simulator agree');
      // Which plays the director is decided at run time and said.
      expect(out.stdout).toContain(
        preflight().ipvs ? 'directors by real IPVS (ipvsadm)' : 'directors by the nftables emulation',
      );
    });

    it('rehearses a proposed fix with --with-fix (exit 0)', async () => {
      const { out, sink } = io();
      const code = await runLab(sink, 'run', join(examples, 'kvm-lvs-dr'), {
        filters: 'compiled',
        withFix: 'dr-director-filter',
        timeoutMs: 4000,
      });
      expect(out.stderr).toContain('applying fix dr-director-filter:host1:vnet0');
      expect(code).toBe(0);
    });

    it('refuses an unknown fix and a missing scenario with exit 2', async () => {
      const a = io();
      expect(await runLab(a.sink, 'run', join(examples, 'kvm-lvs-dr'), { withFix: 'no-such-fix' })).toBe(2);
      expect(a.out.stderr).toContain('proposed: ');
      const b = io();
      expect(await runLab(b.sink, 'run', join(examples, 'no-such-scenario'))).toBe(2);
    });

    it('brings a lab up and takes it down again; down is idempotent', async () => {
      const up = io();
      expect(await runLab(up.sink, 'up', join(examples, 'kvm-lvs-dr-fixed'), { filters: 'compiled' })).toBe(0);
      const ns = /(lvsd-up\d+-\d+-)client/.exec(up.out.stdout)?.[1];
      expect(ns).toBeDefined();
      // A lab brought up belongs to no live run: `lab down` removes it (its owner is this process, so free it).
      const down = io();
      expect(await runLab(down.sink, 'down', join(examples, 'kvm-lvs-dr-fixed'))).toBe(0);
      const again = io();
      expect(await runLab(again.sink, 'down', join(examples, 'kvm-lvs-dr-fixed'))).toBe(0);
      expect(again.out.stdout).not.toContain(ns!);
    });
  });
});
