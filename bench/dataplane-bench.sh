#!/usr/bin/env bash
# Data-plane throughput through ONE core, against dpdk-testpmd on the same
# virtual devices in the same run.
#
#   bench/dataplane-bench.sh [SECONDS]     (default 10 s per measurement)
#
# Input: net_pcap with infinite_rx=1 replaying a capture of valid, signed
# donations (65536 distinct ids from the example centers).  The pcap PMD
# copies each stored frame into a fresh mbuf per receive, so in-place ACKs do
# not alter the replayed capture.  Output: the same port's TX, which the pcap
# PMD frees without writing (no tx_pcap given) - the cost of a net_null TX.
#
#   baseline : dpdk-testpmd --forward-mode=io, one forwarding core, port
#              topology "loop" (RX of port 0 -> TX of port 0).
#   amil     : amil-dataplane run-to-completion on one lcore: classify,
#              SipHash verify, validate, levy, dedupe, ACK build + sign,
#              checksums in software (net_pcap offers no offload).
#
# After the first pass over the 65536 ids every donation is a retransmit, so
# the steady state measures the DUPLICATE path (dedupe hit); the accept path
# differs by one hash insert per donation.
#
# Every run pins its polling work to CPU 1 (the I/O lcore of the two-lcore run
# is on CPU 0); nothing else should be
# running.  Prints both rates and the ratio; append the lines to
# docs/benchmarks.md with the machine description printed at the top.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-10}
CPU=${BENCH_CPU:-1}
MAIN_CPU=${BENCH_MAIN_CPU:-0}

tools/install-deps.sh >/dev/null
[ -f build-bench/build.ninja ] || meson setup build-bench --buildtype=release -Dtests=false >/dev/null
ninja -C build-bench >/dev/null

work=$(mktemp -d /tmp/amil-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work" /var/run/dpdk/amil-bench-*-$$
}
trap cleanup EXIT

echo "== machine"
model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "cpu: $model; $(nproc) cpus; $(free -g | awk '/Mem:/{print $2}') GiB; kernel $(uname -r)"
echo "dpdk: $(pkg-config --modversion libdpdk); hugepages: none (--no-huge)"

build-bench/tools/amil-mkpcap --out "$work/don.pcap" --centers configs/centers.example \
  --count 65536 --dst-mac 02:00:00:00:00:01 --dst-ip 198.18.0.1 --src-ip 198.18.0.2 >/dev/null
vdev="net_pcap0,rx_pcap=$work/don.pcap,infinite_rx=1"

REPEAT=${REPEAT:-3}

# One testpmd measurement: interactive mode fed from a pipe; two "show port
# stats" SECS apart make testpmd print the rate between them (its own TSC).
testpmd_once() {
  ( sleep 4; echo "show port stats 0"; sleep "$SECS"; echo "show port stats 0"; sleep 0.5
    echo stop; echo quit ) |
    timeout $(( SECS + 60 )) dpdk-testpmd -l "$MAIN_CPU,$CPU" --main-lcore "$MAIN_CPU" --no-huge \
      -m 2048 --no-pci --file-prefix "amil-bench-tp-$$" --vdev "$vdev" --log-level=lib.eal:error -- \
      -i -a --forward-mode=io --port-topology=loop --nb-cores=1 --total-num-mbufs=131072 \
      >"$work/testpmd.log" 2>&1 || true
  local pps
  pps=$(grep -E "^ +Rx-pps:" "$work/testpmd.log" | awk '{print $2}' | tail -1)
  echo "${pps:-0}"
}

# One amil-dataplane measurement on lcores $1: ACKs per second over SECS,
# read from its own counters through telemetry after a 2 s warm-up.
amil_once() {
  local prefix="amil-bench-dp-$$" out
  build-bench/dataplane/amil-dataplane -l "$1" --no-huge -m 2048 --no-pci --file-prefix "$prefix" \
    --vdev "$vdev" --log-level=lib.eal:error -- \
    --ip 198.18.0.1 --mac 02:00:00:00:00:01 --centers configs/centers.example \
    --dedupe-capacity 131072 --mbufs 131071 --no-ledger >"$work/dp.log" 2>&1 &
  pids+=($!)
  tools/dp-telemetry.py --prefix "$prefix" --sample 2 >/dev/null
  out=$(tools/dp-telemetry.py --prefix "$prefix" --sample "$SECS")
  kill -INT "${pids[-1]}"
  wait "${pids[-1]}" || true
  python3 -c "import json,sys; print(json.loads(sys.argv[1])['tx_pps'])" "$out"
}

declare -a tp rtc io
for r in $(seq "$REPEAT"); do
  echo "== round $r of $REPEAT (${SECS}s each)"
  tp+=("$(testpmd_once)");       echo "  testpmd io, 1 forwarding core:            ${tp[-1]} pps"
  rtc+=("$(amil_once "$CPU")");  echo "  amil, run-to-completion on 1 lcore:       ${rtc[-1]} pps"
  io+=("$(amil_once "$MAIN_CPU,$CPU")"); echo "  amil, I/O lcore + 1 worker lcore:         ${io[-1]} pps"
done

python3 - "${tp[*]}" "${rtc[*]}" "${io[*]}" <<'PY'
import statistics, sys
tp, rtc, io = ([int(x) for x in a.split()] for a in sys.argv[1:4])
def show(name, v):
    m = statistics.median(v)
    print(f"{name:44s} median {m/1e6:6.2f} Mpps  (runs: {', '.join(f'{x/1e6:.2f}' for x in v)})")
    return m
print("== result (median of rounds)")
t = show("testpmd io forwarding, 1 core", tp)
a = show("amil-dataplane run-to-completion, 1 core", rtc)
b = show("amil-dataplane I/O + 1 worker (per worker)", io)
print(f"ratio amil/testpmd: run-to-completion {a/t:.2f}, with an I/O lcore {b/t:.2f}")
PY
