/**
 * What libvirt 9.0 (with ebtables-nft / iptables-nft 1.8.9) does with rules the tools or the kernel refuse, and the
 * VLAN encapsulation it really installs. Every expected text below was recorded from a real libvirtd in a network
 * namespace (the probes behind test/nwfilter-differential.test.ts, 2026-11-25); the differential test now generates
 * all of these cases.
 */
import { describe, expect, it } from 'vitest';
import type { Mac } from '../addr/mac.ts';
import { readEbtablesList } from '../netfilter/ebtables-read.ts';
import { renderEbtablesList } from '../netfilter/ebtables-render.ts';
import { filterRegistry } from './builtin-filters.ts';
import { compileBinding } from './compile.ts';
import type { NwFilter, NwFilterBinding } from './nwfilter-model.ts';
import { readNwfilterXml } from './nwfilter-xml.ts';
import { renderCompiled } from './render-outputs.ts';

function filter(rules: string): NwFilter {
  const r = readNwfilterXml(`<filter name='pr' chain='root'>${rules}</filter>`, 'pr.xml');
  if (!r.value) throw new Error(r.issues.map((i) => i.message).join('; '));
  return r.value;
}

function defineError(rules: string): string | undefined {
  return readNwfilterXml(`<filter name='pr' chain='root'>${rules}</filter>`, 'pr.xml').issues.find(
    (i) => i.severity === 'error',
  )?.message;
}

function bindTo(port: string, rules: string, ipsets?: ReadonlyMap<string, 'ipv4' | 'ipv6'>) {
  const b: NwFilterBinding = {
    portdev: port,
    mac: '52:54:00:12:34:56' as Mac,
    filter: 'pr',
    params: new Map(),
    origin: { kind: 'binding', label: `probe ${port}` },
  };
  return compileBinding(b, filterRegistry([filter(rules)]), ipsets ? { ipsets } : {});
}

const FAILED = 'internal error: Failed to apply firewall rules';

describe('rules libvirt 9.0 cannot install', () => {
  it('--tcp-option 0: iptables and ip6tables say Bad TCP option; the first copy made fails', () => {
    expect(bindTo('pa1', `<rule action='accept' direction='out'><tcp option='0'/></rule>`).failure).toBe(
      `${FAILED} /usr/sbin/iptables -w -A FJ-pa1 -p tcp --tcp-option 0 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: iptables v1.8.9 (nf_tables): Bad TCP option "0"\nTry \`iptables -h' or 'iptables --help' for more information.`,
    );
    expect(bindTo('pa2', `<rule action='accept' direction='out'><tcp-ipv6 option='0'/></rule>`).failure).toBe(
      `${FAILED} /usr/sbin/ip6tables -w -A FJ-pa2 -p tcp --tcp-option 0 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: ip6tables v1.8.9 (nf_tables): Bad TCP option "0"\nTry \`ip6tables -h' or 'ip6tables --help' for more information.`,
    );
    const second = bindTo(
      'pd9',
      `<rule action='accept' direction='in'><tcp srcipaddr='192.0.2.4'/></rule><rule action='accept' direction='in'><tcp option='0'/></rule>`,
    );
    expect(second.mode).toBe('failed');
    expect(second.failure).toBe(
      `${FAILED} /usr/sbin/iptables -w -A FJ-pd9 -p tcp --tcp-option 0 -m conntrack --ctstate ESTABLISHED -m conntrack --ctdir Reply -j RETURN: iptables v1.8.9 (nf_tables): Bad TCP option "0"\nTry \`iptables -h' or 'iptables --help' for more information.`,
    );
  });

  it('a negated /0 address: the kernel refuses the iptables/ip6tables rule', () => {
    expect(
      bindTo(
        'pb3',
        `<rule action='accept' direction='out'><tcp match='no' srcipaddr='192.0.2.1' srcipmask='0'/></rule>`,
      ).failure,
    ).toBe(
      `${FAILED} /usr/sbin/iptables -w -A FJ-pb3 -p tcp '!' --source 192.0.2.1/0 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: iptables v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain FJ-pb3`,
    );
    expect(
      bindTo(
        'pd7',
        `<rule action='accept' direction='out'><tcp-ipv6 match='no' srcipaddr='2001:db8::1' srcipmask='0'/></rule>`,
      ).failure,
    ).toBe(
      `${FAILED} /usr/sbin/ip6tables -w -A FJ-pd7 -p tcp '!' --source 2001:db8::1/0 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: ip6tables v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain FJ-pd7`,
    );
    // Not negated: iptables-nft simply leaves the /0 match out.
    expect(
      bindTo('pb5', `<rule action='accept' direction='out'><tcp srcipaddr='192.0.2.1' srcipmask='0'/></rule>`).mode,
    ).toBe('filter');
  });

  it('ebtables ip/ip6 ports need a non-negated tcp/udp/udplite/sctp/dccp protocol, ICMPv6 types a non-negated icmpv6', () => {
    const kernel = (port: string, args: string) =>
      `${FAILED} /usr/sbin/ebtables --concurrent -t nat -A libvirt-J-${port} ${args}: ebtables v1.8.9 (nf_tables):  RULE_APPEND failed (Invalid argument): rule in chain libvirt-J-${port}`;
    const cases: [string, string, string][] = [
      [
        'pb1',
        `<ip match='no' protocol='tcp' srcportstart='80'/>`,
        `-p ipv4 --ip-protocol '!' 6 --ip-source-port '!' 80 -j ACCEPT`,
      ],
      ['pb2', `<ipv6 type='1'/>`, '-p ipv6 --ip6-icmp-type 1:1/0:255 -j ACCEPT'],
      [
        'pd3',
        `<ipv6 match='no' protocol='tcp' dstportstart='80'/>`,
        `-p ipv6 --ip6-protocol '!' 6 --ip6-destination-port '!' 80 -j ACCEPT`,
      ],
      [
        'pd5',
        `<ipv6 match='no' protocol='icmpv6' type='1'/>`,
        `-p ipv6 --ip6-protocol '!' 58 --ip6-icmp-type '!' 1:1/0:255 -j ACCEPT`,
      ],
      ['pd6', `<ipv6 protocol='udp' type='1'/>`, '-p ipv6 --ip6-protocol 17 --ip6-icmp-type 1:1/0:255 -j ACCEPT'],
      [
        'pd8',
        `<ip match='no' protocol='tcp'/><ip srcportstart='80'/>`,
        `-p ipv4 --ip-protocol '!' 6 --ip-source-port 80 -j ACCEPT`,
      ],
    ];
    for (const [port, el, args] of cases) {
      const c = bindTo(port, `<rule action='accept' direction='out'>${el}</rule>`);
      expect(c.mode, port).toBe('failed');
      expect(c.failure, port).toBe(kernel(port, args));
    }
    // Accepted: a port with a non-negated udp protocol.
    expect(
      bindTo('pb4', `<rule action='accept' direction='out'><ipv6 protocol='udp' dstportstart='53'/></rule>`).mode,
    ).toBe('filter');
  });

  it('ports without a tcp/udp/dccp/sctp protocol are refused when the filter is defined (udplite too)', () => {
    expect(defineError(`<rule action='accept' direction='out'><ip srcportstart='80'/></rule>`)).toBe(
      'IP rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)',
    );
    expect(defineError(`<rule action='accept' direction='out'><ip protocol='udplite' srcportstart='80'/></rule>`)).toBe(
      'IP rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)',
    );
    expect(defineError(`<rule action='accept' direction='out'><ipv6 srcportstart='80'/></rule>`)).toBe(
      'IPv6 rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)',
    );
  });
});

describe('illegal values', () => {
  const masks = (a: string, b: string) => `<rule action='accept' direction='out'><mac ${a} ${b}/></rule>`;
  const src = `srcmacaddr='01:02:03:04:05:06' srcmacmask='ff:00:ff:00:00:00'`;
  const dst = `dstmacaddr='01:02:03:04:05:07' dstmacmask='ff:ff:00:ff:00:00'`;
  it('libvirt reports the last illegal attribute of an element in its attribute order, whatever the XML order', () => {
    expect(defineError(masks(src, dst))).toBe('dstmacmask has illegal value ff:ff:00:ff:00:00');
    expect(defineError(masks(dst, src))).toBe('dstmacmask has illegal value ff:ff:00:ff:00:00');
    expect(defineError(masks(`srcmacaddr='zz'`, dst))).toBe('dstmacmask has illegal value ff:ff:00:ff:00:00');
  });
  it('but the first element or rule with an illegal value', () => {
    expect(
      defineError(
        `<rule action='accept' direction='out'><mac ${src}/></rule><rule action='accept' direction='out'><mac ${dst}/></rule>`,
      ),
    ).toBe('srcmacmask has illegal value ff:00:ff:00:00:00');
    expect(defineError(`<rule action='accept' direction='out'><mac ${src}/><mac match='no' ${dst}/></rule>`)).toBe(
      'srcmacmask has illegal value ff:00:ff:00:00:00',
    );
  });
});

describe('VLAN encapsulation', () => {
  it('libvirt passes the ethertype in decimal, ebtables reads hex and keeps 16 bits: 0x86dd lists as 4525', () => {
    const c = bindTo(
      'pa8',
      [
        `<rule action='accept' direction='out'><vlan encap-protocol='ipv6'/></rule>`,
        `<rule action='accept' direction='in'><vlan encap-protocol='0x86dd'/></rule>`,
        `<rule action='drop' direction='in'><vlan encap-protocol='0x0800'/></rule>`,
        `<rule action='drop' direction='in'><vlan encap-protocol='0x8100'/></rule>`,
        `<rule action='drop' direction='in'><vlan encap-protocol='0x88cc'/></rule>`,
      ].join(''),
    );
    const save = renderCompiled(c, 'ebtables-save');
    expect(save).toContain('-A libvirt-I-pa8 -p 802_1Q --vlan-encap 4525 -j ACCEPT\n');
    expect(save).toContain(
      [
        '-A libvirt-O-pa8 -p 802_1Q --vlan-encap 4525 -j ACCEPT',
        '-A libvirt-O-pa8 -p 802_1Q --vlan-encap 2048 -j DROP',
        '-A libvirt-O-pa8 -p 802_1Q --vlan-encap 3024 -j DROP',
        '-A libvirt-O-pa8 -p 802_1Q --vlan-encap 5020 -j DROP',
      ].join('\n'),
    );
    expect(renderCompiled(c, 'ebtables-nat-L')).toContain(
      'Bridge chain: libvirt-O-pa8, entries: 4, policy: RETURN\n-p 802_1Q --vlan-encap 4525 -j ACCEPT\n-p 802_1Q --vlan-encap 2048 -j DROP\n',
    );
    // The model holds what the kernel matches (0x4525), and the nft listing reads back to it.
    const out = c.nat.chains.find((x) => x.name === 'libvirt-O-pa8')!;
    expect(out.rules[0]!.matches[0]).toEqual({ kind: 'vlan', encap: { value: 0x4525, negated: false } });
    const read = readEbtablesList(renderEbtablesList(c.nat, { style: 'nft' }), 'nat.txt', { style: 'nft' });
    expect(read.value!.chains.find((x) => x.name === 'libvirt-O-pa8')!.rules[0]!.matches[0]).toEqual(
      out.rules[0]!.matches[0],
    );
  });

  it('a value that reads as less than 0x3c is refused by ebtables', () => {
    const c = bindTo('pc1', `<rule action='drop' direction='in'><vlan encap-protocol='0x9c40'/></rule>`);
    expect(c.failure).toBe(
      `${FAILED} /usr/sbin/ebtables --concurrent -t nat -A libvirt-P-pc1 -p 0x8100 --vlan-encap 40000 -j DROP: ebtables v1.8.9 (nf_tables): Invalid --vlan-encap range ('40000')\nTry \`ebtables -h' or 'ebtables --help' for more information.`,
    );
  });
});

// Recorded from the real libvirt 9.0 driver in a namespace (2026-12-07), sets made with `ipset create`.
describe('ipset and ipsetflags as libvirt 9.0 installs them (virNWFilterRuleDefFixupIPSet)', () => {
  const iptRules = (c: ReturnType<typeof bindTo>, fmt: 'iptables-save' | 'ip6tables-save', port: string) =>
    renderCompiled(c, fmt)
      .split('\n')
      .filter((l) => l.startsWith(`-A FI-${port}`) || l.startsWith(`-A FO-${port}`) || l.startsWith(`-A HI-${port}`));

  it('on tcp/udp/icmp/…: both attributes are dropped (with a warning), flags alone too', () => {
    const r = readNwfilterXml(
      `<filter name='pr'><rule action='accept' direction='out'><tcp ipset='s1' ipsetflags='src,dst'/></rule></filter>`,
      'pr.xml',
    );
    expect(r.issues.map((i) => i.code)).toEqual(['nwfilter-ipset-ignored']);
    const c = bindTo('ps1', `<rule action='accept' direction='out'><tcp ipset='s1' ipsetflags='src,dst'/></rule>`);
    expect(iptRules(c, 'iptables-save', 'ps1')).toEqual([
      '-A FI-ps1 -p tcp -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -j RETURN',
      '-A FO-ps1 -p tcp -m conntrack --ctstate ESTABLISHED -m conntrack --ctdir REPLY -j ACCEPT',
      '-A HI-ps1 -p tcp -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -j RETURN',
    ]);
    const flagsOnly = bindTo('ps3', `<rule action='accept' direction='out'><udp ipsetflags='src'/></rule>`);
    expect(iptRules(flagsOnly, 'iptables-save', 'ps3')[0]).toBe(
      '-A FI-ps3 -p udp -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -j RETURN',
    );
  });

  it('ipset alone on them: the binding fails while libvirt builds the rule, ahead of any tool refusal', () => {
    for (const rule of [
      `<rule action='accept' direction='in'><tcp ipset='s2'/></rule>`,
      `<rule action='accept' direction='out'><icmp match='no' ipset='s6'/></rule>`,
      `<rule action='accept' direction='inout'><igmp ipset='s7'/></rule>`,
    ]) {
      expect(bindTo('ps2', rule).failure).toBe('internal error: Unexpected enum value 0 for virNWFilterAttrDataType');
    }
    // An ebtables rule the kernel refuses (alone: RULE_APPEND failed) is applied later: the build error wins.
    expect(
      bindTo('ps4', `<rule action='accept' direction='out'><ip match='no' protocol='udp' srcportstart='5'/></rule>`)
        .failure,
    ).toContain('RULE_APPEND failed');
    expect(
      bindTo(
        'ps4',
        `<rule action='accept' direction='out'><ip match='no' protocol='udp' srcportstart='5'/></rule><rule action='accept' direction='in'><tcp ipset='s2'/></rule>`,
      ).failure,
    ).toBe('internal error: Unexpected enum value 0 for virNWFilterAttrDataType');
  });

  it('on all/all-ipv6 (not fixed up): both give an un-negated -m set, directions swapped on the reply side', () => {
    const sets = new Map<string, 'ipv4' | 'ipv6'>([
      ['s3', 'ipv4'],
      ['s5', 'ipv6'],
    ]);
    const c = bindTo(
      'ps5',
      `<rule action='accept' direction='out'><all match='no' ipset='s3' ipsetflags='src,DST'/></rule>` +
        `<rule action='drop' direction='in'><all ipset='s3' ipsetflags='src,dst,src'/></rule>` +
        `<rule action='accept' direction='inout'><all-ipv6 ipset='s5' ipsetflags='dst'/></rule>`,
      sets,
    );
    expect(iptRules(c, 'iptables-save', 'ps5')).toEqual([
      '-A FI-ps5 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -m set --match-set s3 src,dst -j RETURN',
      '-A FI-ps5 -m set --match-set s3 dst,src,dst -j DROP',
      '-A FO-ps5 -m conntrack --ctstate ESTABLISHED -m conntrack --ctdir REPLY -m set --match-set s3 dst,src -j ACCEPT',
      '-A FO-ps5 -m set --match-set s3 src,dst,src -j DROP',
      '-A HI-ps5 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -m set --match-set s3 src,dst -j RETURN',
      '-A HI-ps5 -m set --match-set s3 dst,src,dst -j DROP',
    ]);
    expect(iptRules(c, 'ip6tables-save', 'ps5')).toEqual([
      '-A FI-ps5 -m set --match-set s5 src -j RETURN',
      '-A FO-ps5 -m set --match-set s5 dst -j ACCEPT',
      '-A HI-ps5 -m set --match-set s5 src -j RETURN',
    ]);
    // ipset alone on <all>: no match and no error.
    expect(bindTo('ps6', `<rule action='accept' direction='in'><all ipset='s4'/></rule>`).mode).not.toBe('failed');
  });

  it('a set the host does not have, or of the other family: iptables refuses it (when the host sets are known)', () => {
    const sets = new Map<string, 'ipv4' | 'ipv6'>([['s3', 'ipv4']]);
    expect(
      bindTo('lvo4', `<rule action='accept' direction='out'><all ipset='nosuch' ipsetflags='src,dst'/></rule>`, sets)
        .failure,
    ).toBe(
      `${FAILED} /usr/sbin/iptables -w -A FJ-lvo4 -p all -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -m set --match-set nosuch src,dst -j RETURN: iptables v1.8.9 (nf_tables): Set nosuch doesn't exist.\n\nTry \`iptables -h' or 'iptables --help' for more information.`,
    );
    expect(
      bindTo('lvo2', `<rule action='accept' direction='out'><all-ipv6 ipset='s3' ipsetflags='src'/></rule>`, sets)
        .failure,
    ).toBe(
      `${FAILED} /usr/sbin/ip6tables -w -A FJ-lvo2 -p all -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -m set --match-set s3 src -j RETURN: ip6tables v1.8.9 (nf_tables): The protocol family of set s3 is IPv4, which is not applicable.\n\nTry \`ip6tables -h' or 'ip6tables --help' for more information.`,
    );
  });

  it('stp root-/sender-address-mask and srcmacmask must be contiguous, like the Ethernet header masks', () => {
    for (const [a, m] of [
      ['root-address', 'root-address-mask'],
      ['sender-address', 'sender-address-mask'],
      ['srcmacaddr', 'srcmacmask'],
    ]) {
      expect(
        defineError(
          `<rule action='drop' direction='out'><stp ${a}='01:02:03:04:05:06' ${m}='ff:00:ff:00:00:00'/></rule>`,
        ),
      ).toBe(`${m} has illegal value ff:00:ff:00:00:00`);
    }
    expect(
      defineError(
        `<rule action='drop' direction='out'><stp root-address='01:02:03:04:05:06' root-address-mask='ff:ff:f0:00:00:00'/></rule>`,
      ),
    ).toBeUndefined();
  });
});

describe('an -ipv6 element with an IPv4 dstipto (libvirt 9.0 types it as IPv4)', () => {
  it('is passed on to ip6tables, which refuses the range (recorded from the real driver, 2026-12-07)', () => {
    expect(
      bindTo(
        'lvo7',
        `<rule action='accept' direction='out'><tcp-ipv6 dstipfrom='2001:db8::1' dstipto='192.0.2.9'/></rule>`,
      ).failure,
    ).toBe(
      `${FAILED} /usr/sbin/ip6tables -w -A FJ-lvo7 -p tcp -m iprange --dst-range 2001:db8::1-192.0.2.9 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -j RETURN: ip6tables v1.8.9 (nf_tables): iprange: Bad value for "--dst-range" option: "192.0.2.9"\nTry \`ip6tables -h' or 'ip6tables --help' for more information.`,
    );
    expect(
      defineError(
        `<rule action='accept' direction='out'><tcp-ipv6 dstipfrom='2001:db8::1' dstipto='2001:db8::5'/></rule>`,
      ),
    ).toBe('dstipto has illegal value 2001:db8::5');
  });
});

describe('IPv4 attributes given an IPv4-mapped IPv6 address (recorded from libvirt 9.0, 2026-12-07)', () => {
  it('take it as the IPv4 address; other IPv6 forms are refused', () => {
    const c = bindTo('pm1', `<rule action='accept' direction='out'><tcp srcipaddr='::ffff:a01:205'/></rule>`);
    expect(renderCompiled(c, 'iptables-save')).toContain(
      '-A FI-pm1 -s 10.1.2.5/32 -p tcp -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir ORIGINAL -j RETURN',
    );
    const upper = bindTo('pm2', `<rule action='accept' direction='out'><tcp srcipaddr='::FFFF:10.1.2.8'/></rule>`);
    expect(renderCompiled(upper, 'iptables-save')).toContain('-A FI-pm2 -s 10.1.2.8/32 -p tcp');
    for (const a of ['::10.1.2.6', '::ffff:0:10.1.2.7', '2001:db8::1'])
      expect(defineError(`<rule action='accept' direction='out'><tcp srcipaddr='${a}'/></rule>`)).toBe(
        `srcipaddr has illegal value ${a}`,
      );
  });
});

describe('a reversed IP range before the refused option (iptables and ip6tables print a warning first)', () => {
  it('is part of the message, as libxt_iprange prints it while parsing (verified in a namespace)', () => {
    const f = bindTo(
      'pr1',
      `<rule action='accept' direction='out'><tcp srcipfrom='10.0.0.9' srcipto='10.0.0.1' option='0'/></rule>`,
    ).failure;
    expect(f).toContain(
      ': xt_iprange: range 10.0.0.9-10.0.0.1 is reversed and will never match\niptables v1.8.9 (nf_tables): Bad TCP option "0"',
    );
    const ok = bindTo(
      'pr2',
      `<rule action='accept' direction='out'><tcp srcipfrom='10.0.0.9' srcipto='10.0.0.1'/></rule>`,
    );
    expect(ok.mode).not.toBe('failed');
  });
});
