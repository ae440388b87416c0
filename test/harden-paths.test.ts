/**
 * Issue 15: every path lvsdoctor reads or writes stays inside what the user named; links, special files and existing
 * files are refused; unexpected exceptions are exit 70, never a finding.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
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
import { main } from '../src/cli/main.ts';
import { LAB_SKIP_REASON } from './lab-helpers.ts';
import { runCli } from './run-cli.ts';

const ROOT = join(import.meta.dirname, '..');
const EX = join(ROOT, 'examples', 'kvm-lvs-dr');
const BUNDLE = join(ROOT, 'fixtures', 'collect', 'founding-real', 'lvsdoctor-bundle-hypervisor-host1');
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-harden-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const fresh = (tag: string): string => join(tmp, `${tag}-${n++}`);

/** A copy of the example whose director has a hostile domain name and tap name. */
function hostileExample(dev: string, name: string): string {
  const dir = fresh('hostile');
  cpSync(EX, dir, { recursive: true });
  const xml = join(dir, 'host1', 'r2-10105.xml');
  writeFileSync(
    xml,
    readFileSync(xml, 'utf8')
      .replace("<target dev='vnet0'/>", `<target dev='${dev}'/>`)
      .replace('<name>r2-10105</name>', `<name>${name}</name>`),
  );
  const yaml = join(dir, 'scenario.yaml');
  writeFileSync(yaml, readFileSync(yaml, 'utf8').replace(/^ {2}r2-10105:/m, `  '${name.replace(/'/g, "''")}':`));
  return dir;
}

/** Every path under `dir`, relative. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

describe('an unexpected exception', () => {
  it('is one line naming the command, exit 70, the stack only with --debug', async () => {
    const boom = (_: string) => {
      throw new TypeError('boom while printing');
    };
    let err = '';
    const io = { stdout: boom, stderr: (s: string) => (err += s) };
    expect(await main(['findings'], io)).toBe(70);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toContain('internal error while running "findings"');
    expect(err).toContain('TypeError: boom while printing');
    expect(err).not.toMatch(/\n\s+at /);
    err = '';
    expect(await main(['findings', '--debug'], io)).toBe(70);
    expect(err).toMatch(/\n\s+at /);
  });
});

describe('--fix-dir', () => {
  it('refuses a tap name the kernel refuses (../../x) at its line, and writes nothing', async () => {
    const dir = hostileExample('../../../../../../tmp/lvsdoctor-escape', "r2;touch x;#'q");
    const out = fresh('fixes');
    const r = await runCli('diagnose', dir, '--fix-dir', out);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /r2-10105\.xml:\d+(:\d+)?: error: <target dev=> "\.\.\/\.\.\/[^"]*" cannot be an interface name: it is \d+ bytes long; the kernel accepts 1 to 15 bytes/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(existsSync('/tmp/lvsdoctor-escape')).toBe(false);
    expect(existsSync(out) ? tree(out) : []).toEqual([]);
    const slash = await runCli('diagnose', hostileExample('../x', 'r2'), '--fix-dir', fresh('fixes'));
    expect(slash.code).toBe(2);
    expect(slash.stderr).toContain(`<target dev=> "../x" cannot be an interface name: it holds '/'`);
  });

  it('writes files named from a hostile tap name the kernel accepts inside the directory only, quoted', async () => {
    const tap = '-t$(id)`x`;\'"';
    const dir = hostileExample(tap.replace(/'/g, '&apos;').replace(/"/g, '&quot;'), "r2;touch x;#'q");
    const out = fresh('fixes');
    const r = await runCli('diagnose', dir, '--fix-dir', out);
    expect(r.stderr).toBe(`wrote the fixes' files to ${out}\n`);
    expect(r.code).toBe(1);
    const files = tree(out);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) expect(f.split('/').every((p) => p !== '..' && p !== '.' && !p.startsWith('-'))).toBe(true);
    expect(r.stdout).toContain(`virsh edit --domain 'r2;touch x;#'\\''q'`);
    expect(r.stdout).toContain(`virsh nwfilter-binding-delete --binding '-t$(id)\`x\`;'\\''"'\n`);
    expect(r.stdout).not.toMatch(/^\s*virsh edit r2;/m);
  });

  it('gives names that differ only in unsafe characters distinct files', async () => {
    const { fileNamePart } = await import('../src/source/shell.ts');
    const names = ['a b', 'a_b', 'a%20b', 'a/b', 'a:b', '..', '.', '-rf', 'x'.repeat(300), `${'x'.repeat(299)}y`];
    const parts = names.map(fileNamePart);
    expect(new Set(parts).size).toBe(names.length);
    for (const p of parts) {
      expect(p).toMatch(/^[A-Za-z0-9_%~][A-Za-z0-9_.%~-]*$/);
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(120);
    }
    expect(fileNamePart('r2-10105')).toBe('r2-10105');
  });

  it('never overwrites a file nor writes through a planted link', async () => {
    const out = fresh('fixes');
    expect((await runCli('diagnose', EX, '--fix-dir', out)).code).toBe(1);
    const before = readFileSync(join(out, 'dr-director-filter-host1-vnet0', 'binding-vnet0.xml'), 'utf8');
    const again = await runCli('diagnose', EX, '--fix-dir', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^lvsdoctor: refusing to overwrite .*: it exists/m);
    expect(readFileSync(join(out, 'dr-director-filter-host1-vnet0', 'binding-vnet0.xml'), 'utf8')).toBe(before);

    const victim = join(fresh('victim'), 'secret');
    mkdirSync(join(victim, '..'), { recursive: true });
    writeFileSync(victim, 'keep');
    const planted = fresh('fixes');
    mkdirSync(join(planted, 'dr-director-filter-host1-vnet0'), { recursive: true });
    symlinkSync(victim, join(planted, 'dr-director-filter-host1-vnet0', 'binding-vnet0.xml'));
    expect((await runCli('diagnose', EX, '--fix-dir', planted)).code).toBe(2);
    expect(readFileSync(victim, 'utf8')).toBe('keep');

    const dirLink = fresh('fixes');
    mkdirSync(dirLink);
    const elsewhere = fresh('elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(dirLink, 'remove-filterref-host1-vnet0'));
    const r = await runCli('diagnose', EX, '--fix-dir', dirLink);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to write under .*remove-filterref-host1-vnet0: it is a link/);
    expect(readdirSync(elsewhere)).toEqual([]);
  });

  it('refuses an empty name, a file and an impossible directory at once', async () => {
    for (const [dir, msg] of [
      ['', '--fix-dir is empty'],
      ['/etc/hostname', 'is not a directory'],
      ['/proc/lvsdoctor-x/y', 'cannot create /proc/lvsdoctor-x'],
      [`/tmp/${'n'.repeat(300)}`, 'file name too long'],
    ] as const) {
      const r = await runCli('diagnose', EX, '--fix-dir', dir);
      expect(r.code, dir).toBe(2);
      expect(r.stderr).toContain(msg);
      expect(r.stdout).toBe('');
    }
  });
});

describe('--pcap-dir', () => {
  it('refuses existing files, links and non-directories', async () => {
    const out = fresh('pcaps');
    expect((await runCli('trace', EX, '--pcap-dir', out)).code).toBe(1);
    const again = await runCli('trace', EX, '--pcap-dir', out);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('refusing to overwrite');
    const planted = fresh('pcaps');
    mkdirSync(planted);
    const victim = fresh('victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, join(planted, 'host1_br0.pcap'));
    expect((await runCli('trace', EX, '--pcap-dir', planted)).code).toBe(2);
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect((await runCli('trace', EX, '--pcap-dir', '/dev/null')).code).toBe(2);
  });
});

describe('import -o DIR', () => {
  it('imports again into its own directory but never deletes what it did not write', async () => {
    const out = fresh('import');
    const first = await runCli('import', BUNDLE, '-o', out);
    expect(first.code, first.stderr).toBe(0);
    const again = await runCli('import', BUNDLE, '-o', out);
    expect(again.code, again.stderr).toBe(0);
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const third = await runCli('import', BUNDLE, '-o', out);
    expect(third.code).toBe(2);
    expect(third.stderr).toContain('notes.txt');
    expect(readFileSync(join(out, 'notes.txt'), 'utf8')).toBe('mine');
    expect(existsSync(join(out, 'scenario.yaml'))).toBe(true);
  });

  it('refuses a file, an empty name and /proc at once', async () => {
    for (const dir of ['/etc/hostname', '', '/proc/lvsdoctor-x'])
      expect((await runCli('import', BUNDLE, '-o', dir)).code, dir).toBe(2);
  });

  it('exits 2 on an unreadable bundle, alone or beside good ones', async () => {
    const bad = join(tmp, 'bad.tar.gz');
    writeFileSync(bad, 'not a bundle');
    expect((await runCli('import', join(tmp, 'no-such-bundle.tar.gz'), '-o', fresh('import'))).code).toBe(2);
    const r = await runCli('import', BUNDLE, bad, '-o', fresh('import'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bad.tar.gz');
  });
});

describe('a directory bundle', () => {
  function bundleCopy(): string {
    const dir = fresh('bundle');
    cpSync(BUNDLE, dir, { recursive: true });
    return dir;
  }
  const secret = join(tmp, 'secret.txt');
  writeFileSync(secret, 'root:SECRET-HASH:19000:0:99999:7:::\n');

  it('refuses a manifest entry outside the bundle', async () => {
    const b = bundleCopy();
    const m = join(b, 'manifest.tsv');
    writeFileSync(m, readFileSync(m, 'utf8').replace(/\tcmd\/ip-addr\.out\t/, `\t../../../../../..${secret}\t`));
    const out = fresh('import');
    const r = await runCli('import', b, '-o', out);
    expect(r.stderr + r.stdout).not.toContain('SECRET-HASH');
    expect(r.stderr).toContain('outside the bundle');
    const d = await runCli('diagnose', b);
    expect(d.stderr + d.stdout).not.toContain('SECRET-HASH');
    expect(d.code).toBe(2);
  });

  it('refuses an output file that is a link leading out, a FIFO, or a device', async () => {
    for (const plant of ['link', 'fifo', 'dev'] as const) {
      const b = bundleCopy();
      const f = join(b, 'cmd', 'ip-addr.out');
      rmSync(f);
      if (plant === 'link') symlinkSync(secret, f);
      else if (plant === 'dev') symlinkSync('/dev/zero', f);
      else execFileSync('mkfifo', [f]);
      const out = fresh('import');
      const r = await runCli('import', b, '-o', out);
      expect(r.code, plant).toBe(2);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(/ip-addr\.out/);
      if (existsSync(out))
        for (const x of tree(out)) expect(readFileSync(join(out, x), 'utf8')).not.toContain('SECRET');
    }
  });
});

describe('scenario artifacts', () => {
  it('stay inside the scenario directory: ../ paths, absolute paths, links out, FIFOs are refused', async () => {
    for (const plant of ['dotdot', 'absolute', 'link', 'fifo'] as const) {
      const dir = fresh('scn');
      cpSync(EX, dir, { recursive: true });
      const yaml = join(dir, 'scenario.yaml');
      const f = join(dir, 'host1', 'ip-addr.txt');
      if (plant === 'dotdot')
        writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('host1/ip-addr.txt', '../../../../etc/passwd'));
      else if (plant === 'absolute')
        writeFileSync(yaml, readFileSync(yaml, 'utf8').replace('host1/ip-addr.txt', '/etc/passwd'));
      else {
        rmSync(f);
        if (plant === 'link') symlinkSync('/etc/passwd', f);
        else execFileSync('mkfifo', [f]);
      }
      const r = await runCli('diagnose', dir);
      expect(r.code, plant).toBe(2);
      expect(r.stderr, plant).not.toContain('root:x:0');
      expect(r.stderr, plant).toMatch(/outside the scenario directory|leads outside|not a regular file/);
      expect(lstatSync(dir).isDirectory()).toBe(true);
    }
  });

  it('name scenario.yaml and the line that names an artifact which is a directory (fuzz seed 11)', async () => {
    const dir = fresh('scn');
    cpSync(EX, dir, { recursive: true });
    const yaml = join(dir, 'scenario.yaml');
    const text = readFileSync(yaml, 'utf8');
    const line = text.split('\n').findIndex((l) => l.includes('host1/ip-addr.txt')) + 1;
    expect(line).toBeGreaterThan(0);
    writeFileSync(yaml, text.replace('host1/ip-addr.txt', 'host1'));
    const r = await runCli('diagnose', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`scenario.yaml:${line}`);
    expect(r.stderr).toMatch(/directory/);
  });
});

describe('diagnose --html FILE', () => {
  it('never writes through a link planted at the name', async () => {
    const victim = fresh('victim');
    writeFileSync(victim, 'keep');
    const link = fresh('report');
    symlinkSync(victim, link);
    const r = await runCli('diagnose', EX, '--html', link);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`refusing to overwrite ${link}: it exists`);
    expect(readFileSync(victim, 'utf8')).toBe('keep');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('never replaces an existing file, and refuses before writing anything (--fix-dir too)', async () => {
    const report = fresh('report');
    writeFileSync(report, 'keep');
    const fixes = fresh('fixes');
    const r = await runCli('diagnose', EX, '--html', report, '--fix-dir', fixes);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`refusing to overwrite ${report}: it exists (lvsdoctor writes only new files)`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(report, 'utf8')).toBe('keep');
    expect(existsSync(fixes)).toBe(false);
  });

  it('writes a new file, and a second run into the same name is refused', async () => {
    const report = fresh('report');
    expect((await runCli('diagnose', EX, '--html', report)).code).toBe(1);
    const first = readFileSync(report, 'utf8');
    expect(first).toMatch(/^<!doctype html>/i);
    const again = await runCli('diagnose', EX, '--html', report);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('refusing to overwrite');
    expect(readFileSync(report, 'utf8')).toBe(first);
    const dirAsFile = await runCli('diagnose', EX, '--html', tmp);
    expect(dirAsFile.code).toBe(2);
  });
});

describe.skipIf(LAB_SKIP_REASON !== undefined)('lab --pcap-dir', () => {
  it('takes only a new or empty directory (tcpdump writes there as root)', async () => {
    const dir = fresh('labpcap');
    mkdirSync(dir);
    symlinkSync('/etc/hostname', join(dir, 'host1_br0.pcap'));
    const r = await runCli('lab', 'up', EX, '--pcap-dir', dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('is not empty');
    expect((await runCli('lab', 'up', EX, '--pcap-dir', '/etc/hostname')).code).toBe(2);
  });
});
