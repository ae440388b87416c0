/**
 * `pve-host-forward-drop`: on a Proxmox node with proxmox-firewall (host.fw `nftables: 1`), traffic the node routes —
 * e.g. a DR real server's replies sent through the node as its gateway — dropped in `inet proxmox-firewall`'s
 * `forward` chain: by the datacenter's `policy_forward: DROP` (`cluster-forward`), a FORWARD rule, or the conntrack
 * check (`ct state invalid` → `invalid-conntrack`: a reply whose request the node never routed — the director sent
 * it to the real server over a bridge — is INVALID to its conntrack). FORWARD rules exist only with nftables.
 * The fix, written into host.fw and verified by the re-trace: a `FORWARD ACCEPT` rule for exactly that traffic in
 * `host-forward` (before the cluster chain and its policy), and for an INVALID drop also
 * `nf_conntrack_allow_invalid: 1`, which lets INVALID packets on to the rules (node-wide: said in what it keeps).
 */
import { formatIpv4 } from '../../addr/ipv4.ts';
import { addFwRule, setFwOption } from '../../proxmox/fw-edit.ts';
import { shellCommand } from '../../source/shell.ts';
import type { NetfilterStep } from '../../trace/types.ts';
import { TCP_ACK } from '../../wire/types.ts';
import { allVips, dropStep, endHop } from '../facts.ts';
import type { FindingKind } from './kind.ts';
import { pveHostFwFix } from './pve-fix.ts';

function isForwardStep(step: NetfilterStep): boolean {
  return step.hook === 'FORWARD' && (step.nft?.chain.startsWith('inet proxmox-firewall/') ?? false);
}

export const pveHostForwardDrop: FindingKind = {
  code: 'pve-host-forward-drop',
  severity: 'error',
  title:
    "A Proxmox node's nftables firewall drops traffic it routes (policy_forward, FORWARD rules, INVALID conntrack)",
  source: 'trace',
  needs:
    'a trace dropped in the forward chain of inet proxmox-firewall on a Proxmox node with host.fw nftables: 1 (cluster-forward, host-forward or invalid-conntrack)',
  detect(ctx, trace) {
    if (trace.disposition !== 'dropped-by-filter') return undefined;
    const hop = endHop(trace);
    const pve = hop && ctx.loaded.proxmox?.get(hop.place.node);
    const step = hop && dropStep(hop);
    if (!hop || !pve?.nft || !step || !isForwardStep(step)) return undefined;
    const p = hop.frame.payload;
    if (p.kind !== 'ipv4') return undefined;
    const l4 = p.payload;
    const ports = l4.kind === 'tcp' || l4.kind === 'udp' ? l4 : undefined;
    const proto = l4.kind === 'tcp' ? 'tcp' : l4.kind === 'udp' ? 'udp' : undefined;
    // a reply (from a VIP, or a TCP segment with ACK) is let through by its source, a request by its destination
    const reply = allVips(ctx.loaded).has(p.src) || (l4.kind === 'tcp' && (l4.flags & TCP_ACK) !== 0);
    const addr = formatIpv4(reply ? p.src : p.dst);
    const port = ports && (reply ? ports.srcPort : ports.dstPort);
    const rule =
      `FORWARD ACCEPT ${reply ? '-source' : '-dest'} ${addr}` +
      (proto && port !== undefined ? ` -p ${proto} ${reply ? '-sport' : '-dport'} ${port}` : '');
    const invalid = step.chain === 'invalid-conntrack';
    const node = pve.files.nodeName;
    const api = `/nodes/${node}/firewall`;
    const fix = pveHostFwFix(hop.place.node, pve, {
      id: `pve-host-forward-accept-${node}-${addr}${port !== undefined ? `-${port}` : ''}`,
      title: `On ${hop.place.node}: ${rule} in host.fw${invalid ? ', and nf_conntrack_allow_invalid: 1' : ''}`,
      keeps: `every other FORWARD rule and the datacenter's policy_forward for all other routed traffic, the INPUT/OUTPUT rules and every guest firewall${invalid ? '; loses the node-wide drop of conntrack-INVALID packets (host-in, host-forward and the cluster chains still judge them)' : ''}`,
      protectionRank: invalid ? 30 : 70,
      edit: (t) => {
        const withRule = addFwRule(t, `${rule} # LVS ${reply ? 'replies' : 'requests'} routed by this node`);
        return invalid ? setFwOption(withRule, 'nf_conntrack_allow_invalid', '1') : withRule;
      },
      pvesh: [
        ...(invalid ? [shellCommand('pvesh', 'set', `${api}/options`, '--nf_conntrack_allow_invalid', '1')] : []),
        shellCommand(
          'pvesh',
          'create',
          `${api}/rules`,
          ...['--type', 'forward', '--action', 'ACCEPT', `--${reply ? 'source' : 'dest'}`, addr],
          ...(proto && port !== undefined ? ['--proto', proto, `--${reply ? 'sport' : 'dport'}`, String(port)] : []),
          ...['--pos', '0'],
        ),
      ],
    });
    const why = invalid
      ? `its conntrack calls the packet INVALID (${reply ? 'a reply whose request this node never routed: the request reached the real server over a bridge, the reply comes back through the node as its gateway' : 'the packet belongs to no connection the node knows'}), and the forward chain sends INVALID to invalid-conntrack, which drops (host.fw nf_conntrack_allow_invalid is 0)`
      : `${step.chain === 'cluster-forward' ? "the datacenter's FORWARD policy" : 'a FORWARD rule'} drops it`;
    return {
      finding: {
        code: this.code,
        severity: this.severity,
        title: `${hop.place.node} drops the ${reply ? 'replies' : 'traffic'} it routes (${formatIpv4(p.src)} → ${formatIpv4(p.dst)}): ${step.nft!.chain} "${step.ruleText}"`,
        explanation:
          `Proxmox node ${hop.place.node} runs proxmox-firewall (host.fw nftables: 1), whose forward chain judges every packet the node routes ` +
          `(pve-firewall has no FORWARD rules; proxmox-firewall has, and the datacenter's policy_forward). Here ${why}. ` +
          `A FORWARD ACCEPT rule in host.fw for exactly this traffic comes before the cluster chain and its policy.`,
        where: `${hop.place.node}:${hop.place.iface ?? ''}`,
        culprit: step.origin,
      },
      fixes: fix ? [fix] : [],
    };
  },
};
