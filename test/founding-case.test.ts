import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readPcap } from '../src/capture/pcap.ts';
import { runCli } from './run-cli.ts';

const EX = 'examples/kvm-lvs-dr';
const FIXED = 'examples/kvm-lvs-dr-fixed';
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('lvsdoctor diagnose on the founding case', () => {
  it('names host, bridge, port, chain, rule and the whole origin chain of the drop', async () => {
    const r = await runCli('diagnose', EX);
    expect(r.code).toBe(1);
    const out = r.stdout;
    expect(out).toContain('✓ director r2-10105 sees the real server');
    expect(out).toContain('TCP  192.0.2.208:80 rr');
    expect(out).toContain('✓ director r2-10105 rewrites the MACs');
    expect(out).toContain('84:78:ac:27:6c:41 > 02:00:73:b6:53:c8');
    expect(out).toContain('02:00:73:b6:53:c8 > 02:00:73:b6:53:e2');
    expect(out).toContain('✗ host1 forwards the rewritten frame');
    expect(out).toContain('host1, bridge br0, port vnet0');
    expect(out).toContain('rule 3 of I-vnet0-ipv4-ip: -j DROP');
    expect(out).toMatch(
      /nwfilter no-ip-spoofing rule #3 priority=1000 action=drop[\s\S]*← nwfilter clean-traffic[\s\S]*← filterref clean-traffic IP=192\.0\.2\.200[\s\S]*← domain r2-10105 interface 02:00:73:b6:53:c8/,
    );
    expect(out).toContain("keeps the client's source address 192.243.119.145");
  });

  it('shows the same tcpdump lines the engineers captured on the director', async () => {
    const r = await runCli('diagnose', EX);
    expect(r.stdout).toContain(
      '11:39:19.372804 84:78:ac:27:6c:41 > 02:00:73:b6:53:c8, ethertype IPv4 (0x0800), length 74: (tos 0x0, ttl 48, id 47264, offset 0, flags [DF], proto TCP (6), length 60)',
    );
    expect(r.stdout).toContain(
      '192.243.119.145.51643 > 192.0.2.208.80: Flags [S], cksum 0x04c4 (correct), seq 3639534333, win 14600, options [mss 1460,sackOK,TS val 780753501 ecr 0,nop,wscale 7], length 0',
    );
    expect(r.stdout).toContain('11:39:19.372815 02:00:73:b6:53:c8 > 02:00:73:b6:53:e2');
  });

  it('reveals the latent ARP fault: the VIP only works while the gateway cache lasts', async () => {
    const r = await runCli('diagnose', EX);
    expect(r.stdout).toContain('probe arp-for-vip: FAILS');
    expect(r.stdout).toContain('vip-arp-blocked');
    expect(r.stdout).toContain('I-vnet0-arp-ip rule 2 "-j DROP"');
    expect(r.stdout).toContain('the cached neighbour entry on gateway');
  });

  it('proposes the article fix and a safer director filter, each verified by re-tracing', async () => {
    const r = await runCli('diagnose', EX, '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    const ids = j.fixes.map((f: { id: string }) => f.id);
    expect(ids).toContain('remove-filterref:host1:vnet0');
    expect(ids).toContain('dr-director-filter:host1:vnet0');
    const safer = j.fixes.find((f: { id: string }) => f.id === 'dr-director-filter:host1:vnet0');
    expect(safer.verified).toBe(true);
    expect(safer.unblocks.sort()).toEqual(['arp-for-vip', 'http-to-vip']);
    expect(safer.keeps).toContain('MAC anti-spoofing');
    expect(safer.keeps).toContain('ARP anti-spoofing');
    expect(safer.protectionRank).toBeGreaterThan(
      j.fixes.find((f: { id: string }) => f.id === 'remove-filterref:host1:vnet0').protectionRank,
    );
    // The ARP-only fix must not claim to fix the TCP probe.
    const addIp = j.fixes.find((f: { id: string }) => f.id.startsWith('add-ip:host1:vnet0'));
    expect(addIp.unblocks).toEqual(['arp-for-vip']);
  });

  it('writes the fixes as files that real libvirt syntax readers accept', async () => {
    const out = join(tmp, 'fixes');
    const r = await runCli('diagnose', EX, '--fix-dir', out);
    expect(r.code).toBe(1);
    const dir = join(out, 'dr-director-filter-host1-vnet0');
    const files = readdirSync(dir).sort();
    expect(files).toEqual([
      'binding-vnet0.xml',
      'interface-020073b653c8.txt',
      'nwfilter-lvsdoctor-dr-clean-traffic.xml',
      'nwfilter-lvsdoctor-dr-no-ip-spoofing.xml',
    ]);
    const leaf = readFileSync(join(dir, 'nwfilter-lvsdoctor-dr-no-ip-spoofing.xml'), 'utf8');
    expect(leaf).toContain("<ip dstmacaddr='$RS_MAC[@1]' dstipaddr='$VIP[@2]'/>");
    const binding = readFileSync(join(dir, 'binding-vnet0.xml'), 'utf8');
    expect(binding).toContain("<parameter name='RS_MAC' value='02:00:73:b6:53:e2'/>");
    expect(binding).toContain("<parameter name='IP' value='192.0.2.208'/>");
  });
});

describe('lvsdoctor diagnose on the fixed founding case', () => {
  it('reports the SYN delivered to RS2 and the SYN-ACK reaching the client', async () => {
    const r = await runCli('diagnose', FIXED);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('✓ host1 forwards the rewritten frame');
    expect(r.stdout).toContain('✓ r2-10106 receives the SYN and answers');
    expect(r.stdout).toContain('✓ the SYN-ACK reaches client');
    expect(r.stdout).toContain('192.0.2.208.80 > 192.243.119.145.48377: Flags [S.]');
    expect(r.stdout).toContain('healthy: 3 probes answered');
  });
});

describe('lvsdoctor trace', () => {
  it('writes one pcap per capture point that our reader and tcpdump both read', async () => {
    const out = join(tmp, 'pcaps');
    const r = await runCli('trace', EX, '--probe', 'http-to-vip', '--pcap-dir', out);
    expect(r.code).toBe(1);
    const files = readdirSync(out).sort();
    expect(files).toContain('r2-10105_eth0.pcap');
    expect(files).toContain('host1_vnet0.pcap');
    expect(files).toContain('host1_br0.pcap');
    const director = readPcap(readFileSync(join(out, 'r2-10105_eth0.pcap')), 'r2-10105_eth0.pcap');
    expect(director.issues).toEqual([]);
    // br0 never sees the rewritten SYN: only the client's SYN toward the director (and ARP).
    const br0 = readFileSync(join(out, 'host1_br0.pcap'));
    if (existsSync('/usr/bin/tcpdump') || existsSync('/usr/sbin/tcpdump')) {
      const text = execFileSync('tcpdump', ['-r', join(out, 'host1_br0.pcap'), '-e', '-nn'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, TZ: 'UTC' },
      });
      expect(text).toContain('84:78:ac:27:6c:41 > 02:00:73:b6:53:c8');
      expect(text).not.toContain('02:00:73:b6:53:c8 > 02:00:73:b6:53:e2, ethertype IPv4');
      const dirText = execFileSync('tcpdump', ['-r', join(out, 'r2-10105_eth0.pcap'), '-e', '-nn'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        env: { ...process.env, TZ: 'UTC' },
      });
      expect(dirText).toContain('02:00:73:b6:53:c8 > 02:00:73:b6:53:e2, ethertype IPv4');
    } else expect(br0.length).toBeGreaterThan(24);
  });

  it('prints JSON with the hop path and the decisive end', async () => {
    const r = await runCli('trace', EX, '--json');
    const j = JSON.parse(r.stdout);
    expect(j.traces).toHaveLength(2);
    expect(j.traces[0].disposition).toBe('dropped-by-filter');
    expect(j.traces[0].end.place).toEqual({ node: 'host1', iface: 'vnet0' });
    expect(j.traces[0].end.origin[0].data.filter).toBe('no-ip-spoofing');
  });
});

describe('lvsdoctor rules', () => {
  it('prints what libvirt installs on host1 in the legacy style of the article', async () => {
    const r = await runCli('rules', EX, '--host', 'host1', '--format', 'legacy');
    expect(r.code).toBe(0);
    for (const line of [
      '-i vnet0 -j libvirt-I-vnet0',
      '-o vnet0 -j libvirt-O-vnet0',
      '-s 2:0:73:b6:53:c8 -j RETURN',
      '-p IPv4 --ip-src 0.0.0.0 --ip-proto udp -j RETURN',
      '-p IPv4 --ip-src 192.0.2.200 -j RETURN',
      '-p 0x8035 -j I-vnet0-rarp',
    ])
      expect(r.stdout).toContain(line);
  });

  it('prints the nft listing identical to the real libvirt recording', async () => {
    const r = await runCli('rules', EX, '--host', 'host1');
    const recorded = join(
      '..',
      'shared',
      'reference',
      'nwfilter-recordings',
      's1-clean-traffic-one-ip',
      'ebtables-t-nat-L.txt',
    );
    if (!existsSync(recorded)) return;
    expect(r.stdout).toBe(readFileSync(recorded, 'utf8'));
  });
});

describe('bad input', () => {
  it('exits 2 with a one-line error for a missing scenario', async () => {
    const r = await runCli('diagnose', join(tmp, 'nope'));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('does not exist');
  });

  it('exits 2 on unknown commands and options, and 0 on --help', async () => {
    expect((await runCli('frobnicate')).code).toBe(2);
    expect((await runCli('diagnose', EX, '--bogus')).code).toBe(2);
    const h = await runCli('trace', '--help');
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('--pcap-dir');
  });

  it('exits 2 for an unknown probe or host', async () => {
    const p = await runCli('trace', EX, '--probe', 'nope');
    expect(p.code).toBe(2);
    expect(p.stderr).toContain('http-to-vip');
    const h = await runCli('rules', EX, '--host', 'nope');
    expect(h.code).toBe(2);
    expect(h.stderr).toContain('host1, host2');
  });
});

describe('the lvsdoctor bin', () => {
  it('runs as a process and prints no stack trace on bad input', () => {
    if (!existsSync('dist/cli.mjs')) execFileSync('node', ['scripts/build.mjs']);
    const ok = spawnSync('node', ['bin/lvsdoctor.mjs', 'diagnose', FIXED], { encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const bad = spawnSync('node', ['bin/lvsdoctor.mjs', 'diagnose', 'no/such/dir'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  });
});
