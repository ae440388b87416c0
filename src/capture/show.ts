/**
 * `lvsdoctor captures show FILE`: a pcap or pcapng capture printed as tcpdump 4.99 prints it (`tcpdump -r FILE` with
 * `-e`, `-v…` as asked, numeric as with `-nn`). Lines of frames the renderer decodes are byte-identical to tcpdump's;
 * frames carrying something tcpdump decodes and lvsdoctor does not (LLDP, IPv6, DNS, …) are printed as far as the
 * renderer goes and listed, with what was not decoded, so nobody mistakes them for tcpdump's output.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { type Issue, issue } from '../source/issue.ts';
import { TCPDUMP_LINK_TYPES, type TcpdumpOptions, TcpdumpRenderer } from '../wire/tcpdump.ts';
import { isText } from './correlate-files.ts';
import { linkName } from './link.ts';
import { scanCaptureFile } from './scanner.ts';

export interface ShowSummary {
  readonly frames: number;
  /** Frames whose line is tcpdump's, byte for byte. */
  readonly decoded: number;
  /** What was not decoded → the frame numbers (1-based, as `tcpdump -#` counts) that carry it. */
  readonly undecoded: ReadonlyMap<string, readonly number[]>;
  /** Frames of link types lvsdoctor reads but does not print as tcpdump does (not printed). */
  readonly notRendered: ReadonlyMap<string, readonly number[]>;
  /** Frames of Linux cooked v2 (`tcpdump -i any`): their interface names are the reading machine's (see below). */
  readonly cookedV2: number;
  readonly issues: readonly Issue[];
}

/** Prints every frame of `file` through `out` (one call per line, with its newline). Never throws. */
export function showCapture(file: string, options: TcpdumpOptions, out: (text: string) => void): ShowSummary {
  if (isText(file))
    return {
      frames: 0,
      decoded: 0,
      undecoded: new Map(),
      notRendered: new Map(),
      cookedV2: 0,
      issues: [
        issue(
          'capture-show-text',
          'this is tcpdump text already; `captures show` prints pcap and pcapng captures (a paste has lost the bytes tcpdump would print again)',
          { file, line: 0 },
        ),
      ],
    };
  const r = new TcpdumpRenderer(options);
  const undecoded = new Map<string, number[]>();
  const notRendered = new Map<string, number[]>();
  let frames = 0;
  let decoded = 0;
  let cookedV2 = 0;
  let buffered = '';
  const s = scanCaptureFile(file, (linkType, b, off, caplen, origLen, sec, nsec) => {
    frames++;
    if (linkType === 276) cookedV2++;
    if (!TCPDUMP_LINK_TYPES.has(linkType)) {
      const k = `link type ${linkType} (${linkName(linkType) ?? 'unknown'})`;
      const l = notRendered.get(k) ?? [];
      l.push(frames);
      notRendered.set(k, l);
      return;
    }
    const line = r.render(
      b.subarray(off, off + caplen),
      BigInt(sec) * 1_000_000_000n + BigInt(nsec),
      origLen,
      linkType,
    );
    if (r.lastUndecoded === undefined) decoded++;
    else {
      const l = undecoded.get(r.lastUndecoded) ?? [];
      l.push(frames);
      undecoded.set(r.lastUndecoded, l);
    }
    buffered += `${line}\n`;
    if (buffered.length > 1 << 16) {
      out(buffered);
      buffered = '';
    }
  });
  if (buffered) out(buffered);
  return { frames, decoded, undecoded, notRendered, cookedV2, issues: s.issues };
}

let localNames: Map<number, string> | undefined;

/**
 * The name this machine gives an interface index, as tcpdump 4.99 prints Linux cooked v2 captures (`if_indextoname`
 * on the reading machine, in its network namespace: it warns "interface names might be incorrect"). Read once from
 * `/sys/class/net/NAME/ifindex`; undefined where there is no such index (or no /sys).
 */
export function localInterfaceName(ifindex: number): string | undefined {
  if (localNames === undefined) {
    localNames = new Map();
    try {
      for (const name of readdirSync('/sys/class/net')) {
        try {
          localNames.set(Number(readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim()), name);
        } catch {
          // An interface that went away while listing: no name, as if_indextoname would say.
        }
      }
    } catch {
      // No /sys (not Linux): every index is printed as `?`, as tcpdump does where if_indextoname fails.
    }
  }
  return localNames.get(ifindex);
}

/** `frames 3, 5, 9 and 12 more` */
export function frameList(frames: readonly number[], max = 8): string {
  const shown = frames.slice(0, max).join(', ');
  return frames.length > max ? `${shown} and ${frames.length - max} more` : shown;
}
