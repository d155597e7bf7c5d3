#!/usr/bin/env bash
# Benchmark: failure detection of the control plane in a 5-node namespace
# cluster (issue "Control plane I"), LAN profile.
#
#   bench/cp-detect-bench.sh [TRIALS] [LOSS_SECONDS]     (default 20, 600)
#   BUILD=build-x bench/cp-detect-bench.sh 10 60
#
# Five amil-controlplane daemons, each in its own network namespace on a
# veth joined to a bridge (198.18.1.1-5/24), seeded by nodes 1 and 2.  For
# each trial one member (rotating among 3, 4, 5) fails and the time from the
# failure to its `nodedown` event is read from the other members' event
# logs (their own CLOCK_REALTIME timestamps, same host clock): "first" is the
# first member to declare it dead, "all" the last of the four.
#   stop : SIGSTOP (the process hangs, its sockets stay open), then SIGCONT
#   cut  : nftables drops everything in and out of its namespace, then lifted
#   kill : kill -9, then restarted
# After each trial the cluster must be whole again (every member's live view,
# asked with amilctl, has all five alive) and then settle SETTLE seconds
# (default 2: Lifeguard's local-health scores, raised by the previous
# failure's suspicions and refutations, fall back) before the next one, so
# each failure meets a steady cluster, as a real one does.  Then the loss run: nftables drops 10 % of all
# packets between the appliances, both ways, on every node, for
# LOSS_SECONDS; every nodedown in that window is a false one.
# Root only (namespaces, nftables).  Everything is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
TRIALS=${1:-20}
LOSS_SECS=${2:-600}
BUILD=${BUILD:-build-bench}
[ "$(id -u)" -eq 0 ] || { echo "needs root (network namespaces, nftables)" >&2; exit 1; }

tools/install-deps.sh >/dev/null
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" controlplane/amil-controlplane controlplane/amilctl >/dev/null
CP=$BUILD/controlplane/amil-controlplane
CTL=$BUILD/controlplane/amilctl

work=$(mktemp -d /tmp/amil-cpbench.XXXXXX)
id=$$
ns() { echo "amil-cpb-$id-$1"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -KILL "$p" 2>/dev/null || true; done
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
  ip link add "acb${id}n$i" type veth peer name "acb${id}b$i"
  ip link set "acb${id}n$i" netns "$(ns $i)"
  ip link set "acb${id}b$i" netns "$(ns br)"
  ip -n "$(ns br)" link set "acb${id}b$i" master br0 up
  ip -n "$(ns $i)" link set lo up
  ip -n "$(ns $i)" addr add "198.18.1.$i/24" dev "acb${id}n$i"
  ip -n "$(ns $i)" link set "acb${id}n$i" up
  echo "$($CP keygen --keys "$work/k$i") $i node$i" >>"$work/allow.txt"
done

declare -A pid_of
start() {  # start node $1
  local i=$1
  ip netns exec "$(ns $i)" "$CP" run --node-id "$i" --name "node$i" \
    --listen "tcp://198.18.1.$i:7200" --keys "$work/k$i" --allow-list "$work/allow.txt" \
    --seed 1@tcp://198.18.1.1:7200 --seed 2@tcp://198.18.1.2:7200 \
    --run-dir "$work/run$i" --event-log "$work/ev$i.jsonl" >"$work/out$i" 2>&1 &
  pid_of[$i]=$!
  pids+=($!)
}
for i in 1 2 3 4 5; do start "$i"; done

# waiter.py: wait until a condition holds in the event logs or via the
# members' view, print the detection times.
cat >"$work/wait.py" <<'PY'
import json, os, sys, time
work, mode = sys.argv[1], sys.argv[2]

def events(i):
    try:
        with open(f"{work}/ev{i}.jsonl") as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:
        return []

def last_state(i, who):
    st = None
    for e in events(i):
        if e["node_id"] == who:
            st = {"nodeup": "alive", "unsuspect": "alive", "suspect": "suspect",
                  "nodedown": "dead", "left": "left"}.get(e["type"], st)
    return st

deadline = time.time() + float(sys.argv[3])
if mode == "down":        # victim t0_ns observers...
    victim, t0 = int(sys.argv[4]), int(sys.argv[5])
    obs = [int(x) for x in sys.argv[6:]]
    while time.time() < deadline:
        got = {}
        for o in obs:
            for e in events(o):
                if e["type"] == "nodedown" and e["node_id"] == victim and e["at_ns"] >= t0:
                    got[o] = e["at_ns"] - t0
                    break
        if len(got) == len(obs):
            print(min(got.values()) / 1e6, max(got.values()) / 1e6)
            sys.exit(0)
        time.sleep(0.02)
    print("timeout", file=sys.stderr); sys.exit(1)
elif mode == "whole":     # every node sees every other alive (its live view)
    import subprocess
    ctl, nodes = os.environ["CTL"], [int(x) for x in sys.argv[4:]]
    def view(o):
        try:
            r = subprocess.run([ctl, "--run-dir", f"{work}/run{o}", "--json", "nodes"],
                               capture_output=True, text=True, timeout=5)
            return {n["id"]: n["state"] for n in json.loads(r.stdout)["nodes"]}
        except Exception:
            return {}
    while time.time() < deadline:
        if all(view(o).get(w) == "alive" for o in nodes for w in nodes if w != o):
            sys.exit(0)
        time.sleep(0.05)
    sys.exit(1)
elif mode == "count":     # nodedown and suspect events in [t0, t1)
    t0, t1 = int(sys.argv[4]), int(sys.argv[5])
    down = sus = 0
    for o in range(1, 6):
        for e in events(o):
            if t0 <= e["at_ns"] < t1:
                down += e["type"] == "nodedown"
                sus += e["type"] == "suspect"
    print(down, sus)
PY
py() { CTL="$CTL" python3 "$work/wait.py" "$work" "$@"; }
now_ns() { date +%s%N; }

py whole 30 1 2 3 4 5 || { echo "the cluster did not form" >&2; exit 1; }
echo "== 5 nodes joined"

nft_cut() {   # cut node $1 off completely
  ip netns exec "$(ns $1)" nft add table inet amilbench
  ip netns exec "$(ns $1)" nft add chain inet amilbench input '{ type filter hook input priority 0 ; }'
  ip netns exec "$(ns $1)" nft add chain inet amilbench output '{ type filter hook output priority 0 ; }'
  ip netns exec "$(ns $1)" nft add rule inet amilbench input ip saddr 198.18.1.0/24 drop
  ip netns exec "$(ns $1)" nft add rule inet amilbench output ip daddr 198.18.1.0/24 drop
}
nft_heal() { ip netns exec "$(ns $1)" nft delete table inet amilbench; }

for scenario in stop cut kill; do
  : >"$work/$scenario.txt"
  for t in $(seq "$TRIALS"); do
    v=$(( 3 + (t - 1) % 3 ))
    obs=$(for o in 1 2 3 4 5; do [ "$o" = "$v" ] || printf '%s ' "$o"; done)
    t0=$(now_ns)
    case $scenario in
      stop) kill -STOP "${pid_of[$v]}" ;;
      cut)  nft_cut "$v" ;;
      kill) kill -KILL "${pid_of[$v]}" ;;
    esac
    # shellcheck disable=SC2086
    if r=$(py down 20 "$v" "$t0" $obs); then echo "$r" >>"$work/$scenario.txt"; else echo "  trial $t: not detected in 20 s"; fi
    case $scenario in
      stop) kill -CONT "${pid_of[$v]}" ;;
      cut)  nft_heal "$v" ;;
      kill) wait "${pid_of[$v]}" 2>/dev/null || true; start "$v" ;;
    esac
    py whole 30 1 2 3 4 5 || echo "  trial $t: cluster not whole again within 30 s"
    sleep "${SETTLE:-2}"
  done
done

echo "== detection time, $TRIALS trials each (ms from failure to nodedown; first member / all 4)"
for scenario in stop cut kill; do
  python3 - "$work/$scenario.txt" "$scenario" <<'PY'
import statistics, sys
rows = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
if not rows:
    print(f"  {sys.argv[2]:5}: no detection"); sys.exit(0)
def q(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(p * len(v)))]
first = [r[0] for r in rows]; alln = [r[1] for r in rows]
print(f"  {sys.argv[2]:5}: n={len(rows)}  first p50 {q(first, .5):6.0f} p99 {q(first, .99):6.0f} max {max(first):6.0f}"
      f"   all p50 {q(alln, .5):6.0f} p99 {q(alln, .99):6.0f} max {max(alln):6.0f}   (target p99 <= 1000)")
PY
done

echo "== 10 % random loss between all appliances for ${LOSS_SECS}s"
for i in 1 2 3 4 5; do
  ip netns exec "$(ns $i)" nft add table inet amilloss
  ip netns exec "$(ns $i)" nft add chain inet amilloss input '{ type filter hook input priority 0 ; }'
  ip netns exec "$(ns $i)" nft add chain inet amilloss output '{ type filter hook output priority 0 ; }'
  ip netns exec "$(ns $i)" nft add rule inet amilloss input ip saddr 198.18.1.0/24 numgen random mod 100 '<' 10 drop
  ip netns exec "$(ns $i)" nft add rule inet amilloss output ip daddr 198.18.1.0/24 numgen random mod 100 '<' 10 drop
done
t0=$(now_ns)
sleep "$LOSS_SECS"
t1=$(now_ns)
for i in 1 2 3 4 5; do ip netns exec "$(ns $i)" nft delete table inet amilloss; done
read -r down sus < <(py count 0 "$t0" "$t1")
echo "  false nodedown: $down (target 0); suspicions raised and refuted: $sus"
