#!/usr/bin/env bash
# Records captures of the link types operators get from tcpdump on Linux, with the real tcpdump, in throw-away
# network namespaces (documentation addresses only), and what tcpdump prints for them.
#
#   client namespace  eth0 192.0.2.1/24  ── veth ──  eth0 192.0.2.2/24  server namespace
#                     tun0 198.51.100.1             tun0 198.51.100.2   (IPIP over the veth)
#
# The IPIP tunnel is the kernel's encapsulation done in user space (python3: each side reads the inner packet from
# its tun device and sends it to the peer through a raw socket of protocol 4, which gets the outer header from the
# kernel; what arrives is written to the tun device), so it works where the ipip module is not available and gives
# the same packets: an IPIP packet on eth0, the inner one on tun0 (link type RAW, as on tunl0).
#
# Traffic (node): a TCP connection client → server:80 (request "GET / …", answer, close), one UDP datagram to
# server:40000, and a TCP connection through the tunnel to 198.51.100.2:8080. IPv6 is disabled so nothing else
# is on the wire but ARP.
#
# Outputs in DIR (overwritten):
#   client-eth0.pcap   tcpdump -i eth0 in the client namespace        (EN10MB, Ethernet)
#   server-any.pcap    tcpdump -i any in the server namespace         (LINUX_SLL2: tcpdump 4.99's default for any)
#   server-any-v1.pcap tcpdump -i any -y LINUX_SLL in the server ns   (LINUX_SLL, what older tcpdumps write)
#   server-tun0.pcap   tcpdump -i tun0 in the server namespace        (RAW)
#   NAME.nn.txt, NAME.evvv.txt  TZ=UTC tcpdump -r NAME -nn / -e -vvv -nnn, run in an empty network namespace
#                      (only lo, ifindex 1), because tcpdump names SLL2 interfaces from the reading machine's
#                      interface indexes (if_indextoname)
#   RECORDED.txt       the command, the date and the versions
#
# Usage (root; tcpdump, iproute2, node, python3):  bash scripts/record-linktype-captures.sh [DIR]
#   DIR defaults to fixtures/captures/linktypes. The namespaces are removed and every tcpdump (by PID) stopped, also
#   when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-$PWD/fixtures/captures/linktypes}"
[ "$(id -u)" -eq 0 ] || { echo "record-linktype-captures: needs root (network namespaces)" >&2; exit 1; }
for t in ip tcpdump node python3; do
  command -v "$t" >/dev/null || { echo "record-linktype-captures: $t is not installed" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
C="lvsdlt-c$$"
S="lvsdlt-s$$"
E="lvsdlt-e$$"
TMP="$(mktemp -d)"
PIDS=()
cleanup() {
  local rc=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$C" 2>/dev/null || true
  ip netns del "$S" 2>/dev/null || true
  ip netns del "$E" 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then cat "$TMP"/*.err >&2 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$C"
ip netns add "$S"
ip netns add "$E"
for ns in "$C" "$S"; do
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up
done
ip link add eth0 netns "$C" address 02:00:00:00:00:01 type veth peer name eth0 netns "$S" address 02:00:00:00:00:02
ip -n "$C" addr add 192.0.2.1/24 dev eth0
ip -n "$S" addr add 192.0.2.2/24 dev eth0
ip -n "$C" link set eth0 up
ip -n "$S" link set eth0 up
TUNNEL='
import fcntl, os, select, signal, socket, struct, sys
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
peer = sys.argv[1]
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454CA, struct.pack("16sH", b"tun0", 0x0001 | 0x1000))  # TUNSETIFF: IFF_TUN | IFF_NO_PI
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, 4)
print("ready", flush=True)
while True:  # until stopped (by PID) with the captures
    r, _, _ = select.select([fd, raw], [], [], 0.2)
    if fd in r:
        raw.sendto(os.read(fd, 65535), (peer, 0))
    if raw in r:
        pkt = raw.recv(65535)
        os.write(fd, pkt[(pkt[0] & 15) * 4:])
'
ip netns exec "$C" python3 -c "$TUNNEL" 192.0.2.2 >"$TMP/tun-c" 2>"$TMP/tun-c.err" &
PIDS+=($!)
ip netns exec "$S" python3 -c "$TUNNEL" 192.0.2.1 >"$TMP/tun-s" 2>"$TMP/tun-s.err" &
PIDS+=($!)
for f in tun-c tun-s; do
  for _ in $(seq 50); do grep -q ready "$TMP/$f" 2>/dev/null && break; sleep 0.1; done
done
ip -n "$C" addr add 198.51.100.1/32 peer 198.51.100.2/32 dev tun0
ip -n "$S" addr add 198.51.100.2/32 peer 198.51.100.1/32 dev tun0
ip -n "$C" link set tun0 up
ip -n "$S" link set tun0 up

chmod 0777 "$TMP"
cap() { # NS FILE ARGS…
  local ns=$1 file=$2
  shift 2
  ip netns exec "$ns" tcpdump -Z root -U --immediate-mode -s 262144 -w "$TMP/$file" "$@" 2>"$TMP/$file.err" &
  PIDS+=($!)
}
cap "$C" client-eth0.pcap -i eth0
cap "$S" server-any.pcap -i any
cap "$S" server-any-v1.pcap -i any -y LINUX_SLL
cap "$S" server-tun0.pcap -i tun0
for f in client-eth0 server-any server-any-v1 server-tun0; do
  for _ in $(seq 50); do grep -q listening "$TMP/$f.pcap.err" 2>/dev/null && break; sleep 0.1; done
done

SERVER='
const net = require("node:net"), dgram = require("node:dgram");
const answer = (s) => s.on("data", () => s.end("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nok\n"));
const a = net.createServer(answer).listen(80, "192.0.2.2");
const b = net.createServer(answer).listen(8080, "198.51.100.2");
const u = dgram.createSocket("udp4").bind(40000, "192.0.2.2");
process.on("SIGTERM", () => { a.close(); b.close(); u.close(); process.exit(0); });
'
CLIENT='
const net = require("node:net"), dgram = require("node:dgram");
const get = (host, port) => new Promise((done) => {
  const s = net.connect({ host, port }, () => s.write("GET / HTTP/1.0\r\n\r\n"));
  s.on("data", () => {}); s.on("close", done); s.on("error", done);
});
(async () => {
  await get("192.0.2.2", 80);
  await new Promise((d) => { const u = dgram.createSocket("udp4"); u.send("lvsdoctor", 40000, "192.0.2.2", () => { u.close(); d(); }); });
  await new Promise((d) => setTimeout(d, 200));
  await get("198.51.100.2", 8080);
})();
'
ip netns exec "$S" node -e "$SERVER" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 100); do ip netns exec "$S" ss -Hltn 2>/dev/null | grep -q ':8080' && break; sleep 0.1; done
ip netns exec "$C" node -e "$CLIENT"
sleep 2.5
for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()

# A complete recording: each `any` capture holds every frame of the server's eth0 (the client's frames) and of its
# tun0. On this kernel an `any` socket sometimes loses a few outgoing frames of the raw-socket tunnel; such a
# recording is refused with exit 75 (EX_TEMPFAIL) so that it is taken again rather than kept.
frames() { tcpdump -r "$1" 2>/dev/null | wc -l; }
want=$(($(frames "$TMP/client-eth0.pcap") + $(frames "$TMP/server-tun0.pcap")))
for f in server-any server-any-v1; do
  got=$(frames "$TMP/$f.pcap")
  if [ "$got" -ne "$want" ]; then
    echo "record-linktype-captures: $f.pcap holds $got frames, not the $want of eth0 and tun0: the capture lost frames; record again" >&2
    exit 75
  fi
done

for f in client-eth0 server-any server-any-v1 server-tun0; do
  cp "$TMP/$f.pcap" "$OUT/$f.pcap"
  ip netns exec "$E" env TZ=UTC tcpdump -r "$OUT/$f.pcap" -nn >"$OUT/$f.pcap.nn.txt" 2>/dev/null
  ip netns exec "$E" env TZ=UTC tcpdump -r "$OUT/$f.pcap" -e -vvv -nnn >"$OUT/$f.pcap.evvv.txt" 2>/dev/null
done
{
  echo "Recorded $(date -u +%Y-%m-%dT%H:%MZ) by: bash scripts/record-linktype-captures.sh"
  tcpdump --version 2>&1 | head -2
  echo "ip $(ip -V 2>&1 | sed 's/^ip utility, //'); node $(node --version); kernel $(uname -r)"
} >"$OUT/RECORDED.txt"
echo "record-linktype-captures: wrote $OUT"
