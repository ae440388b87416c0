/**
 * Differential test against the real libvirt 9.0 nwfilter driver (../shared/lab/REAL-KERNEL.md): fast-check
 * generates valid filters and bindings; each batch of cases is defined and bound in a real `libvirtd` running inside
 * a network namespace created here (one veth bridge port per case), and the real `ebtables -t nat -L`,
 * `ebtables-save`, `iptables-save`, `ip6tables-save` (per port) or libvirt's error are compared with lvsdoctor's.
 *
 * Every disagreement is written to fixtures/libvirt/differential/<name>/ (inputs + real outputs), where
 * src/libvirt/differential-fixtures.test.ts replays it. Knobs: NWFILTER_DIFF_CASES (default 200),
 * NWFILTER_DIFF_SEED (default: a fixed seed whose 200 cases were last seen to agree, so CI is repeatable; `random`
 * draws a new one, printed — run it to explore, and turn every disagreement into a fixture). Skipped (with the reason) when not root or a tool is missing.
 * Cleanup always: the daemon (by its PID), the namespaces, and the filter/binding files libvirt persisted.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DIFFERENTIAL_FORMATS,
  DIFFERENTIAL_IPSETS,
  replayCase,
  sameLibvirtMessage,
  sameUpToSubChainOrder,
} from './support/differential-replay.ts';
import { portSlice } from './support/port-slice.ts';

const CASES = Number(process.env.NWFILTER_DIFF_CASES ?? 200);
const SEED_ENV = process.env.NWFILTER_DIFF_SEED ?? '142225128';
const SEED = SEED_ENV === 'random' ? Math.floor(Math.random() * 2 ** 31) : Number(SEED_ENV);
const LANES = Number(process.env.NWFILTER_DIFF_LANES ?? 2);
const PREFIX = 'lvsdnf';
const PORT_RE = /(^|[\s-])lvd\d+[a-z]?($|[\s-])/;
const FIXTURES = new URL('../fixtures/libvirt/differential/', import.meta.url);
const URI = 'nwfilter:///system';
const FILTER_DIR = '/etc/libvirt/nwfilter';

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

const skipReason = (() => {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and a real libvirtd need root)';
  for (const t of [
    'ip',
    'unshare',
    'nsenter',
    'libvirtd',
    'virsh',
    'ebtables',
    'ebtables-save',
    'iptables-save',
    'ip6tables-save',
    'ipset',
  ]) {
    if (!which(t)) return `${t} is not installed (packages libvirt-daemon libvirt-clients ebtables iptables ipset)`;
  }
  if (!existsSync(`${FILTER_DIR}/clean-traffic.xml`)) {
    return 'libvirt-daemon-config-nwfilter is not installed';
  }
  return undefined;
})();

// ---------- generator ----------

interface GenRule {
  readonly action: string;
  readonly direction: string;
  readonly priority?: string;
  readonly statematch?: string;
  readonly protocol?: string;
  readonly elements: readonly (readonly [boolean, readonly (readonly [string, string])[]])[];
}

interface GenFilter {
  readonly chain?: string | undefined;
  readonly priority?: number | undefined;
  readonly rules: readonly GenRule[];
  /** Indexes into the case's sub-filters, or built-in names. */
  readonly refs: readonly (number | string)[];
  readonly refParams: readonly (readonly [string, string])[];
}

interface GenCase {
  readonly top: GenFilter;
  readonly subs: readonly GenFilter[];
  readonly mac: string;
  readonly params: readonly (readonly [string, string])[];
}

const hex2 = fc.integer({ min: 0, max: 255 }).map((n) => n.toString(16).padStart(2, '0'));
const macA = fc.tuple(hex2, hex2, hex2, hex2, hex2, hex2).map((p) => p.join(':'));
// Non-contiguous Ethernet-header masks are illegal (libvirt reports the last illegal attribute of an element).
const macMaskA = fc.constantFrom(
  'ff:ff:ff:ff:ff:ff',
  'ff:ff:ff:00:00:00',
  'ff:ff:ff:ff:ff:fe',
  'ff:00:ff:00:00:00',
  'ff:ff:00:ff:00:00',
);
const ipv4A = fc.tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) => p.join('.'));
const ipv6A = fc.constantFrom('2001:db8::1', 'fe80::', 'a:b:c::d', '::ffff:10.1.2.3', '2001:db8:1:2::', '::1');
const u8 = fc.nat(255).map(String);
// iptables refuses `--tcp-option 0` (libvirt then refuses the binding): drawn often enough to be met.
const tcpOptionA = fc.oneof(fc.constant('0'), fc.integer({ min: 1, max: 255 }).map(String));
const u16 = fc.nat(65535).map(String);
const port = fc.nat(65535);
const portRange = (startName: string, endName: string) =>
  fc.tuple(port, fc.option(port, { nil: undefined })).map(([a, b]): [string, string][] => {
    if (b === undefined) return [[startName, `${a}`]];
    return [
      [startName, `${Math.min(a, b)}`],
      [endName, `${Math.max(a, b)}`],
    ];
  });
const commentA = fc.oneof(
  {
    arbitrary: fc.stringMatching(/^[A-Za-z0-9 _.:;"'\\-]{1,24}$/).filter((s) => s.trim() === s && !s.includes('  ')),
    weight: 9,
  },
  // A lone `$`: a variable with an empty name (every binding is refused).
  { arbitrary: fc.constant('$'), weight: 1 },
);
const stateA = fc
  .subarray(['NEW', 'ESTABLISHED', 'RELATED', 'INVALID'], { minLength: 1 })
  .map((a) => a.join(','))
  .chain((s) => fc.constantFrom(s, 'NONE'));
const flagList = fc.subarray(['SYN', 'ACK', 'URG', 'PSH', 'FIN', 'RST'], { minLength: 1 }).map((a) => a.join(','));
const flagsA = fc
  .tuple(fc.oneof(flagList, fc.constantFrom('ALL', 'NONE')), fc.oneof(flagList, fc.constantFrom('ALL', 'NONE')))
  .map(([a, b]) => `${a}/${b}`);

type Attr = readonly [string, string];
type AttrGen = fc.Arbitrary<Attr[]>;

function one(name: string, a: fc.Arbitrary<string>): AttrGen {
  return a.map((v) => [[name, v] as Attr]);
}

function pick(gens: readonly AttrGen[], max = 4): fc.Arbitrary<Attr[]> {
  return fc
    .subarray([...gens], { maxLength: max })
    .chain((gs) => (gs.length === 0 ? fc.constant([]) : fc.tuple(...gs).map((x) => x.flat())));
}

const MAC4: AttrGen[] = [
  one('srcmacaddr', macA),
  fc.tuple(macA, macMaskA).map(([a, m]) => [['srcmacaddr', a] as Attr, ['srcmacmask', m] as Attr]),
  one('dstmacaddr', macA),
  fc.tuple(macA, macMaskA).map(([a, m]) => [['dstmacaddr', a] as Attr, ['dstmacmask', m] as Attr]),
];
const v4addr = (n: string): AttrGen[] => [
  one(`${n}ipaddr`, fc.oneof(ipv4A, fc.constant('$V4'), fc.constant('$V4[1]'))),
  fc
    .tuple(ipv4A, fc.integer({ min: 0, max: 32 }))
    .map(([a, m]) => [[`${n}ipaddr`, a] as Attr, [`${n}ipmask`, `${m}`] as Attr]),
];
const v6addr = (n: string): AttrGen[] => [
  one(`${n}ipaddr`, ipv6A),
  fc
    .tuple(ipv6A, fc.integer({ min: 1, max: 128 }))
    .map(([a, m]) => [[`${n}ipaddr`, a] as Attr, [`${n}ipmask`, `${m}`] as Attr]),
];
const commentG = one('comment', commentA);

function l4(v6: boolean, extra: AttrGen[]): fc.Arbitrary<Attr[]> {
  const gens: AttrGen[] = [
    one('srcmacaddr', macA),
    ...(v6 ? [...v6addr('src'), ...v6addr('dst')] : [...v4addr('src'), ...v4addr('dst')]),
    one('dscp', fc.integer({ min: 0, max: 63 }).map(String)),
    one('connlimit-above', fc.integer({ min: 1, max: 100 }).map(String)),
    one('state', stateA),
    // -m set --match-set NAME FLAGS (1 to 6 src/dst directions, any case, as the schema allows).
    // (The lab creates lvsdset, blocklist (inet) and lvsdset6 (inet6); nosuchset does not exist.)
    fc
      .tuple(
        fc.constantFrom('lvsdset', 'blocklist', 'lvsdset6', 'nosuchset'),
        fc.array(fc.constantFrom('src', 'dst', 'SRC', 'Dst'), { minLength: 1, maxLength: 6 }),
      )
      .map(([n, f]) => [['ipset', n] as Attr, ['ipsetflags', f.join(',')] as Attr]),
    one('ipset', fc.constantFrom('lvsdset', 'lvsdset6')),
    one('ipsetflags', fc.constantFrom('src', 'dst,src')),
    commentG,
    ...extra,
  ];
  if (!v6) {
    gens.push(
      fc.tuple(ipv4A, ipv4A).map(([a, b]) => [['srcipfrom', a] as Attr, ['srcipto', b] as Attr]),
      one('dstipfrom', ipv4A),
      fc.tuple(ipv4A, ipv4A).map(([a, b]) => [['dstipfrom', a] as Attr, ['dstipto', b] as Attr]),
      one('srcipto', ipv4A),
    );
  } else {
    gens.push(
      fc.tuple(ipv6A, ipv6A).map(([a, b]) => [['srcipfrom', a] as Attr, ['srcipto', b] as Attr]),
      one('dstipfrom', ipv6A),
      // libvirt 9.0 types the -ipv6 elements' dstipto as an IPv4 address: both kinds are drawn.
      fc.tuple(ipv6A, fc.oneof(ipv4A, ipv6A)).map(([a, b]) => [['dstipfrom', a] as Attr, ['dstipto', b] as Attr]),
    );
  }
  return pick(gens, 4);
}

const portsG: AttrGen[] = [
  portRange('srcportstart', 'srcportend'),
  portRange('dstportstart', 'dstportend'),
  one('dstportstart', fc.constantFrom('$P', '$P[@1]')),
];
const icmpG: AttrGen[] = [
  fc
    .tuple(u8, fc.option(u8, { nil: undefined }))
    .map(([t, c]) => (c === undefined ? [['type', t] as Attr] : [['type', t] as Attr, ['code', c] as Attr])),
  // A code without a type.
  one('code', u8),
];

const PROTOCOLS: Readonly<Record<string, fc.Arbitrary<Attr[]>>> = {
  none: fc.constant([]),
  mac: pick([
    ...MAC4,
    // Numbers ebtables names from /etc/ethertypes (LLDP, S-TAG, EAPOL, RARP, IPv4, IPv6, MPLS, PPP) and ones it leaves
    // numeric (0x9000, 0x1234).
    one(
      'protocolid',
      fc.constantFrom(
        'arp',
        'rarp',
        'ipv4',
        'ipv6',
        'vlan',
        '0x1234',
        '0x600',
        '1536',
        '0x88cc',
        '0x88a8',
        '0x888e',
        '0x9000',
        '0x8035',
        '0x0800',
        '0x86DD',
        '0x8847',
        '0x8864',
        '2054',
      ),
    ),
    commentG,
  ]),
  vlan: pick([
    ...MAC4,
    one('vlanid', fc.integer({ min: 0, max: 4095 }).map(String)),
    // ebtables reads libvirt's decimal as hex (ipv6 lists as 4525); 0x9c40 reads as 0 and is refused.
    one('encap-protocol', fc.constantFrom('arp', 'ipv4', '0x1234', 'ipv6', '0x86dd', '0x8100', '0x88cc', '0x9c40')),
    commentG,
  ]),
  stp: pick(
    [
      one('srcmacaddr', macA),
      fc.tuple(macA, macMaskA).map(([a, m]) => [['srcmacaddr', a] as Attr, ['srcmacmask', m] as Attr]),
      // 0/128 are the BPDU types and 1/128 the flags ebtables prints by name (config, tcn, topology-change[-ack]).
      one('type', fc.oneof(u8, fc.constantFrom('0', '128', '0x80'))),
      one('flags', fc.oneof(u8, fc.constantFrom('1', '128'))),
      ...['root-priority', 'root-cost', 'sender-priority', 'port', 'age', 'max-age', 'hello-time', 'forward-delay'].map(
        (f) =>
          fc.tuple(fc.nat(65535), fc.option(fc.nat(65535), { nil: undefined })).map(([a, b]): Attr[] =>
            b === undefined
              ? [[f, `${a}`]]
              : [
                  [f, `${Math.min(a, b)}`],
                  [`${f}-hi`, `${Math.max(a, b)}`],
                ],
          ),
      ),
      one('root-address', macA),
      one('sender-address', macA),
      fc.tuple(macA, macMaskA).map(([a, m]) => [['root-address', a] as Attr, ['root-address-mask', m] as Attr]),
      fc.tuple(macA, macMaskA).map(([a, m]) => [['sender-address', a] as Attr, ['sender-address-mask', m] as Attr]),
    ],
    5,
  ),
  arp: pick([
    ...MAC4,
    one('hwtype', fc.oneof(u16, fc.constantFrom('1', '6', '0x1'))),
    // ebtables prints --arp-ptype in hex, never by name: the IPv4 and IPv6 numbers are drawn on purpose.
    one('protocoltype', fc.oneof(u16, fc.constantFrom('2048', '34525', '0x800', '0x0806'))),
    fc
      .tuple(ipv4A, fc.integer({ min: 0, max: 32 }))
      .map(([a, m]) => [['arpsrcipaddr', a] as Attr, ['arpsrcipmask', `${m}`] as Attr]),
    one('arpdstipaddr', fc.oneof(ipv4A, fc.constant('$V4[1]'))),
    one('opcode', fc.constantFrom('Request', 'Reply', 'Request_Reverse', 'Reply_Reverse', '7', '11')),
    one('arpsrcmacaddr', macA),
    one('arpdstmacaddr', macA),
    one('arpsrcipaddr', fc.oneof(ipv4A, fc.constant('$V4'))),
    fc
      .tuple(ipv4A, fc.integer({ min: 0, max: 32 }))
      .map(([a, m]) => [['arpdstipaddr', a] as Attr, ['arpdstipmask', `${m}`] as Attr]),
    one('gratuitous', fc.constantFrom('true', 'false')),
    commentG,
  ]),
  ip: pick([
    ...MAC4,
    ...v4addr('src'),
    ...v4addr('dst'),
    one('protocol', fc.constantFrom('udp', 'icmp', 'igmp', '112', 'esp')),
    fc
      .tuple(fc.constantFrom('tcp', 'udp', 'sctp', 'udplite'), portRange('srcportstart', 'srcportend'))
      .map(([p, r]) => [['protocol', p] as Attr, ...r]),
    fc
      .tuple(fc.constantFrom('tcp', '6', 'dccp', '33', '132'), portRange('dstportstart', 'dstportend'))
      .map(([p, r]) => [['protocol', p] as Attr, ...r]),
    // Ports without a protocol: refused when the filter is defined; with a negated one, by the kernel.
    portRange('dstportstart', 'dstportend'),
    one('dscp', fc.integer({ min: 0, max: 63 }).map(String)),
    commentG,
  ]),
  ipv6: pick([
    ...MAC4,
    ...v6addr('src'),
    ...v6addr('dst'),
    one('protocol', fc.constantFrom('udp', 'tcp', 'icmpv6', '18')),
    fc
      .tuple(fc.constantFrom('tcp', 'udp'), portRange('dstportstart', 'dstportend'))
      .map(([p, r]) => [['protocol', p] as Attr, ...r]),
    portRange('srcportstart', 'srcportend'),
    // An ICMPv6 type without (or with another) protocol: the kernel refuses the ebtables rule.
    one('type', u8),
    fc
      .tuple(u8, fc.option(u8, { nil: undefined }), fc.option(u8, { nil: undefined }))
      .map(([t, te, c]): Attr[] => [
        ['protocol', 'icmpv6'],
        ['type', t],
        ...(te !== undefined ? [['typeend', te] as Attr] : []),
        ...(c !== undefined ? [['code', c] as Attr] : []),
      ]),
    fc.tuple(u8, u8, u8).map(([t, c, ce]): Attr[] => [
      ['protocol', 'icmpv6'],
      ['type', t],
      ['code', c],
      ['codeend', ce],
    ]),
    commentG,
  ]),
  tcp: l4(false, [...portsG, one('flags', flagsA), one('option', tcpOptionA)]),
  udp: l4(false, portsG),
  sctp: l4(false, portsG),
  udplite: l4(false, []),
  esp: l4(false, []),
  ah: l4(false, []),
  all: l4(false, []),
  igmp: l4(false, []),
  icmp: l4(false, icmpG),
  'tcp-ipv6': l4(true, [...portsG, one('option', tcpOptionA)]),
  'udp-ipv6': l4(true, portsG),
  'sctp-ipv6': l4(true, portsG),
  'udplite-ipv6': l4(true, []),
  'esp-ipv6': l4(true, []),
  'ah-ipv6': l4(true, []),
  'all-ipv6': l4(true, []),
  icmpv6: l4(true, icmpG),
};
const ETHERNET = new Set(['none', 'mac', 'vlan', 'stp', 'arp', 'rarp', 'ip', 'ipv6']);
const protocolNames = [...Object.keys(PROTOCOLS), 'rarp'];

const ruleA: fc.Arbitrary<GenRule> = fc
  .constantFrom(...protocolNames)
  .chain((protocol) =>
    fc.record({
      action: fc.constantFrom('accept', 'drop', 'reject', 'return', ...(ETHERNET.has(protocol) ? ['continue'] : [])),
      direction: fc.constantFrom('in', 'out', 'inout'),
      priority: fc.option(
        fc.oneof(fc.integer({ min: -1000, max: 1000 }).map(String), fc.constantFrom('5000', '-700', '0')),
        {
          nil: undefined,
        },
      ),
      statematch: fc.option(fc.constantFrom('false', '0', 'true'), { nil: undefined, freq: 4 }),
      protocol: fc.constant(protocol),
      elements: (protocol === 'none'
        ? fc.constant([])
        : (PROTOCOLS[protocol === 'rarp' ? 'arp' : protocol] as fc.Arbitrary<Attr[]>)
      )
        .map((attrs) => attrs.filter(([k], i) => attrs.findIndex(([k2]) => k2 === k) === i))
        .chain((attrs) =>
          fc.boolean().map((neg): (readonly [boolean, readonly Attr[]])[] => {
            if (attrs.length === 0) return [[false, []]];
            // match='no' on a random split of the attributes (masks stay with their address).
            return neg
              ? [
                  [false, attrs.slice(0, 1)],
                  [true, attrs.slice(1)],
                ]
              : [[false, attrs]];
          }),
        ),
    }),
  )
  .map((r) => ({ ...r, ...(r.protocol === 'none' ? { protocol: undefined } : {}) }) as GenRule);

const chainA = fc.constantFrom(
  'root',
  'mac',
  'vlan',
  'stp',
  'arp',
  'rarp',
  'ipv4',
  'ipv6',
  'ipv4-xyz',
  'arp-a.b',
  'mac_1',
);
const BUILTIN_REFS = [
  'no-mac-spoofing',
  'allow-arp',
  'no-other-l2-traffic',
  'allow-incoming-ipv4',
  'no-mac-broadcast',
  'no-ip-spoofing',
  'allow-dhcp',
];

const filterA = (depth: number, subs: number): fc.Arbitrary<GenFilter> =>
  fc
    .record({
      chain: fc.option(chainA, { nil: undefined }),
      priority: fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: undefined, freq: 3 }),
      rules: fc.array(ruleA, { minLength: 0, maxLength: 4 }),
      refs:
        depth === 0
          ? fc.constant<(number | string)[]>([])
          : fc.array<number | string>(
              fc.oneof(
                { arbitrary: fc.integer({ min: 0, max: Math.max(0, subs - 1) }), weight: 3 },
                { arbitrary: fc.constantFrom(...BUILTIN_REFS), weight: 1 },
              ),
              { maxLength: 2 },
            ),
      refParams: fc.subarray([['V4', '198.51.100.7'] as const, ['P', '8080'] as const, ['IP', '203.0.113.9'] as const]),
    })
    .map((f): GenFilter => (subs === 0 ? { ...f, refs: f.refs.filter((r) => typeof r === 'string') } : f));

const caseA: fc.Arbitrary<GenCase> = fc.integer({ min: 0, max: 1 }).chain((nsubs) =>
  fc.record({
    top: filterA(1, nsubs),
    subs: fc.array(filterA(0, 0), { minLength: nsubs, maxLength: nsubs }),
    mac: macA.map((m) => `52:54:${m.slice(6)}`),
    params: fc
      .tuple(
        // Two values at least: rules may use $V4[1] (a binding without that element is invalid).
        fc.array(ipv4A, { minLength: 2, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 3 }),
        fc.boolean(),
        // libvirt reads CTRL_IP_LEARNING (case-insensitively) only when IP is the one variable missing; other values
        // are refused then.
        fc.option(fc.constantFrom('none', 'NONE', 'any', 'Any', 'dhcp', 'DHCP', 'static', 'x'), { freq: 4 }),
      )
      .map(([v4, p, ip, learning]) => [
        ...v4.map((v) => ['V4', v] as const),
        ...p.map((v) => ['P', `${v}`] as const),
        ...(ip ? [['IP', '192.0.2.200'] as const] : []),
        ...(learning !== null ? [['CTRL_IP_LEARNING', learning] as const] : []),
      ]),
  }),
);

// ---------- XML ----------

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

function filterXml(name: string, f: GenFilter, subNames: readonly string[]): string {
  const lines = [
    `<filter name='${name}'${f.chain ? ` chain='${f.chain}'` : ''}${f.priority !== undefined ? ` priority='${f.priority}'` : ''}>`,
  ];
  const entries: string[][] = [];
  for (const r of f.rules) {
    const attrs = `action='${r.action}' direction='${r.direction}'${r.priority ? ` priority='${r.priority}'` : ''}${r.statematch ? ` statematch='${r.statematch}'` : ''}`;
    if (!r.protocol) {
      entries.push([`  <rule ${attrs}/>`]);
      continue;
    }
    const els = r.elements
      .filter(([, a], i) => i === 0 || a.length > 0)
      .map(
        ([neg, a]) =>
          `    <${r.protocol}${neg ? " match='no'" : ''}${a.map(([k, v]) => ` ${k}='${esc(v)}'`).join('')}/>`,
      );
    entries.push([`  <rule ${attrs}>`, ...els, '  </rule>']);
  }
  const refs = f.refs.map((r) => {
    const target = typeof r === 'number' ? subNames[r] : r;
    return `  <filterref filter='${target}'>${f.refParams.map(([k, v]) => `<parameter name='${k}' value='${v}'/>`).join('')}</filterref>`;
  });
  // Interleave refs among rules deterministically.
  const all = [...entries];
  for (const [i, x] of refs.entries()) all.splice(Math.min(all.length, i * 2), 0, [x]);
  lines.push(...all.flat(), '</filter>');
  return `${lines.join('\n')}\n`;
}

function bindingXml(port: string, mac: string, filter: string, params: readonly (readonly [string, string])[]): string {
  return `<filterbinding>
  <owner>
    <name>vm-${port}</name>
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  </owner>
  <portdev name='${port}'/>
  <mac address='${mac}'/>
  <filterref filter='${filter}'>
${params.map(([k, v]) => `    <parameter name='${k}' value='${v}'/>`).join('\n')}
  </filterref>
</filterbinding>
`;
}

// ---------- the lab ----------

interface RunResult {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

function run(args: readonly string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      args[0]!,
      args.slice(1),
      { encoding: 'utf8', timeout: 120_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const status = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ status, stdout: stdout ?? '', stderr: stderr ?? '' });
      },
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * One isolated libvirtd: its own network namespace (bridge br0, one veth port per case) and its own mount namespace
 * with private /run/libvirt, /var/lib/libvirt, /var/log/libvirt and a private copy of /etc/libvirt/nwfilter, so
 * nothing of the host's libvirt state is touched and several labs can run side by side.
 */
class Lab {
  readonly ns: string;
  readonly dir: string;
  daemon?: ChildProcess;
  pid: number | undefined;
  constructor(id: string, work: string) {
    this.ns = `${PREFIX}-${process.pid}-${id}`;
    this.dir = join(work, id);
  }
  enter(args: readonly string[], mount = false): Promise<RunResult> {
    if (this.pid === undefined) throw new Error('lab not started');
    return run(['nsenter', '-t', `${this.pid}`, ...(mount ? ['-m'] : []), '-n', ...args]);
  }
  virsh(cmd: string): Promise<RunResult> {
    return this.enter(['virsh', '-q', '-c', URI, cmd], true);
  }
  async start(ports: readonly string[]): Promise<void> {
    mkdirSync(join(this.dir, 'nwfilter'), { recursive: true });
    for (const f of readdirSync(FILTER_DIR))
      if (f.endsWith('.xml')) copyFileSync(join(FILTER_DIR, f), join(this.dir, 'nwfilter', f));
    const add = await run(['ip', 'netns', 'add', this.ns]);
    if (add.status !== 0) throw new Error(`ip netns add: ${add.stderr}`);
    const batch = ['link add br0 type bridge', 'link set br0 up'];
    for (const p of ports)
      batch.push(`link add ${p} type veth peer name ${p}p`, `link set ${p} master br0`, `link set ${p} up`);
    writeFileSync(join(this.dir, 'links'), `${batch.join('\n')}\n`);
    const b = await run(['ip', '-n', this.ns, '-batch', join(this.dir, 'links')]);
    if (b.status !== 0) throw new Error(`ip -batch failed: ${b.stderr}`);
    // The sets rules may name (the generator also draws one that does not exist); ipsets are per network namespace.
    for (const [name, fam] of DIFFERENTIAL_IPSETS) {
      const r = await run([
        'ip',
        'netns',
        'exec',
        this.ns,
        'ipset',
        'create',
        name,
        'hash:ip',
        'family',
        fam === 'ipv4' ? 'inet' : 'inet6',
      ]);
      if (r.status !== 0) throw new Error(`ipset create ${name}: ${r.stderr}`);
    }
    if ((await run(['getent', 'passwd', 'libvirt-qemu'])).status !== 0) {
      await run(['groupadd', '-r', 'libvirt-qemu']);
      await run(['useradd', '-r', '-g', 'libvirt-qemu', '-s', '/usr/sbin/nologin', 'libvirt-qemu']);
    }
    const script = [
      'set -e',
      'mount -t tmpfs tmpfs /run/libvirt',
      'mount -t tmpfs tmpfs /var/lib/libvirt',
      'mount -t tmpfs tmpfs /var/log/libvirt',
      `mount --bind ${join(this.dir, 'nwfilter')} ${FILTER_DIR}`,
      `exec libvirtd --pid-file ${join(this.dir, 'libvirtd.pid')}`,
    ].join('\n');
    for (const d of ['/run/libvirt', '/var/lib/libvirt', '/var/log/libvirt']) mkdirSync(d, { recursive: true });
    writeFileSync(join(this.dir, 'start.sh'), `${script}\n`);
    this.daemon = spawn(
      'ip',
      ['netns', 'exec', this.ns, 'unshare', '--mount', '--propagation', 'private', 'sh', join(this.dir, 'start.sh')],
      {
        stdio: 'ignore',
      },
    );
    const pidFile = join(this.dir, 'libvirtd.pid');
    for (let i = 0; i < 150; i++) {
      await sleep(100);
      if (this.daemon.exitCode !== null) throw new Error('libvirtd exited at start-up');
      // The daemon's own PID (ip and unshare are in between): nsenter needs its mount namespace.
      if (this.pid === undefined && existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8').trim());
        if (pid > 0) this.pid = pid;
      }
      if (this.pid !== undefined && (await this.virsh('nwfilter-list')).status === 0) return;
    }
    throw new Error('libvirtd did not come up inside the namespace');
  }
  async stop(): Promise<void> {
    const pid = this.pid;
    this.pid = undefined;
    if (pid !== undefined && existsSync(`/proc/${pid}`)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) await sleep(100);
      if (existsSync(`/proc/${pid}`)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    for (let i = 0; i < 50 && this.daemon && this.daemon.exitCode === null; i++) await sleep(100);
    await run(['ip', 'netns', 'del', this.ns]);
  }
}

/** Leftovers of a crashed run: our namespaces, and daemons whose PID files our labs wrote. */
function cleanLeftovers(): void {
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    if (name.startsWith(`${PREFIX}-`)) spawnSync('ip', ['netns', 'del', name]);
  }
  for (const d of readdirSync(tmpdir())) {
    if (!d.startsWith(`${PREFIX}-`)) continue;
    const work = join(tmpdir(), d);
    for (const lane of existsSync(work) ? readdirSync(work) : []) {
      const pidFile = join(work, lane, 'libvirtd.pid');
      if (!existsSync(pidFile)) continue;
      const pid = Number(readFileSync(pidFile, 'utf8').trim());
      const cmd = existsSync(`/proc/${pid}/cmdline`) ? readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
      if (pid > 0 && cmd.includes('libvirtd') && cmd.includes(pidFile)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    // libvirtd may still be writing its state while it dies: retry.
    rmSync(work, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  }
}

// ---------- comparison ----------

interface Outcome {
  readonly name: string;
  readonly port: string;
  readonly files: ReadonlyMap<string, string>;
  readonly defineErrors: readonly string[];
  readonly bindError?: string;
  readonly real: Readonly<Record<string, string>>;
}

function stripSave(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .join('\n');
}

function realMessage(stderr: string): string {
  // virsh prints "error: Failed to …" then "error: <libvirt message>".
  const lines = stderr.trim().split('\n');
  const i = lines.findIndex((l, k) => k > 0 && l.startsWith('error: '));
  return i < 0 ? stderr.trim() : [lines[i]!.slice(7), ...lines.slice(i + 1)].join('\n').trim();
}

function saveFixture(o: Outcome, why: string): void {
  const dir = new URL(`${o.name}/`, FIXTURES);
  mkdirSync(dir, { recursive: true });
  for (const [f, t] of o.files) writeFileSync(new URL(f, dir), t);
  const meta = {
    port: o.port,
    seed: SEED,
    why,
    source: 'real libvirt 9.0.0 nwfilter driver in a network namespace (test/nwfilter-differential.test.ts)',
    defineErrors: o.defineErrors,
    ...(o.bindError !== undefined ? { bindError: o.bindError } : {}),
    ipsets: DIFFERENTIAL_IPSETS,
  };
  writeFileSync(new URL('case.json', dir), `${JSON.stringify(meta, null, 2)}\n`);
  for (const [fmt, file] of DIFFERENTIAL_FORMATS) {
    if (o.real[fmt] !== undefined)
      writeFileSync(new URL(file, dir), portSlice(stripSave(o.real[fmt]!), o.port, PORT_RE));
  }
}

function compare(o: Outcome): string[] {
  let mine: ReturnType<typeof replayCase>;
  try {
    mine = replayCase(o.files, o.port, PORT_RE, new Map(DIFFERENTIAL_IPSETS));
  } catch (e) {
    // A crash is a disagreement of its own (kept as a fixture), not the end of the run.
    return [`lvsdoctor threw: ${e instanceof Error ? e.message : String(e)}`];
  }
  const problems: string[] = [];
  if (
    mine.defineErrors.length !== o.defineErrors.length ||
    mine.defineErrors.some((e, i) => !sameLibvirtMessage(e, o.defineErrors[i]))
  ) {
    problems.push(`define: libvirt [${o.defineErrors.join(' | ')}] lvsdoctor [${mine.defineErrors.join(' | ')}]`);
  } else if (o.defineErrors.length === 0) {
    if (!sameLibvirtMessage(mine.bindError, o.bindError)) {
      problems.push(`bind: libvirt [${o.bindError ?? 'ok'}] lvsdoctor [${mine.bindError ?? 'ok'}]`);
    } else if (o.bindError === undefined) {
      for (const [fmt] of DIFFERENTIAL_FORMATS) {
        const real = portSlice(stripSave(o.real[fmt] ?? ''), o.port, PORT_RE);
        if (!sameUpToSubChainOrder(real, mine.out[fmt] ?? '', mine.unorderedSubChains === true))
          problems.push(`${fmt} differs`);
      }
    }
  }
  return problems;
}

// ---------- the test ----------

describe.skipIf(skipReason !== undefined)('differential test against a real libvirt nwfilter driver', () => {
  const outcomes: Outcome[] = [];
  const labs: Lab[] = [];
  let work = '';

  beforeAll(async () => {
    cleanLeftovers();
    work = mkdtempSync(join(tmpdir(), `${PREFIX}-`));
    const cases = fc.sample(caseA, { numRuns: CASES, seed: SEED });
    console.log(`nwfilter differential: ${CASES} cases, seed ${SEED}, ${LANES} lanes`);
    const lanes = Array.from({ length: LANES }, (_, k) =>
      cases.map((c, i) => ({ c, i })).filter(({ i }) => i % LANES === k),
    );
    await Promise.all(
      lanes.map(async (mine, k) => {
        const lab = new Lab(`lane${k}`, work);
        labs.push(lab);
        try {
          await lab.start(['lvdw', ...mine.map(({ i }) => `lvd${i}`)]);
          await warmUp(lab);
          await runCases(lab, mine, outcomes);
        } finally {
          await lab.stop();
        }
      }),
    );
  }, 900_000);

  afterAll(async () => {
    for (const lab of labs) await lab.stop();
    if (work) rmSync(work, { recursive: true, force: true });
    cleanLeftovers();
  });

  it('lvsdoctor agrees with libvirt on every generated case', () => {
    const disagreements: string[] = [];
    for (const o of outcomes) {
      const problems = compare(o);
      if (problems.length > 0) {
        saveFixture(o, problems.join('; '));
        disagreements.push(`${o.name}: ${problems.join('; ')}`);
      }
    }
    const failed = outcomes.filter((o) => o.defineErrors.length > 0 || o.bindError !== undefined).length;
    console.log(
      `nwfilter differential: ${outcomes.length} cases compared (${failed} refused by libvirt), ${disagreements.length} disagreements`,
    );
    expect(outcomes.length).toBe(CASES);
    expect(disagreements).toEqual([]);
  });
});

if (skipReason !== undefined) {
  describe('differential test against a real libvirt nwfilter driver', () => {
    it.skip(`skipped: ${skipReason}`, () => {});
  });
}

async function warmUp(lab: Lab): Promise<void> {
  // libvirt creates its global iptables/ip6tables chains with the first filter that needs them and never removes
  // them; create them once so that every capture shows them (as lvsdoctor renders them by default).
  const name = `${PREFIX}-warm`;
  const f = join(lab.dir, 'warm.xml');
  writeFileSync(
    f,
    `<filter name='${name}'><rule action='accept' direction='in'><tcp/></rule><rule action='accept' direction='in'><tcp-ipv6/></rule></filter>`,
  );
  await lab.virsh(`nwfilter-define ${f}`);
  const b = join(lab.dir, 'warm-binding.xml');
  writeFileSync(b, bindingXml('lvdw', '52:54:00:00:00:01', name, []));
  const r = await lab.virsh(`nwfilter-binding-create ${b}`);
  if (r.status !== 0) throw new Error(`warm-up binding failed: ${r.stderr}`);
  await lab.virsh('nwfilter-binding-delete lvdw');
}

async function runCases(lab: Lab, cases: readonly { c: GenCase; i: number }[], outcomes: Outcome[]): Promise<void> {
  const prepared = cases.map(({ c, i: n }) => {
    const port = `lvd${n}`;
    const top = `${PREFIX}-${n}-top`;
    const subNames = c.subs.map((_, k) => `${PREFIX}-${n}-s${k}`);
    const files = new Map<string, string>();
    for (const [k, s] of c.subs.entries()) files.set(`${subNames[k]}.xml`, filterXml(subNames[k]!, s, []));
    files.set(`${top}.xml`, filterXml(top, c.top, subNames));
    files.set('binding.xml', bindingXml(port, c.mac, top, c.params));
    return { n, port, files };
  });
  // Define every filter with one virsh call, then find out which ones libvirt refused.
  const defs: string[] = [];
  for (const p of prepared) {
    for (const [f, t] of p.files) {
      if (f === 'binding.xml') continue;
      const path = join(lab.dir, f);
      writeFileSync(path, t);
      defs.push(`nwfilter-define ${path}`);
    }
  }
  await lab.virsh(defs.join(' ; '));
  const listed = (await lab.virsh('nwfilter-list')).stdout;
  const defined = new Set(listed.split('\n').map((l) => l.trim().split(/\s+/)[1] ?? ''));
  const results: { defineErrors: string[]; bindError?: string }[] = [];
  for (const p of prepared) {
    const defineErrors: string[] = [];
    for (const [f] of p.files) {
      if (f === 'binding.xml' || defined.has(f.replace(/\.xml$/, ''))) continue;
      const r = await lab.virsh(`nwfilter-define ${join(lab.dir, f)}`);
      defineErrors.push(r.status === 0 ? '(defined on retry)' : realMessage(r.stderr));
    }
    if (defineErrors.length > 0) {
      results.push({ defineErrors });
      continue;
    }
    const bpath = join(lab.dir, `binding-${p.n}.xml`);
    writeFileSync(bpath, p.files.get('binding.xml')!);
    const t0 = Date.now();
    const r = await lab.virsh(`nwfilter-binding-create ${bpath}`);
    if (process.env.NWFILTER_DIFF_TIMING) console.log(`bind ${p.n}: ${Date.now() - t0} ms`);
    results.push(r.status === 0 ? { defineErrors } : { defineErrors, bindError: realMessage(r.stderr) });
  }
  // Let IP-learning threads settle (they install their rules asynchronously).
  await sleep(500);
  const real = {
    'ebtables-nat-L': (await lab.enter(['ebtables', '-t', 'nat', '-L'])).stdout,
    'ebtables-save': (await lab.enter(['ebtables-save'])).stdout,
    'iptables-save': (await lab.enter(['iptables-save'])).stdout,
    'ip6tables-save': (await lab.enter(['ip6tables-save'])).stdout,
  };
  prepared.forEach((p, i) => {
    const r = results[i]!;
    outcomes.push({
      name: `case-${SEED}-${p.n}`,
      port: p.port,
      files: p.files,
      defineErrors: r.defineErrors,
      ...(r.bindError !== undefined ? { bindError: r.bindError } : {}),
      real,
    });
  });
}
