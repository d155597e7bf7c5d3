#!/usr/bin/env bash
# Benchmark: the durable ledger against the disk it writes to.
#
#   bench/ledger-bench.sh [SECONDS]          (default 3 s per trial)
#   LEDGER_BENCH_DIR=/var/lib/amil BUILD=build-x bench/ledger-bench.sh
#
# All in one run, on the same disk (LEDGER_BENCH_DIR, default a fresh
# directory under /var/tmp: the root disk, not a tmpfs):
# 1. Throughput at the group-commit batch size (BATCH, default 4096 =
#    the data plane's default ledger.batch): the raw append+fdatasync
#    bandwidth of the disk (amil-ledger-bench raw: pwrite + fdatasync of
#    BATCH 80-byte records, nothing of ours), then the data plane's ledger
#    writer (dataplane/ledger.c: lanes, group commit, sealing, CRC32C)
#    driven by one producer thread that keeps PENDING (8192) records in
#    flight like a worker holding its ACKs (ledger.pending: two batches, so
#    one can fill while the other is flushed).  Alternated, TRIALS (3) times; medians; the
#    ratio is writer / raw in durable records per second.
# 2. Added ACK latency: the writer at fixed offered rates (10k, 100k and
#    half the measured maximum records/s): time from submit to durable =
#    what an ACK waits, p50/p99; next to the raw fdatasync latency of one
#    small append (what any durable acknowledgement has to pay).
# 3. End to end: amil-pktgen -> amil-dataplane over net_memif at fixed
#    rates, ledger on versus off (--no-ledger), the ACK round trip p50/p99
#    as the generator measures it; the difference is the added latency.
#    Caveat on a 2-CPU machine: the data plane polls on CPU 0 and the
#    generator on CPU 1, so the ledger's threads have no core of their own
#    and share one with a busy-polling process; this section then measures
#    CPU time-slicing more than the ledger (section 2 is the ledger's own
#    figure).  With 3+ CPUs set DP_CPU/PG_CPU and the ledger gets the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-3}
TRIALS=${TRIALS:-3}
BATCH=${BATCH:-4096}
WAIT_US=${WAIT_US:-100}
PENDING=${PENDING:-8192}     # records a producer keeps in flight (ledger.pending)
BUILD=${BUILD:-build-bench}
E2E_RATES=${E2E_RATES:-"20000 100000"}

tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" bench/amil-ledger-bench tools/pktgen/amil-pktgen dataplane/amil-dataplane >/dev/null

base=${LEDGER_BENCH_DIR:-/var/tmp}
work=$(mktemp -d "$base/amil-ledger-bench.XXXXXX")
dp_pid=""
cleanup() {
  [ -n "$dp_pid" ] && kill -KILL "$dp_pid" 2>/dev/null || true
  rm -rf "$work" /var/run/dpdk/amil-lb-*-$$*
}
trap cleanup EXIT

# The producer stands in for a worker lcore and polls on CPU LB_CPU (0); the
# ledger's writer and I/O threads are DPDK control threads, which run on the
# CPUs no lcore uses, as on an appliance (a core is left for them).
lb() {  # amil-ledger-bench ARGS... -> its JSON line
  "$BUILD/bench/amil-ledger-bench" -l "${LB_CPU:-0}" --no-huge -m 256 --no-pci --file-prefix "amil-lb-$$" \
    --log-level=lib.eal:error -- "$@" 2>/dev/null
  rm -f "$work"/seg-*
}

echo "== machine"
model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
dev=$(df --output=source "$work" | tail -1)
fstype=$(df --output=fstype "$work" | tail -1)
echo "cpu: $model; $(nproc) cpus; kernel $(uname -r); disk: $dev ($fstype) for $work;" \
     "load: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. durable records/s at batch $BATCH: raw append+fdatasync vs the ledger writer ($TRIALS x ${SECS}s each, alternated)"
: >"$work/raw.jsonl"; : >"$work/writer.jsonl"
for t in $(seq "$TRIALS"); do
  lb raw "$work" "$SECS" "$BATCH" | tee -a "$work/raw.jsonl" | sed 's/^/  raw    /'
  lb writer "$work" "$SECS" "$BATCH" "$WAIT_US" 1 "$PENDING" | tee -a "$work/writer.jsonl" | sed 's/^/  writer /'
done
read -r max_rate < <(python3 - "$work/raw.jsonl" "$work/writer.jsonl" <<'PY'
import json, statistics, sys
raw = [json.loads(l) for l in open(sys.argv[1])]
wr = [json.loads(l) for l in open(sys.argv[2])]
r = statistics.median(x["records_per_s"] for x in raw)
w = statistics.median(x["records_per_s"] for x in wr)
rm = statistics.median(x["mb_per_s"] for x in raw)
wm = statistics.median(x["mb_per_s"] for x in wr)
print(int(w))
print(f"  median raw    {r:12.0f} records/s ({rm:.1f} MB/s)", file=sys.stderr)
print(f"  median writer {w:12.0f} records/s ({wm:.1f} MB/s)", file=sys.stderr)
print(f"  writer / raw = {w / r:.2f} (target >= 0.80)", file=sys.stderr)
PY
)

echo "== 2. added ACK latency: submit -> durable at fixed offered rates (${SECS}s each)"
lb raw "$work" "$SECS" 1 | sed 's/^/  raw fdatasync of one record: /'
half=$(( max_rate / 2 ))
for rate in 10000 100000 "$half"; do
  lb writer "$work" "$SECS" "$BATCH" "$WAIT_US" 1 "$PENDING" "$rate" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read()); l = r["latency_us"]
off, dur, mb = r["offered_per_s"], r["records_per_s"], r["mean_batch"]
p50, p99, mx = l["p50"] / 1000, l["p99"] / 1000, l["max"] / 1000
print(f"  {off:>9.0f} rec/s offered: {dur:>9.0f} durable/s, mean batch {mb:>5.0f}, "
      f"added latency p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {mx:.2f} ms (target p99 <= 2 ms)")'
done

echo "== 3. end to end over net_memif: ACK round trip, ledger on vs off (${SECS}s each)"
e2e() {  # RATE on|off -> "p50 p99" in us, and lost
  local rate=$1 mode=$2 n=$3 sock="$work/memif-$3.sock" largs
  if [ "$mode" = on ]; then largs="--ledger-dir $work/e2e-ledger-$n"; else largs="--no-ledger"; fi
  "$BUILD/dataplane/amil-dataplane" -l "${DP_CPU:-0}" --no-huge -m 1024 --no-pci \
    --file-prefix "amil-lb-dp-$$-$n" --log-level=lib.eal:error \
    --vdev "net_memif0,role=server,socket-abstract=no,socket=$sock" -- \
    --ip 198.18.0.1 --centers configs/centers.example --dedupe-capacity 1048576 \
    $largs >"$work/dp-$n.log" 2>&1 &
  dp_pid=$!
  for _ in $(seq 200); do grep -q serving "$work/dp-$n.log" && break; sleep 0.05; done
  timeout $(( SECS * 3 + 30 )) "$BUILD/tools/pktgen/amil-pktgen" -l "${PG_CPU:-1}" --no-huge -m 512 \
    --no-pci --file-prefix "amil-lb-pg-$$-$n" --log-level=lib.eal:error \
    --vdev "net_memif0,role=client,socket-abstract=no,socket=$sock" -- \
    --centers configs/centers.example --dst-ip 198.18.0.1 --count $(( rate * SECS )) \
    --rate "$rate" --retries 3 --ack-timeout 200 --no-live --json "$work/pg-$n.json" \
    >"$work/pg-$n.log" 2>&1 || true
  kill -INT "$dp_pid" 2>/dev/null || true
  wait "$dp_pid" 2>/dev/null || true
  dp_pid=""
  rm -rf "$work/e2e-ledger-$n"
  python3 - "$work/pg-$n.json" "$rate" "$mode" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception as e:
    print(f"  {sys.argv[2]:>7} pps ledger {sys.argv[3]:>3}: no result ({e})"); sys.exit(0)
l = r["latency_ns"]
print(f"  {sys.argv[2]:>7} pps ledger {sys.argv[3]:>3}: acked {r['acked']} lost {r['lost']}, "
      f"p50 {l['p50'] / 1e3:.1f} us, p99 {l['p99'] / 1e3:.1f} us, max {l['max'] / 1e3:.1f} us")
PY
}
n=0
for rate in $E2E_RATES; do
  for mode in off on; do
    n=$(( n + 1 ))
    e2e "$rate" "$mode" "$n"
  done
done
