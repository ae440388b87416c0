/**
 * Real probes: a TCP connection (an HTTP request) from the probing node's namespace, with the probe's source port,
 * or an ARP request sent on a raw socket; then the captures read back with the project's pcap reader.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { formatIpv4 } from '../addr/ipv4.ts';
import { PcapReader, readPcap } from '../capture/pcap.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { AnyProbeSpec } from '../topology/model.ts';
import { UDP_QUERY_BYTES } from '../trace/probe.ts';
import { diagnosisPlan } from '../trace/probe-plan.ts';
import { parseEthernet } from '../wire/ethernet.ts';
import {
  frameRank,
  type L2View,
  type LastSeen,
  lastSeen,
  type ProbeKey,
  probeKey,
  type SeenFrame,
} from './correlate.ts';
import { inNs, type RunResult, run } from './exec.ts';
import type { Lab } from './lab.ts';
import { preflight } from './preflight.ts';

export interface RealOutcome {
  readonly ok: boolean;
  /** What happened, in words (`connected in 3 ms; HTTP/1.1 200 OK`, `timeout after 1500 ms`, …). */
  readonly detail: string;
  /** Which node served (from the HTTP body), when known. */
  readonly servedBy?: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

/** A real HTTP request with the probe's source port; prints what happened as JSON. */
const CLIENT_PY = `
import json, re, socket, sys, time
host, port, lport, laddr, tmo = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
t0 = time.time()
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((laddr, lport))
s.settimeout(tmo)
out = {'connected': False}
try:
    s.connect((host, port))
    out['connected'] = True
    out['connectMs'] = int((time.time() - t0) * 1000)
    # A full-size request (more than one segment: the first is as large as the path allows, DF set), then the
    # whole response: the conversation the simulator walks, not only its handshake.
    s.sendall(('GET / HTTP/1.0\\r\\nHost: %s\\r\\nX-Pad: %s\\r\\n\\r\\n' % (host, 'p' * 3000)).encode())
    resp = b''
    while len(resp) < 65536:
        d = s.recv(65536)
        if not d:
            break
        resp += d
    head, _, body = resp.partition(b'\\r\\n\\r\\n')
    m = re.search(rb'Content-Length: (\\d+)', head)
    out['complete'] = m is not None and len(body) == int(m.group(1))
    out['received'] = len(resp)
    out['body'] = (head + b'\\r\\n\\r\\n' + body).decode('latin-1')[:300]
except socket.timeout:
    out['error'] = 'timeout'
except OSError as e:
    out['error'] = e.strerror or str(e)
out['ms'] = int((time.time() - t0) * 1000)
print(json.dumps(out))
`;

/** One datagram (the size of the simulator's query) from the probe's source port; the first answer back, as JSON. */
const UDP_PY = `
import json, socket, sys, time
host, port, lport, laddr, tmo, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5]), int(sys.argv[6])
t0 = time.time()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((laddr, lport))
s.settimeout(tmo)
out = {'ok': False}
try:
    s.sendto(b'q' * size, (host, port))
    while True:
        d, a = s.recvfrom(2048)
        if a == (host, port):
            out['ok'] = True
            out['body'] = d.decode('latin-1')[:200]
            break
        out['other'] = '%s:%d' % a
except socket.timeout:
    out['error'] = 'timeout'
except OSError as e:
    out['error'] = e.strerror or str(e)
out['ms'] = int((time.time() - t0) * 1000)
print(json.dumps(out))
`;

const ARP_PY = `
import json, socket, struct, sys, time
ifc, target, spa, sha, tmo = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806))
s.bind((ifc, 0))
mac = bytes.fromhex(sha.replace(':', ''))
arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(spa) + b'\\x00' * 6 + socket.inet_aton(target)
frame = b'\\xff' * 6 + mac + b'\\x08\\x06' + arp
s.send(frame + b'\\x00' * (60 - len(frame)))
t0 = time.time()
while True:
    left = tmo - (time.time() - t0)
    if left <= 0:
        print(json.dumps({'ok': False, 'detail': 'no ARP reply within %d ms' % (tmo * 1000)}))
        break
    s.settimeout(left)
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    if len(data) < 42 or data[12:14] != b'\\x08\\x06':
        continue
    op = struct.unpack('!H', data[20:22])[0]
    if op == 2 and data[28:32] == socket.inet_aton(target):
        print(json.dumps({'ok': True, 'detail': '%s is-at %s after %d ms' % (target, ':'.join('%02x' % b for b in data[22:28]), (time.time() - t0) * 1000)}))
        break
`;

function stopped(s: { lastSeen: LastSeen; ms: number }): string {
  return `no answer; stopped after ${s.ms} ms, nothing having moved since the ${s.lastSeen.stage ?? 'packet'} was last seen at ${s.lastSeen.point}`;
}

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export interface ProbeRunOptions {
  /** How long a failing request may take (ms). */
  readonly timeoutMs?: number;
  /**
   * Where the simulator says the probe's packets end when it fails. The kernel's probe is stopped before its timeout
   * once its captures show the packets last seen at exactly that point and stage and nothing of the probe has moved
   * for `quietMs`: what could still happen then waits on a timer of a second or more (ARP or SYN retransmission),
   * which the simulator does not model either. A probe that does anything else gets its full timeout.
   */
  readonly expect?: { readonly view: L2View; readonly lastSeen: LastSeen };
  /** Quiet time before a probe that failed where the simulator says is stopped (ms; default 300, 0 = never). */
  readonly quietMs?: number;
}

/** Reads what tcpdump has written so far, from where the previous call stopped. */
class CaptureTail {
  private readonly readers = new Map<string, { reader: PcapReader; offset: number }>();

  constructor(private readonly lab: Lab) {}

  /** New frames since the last call, at every capture point. */
  poll(): SeenFrame[] {
    const out: SeenFrame[] = [];
    for (const [point, c] of this.lab.captures) {
      let t = this.readers.get(point);
      if (!t) {
        t = { reader: new PcapReader(c.file), offset: 0 };
        this.readers.set(point, t);
      }
      let size: number;
      try {
        size = statSync(c.file).size;
      } catch {
        continue;
      }
      if (size <= t.offset) continue;
      const buf = Buffer.alloc(size - t.offset);
      const fd = openSync(c.file, 'r');
      try {
        readSync(fd, buf, 0, buf.length, t.offset);
      } finally {
        closeSync(fd);
      }
      t.offset = size;
      for (const rec of t.reader.push(new Uint8Array(buf))) {
        try {
          out.push({ point, timeNs: rec.timeNs, frame: parseEthernet(rec.bytes) });
        } catch {
          // unparsable frames are reported by readCaptures at the end
        }
      }
    }
    return out;
  }
}

const tails = new WeakMap<Lab, CaptureTail>();

/**
 * Resolves when the probe's packets are last seen where the simulator says they end and nothing of the probe has
 * moved for `quietMs`; polls the captures until `signal` aborts.
 */
async function watchForExpectedEnd(
  lab: Lab,
  key: ProbeKey,
  expect: NonNullable<ProbeRunOptions['expect']>,
  quietMs: number,
  startNs: bigint,
  signal: AbortSignal,
): Promise<LastSeen | undefined> {
  const tail = tails.get(lab) ?? new CaptureTail(lab);
  tails.set(lab, tail);
  const mine: SeenFrame[] = [];
  const want = expect.lastSeen;
  // Frames from the probe's start on (less a clock tick): an earlier probe's frames must not count.
  const windowStart = startNs - 5_000_000n;
  while (!signal.aborted) {
    for (const f of tail.poll()) if (f.timeNs >= windowStart && frameRank(key, f.frame) > 0) mine.push(f);
    if (mine.length > 0) {
      const ls = lastSeen(expect.view, key, mine);
      let latest = 0n;
      for (const f of mine) if (f.timeNs > latest) latest = f.timeNs;
      const quietFor = Number(nowNs() - latest) / 1e6;
      if (
        ls.rank === want.rank &&
        ls.point !== undefined &&
        ls.point === want.point &&
        ls.stage === want.stage &&
        quietFor >= quietMs
      )
        return ls;
    }
    await new Promise((r) => setTimeout(r, 40));
  }
  return undefined;
}

/** Runs a prober, stopping it early when its packets end where the simulator expects (see `ProbeRunOptions`). */
async function runProber(
  lab: Lab,
  argv: readonly string[],
  key: ProbeKey,
  o: ProbeRunOptions,
  timeoutMs: number,
  startNs: bigint,
): Promise<{ r: RunResult; stoppedAt?: { lastSeen: LastSeen; ms: number } }> {
  const quietMs = o.quietMs ?? 300;
  if (!o.expect || quietMs <= 0 || o.expect.lastSeen.rank === 0)
    return { r: await run(argv, { allowFail: true, timeoutMs: timeoutMs + 5000 }) };
  const stop = new AbortController();
  const watch = new AbortController();
  const t0 = performance.now();
  let stoppedAt: { lastSeen: LastSeen; ms: number } | undefined;
  const watcher = watchForExpectedEnd(lab, key, o.expect, quietMs, startNs, watch.signal).then((ls) => {
    if (ls) {
      stoppedAt = { lastSeen: ls, ms: Math.round(performance.now() - t0) };
      stop.abort();
    }
  });
  const r = await run(argv, { allowFail: true, timeoutMs: timeoutMs + 5000, signal: stop.signal });
  watch.abort();
  await watcher;
  return { r, ...(stoppedAt ? { stoppedAt } : {}) };
}

export async function runRealProbe(lab: Lab, probe: AnyProbeSpec, o: ProbeRunOptions = {}): Promise<RealOutcome> {
  const timeoutMs = o.timeoutMs ?? 1200;
  const ns = lab.plan.nsOf.get(probe.from);
  const startNs = nowNs();
  if (!ns) return { ok: false, detail: `no namespace for ${probe.from}`, startNs, endNs: nowNs() };
  const key = probeKey(lab.loaded, probe);
  // TCP and UDP: the prober script with the target, the probe's ports and source address, and the timeout.
  const flowProber = (script: string, ...extra: string[]) =>
    probe.kind === 'arp'
      ? undefined
      : runProber(
          lab,
          inNs(ns, [
            preflight().python,
            '-c',
            script,
            formatIpv4(probe.to),
            String(probe.dport),
            String(probe.sport),
            formatIpv4(key.src),
            String(timeoutMs / 1000),
            ...extra,
          ]),
          key,
          o,
          timeoutMs,
          startNs,
        );
  if (probe.kind === 'tcp') {
    const { r, stoppedAt } = (await flowProber(CLIENT_PY))!;
    const endNs = nowNs();
    if (stoppedAt && !r.stdout.trim()) return { ok: false, detail: stopped(stoppedAt), startNs, endNs };
    try {
      const j = JSON.parse(r.stdout) as {
        connected: boolean;
        error?: string;
        ms: number;
        connectMs?: number;
        body?: string;
        complete?: boolean;
        received?: number;
      };
      const body = j.body ?? '';
      const status = body.split('\r\n')[0] ?? '';
      const served = /served by (\S+)/.exec(body)?.[1];
      // Success is the whole conversation: the handshake, the full-size request, the complete response.
      const ok = j.connected && j.complete === true;
      const detail = !j.connected
        ? j.error === 'timeout'
          ? `no answer within ${timeoutMs} ms`
          : `failed after ${j.ms} ms: ${j.error ?? '?'}`
        : ok
          ? `connected after ${j.connectMs} ms; ${status}${served ? ` from ${served}` : ''}, full response`
          : `connected after ${j.connectMs} ms, but the full-size request got ${status ? `an incomplete response (${j.received ?? 0} bytes; ${status})` : 'no response'}${j.error ? ` (${j.error === 'timeout' ? `timeout after ${timeoutMs} ms` : j.error})` : ''}`;
      return { ok, detail, ...(served ? { servedBy: served } : {}), startNs, endNs };
    } catch {
      return { ok: false, detail: `client failed: ${r.stderr.trim() || r.stdout.trim()}`, startNs, endNs };
    }
  }
  if (probe.kind === 'udp') {
    const { r, stoppedAt } = (await flowProber(UDP_PY, String(UDP_QUERY_BYTES)))!;
    const endNs = nowNs();
    if (stoppedAt && !r.stdout.trim()) return { ok: false, detail: stopped(stoppedAt), startNs, endNs };
    try {
      const j = JSON.parse(r.stdout) as { ok: boolean; error?: string; ms: number; body?: string; other?: string };
      const served = /served by (\S+)/.exec(j.body ?? '')?.[1];
      const detail = j.ok
        ? `answered after ${j.ms} ms${served ? ` by ${served}` : ''}`
        : j.error === 'timeout'
          ? `no answer within ${timeoutMs} ms${j.other ? ` (an answer came from ${j.other} instead)` : ''}`
          : `failed after ${j.ms} ms: ${j.error ?? '?'}`;
      return { ok: j.ok, detail, ...(served ? { servedBy: served } : {}), startNs, endNs };
    } catch {
      return { ok: false, detail: `UDP prober failed: ${r.stderr.trim() || r.stdout.trim()}`, startNs, endNs };
    }
  }
  const node = lab.loaded.scenario.nodes.get(probe.from);
  const ifc = [...(node?.interfaces.values() ?? [])].find(
    (i) => i.kind !== 'loopback' && i.addrs.some((a) => a.prefix.addr === key.src),
  );
  if (!ifc)
    return { ok: false, detail: `${probe.from} has no interface in the target's subnet`, startNs, endNs: nowNs() };
  const { r, stoppedAt } = await runProber(
    lab,
    inNs(ns, [
      preflight().python,
      '-c',
      ARP_PY,
      ifc.name,
      formatIpv4(probe.target),
      formatIpv4(key.src),
      ifc.mac,
      String(timeoutMs / 1000),
    ]),
    key,
    o,
    timeoutMs,
    startNs,
  );
  const endNs = nowNs();
  if (stoppedAt && !r.stdout.trim()) return { ok: false, detail: stopped(stoppedAt), startNs, endNs };
  try {
    const j = JSON.parse(r.stdout) as { ok: boolean; detail: string };
    return { ok: j.ok, detail: j.detail, startNs, endNs };
  } catch {
    return { ok: false, detail: `ARP prober failed: ${r.stderr.trim()}`, startNs, endNs };
  }
}

/** Every frame of every capture point, read back with the project's reader. */
export function readCaptures(lab: Lab): { frames: SeenFrame[]; issues: string[] } {
  const frames: SeenFrame[] = [];
  const issues: string[] = [];
  for (const [point, c] of lab.captures) {
    if (!existsSync(c.file)) {
      issues.push(`${point}: no capture file`);
      continue;
    }
    const r = readPcap(new Uint8Array(readFileSync(c.file)), c.file);
    for (const i of r.issues) issues.push(`${point}: ${i.message}`);
    for (const rec of r.value?.records ?? []) {
      try {
        frames.push({ point, timeNs: rec.timeNs, frame: parseEthernet(rec.bytes) });
      } catch (e) {
        issues.push(`${point}: unparsable frame: ${(e as Error).message}`);
      }
    }
  }
  return { frames, issues };
}

/**
 * The probes lab runs: diagnose's whole list (`diagnosisPlan`: TCP, UDP, ARP), the connections pinned to one real
 * server included — for each, the directors are reloaded to send that service's new flows to that server (real IPVS:
 * it alone keeps a weight), as IPVS's scheduler does for the client flow the probe stands for.
 */
export function labProbes(loaded: LoadedScenario): AnyProbeSpec[] {
  return diagnosisPlan(loaded).map((p) => p.spec);
}
