import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCollectScript } from '../src/cli/cmd-collect.ts';
import { readBundle } from '../src/collect/bundle.ts';
import { collectorScript } from '../src/collect/collector-script.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-collect-script-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

/** Every command the script runs: the words after `run ID TOOL`. */
function commands(script: string): string[] {
  return [...script.matchAll(/^\s*run\s+(?:"[^\n]*?\)"|\S+)\s+\S+\s+(.*)$/gm)].map((m) => m[1]!.trim());
}

const READ_ONLY: readonly RegExp[] = [
  /^uname -a$/,
  /^(ip|bridge) -V$/,
  /^sysctl --version$/,
  /^ip (-j )?(-d )?(link|addr|route|neigh) show( table all)?$/,
  /^bridge -j (-d )?(link|fdb|vlan) show$/,
  /^ebtables (--version|-t (nat|filter) -L --Lc)$/,
  /^ip6?tables-save (--version|-c)$/,
  /^nft (--version|(-a )?list ruleset)$/,
  /^virsh (--version|uri|list --all --name|nwfilter-list|nwfilter-binding-list)$/,
  /^virsh (dumpxml --domain|nwfilter-dumpxml --nwfilter|nwfilter-binding-dumpxml --binding) "\$[a-z]"$/,
  /^ss -Hltnu$/,
  /^ipvsadm (--version|-Ln|-Sn|-Lnc|-Ln --stats|-L --timeout)$/,
  /^keepalived --version$/,
  /^pve-firewall status$/,
  /^ipset save$/,
  /^cat cat "\$2"$/,
  /^net_sysctls$|^proc_net_sysctls$/,
  // Watch mode: interface statistics, and nstat without updating its history file (-s).
  /^ip -s -s link show$/,
  /^nstat -asz$/,
];

describe('the collector script', () => {
  for (const [guest, watch] of [
    [false, undefined],
    [true, undefined],
    [false, 10],
    [true, 10],
  ] as const) {
    const script = collectorScript({ guest, ...(watch ? { watch } : {}) });
    const kind = `${guest ? 'guest' : 'hypervisor'}${watch ? ', --watch 10' : ''}`;

    it(`is valid POSIX sh for dash and sh (${kind})`, () => {
      const file = join(tmp, `${kind}.sh`);
      writeFileSync(file, script);
      for (const shell of ['dash', 'sh'].filter(has)) expect(spawnSync(shell, ['-n', file]).status, shell).toBe(0);
      if (has('shellcheck')) {
        const r = spawnSync('shellcheck', ['-s', 'sh', '-S', 'warning', file]);
        expect(r.stdout.toString()).toBe('');
      }
    });

    it(`runs only listing commands (${kind})`, () => {
      const cmds = commands(script);
      expect(cmds.length).toBeGreaterThan(10);
      const writing = cmds.filter((c) => !READ_ONLY.some((re) => re.test(c)));
      expect(writing).toEqual([]);
      expect(script).not.toMatch(
        /sysctl\s+(-w|--write|-p)|ipvsadm\s+--set|virsh\s+(define|start|destroy|edit|undefine|nwfilter-define|nwfilter-undefine|nwfilter-binding-(create|delete))/,
      );
      expect(script).not.toMatch(/ebtables\s+(-t \S+ )?-[ADFXNPZI]\b|nft\s+(add|delete|flush|-f)|modprobe|insmod/);
    });
  }

  it('runs ipvsadm only when IPVS is already loaded, since ipvsadm would load the module', () => {
    const script = collectorScript({ guest: true });
    expect(script).toContain('if [ -e "$IPVS_PROC" ]; then');
    expect(script).toMatch(/skip ipvsadm-Ln "IPVS not loaded/);
  });

  it('lists every counter at the start and the end of the watch window, and only reads', () => {
    const script = collectorScript({ guest: false, watch: 7 });
    expect(script).toContain('WATCH=7');
    for (const id of ['ebtables-nat', 'ebtables-filter', 'iptables-save', 'ip6tables-save', 'nft-ruleset', 'ip-s-link'])
      expect(script).toContain(`run "counters-$1-${id}"`);
    expect(script).toContain('copyfile "counters-$1-proc-snmp" /proc/net/snmp');
    expect(script).toMatch(/snap start\n[\s\S]*sleep "\$WATCH"\n\s*snap end/);
    // nstat without -s would write its history file.
    expect(script).not.toMatch(/\bnstat\s+-(?!asz\b)/);
    expect(script).toContain('nstat nstat -asz');
  });

  it.skipIf(!has('dash'))(
    'copies the kernel traces named by --trace into the bundle as kernel-trace-N, and refuses a missing one',
    () => {
      const work = join(tmp, 'traces');
      mkdirSync(work, { recursive: true });
      const saved = join(tmp, 'my trace -1.txt');
      writeFileSync(saved, 'trace id 0a1b2c3d bridge nat PREROUTING policy accept \n');
      const script = join(tmp, 'collect-guest.sh');
      writeFileSync(script, collectorScript({ guest: true }));
      const out = execFileSync('dash', [script, '--trace', saved], { cwd: work }).toString().trim();
      const b = readBundle(join(work, out)).value!;
      const c = b.commands.get('kernel-trace-1')!;
      expect(c).toMatchObject({ status: 'ok' });
      expect(b.files.get(c.out)).toContain('trace id 0a1b2c3d');
      const bad = spawnSync('dash', [script, '--trace', join(tmp, 'absent.txt')], { cwd: work });
      expect(bad.status).toBe(2);
      expect(bad.stderr.toString()).toContain('not a readable file');
    },
    60_000,
  );

  it('refuses a --watch that is not whole seconds', () => {
    let err = '';
    const code = runCollectScript({ stdout: () => {}, stderr: (s) => (err += s) }, { guest: false, watch: '1.5' });
    expect(code).toBe(2);
    expect(err).toContain("--watch wants whole seconds (1 to 99999), got '1.5'");
  });

  it('is printed by collect-script', () => {
    let out = '';
    const code = runCollectScript({ stdout: (s) => (out += s), stderr: () => {} }, { guest: true });
    expect(code).toBe(0);
    expect(out).toBe(collectorScript({ guest: true }));
  });

  it.skipIf(!has('dash'))(
    'writes a bundle whose manifest records missing tools and refused commands without failing',
    () => {
      const work = join(tmp, 'run');
      const shims = join(tmp, 'shims');
      mkdirSync(work, { recursive: true });
      mkdirSync(shims, { recursive: true });
      // virsh refuses (as for a user outside the libvirt group); ebtables fails for another reason.
      writeFileSync(
        join(shims, 'virsh'),
        '#!/bin/sh\necho "error: failed to connect to the hypervisor" >&2\necho "error: authentication failed: Permission denied" >&2\nexit 1\n',
      );
      writeFileSync(join(shims, 'ebtables'), '#!/bin/sh\necho "ebtables: table nat does not exist" >&2\nexit 3\n');
      chmodSync(join(shims, 'virsh'), 0o755);
      chmodSync(join(shims, 'ebtables'), 0o755);
      const script = join(tmp, 'collect.sh');
      writeFileSync(script, collectorScript({ guest: false }));
      const out = execFileSync('dash', [script], {
        cwd: work,
        env: { ...process.env, PATH: `${shims}:${process.env.PATH}` },
      })
        .toString()
        .trim();
      expect(readdirSync(work)).toEqual([out]);
      expect(out).toMatch(/^lvsdoctor-bundle-hypervisor-.*(\.tar\.gz)?$/);
      const b = readBundle(join(work, out));
      expect(b.issues).toEqual([]);
      const bundle = b.value!;
      expect(bundle.kind).toBe('hypervisor');
      expect(bundle.kernel).toBeTruthy();
      expect(bundle.commands.get('virsh-list')).toMatchObject({ status: 'denied', exit: 1 });
      expect(bundle.commands.get('ebtables-nat')).toMatchObject({ status: 'failed', exit: 3 });
      expect(bundle.files.get(bundle.commands.get('ebtables-nat')!.err)).toContain('does not exist');
      for (const [tool, path] of bundle.tools)
        if (path === undefined)
          for (const c of bundle.commands.values())
            if (c.command.startsWith(`${tool} `)) expect(c.status, c.command).toBe('missing');
      expect(bundle.commands.get('ip-j-link')?.status).toBe('ok');
    },
    60_000,
  );
});
