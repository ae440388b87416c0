/**
 * The `lvsdoctor` command line. Exit codes: 0 healthy, 1 a problem found, 2 bad input or usage, 70 an internal
 * error (a bug of lvsdoctor: never a finding). `main` never calls process.exit and never throws, so it can be tested
 * in-process.
 */
import tab from '@bomb.sh/tab/commander';
import { Command, CommanderError } from '@commander-js/extra-typings';
import { FileError } from '../source/files.ts';
import { runCaptures, runCapturesShow } from './cmd-captures.ts';
import { runCheck, runFindings } from './cmd-check.ts';
import { runCollectScript, runImport } from './cmd-collect.ts';
import { runDiagnoseInputs } from './cmd-diagnose.ts';
import { runIpvsShow, runIpvsSimulate } from './cmd-ipvs.ts';
import { runLab } from './cmd-lab.ts';
import { runNwfilterCompile } from './cmd-nwfilter.ts';
import { runProxmoxCheck, runProxmoxCompile } from './cmd-proxmox.ts';
import { runRules } from './cmd-rules.ts';
import { runDiagnoseHtml, startServe } from './cmd-serve.ts';
import { runTrace } from './cmd-trace.ts';
import { paint, plainRequested } from './colour.ts';
import { currentInput, type Io, resetCurrentInput, UsageError } from './io.ts';

export type { Io } from './io.ts';

export const VERSION = '0.1.0';

/** Repeatable options collect their values. */
function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

/** Exit code of an unexpected exception (sysexits' EX_SOFTWARE): distinct from 1 (a problem found) and 2 (bad input). */
export const EXIT_INTERNAL = 70;

/**
 * Runs the command line. An unexpected exception is one line on stderr naming the command and what it was reading,
 * exit 70; the stack trace only with `--debug` (anywhere on the line) or LVSDOCTOR_DEBUG=1.
 */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  const debug = argv.includes('--debug') || process.env.LVSDOCTOR_DEBUG === '1';
  const args = argv.filter((a) => a !== '--debug');
  try {
    return await run(args, io);
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    const inputs = args.filter((a, i) => i > 0 && !a.startsWith('-')).slice(0, 3);
    const what = `${args[0] ?? ''}${inputs.length > 0 ? ` ${inputs.join(' ')}` : ''}`;
    const msg = `${err.name}: ${err.message}`.replace(/\s+/g, ' ').slice(0, 400);
    io.stderr(
      `lvsdoctor: internal error while running "${what.replace(/\s+/g, ' ').slice(0, 300)}"${
        currentInput() ? ` (reading ${currentInput()})` : ''
      }: ${msg} — a bug in lvsdoctor, not a finding; --debug shows the stack\n`,
    );
    if (debug && err.stack) io.stderr(`${err.stack}\n`);
    return EXIT_INTERNAL;
  }
}

async function run(argv: readonly string[], ioIn: Io): Promise<number> {
  let code = 0;
  resetCurrentInput();
  const io: Io =
    ioIn.color === true && !plainRequested(argv) && !process.env.NO_COLOR
      ? { ...ioIn, stdout: (s) => ioIn.stdout(paint(s)) }
      : { ...ioIn, color: false };
  const program = new Command('lvsdoctor')
    .description('Reproduces, explains and fixes failures of LVS/IPVS load balancers on KVM/libvirt hypervisors.')
    .version(VERSION)
    .option('--debug', 'on an internal error, print its stack trace')
    .option('--no-color', 'no colour in the output (also when NO_COLOR is set, or stdout is not a terminal)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout(s),
      writeErr: (s) => io.stderr(s),
    });

  program
    .command('diagnose')
    .description('trace every probe of a scenario, say where packets die and why, and propose verified fixes')
    .argument(
      '<dir-or-bundles...>',
      'a scenario directory (scenario.yaml and the artifacts it names), or collector bundles',
    )
    .option('--json', 'print the report as JSON (schema: docs/json.md)')
    .option(
      '--fix-dir <out>',
      "write every proposed fix's files (nwfilter XML, bindings, interface snippets) into this directory",
    )
    .option('--html <file>', 'also write the report as one self-contained HTML file (opens from disk, no network)')
    .option('--capture <file@point>', 'with --html: a capture to draw on the topology; repeatable', collect, [])
    .option(
      '--trace <node=file>',
      "a kernel trace saved on that node (nft monitor trace, xtables-monitor --trace, kfree_skb, dropwatch, pwru), or that node's nft -a list ruleset / ebtables -L --Lc / iptables-save -c to place traced rules; repeatable",
      collect,
      [],
    )
    .exitOverride()
    .action(async (inputs, opts) => {
      const o = {
        json: opts.json === true,
        ...(opts.fixDir !== undefined ? { fixDir: opts.fixDir } : {}),
        ...(opts.trace.length > 0 ? { traces: opts.trace } : {}),
      };
      if (opts.html !== undefined) code = await runDiagnoseHtml(io, inputs, opts.html, o, opts.capture);
      else if (opts.capture.length > 0) throw new UsageError('--capture needs --html');
      else code = runDiagnoseInputs(io, inputs, o);
    });

  program
    .command('serve')
    .description('the web app on 127.0.0.1: topology, paths, the drop and its origin, fixes and what-if')
    .argument('<dir-or-bundles...>', 'a scenario directory, or collector bundles')
    .option('--port <n>', 'port to listen on (default: a free one)', '0')
    .option('--capture <file@point>', 'a capture to draw on the topology (as `captures`); repeatable', collect, [])
    .option(
      '--trace <node=file>',
      'a kernel trace or rule listing of that node, as for diagnose; repeatable',
      collect,
      [],
    )
    .exitOverride()
    .action(async (inputs, opts) => {
      const port = Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new UsageError(`--port must be a port number (0-65535), not "${opts.port}"`);
      const running = await startServe(io, inputs, { port, captures: opts.capture, traces: opts.trace });
      code = running ? 0 : 2;
    });

  program
    .command('trace')
    .description('walk probes through the model hop by hop, with tcpdump lines at every capture point')
    .argument('<dir>', 'scenario directory')
    .option('--probe <name>', 'only this probe (default: all probes of the scenario)')
    .option('--pcap-dir <out>', 'write one pcap file per capture point into this directory')
    .option('--json', 'print the traces as JSON (schema: docs/json.md)')
    .exitOverride()
    .action((dir, opts) => {
      code = runTrace(io, dir, {
        json: opts.json === true,
        ...(opts.probe !== undefined ? { probe: opts.probe } : {}),
        ...(opts.pcapDir !== undefined ? { pcapDir: opts.pcapDir } : {}),
      });
    });

  program
    .command('rules')
    .description("print the ebtables rules libvirt installs on a host for the scenario's filter bindings")
    .argument('<dir>', 'scenario directory')
    .requiredOption('--host <name>', 'hypervisor host of the scenario')
    .option('--format <style>', 'listing style: nft (ebtables-nft, Debian 12) or legacy (ebtables 2.0)', 'nft')
    .option('--json', 'print the rules as JSON with their origins')
    .exitOverride()
    .action((dir, opts) => {
      code = runRules(io, dir, { host: opts.host, format: opts.format, json: opts.json === true });
    });

  program
    .command('check')
    .description('only the static checks of a scenario: what its configuration gets wrong, without tracing')
    .argument('<dir>', 'scenario directory')
    .option('--json', 'print the findings as JSON')
    .exitOverride()
    .action((dir, opts) => {
      code = runCheck(io, dir, { json: opts.json === true });
    });

  program
    .command('findings')
    .description('list the catalogue of findings lvsdoctor knows (docs/findings.md)')
    .option('--json', 'print the catalogue as JSON')
    .exitOverride()
    .action((opts) => {
      code = runFindings(io, { json: opts.json === true });
    });

  const captures = program
    .command('captures')
    .description('correlate captures taken at several points and say where packets vanished')
    .argument('<file@point...>', 'pcap, pcapng or pasted tcpdump text, and where it was captured (node:iface)')
    .option('--json', 'print the report as JSON')
    .option('--scenario <dir>', 'compare with the simulated path of each flow')
    .exitOverride()
    .action((specs, opts) => {
      code = runCaptures(io, specs, {
        json: opts.json === true,
        ...(opts.scenario !== undefined ? { scenario: opts.scenario } : {}),
      });
    });
  captures
    .command('show')
    .description('print a pcap or pcapng capture as tcpdump 4.99 prints it (numeric, as with -nn)')
    .argument('<file>', 'pcap or pcapng capture')
    .option('-e', "print the link-level header (tcpdump's -e)")
    .option('-v', "more detail, up to -vvv (tcpdump's -v)", (_v: string, n: number) => n + 1, 0)
    .option(
      '-n',
      'numeric addresses and ports (always; -nn and -nnn are the same here)',
      (_v: string, n: number) => n + 1,
      0,
    )
    .exitOverride()
    .action((file, opts) => {
      code = runCapturesShow(io, file, {
        link: opts.e === true,
        verbosity: typeof opts.v === 'number' ? opts.v : 1,
        numeric: typeof opts.n === 'number' ? opts.n : 1,
      });
    });

  program
    .command('lab')
    .description(
      'build the scenario on the real kernel (namespaces, bridges, real rules, real clients) and hold the simulator to it',
    )
    .argument(
      '<action>',
      'up (build and leave running), run (up, probes, down), vrrp (run real keepalived on the directors) or down (remove everything, leftovers too)',
    )
    .argument('<dir>', 'scenario directory')
    .option(
      '--filters <how>',
      'auto, libvirt (a real libvirt nwfilter driver per host) or compiled (our rules)',
      'auto',
    )
    .option('--with-fix <id>', 'apply a fix proposed by diagnose first (an id or its prefix, e.g. dr-director-filter)')
    .option('--timeout <ms>', 'how long a failing request is given', '1500')
    .option('--pcap-dir <out>', 'keep the pcaps tcpdump wrote at every capture point')
    .option('--json', 'print the report as JSON')
    .exitOverride()
    .action(async (action, dir, opts) => {
      if (action !== 'up' && action !== 'run' && action !== 'down' && action !== 'vrrp')
        throw new UsageError(`lab action must be up, run, vrrp or down, not "${action}"`);
      if (opts.filters !== 'auto' && opts.filters !== 'libvirt' && opts.filters !== 'compiled')
        throw new UsageError(`--filters must be auto, libvirt or compiled, not "${opts.filters}"`);
      const timeoutMs = Number(opts.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
        throw new UsageError(`--timeout must be a number of milliseconds, not "${opts.timeout}"`);
      code = await runLab(io, action, dir, {
        filters: opts.filters,
        timeoutMs,
        json: opts.json === true,
        ...(opts.withFix !== undefined ? { withFix: opts.withFix } : {}),
        ...(opts.pcapDir !== undefined ? { pcapDir: opts.pcapDir } : {}),
      });
    });

  program
    .command('collect-script')
    .description('print the read-only collector (POSIX sh) to run as root on a hypervisor, or with --guest in a guest')
    .option('--guest', 'the guest variant (addresses, routes, sysctls, ipvsadm, keepalived.conf)')
    .option('--watch <seconds>', 'list every counter at the start and the end of a window of this length')
    .exitOverride()
    .action((opts) => {
      code = runCollectScript(io, {
        guest: opts.guest === true,
        ...(opts.watch !== undefined ? { watch: opts.watch } : {}),
      });
    });

  program
    .command('import')
    .description('build a scenario directory from collector bundles (hypervisors and guests)')
    .argument('<bundle...>', 'bundles written by the collector (.tar.gz or directories)')
    .requiredOption('-o, --out <dir>', 'the scenario directory to write (new or empty)')
    .exitOverride()
    .action((bundles, opts) => {
      code = runImport(io, bundles, { out: opts.out });
    });

  const ipvs = program.command('ipvs').description('IPVS tables: ipvsadm listings, save files and keepalived.conf');
  ipvs
    .command('show')
    .description('read an ipvsadm -Ln listing, an ipvsadm -Sn save file or a keepalived.conf, and print it canonically')
    .argument('<file>', 'the input; its kind is detected')
    .option('--format <format>', 'ipvsadm (an ipvsadm -Ln listing), save (ipvsadm -Sn) or json', 'ipvsadm')
    .exitOverride()
    .action((file, opts) => {
      code = runIpvsShow(io, file, { format: opts.format as never });
    });
  ipvs
    .command('simulate')
    .description('run new connections through the kernel schedulers and print how they spread over the real servers')
    .argument('<file>', 'an ipvsadm -Ln listing, an ipvsadm -Sn save file or a keepalived.conf')
    .requiredOption('--connections <n>', 'how many new connections')
    .option(
      '--clients <spec>',
      'client addresses, e.g. 198.51.100.0/24 or count=1000,net=203.0.113.0/24,ports=1024-65535',
    )
    .exitOverride()
    .action((file, opts) => {
      code = runIpvsSimulate(io, file, {
        connections: Number(opts.connections),
        ...(opts.clients !== undefined ? { clients: opts.clients } : {}),
      });
    });

  const nwfilter = program.command('nwfilter').description('libvirt network filters');
  nwfilter
    .command('compile')
    .description('print exactly what libvirt 9.0 installs for a filter binding (or a domain interface)')
    .argument('<binding>', 'a <filterbinding> (virsh nwfilter-binding-dumpxml), a <domain> or an <interface>')
    .option(
      '--filter-dir <dir>',
      'custom filters (one nwfilter XML per file); repeatable',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option('--interface <mac>', 'the domain interface to use, by MAC')
    .option(
      '--format <format>',
      'ebtables-nat-L, ebtables-legacy-L, ebtables-save, iptables-save, ip6tables-save, iptables-S, ip6tables-S or json',
      'ebtables-nat-L',
    )
    .exitOverride()
    .action((binding, opts) => {
      code = runNwfilterCompile(io, binding, {
        filterDirs: opts.filterDir,
        format: opts.format,
        ...(opts.interface !== undefined ? { interfaceMac: opts.interface } : {}),
      });
    });

  const proxmox = program
    .command('proxmox')
    .description("Proxmox VE firewall (pve-firewall, iptables backend): a copy of a node's /etc/pve");
  proxmox
    .command('compile')
    .description(
      'print exactly what pve-firewall installs on the node (its iptables-restore, ipset or ebtables input), or with host.fw nftables: 1 the commands proxmox-firewall adds to its nftables skeleton (host/cluster and guest tables)',
    )
    .argument('<pve-dir>', 'a copy of /etc/pve (firewall/, nodes/<node>/, corosync.conf)')
    .option('--node <name>', 'the node (default: the only one under nodes/)')
    .option('--local-network <cidr>', "the node's network (pve-firewall localnet), unless cluster.fw has local_network")
    .option(
      '--output <what>',
      'iptables, ip6tables, ipset, ebtables or nftables (default: nftables when host.fw has nftables: 1, else iptables)',
    )
    .exitOverride()
    .action((dir, opts) => {
      code = runProxmoxCompile(io, dir, {
        ...(opts.output !== undefined ? { output: opts.output } : {}),
        ...(opts.node !== undefined ? { node: opts.node } : {}),
        ...(opts.localNetwork !== undefined ? { localNetwork: opts.localNetwork } : {}),
      });
    });
  proxmox
    .command('check')
    .description(
      "walk an LVS/keepalived setup through the node's firewall; findings with .fw edits and pvesh commands, verified",
    )
    .argument('<pve-dir>', 'a copy of /etc/pve')
    .requiredOption('--vip <ip>', 'the virtual IP')
    .option('--mode <mode>', 'dr or nat', 'dr')
    .option('--director <vmid[:netN][@ip]>', 'a director / keepalived peer; repeatable', collect, [])
    .option('--real-server <vmid[:netN][@ip]>', 'a real server; repeatable', collect, [])
    .option('--client <ip>', 'client address for the probes', '203.0.113.7')
    .option('--port <n>', 'service port', '80')
    .option('--vmac-vrid <n>', 'keepalived use_vmac with this virtual router id')
    .option('--node <name>', 'the node (default: the only one under nodes/)')
    .option('--local-network <cidr>', "the node's network, unless cluster.fw has local_network")
    .option('--json', 'print the report as JSON')
    .option('--fix-dir <out>', 'write the .fw files with all fixes applied into this directory (paths as in /etc/pve)')
    .option('--pcap-dir <out>', 'write one pcap per bridge port the probes were seen on')
    .exitOverride()
    .action((dir, opts) => {
      code = runProxmoxCheck(io, dir, {
        ...(opts.pcapDir !== undefined ? { pcapDir: opts.pcapDir } : {}),
        ...(opts.fixDir !== undefined ? { fixDir: opts.fixDir } : {}),
        vip: opts.vip,
        mode: opts.mode,
        director: opts.director,
        realServer: opts.realServer,
        client: opts.client,
        port: opts.port,
        ...(opts.vmacVrid !== undefined ? { vmacVrid: opts.vmacVrid } : {}),
        ...(opts.node !== undefined ? { node: opts.node } : {}),
        ...(opts.localNetwork !== undefined ? { localNetwork: opts.localNetwork } : {}),
        ...(opts.json ? { json: true } : {}),
      });
    });

  // `completion bash|zsh|fish|powershell` prints the shell's script; the script calls `lvsdoctor complete -- ARGS`.
  tab(program as unknown as Parameters<typeof tab>[0], { completionCommandName: 'completion' });
  program.commands
    .find((c) => c.name() === 'completion')
    ?.description('print the shell completion script, e.g. source <(lvsdoctor completion bash)');
  const completing = argv[0] === 'completion' || argv[0] === 'complete';
  const log = console.log;
  // The completion library prints with console.log: send it where this run's output goes.
  if (completing) console.log = (...a: unknown[]) => io.stdout(`${a.join(' ')}\n`);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version exit through here with code 0.
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help')
        return 0;
      return 2;
    }
    if (e instanceof UsageError || e instanceof FileError) {
      io.stderr(`lvsdoctor: ${e.message}\n`);
      return 2;
    }
    throw e;
  } finally {
    console.log = log;
  }
  if (argv.length === 0) {
    io.stdout(program.helpInformation());
    return 2;
  }
  return code;
}
