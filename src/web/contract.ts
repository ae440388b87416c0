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
  }[];
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
