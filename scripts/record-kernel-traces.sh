#!/bin/sh
# Re-records fixtures/kernel-traces/ from a real kernel: the founding case in network namespaces (founding-real/:
# real libvirt bindings where libvirt is installed), the real probes, and what `nft monitor trace`,
# `xtables-monitor --trace` and the skb:kfree_skb tracepoint (tracefs, and perf when installed) print meanwhile; and
# the lab's other layouts (<scenario>/: test/trace-real-layouts.test.ts), each with its hypervisors' traces and
# counter listings before and after the real probes.
# Needs root, iproute2, nftables, iptables (xtables-monitor), ebtables, python3; see docs/collect.md.
# RECORDED.md in that folder says which commands and tool versions made the files. Review the diff after.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "record-kernel-traces: run as root (namespaces, nft monitor, tracefs)" >&2; exit 1; }
UPDATE_GOLDEN=1 npx vitest run test/trace-real.test.ts test/trace-real-layouts.test.ts
git status --short fixtures/kernel-traces
