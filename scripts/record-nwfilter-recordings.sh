#!/usr/bin/env bash
# Re-records the outputs in fixtures/libvirt/recordings/<scenario>/ from the real libvirt nwfilter driver.
#
# Inputs (written by this project, never touched here): binding.xml and filter-*.xml in each scenario folder.
# Outputs (overwritten): commands.txt (every command libvirt applied, from its util.firewall log, the binaries'
# directory stripped, including the commands run when the daemon stops), ebtables-t-nat-L.txt (`ebtables -t nat -L`
# about 2 s after the binding), iptables-S.txt (`iptables -S`), binding-dumpxml.txt, and RECORDED.txt (this command
# and the versions that made the outputs).
#
# Each scenario runs in a throw-away network namespace (bridge br0, veth port vnet0) with a private libvirtd in a
# private mount namespace: /run and /var are tmpfs, the filter directory is a copy, and only the nwfilter driver is
# loaded. Nothing is written outside a temporary directory; the daemon (by its PID) and the namespace are removed.
#
# Usage (root; Debian packages libvirt-daemon libvirt-clients libvirt-daemon-config-nwfilter ebtables iptables):
#   bash scripts/record-nwfilter-recordings.sh [scenario…]      # default: every scenario folder
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="$PWD/fixtures/libvirt/recordings"
[ "$(id -u)" -eq 0 ] || { echo "record-nwfilter-recordings: needs root (network and mount namespaces)" >&2; exit 1; }
for t in ip unshare nsenter libvirtd virsh ebtables iptables; do
  command -v "$t" >/dev/null || { echo "record-nwfilter-recordings: $t is not installed" >&2; exit 1; }
done
DRV=""
for d in /usr/lib/x86_64-linux-gnu/libvirt/connection-driver /usr/lib/aarch64-linux-gnu/libvirt/connection-driver \
  /usr/lib64/libvirt/connection-driver /usr/lib/libvirt/connection-driver; do
  [ -e "$d/libvirt_driver_nwfilter.so" ] && DRV=$d && break
done
[ -n "$DRV" ] || { echo "record-nwfilter-recordings: libvirt_driver_nwfilter.so not found (libvirt-daemon)" >&2; exit 1; }
[ -e /etc/libvirt/nwfilter/clean-traffic.xml ] ||
  { echo "record-nwfilter-recordings: /etc/libvirt/nwfilter is empty (libvirt-daemon-config-nwfilter)" >&2; exit 1; }

if [ $# -gt 0 ]; then scenarios=("$@"); else mapfile -t scenarios < <(ls "$OUT"); fi

NS="lvsdrec$$"
TMP=""
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill "$PID" 2>/dev/null || true; sleep 1; kill -9 "$PID" 2>/dev/null || true; fi
  ip netns del "$NS" 2>/dev/null || true
  [ -n "$TMP" ] && rm -rf "$TMP"
  PID=""
  TMP=""
}
trap cleanup EXIT

version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo unknown; }

record() {
  local name=$1 dir="$OUT/$1"
  [ -f "$dir/binding.xml" ] || { echo "record-nwfilter-recordings: $dir/binding.xml is missing" >&2; exit 1; }
  TMP=$(mktemp -d)
  mkdir -p "$TMP/drv" "$TMP/nwfilter"
  cp "$DRV/libvirt_driver_nwfilter.so" "$TMP/drv/"
  cp -r /etc/libvirt/nwfilter/. "$TMP/nwfilter/"
  ip netns add "$NS"
  ip netns exec "$NS" sh -e -c '
    ip link set lo up
    ip link add br0 type bridge
    ip link add vnet0 type veth peer name guest0
    ip link set vnet0 master br0
    ip link set br0 up; ip link set vnet0 up; ip link set guest0 up'
  cat >"$TMP/start.sh" <<EOF
set -e
mount -t tmpfs lvsdrec-run /run
mount -t tmpfs lvsdrec-var /var
mkdir -p /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /var/tmp /run/libvirt
ln -s /run /var/run
mount --bind '$TMP/drv' '$DRV'
mount --bind '$TMP/nwfilter' /etc/libvirt/nwfilter
export LIBVIRT_LOG_FILTERS='1:util.firewall'
export LIBVIRT_LOG_OUTPUTS='1:file:$TMP/firewall.log'
exec libvirtd --pid-file /run/libvirtd.pid
EOF
  ip netns exec "$NS" unshare -m --propagation private sh "$TMP/start.sh" >"$TMP/libvirtd.out" 2>&1 &
  PID=$!
  local v=(nsenter -t "$PID" -m -n virsh -q -c nwfilter:///system)
  local i
  for i in $(seq 1 200); do
    "${v[@]}" nwfilter-list >/dev/null 2>&1 && break
    kill -0 "$PID" 2>/dev/null || { cat "$TMP/libvirtd.out" >&2; exit 1; }
    sleep 0.05
  done
  # Filters may refer to each other: define until every one is defined (or none more can be).
  local pending=() f
  for f in "$dir"/filter-*.xml; do [ -e "$f" ] && pending+=("$f"); done
  while [ ${#pending[@]} -gt 0 ]; do
    local left=()
    for f in "${pending[@]}"; do "${v[@]}" nwfilter-define "$f" >/dev/null 2>&1 || left+=("$f"); done
    if [ ${#left[@]} -eq ${#pending[@]} ]; then "${v[@]}" nwfilter-define "${left[0]}"; exit 1; fi
    pending=("${left[@]}")
  done
  "${v[@]}" nwfilter-binding-create "$dir/binding.xml" >/dev/null
  sleep 2
  ip netns exec "$NS" ebtables -t nat -L >"$dir/ebtables-t-nat-L.txt"
  ip netns exec "$NS" iptables -S >"$dir/iptables-S.txt"
  "${v[@]}" nwfilter-binding-dumpxml vnet0 >"$dir/binding-dumpxml.txt"
  kill "$PID"
  wait "$PID" 2>/dev/null || true
  PID=""
  # "Applying rule '<argv>'" lines, in order, the binaries' directory stripped (as libvirt's own tests do).
  sed -n "s/.*Applying rule '\(.*\)'\$/\1/p" "$TMP/firewall.log" | sed -E 's#^/(usr/)?s?bin/##' >"$dir/commands.txt"
  cat >"$dir/RECORDED.txt" <<EOF
Recorded by: bash scripts/record-nwfilter-recordings.sh $name
Inputs: binding.xml$(for f in "$dir"/filter-*.xml; do [ -e "$f" ] && printf ', %s' "${f##*/}"; done) (written by lvsdoctor)
libvirt-daemon $(version libvirt-daemon), libvirt-daemon-config-nwfilter $(version libvirt-daemon-config-nwfilter)
ebtables $(version ebtables) ($(ebtables --version)), iptables $(version iptables) ($(iptables --version))
Steps: nwfilter-define each filter-*.xml; nwfilter-binding-create binding.xml on vnet0 (a veth in bridge br0);
after 2 s: ebtables -t nat -L, iptables -S, nwfilter-binding-dumpxml vnet0; then the daemon is stopped.
commands.txt: the util.firewall log's "Applying rule" lines, including those run when the daemon stopped.
EOF
  cleanup
  echo "recorded $name"
}

for s in "${scenarios[@]}"; do record "$s"; done
