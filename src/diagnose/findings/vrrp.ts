/** keepalived VRRP pairs: split brain, adverts that do not reach the peer, and what breaks after a failover. */
import { formatIpv4, type Ipv4 } from '../../addr/ipv4.ts';
import { renderOriginChain } from '../../source/origin.ts';
import type { LoadedScenario } from '../../topology/load-scenario.ts';
import type { FrameWalk } from '../../trace/frame-walk.ts';
import { diagnosisPlan } from '../../trace/probe-plan.ts';
import { openSession, runProbe } from '../../trace/session.ts';
import type { FixProposal } from '../types.ts';
import { type AdvertResult, advertsOf, failover, holdersOf, type VrrpGroup, vrrpGroups } from '../vrrp.ts';
import type { Detected, DiagnoseContext, FindingKind } from './kind.ts';
import { pveDropFixes } from './pve-drop-fixes.ts';

/** Fixes for the drops that lost adverts or gratuitous ARP met (on Proxmox nodes: .fw edits), without repeats. */
function dropFixes(ctx: DiagnoseContext, drops: readonly (FrameWalk['drops'][number] | undefined)[]): FixProposal[] {
  const out = new Map<string, FixProposal>();
  for (const d of drops) if (d) for (const f of pveDropFixes(ctx, d.hop, d.step)) if (!out.has(f.id)) out.set(f.id, f);
  return [...out.values()];
}

function dropText(a: AdvertResult): string {
  if (!a.drop)
    return a.walk ? 'it reaches no stack of the peer (no drop on the way: it is not forwarded there)' : a.dst;
  const h = a.drop.hop;
  const where = h.place.iface ? `${h.place.node}:${h.place.iface}` : h.place.node;
  return `dropped at ${where} by ${a.drop.step.family === 'bridge' ? 'ebtables' : 'iptables'} ${a.drop.step.chain} "${a.drop.step.ruleText}"`;
}

function advertWords(a: AdvertResult): string {
  return `${a.from.guest}'s VRRP adverts (vrid ${a.from.instance.virtualRouterId}, IP protocol 112 to ${a.dst}${a.from.instance.useVmac ? `, from VMAC ${a.from.instance.vmac}` : ''})`;
}

/** Results per group, computed once per loaded scenario. */
const ADVERTS = new WeakMap<LoadedScenario, Map<VrrpGroup, AdvertResult[]>>();
function advertsOfHolders(loaded: LoadedScenario, g: VrrpGroup): AdvertResult[] {
  let m = ADVERTS.get(loaded);
  if (!m) {
    m = new Map();
    ADVERTS.set(loaded, m);
  }
  let r = m.get(g);
  if (!r) {
    const session = openSession(loaded);
    r = g.members.filter((x) => x.holds.length > 0).flatMap((x) => advertsOf(session, g, x));
    m.set(g, r);
  }
  return r;
}

function splitBrainGroups(loaded: LoadedScenario): { g: VrrpGroup; vip: Ipv4; holders: string[] }[] {
  const out: { g: VrrpGroup; vip: Ipv4; holders: string[] }[] = [];
  for (const g of vrrpGroups(loaded))
    for (const vip of g.vips) {
      const holders = holdersOf(g, vip).map((m) => m.guest);
      if (holders.length > 1) {
        out.push({ g, vip, holders });
        break;
      }
    }
  return out;
}

export const vrrpSplitBrain: FindingKind = {
  code: 'vrrp-split-brain',
  severity: 'error',
  title: 'Two keepalived nodes hold the same VIP (split brain)',
  source: 'static',
  needs: 'keepalived.conf on both members of a VRRP pair and `ip addr` showing the VIP on both',
  check(ctx) {
    const out: Detected[] = [];
    for (const { g, vip, holders } of splitBrainGroups(ctx.loaded)) {
      const lost = advertsOfHolders(ctx.loaded, g).filter((a) => !a.reached);
      const why =
        lost.length > 0
          ? lost.map((a) => `${advertWords(a)} do not reach ${a.to.guest}: ${dropText(a)}`).join('; ')
          : 'every advert reaches the peer in the model: check the priorities, virtual_router_id and authentication of the instances';
      const first = g.members[0]!.instance;
      const culprit = lost.find((a) => a.drop)?.drop?.step.origin ?? {
        kind: 'file' as const,
        label: `vrrp_instance ${first.name}`,
        pos: first.pos,
      };
      out.push({
        finding: {
          code: this.code,
          severity: this.severity,
          // The lost adverts are part of the title: once they pass, VRRP itself ends the split brain (the holder
          // with the lower priority hears a better master and steps back), so a fix that lets them through clears
          // this finding and what remains is a split brain of another cause.
          title: `${holders.join(' and ')} ${holders.length === 2 ? 'both' : 'all'} hold VIP ${formatIpv4(vip)} (vrid ${g.vrid})${lost.length > 0 ? `: adverts ${[...new Set(lost.map((a) => `${a.from.guest} → ${a.to.guest}`))].join(', ')} lost` : ''}`,
          explanation: `A VRRP backup that hears no advert from its master for three advert intervals becomes master itself and adds the VIPs: now ${holders.join(' and ')} answer ARP for ${formatIpv4(vip)}, and the LAN's caches flip between their MACs. Why: ${why}.`,
          where: holders.join(','),
          culprit,
        },
        fixes: dropFixes(
          ctx,
          lost.map((a) => a.drop),
        ),
      });
    }
    return out;
  },
};

export const vrrpAdvertsDropped: FindingKind = {
  code: 'vrrp-adverts-dropped',
  severity: 'error',
  title: "The VRRP master's adverts do not reach its backup",
  source: 'static',
  needs: 'keepalived.conf on both members of a VRRP pair; the advert is walked through the model from the VIP holder',
  check(ctx) {
    const out: Detected[] = [];
    const split = new Set(splitBrainGroups(ctx.loaded).map((s) => s.g));
    for (const g of vrrpGroups(ctx.loaded)) {
      if (split.has(g)) continue; // the split brain names the same cause
      for (const a of advertsOfHolders(ctx.loaded, g)) {
        if (a.reached) continue;
        const h = a.drop?.hop;
        out.push({
          finding: {
            code: this.code,
            severity: this.severity,
            title: `${advertWords(a)} do not reach ${a.to.guest}`,
            explanation: `${advertWords(a)}: ${dropText(a)}. ${a.to.guest} hears no master, becomes master after three advert intervals and adds the VIPs too: split brain.`,
            where: h ? (h.place.iface ? `${h.place.node}:${h.place.iface}` : h.place.node) : a.from.guest,
            culprit: a.drop?.step.origin ?? {
              kind: 'file',
              label: `vrrp_instance ${a.from.instance.name}`,
              pos: a.from.instance.pos,
            },
          },
          fixes: dropFixes(ctx, [a.drop]),
        });
      }
    }
    return out;
  },
};

export const vrrpFailoverBroken: FindingKind = {
  code: 'vrrp-failover-broken',
  severity: 'error',
  title: 'After a failover the VIP does not work',
  source: 'static',
  needs:
    'keepalived.conf on both members of a VRRP pair: the cluster is traced as it would be once the master is gone (the backup holds the VIPs and sends gratuitous ARP)',
  check(ctx) {
    return failoverFindings(ctx).filter((d) => d.finding.code === this.code);
  },
};

export const vrrpBackupAdvertsDropped: FindingKind = {
  code: 'vrrp-backup-adverts-dropped',
  severity: 'warning',
  title: "After a failover the new master's adverts do not reach the old one",
  source: 'static',
  needs:
    'keepalived.conf on both members of a VRRP pair; the adverts of the backup, once it has taken over, are walked through the model',
  check(ctx) {
    return failoverFindings(ctx).filter((d) => d.finding.code === this.code);
  },
};

const FAILOVER = new WeakMap<LoadedScenario, Detected[]>();

function failoverFindings(ctx: DiagnoseContext): Detected[] {
  const cached = FAILOVER.get(ctx.loaded);
  if (cached) return cached;
  const out: Detected[] = [];
  const split = new Set(splitBrainGroups(ctx.loaded).map((s) => s.g));
  for (const g of vrrpGroups(ctx.loaded)) {
    if (split.has(g) || g.members.length < 2) continue;
    const f = failover(ctx.loaded, g);
    if (!f) continue;
    const t = f.takeover;
    const lead = `after failover (${f.failed.map((m) => m.guest).join(', ')} gone, ${t.guest} holds ${g.vips.map((v) => formatIpv4(v)).join(', ')})`;
    // 1. The gratuitous ARP.
    for (const gp of f.garp) {
      if (gp.missed.length === 0) continue;
      const drop = gp.walk?.drops[0];
      const h = drop?.hop;
      out.push({
        finding: {
          code: 'vrrp-failover-broken',
          severity: 'error',
          title: `${lead}: ${t.guest}'s gratuitous ARP for ${formatIpv4(gp.vip)} does not reach ${gp.missed.join(', ')}`,
          explanation: `On takeover keepalived sends gratuitous ARP for each VIP${t.instance.useVmac ? ` from its VMAC ${t.instance.vmac}` : ''} so that caches move to the new master; ${drop ? `it is dropped at ${h!.place.node}:${h!.place.iface ?? ''} by ${drop.step.chain} "${drop.step.ruleText}"` : 'it reaches no stack of theirs'}. ${gp.missed.join(', ')} ${gp.missed.length === 1 ? 'keeps' : 'keep'} sending VIP traffic to the failed master's MAC until the entry expires — and ARP replies from the same source meet the same rule.`,
          where: h ? `${h.place.node}:${h.place.iface ?? ''}` : t.guest,
          ...(drop ? { culprit: drop.step.origin } : {}),
        },
        fixes: dropFixes(ctx, gp.walk?.drops ?? []),
      });
    }
    // 2. The VIP's own probes on the failed-over cluster.
    if (out.length === 0) {
      const session = openSession(f.loaded);
      // The deciding probes of the VIPs (the scheduler's choice, each real server, ARP), from the shared plan.
      const probes = diagnosisPlan(f.loaded)
        .filter((p) => p.decisive)
        .map((p) => p.spec)
        .filter((p) => (p.kind === 'arp' ? g.vips.includes(p.target) : g.vips.includes(p.to)));
      for (const p of probes) {
        const tr = runProbe(session, p);
        if (tr.disposition === 'replied') continue;
        const why = ctx.explain?.(f.loaded, tr);
        out.push({
          finding: {
            code: 'vrrp-failover-broken',
            severity: 'error',
            title: `${lead}: probe ${p.name} fails — ${why ? why.finding.title : tr.summary}`,
            explanation: `The cluster traced as it is once ${t.guest} has taken the VIPs over: ${tr.summary}.${why ? ` ${why.finding.explanation}` : ''}${why?.finding.culprit ? ` (culprit: ${renderOriginChain(why.finding.culprit, ' ← ')})` : ''}`,
            where: why?.finding.where ?? t.guest,
            ...(why?.finding.culprit
              ? { culprit: why.finding.culprit }
              : tr.end.origin
                ? { culprit: tr.end.origin }
                : {}),
          },
          fixes: [],
        });
        break; // one failure, one error: the first failing probe names the cause
      }
    }
    // 3. The new master's adverts toward the members that failed (they come back as backups or preempt).
    for (const a of advertsOf(openSession(f.loaded), g, t)) {
      if (a.reached) continue;
      out.push({
        finding: {
          code: 'vrrp-backup-adverts-dropped',
          severity: 'warning',
          title: `${lead}: ${advertWords(a)} do not reach ${a.to.guest}`,
          explanation: `${advertWords(a)}: ${dropText(a)}. When ${a.to.guest} comes back it hears no master and claims the VIPs as well${a.to.instance.nopreempt ? ' (nopreempt does not help: it hears nobody to defer to)' : ''}: split brain until its own adverts win.`,
          where: a.drop?.hop ? `${a.drop.hop.place.node}:${a.drop.hop.place.iface ?? ''}` : t.guest,
          ...(a.drop ? { culprit: a.drop.step.origin } : {}),
        },
        fixes: dropFixes(ctx, [a.drop]),
      });
    }
  }
  FAILOVER.set(ctx.loaded, out);
  return out;
}
