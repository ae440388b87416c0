/**
 * The bridges of a Proxmox VE node's `/etc/network/interfaces` (ifupdown2), as far as guest VLANs need them:
 * `iface vmbr0 inet …` stanzas with `bridge-ports`, `bridge-vlan-aware yes|no`, `bridge-vids` (default `2-4094`
 * when VLAN-aware, Proxmox's own default) and `bridge-pvid` (default 1). Other stanzas and options are ignored;
 * a value that cannot be read is an issue with file:line. Never throws.
 */
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import type { Position } from '../source/origin.ts';

export interface PveBridgeConf {
  readonly name: string;
  readonly ports: readonly string[];
  readonly vlanAware: boolean;
  /** The VLANs the bridge ports carry tagged (`bridge-vids`), as ranges. */
  readonly vids: readonly (readonly [number, number])[];
  readonly pvid: number;
  readonly pos: Position;
  /** Where `bridge-vlan-aware` / `bridge-vids` were written (else the stanza). */
  readonly vlanAwarePos: Position;
  readonly vidsPos: Position;
}

function vidRanges(text: string): (readonly [number, number])[] | undefined {
  const out: [number, number][] = [];
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b > 4094 || a > b) return undefined;
    out.push([a, b]);
  }
  return out.length > 0 ? out : undefined;
}

export function readNetworkInterfaces(text: string, file: string): ReadResult<ReadonlyMap<string, PveBridgeConf>> {
  const issues: Issue[] = [];
  const out = new Map<string, PveBridgeConf>();
  interface Cur {
    name: string;
    pos: Position;
    ports: string[];
    bridge: boolean;
    vlanAware?: { value: boolean; pos: Position };
    vids?: { value: (readonly [number, number])[]; pos: Position };
    pvid?: number;
  }
  let cur: Cur | undefined;
  const flush = () => {
    if (cur?.bridge)
      out.set(cur.name, {
        name: cur.name,
        ports: cur.ports,
        vlanAware: cur.vlanAware?.value ?? false,
        vids: cur.vids?.value ?? (cur.vlanAware?.value ? [[2, 4094]] : []),
        pvid: cur.pvid ?? 1,
        pos: cur.pos,
        vlanAwarePos: cur.vlanAware?.pos ?? cur.pos,
        vidsPos: cur.vids?.pos ?? cur.vlanAware?.pos ?? cur.pos,
      });
    cur = undefined;
  };
  text.split('\n').forEach((raw, k) => {
    const pos = { file, line: k + 1 };
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') return;
    const [key, ...rest] = line.split(/\s+/);
    const value = rest.join(' ');
    if (key === 'iface') {
      flush();
      if (rest[0]) cur = { name: rest[0], pos, ports: [], bridge: /^vmbr\d+$/.test(rest[0]) };
      return;
    }
    if (['auto', 'allow-hotplug', 'source', 'source-directory', 'mapping'].includes(key!)) {
      flush();
      return;
    }
    if (!cur) return;
    switch (key) {
      case 'bridge-ports':
      case 'bridge_ports':
        cur.bridge = true;
        cur.ports = value === 'none' ? [] : rest;
        break;
      case 'bridge-vlan-aware':
      case 'bridge_vlan_aware':
        if (!/^(yes|no|on|off|1|0)$/.test(value))
          issues.push(issue('pve-interfaces.value', `${key}: expected yes or no, got "${value}"`, pos));
        else cur.vlanAware = { value: /^(yes|on|1)$/.test(value), pos };
        break;
      case 'bridge-vids':
      case 'bridge_vids': {
        const v = vidRanges(value);
        if (!v)
          issues.push(
            issue('pve-interfaces.value', `${key}: expected VLAN ids 1-4094 (e.g. 2-4094), got "${value}"`, pos),
          );
        else cur.vids = { value: v, pos };
        break;
      }
      case 'bridge-pvid':
      case 'bridge_pvid':
        if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 4094)
          issues.push(issue('pve-interfaces.value', `${key}: expected a VLAN id 1-4094, got "${value}"`, pos));
        else cur.pvid = Number(value);
        break;
      default:
        break;
    }
  });
  flush();
  return { value: out, issues };
}
