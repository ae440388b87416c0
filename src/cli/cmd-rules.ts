import { renderEbtablesList, renderEbtablesRule } from '../netfilter/ebtables-render.ts';
import { compileAllHostRules } from '../topology/host-rules.ts';
import { type Io, reportIssues, UsageError } from './io.ts';
import { originJson, toJsonText } from './json.ts';
import { loadForCommand } from './scenario-input.ts';

export interface RulesOptions {
  readonly host: string;
  readonly format: string;
  readonly json: boolean;
}

export function runRules(io: Io, dir: string, o: RulesOptions): number {
  if (o.format !== 'nft' && o.format !== 'legacy')
    throw new UsageError(`--format must be nft or legacy, not "${o.format}"`);
  const loaded = loadForCommand(io, dir);
  if (!loaded) return 2;
  const host = loaded.scenario.nodes.get(o.host);
  if (host?.kind !== 'host') {
    const hosts = [...loaded.scenario.nodes.values()].filter((n) => n.kind === 'host').map((n) => n.name);
    throw new UsageError(`"${o.host}" is not a host of the scenario (hosts: ${hosts.join(', ') || 'none'})`);
  }
  const style = o.format;
  const compiled = compileAllHostRules(loaded, style);
  if (reportIssues(io, compiled.issues)) return 2;
  const rules = compiled.hostRules.get(o.host)!;
  if (o.json) {
    io.stdout(
      toJsonText({
        host: o.host,
        table: 'nat',
        chains: rules.nat.chains.map((c) => ({
          name: c.name,
          policy: c.policy,
          rules: c.rules.map((r, k) => ({
            number: k + 1,
            text: renderEbtablesRule(r, { style }),
            origin: originJson(r.origin),
          })),
        })),
      }),
    );
    return 0;
  }
  io.stdout(renderEbtablesList(rules.nat, { style }));
  return 0;
}
