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
# Both runs pin their work to the same CPU (CPU 1); nothing else should be
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

echo "== baseline: dpdk-testpmd io forwarding, 1 forwarding core, ${SECS}s"
# Interactive mode fed from a pipe: two "show port stats" SECS apart make
# testpmd print the rate between them, measured on its own TSC.
( sleep 4; echo "show port stats 0"; sleep "$SECS"; echo "show port stats 0"; sleep 0.5
  echo stop; echo quit ) |
  timeout $(( SECS + 60 )) dpdk-testpmd -l "$MAIN_CPU,$CPU" --main-lcore "$MAIN_CPU" --no-huge \
    -m 2048 --no-pci --file-prefix "amil-bench-tp-$$" --vdev "$vdev" --log-level=lib.eal:error -- \
    -i -a --forward-mode=io --port-topology=loop --nb-cores=1 --total-num-mbufs=131072 \
    >"$work/testpmd.log" 2>&1 || true
tp_pps=$(grep -E "^ +Rx-pps:" "$work/testpmd.log" | awk '{print $2}' | tail -1)
tp_pps=${tp_pps:-0}
echo "testpmd rx_pps: $tp_pps"

echo "== amil-dataplane, run-to-completion on 1 lcore, ${SECS}s"
prefix="amil-bench-dp-$$"
build-bench/dataplane/amil-dataplane -l "$CPU" --no-huge -m 2048 --no-pci --file-prefix "$prefix" \
  --vdev "$vdev" --log-level=lib.eal:error -- \
  --ip 198.18.0.1 --mac 02:00:00:00:00:01 --centers configs/centers.example \
  --dedupe-capacity 131072 --mbufs 131071 >"$work/dp.log" 2>&1 &
pids+=($!)
tools/dp-telemetry.py --prefix "$prefix" --sample 2 >/dev/null    # warm-up
amil=$(tools/dp-telemetry.py --prefix "$prefix" --sample "$SECS")
kill -INT "${pids[-1]}"
wait "${pids[-1]}" || true
echo "amil: $amil"
amil_pps=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['tx_pps'])" "$amil")

python3 - "$tp_pps" "$amil_pps" <<'PY'
import sys
tp, am = int(sys.argv[1]), int(sys.argv[2])
print(f"== result: testpmd io {tp/1e6:.2f} Mpps, amil {am/1e6:.2f} Mpps (acks/s), "
      f"ratio amil/testpmd {am/tp if tp else 0:.2f}")
PY
