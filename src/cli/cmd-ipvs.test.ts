import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runIpvsShow, runIpvsSimulate } from './cmd-ipvs.ts';

const FIXTURES = fileURLToPath(new URL('../../fixtures/ipvs/', import.meta.url));

function capture(cwd = FIXTURES) {
  let out = '';
  let err = '';
  return {
    io: { stdout: (s: string) => (out += s), stderr: (s: string) => (err += s), cwd },
    get out() {
      return out;
    },
    get err() {
      return err;
    },
  };
}

const tmpRoot = mkdtempSync(join(tmpdir(), 'lvsdoctor-ipvs-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

function tmpFile(name: string, text: string): { dir: string; name: string } {
  const dir = mkdtempSync(join(tmpRoot, 'f-'));
  writeFileSync(join(dir, name), text);
  return { dir, name };
}

const strip = (s: string) => s.replace(/[ \t]+$/gm, '');

describe('lvsdoctor ipvs show', () => {
  for (const name of [
    'listings/render-mixed.txt',
    'listings/render-stats.txt',
    'listings/render-rate.txt',
    'listings/render-thresholds.txt',
    'listings/render-tun-info.txt',
    'listings/render-dr-one-halfopen.txt',
    'listings/case-founding.txt',
  ]) {
    it(`prints a canonical listing identical to the canonical input ${name} (trailing spaces aside)`, () => {
      const c = capture();
      expect(runIpvsShow(c.io, name, { format: 'ipvsadm' })).toBe(0);
      expect(c.err).toBe('');
      expect(strip(c.out)).toBe(strip(readFileSync(FIXTURES + name, 'utf8')));
    });
  }

  it('converts a keepalived.conf into the ipvsadm listing and save format', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'keepalived/fact-sheet-minimal-dr.conf', { format: 'ipvsadm' })).toBe(0);
    expect(c.out).toBe(
      'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  192.168.122.100:80 rr persistent 50\n' +
        '  -> 192.168.122.11:80            Route   1      0          0         \n',
    );
    const s = capture();
    expect(runIpvsShow(s.io, 'keepalived/fact-sheet-minimal-dr.conf', { format: 'save' })).toBe(0);
    expect(s.out).toBe('-A -t 192.168.122.100:80 -s rr -p 50\n-a -t 192.168.122.100:80 -r 192.168.122.11:80 -g -w 1\n');
  });

  it("prints keepalived's defaults as warnings on stderr and still succeeds", () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'keepalived/defaults.conf', { format: 'save' })).toBe(0);
    expect(c.err).toContain(
      'keepalived/defaults.conf:2: warning: no protocol set - defaulting to UDP (keepalived): ' +
        "'virtual_server 10.10.10.2 1358' becomes a UDP service; add 'protocol TCP' for TCP [keepalived-default-protocol]",
    );
    expect(c.out.split('\n')[0]).toBe('-A -u 10.10.10.2:1358 -s wlc -p 50');
  });

  it('re-writes an ipvsadm -Sn save and lists it', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'save/c4-mh-tun.txt', { format: 'save' })).toBe(0);
    expect(c.out).toBe(readFileSync(`${FIXTURES}save/c4-mh-tun.txt`, 'utf8'));
    const l = capture();
    expect(runIpvsShow(l.io, 'save/c4-mh-tun.txt', { format: 'ipvsadm' })).toBe(0);
    expect(l.out).toContain('TCP  10.131.153.120:4000 mh (mh-fallback,mh-port)\n');
  });

  it('lists /proc/net/ip_vs with its header as ipvsadm would', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'proc/c1-procfs-ip_vs.txt', { format: 'ipvsadm' })).toBe(0);
    expect(c.out.split('\n').slice(0, 4)).toEqual([
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  192.168.0.22:3306 wlc',
    ]);
  });

  it('prints JSON with origins and the keepalived VRRP data', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'keepalived/director-full.conf', { format: 'json' })).toBe(0);
    const j = JSON.parse(c.out);
    expect(j.input).toBe('keepalived');
    expect(j.services).toHaveLength(7);
    expect(j.services[0]).toMatchObject({ protocol: 'TCP', address: '192.168.122.100', port: 80, scheduler: 'wlc' });
    expect(j.services[0].origin[0]).toMatchObject({ file: 'keepalived/director-full.conf', line: 27 });
    expect(j.services[0].origin[1]).toMatchObject({ label: 'keepalived virtual_server group web', line: 32 });
    expect(j.services[0].destinations[0]).toMatchObject({ address: '192.168.122.12', forward: 'Route', weight: 1 });
    expect(j.keepalived.vrrpInstances[0]).toMatchObject({ name: 'VI_1', strict: true, accept: false });
    expect(j.issues.map((i: { code: string }) => i.code)).toEqual([
      'keepalived-port-ignored',
      'keepalived-port-ignored',
    ]);
  });

  it('re-renders a connection listing and a timeout line, but has no save format for them', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'connections/render-mixed.txt', { format: 'ipvsadm' })).toBe(0);
    expect(c.out).toBe(readFileSync(`${FIXTURES}connections/render-mixed.txt`, 'utf8'));
    const t = capture();
    expect(runIpvsShow(t.io, 'timeout/c15-timeouts.txt', { format: 'ipvsadm' })).toBe(0);
    expect(t.out).toBe('Timeout (tcp tcpfin udp): 1 2 1\n');
    const s = capture();
    expect(runIpvsShow(s.io, 'timeout/c15-timeouts.txt', { format: 'save' })).toBe(2);
    expect(s.err).toContain('[ipvs-input-no-table]');
  });

  it('exits 2 with file:line errors for bad input', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'keepalived/syntax-errors.conf', { format: 'ipvsadm' })).toBe(2);
    expect(c.out).toBe('');
    expect(c.err).toContain("keepalived/syntax-errors.conf:13: error: '}' closes no block [keepalived-syntax]\n");
    expect(c.err).toContain('keepalived/syntax-errors.conf:1: unsupported: ');
    const d = capture();
    expect(runIpvsShow(d.io, 'listings/c20-dpvs-b.txt', { format: 'ipvsadm' })).toBe(2);
    expect(d.err).toContain('listings/c20-dpvs-b.txt:2: unsupported: ');
    expect(d.err).toContain('[ipvsadm-fullnat]');
  });

  it('exits 2 for a truncated listing, naming the line', () => {
    const f = tmpFile(
      'trunc.txt',
      'IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\nTCP  192.0.2.208:80 rr\n  -> 192.0.2.226:80               Route   2      0',
    );
    const c = capture(f.dir);
    expect(runIpvsShow(c.io, f.name, { format: 'ipvsadm' })).toBe(2);
    expect(c.err).toMatch(/^trunc\.txt:5: error: expected ' {2}-> ADDRESS:PORT Forward Weight ActiveConn InActConn'/);
  });

  it('exits 2 for a missing file and for a bad format', () => {
    const c = capture();
    expect(runIpvsShow(c.io, 'nope.txt', { format: 'ipvsadm' })).toBe(2);
    expect(c.err).toBe('nope.txt: error: cannot read the file: no such file [ipvs-input-unreadable]\n');
    const d = capture();
    expect(runIpvsShow(d.io, 'save/c4-mh-tun.txt', { format: 'xml' as never })).toBe(2);
    expect(d.err).toBe('error: --format must be ipvsadm, save or json, not "xml"\n');
  });
});

describe('lvsdoctor ipvs simulate', () => {
  it('spreads rr evenly over two servers and counts half-open DR connections as active', () => {
    const f = tmpFile(
      'two.save',
      '-A -t 192.0.2.208:80 -s rr\n-a -t 192.0.2.208:80 -r 192.0.2.226:80 -g -w 1\n-a -t 192.0.2.208:80 -r 192.0.2.227:80 -g -w 1\n',
    );
    const c = capture(f.dir);
    expect(
      runIpvsSimulate(c.io, f.name, {
        connections: 1000,
        clients: 'count=50,net=203.0.113.0/24,ports=1024-65535',
        lifecycle: 'syn',
      }),
    ).toBe(0);
    expect(c.out).toContain(
      'TCP  192.0.2.208:80 rr: 1000 new connections from 50 clients of 203.0.113.0/24, ports 1024-65535, seed 1; one every 10 ms; client SYN only (half-open)\n',
    );
    // 1000 SYNs over 9.99 s: none has expired (60 s), all SYN_RECV = active.
    expect(c.out).toContain(
      '  -> 192.0.2.227:80               Route   1             500  50.0% 500        0          0\n',
    );
    expect(c.out).toContain(
      '  -> 192.0.2.226:80               Route   1             500  50.0% 500        0          0\n',
    );
    expect(c.out).toContain('  decisions: 1000 scheduled by rr\n');
    expect(c.out).toContain('  -> 192.0.2.226:80               Route   1      500        0         \n');
  });

  it('counts closed DR connections as inactive (FIN_WAIT) and follows persistence templates', () => {
    const f = tmpFile(
      'p.save',
      '-A -t 192.0.2.208:80 -s wlc -p 360\n-a -t 192.0.2.208:80 -r 192.0.2.226:80 -g -w 1\n-a -t 192.0.2.208:80 -r 192.0.2.227:80 -g -w 3\n',
    );
    const c = capture(f.dir);
    expect(runIpvsSimulate(c.io, f.name, { connections: 400, clients: '198.51.100.0/28', lifecycle: 'closed' })).toBe(
      0,
    );
    expect(c.out).toContain('from 14 clients of 198.51.100.0/28');
    expect(c.out).toMatch(
      /decisions: 14 by wlc creating a persistence template; 386 following an existing persistence template/,
    );
    const rows = c.out.split('\n').filter((l) => l.startsWith('  -> 192.0.2.22'));
    // Every connection ended in FIN_WAIT (inactive); 14 templates split over the two servers (PersistConn).
    const sim = rows.slice(0, 2).map((l) => l.trim().split(/\s+/));
    expect(sim.map((r) => Number(r[6]))).toEqual([0, 0]);
    expect(sim.reduce((a, r) => a + Number(r[7]!), 0)).toBe(400);
    expect(sim.reduce((a, r) => a + Number(r[8]!), 0)).toBe(14);
  });

  it('is deterministic for a seed and changes with it', () => {
    const run = (clients: string) => {
      const c = capture();
      runIpvsSimulate(c.io, 'save/c4-mh-tun.txt', { connections: 300, clients });
      return c.out;
    };
    expect(run('seed=7')).toBe(run('seed=7'));
    expect(run('seed=7')).not.toBe(run('seed=8'));
  });

  it('spreads mh over the servers with weight, and exits 1 with the kernel log when no server can take a connection', () => {
    const c = capture();
    expect(runIpvsSimulate(c.io, 'save/c4-mh-tun.txt', { connections: 2000 })).toBe(0);
    expect(c.out).toContain('decisions: 2000 scheduled by mh');
    const f = tmpFile(
      'zero.save',
      '-A -t 192.0.2.208:80 -s mh\n-a -t 192.0.2.208:80 -r 192.0.2.226:80 -g -w 1\n-a -t 192.0.2.208:80 -r 192.0.2.227:80 -g -w 0\n',
    );
    const z = capture(f.dir);
    expect(runIpvsSimulate(z.io, f.name, { connections: 100 })).toBe(0);
    const q = tmpFile(
      'q.conf',
      'virtual_server 192.0.2.208 80 {\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 192.0.2.226 80 {\n  weight 0\n }\n}\n',
    );
    const e = capture(q.dir);
    expect(runIpvsSimulate(e.io, q.name, { connections: 10 })).toBe(1);
    expect(e.out).toContain(
      '10 no destination → ICMP port unreachable ("IPVS: rr: TCP 192.0.2.208:80 - no destination available")',
    );
  });

  it('simulates UDP services with one inactive entry per datagram', () => {
    const c = capture();
    expect(runIpvsSimulate(c.io, 'save/c14c-tcp-udp-nat.txt', { connections: 90 })).toBe(0);
    expect(c.out).toContain('UDP  192.168.3.2:5000 wlc: 90 new connections');
    const udp = c.out.split('UDP  192.168.3.2:5000 wlc:')[1]!.split('\n').slice(2, 4);
    expect(udp.map((l) => Number(l.trim().split(/\s+/)[6]))).toEqual([0, 0]);
  });

  it('rejects bad arguments with exit 2', () => {
    const c = capture();
    expect(runIpvsSimulate(c.io, 'save/c4-mh-tun.txt', { connections: 0 })).toBe(2);
    expect(c.err).toContain('--connections must be an integer');
    const d = capture();
    expect(runIpvsSimulate(d.io, 'save/c4-mh-tun.txt', { connections: 5, clients: 'count=300' })).toBe(2);
    expect(d.err).toBe('error: --clients: count=300 is more than the 254 usable addresses of the network\n');
    const e = capture();
    expect(runIpvsSimulate(e.io, 'connections/c13a-dr.txt', { connections: 5 })).toBe(2);
    expect(e.err).toContain('[ipvs-input-no-table]');
  });
});
