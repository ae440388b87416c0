/**
 * A guest's own filter and raw tables (guests.NAME.iptables-save) at the hooks of its stack, with the conntrack
 * state the kernel gives IPVS traffic: every corpus scenario here is copied and given a director rule set.
 */
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.ts';

const ROOT = join(import.meta.dirname, '..', 'fixtures', 'scenarios');
const work = mkdtempSync(join(tmpdir(), `lvsdoctor-guest-fw-${process.pid}-`));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface JsonReport {
  readonly healthy: boolean;
  readonly findings: readonly { readonly code: string; readonly severity: string; readonly title: string }[];
  readonly probes: readonly {
    readonly probe: { readonly name: string };
    readonly disposition: string;
    readonly end: { readonly reason: string };
  }[];
  readonly fixes: readonly { readonly title: string; readonly proof: string }[];
}

/** A copy of corpus scenario `from` whose director lb1 has `rules` as its iptables-save (and extra sysctls). */
async function diagnoseWith(from: string, name: string, rules: string, sysctl = ''): Promise<JsonReport> {
  const dir = join(work, name);
  cpSync(join(ROOT, from), dir, { recursive: true });
  writeFileSync(join(dir, 'lb1', 'iptables-save.txt'), rules);
  if (sysctl) appendFileSync(join(dir, 'lb1', 'sysctl.txt'), sysctl);
  const yaml = readFileSync(join(dir, 'scenario.yaml'), 'utf8').replace(
    '    ip-route: lb1/ip-route.txt\n',
    '    ip-route: lb1/ip-route.txt\n    iptables-save: lb1/iptables-save.txt\n',
  );
  writeFileSync(join(dir, 'scenario.yaml'), yaml);
  const r = await runCli('diagnose', '--json', dir);
  expect(r.stderr).not.toMatch(/error:/);
  return JSON.parse(r.stdout) as JsonReport;
}

const filter = (...lines: string[]) =>
  ['*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...lines, 'COMMIT', ''].join(
    '\n',
  );

/** raw NOTRACK for the VIP's port, then a filter INPUT policy DROP that drops INVALID and accepts `accepts`. */
const notrackThen = (...accepts: string[]) =>
  [
    '*raw',
    ':PREROUTING ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A PREROUTING -d 198.51.100.100/32 -p tcp -m tcp --dport 80 -j NOTRACK',
    'COMMIT',
    '*filter',
    ':INPUT DROP [0:0]',
    ':FORWARD DROP [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    '-A INPUT -m conntrack --ctstate INVALID -j DROP',
    ...accepts,
    'COMMIT',
    '',
  ].join('\n');

describe("a NAT director's own FORWARD with --ctstate INVALID -j DROP", () => {
  const rules = filter('-A FORWARD -m conntrack --ctstate INVALID -j DROP');

  it('drops the real servers’ SYN-ACKs while IPVS untracks what it forwards (vs.conntrack=0)', async () => {
    const r = await diagnoseWith('nat-two-armed-healthy', 'nat-invalid', rules);
    const dropped = r.probes.filter((t) => t.disposition === 'dropped-by-filter');
    expect(dropped.length).toBeGreaterThan(0);
    expect(dropped.every((t) => /lb1's own iptables -t filter FORWARD/.test(t.end.reason))).toBe(true);
    expect(r.findings.filter((f) => f.severity === 'error').map((f) => f.code)).toEqual(['guest-firewall-drops']);
    // The fix that keeps the stateful rule: IPVS keeps its conntrack entries.
    expect(r.fixes.find((f) => f.title.includes('net.ipv4.vs.conntrack=1'))?.proof).toBe('probe');
  });

  it('passes them with net.ipv4.vs.conntrack=1: the entry knows the NATed reply tuple', async () => {
    const r = await diagnoseWith(
      'nat-two-armed-healthy',
      'nat-invalid-vs-conntrack',
      rules,
      'net.ipv4.vs.conntrack = 1\n',
    );
    expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
    expect(r.healthy).toBe(true);
  });
});

describe("a DR director's own OUTPUT: IPVS transmits through LOCAL_OUT, untracked", () => {
  it('an OUTPUT that accepts only tracked traffic drops every forwarded request, and the fix is verified', async () => {
    const r = await diagnoseWith(
      'dr-two-rs-healthy',
      'dr-output-tracked-only',
      [
        '*filter',
        ':INPUT ACCEPT [0:0]',
        ':FORWARD ACCEPT [0:0]',
        ':OUTPUT DROP [0:0]',
        '-A OUTPUT -o lo -j ACCEPT',
        '-A OUTPUT -m conntrack --ctstate NEW,RELATED,ESTABLISHED -j ACCEPT',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const failed = r.probes.filter((t) => t.disposition === 'dropped-by-filter');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((t) => /lb1's own iptables -t filter OUTPUT/.test(t.end.reason))).toBe(true);
    const fix = r.fixes.find((f) => f.title.startsWith('On lb1: accept -o eth0 -d 198.51.100.100/32 -p tcp'));
    expect(fix?.proof).toBe('probe');
  });

  it('a raw NOTRACK for the VIP keeps a strict INPUT working (UNTRACKED matched by its own rule)', async () => {
    const r = await diagnoseWith(
      'dr-two-rs-healthy',
      'dr-raw-notrack',
      notrackThen(
        '-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-A INPUT -m conntrack --ctstate UNTRACKED -j ACCEPT',
      ),
    );
    expect(r.findings.filter((f) => f.severity === 'error')).toEqual([]);
    // Without the UNTRACKED rule the same requests meet the DROP policy.
    const strict = await diagnoseWith(
      'dr-two-rs-healthy',
      'dr-raw-notrack-strict',
      notrackThen('-A INPUT -m conntrack --ctstate NEW,RELATED,ESTABLISHED -j ACCEPT'),
    );
    expect(strict.findings.filter((f) => f.severity === 'error').map((f) => f.code)).toEqual(['guest-firewall-drops']);
  });
});
