#!/usr/bin/env bash
# The main job: one Amil appliance on a virtual port (net_pcap), fed a capture
# of signed donations (new, retransmitted and invalid ones, plus an ARP request
# and a ping), then stopped; prints what the appliance processed (counts,
# levies, rejects, drops, ledger batches) and what a center would see in the
# replies.  Then the appliance restarts on the same ledger and gets the same
# capture again: every donation is answered DUPLICATE with its original levy
# (nothing counted twice across a restart), and amil-ledger checks and totals
# the ledger.
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
cp_pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  [ -n "$cp_pid" ] && kill -KILL "$cp_pid" 2>/dev/null || true
  rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT

echo "== 1. a capture of $COUNT donations from the example centers (5% retransmits, 2% invalid)"
build/tools/amil-mkpcap --out "$work/in.pcap" --centers configs/centers.example \
  --count "$COUNT" --dup-frac 0.05 --invalid-frac 0.02 --neighbour \
  --dst-mac 02:00:00:00:00:01 --dst-ip 198.18.0.1 --src-ip 198.18.0.2
frames=$(( COUNT + 2 ))

echo "== 2. the appliance: data plane (net_pcap in -> out, lcores $LCORES, no hugepages)"
echo "      and its control plane, watching it over an ipc socket"
build/dataplane/amil-dataplane -l "$LCORES" --no-huge -m 1024 --no-pci --file-prefix "$prefix" \
  --log-level=lib.eal:warning \
  --vdev "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/out.pcap" -- \
  --config configs/amil-dataplane.yaml --mac 02:00:00:00:00:01 \
  --dedupe-capacity 262144 --ledger-dir "$work/ledger" --stats-json "$work/stats.json" \
  --ctl-sock "$work/dataplane.sock" &
pid=$!
echo "$(build/controlplane/amil-controlplane keygen --keys "$work/keys") 1 demo-1" >"$work/allow.txt"
build/controlplane/amil-controlplane run --node-id 1 --name demo-1 --region ID-JKT \
  --listen tcp://127.0.0.1:17200 --keys "$work/keys" --allow-list "$work/allow.txt" \
  --run-dir "$work/run" --dataplane-ctl "ipc://$work/dataplane.sock" >"$work/cp.log" 2>&1 &
cp_pid=$!
tools/dp-telemetry.py --prefix "$prefix" --wait-rx "$frames" --timeout 120
echo "== 3. live counters (DPDK telemetry /amil/totals), and what an operator sees (amilctl)"
tools/dp-telemetry.py --prefix "$prefix" /amil/totals
sleep 1
build/controlplane/amilctl --run-dir "$work/run" status | sed -n '1,8p'
build/controlplane/amilctl --run-dir "$work/run" dataplane stats | head -12
kill -TERM "$cp_pid"
wait "$cp_pid" || true
cp_pid=""
kill -INT "$pid"
wait "$pid"
pid=""

echo "== 4. what the centers got back (ACK tags verified with their keys)"
build/tools/amil-mkpcap --summarize "$work/out.pcap" --centers configs/centers.example
echo "== counters JSON (--stats-json):"
cat "$work/stats.json"

echo "== 5. restart on the same ledger, replay the same capture: all answered from the ledger"
build/dataplane/amil-dataplane -l "$LCORES" --no-huge -m 1024 --no-pci --file-prefix "$prefix" \
  --log-level=lib.eal:warning \
  --vdev "net_pcap0,rx_pcap=$work/in.pcap,tx_pcap=$work/out2.pcap" -- \
  --config configs/amil-dataplane.yaml --mac 02:00:00:00:00:01 \
  --dedupe-capacity 262144 --ledger-dir "$work/ledger" --stats-json "$work/stats2.json" \
  | grep -E "ledger|summary|donations:" &
pid=$!
tools/dp-telemetry.py --prefix "$prefix" --wait-rx "$frames" --timeout 120 >/dev/null
kill -INT "$(pgrep -f "file-prefix $prefix" | head -1)"
wait "$pid"
pid=""
build/tools/amil-mkpcap --summarize "$work/out2.pcap" --centers configs/centers.example

echo "== 6. the ledger, as an auditor sees it (amil-ledger verify, totals)"
build/tools/amil-ledger verify "$work/ledger"
build/tools/amil-ledger totals "$work/ledger" | head -8
echo "   ..."
