#!/usr/bin/env bash
# Benchmark 1: amil-pktgen's TX rate on ONE core into net_null, against
# dpdk-testpmd --forward-mode=txonly on the same device and core in the
# same run.
#
#   bench/pktgen-bench.sh [SECONDS]        (default 10 s per measurement)
#   BUILD=build-x BENCH_CPU=1 BENCH_MAIN_CPU=0 bench/pktgen-bench.sh
#
# Both send 106-byte frames (Ethernet + IPv4 + UDP + the 64-byte AMIL/1
# payload) into net_null, which frees them: what is measured is the cost
# of making the frames.
#
#   testpmd  : txonly, one forwarding core: a fixed template copied into
#              each mbuf, no per-frame content.
#   amil     : amil-pktgen --tx-only, one TX lcore: every frame is a new
#              donation (id, center, donor, campaign, amount from the id),
#              fresh sent_ns and seq, encoded and SipHash-signed through
#              lib/amil_wire, UDP checksum.  --tx-only skips the tracking
#              table and RX (net_null has nobody to answer).
#   amil-mix : the same with 5 % duplicates and 2 % invalid frames.
#
# Each tool's main lcore sits on BENCH_MAIN_CPU and idles; the measured
# lcore is pinned to BENCH_CPU.  Prints both rates and the ratio; copy the
# lines into docs/benchmarks.md ("Packet generator") with the machine line.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CPU=${BENCH_CPU:-1}
MAIN_CPU=${BENCH_MAIN_CPU:-0}
BUILD=${BUILD:-build-bench}

tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" tools/pktgen/amil-pktgen >/dev/null

work=$(mktemp -d /tmp/amil-pgbench.XXXXXX)
cleanup() {
  rm -rf "$work" /var/run/dpdk/amil-pgbench-*-$$
}
trap cleanup EXIT

echo "== machine"
model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "cpu: $model; $(nproc) cpus; $(free -g | awk '/Mem:/{print $2}') GiB; kernel $(uname -r)"
echo "dpdk: $(pkg-config --modversion libdpdk); hugepages: none (--no-huge); load: $(cut -d' ' -f1-3 /proc/loadavg)"

eal=(--no-huge -m 512 --no-pci --vdev net_null0 --log-level=lib.eal:error)

echo "== baseline: dpdk-testpmd txonly, 1 forwarding core, 106-byte frames, ${SECS}s"
( sleep 4; echo "show port stats 0"; sleep "$SECS"; echo "show port stats 0"; sleep 0.5
  echo stop; echo quit ) |
  timeout $(( SECS + 60 )) dpdk-testpmd -l "$MAIN_CPU,$CPU" --main-lcore "$MAIN_CPU" \
    --file-prefix "amil-pgbench-tp-$$" "${eal[@]}" -- \
    -i -a --forward-mode=txonly --txpkts=106 --nb-cores=1 --total-num-mbufs=32768 \
    >"$work/testpmd.log" 2>&1 || true
tp_pps=$(grep -E "^ +Tx-pps:" "$work/testpmd.log" | awk '{print $2}' | tail -1)
tp_pps=${tp_pps:-0}
echo "testpmd tx_pps: $tp_pps"

run_pktgen() {  # name, extra flags...
  local name=$1; shift
  timeout $(( SECS + 60 )) "$BUILD/tools/pktgen/amil-pktgen" -l "$MAIN_CPU,$CPU" \
    --main-lcore "$MAIN_CPU" --file-prefix "amil-pgbench-$name-$$" "${eal[@]}" -- \
    --centers configs/centers.example --dst-ip 198.18.0.1 --dst-mac 02:00:00:00:00:01 \
    --tx-only --duration "$SECS" --no-live --json "$work/$name.json" "$@" \
    >"$work/$name.log" 2>&1
  python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['tx_pps'])" "$work/$name.json"
}

echo "== amil-pktgen --tx-only, 1 TX lcore, ${SECS}s"
amil_pps=$(run_pktgen amil)
echo "amil tx_pps: $amil_pps"
echo "== amil-pktgen --tx-only with --dup-frac 0.05 --invalid-frac 0.02, ${SECS}s"
mix_pps=$(run_pktgen mix --dup-frac 0.05 --invalid-frac 0.02)
echo "amil-mix tx_pps: $mix_pps"

python3 - "$tp_pps" "$amil_pps" "$mix_pps" <<'PY'
import sys
tp, am, mx = (int(float(x)) for x in sys.argv[1:4])
r = lambda v: f"{v / tp:.2f}" if tp else "n/a"
print(f"== result: testpmd txonly {tp/1e6:.2f} Mpps; amil-pktgen {am/1e6:.2f} Mpps "
      f"(ratio {r(am)}), with dups+invalid {mx/1e6:.2f} Mpps (ratio {r(mx)}); "
      f"target 15 Mpps per core: {'met' if am >= 15e6 else 'NOT met'}")
PY
