/**
 * Issue 15: the root collector under hostile names and planted links, under dash, bash and busybox sh (each with its
 * own utilities where it has them). virsh, hostname and date are PATH shims; nothing outside the test's directory is
 * touched.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readBundle } from '../src/collect/bundle.ts';
import { collectorScript } from '../src/collect/collector-script.ts';

const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-collect-hostile-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const which = (cmd: string) =>
  spawnSync('sh', ['-c', `command -v ${cmd}`])
    .stdout?.toString()
    .trim() || cmd;

/** Domain names that differ only outside [A-Za-z0-9._-], start with `-`, or carry shell syntax. */
const DOMAINS = ['web 1', 'web_1', 'web:1', '-rf', '--help', 'x;touch PWNED;#', "q'uote", '$(touch PWNED2)', 'plain'];
const FILTERS = [
  ['0b1e5c3a-1111-4d2e-9c5a-3c9a0e1f2a01', 'my filter'],
  ['0b1e5c3a-2222-4d2e-9c5a-3c9a0e1f2a02', 'clean-traffic'],
] as const;

const VIRSH = `#!/bin/sh
# A virsh that answers the collector's listings and refuses a name where an option is expected.
xml() { printf '%s' "$1" | sed "s/&/\\&amp;/g; s/</\\&lt;/g; s/'/\\&apos;/g"; }
case "$1" in
  --version) echo 9.0.0 ;;
  uri) echo qemu:///system ;;
  list) ${DOMAINS.map((d) => `printf '%s\\n' '${d.replace(/'/g, `'\\''`)}'`).join('; ')} ;;
  dumpxml)
    [ "$2" = --domain ] || { echo "error: expected --domain, got $2" >&2; exit 1; }
    echo "<domain type='kvm'><name>$(xml "$3")</name></domain>" ;;
  nwfilter-list)
    echo ' UUID                                   Name'
    echo '------------------------------------------------------------------'
    ${FILTERS.map(([u, n]) => `echo ' ${u}   ${n}'`).join('; ')} ;;
  nwfilter-dumpxml)
    [ "$2" = --nwfilter ] || { echo "error: expected --nwfilter" >&2; exit 1; }
    case "$3" in
${FILTERS.map(([u, n]) => `      ${u}) echo "<filter name='${n}' chain='root'><uuid>${u}</uuid></filter>" ;;`).join('\n')}
      *) echo "error: no filter $3" >&2; exit 1 ;;
    esac ;;
  nwfilter-binding-list) echo ' Port Dev   Filter'; echo '----------------------'; echo ' vnet0      clean-traffic' ;;
  nwfilter-binding-dumpxml)
    [ "$2" = --binding ] || { echo "error: expected --binding" >&2; exit 1; }
    echo "<filterbinding><portdev name='$3'/></filterbinding>" ;;
  *) exit 0 ;;
esac
`;

function shims(dir: string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'virsh'), VIRSH);
  writeFileSync(join(dir, 'hostname'), '#!/bin/sh\necho h1\n');
  writeFileSync(
    join(dir, 'date'),
    '#!/bin/sh\ncase "$*" in *%Y%m%dT*) echo 20260101T000000Z ;; *) echo 2026-01-01T00:00:00Z ;; esac\n',
  );
  for (const f of ['virsh', 'hostname', 'date']) chmodSync(join(dir, f), 0o755);
}

/** A directory of busybox applets only (the utilities the script uses), for a busybox-only PATH. */
function busyboxBin(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const bb = which('busybox');
  for (const a of 'sh od tr cut awk sed tar gzip mkdir mv rm rmdir cat grep cksum uname id find sort timeout env'.split(
    ' ',
  ))
    symlinkSync(bb, join(dir, a));
}

const SHELLS = [
  { name: 'dash', argv: ['dash'], ok: has('dash'), busybox: false },
  { name: 'bash', argv: ['bash'], ok: has('bash'), busybox: false },
  { name: 'busybox sh', argv: [which('busybox'), 'sh'], ok: has('busybox'), busybox: true },
];

describe('the collector under hostile names and a planted link', () => {
  for (const sh of SHELLS)
    it.skipIf(!sh.ok)(`keeps every name apart, passes none as an option, writes through no link (${sh.name})`, () => {
      const root = join(tmp, sh.name.replace(/\s/g, '-'));
      const work = join(root, 'work');
      const bin = join(root, 'shims');
      mkdirSync(work, { recursive: true });
      shims(bin);
      let path = `${bin}:${process.env.PATH}`;
      if (sh.busybox) {
        busyboxBin(join(root, 'bb'));
        path = `${bin}:${join(root, 'bb')}`;
      }
      const victim = join(root, 'victim.txt');
      writeFileSync(victim, 'keep');
      const victimDir = join(root, 'victim-dir');
      mkdirSync(victimDir);
      const name = 'lvsdoctor-bundle-hypervisor-h1-20260101T000000Z';
      symlinkSync(victim, join(work, `${name}.tar.gz`));
      symlinkSync(victim, join(work, `${name}.tar.gz.part`));
      symlinkSync(victimDir, join(work, name));
      const script = join(root, 'collect.sh');
      writeFileSync(script, collectorScript({ guest: false }));
      const r = spawnSync(sh.argv[0]!, [...sh.argv.slice(1), script], {
        cwd: work,
        env: { PATH: path, HOME: root },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(r.status, r.stderr).toBe(0);
      const out = r.stdout.trim();
      expect(out).toMatch(/^lvsdoctor-bundle-hypervisor-h1-20260101T000000Z-\d+-1(\.tar\.gz)?$/);
      // Nothing written through the links; nothing left but the bundle and the planted links.
      expect(readFileSync(victim, 'utf8')).toBe('keep');
      expect(readdirSync(victimDir)).toEqual([]);
      expect(readdirSync(work).sort()).toEqual([name, `${name}.tar.gz`, `${name}.tar.gz.part`, out].sort());
      expect(lstatSync(join(work, out)).mode & 0o077).toBe(0);
      expect(existsSync(join(work, 'PWNED')) || existsSync(join(root, 'PWNED2'))).toBe(false);

      const b = readBundle(join(work, out));
      expect(b.issues).toEqual([]);
      const bundle = b.value!;
      const domainIds = [...bundle.commands.keys()].filter((k) => k.startsWith('domain-'));
      expect(domainIds).toHaveLength(DOMAINS.length);
      const seen = new Set<string>();
      for (const id of domainIds) {
        const c = bundle.commands.get(id)!;
        expect(c.status, `${id}: ${bundle.files.get(c.err)}`).toBe('ok');
        const m = /<name>(.*)<\/name>/.exec(bundle.files.get(c.out) ?? '');
        seen.add(
          m![1]!
            .replace(/&apos;/g, "'")
            .replace(/&lt;/g, '<')
            .replace(/&amp;/g, '&'),
        );
      }
      expect([...seen].sort()).toEqual([...DOMAINS].sort());
      // The filter whose name holds a space is collected (by UUID).
      const filters = [...bundle.commands.keys()].filter((k) => k.startsWith('nwfilter-'));
      const texts = filters.map((id) => bundle.files.get(bundle.commands.get(id)!.out) ?? '');
      expect(texts.some((t) => t.includes("name='my filter'"))).toBe(true);
      expect(bundle.commands.get('binding-vnet0')?.status).toBe('ok');
    });
});

describe('the collector in a directory others can write', () => {
  const name = 'lvsdoctor-bundle-hypervisor-h1-20260101T000000Z';
  for (const sh of SHELLS)
    it.skipIf(!sh.ok)(
      `keeps the bundle in its private directory in a sticky one, racing links planted at the final name notwithstanding (${sh.name})`,
      () => {
        const root = join(tmp, `race-${sh.name.replace(/\s/g, '-')}`);
        const shared = join(root, 'shared');
        const bin = join(root, 'shims');
        mkdirSync(shared, { recursive: true });
        chmodSync(shared, 0o1777);
        shims(bin);
        let path = `${bin}:${process.env.PATH}`;
        let gzip = which('gzip');
        if (sh.busybox) {
          busyboxBin(join(root, 'bb'));
          path = `${bin}:${join(root, 'bb')}`;
          gzip = `${which('busybox')} gzip`;
        }
        const victimDir = join(root, 'victim-dir');
        mkdirSync(victimDir);
        // The attacker's move, made at the worst moment: while the bundle is packed (after any check of the final
        // name, before any rename), links to a directory appear at every name the bundle could be moved to.
        writeFileSync(
          join(bin, 'gzip'),
          `#!/bin/sh\nfor n in "${name}" "${name}.tar.gz"; do ln -s "${victimDir}" "${shared}/$n" 2>/dev/null; done\nexec ${gzip} "$@"\n`,
        );
        chmodSync(join(bin, 'gzip'), 0o755);
        const script = join(root, 'collect.sh');
        writeFileSync(script, collectorScript({ guest: false }));
        const r = spawnSync(sh.argv[0]!, [...sh.argv.slice(1), script], {
          cwd: shared,
          env: { PATH: path, HOME: root },
          encoding: 'utf8',
          timeout: 120_000,
        });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toContain('is shared with other users: the bundle stays in the private directory');
        const out = r.stdout.trim();
        expect(out).toMatch(new RegExp(`^\\./\\.lvsdoctor-collect-\\d+-0/${name}\\.tar\\.gz$`));
        expect(readdirSync(victimDir)).toEqual([]);
        const priv = join(shared, out.split('/')[1]!);
        expect(lstatSync(priv).mode & 0o777).toBe(0o700);
        expect(readdirSync(priv)).toEqual([`${name}.tar.gz`]);
        const b = readBundle(join(shared, out));
        expect(b.issues).toEqual([]);
        expect(b.value!.commands.size).toBeGreaterThan(10);
      },
    );

  it.skipIf(!has('dash'))(
    'refuses to run where anyone could replace its private directory (writable, not sticky)',
    () => {
      const root = join(tmp, 'open');
      const open = join(root, 'open');
      const bin = join(root, 'shims');
      mkdirSync(open, { recursive: true });
      chmodSync(open, 0o777);
      shims(bin);
      const script = join(root, 'collect.sh');
      writeFileSync(script, collectorScript({ guest: false }));
      const r = spawnSync('dash', [script], {
        cwd: open,
        env: { PATH: `${bin}:${process.env.PATH}`, HOME: root },
        encoding: 'utf8',
      });
      expect(r.status).toBe(1);
      expect(r.stderr).toBe(
        `lvsdoctor-collect: ${open} can be written by others and is not sticky, so anyone could replace what the collector writes there: run it from a directory only you can write (cd /root)\n`,
      );
      expect(readdirSync(open)).toEqual([]);
    },
  );
});
