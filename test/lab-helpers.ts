/** Shared by the lab tests: whether the machine can run the lab, and a snapshot of the root namespace. */
import { execFileSync } from 'node:child_process';
import { labUnavailable } from '../src/lab/preflight.ts';
import type { LoadedScenario } from '../src/topology/load-scenario.ts';
import { loadScenario } from '../src/topology/load-scenario.ts';

/** Why the lab tests are skipped here (not root, or packages missing), or undefined when they run. */
export const LAB_SKIP_REASON = labUnavailable();
if (LAB_SKIP_REASON) console.warn(`lab tests skipped: ${LAB_SKIP_REASON}`);

function sh(argv: string[]): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  } catch (e) {
    return `error: ${(e as Error).message}`;
  }
}

/** What the lab must never change: the root namespace's links, addresses, routes, firewall and sysctls. */
export function rootSnapshot(): Record<string, string> {
  return {
    links: sh(['ip', '-o', 'link', 'show']).replace(/\s+link-netns(id)? \S+/g, ''),
    addrs: sh(['ip', '-o', 'addr', 'show']),
    routes: sh(['ip', 'route', 'show', 'table', 'all']),
    ebtables: sh(['ebtables', '-t', 'nat', '-L']),
    nft: sh(['nft', 'list', 'ruleset']),
    sysctl: sh([
      'sysctl',
      'net.ipv4.ip_forward',
      'net.ipv4.conf.all.arp_ignore',
      'net.ipv4.conf.all.arp_announce',
      'net.ipv4.conf.all.rp_filter',
      'net.ipv4.conf.default.rp_filter',
      'net.ipv6.conf.all.disable_ipv6',
      'net.bridge.bridge-nf-call-iptables',
      'net.bridge.bridge-nf-call-arptables',
    ]),
    iptables: sh(['iptables-save']).replace(/^#.*\n/gm, ''),
  };
}

export function load(dir: string): LoadedScenario {
  const r = loadScenario(dir);
  if (!r.value) throw new Error(`cannot load ${dir}: ${r.issues.map((i) => i.message).join('; ')}`);
  return r.value;
}
