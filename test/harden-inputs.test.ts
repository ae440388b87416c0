/**
 * Issue 15: inputs that crashed, hung or were wrongly refused or accepted. Each is bad input (exit 2 with a one-line
 * error naming the file) or read as the real tool reads it; never a stack trace or an internal error.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { readTar } from '../src/collect/tar.ts';
import { readXml } from '../src/libvirt/xml.ts';
import { LIMITS } from '../src/source/files.ts';
import { parseYaml } from '../src/topology/yaml-source.ts';
import { runCli } from './run-cli.ts';

const ROOT = join(import.meta.dirname, '..');
const EX = join(ROOT, 'examples', 'kvm-lvs-dr');
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-harden-in-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A copy of the example with one file replaced or edited. */
function variant(file: string, edit: (text: string) => string | Uint8Array): string {
  const dir = join(tmp, `v${n++}`);
  cpSync(EX, dir, { recursive: true });
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

/** Runs `check DIR`: exit 2, errors only on stderr, one line each, naming `file`, no stack, no internal error. */
async function badInput(dir: string, file: string): Promise<string> {
  const r = await runCli('check', dir);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
  const lines = r.stderr.trim().split('\n');
  expect(lines.some((l) => l.includes(file))).toBe(true);
  return r.stderr;
}

describe('crashes that were', () => {
  it('deep XML nesting is refused as libxml2 refuses it', async () => {
    const deep = `<domain type='kvm'><name>r2-10105</name>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</domain>`;
    const err = await badInput(
      variant('host1/r2-10105.xml', () => deep),
      'r2-10105.xml',
    );
    expect(err).toContain('nested more than 256 deep');
  });

  it('a /33 prefix in scenario.yaml is a schema error', async () => {
    const err = await badInput(
      variant('scenario.yaml', (t) => t.replace('ip: 192.0.2.1/24', 'ip: 192.0.2.1/33')),
      'scenario.yaml',
    );
    expect(err).toMatch(/scenario\.yaml:\d+:\d+: error: gateway\.ip: expected an IPv4 address with prefix length 0-32/);
  });

  it('unresolved and excessive YAML aliases are errors with a line', async () => {
    const unresolved = await badInput(
      variant('scenario.yaml', (t) => t.replace('name: kvm-lvs-dr', 'name: *nowhere')),
      'scenario.yaml',
    );
    expect(unresolved).toMatch(/scenario\.yaml:\d+/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      bomb.push(
        `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(96 + i)}`)
          .join(', ')}]`,
      );
    const r = parseYaml(bomb.join('\n'), 'bomb.yaml');
    expect(r.issues.some((i) => i.severity === 'error' && i.pos?.file === 'bomb.yaml')).toBe(true);
  });

  it('an XML file over the limit is refused before it is parsed', async () => {
    const big = `<domain type='kvm'><name>r2-10105</name><description>${'x'.repeat(LIMITS.xmlFile + 10)}</description></domain>`;
    const err = await badInput(
      variant('host1/r2-10105.xml', () => big),
      'r2-10105.xml',
    );
    expect(err).toContain('MiB are not read');
  });

  it('tcpdump text with huge lengths is read without allocating them', async () => {
    const f = join(tmp, 'big-length.txt');
    writeFileSync(
      f,
      [
        '11:39:19.372804 IP 192.0.2.1.51643 > 192.0.2.208.80: Flags [S], seq 1, win 14600, length 4294967295',
        '11:39:19.372805 IP 192.0.2.1.51643 > 192.0.2.208.80: Flags [S], seq 1, win 14600, length 2147483647',
        '11:39:19.372806 IP 192.0.2.1.51643 > 192.0.2.208.80: Flags [S], seq 1, win 14600, length 99999999999999999999',
        '',
      ].join('\n'),
    );
    const r = await runCli('captures', `${f}@host1:br0`);
    expect([0, 1, 2]).toContain(r.code);
    expect(r.stderr).not.toMatch(/\n\s+at |internal error/);
  });
});

describe('captures', () => {
  it('ends on the corpus whose retransmitted SYN once hung it (two identical packets at one point)', async () => {
    const r = await runCli('captures', `${join(ROOT, 'fixtures', 'tcpdump', 'corpus.nn.txt')}@host1:br0`);
    expect([0, 1]).toContain(r.code);
    const twice = join(tmp, 'twice.txt');
    const line = '11:39:19.372804 IP 192.0.2.1.51643 > 192.0.2.208.80: Flags [S], seq 1, win 14600, length 0\n';
    writeFileSync(twice, line + line);
    expect([0, 1]).toContain((await runCli('captures', `${twice}@host1:br0`)).code);
  }, 60_000);
});

describe('issues per file', () => {
  it('are capped at 100 errors and 100 notes per file, an error never hidden behind notes', async () => {
    const { reportIssues } = await import('../src/cli/io.ts');
    const { issue } = await import('../src/source/issue.ts');
    let err = '';
    const notes = Array.from({ length: 250 }, (_, i) =>
      issue('x-note', `note ${i}`, { file: 'a.conf', line: i + 1 }, 'info'),
    );
    const bad = reportIssues({ stdout: () => {}, stderr: (s) => (err += s) }, [
      ...notes,
      issue('x-bad', 'the error', { file: 'a.conf', line: 300 }),
    ]);
    expect(bad).toBe(true);
    const lines = err.trim().split('\n');
    expect(lines).toHaveLength(102);
    expect(lines).toContain('a.conf:300: error: the error [x-bad]');
    expect(lines.at(-1)).toBe('a.conf: 150 more warnings and notes not shown (the first 100 are above)');
  });
});

describe('lenience', () => {
  it('a UTF-8 byte-order mark before the XML is accepted', () => {
    const r = readXml("\uFEFF<domain type='kvm'><name>x</name></domain>", 'bom.xml');
    expect(r.issues).toEqual([]);
    expect(r.root?.name).toBe('domain');
  });

  it('NUL and other characters XML forbids are refused with their line', () => {
    const r = readXml("<domain type='kvm'>\n<name>x\0y</name></domain>", 'nul.xml');
    expect(r.root).toBeUndefined();
    expect(r.issues[0]).toMatchObject({ severity: 'error', pos: { file: 'nul.xml', line: 2 } });
  });

  it('the word DOCTYPE inside a comment or CDATA is text, a real DOCTYPE is refused', () => {
    expect(readXml("<!-- <!DOCTYPE x> --><domain type='kvm'><name>x</name></domain>", 'c.xml').issues).toEqual([]);
    expect(readXml("<domain type='kvm'><name><![CDATA[<!DOCTYPE]]></name></domain>", 'c.xml').issues).toEqual([]);
    const r = readXml("<?xml version='1.0'?>\n<!DOCTYPE d [<!ENTITY e 'x'>]>\n<domain/>", 'd.xml');
    expect(r.issues[0]).toMatchObject({ code: 'xml-doctype', pos: { line: 2 } });
  });

  it('an XML error the parser reports without a place names the line where it stopped', () => {
    // xmldom says 'missing root element' with no locator when the text holds no markup at all.
    const r = readXml('just\ntext\n', 'none.xml');
    expect(r.root).toBeUndefined();
    expect(r.issues[0]).toMatchObject({ code: 'xml-syntax', pos: { file: 'none.xml', line: 2 } });
    expect(readXml('', 'empty.xml').issues[0]).toMatchObject({ code: 'xml-syntax', pos: { line: 1 } });
  });

  it('a scenario.yaml with CR line endings reads as with LF', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace(/\n/g, '\r'));
    const lfDir = variant('scenario.yaml', (t) => t);
    const r = await runCli('check', dir);
    const lf = await runCli('check', lfDir);
    expect(r.code).toBe(lf.code);
    expect(r.stdout.length).toBeGreaterThan(100);
    const same = (t: string) => t.replace(/\/v\d+\//g, '/V/');
    expect(same(r.stdout)).toBe(same(lf.stdout));
  });

  it('a probe that matches no kind is explained by the closest kind, field by field', async () => {
    const err = await badInput(
      variant('scenario.yaml', (t) => t.replace('    tcp: 192.0.2.208:80', '    tpc: 192.0.2.208:80')),
      'scenario.yaml',
    );
    expect(err).toContain('probes.0.tcp:');
    expect(err).toContain('Unrecognized key: "tpc"');
    expect(err).not.toContain('probes.0: Invalid input');
  });
});

describe('bundle archives', () => {
  const tarOf = (name: string, data: Uint8Array): Uint8Array => {
    const dir = join(tmp, `tar${n++}`);
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, name), data);
    return new Uint8Array(execFileSync('tar', ['-cf', '-', '-C', dir, name], { maxBuffer: 1 << 30 }));
  };

  it('a gzip bomb stops at the bundle limit with a clear error', () => {
    const zeros = gzipSync(tarOf('big.out', new Uint8Array(8 * 1024 * 1024)));
    expect(zeros.length).toBeLessThan(64 * 1024);
    const r = readTar(zeros, { total: 4 * 1024 * 1024, member: 1024 * 1024, members: 100 });
    expect(r.entries).toEqual([]);
    expect(r.error).toContain('inflates past byte 4194304 (4 MiB, the limit of a bundle)');
  });

  it('a member over the member limit and too many members are errors', () => {
    const one = readTar(gzipSync(tarOf('m.out', new Uint8Array(2 * 1024 * 1024))), {
      total: 64 * 1024 * 1024,
      member: 1024 * 1024,
      members: 100,
    });
    expect(one.error).toMatch(/member m\.out \(header at byte 0\) is 2097152 bytes; the limit of one member is 1 MiB/);
    const many = readTar(gzipSync(tarOf('m.out', new Uint8Array(10))), { total: 1 << 20, member: 1 << 20, members: 0 });
    expect(many.error).toContain('more than 0 members (the limit of a bundle), at byte 0');
  });

  it('a bad gzip stream, a truncated one and a non-tar say at which byte', () => {
    const good = gzipSync(
      tarOf(
        'm.out',
        new Uint8Array(64 * 1024).map((_, i) => (i * 7919) % 251),
      ),
    );
    const flipped = Uint8Array.from(good);
    flipped[2] = 9; // the compression method: zlib tells once it has read the flags byte after it
    expect(readTar(flipped).error).toMatch(/^not a gzip file: unknown compression method \(by byte 3 of \d+\)$/);
    const cut = good.subarray(0, 300);
    expect(readTar(cut).error).toBe('not a gzip file: unexpected end of file (by byte 299 of 300)');
    const corrupt = Uint8Array.from(good);
    for (let i = 100; i < 140; i++) corrupt[i] = 0xff;
    const at = Number(/by byte (\d+)/.exec(readTar(corrupt).error ?? '')?.[1]);
    expect(at).toBeGreaterThanOrEqual(100);
    expect(at).toBeLessThan(good.length);
    expect(readTar(gzipSync(new Uint8Array(1024).fill(65))).error).toBe(
      'not a .tar.gz (nor a tar) archive: no "ustar" magic at byte 257 of the inflated data',
    );
    expect(readTar(gzipSync(new Uint8Array(10))).error).toBe(
      'not a .tar.gz (nor a tar) archive: inflated, it ends at byte 10, inside the first 512-byte header',
    );
  });

  it('import names the archive and exits 2 on a bomb', async () => {
    const f = join(tmp, 'bomb.tar.gz');
    writeFileSync(f, gzipSync(tarOf('manifest.tsv', new Uint8Array(LIMITS.bundleMember + 1))));
    const r = await runCli('import', f, '-o', join(tmp, `out${n++}`));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('bomb.tar.gz');
    expect(r.stderr).toMatch(/limit/);
  });
});
