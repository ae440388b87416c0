import { cpSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario } from '../topology/load-scenario.ts';
import { openSession, probesOf, runProbe } from '../trace/session.ts';
import { capturesToPcaps } from '../trace/tcpdump-lines.ts';
import { parseCaptureSpec, runCaptures, runCapturesShow } from './cmd-captures.ts';
import type { Io } from './io.ts';

const ROOT = join(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'lvsdoctor-captures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function io(): Io & { out: string; err: string } {
  const o = {
    out: '',
    err: '',
    stdout: (s: string): void => {
      o.out += s;
    },
    stderr: (s: string): void => {
      o.err += s;
    },
  };
  return o;
}

/** Writes the pcaps `trace --pcap-dir` writes for a scenario; returns `file@point` for the points asked. */
function simulatedCaptures(scenario: string, points: readonly string[]): string[] {
  const loaded = loadScenario(join(ROOT, scenario)).value!;
  const session = openSession(loaded);
  const caps = probesOf(loaded).flatMap((p) => runProbe(session, p).captures);
  const files = capturesToPcaps(caps);
  const out: string[] = [];
  for (const point of points) {
    const name = `${point.replace(/[^A-Za-z0-9_.-]/g, '_')}.pcap`;
    const f = join(dir, `${scenario.replace(/\W/g, '-')}-${name}`);
    writeFileSync(f, files.get(name) ?? new Uint8Array(0));
    out.push(`${f}@${point}`);
  }
  return out;
}

describe('lvsdoctor captures', () => {
  const founding = simulatedCaptures('examples/kvm-lvs-dr', ['r2-10105:eth0', 'host1:br0']);

  it('finds that the rewritten SYN of the founding case never reaches host1 br0 (exit 1)', () => {
    const o = io();
    expect(runCaptures(o, founding, { json: false })).toBe(1);
    expect(o.out).toContain(
      'rewrite: 84:78:ac:27:6c:41 > 02:00:73:b6:53:c8 became 02:00:73:b6:53:c8 > 02:00:73:b6:53:e2',
    );
    expect(o.out).toContain('2 seen last at r2-10105:eth0, never at host1:br0'); // the SYN and the ARP reply for the VIP
    expect(o.out).toContain('no SYN-ACK seen at any point: the handshake never completes');
    expect(o.err).toBe('');
  });

  it('answers for one capture point alone: what was seen and answered, exit 0 (tcpdump text and pcap)', () => {
    for (const f of ['corpus.nn.txt', 'corpus.pcap']) {
      const o = io();
      expect(runCaptures(o, [`${join(ROOT, 'fixtures/tcpdump', f)}@host1:vnet0`], { json: false })).toBe(0);
      expect(o.out).toMatch(/one capture point: \d+ IP flows answered \(packets both ways\), \d+ seen one way only/);
      expect(o.out).not.toContain('vanished');
    }
  });

  it('shows a capture as tcpdump prints it, byte for byte (the recorded tcpdump outputs of corpus.pcap)', () => {
    for (const [args, golden] of [
      [{ link: true, verbosity: 3, numeric: 3 }, 'corpus.e-vvv-nnn.txt'],
      [{ link: false, verbosity: 0, numeric: 2 }, 'corpus.nn.txt'],
    ] as const) {
      const o = io();
      expect(runCapturesShow(o, join(ROOT, 'fixtures/tcpdump/corpus.pcap'), args)).toBe(0);
      expect(o.out).toBe(readFileSync(join(ROOT, 'fixtures/tcpdump', golden), 'utf8'));
      expect(o.err).toMatch(/frame\(s\), (\d+) printed exactly as tcpdump prints them\n$/);
    }
    const o = io();
    expect(
      runCapturesShow(o, join(ROOT, 'fixtures/tcpdump/corpus.nn.txt'), { link: false, verbosity: 0, numeric: 2 }),
    ).toBe(2);
    expect(o.err).toContain('this is tcpdump text already');
  });

  it('says the captures follow the model that drops the frame, with the rule that drops it', () => {
    const o = io();
    expect(runCaptures(o, founding, { json: false, scenario: join(ROOT, 'examples/kvm-lvs-dr') })).toBe(1);
    expect(o.out).toContain('model: the captures follow the simulated path');
    expect(o.out).toContain('the simulation ends: dropped-by-filter at host1:vnet0');
  });

  it('names the hop where reality departs from the fixed model', () => {
    const o = io();
    expect(runCaptures(o, founding, { json: false, scenario: join(ROOT, 'examples/kvm-lvs-dr-fixed') })).toBe(1);
    expect(o.out).toContain(
      'reality departs from the simulated path at host1:br0 (02:00:73:b6:53:c8 > 02:00:73:b6:53:e2): the simulation has the packet there, the capture does not',
    );
  });

  it('accounts for every packet of the fixed cluster at all eleven points (exit 0)', () => {
    const points = [
      'client:eth0',
      'gateway:wan',
      'gateway:eth0',
      'host1:eth0',
      'host1:br0',
      'host1:vnet0',
      'r2-10105:eth0',
      'host2:eth0',
      'host2:br0',
      'host2:vnet0',
      'r2-10106:eth0',
    ];
    const o = io();
    const code = runCaptures(o, simulatedCaptures('examples/kvm-lvs-dr-fixed', points), { json: true });
    const r = JSON.parse(o.out);
    expect(code).toBe(0);
    expect(r.exitCode).toBe(0);
    expect(r.missing).toBe(0);
    const syn = r.flowReports[0].details[0];
    expect(syn.path.map((s: { point: string }) => s.point)).toEqual([
      'client:eth0',
      'gateway:wan',
      'gateway:eth0',
      'host1:eth0',
      'host1:br0',
      'host1:vnet0',
      'r2-10105:eth0',
      'r2-10105:eth0',
      'host1:vnet0',
      'host1:br0',
      'host1:eth0',
      'host2:eth0',
      'host2:br0',
      'host2:vnet0',
      'r2-10106:eth0',
    ]);
  });

  it('reads the founding case pasted as tcpdump text', () => {
    const o = io();
    const specs = [
      `${join(ROOT, 'fixtures/captures/founding-case.director-eth0.txt')}@r2-10105:eth0`,
      `${join(ROOT, 'fixtures/captures/founding-case.host1-br0.txt')}@host1:br0`,
    ];
    expect(runCaptures(o, specs, { json: true })).toBe(1);
    const r = JSON.parse(o.out);
    expect(r.missing).toBe(2);
    expect(r.retransmissions).toBe(1);
    expect(r.points[1].offsetMethod).toBe('one-way');
    expect(r.flowReports[0].details[1].retransmissionNote).toMatch(/TS val \+1000/);
  });

  it('keeps what a truncated capture holds, names the byte offset, and still correlates', () => {
    const [eth0] = founding[0]!.split('@') as [string, string];
    const bytes = readFileSync(eth0);
    const cut = join(dir, 'cut.pcap');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 5));
    const o = io();
    const code = runCaptures(o, [`${cut}@r2-10105:eth0`, founding[1]!], { json: false });
    expect(code).toBe(1);
    expect(o.err).toMatch(/cut\.pcap: error: record at byte \d+ is truncated/);
    expect(o.err).toContain('what was read before the damage is used');
  });

  it('exits 2 when a capture has nothing usable', () => {
    const junk = join(dir, 'junk.pcap');
    writeFileSync(junk, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 0xff));
    const o = io();
    expect(runCaptures(o, [`${junk}@a`, founding[1]!], { json: false })).toBe(2);
    expect(o.err).toContain('junk.pcap: error: byte 0: not a pcap, pcapng or tcpdump text file');
    expect(o.err).toContain('nothing usable in');
  });

  it('exits 2 on a missing file, a bad spec or a point named twice', () => {
    let o = io();
    expect(runCaptures(o, [join(dir, 'nope.pcap@x')], { json: false })).toBe(2);
    expect(o.err).toContain('cannot open');
    o = io();
    expect(runCaptures(o, ['a.pcap@'], { json: false })).toBe(2);
    o = io();
    expect(runCaptures(o, [founding[0]!, founding[0]!], { json: false })).toBe(2);
    expect(o.err).toContain('named twice');
    o = io();
    expect(runCaptures(o, [], { json: false })).toBe(2);
  });

  it('takes the point name from the file name when @POINT is left out', () => {
    expect(parseCaptureSpec('/x/host1-br0.pcap')).toEqual({ file: '/x/host1-br0.pcap', point: 'host1-br0' });
    expect(parseCaptureSpec('a@b.pcap@host1:br0')).toEqual({ file: 'a@b.pcap', point: 'host1:br0' });
  });

  it("reads a paste without -n through the capturing guest's /etc/hosts and /etc/services (as ipvsadm pastes are)", () => {
    const scen = join(dir, 'names-scenario');
    cpSync(join(ROOT, 'examples/kvm-lvs-dr'), scen, { recursive: true });
    writeFileSync(
      join(scen, 'director1/hosts'),
      '127.0.0.1 localhost\n203.0.113.7 client.example\n192.0.2.208 vip.example\n',
    );
    writeFileSync(join(scen, 'director1/services'), 'web 80/tcp # the site, by its local name\n');
    const yaml = readFileSync(join(scen, 'scenario.yaml'), 'utf8');
    const withNames = yaml.replace(
      '    ipvsadm: director1/ipvsadm-Ln.txt',
      '    ipvsadm: director1/ipvsadm-Ln.txt\n    etc-hosts: director1/hosts\n    etc-services: director1/services',
    );
    expect(withNames).not.toBe(yaml);
    writeFileSync(join(scen, 'scenario.yaml'), withNames);
    const paste = join(dir, 'director-named.txt');
    writeFileSync(
      paste,
      '11:39:19.372804 IP client.example.51643 > vip.example.web: Flags [S], seq 3639534333, win 29200, options [mss 1460,sackOK,TS val 780753501 ecr 0,nop,wscale 7], length 0\n',
    );
    const o = io();
    expect(runCaptures(o, [`${paste}@r2-10105:eth0`], { json: true, scenario: scen }), o.err).not.toBe(2);
    const flow = JSON.parse(o.out).flowReports[0];
    expect(flow.endpoints).toBe('203.0.113.7.51643 > 192.0.2.208.80');
    expect(flow.details[0].path[0]).toMatchObject({ src: '203.0.113.7.51643', dst: '192.0.2.208.80' });
    // Without the guest's files the names are not known: refused with the hint to capture with -nn.
    const bare = io();
    expect(
      runCaptures(bare, [`${paste}@r2-10105:eth0`], { json: true, scenario: join(ROOT, 'examples/kvm-lvs-dr') }),
    ).toBe(2);
    expect(bare.err).toMatch(/"client\.example" is not known to the scenario; .*-nn.*etc-hosts/);
  });

  it('prints a tcpdump -i any capture as tcpdump does and says where its interface names come from', () => {
    const o = io();
    const file = join(ROOT, 'fixtures/captures/linktypes/server-any.pcap');
    expect(runCapturesShow(o, file, { link: false, verbosity: 0, numeric: 2 })).toBe(0);
    expect(o.out).toMatch(
      /^\d\d:\d\d:\d\d\.\d{6} \S+ +B {3}ARP, Request who-has 192\.0\.2\.2 tell 192\.0\.2\.1, length 28$/m,
    );
    expect(o.err).toContain("interface names are this machine's names for the captured interface indexes");
  });

  it('refuses pasted text bigger than it reads whole, saying to capture to a file', () => {
    const big = join(dir, 'big-paste.txt');
    writeFileSync(big, '11:39:19.372804 IP 192.0.2.1.1 > 192.0.2.2.80: Flags [S], seq 1, win 1, length 0\n');
    truncateSync(big, 65 * 1048576);
    const o = io();
    expect(runCaptures(o, [`${big}@a:eth0`], { json: false })).toBe(2);
    expect(o.err).toMatch(/is tcpdump text of 65 MiB; text is read whole, at most 64 MiB .*tcpdump -w/);
  });
});
