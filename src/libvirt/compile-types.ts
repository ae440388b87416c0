/** What the nwfilter compiler takes and gives: its options, the compiled binding, the flattened rule instances. */
import type { EbStyle, EbTable } from '../netfilter/ebtables-model.ts';
import type { IptFamily, IptTable } from '../netfilter/iptables-model.ts';
import type { Issue } from '../source/issue.ts';
import type { Origin } from '../source/origin.ts';
import type { NwFilter, NwFilterBinding, NwRule } from './nwfilter-model.ts';
import type { VarScope } from './variables.ts';

export interface CompileOptions {
  /**
   * Listing/semantics convention for the user chains libvirt creates with a plain `-N`: `nft` (default) gives them
   * policy RETURN, `legacy` ACCEPT.
   */
  readonly style?: EbStyle;
  /** IPv4 addresses libvirt has already learned for this port (used for `IP` when the binding gives none). */
  readonly learnedIps?: readonly string[];
  /**
   * Whether the iptables/ip6tables tables include libvirt's global chains (`libvirt-in`, `libvirt-out`,
   * `libvirt-in-post`, `libvirt-host-in` and their FORWARD/INPUT hooks) even when this binding has no rule of that
   * family. libvirt creates them with the first iptables rule of any binding and never removes them, so a host that
   * ever instantiated such a filter has them (default true). With false they appear only when this binding needs them.
   */
  readonly libvirtBaseChains?: boolean;
  /** Whether to produce libvirt's command list (`commands`); default true. Off is faster for bulk compiles. */
  readonly commands?: boolean;
  /**
   * The host's ipsets (name → family). When given, a rule whose `-m set` names a missing set or one of the other
   * family is refused as iptables refuses it (and libvirt with it); when absent every set is assumed to exist.
   */
  readonly ipsets?: ReadonlyMap<string, IptFamily>;
}

/** A rule instance after flattening: the rule, its filter, the variables in scope and its origin chain. */
export interface RuleInstance {
  readonly rule: NwRule;
  readonly filter: NwFilter;
  readonly chain: string;
  readonly chainPriority: number;
  /**
   * The rule's priority bumped to its chain priority for non-root rules: used to decide when a sub-chain is created
   * (instances are sorted by their own priority, root-chain rules first — verified against libvirt 9.0).
   */
  readonly priority: number;
  readonly scope: VarScope;
  /** rule ← filter ← filterref ← … ← binding/interface. */
  readonly origin: Origin;
  /** The filter's origin with its `via` chain (for sub-chain jumps). */
  readonly filterOrigin: Origin;
}

export type CompileMode =
  /** The filter was instantiated. */
  | 'filter'
  /** `IP` is missing and CTRL_IP_LEARNING=any: libvirt's basic learning rules are installed. */
  | 'ip-learning'
  /** `IP` is missing and CTRL_IP_LEARNING=dhcp: DHCP-only rules are installed. */
  | 'dhcp-learning'
  /** libvirt refuses the binding; nothing is installed. */
  | 'failed';

export interface CompiledBinding {
  readonly binding: NwFilterBinding;
  readonly mode: CompileMode;
  /** The nat table with only this binding's chains (and the built-in chains with its hook rules). */
  readonly nat: EbTable;
  /** The commands libvirt runs for this binding (ebtables in full; iptables/ip6tables only where fixed). */
  readonly commands: readonly string[];
  readonly instances: readonly RuleInstance[];
  /** Rule instances of layer-3/4 protocols (compiled into `filter4`/`filter6`). */
  readonly ipInstances: readonly RuleInstance[];
  /** The iptables filter table: libvirt's global chains and this binding's FI-/FO-/HI- chains. */
  readonly filter4: IptTable;
  /** The ip6tables filter table. */
  readonly filter6: IptTable;
  /** libvirt's reason when it refuses the binding (mode `failed`). */
  readonly failure?: string;
  readonly issues: readonly Issue[];
}
