/** Where something came from: a file position, and for derived objects the chain of things that produced it. */
export interface Position {
  /** File name relative to the scenario or as the user named it. */
  readonly file: string;
  /** 1-based line, 0 when unknown. */
  readonly line: number;
  /** 1-based column, when known. */
  readonly column?: number;
}

export type OriginKind =
  | 'file' // a line of an artifact (listing line, YAML key, XML element)
  | 'nwfilter-rule' // a <rule> of an nwfilter
  | 'nwfilter-filter' // a <filter> (built-in or custom)
  | 'filterref' // a <filterref> that pulled a filter in
  | 'domain-interface' // a domain <interface> (or a filter binding) that bound the top filter
  | 'binding' // a <filterbinding>
  | 'ipvs' // an IPVS service or real-server line
  | 'scenario' // the scenario YAML
  | 'implicit' // behaviour nobody configured: chain policy, kernel default, bridge default
  | 'fix'; // an edit proposed by lvsdoctor

/**
 * One link of an origin chain. `via` points to what pulled this object in, so a compiled ebtables rule reads
 * rule ← filter ← filterref ← domain interface.
 */
export interface Origin {
  readonly kind: OriginKind;
  /** Short human label, e.g. `nwfilter no-ip-spoofing rule priority=1000 action=drop`. */
  readonly label: string;
  readonly pos?: Position;
  readonly via?: Origin;
  /** Structured facts for JSON output and for diagnosis (filter name, priority, parameters…). */
  readonly data?: Readonly<Record<string, string | number | boolean | readonly string[]>>;
}

export function implicit(label: string, data?: Origin['data']): Origin {
  return data === undefined ? { kind: 'implicit', label } : { kind: 'implicit', label, data };
}

export function filePos(file: string, line: number, column?: number): Position {
  return column === undefined ? { file, line } : { file, line, column };
}

export function formatPosition(p: Position): string {
  if (p.line <= 0) return p.file;
  return p.column === undefined ? `${p.file}:${p.line}` : `${p.file}:${p.line}:${p.column}`;
}

/** The chain from the object itself up to the outermost cause. */
export function originChain(o: Origin): Origin[] {
  const out: Origin[] = [];
  for (let cur: Origin | undefined = o; cur; cur = cur.via) out.push(cur);
  return out;
}

export function renderOriginChain(o: Origin, sep = ' ← '): string {
  return originChain(o)
    .map((x) => (x.pos ? `${x.label} (${formatPosition(x.pos)})` : x.label))
    .join(sep);
}

/** Finds the first link of a kind in the chain. */
export function findOrigin(o: Origin | undefined, kind: OriginKind): Origin | undefined {
  for (let cur = o; cur; cur = cur.via) if (cur.kind === kind) return cur;
  return undefined;
}
