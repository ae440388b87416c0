/**
 * Reads the parts of a libvirt domain XML (`virsh dumpxml`) that matter for network filtering: the domain's name and
 * UUID and its interfaces with MAC, source, target device, model and `<filterref>`.
 */
import { type Mac, parseMac } from '../addr/mac.ts';
import { ifnameMessage, ifnameProblem } from '../source/ifname.ts';
import { type Issue, issue, type ReadResult } from '../source/issue.ts';
import type { Origin, Position } from '../source/origin.ts';
import type { NwFilterBinding } from './nwfilter-model.ts';
import { filterRefOrigin, readParameters } from './nwfilter-xml.ts';
import { child, childrenNamed, readXml } from './xml.ts';

export interface DomainFilterRef {
  readonly filter: string;
  /** Repeated names form lists, in order. */
  readonly params: ReadonlyMap<string, readonly string[]>;
  /** `filterref` ← domain interface. */
  readonly origin: Origin;
}

export interface DomainInterface {
  /** `bridge`, `network`, `ethernet`, `direct`, … as written. */
  readonly type: string;
  readonly mac?: Mac;
  readonly sourceBridge?: string;
  readonly sourceNetwork?: string;
  /** `<source dev=>` (type `direct`). */
  readonly sourceDev?: string;
  /** The host-side tap (`vnet0`). */
  readonly targetDev?: string;
  readonly model?: string;
  readonly filterref?: DomainFilterRef;
  readonly origin: Origin;
}

export interface Domain {
  readonly name: string;
  readonly uuid?: string;
  readonly interfaces: readonly DomainInterface[];
  readonly origin: Origin;
}

const FILTERABLE = ['bridge', 'network', 'ethernet', 'direct'];

/** Reads a `<domain>` document; never throws. */
export function readDomainXml(text: string, file: string): ReadResult<Domain> {
  const { root, issues } = readXml(text, file);
  if (root === undefined) return { value: undefined, issues };
  if (root.name !== 'domain') {
    issues.push(issue('domain-root', `expected <domain>, found <${root.name}>`, root.pos));
    return { value: undefined, issues };
  }
  const name = child(root, 'name')?.text ?? '';
  if (name === '') issues.push(issue('domain-name', 'domain has no <name>', root.pos));
  const uuid = child(root, 'uuid')?.text;
  const domainOrigin: Origin = {
    kind: 'file',
    label: `domain ${name || '(unnamed)'}`,
    pos: root.pos,
    data: { domain: name, ...(uuid ? { uuid } : {}) },
  };
  const devices = child(root, 'devices');
  const interfaces: DomainInterface[] = [];
  for (const el of devices ? childrenNamed(devices, 'interface') : []) {
    const type = el.attrs.get('type') ?? '';
    if (type === '') issues.push(issue('domain-interface-type', 'interface has no type attribute', el.pos));
    const macEl = child(el, 'mac');
    const macText = macEl?.attrs.get('address');
    const mac = macText === undefined ? undefined : parseMac(macText);
    if (macText !== undefined && mac === undefined) {
      issues.push(issue('domain-interface-mac', `invalid MAC address '${macText}'`, macEl?.pos ?? el.pos));
    }
    const source = child(el, 'source');
    const sourceNetwork = source?.attrs.get('network');
    const targetEl = child(el, 'target');
    // Names the kernel refuses are errors here, before they reach a file name or a printed command.
    const sourceBridge = kernelIfname(
      source?.attrs.get('bridge'),
      '<source bridge=>',
      source?.pos ?? el.pos,
      issues as Issue[],
    );
    // `<source dev=>` is a host interface for type='direct' (macvtap); other types put a path there (vdpa).
    const sourceDevText = source?.attrs.get('dev');
    const sourceDev =
      type === 'direct'
        ? kernelIfname(sourceDevText, '<source dev=>', source?.pos ?? el.pos, issues as Issue[])
        : sourceDevText;
    const targetDev = kernelIfname(
      targetEl?.attrs.get('dev'),
      '<target dev=>',
      targetEl?.pos ?? el.pos,
      issues as Issue[],
    );
    const model = child(el, 'model')?.attrs.get('type');
    const where = sourceBridge ?? sourceNetwork ?? sourceDev;
    const ifaceOrigin: Origin = {
      kind: 'domain-interface',
      label: `domain ${name} interface ${mac ?? '(no mac)'}${targetDev ? ` ${targetDev}` : ''} (type ${type}${where ? ` ${where}` : ''})`,
      pos: el.pos,
      via: domainOrigin,
      data: {
        domain: name,
        ...(mac ? { mac } : {}),
        type,
        ...(targetDev ? { targetDev } : {}),
        ...(sourceBridge ? { bridge: sourceBridge } : {}),
        ...(sourceNetwork ? { network: sourceNetwork } : {}),
      },
    };
    const refEl = child(el, 'filterref');
    let filterref: DomainFilterRef | undefined;
    if (refEl) {
      const filter = refEl.attrs.get('filter');
      if (filter === undefined || filter === '') {
        issues.push(issue('domain-filterref', 'filterref has no filter attribute', refEl.pos));
      } else {
        if (!FILTERABLE.includes(type)) {
          issues.push(
            issue(
              'domain-filterref-type',
              `filterref on an interface of type '${type}' is not applied by libvirt`,
              refEl.pos,
              'warning',
            ),
          );
        }
        const params = readParameters(refEl, issues as Issue[]);
        filterref = { filter, params, origin: filterRefOrigin(filter, params, refEl.pos, ifaceOrigin) };
      }
    }
    interfaces.push({
      type,
      ...(mac ? { mac } : {}),
      ...(sourceBridge ? { sourceBridge } : {}),
      ...(sourceNetwork ? { sourceNetwork } : {}),
      ...(sourceDev ? { sourceDev } : {}),
      ...(targetDev ? { targetDev } : {}),
      ...(model ? { model } : {}),
      ...(filterref ? { filterref } : {}),
      origin: ifaceOrigin,
    });
  }
  return { value: { name, ...(uuid ? { uuid } : {}), interfaces, origin: domainOrigin }, issues };
}

/**
 * What libvirt binds for one interface (`virNWFilterBindingDefForNet`): owner = the domain, port = target dev,
 * MAC, filter and a copy of the parameters. Undefined (with an issue) when the interface has no filterref, MAC or
 * target device (libvirt would generate the last two at start-up; pass `portdev` to name the tap yourself).
 */
export function bindingForInterface(
  domain: Domain,
  iface: DomainInterface,
  portdev?: string,
): ReadResult<NwFilterBinding> {
  const issues: Issue[] = [];
  const ref = iface.filterref;
  if (ref === undefined) return { value: undefined, issues };
  const dev = portdev ?? iface.targetDev;
  if (dev === undefined)
    issues.push(issue('binding-portdev', 'interface has no <target dev=>; pass the tap name', iface.origin.pos));
  if (iface.mac === undefined) issues.push(issue('binding-mac', 'interface has no <mac address=>', iface.origin.pos));
  if (dev === undefined || iface.mac === undefined) return { value: undefined, issues };
  return {
    value: {
      ownerName: domain.name,
      ...(domain.uuid ? { ownerUuid: domain.uuid } : {}),
      portdev: dev,
      ...(iface.type === 'direct' && iface.sourceDev ? { linkdev: iface.sourceDev } : {}),
      mac: iface.mac,
      filter: ref.filter,
      params: ref.params,
      origin: ref.origin,
    },
    issues,
  };
}

/** `name` when the kernel accepts it as an interface name; otherwise an error at `pos` and undefined. */
function kernelIfname(
  name: string | undefined,
  what: string,
  pos: Position | undefined,
  issues: Issue[],
): string | undefined {
  if (name === undefined) return undefined;
  const problem = ifnameProblem(name);
  if (problem === undefined) return name;
  issues.push(issue('interface-name', ifnameMessage(what, name, problem), pos));
  return undefined;
}
