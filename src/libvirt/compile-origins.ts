/**
 * Origins of what the nwfilter compiler makes: rule chains re-rooted on a binding (`originVia`, as literals of one
 * hidden class each), the built-in and user chains' policies, the hook rules, root chains, sub-chains and jumps.
 */
import type { EbPolicy, EbStyle } from '../netfilter/ebtables-model.ts';
import { implicit, type Origin } from '../source/origin.ts';
import type { NwFilterBinding } from './nwfilter-model.ts';

/**
 * `{ ...o, via }` with the same keys in the same order, built as a literal (performance: V8 gives each spread copy
 * its own hidden class, which costs time and memory when a compile makes thousands of them).
 */
const originShape = new WeakMap<Origin, number>();

const SHAPES = [
  'kind,label',
  'kind,label,pos',
  'kind,label,data',
  'kind,label,pos,data',
  'kind,label,data,pos',
  'kind,label,via,data',
  'kind,label,pos,via,data',
];

export function originVia(o: Origin, via: Origin): Origin {
  return originViaShape(o, originShapeOf(o), via);
}

export function originShapeOf(o: Origin): number {
  let shape = originShape.get(o);
  if (shape === undefined) {
    shape = SHAPES.indexOf(Object.keys(o).join(','));
    originShape.set(o, shape);
  }
  return shape;
}

export function originViaShape(o: Origin, shape: number, via: Origin): Origin {
  switch (shape) {
    case 0:
      return { kind: o.kind, label: o.label, via };
    case 1:
      return { kind: o.kind, label: o.label, pos: o.pos!, via };
    case 2:
      return { kind: o.kind, label: o.label, data: o.data!, via };
    case 3:
      return { kind: o.kind, label: o.label, pos: o.pos!, data: o.data!, via };
    case 4:
      return { kind: o.kind, label: o.label, data: o.data!, pos: o.pos!, via };
    // nwfilter rules and filterrefs: `via` is the definition, replaced in place.
    case 5:
      return { kind: o.kind, label: o.label, via, data: o.data! };
    case 6:
      return { kind: o.kind, label: o.label, pos: o.pos!, via, data: o.data! };
    default:
      return { ...o, via };
  }
}

/** `{ ...implicit(label, data), via }` as a literal. */
function implicitVia(label: string, data: Origin['data'] | undefined, via: Origin): Origin {
  return data === undefined ? { kind: 'implicit', label, via } : { kind: 'implicit', label, data, via };
}

/** The built-in chains' origins, the same for every port (performance: made once, shared as readonly data). */
const builtinOriginCache = new Map<string, { policyOrigin: Origin; origin: Origin }>();

export function builtinOrigins(name: string): { policyOrigin: Origin; origin: Origin } {
  let o = builtinOriginCache.get(name);
  if (o === undefined) {
    o = {
      policyOrigin: implicit(`ebtables nat ${name} default policy ACCEPT`),
      origin: implicit(`ebtables nat built-in chain ${name}`, { table: 'nat', chain: name }),
    };
    builtinOriginCache.set(name, o);
  }
  return o;
}

/**
 * Why a user chain libvirt creates has its policy. The same for every chain of a style (performance: one shared,
 * readonly origin instead of one per chain; the chain is the one it is found on).
 */
export function userPolicyOrigin(policy: EbPolicy, style: EbStyle): Origin {
  const key = `${style}${policy}`;
  let o = policyOrigins.get(key);
  if (o === undefined) {
    o = implicit(
      style === 'nft'
        ? `user chain created with plain -N: ebtables-nft policy ${policy}`
        : `user chain created with plain -N: ebtables-legacy default policy ${policy}`,
      { policy },
    );
    policyOrigins.set(key, o);
  }
  return o;
}

const policyOrigins = new Map<string, Origin>();

/** The origin of the PREROUTING (`in`) or POSTROUTING (`out`) hook rule of a port. */
export function hookOrigin(binding: NwFilterBinding, dir: 'in' | 'out'): Origin {
  const ifn = binding.portdev;
  const label =
    dir === 'in'
      ? `libvirt hook: frames entering the bridge from ${ifn} (sent by the guest)`
      : `libvirt hook: frames leaving the bridge to ${ifn} (delivered to the guest)`;
  return implicitVia(label, undefined, binding.origin);
}

export function rootChainOrigin(binding: NwFilterBinding, d: 'I' | 'O'): Origin {
  const ifn = binding.portdev;
  const name = `libvirt-${d}-${ifn}`;
  return implicitVia(
    `libvirt root chain ${name} for ${d === 'I' ? 'frames from' : 'frames to'} the guest on ${ifn}`,
    { chain: name, port: ifn },
    binding.origin,
  );
}

/** A sub-chain of a port: its direction, nwfilter chain name and priority. */
export type SubChainOf = { readonly dir: 'I' | 'O'; readonly chain: string; readonly priority: number };

/** `via`: the origin of the filter that made the sub-chain. */
export function subChainOrigin(ifn: string, s: SubChainOf, via: Origin): Origin {
  const label = `libvirt sub-chain ${s.dir}-${ifn}-${s.chain} for chain '${s.chain}' (priority ${s.priority})`;
  return implicitVia(label, { chain: s.chain, priority: s.priority }, via);
}

export function jumpOriginOf(ifn: string, s: SubChainOf, via: Origin): Origin {
  const label = `libvirt jump from libvirt-${s.dir}-${ifn} to ${s.dir}-${ifn}-${s.chain} (chain priority ${s.priority})`;
  return implicitVia(label, undefined, via);
}
