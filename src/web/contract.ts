/**
 * The web app's JSON contract (docs/json.md, "lvsdoctor serve and diagnose --html"): what the server sends the page
 * and what the one-file report embeds. Types only — the page (src/web/client/) imports nothing else from src/: every
 * fact in it was computed by the same domain functions as the CLI.
 */

export const WEB_MODEL_VERSION = 1;

/** One link of an origin chain, innermost first (as in `--json`). */
export interface OriginLink {
  readonly kind: string;
  readonly label: string;
  readonly file?: string;
  readonly line?: number;
  readonly data?: Readonly<Record<string, unknown>>;
}

/** A step as `trace --json` prints it; `kind` says which fields it has. */
export interface StepJson {
  readonly kind: string;
  readonly origin?: readonly OriginLink[];
  readonly [field: string]: unknown;
}

export interface FrameField {
  readonly layer: string;
  readonly name: string;
  readonly value: string;
}

export interface HopJson {
  readonly id: number;
  readonly parent?: number;
  readonly node: string;
  readonly iface?: string;
  readonly point?: string;
  readonly direction: 'in' | 'out';
  readonly timeNs: string;
  readonly tcpdump: string;
  readonly steps: readonly StepJson[];
  readonly end?: { readonly disposition: string; readonly reason: string; readonly origin?: readonly OriginLink[] };
}

/** A hop of the decisive path, as the page draws it. */
export interface PathHop extends HopJson {
  /** Which leg the frame belongs to: the request, or the answer to it. */
  readonly leg: 'request' | 'reply';
  /** The topology element the hop is drawn on. */
  readonly element: string;
  /** The step list as the CLI's `trace` prints it. */
  readonly text: readonly string[];
  readonly fields: readonly FrameField[];
}

export interface ProbeView {
  readonly name: string;
  readonly kind: 'tcp' | 'udp' | 'arp';
  /** `client → 192.0.2.208:80` */
  readonly label: string;
  readonly disposition: string;
  readonly ok: boolean;
  readonly stage: 'request' | 'reply';
  readonly summary: string;
  readonly end: {
    readonly disposition: string;
    readonly node: string;
    readonly iface?: string;
    readonly reason: string;
    readonly origin?: readonly OriginLink[];
  };
  readonly path: readonly PathHop[];
  /** Index into `path` of the hop that decided the end (the drop), when it has a deciding step. */
  readonly decisive?: number;
  /** The finding that explains the failure, as `code@where`. */
  readonly finding?: string;
}

export interface FindingView {
  readonly key: string;
  readonly code: string;
  readonly severity: 'error' | 'warning' | 'info';
  readonly title: string;
  readonly explanation: string;
  readonly probes: readonly string[];
  readonly where: string;
  readonly culprit?: readonly OriginLink[];
  readonly fixes: readonly string[];
  readonly source: 'trace' | 'static' | 'both';
  readonly after: readonly string[];
}

export interface FixView {
  readonly id: string;
  readonly title: string;
  readonly keeps: string;
  readonly protectionRank: number;
  readonly artifacts: readonly { readonly path: string; readonly content: string }[];
  readonly commands: readonly string[];
  readonly verified: boolean;
  readonly retraced: readonly { readonly probe: string; readonly before: string; readonly after: string }[];
  readonly unblocks: readonly string[];
  readonly requires: readonly string[];
  readonly clears: readonly string[];
  /** The fix diagnosis ranks first among verified ones (it keeps the most protection). */
  readonly safest: boolean;
}

/** A filter binding whose parameters the what-if can edit (e.g. add the VIP to IP). */
export interface BindingView {
  readonly host: string;
  readonly port: string;
  readonly domain: string;
  readonly filter: string;
  readonly params: Readonly<Record<string, readonly string[]>>;
}

/** A what-if request: fixes to apply (ids from `fixes`), and parameter edits of bindings. */
export interface WhatIfRequest {
  readonly fixes: readonly string[];
  readonly params: readonly {
    readonly host: string;
    readonly port: string;
    readonly name: string;
    readonly values: readonly string[];
  }[];
}

export interface WhatIfResult {
  readonly request: WhatIfRequest;
  /** Applied in this order (prerequisites of a fix first). */
  readonly applied: readonly string[];
  readonly probes: readonly ProbeView[];
  readonly verdicts: readonly { readonly probe: string; readonly before: string; readonly after: string }[];
  /** Lines of the files the re-traced origins name that the model's `files` lacks (e.g. an applied fix's file). */
  readonly files: Readonly<Record<string, readonly string[]>>;
  readonly ms: number;
}

export type TopoKind =
  | 'host'
  | 'bridge'
  | 'tap'
  | 'uplink'
  | 'guest'
  | 'gateway'
  | 'client'
  | 'segment'
  | 'host-summary';

export interface TopoNode {
  readonly id: string;
  readonly kind: TopoKind;
  readonly label: string;
  /** Second line: role, addresses, counts. */
  readonly detail?: string;
  readonly role?: string;
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly parent?: string;
}

export interface TopoEdge {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly points: readonly (readonly [number, number])[];
}

export interface TopologyView {
  /** `detailed`: every bridge, tap and guest; `summary`: one card per hypervisor (big fleets). */
  readonly mode: 'detailed' | 'summary';
  readonly width: number;
  readonly height: number;
  readonly nodes: readonly TopoNode[];
  readonly edges: readonly TopoEdge[];
  /** `node` or `node:iface` → element id, for hops and capture points. */
  readonly places: Readonly<Record<string, string>>;
}

export interface FleetGuest {
  readonly name: string;
  readonly host: string;
  readonly role: string;
  readonly ips: string;
  readonly port: string;
  /** Finding codes at this guest's port or node. */
  readonly findings: readonly string[];
}

export interface FleetView {
  readonly hosts: readonly {
    readonly name: string;
    readonly guests: number;
    readonly directors: number;
    readonly realServers: number;
    readonly failing: number;
  }[];
  readonly clusters: readonly {
    readonly service: string;
    readonly director: string;
    readonly realServers: readonly string[];
    readonly probes: readonly { readonly probe: string; readonly ok: boolean; readonly disposition: string }[];
    /** No probe exercised this service: why (`unchecked` of the diagnosis). The verdict does not vouch for it. */
    readonly unchecked?: string;
  }[];
  /** Per director (an IPVS cluster): its services and how many of them no probe checked. */
  readonly directors: readonly { readonly name: string; readonly services: number; readonly unchecked: number }[];
  readonly byFinding: readonly {
    readonly code: string;
    readonly severity: string;
    readonly title: string;
    readonly count: number;
    readonly where: readonly string[];
  }[];
  readonly guests: readonly FleetGuest[];
}

export interface CaptureFlowView {
  readonly id: number;
  readonly endpoints: string;
  readonly packets: number;
  readonly missing: number;
  readonly lastPoint: string;
  readonly element?: string;
  readonly handshake?: string;
  readonly points: readonly string[];
}

export interface CapturesView {
  readonly points: readonly { readonly name: string; readonly file: string; readonly packets: number }[];
  readonly flows: readonly CaptureFlowView[];
  readonly vanished: readonly { readonly after: string; readonly expected: string; readonly packets: number }[];
}

/** Live evidence's verdict on the model's verdict for one probe (issue 18; `evidence` of `diagnose --json`). */
export type EvidenceVerdictView = 'confirmed' | 'contradicted' | 'no-evidence';

/** The model's rule a live counter or traced event was joined to, with its origin chain. */
export interface EvidenceRuleView {
  readonly chain: string;
  readonly ruleNumber?: number;
  readonly text: string;
  readonly origin: readonly OriginLink[];
}

/** A rule counter that moved in a counter window, joined to the model's rule (or why it could not be). */
export interface CounterView {
  readonly node: string;
  /** `ebtables`, `iptables`, `ip6tables`, `nft`. */
  readonly source: string;
  readonly table: string;
  readonly chain: string;
  readonly ruleNumber?: number;
  /** The rule as the host lists it. */
  readonly text: string;
  readonly packets: number;
  readonly bytes: number;
  /** The listing line (`bundle/cmd/counters-end-ebtables-nat.out:12`). */
  readonly at: string;
  readonly rule?: EvidenceRuleView;
  /** How it was joined: same position, same text elsewhere in the chain, or an nft counter of an xtables table. */
  readonly by?: 'position' | 'text' | 'nft';
  /** Why the model cannot map it (unmapped counters only). */
  readonly why?: string;
}

/** A kernel trace event (`nft monitor trace`, `xtables-monitor --trace`) placed on the model. */
export interface KernelEventView {
  readonly node: string;
  readonly iface?: string;
  /** `port vnet0 of bridge br0`. */
  readonly where?: string;
  readonly tool: string;
  readonly id: string;
  readonly family: string;
  readonly table: string;
  readonly chain: string;
  readonly what: string;
  readonly verdict: string;
  readonly ruleText?: string;
  readonly handle?: number;
  readonly at: string;
  readonly rule?: EvidenceRuleView;
  readonly by?: 'position' | 'text' | 'chain-end';
  readonly why?: string;
}

/** A kernel drop (kfree_skb, dropwatch) or a pwru sighting. */
export interface KernelDropView {
  readonly node: string;
  readonly tool: string;
  readonly reason?: string;
  readonly location?: string;
  /** Ether type (2048 IPv4, 2054 ARP), when the kernel said. */
  readonly protocol?: number;
  readonly iface?: string;
  readonly count: number;
  readonly at: string;
  /** The model's counterpart (`dropped-by-filter`…), and the probes whose model trace ends so at that node. */
  readonly kind?: string;
  readonly probes?: readonly string[];
  readonly why?: string;
  /** A pwru event on the packet's way, not a drop. */
  readonly seen?: boolean;
}

/** A traced packet or kernel drop of a probe placed on its path: a step of its own beside the model's hops. */
export interface KernelMarkView {
  readonly node: string;
  readonly iface?: string;
  /** Indexes into the probe's `path` of the hops the kernel event stands beside (empty: not on the drawn path). */
  readonly hops: readonly number[];
  /** The topology element it is drawn on. */
  readonly element?: string;
  /** false: "the kernel and the model disagree here". */
  readonly agree: boolean;
  readonly text: string;
  readonly at: string;
  readonly rule?: EvidenceRuleView;
}

/** One probe's live evidence: counters and kernel traces, each with its verdict and facts, and the combined one. */
export interface ProbeEvidenceView {
  readonly probe: string;
  /** contradicted if either source contradicts, else confirmed if either confirms, else no evidence. */
  readonly verdict: EvidenceVerdictView;
  readonly counters?: { readonly verdict: EvidenceVerdictView; readonly facts: readonly string[] };
  readonly kernel?: { readonly verdict: EvidenceVerdictView; readonly facts: readonly string[] };
  /** The moved counters on the chains this probe walks: index into `EvidenceView.joined`, hop index into `path`. */
  readonly moved: readonly { readonly counter: number; readonly hop: number; readonly decides: boolean }[];
  readonly marks: readonly KernelMarkView[];
}

/**
 * Live evidence (issue 18): counter windows of `collect --watch` bundles (or two bundles of one host) and kernel
 * traces, joined to the model. It belongs to the unmodified model: a what-if re-trace has none.
 */
export interface EvidenceView {
  readonly windows: readonly {
    readonly node: string;
    readonly from: 'watch' | 'bundles';
    readonly seconds?: number;
    readonly moved: number;
  }[];
  readonly probes: readonly ProbeEvidenceView[];
  readonly joined: readonly CounterView[];
  readonly unmapped: readonly CounterView[];
  /** Kernel SNMP counters (nstat names) and IPVS totals that moved, per node. */
  readonly stack: readonly { readonly node: string; readonly name: string; readonly delta: number }[];
  /** IPVS per-service and per-real-server counters that moved. */
  readonly ipvs: readonly {
    readonly node: string;
    readonly service: string;
    readonly destination?: string;
    readonly conns: number;
    readonly inPkts: number;
    readonly outPkts: number;
    readonly at: string;
  }[];
  readonly kernel?: {
    readonly files: readonly {
      readonly node: string;
      readonly file: string;
      readonly events: number;
      readonly drops: number;
    }[];
    readonly joined: readonly KernelEventView[];
    readonly unmapped: readonly KernelEventView[];
    /** Events of the operator's own tracing rules (`meta nftrace set 1`, `-j TRACE`). */
    readonly setup: number;
    readonly drops: readonly KernelDropView[];
  };
}

/** A virtual service no probe exercised, and why (`unchecked` of `diagnose --json`): the verdict does not vouch for it. */
export interface UncheckedView {
  /** `FWM 1 on lb1`, `TCP [2001:db8::10]:80 on lb1`. */
  readonly what: string;
  readonly why: string;
}

/**
 * `diagnose`'s verdict: `healthy` (exit 0), `broken` (exit 1), or `no-verdict` (exit 2: no conversation with a
 * virtual service could run, so there is no evidence either way — never a pass).
 */
export type WebVerdict = 'healthy' | 'broken' | 'no-verdict';

export interface WebModel {
  readonly version: typeof WEB_MODEL_VERSION;
  readonly scenario: { readonly name: string; readonly description: string };
  /** true only when `verdict` is `healthy`. */
  readonly healthy: boolean;
  readonly verdict: WebVerdict;
  /** With `verdict: 'no-verdict'`: what was missing, as `diagnose` prints it (the unchecked services among them). */
  readonly noVerdict?: readonly string[];
  /** Virtual services no probe exercised, with the reason. */
  readonly unchecked: readonly UncheckedView[];
  readonly topology: TopologyView;
  readonly probes: readonly ProbeView[];
  readonly findings: readonly FindingView[];
  readonly fixes: readonly FixView[];
  readonly bindings: readonly BindingView[];
  /** Lines of the files origins point at, by the file name origins use. */
  readonly files: Readonly<Record<string, readonly string[]>>;
  readonly assumptions: readonly string[];
  readonly fleet: FleetView;
  readonly captures?: CapturesView;
  /** Live evidence joined to the model, when the input carried it (counter windows, kernel traces). */
  readonly evidence?: EvidenceView;
  /**
   * true: the server answers what-ifs (POST /api/what-if); false: the offline report, whose what-ifs run in the
   * page on the embedded scenario (`ReportInputs`, `REPORT_ENGINE_GLOBAL`).
   */
  readonly live: boolean;
}

/** The id of the offline report's `<script type="application/json">` holding its `ReportInputs`. */
export const REPORT_INPUTS_ID = 'lvsdoctor-inputs';

/**
 * The offline report's scenario: what the CLI's load asked of the scenario's files and what they answered (every
 * file it read, by the path it asked for), so that the page loads the same scenario with the same loader.
 */
export interface ReportInputs {
  /** How origins name the scenario directory (`label/host1/vm.xml`). */
  readonly label: string;
  /** File → its text, or null when there was no such file. */
  readonly read: Readonly<Record<string, string | null>>;
  readonly exists: Readonly<Record<string, boolean>>;
  /** Directory → its names, or null when it was not a directory. */
  readonly list: Readonly<Record<string, readonly string[] | null>>;
}

/** A what-if's answer: the re-traced result, or why the request cannot be applied. */
export type WhatIfAnswer = { kind: 'ok'; result: WhatIfResult } | { kind: 'bad'; message: string };

/**
 * The offline report's what-if engine (src/web/report-engine.ts, its own script in the report) installs this on
 * `globalThis` under `REPORT_ENGINE_GLOBAL`: the server's what-if, run in the page.
 */
export interface ReportEngine {
  /** `places` is the model's `topology.places`; `known` the names of the model's `files`. */
  whatIf(req: WhatIfRequest, places: Readonly<Record<string, string>>, known: readonly string[]): WhatIfAnswer;
  /** Loads and diagnoses the embedded scenario now, so that the first what-if only re-traces. */
  warm(): void;
}
export const REPORT_ENGINE_GLOBAL = 'lvsdoctorEngine';
