/** Writes nwfilter and filter-binding XML for proposed fixes (what `virsh nwfilter-define` accepts). */
import type { NwFilter, NwRule } from '../libvirt/nwfilter-model.ts';

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');
}

function attrsXml(attrs: Iterable<readonly [string, string]>): string {
  return [...attrs].map(([k, v]) => ` ${k}='${esc(v)}'`).join('');
}

function ruleXml(r: NwRule, indent: string): string {
  const head = `${indent}<rule action='${r.action}' direction='${r.direction}' priority='${r.priority}'${r.statematch ? '' : " statematch='false'"}`;
  if (r.protocol === 'none' || r.attrs.size === 0) {
    if (r.protocol === 'none') return `${head}/>`;
    return `${head}>\n${indent}  <${r.protocol}/>\n${indent}</rule>`;
  }
  const plain = [...r.attrs].filter(([, v]) => !v.negated).map(([k, v]) => [k, v.raw] as const);
  const negated = [...r.attrs].filter(([, v]) => v.negated).map(([k, v]) => [k, v.raw] as const);
  const lines = [head + '>'];
  if (plain.length > 0) lines.push(`${indent}  <${r.protocol}${attrsXml(plain)}/>`);
  if (negated.length > 0) lines.push(`${indent}  <${r.protocol} match='no'${attrsXml(negated)}/>`);
  lines.push(`${indent}</rule>`);
  return lines.join('\n');
}

/** One `<filter>` document; `comments` are placed before the rules they name by index. */
export function writeNwfilterXml(f: NwFilter, comments: ReadonlyMap<number, string> = new Map()): string {
  const lines = [`<filter name='${esc(f.name)}' chain='${esc(f.chain)}' priority='${f.priority}'>`];
  f.entries.forEach((e, k) => {
    const c = comments.get(k);
    if (c) lines.push(`  <!-- ${c} -->`);
    if (e.kind === 'rule') lines.push(ruleXml(e, '  '));
    else if (e.params.size === 0) lines.push(`  <filterref filter='${esc(e.filter)}'/>`);
    else {
      lines.push(`  <filterref filter='${esc(e.filter)}'>`);
      for (const [name, values] of e.params)
        for (const v of values) lines.push(`    <parameter name='${esc(name)}' value='${esc(v)}'/>`);
      lines.push('  </filterref>');
    }
  });
  lines.push('</filter>');
  return `${lines.join('\n')}\n`;
}

/** A `<filterref>` element with parameters, indented for a domain `<interface>`. */
export function filterrefXml(
  filter: string,
  params: ReadonlyMap<string, readonly string[]>,
  indent = '      ',
): string {
  if (params.size === 0) return `${indent}<filterref filter='${esc(filter)}'/>`;
  const lines = [`${indent}<filterref filter='${esc(filter)}'>`];
  for (const [name, values] of params)
    for (const v of values) lines.push(`${indent}  <parameter name='${esc(name)}' value='${esc(v)}'/>`);
  lines.push(`${indent}</filterref>`);
  return lines.join('\n');
}

/** A `<filterbinding>` document as `virsh nwfilter-binding-create` takes it. */
export function writeFilterBindingXml(b: {
  readonly ownerName: string;
  readonly ownerUuid?: string;
  readonly portdev: string;
  readonly mac: string;
  readonly filter: string;
  readonly params: ReadonlyMap<string, readonly string[]>;
}): string {
  const owner = b.ownerUuid
    ? `<owner><name>${b.ownerName}</name><uuid>${b.ownerUuid}</uuid></owner>`
    : `<owner><name>${b.ownerName}</name></owner>`;
  return [
    '<filterbinding>',
    `  ${owner}`,
    `  <portdev name='${esc(b.portdev)}'/>`,
    `  <mac address='${b.mac}'/>`,
    filterrefXml(b.filter, b.params, '  '),
    '</filterbinding>',
    '',
  ].join('\n');
}
