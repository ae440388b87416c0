import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const root = mkdtempSync(join(tmpdir(), 'lvsdoctor-err-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A copy of the founding case with one file edited. */
function variant(file: string, edit: (text: string) => string): string {
  const dir = join(root, `v${n++}`);
  cpSync('examples/kvm-lvs-dr', dir, { recursive: true });
  writeFileSync(join(dir, file), edit(readFileSync(join(dir, file), 'utf8')));
  return dir;
}

async function errorsOf(dir: string): Promise<string[]> {
  const r = await runCli('diagnose', dir);
  expect(r.code).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return r.stderr.trim().split('\n');
}

const rel = (dir: string, f: string) => join(relative(process.cwd(), dir), f);

describe('scenario input errors name file, line and what was expected', () => {
  it('reports YAML syntax errors with their line', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('hosts:\n', 'hosts:\n  host1: [unclosed\n'));
    const errs = await errorsOf(dir);
    expect(errs[0]).toMatch(new RegExp(`^${rel(dir, 'scenario.yaml')}:\\d+:\\d+: error: .*\\[yaml.syntax\\]$`));
  });

  it('reports unknown keys at the key', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('  host2:\n', '  host2:\n    colour: blue\n'));
    const errs = await errorsOf(dir);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatch(
      /scenario\.yaml:16:\d+: error: hosts\.host2: Unrecognized key: "colour" \[scenario\.schema\]/,
    );
  });

  it('reports a malformed MAC with what was expected', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('mac: 84:78:ac:27:6c:41', 'mac: 84:78:ac:27:6c'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(
      /scenario\.yaml:\d+:\d+: error: gateway\.mac: expected a MAC address such as 02:00:73:b6:53:c8/,
    );
  });

  it('reports a missing artifact at the line that names it', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('rs2/sysctl.txt', 'rs2/sysctl-missing.txt'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(/scenario\.yaml:30:\d+: error: file "rs2\/sysctl-missing\.txt" does not exist/);
  });

  it('reports malformed domain XML with its file and line', async () => {
    const dir = variant('host1/r2-10105.xml', (t) => t.replace("<source bridge='br0'/>", "<source bridge='br0'>"));
    const errs = await errorsOf(dir);
    expect(errs[0]).toMatch(new RegExp(`^${rel(dir, 'host1/r2-10105.xml')}:\\d+(:\\d+)?: error: `));
  });

  it('refuses a DOCTYPE in domain XML', async () => {
    const dir = variant('host1/r2-10105.xml', (t) => `<!DOCTYPE domain [<!ENTITY x "y">]>\n${t}`);
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(/r2-10105\.xml:1(:\d+)?: error: .*DOCTYPE/i);
  });

  it('reports a segment member that is no interface of any node', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('host2:eth0', 'host3:eth0'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(
      /scenario\.yaml:9:\d+: error: segment lan: host3:eth0 is not an interface of any node/,
    );
  });

  it('names the interfaces a known node has when a segment member names none of them (nor an altname)', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('host2:eth0', 'host2:eth9'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(
      /scenario\.yaml:9:\d+: error: segment lan: host2 has no interface eth9 \(it has .*eth0/,
    );
  });

  it('reports a guest that is no domain', async () => {
    const dir = variant('scenario.yaml', (t) => t.replace('  r2-10106:', '  r2-99999:'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toContain('guest "r2-99999" is not the name of any domain');
  });

  it('reports a malformed ipvsadm listing with its line', async () => {
    const dir = variant('director1/ipvsadm-Ln.txt', (t) => t.replace('Route   2', 'Route   two'));
    const errs = await errorsOf(dir);
    expect(errs.join('\n')).toMatch(/director1\/ipvsadm-Ln\.txt:5(:\d+)?: error: /);
  });
});
