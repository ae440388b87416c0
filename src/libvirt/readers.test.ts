import { describe, expect, it } from 'vitest';
import { bindingForInterface, readDomainXml } from './domain-xml.ts';
import type { NwRule } from './nwfilter-model.ts';
import { readFilterBindingXml, readNwfilterXml } from './nwfilter-xml.ts';

const DOMAIN = `<domain type='kvm'>
  <name>r2-10105</name>
  <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid>
  <devices>
    <interface type='bridge'>
      <mac address='02:00:73:B6:53:C8'/>
      <source bridge='br0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'>
        <parameter name='IP' value='192.0.2.200'/>
        <parameter name='IP' value='192.0.2.208'/>
        <parameter name='BAD' value='192.0.2.0/24'/>
      </filterref>
    </interface>
    <interface type='network'>
      <mac address='52:54:00:00:00:01'/>
      <source network='default'/>
    </interface>
  </devices>
</domain>
`;

describe('readDomainXml', () => {
  it('reads name, uuid and interfaces with their lines', () => {
    const r = readDomainXml(DOMAIN, 'r2.xml');
    const d = r.value!;
    expect(d.name).toBe('r2-10105');
    expect(d.uuid).toBe('d54df46f-1ab5-4a22-8618-4560ef5fac2c');
    expect(d.interfaces).toHaveLength(2);
    const i = d.interfaces[0]!;
    expect(i).toMatchObject({
      type: 'bridge',
      mac: '02:00:73:b6:53:c8',
      sourceBridge: 'br0',
      targetDev: 'vnet0',
      model: 'virtio',
    });
    expect(i.origin.pos).toEqual({ file: 'r2.xml', line: 5 });
    expect(i.filterref?.filter).toBe('clean-traffic');
    expect([...i.filterref!.params]).toEqual([['IP', ['192.0.2.200', '192.0.2.208']]]);
    expect(i.filterref!.origin.pos).toEqual({ file: 'r2.xml', line: 10 });
    expect(d.interfaces[1]).toMatchObject({ type: 'network', sourceNetwork: 'default' });
  });

  it('warns that libvirt silently drops a parameter value with a slash', () => {
    const r = readDomainXml(DOMAIN, 'r2.xml');
    expect(r.issues).toHaveLength(1);
    expect(r.issues[0]).toMatchObject({
      code: 'nwfilter-param-ignored',
      severity: 'warning',
      pos: { file: 'r2.xml', line: 13 },
    });
  });

  it('derives the binding libvirt creates for a filtered interface', () => {
    const d = readDomainXml(DOMAIN, 'r2.xml').value!;
    const b = bindingForInterface(d, d.interfaces[0]!).value!;
    expect(b).toMatchObject({
      ownerName: 'r2-10105',
      portdev: 'vnet0',
      mac: '02:00:73:b6:53:c8',
      filter: 'clean-traffic',
    });
    expect(bindingForInterface(d, d.interfaces[1]!).value).toBeUndefined();
  });

  it('refuses a DOCTYPE', () => {
    const r = readDomainXml(
      `<?xml version="1.0"?>\n<!DOCTYPE domain [<!ENTITY x "y">]>\n<domain><name>&x;</name></domain>`,
      'evil.xml',
    );
    expect(r.value).toBeUndefined();
    expect(r.issues).toEqual([expect.objectContaining({ code: 'xml-doctype', pos: { file: 'evil.xml', line: 2 } })]);
  });

  it('turns malformed XML into issues instead of throwing', () => {
    const r = readDomainXml(`<domain>\n  <name>x</name>\n  <devices>\n</domain>`, 'bad.xml');
    expect(r.issues.length).toBeGreaterThan(0);
    expect(r.issues.some((i) => i.severity === 'error')).toBe(true);
    expect(readDomainXml('', 'empty.xml').value).toBeUndefined();
    expect(readDomainXml('<network/>', 'n.xml').issues[0]!.code).toBe('domain-root');
  });
});

describe('readNwfilterXml', () => {
  it('follows libvirt 9.0.0 quirks: stp chain priority 0, out-of-range rule priority 500, negation copied', () => {
    const r = readNwfilterXml(
      `<filter name='t-stp' chain='stp'>
  <rule action='drop' direction='out' priority='5000'>
    <stp type='0x12'/>
  </rule>
  <rule action='accept' direction='in' statematch='false'>
    <tcp dstportstart='22' match='no' srcipaddr='10.0.0.1'/>
  </rule>
</filter>`,
      'q.xml',
    );
    const f = r.value!;
    expect(f.priority).toBe(0);
    const [r1, r2] = f.entries as NwRule[];
    expect(r1!.priority).toBe(500);
    expect(r.issues).toEqual([
      expect.objectContaining({
        code: 'nwfilter-rule-priority-ignored',
        severity: 'warning',
        pos: { file: 'q.xml', line: 2 },
      }),
    ]);
    expect(r2!.statematch).toBe(false);
    expect(r2!.attrs.get('srcipaddr')).toEqual({ raw: '10.0.0.1', negated: true });
    expect(r2!.attrs.get('dstportstart')).toEqual({ raw: '22', negated: false });
    expect(r2!.origin.pos).toEqual({ file: 'q.xml', line: 5 });
  });

  it('gives prefixed chains their default priority and validates chain names', () => {
    expect(readNwfilterXml(`<filter name='t-vlan' chain='vlan-x'/>`, 'v.xml').value!.priority).toBe(-750);
    const bad = readNwfilterXml(`<filter name='x' chain='foo'/>`, 'f.xml');
    expect(bad.issues[0]!.code).toBe('nwfilter-chain');
    expect(readNwfilterXml(`<filter name='x' chain='ipv4-waytoolong'/>`, 'f.xml').issues[0]!.message).toBe(
      'Name of chain is longer than 12 characters',
    );
    expect(readNwfilterXml(`<filter name='x' chain='rootx'/>`, 'f.xml').issues[0]!.code).toBe('nwfilter-chain');
    expect(readNwfilterXml(`<filter name='x' chain='ipv4' priority='-1001'/>`, 'f.xml').issues[0]!.message).toBe(
      "Priority '-1001' is outside valid range of [-1000, 1000]",
    );
  });

  it('merges same-name protocol elements, keeps the first protocol and ignores unknown attributes', () => {
    const r = readNwfilterXml(
      `<filter name='m'>
  <rule action='accept' direction='in'>
    <tcp match='no' srcipaddr='10.1.2.3'/>
    <tcp srcportstart='22'/>
    <udp dstportstart='53'/>
    <tcp srcporttend='24'/>
  </rule>
</filter>`,
      'm.xml',
    );
    const rule = r.value!.entries[0] as NwRule;
    expect(rule.protocol).toBe('tcp');
    expect([...rule.attrs.keys()]).toEqual(['srcipaddr', 'srcportstart']);
    expect(r.issues.map((i) => i.code)).toEqual(['nwfilter-protocol-ignored', 'nwfilter-attr-ignored']);
  });

  it('reports illegal values and port rules without a port protocol', () => {
    const r = readNwfilterXml(
      `<filter name='v'>
  <rule action='accept' direction='out'><mac protocolid='0x5ff'/></rule>
  <rule action='accept' direction='out'><ip srcportstart='80'/></rule>
  <rule action='maybe' direction='out'/>
</filter>`,
      'v.xml',
    );
    expect(r.issues.map((i) => [i.code, i.pos?.line])).toEqual([
      ['nwfilter-bad-value', 2],
      ['nwfilter-ports-need-protocol', 3],
      ['nwfilter-rule-action', 4],
    ]);
  });

  it('reads filterrefs with list parameters', () => {
    const r = readNwfilterXml(
      `<filter name='p'><filterref filter='no-ip-spoofing'><parameter name='IP' value='10.0.0.1'/><parameter name='IP' value='10.0.0.2'/></filterref></filter>`,
      'p.xml',
    );
    const ref = r.value!.entries[0]!;
    expect(ref.kind === 'filterref' && [...ref.params]).toEqual([['IP', ['10.0.0.1', '10.0.0.2']]]);
  });
});

describe('readFilterBindingXml', () => {
  it('reads a binding and drops a CIDR parameter value as libvirt does', () => {
    const r = readFilterBindingXml(
      `<filterbinding>
  <owner><name>t</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='vnet0'/>
  <mac address='02:00:73:b6:53:c8'/>
  <filterref filter='clean-traffic'>
    <parameter name='IP' value='192.0.2.0/24'/>
    <parameter name='IP' value='192.0.2.200'/>
  </filterref>
</filterbinding>`,
      'b.xml',
    );
    expect(r.value).toMatchObject({
      ownerName: 't',
      portdev: 'vnet0',
      mac: '02:00:73:b6:53:c8',
      filter: 'clean-traffic',
    });
    expect([...r.value!.params]).toEqual([['IP', ['192.0.2.200']]]);
    expect(r.issues.map((i) => i.code)).toEqual(['nwfilter-param-ignored']);
  });

  it('needs a port, a MAC and a filterref', () => {
    const r = readFilterBindingXml('<filterbinding><portdev name="vnet0"/></filterbinding>', 'b.xml');
    expect(r.value).toBeUndefined();
    expect(r.issues.map((i) => i.code)).toEqual(['binding-mac', 'binding-filterref']);
  });
});
