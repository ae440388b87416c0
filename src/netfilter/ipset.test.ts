import { describe, expect, it } from 'vitest';
import { ipv4 } from '../addr/ipv4.ts';
import { formatIssue } from '../source/issue.ts';
import { ipsetContains, ipsetFromEntries, readIpsetSave } from './ipset.ts';

describe('hash:net ipsets', () => {
  const set = ipsetFromEntries('s', 'inet', [
    { cidr: '192.0.2.0/24', nomatch: false },
    { cidr: '192.0.2.128/25', nomatch: true },
    { cidr: '192.0.2.200', nomatch: false },
  ]);
  it('holds the addresses of its networks', () => {
    expect(ipsetContains(set, ipv4('192.0.2.5'))).toBe(true);
    expect(ipsetContains(set, ipv4('198.51.100.5'))).toBe(false);
  });
  it('lets the most specific entry decide, nomatch excluding', () => {
    expect(ipsetContains(set, ipv4('192.0.2.129'))).toBe(false);
    expect(ipsetContains(set, ipv4('192.0.2.200'))).toBe(true);
  });
  it('an empty set holds nothing', () => {
    expect(ipsetContains(ipsetFromEntries('e', 'inet', []), ipv4('192.0.2.1'))).toBe(false);
  });
  it('reads ipset save output and names bad lines', () => {
    const r = readIpsetSave(
      'create a hash:net family inet hashsize 64 maxelem 64 bucketsize 12 initval 0x1\nadd a 192.0.2.0/24\nadd b 1.2.3.4\nadd a zz\ncreate c hash:ip family inet\n',
      'ipset-save.txt',
    );
    expect(ipsetContains(r.value!.get('a')!, ipv4('192.0.2.9'))).toBe(true);
    expect(r.issues.map(formatIssue)).toEqual([
      "ipset-save.txt:3: error: 'add' to set b, which was not created before [ipset-unknown-set]",
      "ipset-save.txt:4: error: expected an IPv4 address[/length], got 'zz' [ipset-bad-entry]",
      'ipset-save.txt:5: unsupported: set c of type hash:ip is not modelled (only hash:net) [ipset-type]',
    ]);
  });
});
