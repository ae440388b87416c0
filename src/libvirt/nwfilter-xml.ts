/**
 * Readers for libvirt's `<filter>` (nwfilter) and `<filterbinding>` XML. They follow libvirt 9.0's parser
 * (`nwfilter_conf.c`, `nwfilter_params.c`) including its quirks, and never throw: problems are issues with file:line,
 * and what libvirt silently ignores is reported as a warning so that users learn about it.
 */
import { parseMac } from '../addr/mac.ts';
import { ifnameMessage, ifnameProblem } from '../source/ifname.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import type { Origin, Position } from '../source/origin.ts';
import { ATTRIBUTE_TABLES, attributeDatatype, convertValue, parseVarAccess } from './nwfilter-attrs.ts';
import {
  ALL_PROTOCOL_ELEMENTS,
  checkChainName,
  defaultChainPriority,
  type NwAttrValue,
  type NwFilter,
  type NwFilterBinding,
  type NwFilterEntry,
  type NwFilterRef,
  type NwProtocol,
  type NwRule,
  type NwRuleAction,
  type NwRuleDirection,
} from './nwfilter-model.ts';
import { child, childrenNamed, readXml, type XmlElement } from './xml.ts';

const ACTIONS: readonly NwRuleAction[] = ['drop', 'accept', 'reject', 'return', 'continue'];
const DIRECTIONS: readonly NwRuleDirection[] = ['in', 'out', 'inout'];

function posText(pos: Position | undefined): string {
  return pos ? `${pos.file}:${pos.line}` : 'built-in';
}

/** `<parameter name= value=>` children; invalid entries are skipped as libvirt does (with a warning). */
export function readParameters(el: XmlElement, issues: Issue[]): Map<string, string[]> {
  const params = new Map<string, string[]>();
  for (const p of childrenNamed(el, 'parameter')) {
    const name = p.attrs.get('name');
    const value = p.attrs.get('value');
    if (
      name === undefined ||
      !/^[A-Za-z0-9_]+$/.test(name) ||
      value === undefined ||
      !/^[A-Za-z0-9_.:]+$/.test(value)
    ) {
      issues.push(
        issue(
          'nwfilter-param-ignored',
          `parameter ${name ?? '(no name)'}=${value ?? '(no value)'} is silently ignored by libvirt (names: [A-Za-z0-9_], values: [A-Za-z0-9_.:], non-empty)`,
          p.pos,
          'warning',
        ),
      );
      continue;
    }
    const list = params.get(name);
    if (list) list.push(value);
    else params.set(name, [value]);
  }
  return params;
}

export function formatParams(params: ReadonlyMap<string, readonly string[]>): string {
  return [...params].map(([k, vs]) => `${k}=${vs.join(',')}`).join(' ');
}

export function paramsData(params: ReadonlyMap<string, readonly string[]>): Record<string, readonly string[]> {
  const out: Record<string, readonly string[]> = {};
  for (const [k, v] of params) out[`param:${k}`] = v;
  return out;
}

export function filterRefOrigin(
  filter: string,
  params: ReadonlyMap<string, readonly string[]>,
  pos: Position | undefined,
  via?: Origin,
): Origin {
  const p = formatParams(params);
  return {
    kind: 'filterref',
    label: `filterref ${filter}${p ? ` ${p}` : ''}`,
    ...(pos ? { pos } : {}),
    ...(via ? { via } : {}),
    data: { filter, ...paramsData(params) },
  };
}

/** libvirt's COPY_NEG_SIGN fix-ups: target takes the negation of source (even when written otherwise). */
const NEG_COPIES: readonly (readonly [string, string])[] = [
  ['srcmacmask', 'srcmacaddr'],
  ['dstmacmask', 'dstmacaddr'],
  ['srcipmask', 'srcipaddr'],
  ['dstipmask', 'dstipaddr'],
  ['arpsrcipmask', 'arpsrcipaddr'],
  ['arpdstipmask', 'arpdstipaddr'],
  ['srcipto', 'srcipfrom'],
  ['dstipto', 'dstipfrom'],
  ['root-address-mask', 'root-address'],
  ['sender-address-mask', 'sender-address'],
  ['root-priority-hi', 'root-priority'],
  ['root-cost-hi', 'root-cost'],
  ['sender-priority-hi', 'sender-priority'],
  ['port-hi', 'port'],
  ['age-hi', 'age'],
  ['max-age-hi', 'max-age'],
  ['hello-time-hi', 'hello-time'],
  ['forward-delay-hi', 'forward-delay'],
];
const PORT_PROTOCOLS: readonly NwProtocol[] = ['tcp', 'udp', 'sctp', 'tcp-ipv6', 'udp-ipv6', 'sctp-ipv6'];

function fixNegation(protocol: NwProtocol, attrs: Map<string, NwAttrValue>): void {
  const copy = (to: string, from: string) => {
    const t = attrs.get(to);
    if (t === undefined) return;
    const negated = attrs.get(from)?.negated ?? false;
    if (t.negated !== negated) attrs.set(to, { raw: t.raw, negated });
  };
  for (const [to, from] of NEG_COPIES) copy(to, from);
  if (PORT_PROTOCOLS.includes(protocol)) {
    copy('srcportend', 'srcportstart');
    copy('dstportstart', 'srcportstart');
    copy('dstportend', 'srcportstart');
  }
  if (protocol === 'icmp' || protocol === 'icmpv6') copy('code', 'type');
  if (protocol === 'ipv6') {
    copy('typeend', 'type');
    copy('codeend', 'code');
  }
}

/**
 * libvirt 9.0's `virNWFilterRuleDefFixupIPSet` (verified with the real driver): on every layer-3/4 element except
 * `<all>`/`<all-ipv6>`, `ipset` together with `ipsetflags` clears both (no `-m set` is installed), `ipsetflags` alone
 * is cleared, and `ipset` alone is kept with an untyped flags item that makes instantiation fail (see
 * iptables-translate.ts). `<all>`/`<all-ipv6>` are not fixed up: both attributes give `-m set`, either alone nothing.
 */
function fixIpset(protocol: NwProtocol, attrs: Map<string, NwAttrValue>, el: XmlElement, issues: Issue[]): void {
  if (protocol === 'all' || protocol === 'all-ipv6') return;
  const set = attrs.get('ipset');
  const flags = attrs.get('ipsetflags');
  if (flags === undefined) return;
  attrs.delete('ipsetflags');
  if (set !== undefined) attrs.delete('ipset');
  issues.push(
    issue(
      'nwfilter-ipset-ignored',
      set !== undefined
        ? `ipset='${set.raw}' with ipsetflags on <${protocol}> is dropped by libvirt 9.0 (virNWFilterRuleDefFixupIPSet): no -m set match is installed`
        : `ipsetflags without ipset on <${protocol}> is ignored by libvirt`,
      el.pos,
      'warning',
    ),
  );
}

function readRule(
  el: XmlElement,
  filter: string,
  index: number,
  filterOrigin: Origin,
  issues: Issue[],
): NwRule | undefined {
  const actionText = el.attrs.get('action');
  const directionText = el.attrs.get('direction');
  if (actionText === undefined) {
    issues.push(issue('nwfilter-rule-action', 'rule node requires action attribute', el.pos));
    return undefined;
  }
  const action = ACTIONS.find((a) => a === actionText);
  if (action === undefined) {
    issues.push(issue('nwfilter-rule-action', `unknown rule action attribute value '${actionText}'`, el.pos));
    return undefined;
  }
  if (directionText === undefined) {
    issues.push(issue('nwfilter-rule-direction', 'rule node requires direction attribute', el.pos));
    return undefined;
  }
  const direction = DIRECTIONS.find((d) => d === directionText);
  if (direction === undefined) {
    issues.push(issue('nwfilter-rule-direction', `unknown rule direction attribute value '${directionText}'`, el.pos));
    return undefined;
  }
  let priority = 500;
  const prioText = el.attrs.get('priority');
  if (prioText !== undefined) {
    const n = /^[+-]?[0-9]+$/.test(prioText.trim()) ? Number(prioText) : Number.NaN;
    if (Number.isInteger(n) && n >= -1000 && n <= 1000) priority = n;
    else {
      issues.push(
        issue(
          'nwfilter-rule-priority-ignored',
          `rule priority '${prioText}' is not an integer in [-1000, 1000]; libvirt silently uses 500`,
          el.pos,
          'warning',
        ),
      );
    }
  }
  const sm = el.attrs.get('statematch');
  const statematch = !(sm !== undefined && (sm === '0' || sm.toLowerCase() === 'false'));

  let protocol: NwProtocol = 'none';
  const attrs = new Map<string, NwAttrValue>();
  for (const c of el.children) {
    const known = ALL_PROTOCOL_ELEMENTS.find((p) => p === c.name);
    if (known === undefined) {
      issues.push(
        issue(
          'nwfilter-element-ignored',
          `unknown element <${c.name}> in a rule is ignored by libvirt`,
          c.pos,
          'warning',
        ),
      );
      continue;
    }
    if (protocol === 'none') protocol = known;
    else if (known !== protocol) {
      issues.push(
        issue(
          'nwfilter-protocol-ignored',
          `<${c.name}> is ignored: the rule's protocol is already ${protocol}`,
          c.pos,
          'warning',
        ),
      );
      continue;
    }
    const negated = c.attrs.get('match') === 'no';
    // libvirt checks an element's attributes in its attribute-table order and reports the last illegal value (verified
    // with two illegal MAC masks, in either document order): that one is this element's first issue.
    const illegal: { index: number; issue: Issue }[] = [];
    const tableIndex = (name: string) =>
      known === 'none' ? -1 : ATTRIBUTE_TABLES[known].findIndex(([n]: readonly [string, unknown]) => n === name);
    for (const [name, raw] of c.attrs) {
      if (name === 'match') continue;
      const dt = attributeDatatype(known, name);
      if (dt === undefined) {
        issues.push(
          issue('nwfilter-attr-ignored', `attribute ${name} of <${c.name}> is ignored by libvirt`, c.pos, 'warning'),
        );
        continue;
      }
      const va = parseVarAccess(raw);
      if (va === 'invalid') {
        illegal.push({
          index: tableIndex(name),
          issue: issue('nwfilter-bad-variable', `${name} has illegal value ${raw}`, c.pos),
        });
        continue;
      }
      if (va === undefined) {
        const conv = convertValue(dt, raw);
        if ('error' in conv) {
          illegal.push({
            index: tableIndex(name),
            issue: issue('nwfilter-bad-value', `${name} has illegal value ${raw}`, c.pos),
          });
          continue;
        }
      }
      attrs.set(name, { raw, negated });
    }
    for (const x of illegal.sort((a, b) => b.index - a.index)) issues.push(x.issue);
  }
  // Keep libvirt's attribute-table order: it fixes the variable iteration order.
  const ordered = new Map<string, NwAttrValue>();
  if (protocol !== 'none') {
    for (const [name] of ATTRIBUTE_TABLES[protocol]) {
      const v = attrs.get(name);
      if (v !== undefined) ordered.set(name, v);
    }
  }
  fixNegation(protocol, ordered);
  fixIpset(protocol, ordered, el, issues);

  if (protocol === 'ip' || protocol === 'ipv6') {
    const hasPorts = ['srcportstart', 'srcportend', 'dstportstart', 'dstportend'].some((a) => ordered.has(a));
    const proto = ordered.get('protocol');
    if (hasPorts && proto !== undefined && !proto.raw.startsWith('$')) {
      const conv = convertValue('ipproto', proto.raw);
      if ('value' in conv && ![6, 17, 33, 132].includes(conv.value as number)) {
        issues.push(
          issue(
            'nwfilter-ports-need-protocol',
            `${protocol === 'ip' ? 'IP' : 'IPv6'} rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)`,
            el.pos,
          ),
        );
      }
    } else if (hasPorts && proto === undefined) {
      issues.push(
        issue(
          'nwfilter-ports-need-protocol',
          `${protocol === 'ip' ? 'IP' : 'IPv6'} rule with port specification requires protocol specification with protocol to be either one of tcp(6), udp(17), dccp(33), or sctp(132)`,
          el.pos,
        ),
      );
    }
  }

  return {
    kind: 'rule',
    action,
    direction,
    priority,
    statematch,
    protocol,
    attrs: ordered,
    origin: ruleOrigin(filter, index, action, direction, priority, protocol, el.pos, filterOrigin),
  };
}

export function ruleOrigin(
  filter: string,
  index: number,
  action: NwRuleAction,
  direction: NwRuleDirection,
  priority: number,
  protocol: NwProtocol,
  pos: Position | undefined,
  via: Origin | undefined,
): Origin {
  return {
    kind: 'nwfilter-rule',
    label: `nwfilter ${filter} rule #${index + 1} priority=${priority} action=${action} direction=${direction}${protocol === 'none' ? '' : ` <${protocol}>`}`,
    ...(pos ? { pos } : {}),
    ...(via ? { via } : {}),
    data: { filter, ruleIndex: index, priority, action, direction, protocol, position: posText(pos) },
  };
}

export function filterOrigin(name: string, chain: string, priority: number, pos: Position | undefined): Origin {
  return {
    kind: 'nwfilter-filter',
    label: `nwfilter ${name} (chain ${chain}, priority ${priority}${pos ? '' : ', built-in'})`,
    ...(pos ? { pos } : {}),
    data: { filter: name, chain, priority, builtin: pos === undefined, position: posText(pos) },
  };
}

/** Reads one `<filter>` document. */
export function readNwfilterXml(text: string, file: string): ReadResult<NwFilter> {
  const { root, issues } = readXml(text, file);
  if (root === undefined) return { value: undefined, issues };
  if (root.name !== 'filter') {
    issues.push(issue('nwfilter-root', 'unknown root element for nw filter', root.pos));
    return { value: undefined, issues };
  }
  const name = root.attrs.get('name');
  if (name === undefined || name === '') {
    issues.push(issue('nwfilter-name', 'filter has no name', root.pos));
    return { value: undefined, issues };
  }
  let chain = root.attrs.get('chain') ?? 'root';
  const chainProblem = checkChainName(chain);
  if (chainProblem !== undefined) {
    issues.push(issue('nwfilter-chain', chainProblem, root.pos));
    chain = 'root';
  }
  let priority = defaultChainPriority(chain);
  const prioText = root.attrs.get('priority');
  if (prioText !== undefined) {
    const n = /^[+-]?[0-9]+$/.test(prioText.trim()) ? Number(prioText) : Number.NaN;
    if (!Number.isInteger(n))
      issues.push(issue('nwfilter-chain-priority', `Could not parse chain priority '${prioText}'`, root.pos));
    else if (n < -1000 || n > 1000) {
      issues.push(
        issue('nwfilter-chain-priority', `Priority '${n}' is outside valid range of [-1000, 1000]`, root.pos),
      );
    } else priority = n;
  }
  const origin = filterOrigin(name, chain, priority, root.pos);
  const uuid = child(root, 'uuid')?.text;
  const entries: NwFilterEntry[] = [];
  let ruleIndex = 0;
  for (const c of root.children) {
    if (c.name === 'rule') {
      const r = readRule(c, name, ruleIndex++, origin, issues);
      if (r) entries.push(r);
    } else if (c.name === 'filterref') {
      const ref = readFilterRef(c, issues, origin);
      if (ref) entries.push(ref);
    } else if (c.name !== 'uuid') {
      issues.push(
        issue(
          'nwfilter-element-ignored',
          `unknown element <${c.name}> in a filter is ignored by libvirt`,
          c.pos,
          'warning',
        ),
      );
    }
  }
  return {
    value: { name, chain, priority, ...(uuid ? { uuid } : {}), entries, builtin: false, origin },
    issues,
  };
}

function readFilterRef(el: XmlElement, issues: Issue[], via?: Origin): NwFilterRef | undefined {
  const filter = el.attrs.get('filter');
  if (filter === undefined || filter === '') {
    issues.push(issue('nwfilter-filterref', 'filterref has no filter attribute', el.pos));
    return undefined;
  }
  const params = readParameters(el, issues);
  return { kind: 'filterref', filter, params, origin: filterRefOrigin(filter, params, el.pos, via) };
}

/** Reads a `<filterbinding>` (as given to `virsh nwfilter-binding-create` or printed by `-dumpxml`). */
export function readFilterBindingXml(text: string, file: string): ReadResult<NwFilterBinding> {
  const { root, issues } = readXml(text, file);
  if (root === undefined) return { value: undefined, issues };
  if (root.name !== 'filterbinding') {
    issues.push(issue('binding-root', `unknown root element <${root.name}> for a filter binding`, root.pos));
    return { value: undefined, issues };
  }
  const owner = child(root, 'owner');
  const ownerName = owner ? child(owner, 'name')?.text : undefined;
  const ownerUuid = owner ? child(owner, 'uuid')?.text : undefined;
  const portdev = child(root, 'portdev')?.attrs.get('name');
  const linkdev = child(root, 'linkdev')?.attrs.get('name');
  const macEl = child(root, 'mac');
  const macText = macEl?.attrs.get('address');
  const ref = child(root, 'filterref');
  if (portdev === undefined) issues.push(issue('binding-portdev', 'filter binding has no port dev name', root.pos));
  const portdevProblem = portdev === undefined ? undefined : ifnameProblem(portdev);
  if (portdev !== undefined && portdevProblem !== undefined)
    issues.push(
      issue('interface-name', ifnameMessage('<portdev name=>', portdev, portdevProblem), child(root, 'portdev')?.pos),
    );
  const mac = macText === undefined ? undefined : parseMac(macText);
  if (mac === undefined) {
    issues.push(
      issue(
        'binding-mac',
        `filter binding has no valid MAC address${macText ? ` (${macText})` : ''}`,
        macEl?.pos ?? root.pos,
      ),
    );
  }
  if (ref === undefined) issues.push(issue('binding-filterref', 'filter binding has no filterref', root.pos));
  if (portdev === undefined || portdevProblem !== undefined || mac === undefined || ref === undefined)
    return { value: undefined, issues };
  const bindingOrigin: Origin = {
    kind: 'binding',
    label: `filterbinding ${portdev}${ownerName ? ` of ${ownerName}` : ''} mac ${mac}`,
    pos: root.pos,
    data: { portdev, mac, ...(ownerName ? { owner: ownerName } : {}) },
  };
  const filterref = readFilterRef(ref, issues, bindingOrigin);
  if (filterref === undefined) return { value: undefined, issues };
  return {
    value: {
      ...(ownerName ? { ownerName } : {}),
      ...(ownerUuid ? { ownerUuid } : {}),
      portdev,
      ...(linkdev ? { linkdev } : {}),
      mac,
      filter: filterref.filter,
      params: filterref.params,
      origin: filterref.origin,
    },
    issues,
  };
}
