/**
 * Import from bundles recorded on a real kernel (fixtures/collect/founding-real, made by test/collect-real.test.ts
 * with UPDATE_GOLDEN=1): the founding cluster rebuilt, drift found where live state and XML disagree, and partial
 * bundles (a tool missing, permission denied, a guest not collected, no router bundle) handled without a crash.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runImport } from '../src/cli/cmd-collect.ts';
import { readBundle } from '../src/collect/bundle.ts';
import { importBundles, importToTemp, isBundlePath } from '../src/collect/import.ts';
import { diagnose } from '../src/diagnose/diagnose.ts';
import { formatServiceKey } from '../src/ipvs/model.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';
import { openSession } from '../src/trace/session.ts';
import { bundleCopies, FIXTURE, fail, NAMES, ROOT } from './bundle-fixtures.ts';

const { tmp, bundles, done } = bundleCopies('collect-import');
afterAll(done);

const EXAMPLE = join(ROOT, 'examples', 'kvm-lvs-dr');

function findings(dir: string): string[] {
  const r = loadScenario(dir);
  expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
  return diagnose(r.value!)
    .findings.map((f) => `${f.code} at ${f.where}`)
    .sort();
}

const foundingFindings = () => findings(EXAMPLE);

describe('lvsdoctor import from real bundles', () => {
  it('rebuilds the founding cluster: guests on their hosts and ports, one LAN, the router as gateway', () => {
    const b = bundles();
    const out = join(tmp, 'full');
    const r = importBundles(Object.values(b), { out });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const c = r.cluster!;
    expect(c.hosts.map((h) => h.node).sort()).toEqual(['host1', 'host2']);
    expect(c.guests.map((g) => [g.node, g.host, g.ports.join(' '), g.ev?.bundle.hostname])).toEqual([
      ['r2-10105', 'host1', 'vnet0 (br0)', 'director1'],
      ['r2-10106', 'host2', 'vnet0 (br0)', 'rs2'],
    ]);
    expect(c.segments).toHaveLength(1);
    expect(c.segments[0]!.members.map((u) => `${u.host}:${u.iface}`)).toEqual(['host1:eth0', 'host2:eth0']);
    expect(c.gateway).toMatchObject({ mac: '84:78:ac:27:6c:41', iface: 'eth0', segment: 'lan' });
    expect(r.drift).toEqual([]);
    const yaml = readFileSync(join(out, 'scenario.yaml'), 'utf8');
    expect(yaml).toContain('ipvsadm: guests/r2-10105/ipvsadm-Ln.txt');
    expect(yaml).toContain('listen: [tcp/80]');
    expect(yaml).toMatch(/# ASSUMED client/);
    expect(yaml).toContain('192.0.2.208: 02:00:73:b6:53:c8');
    expect(readFileSync(join(out, 'host1', 'r2-10105.xml'), 'utf8')).toContain("<target dev='vnet0'/>");
  });

  it("carries the director's /etc/hosts and /etc/services: a listing without -n is read through them", () => {
    const b = bundles((d) => {
      const dir = d('director');
      const m = join(dir, 'manifest.tsv');
      writeFileSync(
        m,
        `${readFileSync(m, 'utf8').replace(/\n$/, '')}\ncmd\tetc-hosts\tok\t0\tcmd/etc-hosts.out\tcmd/etc-hosts.err\tcat /etc/hosts\ncmd\tetc-services\tok\t0\tcmd/etc-services.out\tcmd/etc-services.err\tcat /etc/services\n`,
      );
      writeFileSync(
        join(dir, 'cmd', 'etc-hosts.out'),
        '127.0.0.1 localhost\n192.0.2.208 www-vip\n192.0.2.226 rs2-web rs2\n',
      );
      writeFileSync(join(dir, 'cmd', 'etc-hosts.err'), '');
      writeFileSync(join(dir, 'cmd', 'etc-services.out'), 'web-alt 80/tcp\n');
      writeFileSync(join(dir, 'cmd', 'etc-services.err'), '');
    });
    const out = join(tmp, 'etc-names');
    const r = importBundles(Object.values(b), { out });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const yaml = readFileSync(join(out, 'scenario.yaml'), 'utf8');
    expect(yaml).toContain('etc-hosts: guests/r2-10105/etc-hosts.txt');
    expect(yaml).toContain('etc-services: guests/r2-10105/etc-services.txt');
    // The numeric listing replaced by the same table as `ipvsadm -L` prints it there, plus a server no file names.
    writeFileSync(
      join(out, 'guests', 'r2-10105', 'ipvsadm-Ln.txt'),
      [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  www-vip:web-alt rr',
        '  -> rs2-web:web-alt              Route   2      0          0',
        '  -> ghost.example:http           Route   1      0          0',
        '',
      ].join('\n'),
    );
    const l = loadScenario(out);
    expect(l.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const svc = l.value!.ipvs.get('r2-10105')!.services;
    expect(svc.map((s) => `${formatServiceKey(s.key)} -> ${s.destinations.map((d) => d.port).join(',')}`)).toEqual([
      'TCP 192.0.2.208:80 -> 80',
    ]);
    expect(l.issues.find((i) => i.code === 'ipvsadm-symbolic-name')?.pos).toMatchObject({ line: 6 });
    expect(l.value!.scenario.assumptions).toContainEqual(expect.stringContaining("'ghost.example'"));
  });

  it('diagnoses the imported cluster with the same findings as the hand-written founding case', () => {
    const r = importToTemp(Object.values(bundles()));
    try {
      expect(findings(r.dir!)).toEqual(foundingFindings());
      expect(findings(r.dir!)).toContain('director-anti-spoofing at host1:vnet0');
    } finally {
      rmSync(r.dir!, { recursive: true, force: true });
    }
  });

  it('reads .tar.gz bundles as well as directories', () => {
    const b = bundles();
    const archive = join(tmp, `${NAMES.host1}.tar.gz`);
    execFileSync('tar', ['-czf', archive, '-C', join(b.host1, '..'), NAMES.host1]);
    expect(isBundlePath(archive)).toBe(true);
    const r = readBundle(archive);
    expect(r.issues).toEqual([]);
    expect(r.value!.hostname).toBe('host1');
    expect(r.value!.files.get('cmd/ebtables-nat.out')).toContain('I-vnet0-ipv4-ip');
  });

  it('runs as a command: prints the report and writes scenario.yaml', () => {
    let out = '';
    let err = '';
    const dir = join(tmp, 'cli');
    const code = runImport({ stdout: (s) => (out += s), stderr: (s) => (err += s) }, Object.values(bundles()), {
      out: dir,
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('r2-10105 on host1 vnet0 (br0) ← bundle director1');
    expect(out).toContain('drift: none');
    expect(readdirSync(dir)).toContain('scenario.yaml');
    // A second import into the same directory replaces the first; a foreign directory is refused.
    expect(runImport({ stdout: () => {}, stderr: () => {} }, Object.values(bundles()), { out: dir })).toBe(0);
    expect(runImport({ stdout: () => {}, stderr: (s) => (err += s) }, Object.values(bundles()), { out: EXAMPLE })).toBe(
      2,
    );
    expect(err).toContain('not empty');
  });
});

describe('drift between live rules and the domain XML', () => {
  it('reports a binding deleted by hand and the chains that went with it', () => {
    const b = bundles((d) => {
      const m = join(d('host1'), 'manifest.tsv');
      writeFileSync(
        m,
        readFileSync(m, 'utf8')
          .split('\n')
          .filter((l) => !l.startsWith('cmd\tbinding-vnet0'))
          .join('\n'),
      );
      writeFileSync(join(d('host1'), 'cmd', 'virsh-binding-list.out'), ' Port Dev   Filter\n--------------------\n\n');
      writeFileSync(
        join(d('host1'), 'cmd', 'ebtables-nat.out'),
        'Bridge table: nat\n\nBridge chain: PREROUTING, entries: 0, policy: ACCEPT\n\nBridge chain: OUTPUT, entries: 0, policy: ACCEPT\n\nBridge chain: POSTROUTING, entries: 0, policy: ACCEPT\n',
      );
    });
    const r = importBundles(Object.values(b), { out: join(tmp, 'drift-deleted') });
    const text = r.drift.map((d) => `${d.host} ${d.area} ${d.subject}: ${d.message}`);
    expect(text).toContainEqual(expect.stringMatching(/^host1 binding vnet0: no live binding on vnet0/));
    expect(text).toContainEqual(
      expect.stringMatching(/^host1 ebtables I-vnet0-ipv4-ip: chain I-vnet0-ipv4-ip is missing/),
    );
    expect(text).toContainEqual(expect.stringMatching(/^host1 ebtables PREROUTING: chain PREROUTING differs/));
  });

  it('reports a live binding with another IP and a rule added by hand', () => {
    const b = bundles((d) => {
      const f = join(d('host1'), 'cmd', 'binding-vnet0.out');
      writeFileSync(f, readFileSync(f, 'utf8').replace("value='192.0.2.200'", "value='192.0.2.201'"));
      const n = join(d('host1'), 'cmd', 'ebtables-nat.out');
      writeFileSync(
        n,
        readFileSync(n, 'utf8')
          .replace(
            'entries: 3, policy: RETURN\n',
            'entries: 4, policy: RETURN\n-p IPv4 --ip-src 192.0.2.208 -j RETURN , pcnt = 0 -- bcnt = 0\n',
          )
          .replace(
            /Bridge chain: OUTPUT, entries: 0, policy: ACCEPT\n/,
            'Bridge chain: OUTPUT, entries: 1, policy: ACCEPT\n-j mark --mark-set 0x1 --mark-target CONTINUE , pcnt = 0 -- bcnt = 0\n',
          ),
      );
    });
    const r = importBundles(Object.values(b), { out: join(tmp, 'drift-edited') });
    const binding = r.drift.find((d) => d.area === 'binding')!;
    expect(binding.lines).toEqual([
      '+ clean-traffic IP=192.0.2.201 mac 02:00:73:b6:53:c8',
      '- clean-traffic IP=192.0.2.200 mac 02:00:73:b6:53:c8',
    ]);
    const chain = r.drift.find((d) => d.subject === 'I-vnet0-ipv4-ip')!;
    expect(chain.lines).toEqual(['+ -p IPv4 --ip-src 192.0.2.208 -j RETURN']);
    expect(r.drift.find((d) => d.subject === 'OUTPUT')!.message).toMatch(/not made by libvirt/);
    expect(readFileSync(join(tmp, 'drift-edited', 'import-report.txt'), 'utf8')).toContain(
      '+ -p IPv4 --ip-src 192.0.2.208 -j RETURN',
    );
  });
});

describe('partial bundles', () => {
  function importAndDiagnose(b: Record<string, string>, name: string, only?: string[]) {
    const out = join(tmp, name);
    const paths = Object.entries(b)
      .filter(([k]) => !only || only.includes(k))
      .map(([, v]) => v);
    const r = importBundles(paths, { out });
    expect(r.dir).toBe(out);
    const loaded = loadScenario(out);
    expect(loaded.issues.filter((i) => i.severity === 'error')).toEqual([]);
    expect(openSession(loaded.value!).issues.filter((i) => i.severity === 'error')).toEqual([]);
    const report = diagnose(loaded.value!);
    return { r, report, yaml: readFileSync(join(out, 'scenario.yaml'), 'utf8') };
  }

  it('virsh missing on host1: its guests are unknown, said so, and nothing crashes', () => {
    const b = bundles((d) => {
      for (const id of ['virsh-list', 'virsh-nwfilter-list', 'virsh-binding-list', 'version-virsh', 'virsh-uri'])
        fail(d('host1'), id, 'missing', '127', 'virsh: command not found\n');
    });
    const { r, report, yaml } = importAndDiagnose(b, 'no-virsh');
    expect(r.notes).toContainEqual(
      expect.stringMatching(/host1: unknown domains: virsh list --all --name: tool not installed/),
    );
    expect(r.notes).toContainEqual(expect.stringMatching(/director1\).*matches no domain/));
    expect(yaml).toContain('# unknown: domains: virsh list --all --name: tool not installed');
    expect(report.traces.length).toBeGreaterThanOrEqual(0);
  });

  it('ebtables refused: the drift check says it could not compare', () => {
    const b = bundles((d) =>
      fail(d('host1'), 'ebtables-nat', 'denied', '1', 'ebtables: Permission denied (you must be root)\n'),
    );
    const { r } = importAndDiagnose(b, 'ebtables-denied');
    expect(r.notes).toContainEqual(
      expect.stringMatching(
        /host1: ebtables not compared \(ebtables -t nat -L --Lc: permission denied \(ebtables: Permission denied/,
      ),
    );
  });

  it('the real server not collected: the model marks it unknown and the diagnosis states its assumptions', () => {
    const { r, report, yaml } = importAndDiagnose(bundles(), 'no-rs', ['host1', 'host2', 'director', 'router']);
    expect(r.notes).toContainEqual(
      'guest r2-10106 (on host2) was not collected: addresses, routes and sysctls unknown',
    );
    expect(yaml).toMatch(/r2-10106: \{\}\n\s+# on host2: vnet0 \(br0\)\n\s+# TODO not collected/);
    expect(report.assumptions).toContainEqual(expect.stringMatching(/^r2-10106: no ip addr output/));
    expect(report.assumptions).toContainEqual(expect.stringMatching(/^r2-10106: no sysctl output/));
    // The director's filter is still found: it does not depend on the real server.
    expect(report.findings.map((f) => `${f.code} at ${f.where}`)).toContain('director-anti-spoofing at host1:vnet0');
  });

  it('no router bundle: the gateway comes from the guests’ default route and neighbour tables, its cache is TODO', () => {
    const { r, yaml, report } = importAndDiagnose(bundles(), 'no-router', ['host1', 'host2', 'director', 'rs']);
    expect(r.cluster!.gateway).toMatchObject({ mac: '84:78:ac:27:6c:41', segment: 'lan' });
    expect(yaml).toMatch(/# TODO gateway: the gateway's ARP cache/);
    expect(report.findings.map((f) => f.code)).toContain('vip-arp-blocked');
  });

  it('a broken or foreign bundle is an issue; the others are still imported', () => {
    const bad = join(tmp, 'not-a-bundle.tar.gz');
    writeFileSync(bad, 'hello');
    const empty = join(tmp, 'empty-dir-bundle');
    cpSync(join(FIXTURE, NAMES.rs, 'cmd'), join(empty, 'cmd'), { recursive: true });
    const b = bundles();
    const r = importBundles([bad, empty, b.host1, b.director], { out: join(tmp, 'broken') });
    expect(r.issues.map((i) => i.code)).toEqual(['bundle.archive', 'bundle.manifest']);
    expect(r.cluster!.guests.map((g) => g.node)).toEqual(['r2-10105']);
    expect(loadScenario(join(tmp, 'broken')).issues.filter((i) => i.severity === 'error')).toEqual([]);
  });

  it('only guest bundles: no hypervisor, so nothing can be placed, and the scenario still loads', () => {
    const { r } = importAndDiagnose(bundles(), 'guests-only', ['director', 'rs']);
    expect(r.notes).toContain('TODO no hypervisor bundle: guests cannot be placed on hosts');
  });
});

it.skipIf(spawnSync('sh', ['-c', 'command -v tar']).status !== 0)('finds its fixture', () => {
  expect(readdirSync(FIXTURE).sort()).toEqual(Object.values(NAMES).sort());
});
