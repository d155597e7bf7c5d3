#!/usr/bin/env bash
# The main job: one Amil appliance on a virtual port (net_pcap), fed a capture
# of signed donations (new, retransmitted and invalid ones, plus an ARP request
# and a ping), then stopped; prints what the appliance processed (counts,
# levies, rejects, drops) and what a center would see in the replies.
#
#   tools/demo.sh                  # 100000 donations, 2 lcores (I/O + 1 worker)
#   COUNT=1000000 LCORES=0-1 tools/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-100000}
LCORES=${LCORES:-0-1}
tools/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release -Dtests=false >/dev/null
ninja -C build >/dev/null

work=$(mktemp -d /tmp/amil-demo.XXXXXX)
prefix="amil-demo-$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT

echo "== 1. a capture of $COUNT donations from the example centers (5% retransmits, 2% invalid)"
build/tools/amil-mkpcap --out "$work/in.pcap" --centers configs/centers.example \
  --count "$COUNT" --dup-frac 0.05 --invalid-frac 0.02 --neighbour \
  --dst-mac 02:00:00:00:00:01 --dst-ip 198.18.0.1 --src-ip 198.18.0.2
frames=$(( COUNT + 2 ))

echo "== 2. the appliance: net_pcap in -> out, lcores $LCORES, no hugepages"
build/dataplane/amil-dataplane -l "$LCORES" --no-huge -m 1024 --no-pci --file-prefix "$prefix" \
  --log-level=lib.eal:warning \
  --vdev "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/out.pcap" -- \
  --config configs/amil-dataplane.yaml --mac 02:00:00:00:00:01 \
  --dedupe-capacity 262144 --stats-json "$work/stats.json" &
pid=$!
tools/dp-telemetry.py --prefix "$prefix" --wait-rx "$frames" --timeout 120
echo "== 3. live counters (DPDK telemetry /amil/totals)"
tools/dp-telemetry.py --prefix "$prefix" /amil/totals
kill -INT "$pid"
wait "$pid"
pid=""

echo "== 4. what the centers got back (ACK tags verified with their keys)"
build/tools/amil-mkpcap --summarize "$work/out.pcap" --centers configs/centers.example
echo "== counters JSON (--stats-json):"
cat "$work/stats.json"
