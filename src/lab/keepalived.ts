/**
 * Real keepalived in the lab: every director with a keepalived.conf runs Debian's keepalived (VRRP only, `--vrrp`:
 * there is no IPVS here for its checker) with the scenario's own configuration, inside its namespace, on top of the
 * scenario built as usual (the port filters on the hosts included). After it has had time to elect, what the kernel
 * shows — which member's adverts (IP protocol 112, to 224.0.0.18 or the unicast peers) reached which peer's NIC, and
 * who holds each VIP — is compared with the simulator's VRRP model (`diagnose/vrrp.ts`): its advert walks, and the
 * holders those walks imply (the best member, plus every member that hears no advert of a better one: split brain).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIpv4, type Ipv4, parseIpv4 } from '../addr/ipv4.ts';
import {
  advertsOf,
  failover,
  garpFrame,
  successor,
  type VrrpGroup,
  type VrrpMember,
  vrrpGroups,
} from '../diagnose/vrrp.ts';
import { maxOf } from '../source/arrays.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import { openSession } from '../trace/session.ts';
import { type BgProcess, inNs, run, spawnBg } from './exec.ts';
import { type Lab, type LabOptions, labDown, labUp, stopCaptures } from './lab.ts';
import { whichCommand } from './preflight.ts';
import { readCaptures } from './probes.ts';

export interface AdvertComparison {
  readonly from: string;
  readonly to: string;
  /** 224.0.0.18 or the unicast peer's address. */
  readonly dst: string;
  readonly simReached: boolean;
  /** The drop the simulator names when the advert does not arrive. */
  readonly simDrop?: string;
  readonly kernelSeen: boolean;
  readonly agree: boolean;
}

export interface VrrpGroupComparison {
  readonly vrid: number;
  readonly vips: readonly string[];
  /** Who the simulator's advert walks say holds the VIPs once keepalived has elected (sorted). */
  readonly simHolders: readonly string[];
  /** Who holds them on the kernel after keepalived ran (sorted). */
  readonly kernelHolders: readonly string[];
  readonly agree: boolean;
}

/** Whether a node's NIC saw the new master's gratuitous ARP for a VIP after the failover. */
export interface GarpComparison {
  readonly vip: string;
  readonly node: string;
  readonly simReached: boolean;
  readonly kernelSeen: boolean;
  readonly agree: boolean;
}

/** The group after its master's keepalived was stopped: who took the VIPs over, and where its GARP arrived. */
export interface VrrpFailoverComparison {
  readonly vrid: number;
  /** The members whose keepalived was stopped (the holders after the election). */
  readonly stopped: readonly string[];
  /** The simulator's successor (`failover` in diagnose/vrrp.ts), and who holds the VIPs on the kernel afterwards. */
  readonly simHolders: readonly string[];
  readonly kernelHolders: readonly string[];
  /** The source MACs of the gratuitous ARPs the kernel saw for the VIPs (the VMAC with use_vmac). */
  readonly kernelGarpMacs: readonly string[];
  readonly simGarpMac?: string;
  readonly garp: readonly GarpComparison[];
  /** The new master's adverts to the other members (the stopped ones' NICs included), after the failover. */
  readonly adverts: readonly AdvertComparison[];
  readonly agree: boolean;
}

export interface VrrpLabReport {
  readonly scenario: string;
  readonly adverts: readonly AdvertComparison[];
  readonly groups: readonly VrrpGroupComparison[];
  /** With `failover`: each group once its master's keepalived has stopped (systemctl stop: SIGTERM). */
  readonly failovers?: readonly VrrpFailoverComparison[];
  /** keepalived's own log lines about state changes, per director. */
  readonly states: Readonly<Record<string, readonly string[]>>;
  readonly agree: boolean;
}

/** Why real keepalived cannot run for this scenario here, or undefined. */
export function keepalivedUnavailable(loaded: LoadedScenario): string | undefined {
  if (!whichCommand('keepalived')) return 'keepalived is not installed (Debian package keepalived)';
  if (!loaded.keepalivedFiles || loaded.keepalivedFiles.size === 0) return 'the scenario has no keepalived.conf';
  return undefined;
}

/** The members whose adverts count: the best one (the master keepalived elects), and those holding a VIP now. */
function senders(g: VrrpGroup): VrrpMember[] {
  const best = successor(g, []);
  const out = new Map<string, VrrpMember>();
  if (best) out.set(best.guest, best);
  for (const m of g.members) if (m.holds.length > 0) out.set(m.guest, m);
  return [...out.values()];
}

/**
 * Who holds the VIPs once VRRP has run, by the simulator's advert walks: the best member, and every other member
 * that hears no advert from a member better than itself (it declares the master dead and takes over too).
 */
function simHolders(loaded: LoadedScenario, g: VrrpGroup): string[] {
  const session = openSession(loaded);
  const best = successor(g, []);
  if (!best) return [];
  const rank = (m: VrrpMember) => [m.instance.priority, m.nic?.addrs[0]?.prefix.addr ?? 0] as const;
  const better = (a: VrrpMember, b: VrrpMember) => {
    const [pa, aa] = rank(a);
    const [pb, ab] = rank(b);
    return pa > pb || (pa === pb && aa > ab);
  };
  const holders = new Set<string>([best.guest]);
  // Iterate: a member that takes over sends adverts too, which may silence a worse one.
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of g.members) {
      if (holders.has(m.guest) || !m.nic) continue;
      const hears = g.members.some(
        (s) =>
          holders.has(s.guest) &&
          better(s, m) &&
          advertsOf(session, g, s).some((r) => r.to.guest === m.guest && r.reached),
      );
      if (!hears) {
        holders.add(m.guest);
        changed = true;
      }
    }
  }
  return [...holders].sort();
}

function isAdvertFrom(frame: { payload: unknown }, src: Ipv4): boolean {
  const p = frame.payload as { kind?: string; protocol?: number; src?: number };
  return p.kind === 'ipv4' && p.protocol === 112 && p.src === src;
}

async function vipsHeld(lab: Lab, guest: string, vips: readonly Ipv4[]): Promise<boolean> {
  const ns = lab.plan.nsOf.get(guest);
  if (!ns) return false;
  const r = await run(['ip', '-n', ns, '-o', '-4', 'addr', 'show'], { allowFail: true });
  const have = new Set(
    [...r.stdout.matchAll(/ inet (\d+\.\d+\.\d+\.\d+)\//g)].map((m) => parseIpv4(m[1]!)).filter((x) => x !== undefined),
  );
  return vips.some((v) => have.has(v));
}

/** Runs the scenario with real keepalived on its directors and compares VRRP on the kernel with the simulator. */
export async function runVrrpLab(
  loaded: LoadedScenario,
  o: LabOptions & { readonly settleMs?: number; readonly failover?: boolean } = {},
): Promise<VrrpLabReport> {
  const why = keepalivedUnavailable(loaded);
  if (why) throw new Error(`real keepalived cannot run: ${why}`);
  const groups = vrrpGroups(loaded);
  const advertInt = Math.max(1, maxOf(groups.flatMap((g) => g.members.map((m) => m.instance.advertInt))));
  // A backup declares the master dead after 3 advert intervals plus its skew (< 1 s); then adverts settle.
  const settleMs = o.settleMs ?? (3 * advertInt + 2) * 1000;
  const lab = await labUp(loaded, { ...o, directorMode: o.directorMode ?? { kind: 'fresh' }, runsKeepalived: true });
  const states: Record<string, string[]> = {};
  const held = new Map<string, boolean>();
  const heldAfter = new Map<string, boolean>();
  let frames: ReturnType<typeof readCaptures>['frames'] = [];
  let failoverAtNs: bigint | undefined;
  const procs = new Map<string, BgProcess>();
  try {
    // keepalived owns the VIPs: it adds them when it becomes master and removes them when it stops (an address it
    // did not add it leaves alone), so the lab's copies from the scenario's ip addr go before it starts. With
    // use_vmac it also makes its own `vrrp.N@eth0` macvlan and puts the VIPs there: the lab's one goes too.
    for (const g of groups)
      for (const m of g.members) {
        const ns = lab.plan.nsOf.get(m.guest);
        if (!ns) continue;
        for (const i of m.node.interfaces.values()) {
          if (m.instance.useVmac && i.kind === 'macvlan' && i.mac === m.instance.vmac) {
            await run(['ip', '-n', ns, 'link', 'del', i.name], { allowFail: true });
            continue;
          }
          for (const a of i.addrs)
            if (g.vips.includes(a.prefix.addr))
              await run(
                ['ip', '-n', ns, 'addr', 'del', `${formatIpv4(a.prefix.addr)}/${a.prefix.len}`, 'dev', i.name],
                {
                  allowFail: true,
                },
              );
        }
      }
    await Promise.all(
      [...(loaded.keepalivedFiles ?? [])].map(async ([guest, f]) => {
        const ns = lab.plan.nsOf.get(guest);
        if (!ns) return;
        const conf = join(lab.workDir, `keepalived-${guest}.conf`);
        writeFileSync(conf, f.text);
        const log = join(lab.workDir, `keepalived-${guest}.log`);
        const p = await spawnBg(
          `keepalived ${guest}`,
          inNs(ns, [
            'keepalived',
            '--dont-fork',
            '--log-console',
            '--vrrp',
            '--use-file',
            conf,
            '--pid',
            join(lab.workDir, `keepalived-${guest}.pid`),
            '--vrrp_pid',
            join(lab.workDir, `keepalived-vrrp-${guest}.pid`),
          ]),
          { logFile: log, ready: /Entering (BACKUP|MASTER|FAULT) STATE|Startup complete/ },
        );
        lab.procs.push(p);
        procs.set(guest, p);
        states[guest] = [log];
      }),
    );
    await new Promise((r) => setTimeout(r, settleMs));
    for (const g of groups)
      for (const m of g.members) held.set(`${g.vrid} ${m.guest}`, await vipsHeld(lab, m.guest, g.vips));
    if (o.failover) {
      // systemctl stop keepalived on every holder: SIGTERM, keepalived drops its VIPs and sends a priority-0 advert;
      // a backup takes over at once (RFC 3768 §6.4.3) and sends its gratuitous ARPs.
      const holders = new Set(
        groups.flatMap((g) => g.members.filter((m) => held.get(`${g.vrid} ${m.guest}`))).map((m) => m.guest),
      );
      failoverAtNs = BigInt(Date.now()) * 1_000_000n;
      await Promise.all([...holders].map((h) => (procs.get(h) ? stopTerm(procs.get(h)!) : undefined)));
      await new Promise((r) => setTimeout(r, settleMs));
      for (const g of groups)
        for (const m of g.members) heldAfter.set(`${g.vrid} ${m.guest}`, await vipsHeld(lab, m.guest, g.vips));
    }
    await stopCaptures(lab);
    frames = readCaptures(lab).frames;
    for (const [guest, [log]] of Object.entries(states))
      states[guest] = readFileSync(log!, 'utf8')
        .split('\n')
        .filter((l) => /Entering|received lower priority|received higher priority|FAULT/.test(l))
        .map((l) => l.trim());
  } finally {
    await labDown(lab);
  }
  const session = openSession(loaded);
  const adverts: AdvertComparison[] = [];
  const out: VrrpGroupComparison[] = [];
  for (const g of groups) {
    for (const from of senders(g)) {
      const src = from.nic?.addrs[0]?.prefix.addr;
      if (src === undefined) continue;
      for (const r of advertsOf(session, g, from)) {
        const at = r.to.nic ? `${r.to.guest}:${r.to.nic.name}` : undefined;
        const kernelSeen = frames.some((f) => f.point === at && isAdvertFrom(f.frame, src));
        adverts.push({
          from: from.guest,
          to: r.to.guest,
          dst: r.dst,
          simReached: r.atNic,
          ...(r.drop ? { simDrop: dropText(r.drop) } : {}),
          kernelSeen,
          agree: kernelSeen === r.atNic,
        });
      }
    }
    const sim = simHolders(loaded, g);
    const kernel = g.members
      .filter((m) => held.get(`${g.vrid} ${m.guest}`))
      .map((m) => m.guest)
      .sort();
    out.push({
      vrid: g.vrid,
      vips: g.vips.map((v) => formatIpv4(v)),
      simHolders: sim,
      kernelHolders: kernel,
      agree: sim.join(',') === kernel.join(','),
    });
  }
  const failovers =
    failoverAtNs === undefined
      ? undefined
      : groups.map((g) => compareFailover(loaded, g, held, heldAfter, frames, failoverAtNs!));
  return {
    scenario: loaded.scenario.name,
    adverts,
    groups: out,
    ...(failovers ? { failovers } : {}),
    states,
    agree: adverts.every((a) => a.agree) && out.every((g) => g.agree) && (failovers ?? []).every((f) => f.agree),
  };
}

function dropText(d: NonNullable<ReturnType<typeof advertsOf>[number]['drop']>): string {
  return `${d.hop.place.node}:${d.hop.place.iface ?? ''} ${d.step.chain} "${d.step.ruleText}"`;
}

/** SIGTERM, as `systemctl stop keepalived` sends it, and wait (SIGKILL after 5 s). */
async function stopTerm(p: BgProcess): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(t);
}

/**
 * The kernel after the failover against the simulator's (`failover` of diagnose/vrrp.ts, from the cluster as the
 * election left it: the holders on the kernel): who holds the VIPs, and which nodes' NICs the gratuitous ARP reached.
 */
function compareFailover(
  loaded: LoadedScenario,
  g: VrrpGroup,
  held: ReadonlyMap<string, boolean>,
  heldAfter: ReadonlyMap<string, boolean>,
  frames: ReturnType<typeof readCaptures>['frames'],
  t0: bigint,
): VrrpFailoverComparison {
  const stopped = g.members.filter((m) => held.get(`${g.vrid} ${m.guest}`)).map((m) => m.guest);
  const kernelHolders = g.members
    .filter((m) => heldAfter.get(`${g.vrid} ${m.guest}`))
    .map((m) => m.guest)
    .sort();
  // The simulator's failover of the same members: those that held the VIPs once keepalived had elected.
  const f = failover(loaded, g, stopped);
  const simHolders = f ? [f.takeover.guest] : [];
  const garps = frames.filter((x) => {
    const p = x.frame.payload as { kind?: string; spa?: number };
    return x.timeNs >= t0 && p.kind === 'arp' && g.vips.includes(p.spa as Ipv4);
  });
  const kernelGarpMacs = [...new Set(garps.map((x) => x.frame.src))].sort();
  const garp: GarpComparison[] = [];
  const watched = [...loaded.scenario.nodes.values()].filter(
    (n) => n.kind !== 'host' && n.name !== f?.takeover.guest && !stopped.includes(n.name),
  );
  for (const vip of g.vips)
    for (const n of watched) {
      const simReached = f?.garp.find((x) => x.vip === vip)?.walk?.reached.has(n.name) ?? false;
      const kernelSeen = garps.some(
        (x) => x.point.startsWith(`${n.name}:`) && (x.frame.payload as { spa?: number }).spa === vip,
      );
      garp.push({ vip: formatIpv4(vip), node: n.name, simReached, kernelSeen, agree: simReached === kernelSeen });
    }
  // The new master's adverts, walked in the cluster after the failover.
  const adverts: AdvertComparison[] = [];
  const src = f?.takeover.nic?.addrs[0]?.prefix.addr;
  if (f && src !== undefined)
    for (const r of advertsOf(openSession(f.loaded), g, f.takeover)) {
      const at = r.to.nic ? `${r.to.guest}:${r.to.nic.name}` : undefined;
      const kernelSeen = frames.some((x) => x.timeNs >= t0 && x.point === at && isAdvertFrom(x.frame, src));
      adverts.push({
        from: f.takeover.guest,
        to: r.to.guest,
        dst: r.dst,
        simReached: r.atNic,
        ...(r.drop ? { simDrop: dropText(r.drop) } : {}),
        kernelSeen,
        agree: kernelSeen === r.atNic,
      });
    }
  return {
    vrid: g.vrid,
    stopped,
    simHolders,
    kernelHolders,
    kernelGarpMacs,
    ...(f ? { simGarpMac: garpFrame(f.takeover, g.vips[0]!).src } : {}),
    garp,
    adverts,
    agree:
      simHolders.join(',') === kernelHolders.join(',') &&
      garp.every((x) => x.agree) &&
      adverts.every((x) => x.agree) &&
      (f === undefined ||
        kernelGarpMacs.length === 0 ||
        kernelGarpMacs.includes(garpFrame(f.takeover, g.vips[0]!).src)),
  };
}
