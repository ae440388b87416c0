/**
 * The collector: a POSIX sh script, run as root on a hypervisor (default) or inside a guest (`--guest`), that
 * gathers what lvsdoctor needs into one bundle in the current directory. It only reads: every command it runs is a
 * listing (no `ipvsadm` unless the IPVS module is already loaded — ipvsadm would load it —, no `sysctl -w`, no
 * `virsh` command that defines, starts or edits anything). Missing tools and refused commands are recorded in the
 * manifest, never fatal. The bundle format is described in docs/collect.md and read by `readBundle`.
 */

export const BUNDLE_FORMAT_VERSION = 1;
export const MANIFEST_FILE = 'manifest.tsv';

export type BundleKind = 'hypervisor' | 'guest';

export interface CollectorOptions {
  readonly guest: boolean;
  /**
   * Watch window in seconds baked into the script (`collect-script --watch N`); the script's own `--watch N` at run
   * time overrides it. With a window, every counter is listed at its start and at its end (`counters-start-ID`,
   * `counters-end-ID`), while the operator reproduces the failing request.
   */
  readonly watch?: number;
}

/** The counter listings of a watch window: output id suffix, tool, command (hypervisor and guest). */
export const COUNTER_COMMANDS: Readonly<Record<BundleKind, readonly (readonly string[])[]>> = {
  hypervisor: [
    ['ebtables-nat', 'ebtables', 'ebtables -t nat -L --Lc'],
    ['ebtables-filter', 'ebtables', 'ebtables -t filter -L --Lc'],
    ['iptables-save', 'iptables-save', 'iptables-save -c'],
    ['ip6tables-save', 'ip6tables-save', 'ip6tables-save -c'],
    ['nft-ruleset', 'nft', 'nft list ruleset'],
    ['ip-s-link', 'ip', 'ip -s -s link show'],
  ],
  guest: [
    ['iptables-save', 'iptables-save', 'iptables-save -c'],
    ['ip-s-link', 'ip', 'ip -s -s link show'],
  ],
};

/** Shell functions shared by both variants. */
const PRELUDE = String.raw`set -u
umask 077
LC_ALL=C
export LC_ALL
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin"
export PATH

host=$(hostname 2>/dev/null || uname -n 2>/dev/null || echo unknown)
safe_host=$(printf '%s' "$host" | tr -c 'A-Za-z0-9._-' '_')
stamp=$(date -u +%Y%m%dT%H%M%SZ 2>/dev/null || echo now)
name="lvsdoctor-bundle-$KIND-$safe_host-$stamp"
# Who else can write in the current directory decides where the bundle ends up. Private (ours, writable by nobody
# else, no ACL): renamed into it at the end, since nobody else can put anything at its name. Shared but sticky
# (/tmp): the bundle stays in the private directory below, which others cannot rename or replace; renaming it out
# could be raced (a link to a directory planted at the final name between the check and mv: mv follows it). Shared
# and not sticky: anyone could replace the private directory itself, so the collector refuses to run there.
set -- $(ls -ldn . 2>/dev/null) "" "" ""
dperm=$1
downer=$3
shared=0
case "$dperm" in ?????w*|????????w*|*+) shared=1 ;; esac
[ "$downer" = "$(id -u 2>/dev/null)" ] || shared=1
if [ "$shared" = 1 ]; then
  case "$dperm" in
    d????????[tT]*) ;;
    *) echo "lvsdoctor-collect: $(pwd) can be written by others and is not sticky, so anyone could replace what the collector writes there: run it from a directory only you can write (cd /root)" >&2
      exit 1 ;;
  esac
fi
# Everything is written inside a private directory made here: mkdir fails on anything already at that name (a
# planted link included) and umask 077 makes it 0700, so no path the script writes can be prepared by someone else.
i=0
while :; do
  work="./.lvsdoctor-collect-$$-$i"
  mkdir "$work" 2>/dev/null && break
  i=$((i + 1))
  [ "$i" -lt 20 ] || { echo "lvsdoctor-collect: cannot create a private directory in $(pwd)" >&2; exit 1; }
done
out="$work/$name"
mkdir "$out" "$out/cmd" || { echo "lvsdoctor-collect: cannot create $out in $(pwd)" >&2; exit 1; }
manifest="$out/${MANIFEST_FILE}"
seq=0

# Limit every command in time when coreutils' timeout exists (a hung libvirtd must not hang the collector).
if command -v timeout >/dev/null 2>&1; then TMO="timeout 120"; else TMO=""; fi

tab=$(printf '\t')
meta() { printf '%s\t%s\n' "$1" "$2" | tr -d '\r' >> "$manifest"; }

# record ID STATUS EXIT OUT ERR COMMAND...
record() {
  r_id=$1; r_st=$2; r_rc=$3; r_out=$4; r_err=$5
  shift 5
  r_cmd=$(printf '%s' "$*" | tr '\t\n' '  ')
  printf 'cmd\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r_id" "$r_st" "$r_rc" "$r_out" "$r_err" "$r_cmd" >> "$manifest"
}

# classify RC ERRFILE: ok, denied (permission), failed
classify() {
  if [ "$1" -eq 0 ]; then echo ok
  elif grep -qiE 'permission denied|operation not permitted|must be root|are you root|authentication (failed|unavailable)|access denied|not authorized' "$2" 2>/dev/null; then echo denied
  else echo failed
  fi
}

# run ID TOOL COMMAND...: runs COMMAND (a program or a function of this script) when TOOL exists.
run() {
  c_id=$1; c_tool=$2
  shift 2
  seq=$((seq + 1))
  c_out="cmd/$c_id.out"; c_err="cmd/$c_id.err"
  if ! command -v "$c_tool" >/dev/null 2>&1; then
    : > "$out/$c_out"
    printf '%s: command not found\n' "$c_tool" > "$out/$c_err"
    record "$c_id" missing 127 "$c_out" "$c_err" "$@"
    return 0
  fi
  if [ -n "$TMO" ] && ! type "$1" 2>/dev/null | grep -q 'function'; then
    $TMO "$@" > "$out/$c_out" 2> "$out/$c_err" < /dev/null
  else
    "$@" > "$out/$c_out" 2> "$out/$c_err" < /dev/null
  fi
  c_rc=$?
  record "$c_id" "$(classify "$c_rc" "$out/$c_err")" "$c_rc" "$c_out" "$c_err" "$@"
  return 0
}

# skip ID REASON COMMAND...: a command deliberately not run.
skip() {
  s_id=$1; s_why=$2
  shift 2
  : > "$out/cmd/$s_id.out"
  printf '%s\n' "$s_why" > "$out/cmd/$s_id.err"
  record "$s_id" skipped - "cmd/$s_id.out" "cmd/$s_id.err" "$@"
}

# copyfile ID PATH: copies a readable file (cat), recording a missing one.
copyfile() {
  if [ -e "$2" ]; then run "$1" cat cat "$2"
  else
    : > "$out/cmd/$1.out"
    printf '%s: no such file\n' "$2" > "$out/cmd/$1.err"
    record "$1" absent 1 "cmd/$1.out" "cmd/$1.err" cat "$2"
  fi
}

# snap PHASE: every counter at this moment (rules, links, kernel SNMP/netstat, IPVS), as counters-PHASE-ID.
# Only listings: nstat runs with -s (it does not write its history file), ipvsadm only when ip_vs is loaded.
snap() {
  meta "watch-$1" "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null) $(date +%s 2>/dev/null)"
  SNAP_COMMANDS
  copyfile "counters-$1-proc-snmp" /proc/net/snmp
  copyfile "counters-$1-proc-netstat" /proc/net/netstat
  run "counters-$1-nstat" nstat nstat -asz
  if [ -e "\${LVSDOCTOR_IPVS_PROC:-/proc/net/ip_vs}" ]; then
    copyfile "counters-$1-proc-ip-vs-stats" "\${LVSDOCTOR_IPVS_PROC:-/proc/net/ip_vs}_stats"
    run "counters-$1-ipvsadm-stats" ipvsadm ipvsadm -Ln --stats
  fi
}

# A file-name-safe form of a name (domain, filter, port): names of [A-Za-z0-9._-] (not starting with . or -) as
# they are, any other as % and the hex of its bytes, so names that differ anywhere get different files; a long
# one is cut and ends with its checksum (NAME_MAX is never reached).
safe() {
  case $1 in
    '' | .* | -* | *[!A-Za-z0-9._-]*) s_v="%$(printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n')" ;;
    *) s_v=$1 ;;
  esac
  if [ "\${#s_v}" -gt 160 ]; then
    s_v="$(printf '%s' "$s_v" | cut -c1-120)%$(printf '%s' "$1" | cksum | tr -c '0-9\n' '-' | tr -d '\n')"
  fi
  printf '%s' "$s_v"
}

# sysctls under net. (sysctl -a prints errors for write-only keys: ignored)
net_sysctls() { sysctl -e -a 2>/dev/null | grep '^net\.'; }
# Without sysctl: read /proc/sys/net directly.
proc_net_sysctls() {
  find /proc/sys/net -type f 2>/dev/null | sort | while IFS= read -r f; do
    v=$(cat "$f" 2>/dev/null) || continue
    k=$(printf '%s' "\${f#/proc/sys/}" | tr / .)
    printf '%s = %s\n' "$k" "$v"
  done
}

meta format-version ${BUNDLE_FORMAT_VERSION}
meta kind "$KIND"
meta hostname "$host"
meta kernel "$(uname -r 2>/dev/null)"
meta machine "$(uname -m 2>/dev/null)"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
meta uid "$(id -u 2>/dev/null)"
meta collector lvsdoctor-collect
for t in ip bridge sysctl virsh ebtables iptables-save ip6tables-save nft ipset pve-firewall ipvsadm keepalived ss tar gzip; do
  p=$(command -v "$t" 2>/dev/null) || p=-
  meta tool "$t $p"
done

run uname-a uname uname -a
copyfile os-release /etc/os-release
run version-ip ip ip -V
run version-bridge bridge bridge -V
run version-sysctl sysctl sysctl --version
run ip-j-link ip ip -j -d link show
run ip-j-addr ip ip -j -d addr show
run ip-addr ip ip addr show
run ip-j-route ip ip -j -d route show table all
run ip-route ip ip route show
run ip-j-neigh ip ip -j neigh show
run ip-neigh ip ip neigh show
if command -v sysctl >/dev/null 2>&1; then run sysctl-net sysctl net_sysctls
else run sysctl-net find proc_net_sysctls
fi
`;

/** Kernel traces the operator saved and named with --trace: copied (cat) as kernel-trace-N. */
const TRACE_FILES = `
if [ -n "$TRACES" ]; then
  printf '%s' "$TRACES" > "$work/traces.list"
  k=0
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    k=$((k + 1))
    case $f in -*) f="./$f" ;; esac
    copyfile "kernel-trace-$k" "$f"
  done < "$work/traces.list"
  rm -f "$work/traces.list"
fi
`;

/** The watch window: counters at its start, a pause while the operator reproduces the failure, counters at its end. */
const WATCH = `
case $WATCH in
  '' | 0) ;;
  *[!0-9]*) echo "lvsdoctor-collect: --watch wants whole seconds, got '$WATCH'" >&2; exit 2 ;;
  *)
    meta watch-seconds "$WATCH"
    snap start
    echo "lvsdoctor-collect: counters listed; reproduce the failing request now (window: $WATCH s)" >&2
    sleep "$WATCH"
    snap end
    ;;
esac
`;

const HYPERVISOR = `
run bridge-j-link bridge bridge -j -d link show
run bridge-j-fdb bridge bridge -j fdb show
run bridge-j-vlan bridge bridge -j vlan show
run version-ebtables ebtables ebtables --version
run ebtables-nat ebtables ebtables -t nat -L --Lc
run ebtables-filter ebtables ebtables -t filter -L --Lc
run version-iptables iptables-save iptables-save --version
run iptables-save iptables-save iptables-save -c
run ip6tables-save ip6tables-save ip6tables-save -c
run version-nft nft nft --version
run nft-ruleset nft nft list ruleset
run nft-ruleset-handles nft nft -a list ruleset

run version-virsh virsh virsh --version
run virsh-uri virsh virsh uri
run virsh-list virsh virsh list --all --name
if [ -s "$out/cmd/virsh-list.out" ]; then
  while IFS= read -r d; do
    [ -n "$d" ] || continue
    run "domain-$(safe "$d")" virsh virsh dumpxml --domain "$d"
  done < "$out/cmd/virsh-list.out"
fi
run virsh-nwfilter-list virsh virsh nwfilter-list
if [ -s "$out/cmd/virsh-nwfilter-list.out" ]; then
  # " UUID   Name" table after two header lines: filters are dumped by UUID (a name may hold spaces; the XML
  # names the filter).
  awk 'NR > 2 && NF >= 2 { print $1 }' "$out/cmd/virsh-nwfilter-list.out" > "$out/cmd/virsh-nwfilter-uuids.txt"
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    run "nwfilter-$(safe "$f")" virsh virsh nwfilter-dumpxml --nwfilter "$f"
  done < "$out/cmd/virsh-nwfilter-uuids.txt"
fi
run virsh-binding-list virsh virsh nwfilter-binding-list
if [ -s "$out/cmd/virsh-binding-list.out" ]; then
  # " Port Dev   Filter" table: the port is the first column after two header lines.
  awk 'NR > 2 && NF >= 1 { print $1 }' "$out/cmd/virsh-binding-list.out" > "$out/cmd/virsh-binding-ports.txt"
  while IFS= read -r p; do
    [ -n "$p" ] || continue
    run "binding-$(safe "$p")" virsh virsh nwfilter-binding-dumpxml --binding "$p"
  done < "$out/cmd/virsh-binding-ports.txt"
fi
`;

/** Proxmox VE hosts: the firewall files of /etc/pve this node uses, pve-firewall's status, ipsets (all read-only). */
const PROXMOX = String.raw`
PVE=\${LVSDOCTOR_PVE_ROOT:-/etc/pve}
if [ -d "$PVE/firewall" ] || [ -d "$PVE/nodes" ]; then
  pve_node=\${LVSDOCTOR_PVE_NODE:-$(hostname -s 2>/dev/null || hostname 2>/dev/null)}
  meta platform proxmox
  meta pve-node "$pve_node"
  run pve-firewall-status pve-firewall pve-firewall status
  run ipset-save ipset ipset save
  copyfile pve-fw-cluster "$PVE/firewall/cluster.fw"
  copyfile pve-fw-host "$PVE/nodes/$pve_node/host.fw"
  copyfile pve-corosync "$PVE/corosync.conf"
  # Which vmbr is VLAN-aware, its ports and VLANs (guest tag= lands there or on vmbrNvT).
  copyfile pve-network-interfaces "\${LVSDOCTOR_NET_INTERFACES:-/etc/network/interfaces}"
  for f in "$PVE"/firewall/*.fw; do
    [ -f "$f" ] || continue
    b=$(basename "$f" .fw)
    case $b in *[!0-9]*) continue ;; esac
    copyfile "pve-fw-$b" "$f"
  done
  for kind in qemu-server lxc; do
    for f in "$PVE/nodes/$pve_node/$kind"/*.conf; do
      [ -f "$f" ] || continue
      b=$(basename "$f" .conf)
      case $b in *[!0-9]*) continue ;; esac
      copyfile "pve-$kind-$b" "$f"
    done
  done
fi
`;

const GUEST = String.raw`
run ss-listen ss ss -Hltnu
# Name resolution for listings pasted without -n (ipvsadm -L, tcpdump): read, never changed.
copyfile etc-hosts /etc/hosts
copyfile etc-services /etc/services
IPVS_PROC=\${LVSDOCTOR_IPVS_PROC:-/proc/net/ip_vs}
if [ -e "$IPVS_PROC" ]; then
  run version-ipvsadm ipvsadm ipvsadm --version
  run ipvsadm-Ln ipvsadm ipvsadm -Ln
  run ipvsadm-Sn ipvsadm ipvsadm -Sn
  run ipvsadm-Lnc ipvsadm ipvsadm -Lnc
  run ipvsadm-stats ipvsadm ipvsadm -Ln --stats
  run ipvsadm-timeout ipvsadm ipvsadm -L --timeout
  copyfile proc-ip-vs "$IPVS_PROC"
  copyfile proc-ip-vs-conn "\${IPVS_PROC}_conn"
else
  # ipvsadm loads the ip_vs module when it is absent: that would change the machine.
  skip ipvsadm-Ln "IPVS not loaded ($IPVS_PROC absent): ipvsadm not run, it would load the ip_vs module" ipvsadm -Ln
fi
run version-keepalived keepalived keepalived --version
k=0
for f in /etc/keepalived/keepalived.conf /usr/local/etc/keepalived/keepalived.conf /etc/keepalived/*.conf /etc/keepalived/conf.d/*.conf; do
  [ -f "$f" ] || continue
  case " \${seen_conf:-} " in *" $f "*) continue ;; esac
  seen_conf="\${seen_conf:-} $f"
  k=$((k + 1))
  copyfile "keepalived-conf-$k" "$f"
done
`;

const EPILOGUE = `
meta finished "$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
if [ "$shared" = 1 ]; then
  # A shared (sticky) directory: the bundle stays in the private directory (see the start).
  if command -v tar >/dev/null 2>&1 && command -v gzip >/dev/null 2>&1 &&
    (cd "$work" && tar -cf - "$name" 2>/dev/null | gzip -c > "$name.tar.gz"); then
    rm -rf "$out"
    echo "lvsdoctor-collect: $(pwd) is shared with other users: the bundle stays in the private directory $work (moving it out could be raced)" >&2
    echo "$work/$name.tar.gz"
    exit 0
  fi
  rm -f "$work/$name.tar.gz"
  echo "lvsdoctor-collect: $(pwd) is shared with other users: the bundle stays in the private directory $work (moving it out could be raced)" >&2
  echo "$out"
  exit 0
fi
# A private directory: the bundle is packed inside the private directory, then renamed into the current directory
# under a name nothing holds (an existing name, a link included, gets another name; nobody else can plant one).
final="$name"
j=0
while [ -e "./$final" ] || [ -L "./$final" ] || [ -e "./$final.tar.gz" ] || [ -L "./$final.tar.gz" ]; do
  j=$((j + 1))
  final="$name-$$-$j"
done
if command -v tar >/dev/null 2>&1 && command -v gzip >/dev/null 2>&1; then
  if (cd "$work" && tar -cf - "$name" 2>/dev/null | gzip -c > "$name.tar.gz") && mv "$work/$name.tar.gz" "./$final.tar.gz"; then
    rm -rf "$work"
    echo "$final.tar.gz"
    exit 0
  fi
  rm -f "$work/$name.tar.gz"
fi
if mv "$out" "./$final" && rmdir "$work"; then
  echo "$final"
  exit 0
fi
echo "lvsdoctor-collect: the bundle is in $out" >&2
echo "$out"
`;

/** The collector script for a hypervisor or (`guest: true`) for a guest or any other Linux machine of the LAN. */
export function collectorScript(o: CollectorOptions): string {
  const kind: BundleKind = o.guest ? 'guest' : 'hypervisor';
  const head = [
    '#!/bin/sh',
    `# lvsdoctor collector (${kind}) — bundle format ${BUNDLE_FORMAT_VERSION}.`,
    '# Run as root in an empty directory:  sh collect.sh',
    '# It only reads: listings of links, addresses, routes, neighbours, sysctls,',
    o.guest
      ? '# IPVS (ipvsadm only when the ip_vs module is already loaded) and keepalived.conf.'
      : '# bridges, ebtables/iptables/nftables rules with counters, and libvirt domains, filters and bindings.',
    '# It writes nothing but one bundle in the current directory (.tar.gz, or a directory when tar/gzip are missing;',
    '# made in a private 0700 directory there first, where it stays when others can write the current directory),',
    '# and prints its path.',
    '# With --watch SECONDS it also lists every counter at the start and the end of that window (reproduce then).',
    '# With --trace FILE (repeatable) it copies a kernel trace you saved (nft monitor trace, xtables-monitor --trace,',
    '# perf script of skb:kfree_skb, dropwatch, pwru) into the bundle; it never starts or changes tracing itself.',
    `KIND=${kind}`,
    `WATCH=${o.watch ?? 0}`,
    'TRACES=',
    "NL='",
    "'",
    // Run-time arguments: --watch N (overrides the default above).
    'while [ $# -gt 0 ]; do',
    '  case $1 in',
    '    --watch) [ $# -ge 2 ] || { echo "lvsdoctor-collect: --watch needs SECONDS" >&2; exit 2; }; WATCH=$2; shift 2 ;;',
    '    --trace)',
    '      [ $# -ge 2 ] || { echo "lvsdoctor-collect: --trace needs FILE" >&2; exit 2; }',
    `      case $2 in *"$NL"*) echo "lvsdoctor-collect: --trace: a file name with a line break is refused" >&2; exit 2 ;; esac`,
    '      [ -f "$2" ] && [ -r "$2" ] || { echo "lvsdoctor-collect: --trace $2: not a readable file" >&2; exit 2; }',
    '      TRACES="$TRACES$2$NL"; shift 2 ;;',
    '    *) echo "lvsdoctor-collect: unknown argument \'$1\' (only --watch SECONDS, --trace FILE)" >&2; exit 2 ;;',
    '  esac',
    'done',
  ].join('\n');
  const snaps = COUNTER_COMMANDS[kind].map(([id, tool, cmd]) => `  run "counters-$1-${id}" ${tool} ${cmd}`).join('\n');
  const prelude = literalDollars(PRELUDE).replace('  SNAP_COMMANDS', snaps);
  return `${head}\n${prelude}${literalDollars(WATCH)}${TRACE_FILES}${literalDollars(o.guest ? GUEST : HYPERVISOR + PROXMOX)}${EPILOGUE}`;
}

/** The templates write `\${` where the shell needs a literal `${` next to JS placeholders. */
function literalDollars(s: string): string {
  return s.replace(/\\\$\{/g, '${');
}
