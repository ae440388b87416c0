import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { skippedBecause } from '../../test/support/conformance.ts';
import { builtinFilters, filterRegistry } from './builtin-filters.ts';
import type { NwFilter } from './nwfilter-model.ts';
import { readNwfilterXml } from './nwfilter-xml.ts';

/** Where Debian's libvirt-daemon-config-nwfilter installs the filters libvirt ships (read as installed, never copied). */
const SRC = new URL('file:///usr/share/libvirt/nwfilter/');
const PACKAGE = 'libvirt-daemon-config-nwfilter';

const skip = (() => {
  if (!existsSync(SRC)) return `${PACKAGE} is not installed (no /usr/share/libvirt/nwfilter)`;
  const v = spawnSync('dpkg-query', ['-W', `-f=\${Version}`, PACKAGE], { encoding: 'utf8' });
  if (v.status !== 0) return `the version of ${PACKAGE} is unknown (dpkg-query failed)`;
  if (!v.stdout.startsWith('9.0.0-')) return `${PACKAGE} ${v.stdout} is installed; the built-ins model 9.0.0`;
  return undefined;
})();

/** The comparable content of a filter: everything but origins and UUIDs. */
function shape(f: NwFilter) {
  return {
    name: f.name,
    chain: f.chain,
    priority: f.priority,
    entries: f.entries.map((e) =>
      e.kind === 'filterref'
        ? { ref: e.filter, params: [...e.params] }
        : {
            action: e.action,
            direction: e.direction,
            priority: e.priority,
            statematch: e.statematch,
            protocol: e.protocol,
            attrs: [...e.attrs],
          },
    ),
  };
}

const files = skip === undefined ? readdirSync(SRC).filter((f) => f.endsWith('.xml')) : [];

describe('built-in filters', () => {
  skippedBecause(skip);

  it.skipIf(skip !== undefined)('are the 24 filters libvirt 9.0.0 ships', () => {
    expect(files).toHaveLength(24);
    expect([...builtinFilters.keys()].sort()).toEqual(files.map((f) => f.replace(/\.xml$/, '')).sort());
  });

  it.skipIf(skip !== undefined).each(files)('match the shipped %s parsed by the reader', (file) => {
    const r = readNwfilterXml(readFileSync(new URL(file, SRC), 'utf8'), file);
    expect(r.issues).toEqual([]);
    const mine = builtinFilters.get(r.value!.name)!;
    expect(shape(mine)).toEqual(shape(r.value!));
    expect(mine.builtin).toBe(true);
    expect(mine.origin.data?.position).toBe('built-in');
  });

  it('are overridden by a custom filter of the same name', () => {
    const custom: NwFilter = { ...builtinFilters.get('no-ip-spoofing')!, entries: [], builtin: false };
    expect(filterRegistry([custom]).get('no-ip-spoofing')).toBe(custom);
    expect(filterRegistry([custom]).get('clean-traffic')).toBe(builtinFilters.get('clean-traffic'));
  });
});
