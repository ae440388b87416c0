/**
 * Benchmark: compile `clean-traffic` bindings for 10,000 interfaces (distinct MAC/IP) into the netfilter model and
 * into `ebtables-save` text (goal ≤ 1 s total; the model makes a chain's rule objects when first read — the figure
 * with every rule read afterwards is printed too), and — as root with libvirt installed — measure a real libvirt 9.0
 * creating the same kind of binding for 20 interfaces in a throw-away network namespace, and report the
 * per-interface ratio (goal ≥ 10,000×). Prints figures only.   npx tsx bench/nwfilter-compile.ts
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Mac } from '../src/addr/mac.ts';
import { filterRegistry } from '../src/libvirt/builtin-filters.ts';
import { compileBindings } from '../src/libvirt/compile.ts';
import type { NwFilterBinding } from '../src/libvirt/nwfilter-model.ts';
import { renderEbtablesSave } from '../src/netfilter/ebtables-render.ts';

const N = Number(process.env.BENCH_INTERFACES ?? 10_000);
const REAL_N = Number(process.env.BENCH_REAL_INTERFACES ?? 20);

function binding(i: number): NwFilterBinding {
  const mac = `52:54:00:${((i >> 16) & 255).toString(16).padStart(2, '0')}:${((i >> 8) & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`;
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${Math.min((i & 255) + 1, 254)}`;
  return {
    portdev: `vnet${i}`,
    mac: mac as Mac,
    filter: 'clean-traffic',
    params: new Map([['IP', [ip]]]),
    origin: { kind: 'binding', label: `bench binding vnet${i}` },
  };
}

function ours(): { ms: number; modelMs: number; readMs: number; rules: number; bytes: number } {
  const registry = filterRegistry();
  const bindings = Array.from({ length: N }, (_, i) => binding(i));
  const t0 = performance.now();
  const compiled = compileBindings(bindings, registry, { commands: false });
  const t1 = performance.now();
  const text = renderEbtablesSave(compiled.nat);
  const ms = performance.now() - t0;
  // Afterwards, every rule of the model read once (and kept, as any reader of `chain.rules` makes them).
  const t2 = performance.now();
  const rules = compiled.nat.chains.reduce((n, c) => n + c.rules.length, 0);
  const readMs = performance.now() - t2;
  return { ms, modelMs: t1 - t0, readMs, rules, bytes: text.length };
}

function sh(args: string[]): { status: number; out: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status ?? -1, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function real(): Promise<{ ms: number } | { skipped: string }> {
  if (REAL_N <= 0) return { skipped: 'BENCH_REAL_INTERFACES=0' };
  if (process.getuid?.() !== 0) return { skipped: 'not root' };
  for (const t of ['ip', 'unshare', 'nsenter', 'libvirtd', 'virsh', 'ebtables']) {
    if (sh(['sh', '-c', `command -v ${t}`]).status !== 0) return { skipped: `${t} not installed` };
  }
  if (!existsSync('/etc/libvirt/nwfilter/clean-traffic.xml'))
    return { skipped: 'libvirt-daemon-config-nwfilter not installed' };
  const ns = `lvsdnfb-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'lvsdnfb-'));
  let pid: number | undefined;
  try {
    mkdirSync(join(dir, 'nwfilter'));
    for (const f of readdirSync('/etc/libvirt/nwfilter'))
      copyFileSync(join('/etc/libvirt/nwfilter', f), join(dir, 'nwfilter', f));
    sh(['ip', 'netns', 'add', ns]);
    const links = ['link add br0 type bridge', 'link set br0 up'];
    for (let i = 0; i < REAL_N; i++)
      links.push(`link add vnet${i} type veth peer name g${i}`, `link set vnet${i} master br0`, `link set vnet${i} up`);
    writeFileSync(join(dir, 'links'), `${links.join('\n')}\n`);
    sh(['ip', '-n', ns, '-batch', join(dir, 'links')]);
    if (sh(['getent', 'passwd', 'libvirt-qemu']).status !== 0) {
      sh(['groupadd', '-r', 'libvirt-qemu']);
      sh(['useradd', '-r', '-g', 'libvirt-qemu', '-s', '/usr/sbin/nologin', 'libvirt-qemu']);
    }
    for (const d of ['/run/libvirt', '/var/lib/libvirt', '/var/log/libvirt']) mkdirSync(d, { recursive: true });
    writeFileSync(
      join(dir, 'start.sh'),
      [
        'set -e',
        'mount -t tmpfs tmpfs /run/libvirt',
        'mount -t tmpfs tmpfs /var/lib/libvirt',
        'mount -t tmpfs tmpfs /var/log/libvirt',
        `mount --bind ${join(dir, 'nwfilter')} /etc/libvirt/nwfilter`,
        `exec libvirtd --pid-file ${join(dir, 'libvirtd.pid')}`,
      ].join('\n'),
    );
    spawn('ip', ['netns', 'exec', ns, 'unshare', '--mount', '--propagation', 'private', 'sh', join(dir, 'start.sh')], {
      stdio: 'ignore',
      detached: false,
    });
    const virsh = (cmd: string) =>
      sh(['nsenter', '-t', `${pid}`, '-m', '-n', 'virsh', '-q', '-c', 'nwfilter:///system', cmd]);
    for (let i = 0; i < 150; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const pf = join(dir, 'libvirtd.pid');
      if (pid === undefined && existsSync(pf)) pid = Number(readFileSync(pf, 'utf8').trim()) || undefined;
      if (pid !== undefined && virsh('nwfilter-list').status === 0) break;
    }
    if (pid === undefined) return { skipped: 'libvirtd did not start' };
    const files = Array.from({ length: REAL_N }, (_, i) => {
      const b = binding(i);
      const f = join(dir, `b${i}.xml`);
      writeFileSync(
        f,
        `<filterbinding><owner><name>bench${i}</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner><portdev name='${b.portdev}'/><mac address='${b.mac}'/><filterref filter='clean-traffic'><parameter name='IP' value='${b.params.get('IP')![0]}'/></filterref></filterbinding>`,
      );
      return f;
    });
    const t0 = performance.now();
    for (const f of files) {
      const r = virsh(`nwfilter-binding-create ${f}`);
      if (r.status !== 0) throw new Error(`binding failed: ${r.out}`);
    }
    return { ms: performance.now() - t0 };
  } finally {
    if (pid !== undefined && existsSync(`/proc/${pid}`)) {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 50 && existsSync(`/proc/${pid}`); i++) execFileSync('sleep', ['0.1']);
      if (existsSync(`/proc/${pid}`)) process.kill(pid, 'SIGKILL');
    }
    sh(['ip', 'netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

const o = ours();
console.log(
  `lvsdoctor: ${N} clean-traffic bindings → model + ebtables-save: ${o.ms.toFixed(0)} ms total (model ${o.modelMs.toFixed(0)} ms, ebtables-save ${(o.ms - o.modelMs).toFixed(0)} ms; ${((o.ms * 1000) / N).toFixed(1)} µs per interface; ${o.rules} rules, ${(o.bytes / 1e6).toFixed(1)} MB of text; goal ≤ 1000 ms)`,
);
console.log(
  `  then every rule of the model read once (rule objects made and kept): ${o.readMs.toFixed(0)} ms more (${(o.ms + o.readMs).toFixed(0)} ms in all)`,
);
const r = await real();
if ('skipped' in r) console.log(`real libvirt: skipped (${r.skipped})`);
else {
  const perReal = r.ms / REAL_N;
  const perOurs = o.ms / N;
  console.log(
    `real libvirt 9.0: ${REAL_N} clean-traffic bindings in ${r.ms.toFixed(0)} ms (${perReal.toFixed(0)} ms per interface)`,
  );
  console.log(`per-interface ratio: ${(perReal / perOurs).toFixed(0)}× (goal ≥ 10,000×)`);
}
