#!/usr/bin/env bash
# Benchmark: the cluster registry (issue "Control plane II") against the
# figures the issue gives for libcluster + Horde 0.10 on this machine class.
#
#   bench/registry-bench.sh [SINGLE] [BULK]      (default 200, 100000)
#
# Three amil-controlplane daemons on loopback (AP mode, or CP with MODE=cp;
# LAN profile).
# amil-registry-bench talks to their control sockets:
#   single: a name registered on node 1, then asked for on nodes 2 and 3
#           in a loop until both have it; p50/p99/max over SINGLE names
#           (Horde: p50 166 ms, p99 314 ms; target p99 <= 20 ms);
#   bulk:   BULK names registered on node 1 in one request (amilctl registry
#           import), time until every node holds them all (Horde: 23.6 s for
#           100k; target <= 1 s),
#           and each node's registry memory (Horde: 346 MiB in the CRDT
#           process; target <= 50 MiB per appliance) plus the daemons' RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
SINGLE=${1:-200}
BULK=${2:-100000}
BUILD=${BUILD:-build-bench}
MODE=${MODE:-ap}               # MODE=cp: the same figures in CP mode (majority rounds)
tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" controlplane/amil-controlplane bench/amil-registry-bench >/dev/null
CP=$BUILD/controlplane/amil-controlplane

work=$(mktemp -d /tmp/amil-regbench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

echo "== machine"
echo "cpu: $(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'); $(nproc) cpus;" \
     "load: $(cut -d' ' -f1-3 /proc/loadavg)"
base=$(( 20000 + $$ % 20000 ))
for i in 1 2 3; do echo "$($CP keygen --keys "$work/k$i") $i" >>"$work/allow.txt"; done
for i in 1 2 3; do
  $CP run --node-id "$i" --listen "tcp://127.0.0.1:$(( base + i ))" --keys "$work/k$i" \
    --allow-list "$work/allow.txt" --seed "1@tcp://127.0.0.1:$(( base + 1 ))" \
    --run-dir "$work/run$i" --registry-mode "$MODE" >"$work/out$i" 2>&1 &
  pids+=($!)
done
sleep 3
"$BUILD/bench/amil-registry-bench" "$work/run1" "$work/run2" "$work/run3" "$SINGLE" "$BULK"
for i in 1 2 3; do
  echo "node $i daemon VmRSS: $(grep VmRSS /proc/${pids[$((i-1))]}/status | awk '{print $2, $3}')"
done
