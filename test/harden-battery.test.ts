/**
 * Issue 15, the hostile battery: inputs an attacker (or a very unlucky operator) would try, beyond the issue's own
 * list. Each is bad input (exit 2, one line per problem naming the file and line), or read as the real tool reads
 * it; never a stack trace, an internal error (exit 70), a hang, or a file written outside the named output.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { reportIssues } from '../src/cli/io.ts';
import { readTar } from '../src/collect/tar.ts';
import { sysctlFix } from '../src/diagnose/sysctl-fix.ts';
import { readIpvsInput } from '../src/ipvs/ipvs-input.ts';
import { writeIpvsadmList } from '../src/ipvs/ipvsadm-list-writer.ts';
import { readFilterBindingXml } from '../src/libvirt/nwfilter-xml.ts';
import { appendAll, maxOf, minOf } from '../src/source/arrays.ts';
import { IFNAME_RULE, ifnameProblem } from '../src/source/ifname.ts';
import { formatIssue, issue } from '../src/source/issue.ts';
import { shellCommand } from '../src/source/shell.ts';
import { flatString, TextBuilder } from '../src/source/strings.ts';
import type { Node } from '../src/topology/model.ts';
import { readSysctl } from '../src/topology/sysctl.ts';
import { runCli } from './run-cli.ts';

const ROOT = join(import.meta.dirname, '..');
const EX = join(ROOT, 'examples', 'kvm-lvs-dr');
const tmp = mkdtempSync(join(tmpdir(), 'lvsdoctor-battery-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;

/** A copy of the example with some files replaced. */
function variant(files: Record<string, string | Uint8Array | ((text: string) => string | Uint8Array)>): string {
  const dir = join(tmp, `v${n++}`);
  cpSync(EX, dir, { recursive: true });
  for (const [file, edit] of Object.entries(files))
    writeFileSync(join(dir, file), typeof edit === 'function' ? edit(readFileSync(join(dir, file), 'utf8')) : edit);
  return dir;
}

/** Exit 2 or the given codes, no stack, no internal error; returns stderr. */
async function noCrash(argv: string[], codes: readonly number[] = [2]): Promise<{ code: number; stderr: string }> {
  const r = await runCli(...argv);
  expect(r.stderr).not.toMatch(/\n\s+at |internal error|RangeError|TypeError/);
  expect(codes, r.stderr.slice(0, 2000)).toContain(r.code);
  return r;
}

describe('input-sized arrays never go through a spread into a call (RangeError past ~100,000 arguments)', () => {
  it('appendAll, maxOf and minOf take a million elements', () => {
    const big = Array.from({ length: 1_000_000 }, (_, i) => i);
    expect(appendAll([-1], big)).toHaveLength(1_000_001);
    expect(maxOf(big)).toBe(999_999);
    expect(minOf(big)).toBe(0);
    expect(maxOf([])).toBe(Number.NEGATIVE_INFINITY);
    expect(minOf([])).toBe(Number.POSITIVE_INFINITY);
    expect(maxOf([1, Number.NaN])).toBeNaN();
  });

  it('a scenario artifact with 300,000 bad lines is 100 errors and a count (it was exit 70: issues pushed by spread)', async () => {
    const dir = variant({ 'director1/sysctl.txt': 'garbage line\n'.repeat(300_000) });
    const { stderr } = await noCrash(['check', dir]);
    expect(stderr).toContain('299900 more errors not shown');
    expect(stderr).toMatch(/sysctl\.txt:1: error: expected "key = value"/);
  });

  it('an ipvsadm listing with 300,000 bad lines, alone and in a scenario', async () => {
    const listing = `IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  192.0.2.1:80 wlc\n${'  -> 203.0.113.1:80 Bogus 1 0 0\n'.repeat(300_000)}`;
    const dir = variant({ 'director1/ipvsadm-Ln.txt': listing });
    await noCrash(['check', dir]);
    await noCrash(['ipvs', 'show', join(dir, 'director1/ipvsadm-Ln.txt')]);
  });
});

describe('memory of big listings', () => {
  it('flat strings and the text builder keep the text, not a tree of pieces', () => {
    const s = flatString(`a${'b'.repeat(3)}c`);
    expect(s).toBe('abbbc');
    const b = new TextBuilder();
    for (let i = 0; i < 100_000; i++) b.add(`${i}\n`);
    const text = b.text();
    expect(text.split('\n')).toHaveLength(100_001);
    expect(text.startsWith('0\n1\n2\n')).toBe(true);
    expect(b.text()).toBe(text);
  });

  it('an ipvsadm listing of 200,000 real servers reads and writes back the same', () => {
    const rows: string[] = [];
    for (let s = 0; s < 2000; s++) {
      rows.push(`TCP  192.0.2.${s % 250}:${1000 + s} wlc`);
      for (let d = 0; d < 100; d++)
        rows.push(`  -> 203.0.113.${d + 1}:${80 + (s % 7)}  Route   ${d}      0          0`);
    }
    const text = `IP Virtual Server version 1.2.1 (size=4096)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n${rows.join('\n')}\n`;
    const r = readIpvsInput(text, 'big.txt');
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const v = r.value;
    if (v?.kind !== 'ipvsadm-list') throw new Error(`read as ${v?.kind}`);
    const services = v.listing.table.services;
    expect(services).toHaveLength(2000);
    expect(services[0]!.destinations[0]!.origin.label).toBe('ipvsadm real server 203.0.113.1:80 of TCP 192.0.2.0:1000');
    const out = writeIpvsadmList(v.listing.table, { header: v.listing.header ?? false });
    expect(out.split('\n').length).toBe(3 + 2000 * 101 + 1);
  });
});

describe('the source', () => {
  it('spreads no array into push, unshift, Math.max or Math.min (appendAll, maxOf, minOf instead)', () => {
    const bad: string[] = [];
    const files = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts') && !f.endsWith('arrays.ts'),
    );
    for (const f of files) {
      const lines = readFileSync(join(ROOT, 'src', f), 'utf8').split('\n');
      lines.forEach((l, k) => {
        // The arguments of one iptables rule (`argv.push(...bang(x), '--dport', …)`) are a handful by construction.
        if (/\b(push|unshift)\(\.\.\.|Math\.(max|min)\([^)]*\.\.\./.test(l) && !/\bargv\.push\(/.test(l))
          bad.push(`src/${f}:${k + 1}: ${l.trim()}`);
      });
    }
    expect(bad).toEqual([]);
  });
});

describe('interface names the kernel refuses (dev_valid_name: IFNAMSIZ 16, no / : or white space)', () => {
  it('are named with why and what the kernel accepts', () => {
    expect(ifnameProblem('vnet0')).toBeUndefined();
    expect(ifnameProblem('a'.repeat(15))).toBeUndefined();
    expect(ifnameProblem('-t$(id)`x`')).toBeUndefined(); // the kernel takes it; printed commands quote it
    expect(ifnameProblem('a'.repeat(16))).toBe('it is 16 bytes long');
    expect(ifnameProblem('ééééééééé')).toBe('it is 18 bytes long'); // bytes, not characters
    expect(ifnameProblem('')).toBe('it is empty');
    expect(ifnameProblem('..')).toBe("'..' is reserved");
    expect(ifnameProblem('a/b')).toBe("it holds '/'");
    expect(ifnameProblem('eth0:1')).toBe("it holds ':'");
    for (const ws of [' ', '\t', '\n', '\r', '\v', '\f', '\u00e0'])
      expect(ifnameProblem(`a${ws}b`)).toBe('it holds white space');
  });

  it('in a domain <target dev=>, a binding <portdev>, <source bridge=> and an ip addr listing are errors at their line', async () => {
    const cases: [string, (t: string) => string, RegExp][] = [
      [
        'host1/r2-10105.xml',
        (t) => t.replace("<target dev='vnet0'/>", "<target dev='vnet 0'/>"),
        /<target dev=> "vnet 0"/,
      ],
      [
        'host1/r2-10105.xml',
        (t) => t.replace(/<source bridge='[^']*'\/>/, "<source bridge='br/0'/>"),
        /<source bridge=> "br\/0"/,
      ],
      [
        'director1/ip-addr.txt',
        (t) => t.replace(/^(\d+: )eth0/m, '$1eth0/x'),
        /interface "eth0\/x" cannot be an interface name: it holds '\/'/,
      ],
    ];
    for (const [file, edit, re] of cases) {
      const dir = variant({ [file]: edit });
      const text = readFileSync(join(dir, file), 'utf8');
      expect(text).not.toBe(readFileSync(join(EX, file), 'utf8'));
      const { stderr } = await noCrash(['check', dir]);
      const line = stderr.split('\n').find((l) => re.test(l));
      expect(line, stderr).toMatch(new RegExp(`${file.split('/')[1]!.replace('.', '\\.')}:\\d+`));
    }
    const r = readFilterBindingXml(
      "<filterbinding><owner><name>d</name><uuid>00000000-0000-4000-8000-000000000001</uuid></owner><portdev name='a:b'/><mac address='52:54:00:00:00:01'/><filterref filter='clean-traffic'/></filterbinding>",
      'b.xml',
    );
    expect(r.value).toBeUndefined();
    expect(r.issues.map(formatIssue)).toContain(
      `b.xml:1: error: <portdev name=> "a:b" cannot be an interface name: it holds ':'; ${IFNAME_RULE} [interface-name]`,
    );
  });
});

/** A ustar archive of `members` (type flag '0' file, '1' hard link, '2' symlink, '3'/'4' device, '5' dir, '6' FIFO). */
function ustar(members: readonly { name: string; type?: string; data?: string; link?: string }[]): Uint8Array {
  const blocks: Buffer[] = [];
  for (const m of members) {
    const data = Buffer.from(m.data ?? '');
    const h = Buffer.alloc(512);
    const put = (s: string, at: number, len: number) => h.write(s.slice(0, len), at, 'utf8');
    put(m.name, 0, 100);
    put('0000644\0', 100, 8);
    put('0000000\0', 108, 8);
    put('0000000\0', 116, 8);
    put(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 12);
    put('00000000000\0', 136, 12);
    put('        ', 148, 8);
    put(m.type ?? '0', 156, 1);
    put(m.link ?? '', 157, 100);
    put('ustar\0', 257, 6);
    put('00', 263, 2);
    let sum = 0;
    for (const b of h) sum += b;
    put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
    blocks.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return new Uint8Array(Buffer.concat(blocks));
}

/** The founding bundle's files, as tar members under its directory name. */
function foundingMembers(): { name: string; data: string }[] {
  const name = 'lvsdoctor-bundle-hypervisor-host1';
  const dir = join(ROOT, 'fixtures', 'collect', 'founding-real', name);
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => ({ name: `${name}/${f}`, data: readFileSync(join(dir, f), 'utf8') }));
}

describe('bundle archives an attacker made', () => {
  const KINDS: [string, string][] = [
    ['1', 'a hard link'],
    ['2', 'a symbolic link'],
    ['3', 'a character device'],
    ['4', 'a block device'],
    ['6', 'a FIFO'],
  ];

  it('a link, a device or a FIFO in place of a file is refused, naming the member and its byte (it was skipped)', () => {
    for (const [type, kind] of KINDS) {
      const r = readTar(
        gzipSync(
          ustar([
            { name: 'b/manifest.tsv', data: 'kind\thypervisor\n' },
            { name: 'b/cmd/x.out', type, link: '/etc/shadow' },
          ]),
        ),
      );
      expect(r.error).toBe(
        `member "b/cmd/x.out" (header at byte 1024 of the inflated data) is ${kind}: a bundle holds only regular files`,
      );
    }
  });

  it('absolute member names, .. members and a member twice are refused', () => {
    expect(readTar(ustar([{ name: '/etc/cron.d/x', data: 'x' }])).error).toBe(
      `member "/etc/cron.d/x" (header at byte 0) is an absolute path: a bundle's members stay inside it`,
    );
    expect(readTar(ustar([{ name: 'b/../../x', data: 'x' }])).error).toBe(
      `member "b/../../x" (header at byte 0) has a '..' part: a bundle's members stay inside it`,
    );
    expect(
      readTar(
        ustar([
          { name: 'b/x', data: 'one' },
          { name: './b/x', data: 'two' },
        ]),
      ).error,
    ).toBe(`member "./b/x" (header at byte 1024) is in the archive twice: which one is meant is ambiguous`);
    // Directories are what tar -c writes for the bundle's directories: read as nothing, not refused.
    expect(
      readTar(
        ustar([
          { name: 'b/', type: '5' },
          { name: 'b/x', data: 'x' },
        ]),
      ).entries.map((e) => e.path),
    ).toEqual(['b/x']);
  });

  it('a directory where the manifest names a file, and a command recorded twice, are errors at the manifest line', async () => {
    const members = foundingMembers();
    const ipAddr = members.findIndex((m) => m.name.endsWith('/cmd/ip-addr.out'));
    const asDir = members.map((m, k) => (k === ipAddr ? { name: `${m.name}/`, type: '5' } : m));
    const a = join(tmp, 'dir-member.tar.gz');
    writeFileSync(a, gzipSync(ustar(asDir)));
    const r = await noCrash(['import', a, '-o', join(tmp, 'dir-member-out')]);
    expect(r.stderr).toMatch(
      /manifest\.tsv:\d+: error: command ip-addr names "cmd\/ip-addr\.out", which the bundle does not hold as a file \[bundle\.member\]/,
    );
    const twice = members.map((m) =>
      m.name.endsWith('/manifest.tsv')
        ? { ...m, data: `${m.data}${m.data.split('\n').find((l) => l.startsWith('cmd\tip-addr\t'))}\n` }
        : m,
    );
    const b = join(tmp, 'twice.tar.gz');
    writeFileSync(b, gzipSync(ustar(twice)));
    const r2 = await noCrash(['import', b, '-o', join(tmp, 'twice-out')]);
    expect(r2.stderr).toMatch(
      /manifest\.tsv:\d+: error: command ip-addr is recorded twice \(first at line \d+\): which record holds is ambiguous \[bundle\.manifest\]/,
    );
  });
});

describe('numbers no real tool prints', () => {
  it('are errors at their line: an ipvsadm weight past the kernel int, an all-digit port past 65535, an MTU or metric past u32', async () => {
    const cases: [string, (t: string) => string, RegExp][] = [
      [
        'director1/ipvsadm-Ln.txt',
        (t) => t.replace('Route   2 ', 'Route   99999999999999999999999 '),
        /ipvsadm-Ln\.txt:5: error: .*a weight up to 2147483647/,
      ],
      [
        'director1/ipvsadm-Ln.txt',
        (t) => t.replace('Route   2 ', 'Route   2147483648 '),
        /ipvsadm-Ln\.txt:5: error: .*a weight up to 2147483647/,
      ],
      [
        'director1/ipvsadm-Ln.txt',
        (t) => t.replace('192.0.2.208:80', '192.0.2.208:99999999999999999999'),
        /ipvsadm-Ln\.txt:4: error: .*'99999999999999999999' is not a numeric port/,
      ],
      [
        'director1/ip-addr.txt',
        (t) => t.replace('mtu 1500', 'mtu 99999999999999999999999999'),
        /ip-addr\.txt:\d+: error: expected an MTU 0-4294967295/,
      ],
      [
        'director1/ip-route.txt',
        (t) => t.replace(/\n/, ' metric 4294967296\n'),
        /ip-route\.txt:1: error: expected a number 0-4294967295 after "metric", found "4294967296"/,
      ],
      [
        'director1/ip-route.txt',
        (t) => t.replace(/\n/, ' metric 1e3\n'),
        /ip-route\.txt:1: error: expected a number 0-4294967295 after "metric", found "1e3"/,
      ],
      [
        'scenario.yaml',
        (t) => t.replace('sport: 51643', 'sport: 1e400'),
        /scenario\.yaml:\d+:\d+: error: probes\.0\.sport/,
      ],
      [
        'scenario.yaml',
        (t) => t.replace('seq: 3639534333', 'seq: 99999999999999999999999'),
        /scenario\.yaml:\d+:\d+: error: probes\.0\.seq/,
      ],
    ];
    for (const [file, edit, re] of cases) {
      const dir = variant({ [file]: edit });
      expect(readFileSync(join(dir, file), 'utf8')).not.toBe(readFileSync(join(EX, file), 'utf8'));
      const { stderr } = await noCrash(['check', dir]);
      expect(stderr).toMatch(re);
    }
  });

  it('IPv6 scoped addresses (fe80::1%eth0), which ipvsadm and ip never print, are errors naming the line', async () => {
    for (const [file, edit] of [
      ['director1/ipvsadm-Ln.txt', (t: string) => t.replace('192.0.2.226:80 ', '[fe80::1%eth0]:80 ')],
      ['director1/ip-addr.txt', (t: string) => t.replace('inet 192.0.2.200/24', 'inet6 fe80::1%eth0/64')],
    ] as const) {
      const { stderr } = await noCrash(['check', variant({ [file]: edit })]);
      expect(stderr).toMatch(new RegExp(`${file.split('/')[1]!.replace('.', '\\.')}:\\d+: error: .*fe80::1%eth0`));
    }
  });

  it('a scenario whose artifact is scenario.yaml itself, or its directory, is an error naming the line', async () => {
    const self = await noCrash([
      'check',
      variant({ 'scenario.yaml': (t) => t.replace('ip-route: director1/ip-route.txt', 'ip-route: scenario.yaml') }),
    ]);
    expect(self.stderr).toMatch(/scenario\.yaml:\d+: error: /);
    const dot = await noCrash([
      'check',
      variant({ 'scenario.yaml': (t) => t.replace('ip-route: director1/ip-route.txt', 'ip-route: .') }),
    ]);
    expect(dot.stderr).toMatch(
      /scenario\.yaml:\d+:\d+: error: cannot read .*: it is a directory, not a file \[scenario\.file\]/,
    );
  });

  it('every artifact of the example emptied, or with bytes that are not UTF-8, is read without a crash', async () => {
    const files = [
      'scenario.yaml',
      'host1/ip-addr.txt',
      'host1/r2-10105.xml',
      'director1/ip-addr.txt',
      'director1/ip-route.txt',
      'director1/sysctl.txt',
      'director1/ipvsadm-Ln.txt',
    ];
    for (const file of files) {
      await noCrash(['check', variant({ [file]: '' })], [1, 2]);
      const bytes = Buffer.from(readFileSync(join(EX, file), 'utf8').replace(/a/g, '\u0000'), 'utf8');
      for (let i = 0; i < bytes.length; i += 7) if (bytes[i] === 0x65) bytes[i] = 0xff;
      await noCrash(['diagnose', variant({ [file]: new Uint8Array(bytes) })], [1, 2]);
    }
  });
});

describe('bytes that are not UTF-8', () => {
  it('in an artifact are a warning at the first line that has them (a name with them matches nothing)', async () => {
    const text = readFileSync(join(EX, 'director1/ip-addr.txt'));
    const at = text.indexOf('eth0');
    const bytes = Buffer.concat([text.subarray(0, at), Buffer.from([0x65, 0xff, 0x68]), text.subarray(at + 3)]);
    const line = text.subarray(0, at).toString('latin1').split('\n').length;
    const r = await runCli('check', variant({ 'director1/ip-addr.txt': new Uint8Array(bytes) }));
    expect(r.stderr).toContain(
      `ip-addr.txt:${line}: warning: bytes that are not UTF-8 are read as U+FFFD (\uFFFD): a name holding them matches no other [scenario.not-utf8]`,
    );
  });
});

describe('printed commands with hostile names (newlines, quotes, $(), backticks, unicode)', () => {
  const NAMES = ["a'b", 'x\ny', '$(touch /tmp/p)', '`id`', 'é☃\u202e', '-rf', 'a b;c|d&e>f', '\t\r\u0000z'];
  it('are one shell word each, read back by sh exactly, on one line', () => {
    for (const n of NAMES) {
      const cmd = shellCommand('printf', '%s', n);
      expect(cmd.includes('\n') && !cmd.includes("'")).toBe(false);
      if (n.includes('\u0000')) continue; // a C string cannot hold NUL: no real name has one
      const out = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).stdout;
      expect(out).toBe(n);
    }
  });

  it('a sysctl fix on a node and interface with such names quotes every command and comments safely', () => {
    for (const n of NAMES.filter((x) => !x.includes('\u0000'))) {
      const fix = sysctlFix({ name: n } as unknown as Node, [[`net.ipv4.conf.e$(x)\`y\`.arp_ignore`, '1']], 'why', 1);
      const script = fix.commands.join('\n');
      // Every command line but comments runs as written: parse it with sh -n, and no line starts a new command.
      expect(spawnSync('sh', ['-n', '-c', script]).status).toBe(0);
      expect(fix.commands.filter((c) => !c.startsWith('#'))).toHaveLength(2);
      for (const c of fix.commands) if (c.startsWith('#')) expect(c).not.toContain('\n');
      expect(fix.commands[1]).toBe(`sysctl -w 'net.ipv4.conf.e$(x)\`y\`.arp_ignore=1'`);
    }
  });
});

describe('sysctl -a of a kernel with an interface the kernel accepts but a shell would not', () => {
  it('is read (keys hold any interface name: no white space), and a bad line is quoted cut short', () => {
    const r = readSysctl(`net.ipv4.conf.e$(x)\`y\`.arp_ignore = 1\n${'z'.repeat(100_000)}\n`, 's.txt');
    expect(r.value!.get('net.ipv4.conf.e$(x)`y`.arp_ignore')?.value).toBe('1');
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]!.message.length).toBeLessThan(220);
  });
});

describe('printed issues', () => {
  it('are cut at 1000 characters each, so a message quoting a megabyte of input buries nothing after it', () => {
    let out = '';
    const big = 'x'.repeat(1_000_000);
    const issues = [
      ...Array.from({ length: 150 }, (_, k) => issue('w', `odd ${big}`, { file: 'f.txt', line: k + 1 }, 'warning')),
      issue('e', 'the error', { file: 'f.txt', line: 151 }),
    ];
    expect(reportIssues({ stdout: () => {}, stderr: (s) => (out += s) }, issues)).toBe(true);
    expect(out.length).toBeLessThan(120_000);
    expect(out).toContain('f.txt:151: error: the error [e]');
    expect(out).toContain('… (999026 more characters)');
    expect(out).toContain('f.txt: 50 more warnings and notes not shown');
  });
});
