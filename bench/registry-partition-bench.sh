#!/usr/bin/env bash
# Benchmark: the cluster registry under partitions and failures (issue
# "Control plane II"), the rows the issue measured for libcluster + Horde.
#
#   bench/registry-partition-bench.sh [TRIALS] [RUNS] [NAMES] [WRITES]
#                                     (default 20, 28, 100000, 1000)
#
# Appliances in network namespaces on a bridge (198.18.3.1-5/24), AP mode,
# LAN profile; partitions are nftables drops between the sides.
#
#  A. 3 appliances, TRIALS times: node 3 cut off from nodes 1 and 2 for
#     PART_MS (default 3000: each side has declared the other dead), the
#     same name registered on both sides (node 1 and node 3), the cut
#     healed; time from the heal until all three hold the name with one
#     and the same owner (Horde: 15 of 20 resolved, 5 lost the name or kept
#     duplicates; target: every heal resolved within 100 ms, no name lost).
#     The loser's owner must have a name_conflict event naming the winner.
#  B. 3 appliances, RUNS times: each registers 100 names; one member (in
#     turn) is killed with SIGKILL; after the grace the survivors must hold
#     every survivor's name and none of the dead one's; it restarts and
#     catches up (Horde: names lost in 2 of 28 runs; target: none, ever).
#  C. 5 appliances: NAMES names registered on node 1 (one batch request),
#     then C_RUNS times (default 5) a 2|3 partition, WRITES new names on each
#     side, heal; time from
#     the heal until every appliance holds the same registry (equal digests;
#     the default 5 s grace, longer than the PART_MS cut)
#     and the bytes the appliances sent each other meanwhile (CURVE message
#     payloads), against the registry's raw size (names + values; target:
#     at most 3x).
# Root only (namespaces, nftables).  Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-20}
RUNS=${2:-28}
NAMES=${3:-100000}
WRITES=${4:-1000}
PART_MS=${PART_MS:-3000}
PHASES=${PHASES:-ABC}          # run only some, e.g. PHASES=C
C_RUNS=${C_RUNS:-5}            # partitions and heals in part C
BUILD=${BUILD:-build-bench}
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 1; }

tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" controlplane/amil-controlplane controlplane/amilctl bench/amil-registry-bench >/dev/null
CP=$BUILD/controlplane/amil-controlplane
CTL=$BUILD/controlplane/amilctl
RB=$BUILD/bench/amil-registry-bench

work=$(mktemp -d /tmp/amil-regpart.XXXXXX)
id=$$
ns() { echo "amil-rpb-$id-$1"; }
declare -A pid_of
cleanup() {
  for p in "${pid_of[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for i in br 1 2 3 4 5; do ip netns del "$(ns $i)" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

echo "== machine"
model=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
echo "cpu: $model; $(nproc) cpus; kernel $(uname -r); load: $(cut -d' ' -f1-3 /proc/loadavg)"

ip netns add "$(ns br)"
ip -n "$(ns br)" link add br0 type bridge
ip -n "$(ns br)" link set br0 up
: >"$work/allow.txt"
for i in 1 2 3 4 5; do
  ip netns add "$(ns $i)"
  ip link add "arp${id}n$i" type veth peer name "arp${id}b$i"
  ip link set "arp${id}n$i" netns "$(ns $i)"
  ip link set "arp${id}b$i" netns "$(ns br)"
  ip -n "$(ns br)" link set "arp${id}b$i" master br0 up
  ip -n "$(ns $i)" link set lo up
  ip -n "$(ns $i)" addr add "198.18.3.$i/24" dev "arp${id}n$i"
  ip -n "$(ns $i)" link set "arp${id}n$i" up
  echo "$($CP keygen --keys "$work/k$i") $i node$i" >>"$work/allow.txt"
done
cp "$work/allow.txt" "$work/allow5.txt"
head -3 "$work/allow5.txt" >"$work/allow3.txt"

start() {  # start node $1 of a cluster of $2 [grace ms, default 2000]
  local i=$1 n=$2 grace=${3:-2000}
  rm -rf "$work/run$i"
  ip netns exec "$(ns $i)" "$CP" run --node-id "$i" --name "node$i" \
    --listen "tcp://198.18.3.$i:7200" --keys "$work/k$i" --allow-list "$work/allow$n.txt" \
    --seed 1@tcp://198.18.3.1:7200 --seed 2@tcp://198.18.3.2:7200 \
    --registry-grace-ms "$grace" \
    --run-dir "$work/run$i" --event-log "$work/ev$i.jsonl" >"$work/out$i" 2>&1 &
  pid_of[$i]=$!
}
stop_all() {
  for i in "${!pid_of[@]}"; do kill -KILL "${pid_of[$i]}" 2>/dev/null || true; wait "${pid_of[$i]}" 2>/dev/null || true; done
  pid_of=()
}
alive_all() {  # every listed node sees every other alive
  local deadline=$(( $(date +%s) + 30 ))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    local ok=1
    for o in "$@"; do
      v=$("$CTL" --run-dir "$work/run$o" --json nodes 2>/dev/null | python3 -c '
import json,sys
try: print(" ".join(str(n["id"]) for n in json.load(sys.stdin)["nodes"] if n["state"]=="alive"))
except Exception: print("")') || v=""
      for w in "$@"; do [[ " $v " == *" $w "* ]] || ok=0; done
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
runs() { for i in "$@"; do printf '%s ' "$work/run$i"; done; }
cut_off() {  # node $1 drops everything to/from the addresses $2...
  local i=$1; shift
  ip netns exec "$(ns $i)" nft add table inet amilpart
  ip netns exec "$(ns $i)" nft add chain inet amilpart input '{ type filter hook input priority 0 ; }'
  ip netns exec "$(ns $i)" nft add chain inet amilpart output '{ type filter hook output priority 0 ; }'
  for o in "$@"; do
    ip netns exec "$(ns $i)" nft add rule inet amilpart input ip saddr "198.18.3.$o" drop
    ip netns exec "$(ns $i)" nft add rule inet amilpart output ip daddr "198.18.3.$o" drop
  done
}
heal() { for i in "$@"; do ip netns exec "$(ns $i)" nft delete table inet amilpart 2>/dev/null || true; done; }
q() {  # quantile $2 of the numbers in file $1
  python3 -c 'import sys
v=sorted(float(l) for l in open(sys.argv[1]) if l.strip())
print("%.1f" % v[min(len(v)-1, int(float(sys.argv[2])*len(v)))] if v else "-")' "$1" "$2"
}

# ---- A. 2|1 heal with the same name on both sides ------------------------
if [[ $PHASES == *A* || $PHASES == *B* ]]; then
for i in 1 2 3; do start "$i" 3; done
alive_all 1 2 3 || { echo "the 3-node cluster did not form" >&2; exit 1; }
fi
if [[ $PHASES == *A* ]]; then
echo "== A. partition 2|1, the same name on both sides, heal ($TRIALS trials, cut ${PART_MS} ms)"
: >"$work/heal.txt"
lost=0 unresolved=0 noevent=0
for t in $(seq "$TRIALS"); do
  cut_off 3 1 2; cut_off 1 3; cut_off 2 3
  sleep "$(python3 -c "print($PART_MS/1000)")"
  "$CTL" --run-dir "$work/run1" registry register "split-$t" "left-$t" >/dev/null
  "$CTL" --run-dir "$work/run3" registry register "split-$t" "right-$t" >/dev/null
  heal 1 2 3
  # shellcheck disable=SC2046
  if r=$("$RB" converge 10000 "split-$t" $(runs 1 2 3)); then
    echo "${r%% *}" >>"$work/heal.txt"
    winner=${r#* }
    loser=$([ "$winner" = 1 ] && echo 3 || echo 1)
    sleep 0.2
    grep -q "\"name_conflict\".*\"split-$t\"" "$work/ev$loser.jsonl" 2>/dev/null ||
      grep -q "split-$t.*name_conflict" "$work/ev$loser.jsonl" 2>/dev/null || noevent=$((noevent + 1))
  else
    echo "  trial $t: not resolved in 10 s: $r"
    case "$r" in *-*) lost=$((lost + 1)) ;; *) unresolved=$((unresolved + 1)) ;; esac
  fi
  alive_all 1 2 3 || echo "  trial $t: cluster not whole again"
done
# Every trial's name still there at the end, one owner everywhere (later
# partitions removed no earlier winner for good).
sleep 1
kept=0
for t in $(seq "$TRIALS"); do
  # shellcheck disable=SC2046
  "$RB" converge 2000 "split-$t" $(runs 1 2 3) >/dev/null && kept=$((kept + 1))
done
n=$(wc -l <"$work/heal.txt")
within=$(awk '$1 <= 100' "$work/heal.txt" | wc -l)
echo "  resolved $n of $TRIALS (within 100 ms: $within); not resolved $unresolved; lost the name $lost;" \
     "loser without name_conflict event: $noevent; names of all trials present at the end: $kept of $TRIALS"
echo "  ms from heal to one owner everywhere: p50 $(q "$work/heal.txt" .5) p99 $(q "$work/heal.txt" .99)" \
     "max $(q "$work/heal.txt" 1)   (Horde: 15 of 20 resolved; target: all within 100 ms)"

fi

# ---- B. names kept across a member's failure -----------------------------
if [[ $PHASES == *B* ]]; then
echo "== B. names kept across a member's failure ($RUNS runs, 3 appliances, 100 names each)"
bad_runs=0
for r in $(seq "$RUNS"); do
  for i in 1 2 3; do "$RB" batch "$work/run$i" "r$r-n$i" 100 >/dev/null; done
  # shellcheck disable=SC2046
  "$RB" equal 10000 $(runs 1 2 3) >/dev/null || echo "  run $r: not equal before the failure"
  v=$(( 1 + (r - 1) % 3 ))
  kill -KILL "${pid_of[$v]}"; wait "${pid_of[$v]}" 2>/dev/null || true
  sleep 4            # detection (~0.7 s) + grace (2 s) + a reaping round (0.5 s)
  ok=1
  for o in 1 2 3; do
    [ "$o" = "$v" ] && continue
    "$CTL" --run-dir "$work/run$o" --json registry list >"$work/list.json" || ok=0
    python3 - "$work/list.json" "$r" "$v" <<'PY' || ok=0
import json, sys
names = {e["name"]: e["owner"] for e in json.load(open(sys.argv[1]))["names"]}
r, v = sys.argv[2], int(sys.argv[3])
for i in (1, 2, 3):
    mine = [f"r{r}-n{i}-{k:08d}" for k in range(100)]
    have = sum(1 for n in mine if names.get(n) == i)
    if i != v and have != 100:
        print(f"  run {r}: survivor {i} has {have} of its 100 names"); sys.exit(1)
    if i == v and have != 0:
        print(f"  run {r}: {have} names of the dead node {v} still there after the grace"); sys.exit(1)
PY
  done
  start "$v" 3
  alive_all 1 2 3 || { echo "  run $r: node $v did not rejoin"; ok=0; }
  # shellcheck disable=SC2046
  "$RB" equal 10000 $(runs 1 2 3) >/dev/null || { echo "  run $r: node $v did not catch up"; ok=0; }
  [ "$ok" = 1 ] || bad_runs=$((bad_runs + 1))
done
echo "  runs with a lost (or stale) name: $bad_runs of $RUNS   (Horde: 2 of 28; target: 0)"
fi
stop_all

# ---- C. 5 appliances, NAMES names, 2|3 partition with writes, heal -------
[[ $PHASES == *C* ]] || exit 0
echo "== C. 5 appliances, $NAMES names, partition 2|3 with $WRITES new names on each side, heal"
# The default grace (5 s), longer than the partition: nobody is reaped,
# the heal merges what each side wrote (A and the tests cover a partition
# longer than the grace).
for i in 1 2 3 4 5; do start "$i" 5 5000; done
alive_all 1 2 3 4 5 || { echo "the 5-node cluster did not form" >&2; exit 1; }
"$RB" batch "$work/run1" bulk "$NAMES" | cut -c1-200
# shellcheck disable=SC2046
t=$("$RB" equal 60000 $(runs 1 2 3 4 5)) || { echo "  the $NAMES names did not spread"; exit 1; }
echo "  $NAMES names on every appliance ${t} ms after the request returned"
counters="transport_tx_bytes registry_resent_deltas registry_resent_bytes registry_states_tx registry_batches_tx"
: >"$work/cheal.txt"
for cr in $(seq "$C_RUNS"); do
  for i in 1 2; do cut_off "$i" 3 4 5; done
  for i in 3 4 5; do cut_off "$i" 1 2; done
  sleep "$(python3 -c "print($PART_MS/1000)")"
  "$RB" batch "$work/run1" "left$cr" "$WRITES" >/dev/null
  "$RB" batch "$work/run4" "right$cr" "$WRITES" >/dev/null
  sleep 1
  declare -A c0
  for c in $counters; do
    # shellcheck disable=SC2046
    c0[$c]=$("$RB" sum "$c" $(runs 1 2 3 4 5))
  done
  heal 1 2 3 4 5
  # shellcheck disable=SC2046
  t=$("$RB" equal 60000 $(runs 1 2 3 4 5)) || t=timeout
  # shellcheck disable=SC2046
  b=$(( $("$RB" sum transport_tx_bytes $(runs 1 2 3 4 5)) - ${c0[transport_tx_bytes]} ))
  raw=$(python3 -c "
n, w, r = $NAMES, $WRITES, $cr
raw = sum(len('bulk-%08d' % k) + len('value-%d' % k) for k in range(n))
raw += sum(len('left1-%08d' % k) + len('value-%d' % k) for k in range(w)) * 2 * r
print(raw)")
  line="  heal $cr: every appliance equal after ${t} ms; $b bytes sent (raw size $raw, ratio $(python3 -c "print('%.3f' % ($b / $raw))"))"
  for c in $counters; do
    [ "$c" = transport_tx_bytes ] && continue
    # shellcheck disable=SC2046
    line+="; ${c#registry_} +$(( $("$RB" sum "$c" $(runs 1 2 3 4 5)) - ${c0[$c]} ))"
  done
  echo "$line"
  echo "$t $(python3 -c "print($b / $raw)")" >>"$work/cheal.txt"
  want=$((NAMES + 2 * WRITES * cr))
  for i in 1 2 3 4 5; do
    got=$("$RB" sum registry_names "$work/run$i")
    [ "$got" = "$want" ] || echo "  node $i holds $got names, not $want: LOST"
  done
  sleep 1
done
python3 - "$work/cheal.txt" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
t = sorted(float(r[0]) for r in rows if r[0] != "timeout")
q = sorted(float(r[1]) for r in rows)
if t:
    print(f"  {len(rows)} heals: equal after p50 {t[len(t)//2]:.0f} ms, max {t[-1]:.0f} ms;"
          f" bytes/raw p50 {q[len(q)//2]:.3f}, max {q[-1]:.3f} (target <= 3)"
          + (f"; {len(rows)-len(t)} not equal within 60 s" if len(t) < len(rows) else ""))
PY
for i in 1 2 3 4 5; do
  m=$("$RB" sum registry_memory_bytes "$work/run$i")
  l=$("$RB" sum registry_log_bytes "$work/run$i")
  echo "  node $i: registry $(python3 -c "print('%.1f' % ($m / 1048576))") MiB" \
       "+ delta log $(python3 -c "print('%.1f' % ($l / 1048576))") MiB," \
       "daemon VmRSS $(grep VmRSS "/proc/${pid_of[$i]}/status" | awk '{print $2, $3}')"
done
