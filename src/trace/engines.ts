/** The interfaces through which the walker asks the netfilter and IPVS engines for decisions. */
import type { Ipv4 } from '../addr/ipv4.ts';
import type { Mac } from '../addr/mac.ts';
import type { CtState } from '../netfilter/iptables-model.ts';
import type { EthernetFrame } from '../wire/types.ts';
import type { IpvsStep, NetfilterStep } from './types.ts';

export type BridgeHook = 'PREROUTING' | 'INPUT' | 'FORWARD' | 'OUTPUT' | 'POSTROUTING';

/** ebtables of one host. `undefined` from `evaluate` means no rule can see the frame there (empty hook). */
export interface BridgeFirewall {
  /** True when bridged IPv4 meets iptables rules (br_netfilter on, FORWARD not empty): conntrack matters. */
  readonly tracksBridged?: boolean;
  evaluate(
    table: 'nat' | 'filter',
    hook: BridgeHook,
    frame: EthernetFrame,
    ctx: { readonly inIface?: string; readonly outIface?: string },
  ): NetfilterStep | undefined;
  /**
   * iptables filter FORWARD for a bridged IPv4 frame (br_netfilter); undefined when the host does not pass bridged
   * traffic to iptables or no rule there can decide.
   */
  evaluateBridged(frame: EthernetFrame, ctx: BridgedCtx): NetfilterStep | undefined;
  /**
   * iptables raw PREROUTING for a bridged IPv4 frame (br_netfilter, before conntrack): a NOTRACK rule makes the
   * packet UNTRACKED, a DROP ends it; undefined when the host gave no raw table or no rule matched.
   */
  evaluateRaw?(
    frame: EthernetFrame,
    ctx: { readonly bridge: string; readonly inPort: string },
  ): NetfilterStep | undefined;
  /**
   * iptables filter INPUT, FORWARD (routed) or OUTPUT of the host's own IPv4 stack, from the rule set it has
   * (`iptables-save`, or pve-firewall's on a Proxmox node); undefined when none was given or no rule there can decide.
   */
  evaluateHost?(hook: HostHook, frame: EthernetFrame, ctx: HostHookCtx): NetfilterStep | undefined;
}

export type HostHook = 'INPUT' | 'FORWARD' | 'OUTPUT';

/** The interfaces a routed or local packet has at a host hook (`-i`/`-o`), and what the host's conntrack made of it. */
export interface HostHookCtx {
  readonly inIface?: string;
  readonly outIface?: string;
  /** nf_conntrack's state (PRE_ROUTING or LOCAL_OUT); absent: a handshake's first packets (a lone SYN NEW). */
  readonly ctState?: CtState;
  readonly ctDir?: 'ORIGINAL' | 'REPLY';
  /** The packet's netfilter mark (set by the host's mangle table): what `-m mark` rules match. */
  readonly mark?: number;
}

/** Where a bridged frame goes, and what the host's conntrack made of it (absent: a handshake's first packets). */
export interface BridgedCtx {
  readonly bridge: string;
  readonly inPort: string;
  readonly outPort: string;
  readonly ctState?: CtState;
  readonly ctDir?: 'ORIGINAL' | 'REPLY';
  /** The packet's netfilter mark (set by the host's mangle table): what `-m mark` rules match. */
  readonly mark?: number;
}

export type IpvsDecision =
  | { readonly kind: 'not-ipvs' }
  | { readonly kind: 'no-destination'; readonly step: IpvsStep }
  | {
      readonly kind: 'forward';
      readonly step: IpvsStep;
      readonly method: 'Route' | 'Masq' | 'Tunnel';
      /** Where the kernel sends the packet: the real server's address. */
      readonly nextHop: Ipv4;
      /** Builds the frame that leaves the director once the next hop's MAC is known. */
      readonly build: (srcMac: Mac, dstMac: Mac) => EthernetFrame;
    };

export type IpvsReplyDecision =
  | { readonly kind: 'not-ipvs' }
  | { readonly kind: 'snat'; readonly frame: EthernetFrame; readonly step: IpvsStep };

/** IPVS on one director. Stateful (connection table), reset per probe. */
export interface IpvsEngine {
  /** The LOCAL_IN hook: client packets to a virtual service. `directorIp` is the outer source of tunnel packets. */
  input(frame: EthernetFrame, nowNs: bigint, directorIp?: Ipv4, fwmark?: number): IpvsDecision;
  /** The FORWARD hook: NAT replies from real servers, rewritten to come from the virtual service. */
  output(frame: EthernetFrame, nowNs: bigint): IpvsReplyDecision;
  /** Real-server addresses and ports this director balances to (used to pick default listeners). */
  destinations(): readonly { readonly addr: Ipv4; readonly port: number; readonly protocol: 'tcp' | 'udp' }[];
}
