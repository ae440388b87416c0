/**
 * `lvsdoctor proxmox compile <pve-dir>` and `lvsdoctor proxmox check <pve-dir> --vip … --director … --real-server …`.
 * `<pve-dir>` is a collector bundle of a Proxmox host, or a copy of a Proxmox node's /etc/pve (read-only): `firewall/cluster.fw`, `firewall/<vmid>.fw`,
 * `nodes/<node>/host.fw`, `nodes/<node>/qemu-server/<vmid>.conf`, `nodes/<node>/lxc/<vmid>.conf`, `corosync.conf`.
 *
 * Exit codes: 0 no finding (or printed); 1 findings; 2 bad input (issues with file:line on stderr).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { writePcap } from '../capture/pcap.ts';
import { readBundle } from '../collect/bundle.ts';
import { isBundlePath } from '../collect/import.ts';
import { isProxmoxBundle, pveFilesFromBundle } from '../collect/proxmox-bundle.ts';
import { diagnosePveLvs, type PveLvsMember, renderPveLvsReport } from '../diagnose/proxmox-lvs.ts';
import {
  compilePveFirewall,
  renderPveEbtablesRestore,
  renderPveIpsetRestore,
  renderPveRestore,
} from '../proxmox/compile.ts';
import { compileProxmoxFirewallNft, renderPveNft } from '../proxmox/compile-nft.ts';
import { type PveGuestSource, type PveNodeFiles, pveNodeInput } from '../proxmox/node-files.ts';
import { appendAll } from '../source/arrays.ts';
import { type Issue, issue } from '../source/issue.ts';
import { filePos } from '../source/origin.ts';
import { type Io, reportIssues, UsageError } from './io.ts';

/** Reads a copy of /etc/pve for one node. */
export function readPveDir(
  io: Io,
  dir: string,
  opts: { node?: string; localNetwork?: string },
): { files: PveNodeFiles; issues: Issue[] } {
  const cwd = io.cwd ?? process.cwd();
  const root = isAbsolute(dir) ? dir : join(cwd, dir);
  const issues: Issue[] = [];
  if (isBundlePath(root)) {
    // a bundle the collector wrote on a Proxmox host
    const b = readBundle(root);
    if (!b.value) {
      appendAll(issues, b.issues);
      throw new UsageError(`"${dir}" is not a readable bundle: ${b.issues.map((i) => i.message).join('; ')}`);
    }
    if (!isProxmoxBundle(b.value))
      throw new UsageError(`bundle "${dir}" was not collected on a Proxmox VE host (no /etc/pve)`);
    const r = pveFilesFromBundle(b.value, opts.localNetwork);
    return { files: r.files, issues: [...b.issues.filter((i) => i.severity !== 'error'), ...r.issues] };
  }
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new UsageError(`"${dir}" is not a directory (expected a copy of /etc/pve)`);
  const text = (rel: string) => {
    const p = join(root, rel);
    return existsSync(p) && statSync(p).isFile() ? { file: rel, text: readFileSync(p, 'utf8') } : undefined;
  };
  const nodesDir = join(root, 'nodes');
  const nodes = existsSync(nodesDir)
    ? readdirSync(nodesDir)
        .filter((n) => statSync(join(nodesDir, n)).isDirectory())
        .sort()
    : [];
  let node = opts.node;
  if (node === undefined) {
    if (nodes.length !== 1)
      throw new UsageError(
        nodes.length === 0
          ? `"${dir}" has no nodes/<name>/ folder (expected a copy of /etc/pve)`
          : `"${dir}" holds several nodes (${nodes.join(', ')}): name one with --node`,
      );
    node = nodes[0]!;
  } else if (!nodes.includes(node))
    throw new UsageError(`"${dir}" has no node ${node} (nodes: ${nodes.join(', ') || 'none'})`);
  const guests: PveGuestSource[] = [];
  const guestFw = new Map<string, { file: string; text: string }>();
  for (const [kind, sub] of [
    ['qemu', 'qemu-server'],
    ['lxc', 'lxc'],
  ] as const) {
    const d = join(nodesDir, node, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort()) {
      const m = /^(\d+)\.conf$/.exec(f);
      if (!m) continue;
      guests.push({ kind, vmid: m[1]!, conf: text(`nodes/${node}/${sub}/${f}`)! });
      const fw = text(`firewall/${m[1]}.fw`);
      if (fw) guestFw.set(m[1]!, fw);
    }
  }
  const cluster = text('firewall/cluster.fw');
  if (!cluster)
    issues.push(
      issue(
        'pve-no-cluster-fw',
        'no firewall/cluster.fw: the firewall is off for the whole cluster',
        filePos('firewall/cluster.fw', 0),
        'warning',
      ),
    );
  const host = text(`nodes/${node}/host.fw`);
  const corosync = text('corosync.conf');
  if (opts.localNetwork === undefined && !/^\s*local_network\s/im.test(cluster?.text ?? ''))
    issues.push(
      issue(
        'pve-local-network',
        'local_network unknown (no --local-network, no cluster.fw alias): assumed 127.0.0.0/8 as pve-firewall does when it cannot find the node’s network',
        filePos('firewall/cluster.fw', 0),
        'info',
      ),
    );
  return {
    files: {
      nodeName: node,
      ...(cluster ? { cluster } : {}),
      ...(host ? { host } : {}),
      guestFw,
      guests,
      ...(corosync ? { corosync } : {}),
      ...(opts.localNetwork !== undefined ? { localNetwork: opts.localNetwork } : {}),
    },
    issues,
  };
}

export function runProxmoxCompile(
  io: Io,
  dir: string,
  opts: { node?: string; localNetwork?: string; output?: string },
): number {
  const { files, issues } = readPveDir(io, dir, opts);
  const r = pveNodeInput(files);
  const wantsNft = r.value !== undefined && Boolean(Number(r.value.host.options.nftables ?? 0));
  const output = opts.output ?? (wantsNft ? 'nftables' : 'iptables');
  if (output === 'nftables' && r.value !== undefined) {
    // proxmox-firewall (nftables backend): the host/cluster and guest table commands, to load after its static skeleton
    const nft = compileProxmoxFirewallNft(r.value);
    // rules only pve-firewall's parser refuses are compiled here: their reader warning would say otherwise
    const accepted = new Set(nft.acceptedDespiteErrors.map((x) => `${x.pos.file}:${x.pos.line}`));
    const readIssues = [...issues, ...r.issues].filter(
      (i) => !(i.code === 'pve-fw-rule-errors' && i.pos && accepted.has(`${i.pos.file}:${i.pos.line}`)),
    );
    if (reportIssues(io, readIssues)) return 2;
    reportIssues(io, nft.issues);
    if (!wantsNft)
      reportIssues(io, [
        issue(
          'pve-nft-not-selected',
          'host.fw does not set nftables: 1: pve-firewall (iptables) is the backend on this node; printing the nftables form anyway',
          filePos(files.host?.file ?? 'host.fw', 0),
          'info',
        ),
      ]);
    io.stdout(renderPveNft(nft));
    return 0;
  }
  if (reportIssues(io, [...issues, ...r.issues])) return 2;
  const out = compilePveFirewall(r.value!);
  reportIssues(io, out.issues);
  if (wantsNft)
    reportIssues(io, [
      issue(
        'pve-nft-selected',
        'host.fw sets nftables: 1: proxmox-firewall (nftables) filters on this node and pve-firewall removes its iptables rules (see --output nftables)',
        filePos(files.host?.file ?? 'host.fw', 0),
        'info',
      ),
    ]);
  switch (output) {
    case 'iptables':
      io.stdout(renderPveRestore(out.filter4, 'filter'));
      break;
    case 'ip6tables':
      io.stdout(renderPveRestore(out.filter6, 'filter'));
      break;
    case 'ipset':
      io.stdout(renderPveIpsetRestore(out.ipsets));
      break;
    case 'ebtables':
      io.stdout(renderPveEbtablesRestore(out.ebtables));
      break;
    default:
      throw new UsageError(`--output ${output}: expected iptables, ip6tables, ipset, ebtables or nftables`);
  }
  return 0;
}

function member(text: string, what: string): PveLvsMember {
  const m = /^(\d+)(?::(net\d+))?(?:@(\d+\.\d+\.\d+\.\d+))?$/.exec(text);
  if (!m) throw new UsageError(`${what} '${text}': expected VMID[:netN][@own-IPv4], e.g. 100:net0@192.0.2.11`);
  return { vmid: m[1]!, ...(m[2] ? { netid: m[2] } : {}), ...(m[3] ? { ip: m[3] } : {}) };
}

export interface ProxmoxCheckOptions {
  readonly node?: string;
  readonly localNetwork?: string;
  readonly vip: string;
  readonly mode: string;
  readonly director: readonly string[];
  readonly realServer: readonly string[];
  readonly client?: string;
  readonly port?: string;
  readonly vmacVrid?: string;
  readonly json?: boolean;
  /** Write the .fw files of all fixes applied together here (paths as in /etc/pve). */
  readonly fixDir?: string;
  /** Write one pcap per bridge port a probe was seen on. */
  readonly pcapDir?: string;
}

export function runProxmoxCheck(io: Io, dir: string, opts: ProxmoxCheckOptions): number {
  if (opts.mode !== 'dr' && opts.mode !== 'nat') throw new UsageError(`--mode ${opts.mode}: expected dr or nat`);
  if (opts.director.length === 0) throw new UsageError('name at least one --director VMID[:netN][@ip]');
  const { files, issues } = readPveDir(io, dir, opts);
  const r = pveNodeInput(files);
  if (reportIssues(io, [...issues, ...r.issues])) return 2;
  const report = diagnosePveLvs(files, {
    vip: opts.vip,
    mode: opts.mode,
    directors: opts.director.map((d) => member(d, '--director')),
    realServers: opts.realServer.map((d) => member(d, '--real-server')),
    ...(opts.client ? { client: opts.client } : {}),
    ...(opts.port ? { port: Number(opts.port) } : {}),
    ...(opts.vmacVrid ? { vmacVrid: Number(opts.vmacVrid) } : {}),
  });
  io.stdout(
    opts.json
      ? `${JSON.stringify(report, (k, v) => (k === 'ops' || k === 'bytes' ? undefined : v), 2)}\n`
      : renderPveLvsReport(report),
  );
  if (opts.pcapDir !== undefined) {
    const root = isAbsolute(opts.pcapDir) ? opts.pcapDir : join(io.cwd ?? process.cwd(), opts.pcapDir);
    mkdirSync(root, { recursive: true });
    const points = new Map<string, { timeNs: bigint; bytes: Uint8Array }[]>();
    report.probes.forEach((p, i) => {
      for (const at of p.seenAt) {
        const list = points.get(at) ?? [];
        list.push({ timeNs: BigInt(i) * 1_000_000n, bytes: p.bytes });
        points.set(at, list);
      }
    });
    for (const [at, recs] of points) writeFileSync(join(root, `${at}.pcap`), writePcap(recs));
    io.stderr(`wrote ${points.size} pcap file(s) into ${opts.pcapDir}\n`);
  }
  if (opts.fixDir !== undefined && report.combined) {
    const root = isAbsolute(opts.fixDir) ? opts.fixDir : join(io.cwd ?? process.cwd(), opts.fixDir);
    for (const f of report.combined.files) {
      // paths as in /etc/pve (a bundle's files are named after the bundle)
      const rel = f.file.includes('firewall/') ? f.file.slice(f.file.lastIndexOf('firewall/')) : f.file;
      const p = join(root, rel);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, f.text);
    }
    io.stderr(`wrote ${report.combined.files.length} file(s) into ${opts.fixDir}\n`);
  }
  return report.findings.length > 0 ? 1 : 0;
}
