#!/usr/bin/env bash
# Benchmark 2: end to end over net_memif - amil-pktgen (memif client) ->
# amil-dataplane (memif server, one lcore, run to completion) -> ACKs back.
#
#   bench/e2e-memif-bench.sh [SECONDS]     (default 2 s per trial)
#   BUILD=build-x DP_CPU=0 PG_CPU=1 bench/e2e-memif-bench.sh
#
# 1. No-drop rate, RFC 2544 style: binary search over the offered rate for
#    the highest one at which a trial of SECONDS passes.  A trial passes
#    when every donation is answered and checked (lost 0, mismatched 0,
#    with --retries 0 so a single missing ACK is a loss), the memif ring
#    towards the data plane was never full (memif pushes back instead of
#    dropping: a full ring is where a NIC would have dropped, so it counts
#    as a drop), and the generator really offered the rate (tx_pps at
#    least 98 % of it).  NDR_CRITERION=loss drops the ring condition and
#    counts only missing ACKs (memif then never loses a donation on the
#    way in, so that rate is the data plane's sustained throughput).
# 2. Latency at 10 %, 50 % and 90 % of that rate: p50, p90, p99, p99.9 and
#    max of the round trip measured by the generator from the echoed
#    sent_ns (its own TSC clock), over 2 x SECONDS.
#
# Every trial starts a fresh data plane (empty idempotency table) and a
# fresh generator; both without hugepages.  The data plane polls on DP_CPU,
# the generator (one lcore doing TX and RX) on PG_CPU: two busy-polling
# processes, so a machine with other load measures that load too.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-2}
DP_CPU=${DP_CPU:-0}
PG_CPU=${PG_CPU:-1}
BUILD=${BUILD:-build-bench}
LO=${NDR_LO:-10000}          # pps known to pass
HI=${NDR_HI:-2000000}        # pps upper bound of the search (x SECONDS ids must fit the table)
STEPS=${NDR_STEPS:-8}
CRITERION=${NDR_CRITERION:-ring}   # ring: ring never full, no loss; loss: no loss

tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" tools/pktgen/amil-pktgen dataplane/amil-dataplane >/dev/null

work=$(mktemp -d /tmp/amil-e2e.XXXXXX)
dp_pid=""
cleanup() {
  [ -n "$dp_pid" ] && kill -KILL "$dp_pid" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work" /var/run/dpdk/amil-e2e-*-$$-*
}
trap cleanup EXIT

echo "== machine"
model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "cpu: $model; $(nproc) cpus; kernel $(uname -r); dpdk $(pkg-config --modversion libdpdk);" \
     "no hugepages; load: $(cut -d' ' -f1-3 /proc/loadavg)"

# LEDGER=1: the data plane writes its ledger (a fresh directory per trial,
# under LEDGER_DIR, default the work directory: put it on the disk to
# measure); default off, which measures the packet path alone.
ledger_args() {
  if [ "${LEDGER:-0}" = 1 ]; then
    echo "--ledger-dir ${LEDGER_DIR:-$work}/ledger-$$-$1"
  else
    echo "--no-ledger"
  fi
}

n=0
# trial RATE SECONDS -> prints the generator's JSON, returns 0 on pass
trial() {
  local rate=$1 secs=$2 count sock
  n=$(( n + 1 ))
  count=$(( rate * secs ))
  sock="$work/memif-$n.sock"
  cap=$(( count + 1024 > 65536 ? count + 1024 : 65536 ))   # every id fits: no eviction
  "$BUILD/dataplane/amil-dataplane" -l "$DP_CPU" --no-huge -m 1024 --no-pci \
    --file-prefix "amil-e2e-dp-$$-$n" --log-level=lib.eal:error \
    --vdev "net_memif0,role=server,socket-abstract=no,socket=$sock" -- \
    --ip 198.18.0.1 --centers configs/centers.example --dedupe-capacity "$cap" \
    --stats-json "$work/dp-$n.json" $(ledger_args "$n") >"$work/dp-$n.log" 2>&1 &
  dp_pid=$!
  for _ in $(seq 200); do grep -q serving "$work/dp-$n.log" && break; sleep 0.05; done
  timeout $(( secs * 3 + 30 )) "$BUILD/tools/pktgen/amil-pktgen" -l "$PG_CPU" --no-huge -m 512 \
    --no-pci --file-prefix "amil-e2e-pg-$$-$n" --log-level=lib.eal:error \
    --vdev "net_memif0,role=client,socket-abstract=no,socket=$sock" -- \
    --centers configs/centers.example --dst-ip 198.18.0.1 --count "$count" --rate "$rate" \
    --retries 0 --ack-timeout 500 --no-live --json "$work/pg-$n.json" \
    >"$work/pg-$n.log" 2>&1 || true
  kill -INT "$dp_pid" 2>/dev/null || true
  wait "$dp_pid" 2>/dev/null || true
  dp_pid=""
  [ -f "$work/pg-$n.json" ] || { echo '{"error": "no result"}'; return 1; }
  python3 - "$work/pg-$n.json" "$rate" "$work/pg-$n.log" "$CRITERION" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1])); rate = int(sys.argv[2]); log = open(sys.argv[3]).read()
strict = sys.argv[4] != "loss"
m_busy = re.search(r"tx queue full (\d+) times", log)
m_skip = re.search(r"pacing slots skipped (\d+)", log)
if not m_busy or not m_skip:      # the generator did not finish its run
    print(json.dumps({"rate": rate, "pass": False, "error": "no generator summary",
                      "log_tail": log.strip().splitlines()[-3:]}))
    sys.exit(1)
busy, skipped = int(m_busy.group(1)), int(m_skip.group(1))
ok = (r["lost"] == 0 and r["mismatched"] == 0 and r["unexpected"] == 0
      and (busy == 0 or not strict) and r["tx_pps"] >= 0.98 * rate)
print(json.dumps({"rate": rate, "pass": ok, "sent": r["sent"], "acked": r["acked"],
                  "lost": r["lost"], "ring_full": busy, "pace_skipped": skipped,
                  "tx_pps": r["tx_pps"], "ack_pps": r["ack_pps"], "latency_ns": r["latency_ns"]}))
sys.exit(0 if ok else 1)
PY
}

echo "== no-drop rate ($CRITERION criterion): binary search in [$LO, $HI] pps, $STEPS steps of ${SECS}s"
lo=$LO; hi=$HI
for _ in $(seq "$STEPS"); do
  mid=$(( (lo + hi) / 2 ))
  if out=$(trial "$mid" "$SECS"); then lo=$mid; verdict=pass; else hi=$mid; verdict=FAIL; fi
  echo "  $verdict $out"
done
ndr=$lo
echo "no-drop rate: $ndr pps (next failing: $hi pps)"

echo "== latency at 10/50/90 % of the no-drop rate, $(( SECS * 2 ))s each"
for pct in 10 50 90; do
  rate=$(( ndr * pct / 100 ))
  out=$(trial "$rate" $(( SECS * 2 ))) || true
  python3 - "$pct" "$out" <<'PY'
import json, sys
pct = sys.argv[1]; r = json.loads(sys.argv[2]); l = r.get("latency_ns", {})
us = lambda k: f"{l.get(k, 0) / 1000:.1f}"
print(f"  {pct:>2}% ({r['rate']} pps): pass={r['pass']} lost={r.get('lost')} ring_full={r.get('ring_full')} {r.get('error', '')}"
      f"tx {r.get('tx_pps')} pps, "
      f"p50 {us('p50')} us, p90 {us('p90')} us, p99 {us('p99')} us, p99.9 {us('p999')} us, "
      f"max {us('max')} us")
PY
done
