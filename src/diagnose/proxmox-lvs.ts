/**
 * LVS / keepalived behind the Proxmox VE firewall (iptables backend): the probes that show the failures pve-firewall
 * causes (fact sheet §7.1: a DR director's forwarded requests, traffic from the VIP, gratuitous ARP for the VIP,
 * keepalived's virtual MAC, VRRP adverts), each walked through the node's compiled rules; for every failure the
 * fixes that keep the most protection (§7.2), written as `.fw` edits and `pvesh` commands, each verified by compiling
 * the edited files again and walking the same probes — and by checking that what the fix claims to keep is still
 * enforced (another spoofed source is still dropped, a foreign MAC still dropped).
 */
import { type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import { type Mac, parseMac } from '../addr/mac.ts';
import { evaluateEbtables } from '../netfilter/ebtables-eval.ts';
import type { EbTable } from '../netfilter/ebtables-model.ts';
import { readEbtablesSave } from '../netfilter/ebtables-read.ts';
import type { CtState } from '../netfilter/iptables-model.ts';
import { compilePveFirewall, renderPveEbtablesRestore } from '../proxmox/compile.ts';
import { addFwIpsetEntry, addFwRule, fwDiff, removeFwIpset, setFwOption } from '../proxmox/fw-edit.ts';
import { guestIface } from '../proxmox/guest-config.ts';
import { type PveNodeFiles, pveNodeInput } from '../proxmox/node-files.ts';
import { findGuestNic, type PveEndpoint, type PveNodeModel, pveNodeModel, pveSimulate } from '../proxmox/simulate.ts';
import { appendAll } from '../source/arrays.ts';
import { type Origin, renderOriginChain } from '../source/origin.ts';
import { emitEthernet } from '../wire/ethernet.ts';
import { renderTcpdump } from '../wire/tcpdump.ts';
import type { EthernetFrame, L4Payload } from '../wire/types.ts';

export interface PveLvsMember {
  readonly vmid: string;
  /** Default net0. */
  readonly netid?: string;
  /** The guest's own address on that NIC (VRRP adverts come from it; needed for a set that must keep it). */
  readonly ip?: string;
}

export interface PveLvsRoles {
  readonly vip: string;
  readonly mode: 'dr' | 'nat';
  /** keepalived peers that may hold the VIP (directors). */
  readonly directors: readonly PveLvsMember[];
  readonly realServers: readonly PveLvsMember[];
  /** A client address for the probes (default 203.0.113.7). */
  readonly client?: string;
  /** The service port (default 80). */
  readonly port?: number;
  /** keepalived `use_vmac` with this virtual router id: frames leave with MAC 00:00:5e:00:01:<vrid>. */
  readonly vmacVrid?: number;
  /** Where clients are: a bridge port (default vmbr0/eth0, the uplink). */
  readonly uplink?: { readonly bridge: string; readonly port: string };
}

export interface PveProbeResult {
  readonly name: string;
  readonly verdict: 'ACCEPT' | 'DROP' | 'REJECT';
  /** The deciding rule as pve-firewall wrote it, and the hop it ran on. */
  readonly decidedAt?: string;
  readonly rule?: string;
  readonly origin?: string;
  readonly hops: readonly string[];
  /** The frame as `tcpdump -e -nn` prints it (bridging does not change it on this node). */
  readonly tcpdump: string;
  /** The bridge ports a capture would see it on, in order (where it died: the last one is where it entered). */
  readonly seenAt: readonly string[];
  /** The frame's bytes, for pcaps. */
  readonly bytes: Uint8Array;
}

/** One edit of a guest's .fw text. */
export type FwOp = readonly [vmid: string, edit: (text: string) => string];

function applyOps(files: PveNodeFiles, ops: readonly FwOp[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const [vmid, edit] of ops) out.set(vmid, edit(out.get(vmid) ?? fwText(files, vmid).text));
  return out;
}

export interface PveFix {
  readonly id: string;
  /** The edits, to combine with other fixes. */
  readonly ops: readonly FwOp[];
  readonly title: string;
  readonly keeps: string;
  readonly loses: string;
  readonly diffs: readonly string[];
  readonly commands: readonly string[];
  /** Protection checks this fix gives up on purpose (its `loses`). */
  readonly gaveUp: readonly string[];
  /** Probe → verdict after the fix. */
  readonly after: readonly PveProbeResult[];
  /** What the fix claims to keep, checked after it (a probe that must still be dropped). */
  readonly kept: readonly PveProbeResult[];
  readonly verified: boolean;
}

export interface PveFinding {
  readonly id: string;
  readonly severity: 'error' | 'warning';
  readonly title: string;
  readonly explanation: string;
  readonly probe: PveProbeResult;
  readonly fixes: readonly PveFix[];
}

export interface PveLvsReport {
  /** Every finding's first fix applied together, and the probes walked again. */
  readonly combined?: {
    readonly diffs: readonly string[];
    readonly files: readonly { readonly file: string; readonly text: string }[];
    /** Probes that still do not do what they should (must pass but drop, or must stay dropped but pass). */
    readonly failing: readonly PveProbeResult[];
    readonly probes: number;
  };
  readonly probes: readonly PveProbeResult[];
  readonly findings: readonly PveFinding[];
  readonly problems: readonly string[];
}

interface Probe {
  readonly name: string;
  readonly from: PveEndpoint;
  readonly to: PveEndpoint;
  readonly frame?: EthernetFrame;
  /** ARP frames are judged by ebtables on the sender's fwbr hop. */
  readonly arp?: { readonly vmid: string; readonly netid: string; readonly frame: EthernetFrame };
  readonly ctState?: CtState;
  /** A probe the roles expect to pass (a drop is a finding); false for protection checks. */
  readonly shouldPass: boolean;
}

const ip = (t: string): Ipv4 => parseIpv4(t) ?? (0 as Ipv4);

function ipFrame(
  src: Mac,
  s: string,
  d: string,
  l4: { proto: 'tcp' | 'vrrp'; sport?: number; dport?: number },
): EthernetFrame {
  let payload: L4Payload;
  let protocol: number;
  if (l4.proto === 'tcp') {
    protocol = 6;
    payload = {
      kind: 'tcp',
      srcPort: l4.sport ?? 40000,
      dstPort: l4.dport ?? 80,
      seq: 1,
      ack: 0,
      flags: 0x02,
      window: 64240,
      urgent: 0,
      options: [],
      payload: new Uint8Array(),
    };
  } else {
    protocol = 112;
    payload = { kind: 'raw', bytes: new Uint8Array(20) };
  }
  return {
    dst: (l4.proto === 'vrrp' ? '01:00:5e:00:00:12' : '02:00:00:00:00:fe') as Mac,
    src,
    vlans: [],
    etherType: 0x0800,
    payload: {
      kind: 'ipv4',
      tos: 0,
      id: 1,
      dontFragment: true,
      moreFragments: false,
      fragmentOffset: 0,
      ttl: 64,
      protocol,
      src: ip(s),
      dst: ip(d),
      payload,
    },
  };
}

function garp(src: Mac, addr: string): EthernetFrame {
  return {
    dst: 'ff:ff:ff:ff:ff:ff' as Mac,
    src,
    vlans: [],
    etherType: 0x0806,
    payload: {
      kind: 'arp',
      htype: 1,
      ptype: 0x0800,
      op: 1,
      sha: src,
      spa: ip(addr),
      tha: '00:00:00:00:00:00' as Mac,
      tpa: ip(addr),
    },
  };
}

function nicMac(model: PveNodeModel, m: PveLvsMember): Mac | undefined {
  const g = findGuestNic(model.input, m.vmid, m.netid ?? 'net0');
  return typeof g === 'string' ? undefined : parseMac(g.nic.mac);
}

const guest = (m: PveLvsMember): PveEndpoint => ({ kind: 'guest', vmid: m.vmid, netid: m.netid ?? 'net0' });

/** The probes for the roles: what must pass, and (for fixes) what must stay dropped. */
function probes(model: PveNodeModel, roles: PveLvsRoles): Probe[] {
  const out: Probe[] = [];
  const client = roles.client ?? '203.0.113.7';
  const port = roles.port ?? 80;
  const uplink: PveEndpoint = { kind: 'port', ...(roles.uplink ?? { bridge: 'vmbr0', port: 'eth0' }) };
  for (const d of roles.directors) {
    const mac = nicMac(model, d);
    if (!mac) continue;
    out.push({
      name: `client → VIP reaches director ${d.vmid}`,
      from: uplink,
      to: guest(d),
      frame: ipFrame('02:00:00:00:00:01' as Mac, client, roles.vip, { proto: 'tcp', dport: port }),
      shouldPass: true,
    });
    if (roles.mode === 'dr')
      for (const rs of roles.realServers)
        out.push({
          name: `director ${d.vmid} forwards the client's request to real server ${rs.vmid} (LVS-DR: source stays ${client})`,
          from: guest(d),
          to: guest(rs),
          frame: ipFrame(mac, client, roles.vip, { proto: 'tcp', dport: port }),
          shouldPass: true,
        });
    out.push({
      name: `director ${d.vmid} sends from the VIP ${roles.vip} (new flow: VRRP master, LVS-NAT reply after failover)`,
      from: guest(d),
      to: uplink,
      frame: ipFrame(mac, roles.vip, client, { proto: 'tcp', sport: port, dport: 40000 }),
      shouldPass: true,
    });
    out.push({
      name: `director ${d.vmid} announces the VIP ${roles.vip} by gratuitous ARP`,
      from: guest(d),
      to: uplink,
      arp: { vmid: d.vmid, netid: d.netid ?? 'net0', frame: garp(mac, roles.vip) },
      shouldPass: true,
    });
    if (roles.vmacVrid !== undefined) {
      const vmac = parseMac(`00:00:5e:00:01:${roles.vmacVrid.toString(16).padStart(2, '0')}`)!;
      out.push({
        name: `director ${d.vmid} sends from keepalived's virtual MAC ${vmac}`,
        from: guest(d),
        to: uplink,
        frame: ipFrame(vmac, roles.vip, client, { proto: 'tcp', sport: port, dport: 40000 }),
        shouldPass: true,
      });
    }
    for (const peer of roles.directors) {
      if (peer === d || d.ip === undefined) continue;
      out.push({
        name: `VRRP advert from director ${d.vmid} (${d.ip}) reaches director ${peer.vmid}`,
        from: guest(d),
        to: guest(peer),
        frame: ipFrame(mac, d.ip, '224.0.0.18', { proto: 'vrrp' }),
        shouldPass: true,
      });
    }
    // protection the fixes must keep
    out.push({
      name: `director ${d.vmid} sending with a foreign MAC is still dropped`,
      from: guest(d),
      to: uplink,
      frame: ipFrame('02:de:ad:be:ef:01' as Mac, d.ip ?? roles.vip, client, { proto: 'tcp', dport: 443 }),
      shouldPass: false,
    });
  }
  for (const rs of roles.realServers) {
    const mac = nicMac(model, rs);
    if (!mac) continue;
    out.push({
      name: `real server ${rs.vmid} answers from the VIP ${roles.vip} as a new flow (conntrack lost the request)`,
      from: guest(rs),
      to: uplink,
      frame: ipFrame(mac, roles.vip, client, { proto: 'tcp', sport: port, dport: 40000 }),
      ctState: 'NEW',
      shouldPass: true,
    });
    out.push({
      name: `real server ${rs.vmid} spoofing another address (198.51.100.250) is still dropped`,
      from: guest(rs),
      to: uplink,
      frame: ipFrame(mac, '198.51.100.250', client, { proto: 'tcp', dport: 443 }),
      shouldPass: false,
    });
  }
  return out;
}

function originText(o: Origin | undefined): string | undefined {
  return o === undefined ? undefined : renderOriginChain(o);
}

function ebTable(model: PveNodeModel): EbTable | undefined {
  const r = readEbtablesSave(renderPveEbtablesRestore(model.compiled.ebtables), 'ebtables');
  const t = r.value?.[0];
  if (!t) return undefined;
  // give each rule back the origin the compiler recorded (same chains, same order)
  return {
    ...t,
    chains: t.chains.map((c) => {
      const gen = model.compiled.ebtables.get(c.name);
      return gen ? { ...c, rules: c.rules.map((r, i) => (gen[i] ? { ...r, origin: gen[i]!.origin } : r)) } : c;
    }),
  };
}

function tcpdumpLine(bytes: Uint8Array): string {
  return renderTcpdump([{ timeNs: 0n, bytes }], { link: true, verbosity: 0 })
    .trim()
    .replace(/^\S+ /, '');
}

function run(model: PveNodeModel, p: Probe): PveProbeResult {
  const bytes = emitEthernet(p.arp ? p.arp.frame : p.frame!);
  const wire = { tcpdump: tcpdumpLine(bytes), bytes };
  if (p.arp) {
    const t = ebTable(model);
    const g = findGuestNic(model.input, p.arp.vmid, p.arp.netid);
    if (!t || typeof g === 'string')
      return { name: p.name, verdict: 'ACCEPT', hops: ['no ebtables rules: ARP passes'], seenAt: [], ...wire };
    const at = `fwbr${g.guest.vmid}i${g.nic.index}`;
    const r = evaluateEbtables(t, 'FORWARD', p.arp.frame, {
      inIface: guestIface(g.guest, g.nic),
      outIface: `fwln${g.guest.vmid}i${g.nic.index}`,
    });
    const verdict = r.verdict === 'DROP' ? 'DROP' : 'ACCEPT';
    const d = r.decidedBy;
    return {
      name: p.name,
      verdict,
      decidedAt: `${at} (ebtables FORWARD)`,
      ...(d.kind === 'rule'
        ? { rule: `chain ${d.chain} rule ${d.index + 1}`, origin: originText(d.rule.origin) ?? '' }
        : {}),
      hops: [`${at}: ebtables FORWARD → ${r.verdict}`],
      seenAt: [guestIface(g.guest, g.nic), ...(verdict === 'ACCEPT' ? [`fwln${g.guest.vmid}i${g.nic.index}`] : [])],
      ...wire,
    };
  }
  const r = pveSimulate(model, p.frame!, p.from, p.to, p.ctState ? { ctState: p.ctState } : {});
  const last = r.hops[r.hops.length - 1];
  const d = last?.result.decidedBy;
  const gen =
    d?.kind === 'rule' && model.problems.length === 0
      ? model.compiled.filter4.get(d.chain)?.[d.index]?.text
      : undefined;
  // A fixed chain (PVEFW-Drop …) decided: name the guest or host rule that led there (a policy, a jump).
  const via =
    d?.kind === 'rule' && !/^(tap|veth)\d+i\d+-(IN|OUT)$/.test(d.chain)
      ? [...(last?.result.visited ?? [])]
          .reverse()
          .find((v) => v.matched && /^(tap|veth)\d+i\d+-(IN|OUT)$|^PVEFW-HOST-/.test(v.chain))
      : undefined;
  return {
    name: p.name,
    verdict: r.verdict,
    ...(r.verdict !== 'ACCEPT' && last ? { decidedAt: `${last.at} (${last.hook})` } : {}),
    ...(r.verdict !== 'ACCEPT' && d?.kind === 'rule' ? { rule: gen ?? `chain ${d.chain} rule ${d.index + 1}` } : {}),
    ...(r.verdict !== 'ACCEPT' && d
      ? {
          origin:
            (originText(d.kind === 'rule' ? d.rule.origin : d.origin) ?? '') +
            (via ? `, reached from ${via.chain} rule ${via.index + 1} ← ${originText(via.rule.origin)}` : ''),
        }
      : {}),
    hops: r.hops.map(
      (h) =>
        `${h.at}: ${h.hook} → ${h.result.verdict}${h.result.decidedBy.kind === 'rule' ? ` (${h.result.decidedBy.chain})` : ''}`,
    ),
    seenAt: [
      ...r.hops.flatMap((h) => (h.physdevIn !== undefined ? [h.physdevIn] : [])),
      ...(r.verdict === 'ACCEPT' && last?.physdevOut !== undefined ? [last.physdevOut] : []),
    ],
    ...wire,
  };
}

function modelOf(files: PveNodeFiles): PveNodeModel {
  const input = pveNodeInput(files).value!;
  return pveNodeModel(input, compilePveFirewall(input));
}

function fwText(files: PveNodeFiles, vmid: string): { file: string; text: string } {
  return files.guestFw.get(vmid) ?? { file: `firewall/${vmid}.fw`, text: '' };
}

function withFw(files: PveNodeFiles, edits: ReadonlyMap<string, string>): PveNodeFiles {
  const guestFw = new Map(files.guestFw);
  for (const [vmid, text] of edits) guestFw.set(vmid, { file: fwText(files, vmid).file, text });
  return { ...files, guestFw };
}

const api = (files: PveNodeFiles, m: PveLvsMember, kind: 'qemu' | 'lxc') =>
  `/nodes/${files.nodeName}/${kind}/${m.vmid}/firewall`;

function kindOf(files: PveNodeFiles, vmid: string): 'qemu' | 'lxc' {
  return files.guests.find((g) => g.vmid === vmid)?.kind ?? 'qemu';
}

/** Builds, applies and verifies one fix. */
function makeFix(
  files: PveNodeFiles,
  roles: PveLvsRoles,
  spec: {
    id: string;
    title: string;
    keeps: string;
    loses: string;
    edits: readonly FwOp[];
    commands: string[];
    fixes: readonly string[];
    /** Protection probes the fix knowingly gives up (its `loses`): reported, not held against it. */
    givesUp?: (probe: string) => boolean;
  },
): PveFix {
  const edited = applyOps(files, spec.edits);
  const fixed = withFw(files, edited);
  const model = modelOf(fixed);
  const all = probes(model, roles);
  const after = all.filter((p) => spec.fixes.includes(p.name)).map((p) => run(model, p));
  const kept = all.filter((p) => !p.shouldPass && !spec.givesUp?.(p.name)).map((p) => run(model, p));
  const gaveUp = all.filter((p) => !p.shouldPass && spec.givesUp?.(p.name)).map((p) => p.name);
  const diffs = [...edited].map(([vmid, text]) => {
    const f = fwText(files, vmid);
    return fwDiff(f.file, f.text, text);
  });
  return {
    id: spec.id,
    title: spec.title,
    keeps: spec.keeps,
    loses: spec.loses,
    diffs,
    commands: spec.commands,
    ops: spec.edits,
    gaveUp,
    after,
    kept,
    verified: after.every((r) => r.verdict === 'ACCEPT') && kept.every((r) => r.verdict !== 'ACCEPT'),
  };
}

export function diagnosePveLvs(files: PveNodeFiles, roles: PveLvsRoles): PveLvsReport {
  const model = modelOf(files);
  const list = probes(model, roles);
  const results = list.map((p) => ({ probe: p, result: run(model, p) }));
  const failing = results.filter((x) => x.probe.shouldPass && x.result.verdict !== 'ACCEPT');
  const findings: PveFinding[] = [];
  const byMember = (m: PveLvsMember) =>
    failing.filter((x) => x.probe.from.kind === 'guest' && x.probe.from.vmid === m.vmid);
  const set = (m: PveLvsMember) => `ipfilter-${m.netid ?? 'net0'}`;
  for (const d of roles.directors) {
    const fails = byMember(d);
    const drFail = fails.filter((x) => x.probe.name.includes('forwards the client'));
    const vipFail = fails.filter(
      (x) => x.probe.name.includes('from the VIP') || x.probe.name.includes('gratuitous ARP'),
    );
    const vmacFail = fails.filter((x) => x.probe.name.includes('virtual MAC'));
    const base = api(files, d, kindOf(files, d.vmid));
    if (drFail.length > 0 || (roles.mode === 'dr' && vipFail.length > 0)) {
      const fix = makeFix(files, roles, {
        id: `pve-director-ipfilter-off-${d.vmid}`,
        title: `director ${d.vmid}: no IP filter on ${d.netid ?? 'net0'} (ipfilter: 0 and no [IPSET ${set(d)}])`,
        keeps:
          'the MAC filter (DR keeps the director’s own MAC), the IN/OUT rules and policies, the real servers’ IP filters',
        loses: `IP anti-spoofing on director ${d.vmid}'s ${d.netid ?? 'net0'} — a DR director must send with its clients' source addresses`,
        edits: [[d.vmid, (t) => removeFwIpset(setFwOption(t, 'ipfilter', '0'), set(d))]],
        commands: [
          `pvesh set ${base}/options --ipfilter 0`,
          ...(model.input.guests.find((g) => g.config.vmid === d.vmid)?.fw?.ipsets.has(set(d))
            ? [`pvesh delete ${base}/ipset/${set(d)} --force 1`]
            : []),
        ],
        fixes: [...drFail, ...vipFail].map((x) => x.probe.name),
      });
      const first = (drFail[0] ?? vipFail[0])!;
      findings.push({
        id: 'pve-dr-director-ipfilter',
        severity: 'error',
        title: `pve-firewall's IP filter on director ${d.vmid} drops what LVS-DR forwards`,
        explanation: `An LVS-DR director re-sends the client's packet unchanged: its source is the client (${roles.client ?? '203.0.113.7'}), not an address of ipfilter-${d.netid ?? 'net0'}. Adding the VIP to the set does not help (the source is not the VIP); the IP filter has to go on that NIC. An explicit [IPSET ${set(d)}] keeps the filter on even with ipfilter: 0, so the set has to go too.`,
        probe: first.result,
        fixes: [fix],
      });
    } else if (vipFail.length > 0) {
      const own = d.ip;
      const explicit = model.input.guests.find((g) => g.config.vmid === d.vmid)?.fw?.ipsets.has(set(d));
      const edit = (t: string) => {
        const x = addFwIpsetEntry(t, set(d), roles.vip, 'VIP (keepalived)');
        return own && !explicit ? addFwIpsetEntry(x, set(d), own, 'own address') : x;
      };
      const fix = makeFix(files, roles, {
        id: `pve-vip-in-ipfilter-${d.vmid}`,
        title: `director ${d.vmid}: add the VIP ${roles.vip} to [IPSET ${set(d)}]`,
        keeps:
          'IP anti-spoofing for every other source address, the MAC filter, all rules; the ARP allow-list gets the VIP',
        loses: 'nothing',
        edits: [[d.vmid, edit]],
        commands: [`pvesh create ${base}/ipset/${set(d)} --cidr ${roles.vip} --comment VIP`],
        fixes: vipFail.map((x) => x.probe.name),
      });
      findings.push({
        id: 'pve-vip-not-in-ipfilter',
        severity: 'error',
        title: `traffic from the VIP ${roles.vip} is dropped by director ${d.vmid}'s IP filter`,
        explanation: `The VIP is not in ipfilter-${d.netid ?? 'net0'}: whatever the VIP holder sends from the VIP (and its gratuitous ARP, when the set is explicit) is dropped, so clients never reach the VIP after a failover.`,
        probe: vipFail[0]!.result,
        fixes: [fix],
      });
    }
    if (vmacFail.length > 0) {
      const fix = makeFix(files, roles, {
        id: `pve-macfilter-off-${d.vmid}`,
        title: `director ${d.vmid}: macfilter: 0 (keepalived use_vmac sends from 00:00:5e:00:01:xx)`,
        keeps: 'the IP filter and all rules (VRRP VMAC frames still carry the VIP or the own address)',
        loses: `MAC anti-spoofing on all of guest ${d.vmid}'s NICs (the option is per guest; pve-firewall has no MAC allow-list). Alternative that keeps it: drop use_vmac from keepalived.conf`,
        edits: [[d.vmid, (t) => setFwOption(t, 'macfilter', '0')]],
        givesUp: (name) => name === `director ${d.vmid} sending with a foreign MAC is still dropped`,
        commands: [`pvesh set ${base}/options --macfilter 0`],
        fixes: vmacFail.map((x) => x.probe.name),
      });
      findings.push({
        id: 'pve-vmac-macfilter',
        severity: 'error',
        title: `keepalived's virtual MAC is dropped by director ${d.vmid}'s MAC filter`,
        explanation:
          'pve-firewall lets a NIC send only from the MAC of its netN line; use_vmac frames carry the VRRP MAC.',
        probe: vmacFail[0]!.result,
        fixes: [fix],
      });
    }
  }
  // VRRP adverts dropped on arrival
  for (const x of failing.filter((f) => f.probe.name.startsWith('VRRP advert'))) {
    const to = x.probe.to as PveEndpoint & { kind: 'guest' };
    // dropped at the sender (its own filters) is the sender's finding, not the receiver's
    if (!x.result.decidedAt?.startsWith(`fwbr${to.vmid}i`)) continue;
    const peer = roles.directors.find((m) => m.vmid === to.vmid)!;
    const sources = roles.directors.filter((m) => m !== peer && m.ip).map((m) => m.ip!);
    const rule = `IN ACCEPT -p vrrp -source ${sources.join(',')} # keepalived adverts`;
    const base = api(files, peer, kindOf(files, peer.vmid));
    const fix = makeFix(files, roles, {
      id: `pve-vrrp-in-${peer.vmid}`,
      title: `director ${peer.vmid}: accept VRRP from its peers`,
      keeps: 'everything else (the rule is limited to VRRP from the peers)',
      loses: 'nothing',
      edits: [[peer.vmid, (t) => addFwRule(t, rule)]],
      commands: [
        `pvesh create ${base}/rules --type in --action ACCEPT --proto vrrp --source ${sources.join(',')} --enable 1 --pos 0`,
      ],
      fixes: [x.probe.name],
    });
    findings.push({
      id: 'pve-vrrp-dropped',
      severity: 'error',
      title: `VRRP adverts to director ${peer.vmid} are dropped: both peers become MASTER`,
      explanation:
        'With policy_in DROP, a VRRP advert (protocol 112 to 224.0.0.18) that no IN rule accepts goes to PVEFW-Drop, whose PVEFW-DropBroadcast drops multicast: every peer believes it is alone (split brain).',
      probe: x.result,
      fixes: [fix],
    });
  }
  for (const rs of roles.realServers) {
    const fails = byMember(rs);
    if (fails.length === 0) continue;
    const base = api(files, rs, kindOf(files, rs.vmid));
    const explicit = model.input.guests.find((g) => g.config.vmid === rs.vmid)?.fw?.ipsets.has(set(rs));
    const edit = (t: string) => {
      const x = addFwIpsetEntry(t, set(rs), roles.vip, 'VIP (LVS-DR real server)');
      return !explicit && rs.ip ? addFwIpsetEntry(x, set(rs), rs.ip, 'own address') : x;
    };
    const fix = makeFix(files, roles, {
      id: `pve-vip-in-ipfilter-${rs.vmid}`,
      title: `real server ${rs.vmid}: add the VIP ${roles.vip} to [IPSET ${set(rs)}]`,
      keeps: 'IP anti-spoofing for every other source address, the MAC filter, all rules',
      loses: 'nothing',
      edits: [[rs.vmid, edit]],
      commands: [
        `pvesh create ${base}/ipset/${set(rs)} --cidr ${roles.vip} --comment VIP`,
        ...(!explicit && rs.ip ? [`pvesh create ${base}/ipset/${set(rs)} --cidr ${rs.ip} --comment own`] : []),
      ],
      fixes: fails.map((f) => f.probe.name),
    });
    findings.push({
      id: 'pve-rs-vip-source',
      severity: 'warning',
      title: `real server ${rs.vmid}'s replies from the VIP pass only while conntrack knows the flow`,
      explanation: `A DR real server answers from the VIP ${roles.vip}, which is not in its ipfilter-${rs.netid ?? 'net0'}. Replies of a flow whose request crossed this host are ESTABLISHED and skip the guest chains; a reply conntrack has not seen (an entry flushed, a flow that arrived through another node, a server starting from the VIP) is NEW and dropped.`,
      probe: fails[0]!.result,
      fixes: [fix],
    });
  }
  let combined: PveLvsReport['combined'];
  if (findings.length > 0) {
    const ops = findings.flatMap((f) => f.fixes[0]?.ops ?? []);
    const gaveUp = new Set(findings.flatMap((f) => f.fixes[0]?.gaveUp ?? []));
    const edited = applyOps(files, ops);
    const fixedModel = modelOf(withFw(files, edited));
    const after = probes(fixedModel, roles).map((p) => ({ probe: p, result: run(fixedModel, p) }));
    combined = {
      diffs: [...edited].map(([vmid, text]) => fwDiff(fwText(files, vmid).file, fwText(files, vmid).text, text)),
      files: [...edited].map(([vmid, text]) => ({ file: fwText(files, vmid).file, text })),
      failing: after
        .filter((x) => !gaveUp.has(x.probe.name) && x.probe.shouldPass !== (x.result.verdict === 'ACCEPT'))
        .map((x) => x.result),
      probes: after.length,
    };
  }
  return {
    probes: results.map((x) => x.result),
    findings,
    problems: [...model.problems],
    ...(combined ? { combined } : {}),
  };
}

/** The text report. */
export function renderPveLvsReport(r: PveLvsReport): string {
  const out: string[] = ['Probes:'];
  for (const p of r.probes) out.push(`  ${p.verdict.padEnd(6)} ${p.name}`);
  out.push('');
  if (r.findings.length === 0) out.push('No findings: the Proxmox firewall lets the load balancer work.');
  for (const f of r.findings) {
    out.push(`${f.severity.toUpperCase()} [${f.id}] ${f.title}`);
    out.push(`  ${f.explanation}`);
    out.push(`  probe: ${f.probe.name}`);
    out.push(`    ${f.probe.tcpdump}`);
    out.push(`    seen on: ${f.probe.seenAt.join(', ') || '(nowhere)'}`);
    for (const h of f.probe.hops) out.push(`    ${h}`);
    if (f.probe.decidedAt) out.push(`  dropped at ${f.probe.decidedAt} by: ${f.probe.rule ?? '(policy)'}`);
    if (f.probe.origin) out.push(`  origin: ${f.probe.origin}`);
    for (const fix of f.fixes) {
      out.push(`  fix [${fix.id}] ${fix.title}${fix.verified ? ' — verified by re-trace' : ' — NOT verified'}`);
      out.push(`    keeps: ${fix.keeps}`);
      out.push(`    loses: ${fix.loses}`);
      for (const d of fix.diffs)
        appendAll(
          out,
          d.split('\n').map((l) => `    ${l}`),
        );
      out.push('    or with the API:');
      for (const c of fix.commands) out.push(`      ${c}`);
      for (const a of fix.after) out.push(`    after: ${a.verdict} ${a.name}`);
      for (const k of fix.kept) out.push(`    still enforced: ${k.verdict} ${k.name}`);
      for (const g of fix.gaveUp) out.push(`    given up: ${g}`);
    }
    out.push('');
  }
  if (r.combined) {
    out.push(
      `All fixes together (the first of each finding): ${r.combined.probes - r.combined.failing.length} of ${r.combined.probes} probes as they should be after re-trace`,
    );
    for (const f of r.combined.failing) out.push(`  still wrong: ${f.verdict} ${f.name}`);
    for (const d of r.combined.diffs)
      appendAll(
        out,
        d.split('\n').map((l) => `  ${l}`),
      );
  }
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}
