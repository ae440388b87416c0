#!/usr/bin/env bash
# Installs the Debian packages the tests use (real tcpdump/tshark as oracles, ebtables/iptables/nftables and
# libvirt's nwfilter driver for the differential and lab tests, keepalived for the lab's real VRRP, chromium for the web app's browser tests).
# Needs root; does nothing when all are present.
set -euo pipefail
PACKAGES=(busybox dash iproute2 ebtables iptables ipset nftables tcpdump tshark python3-scapy curl libvirt-daemon libvirt-clients libvirt-daemon-config-nwfilter keepalived chromium)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "install-test-deps: need root to install: ${missing[*]} (tests that need them will be skipped)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
echo 'wireshark-common wireshark-common/install-setuid boolean false' | debconf-set-selections 2>/dev/null || true
echo "install-test-deps: installing ${missing[*]}"
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
