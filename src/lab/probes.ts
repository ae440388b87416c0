/**
 * Real probes: a TCP connection (an HTTP request) from the probing node's namespace, with the probe's source port,
 * or an ARP request sent on a raw socket; then the captures read back with the project's pcap reader.
 */
import { existsSync, readFileSync } from 'node:fs';
import { formatIpv4 } from '../addr/ipv4.ts';
import { readPcap } from '../capture/pcap.ts';
import type { LoadedScenario } from '../topology/load-scenario.ts';
import type { ProbeSpec } from '../topology/model.ts';
import { parseEthernet } from '../wire/ethernet.ts';
import type { SeenFrame } from './correlate.ts';
import { probeKey } from './correlate.ts';
import { inNs, run } from './exec.ts';
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
import json, socket, sys, time
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
    s.sendall(('GET / HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n' % host).encode())
    body = b''
    while len(body) < 4096:
        d = s.recv(4096)
        if not d:
            break
        body += d
    out['body'] = body.decode('latin-1')[:300]
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

function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

export interface ProbeRunOptions {
  /** How long a failing request may take (ms). */
  readonly timeoutMs?: number;
}

export async function runRealProbe(lab: Lab, probe: ProbeSpec, o: ProbeRunOptions = {}): Promise<RealOutcome> {
  const timeoutMs = o.timeoutMs ?? 1200;
  const ns = lab.plan.nsOf.get(probe.from);
  const startNs = nowNs();
  if (!ns) return { ok: false, detail: `no namespace for ${probe.from}`, startNs, endNs: nowNs() };
  const key = probeKey(lab.loaded, probe);
  if (probe.kind === 'tcp') {
    const r = await run(
      inNs(ns, [
        preflight().python,
        '-c',
        CLIENT_PY,
        formatIpv4(probe.to),
        String(probe.dport),
        String(probe.sport),
        formatIpv4(key.src),
        String(timeoutMs / 1000),
      ]),
      { allowFail: true, timeoutMs: timeoutMs + 5000 },
    );
    const endNs = nowNs();
    try {
      const j = JSON.parse(r.stdout) as {
        connected: boolean;
        error?: string;
        ms: number;
        connectMs?: number;
        body?: string;
      };
      const body = j.body ?? '';
      const status = body.split('\r\n')[0] ?? '';
      const served = /served by (\S+)/.exec(body)?.[1];
      const detail = j.connected
        ? `connected after ${j.connectMs} ms${status ? `; ${status}` : ''}${served ? ` from ${served}` : ''}${j.error ? ` (then ${j.error})` : ''}`
        : j.error === 'timeout'
          ? `no answer within ${timeoutMs} ms`
          : `failed after ${j.ms} ms: ${j.error ?? '?'}`;
      return { ok: j.connected, detail, ...(served ? { servedBy: served } : {}), startNs, endNs };
    } catch {
      return { ok: false, detail: `client failed: ${r.stderr.trim() || r.stdout.trim()}`, startNs, endNs };
    }
  }
  const node = lab.loaded.scenario.nodes.get(probe.from);
  const ifc = [...(node?.interfaces.values() ?? [])].find(
    (i) => i.kind !== 'loopback' && i.addrs.some((a) => a.prefix.addr === key.src),
  );
  if (!ifc)
    return { ok: false, detail: `${probe.from} has no interface in the target's subnet`, startNs, endNs: nowNs() };
  const r = await run(
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
    { allowFail: true, timeoutMs: timeoutMs + 5000 },
  );
  const endNs = nowNs();
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

export function labProbes(loaded: LoadedScenario): ProbeSpec[] {
  return [...loaded.scenario.probes];
}
