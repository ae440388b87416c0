/** Fixes that set sysctls on a node: a sysctl.d file, the commands, and the model edit. */
import { implicit } from '../source/origin.ts';
import { commentName, fileNamePart, shellCommand } from '../source/shell.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { Node, SysctlValue } from '../topology/model.ts';
import type { FixProposal } from './types.ts';

export function sysctlFix(
  node: Node,
  settings: readonly (readonly [string, string])[],
  why: string,
  rank: number,
  keeps = 'every filter as it is; only kernel settings of the guest change',
): FixProposal {
  const file = `sysctl-${fileNamePart(node.name)}/90-lvsdoctor.conf`;
  const content = [`# ${why}`, ...settings.map(([k, v]) => `${k} = ${v}`), ''].join('\n');
  return {
    id: `sysctl:${node.name}:${settings.map(([k, v]) => `${k}=${v}`).join(',')}`,
    title: `On ${node.name}: ${settings.map(([k, v]) => `${k}=${v}`).join(', ')} (${why})`,
    keeps,
    protectionRank: rank,
    artifacts: [{ path: file, content }],
    commands: [
      `# on ${commentName(node.name)}:`,
      ...settings.map(([k, v]) => shellCommand('sysctl', '-w', `${k}=${v}`)),
      `${shellCommand('cp', '--', file, '/etc/sysctl.d/90-lvsdoctor.conf')}   # keep it across reboots`,
    ],
    apply: (s: LoadedScenario) => {
      const n = s.scenario.nodes.get(node.name);
      if (!n) return s;
      const sysctl = new Map<string, SysctlValue>(n.sysctl);
      for (const [k, v] of settings) sysctl.set(k, { value: v, origin: implicit(`set by the fix: ${k} = ${v}`) });
      const nodes = new Map(s.scenario.nodes);
      nodes.set(node.name, { ...n, sysctl });
      return { ...s, scenario: { ...s.scenario, nodes } };
    },
  };
}
