/**
 * The founding case's collector bundles (recorded from a real kernel, fixtures/collect/founding-real) given live
 * evidence: a watch window on host1 in which chosen rules counted, and a kernel trace the collector carried.
 */
import { appendFileSync, cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const FOUNDING_BUNDLES = join(import.meta.dirname, '..', '..', 'fixtures', 'collect', 'founding-real');
export const FOUNDING_TRACES = join(import.meta.dirname, '..', '..', 'fixtures', 'kernel-traces', 'founding-real');

/**
 * A copy of the founding bundles under `dir` where host1 has a watch window: `end` edits host1's ebtables nat
 * listing; `extra` gives other listings at both ends. Returns the bundle paths (host1's first).
 */
export function withWindow(
  dir: string,
  end: (nat: string) => string,
  extra: Record<string, [string, string]> = {},
): string[] {
  cpSync(FOUNDING_BUNDLES, dir, { recursive: true });
  const h1 = join(dir, 'lvsdoctor-bundle-hypervisor-host1');
  const nat = readFileSync(join(h1, 'cmd', 'ebtables-nat.out'), 'utf8');
  const files: Record<string, [string, string]> = { 'ebtables-nat': [nat, end(nat)], ...extra };
  let m =
    'watch-seconds\t10\nwatch-start\t2026-11-25T20:26:00Z 1795638360\nwatch-end\t2026-11-25T20:26:10Z 1795638370\n';
  for (const [id, [a, b]] of Object.entries(files))
    for (const [phase, text] of [
      ['start', a],
      ['end', b],
    ] as const) {
      writeFileSync(join(h1, 'cmd', `counters-${phase}-${id}.out`), text);
      writeFileSync(join(h1, 'cmd', `counters-${phase}-${id}.err`), '');
      m += `cmd\tcounters-${phase}-${id}\tok\t0\tcmd/counters-${phase}-${id}.out\tcmd/counters-${phase}-${id}.err\t${id}\n`;
    }
  appendFileSync(join(h1, 'manifest.tsv'), m);
  return [
    'lvsdoctor-bundle-hypervisor-host1',
    'lvsdoctor-bundle-hypervisor-host2',
    'lvsdoctor-bundle-guest-director1',
    'lvsdoctor-bundle-guest-rs2',
    'lvsdoctor-bundle-guest-router',
  ].map((b) => join(dir, b));
}

/** Adds packets/bytes to the counters of rule N of CHAIN in an ebtables --Lc listing. */
export function bump(text: string, chain: string, n: number, p: number, b: number): string {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith(`Bridge chain: ${chain},`));
  const i = at + n;
  lines[i] = lines[i]!.replace(
    /pcnt = (\d+) -- bcnt = (\d+)/,
    (_, a, c) => `pcnt = ${Number(a) + p} -- bcnt = ${Number(c) + b}`,
  );
  return lines.join('\n');
}

/** Makes a bundle carry a kernel trace (as `collect.sh --trace FILE` does): `text` as kernel-trace-N. */
export function carryTrace(bundle: string, text: string, n = 1): void {
  writeFileSync(join(bundle, 'cmd', `kernel-trace-${n}.out`), text);
  writeFileSync(join(bundle, 'cmd', `kernel-trace-${n}.err`), '');
  appendFileSync(
    join(bundle, 'manifest.tsv'),
    `cmd\tkernel-trace-${n}\tok\t0\tcmd/kernel-trace-${n}.out\tcmd/kernel-trace-${n}.err\tcat /root/trace-${n}.txt\n`,
  );
}

/**
 * A copy of examples/kvm-lvs-dr at `dir` with a stale filter parameter: the VIP added to IP in host1's domain XML
 * (the model then lets the ARP reply pass, which the recorded kernel drops).
 */
export function staleIpExample(dir: string): string {
  cpSync(join(import.meta.dirname, '..', '..', 'examples', 'kvm-lvs-dr'), dir, { recursive: true });
  const xml = join(dir, 'host1', 'r2-10105.xml');
  writeFileSync(
    xml,
    readFileSync(xml, 'utf8').replace(
      "<parameter name='IP' value='192.0.2.200'/>",
      "<parameter name='IP' value='192.0.2.200'/>\n        <parameter name='IP' value='192.0.2.208'/>",
    ),
  );
  return dir;
}
