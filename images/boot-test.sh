#!/usr/bin/env bash
# Boot test of the Amil appliance image (issue 7), as root:
#
#   images/boot-test.sh                      build a test image, then boot it
#   IMAGE=out/amil.qcow2 images/boot-test.sh boot an image built with
#                                            --centers holding the test center
#
# In qemu (-cpu max; KVM when /dev/kvm is usable, else TCG; OVMF firmware),
# with a virtio NIC on a tap device in a network namespace of the host
# (198.18.0.2/24 there; the appliance's data plane is 198.18.0.1), and the
# serial console on a pipe (log: $WORK/serial-*.log):
#   boot 1: first boot prints the identity; both services start; on the
#           console `amilctl status` reports health healthy and the data
#           plane up; amil-donate from the namespace gets a signed ACCEPTED
#           from this appliance's node id, then DUPLICATE for the
#           retransmit; the ledger verifies;
#   boot 2: no new identity (same node id and public key), both services
#           start again, the ledger still holds the donation (verify, and
#           the same donation is a DUPLICATE).
# The image is never written: both boots run on a qcow2 overlay.  Everything
# (qemu, namespace, work directory) is removed on exit, also on failure or
# interruption (KEEP=1 keeps the work directory).
# Environment: IMAGE, DEB (amil_*.deb; default: build one), CENTER and
# CENTER_KEY (the test center the image lists; defaults match the image this
# script builds), BOOT_TIMEOUT (s per boot, default 300; 900 under TCG),
# WORK (work directory).
# Exit: 0 passed, 1 failed, 77 skipped (not root, no qemu or OVMF).
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
CENTER=${CENTER:-1001}
CENTER_KEY=${CENTER_KEY:-000102030405060708090a0b0c0d0e0f}
fails=0
t0=$(date +%s)
say() { printf 'boot-test: %s\n' "$*"; }
pass() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
skip() { say "$* : skipped"; exit 77; }

[ "$(id -u)" -eq 0 ] || skip "needs root (network namespace, tap device)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (apt-get install qemu-system-x86)"
command -v qemu-img >/dev/null || skip "no qemu-img (apt-get install qemu-utils)"
ovmf_code="" ovmf_vars=""
for d in /usr/share/OVMF; do
  [ -f $d/OVMF_CODE_4M.fd ] && ovmf_code=$d/OVMF_CODE_4M.fd ovmf_vars=$d/OVMF_VARS_4M.fd
done
[ -n "$ovmf_code" ] || skip "no OVMF firmware (apt-get install ovmf)"

work=${WORK:-$(mktemp -d /tmp/amil-boot.XXXXXX)}
mkdir -p "$work"
ns=amilboot$$
tap=amiltap0
qpid="" catpid=""

stop_vm() {
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill "$qpid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$qpid" 2>/dev/null
  fi
  [ -z "$qpid" ] || wait "$qpid" 2>/dev/null
  qpid=""
  exec 3>&- 2>/dev/null
  if [ -n "$catpid" ]; then kill "$catpid" 2>/dev/null; wait "$catpid" 2>/dev/null; catpid=""; fi
}
cleanup() {
  stop_vm
  ip netns del "$ns" 2>/dev/null
  if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# The image: the one given, else built here with the test center.
image=${IMAGE:-}
if [ -z "$image" ]; then
  printf '# boot test center (images/boot-test.sh)\n%s %s\n' "$CENTER" "$CENTER_KEY" >"$work/centers"
  args=(--out "$work/image" --centers "$work/centers")
  [ -z "${DEB:-}" ] || args+=(--deb "$DEB")
  say "building the image: images/build.sh ${args[*]}"
  "$src/images/build.sh" "${args[@]}" | sed 's/^/  /'
  [ "${PIPESTATUS[0]}" -eq 0 ] || { fail "images/build.sh"; exit 1; }
  image=$work/image/amil.qcow2
  DEB=${DEB:-$(ls "$work"/image/work/amil_*.deb 2>/dev/null | head -n 1)}
fi
[ -r "$image" ] || { fail "no image $image"; exit 1; }
image=$(cd "$(dirname "$image")" && pwd)/$(basename "$image")

# amil-donate for the host side: from the package when there is one, else
# from a build directory or the PATH.
donate=""
if [ -n "${DEB:-}" ] && [ -r "$DEB" ]; then
  dpkg-deb -x "$DEB" "$work/pkg" && donate=$work/pkg/usr/bin/amil-donate
fi
for c in "$src"/build*/client/amil-donate "$(command -v amil-donate 2>/dev/null)"; do
  [ -n "$donate" ] && break
  [ -x "$c" ] && donate=$c
done
[ -n "$donate" ] || skip "no amil-donate (give DEB= or build the tree)"
printf '%s\n' "$CENTER_KEY" >"$work/center.key"
chmod 0600 "$work/center.key"

# -cpu max with KVM when it can run the firmware: a nested hypervisor may
# refuse an MSR of -cpu max (IA32_ARCH_CAPABILITIES: qemu aborts at once) or
# fail to emulate OVMF's first instructions ("KVM internal error"); then
# TCG.  The probe boots OVMF alone until its boot manager speaks.
accel=tcg cpu=max
if [ -w /dev/kvm ] && [ -r /dev/kvm ]; then
  cp "$ovmf_vars" "$work/probe-vars.fd"
  for c in max max,-arch-capabilities; do
    (timeout 15 qemu-system-x86_64 -nodefaults -display none -machine q35 -accel kvm -cpu $c -m 256 \
      -drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
      -drive if=pflash,format=raw,file="$work/probe-vars.fd" -serial file:"$work/probe.log" \
      >"$work/probe-qemu.log" 2>&1; :) 2>/dev/null &
    ppid=$!
    for _ in $(seq 1 28); do
      grep -aq BdsDxe "$work/probe.log" 2>/dev/null && break
      kill -0 $ppid 2>/dev/null || break
      grep -q 'KVM internal error' "$work/probe-qemu.log" && break
      sleep 0.5
    done
    kill $ppid 2>/dev/null; wait $ppid 2>/dev/null
    if grep -aq BdsDxe "$work/probe.log" 2>/dev/null; then accel=kvm cpu=$c; break; fi
    say "KVM with -cpu $c cannot run OVMF here: $(grep -m1 -E 'error|internal' "$work/probe-qemu.log")"
  done
  rm -f "$work/probe.log" "$work/probe-qemu.log" "$work/probe-vars.fd"
fi
timeout_s=${BOOT_TIMEOUT:-$([ $accel = kvm ] && echo 300 || echo 900)}
say "image $image ($accel, -cpu $cpu, ${timeout_s} s per boot)"

qemu-img create -q -f qcow2 -F qcow2 -b "$image" "$work/disk.qcow2" || { fail "qemu-img create overlay"; exit 1; }
cp "$ovmf_vars" "$work/vars.fd"

# The host side of the appliance's virtio NIC.
ip netns add "$ns" || { fail "ip netns add"; exit 1; }
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev "$tap" mode tap || { fail "tap device"; exit 1; }
ip -n "$ns" addr add 198.18.0.2/24 dev "$tap"
ip -n "$ns" link set "$tap" up

log=""
boot() {   # boot N: start qemu with its console on $work/serial-N.log
  log=$work/serial-$1.log
  rm -f "$work/con.in" "$work/con.out"
  mkfifo "$work/con.in" "$work/con.out"
  : >"$log"
  cat "$work/con.out" >"$log" &
  catpid=$!
  # The NIC at 00:03.0 (the image's /etc/amil/ports), the disk at 00:04.0.
  ip netns exec "$ns" qemu-system-x86_64 -nodefaults -display none -no-reboot \
    -machine q35 -accel $accel -cpu $cpu -smp 2 -m 2048 \
    -drive if=pflash,format=raw,readonly=on,file="$ovmf_code" \
    -drive if=pflash,format=raw,file="$work/vars.fd" \
    -drive if=none,id=d0,file="$work/disk.qcow2",format=qcow2 \
    -device virtio-blk-pci,drive=d0,addr=0x4 \
    -netdev tap,id=n0,ifname=$tap,script=no,downscript=no \
    -device virtio-net-pci,netdev=n0,addr=0x3,mac=52:54:00:a3:11:01 \
    -chardev pipe,id=con,path="$work/con" -serial chardev:con \
    >"$work/qemu-$1.log" 2>&1 &
  qpid=$!
  exec 3>"$work/con.in"
  boot_start=$(date +%s)
}

clean() { tr -d '\r' | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'; }
wait_for() {   # wait_for REGEX SECONDS: 0 once the console log matches
  local deadline=$(($(date +%s) + $2))
  while [ "$(date +%s)" -lt $deadline ]; do
    clean <"$log" | grep -aEq "$1" && return 0
    kill -0 "$qpid" 2>/dev/null || { clean <"$log" | grep -aEq "$1"; return; }
    sleep 1
  done
  return 1
}

ncmd=0
console() {   # console CMD [SECONDS]: run CMD on the serial console; its output in $out, status in $rc
  ncmd=$((ncmd + 1))
  local mark="AMIL-DONE-$ncmd"
  local before
  before=$(wc -l <"$log")
  printf '%s; echo %s=$?\n' "$1" "$mark" >&3
  if ! wait_for "$mark=[0-9]+" "${2:-60}"; then
    out="" rc=999
    return 1
  fi
  out=$(tail -n +"$((before + 1))" "$log" | clean | grep -v "echo $mark=" | sed "/$mark=[0-9]/,\$d")
  rc=$(clean <"$log" | sed -n "s/.*$mark=\([0-9]*\).*/\1/p" | tail -n 1)
}

excerpt() { say "serial console (last ${2:-40} lines of $1):"; clean <"$1" | tail -n "${2:-40}" | sed 's/^/  | /'; }

donate() {   # donate ID: amil-donate from the namespace; its output in $dout
  dout=$(ip netns exec "$ns" "$donate" --server 198.18.0.1 --center "$CENTER" --key-file "$work/center.key" \
    --donation-id "$1" --amount 1000 --currency SAR --attempts 10 --timeout-max-ms 1000 2>&1)
}

services_up() {   # services_up SECONDS N: the console's shell, then both units active
  if ! wait_for 'amil login: root \(automatic login\)' "$1"; then
    fail "boot $2: no login on the serial console within $1 s"
    return 1
  fi
  # The prompt may share its line with kernel messages; the first command
  # is sent again when the shell was not reading yet.
  wait_for 'root@amil:' 60 || { fail "boot $2: no shell prompt on the console"; return 1; }
  sleep 2
  local init="bind 'set enable-bracketed-paste off'; PS1=; dmesg -n 1; stty -echo cols 200; export NO_COLOR=1 SYSTEMD_COLORS=0 SYSTEMD_PAGER=cat"
  console "$init" 30 || console "$init" 60 || { fail "boot $2: the console shell does not answer"; return 1; }
  # systemd stops printing unit status once the console's getty runs, so
  # ask systemd: both Type=notify units are active only after READY=1.
  local deadline=$(($(date +%s) + $1))
  while :; do
    # (its exit status is 0 when any one is active: count the lines)
    console 'systemctl is-active amil-dataplane amil-controlplane'
    [ "$(echo "$out" | grep -cx active)" = 2 ] && break
    if [ "$(date +%s)" -ge $deadline ] || echo "$out" | grep -q failed; then
      fail "boot $2: services not active within $1 s: $(echo $out)"
      console 'systemctl --no-pager status amil-dataplane amil-controlplane amil-bind-nics amil-hugepages | cat; journalctl --no-pager -b -n 40 -u amil-dataplane -u amil-controlplane -u amil-bind-nics -u amil-hugepages | cat' 120
      echo "$out" | sed 's/^/  | /'
      return 1
    fi
    sleep 5
  done
  ready_s=$(($(date +%s) - boot_start))
  pass "boot $2: amil-dataplane and amil-controlplane active ($ready_s s after power on, $accel)"
  console 'journalctl --no-pager -b -o short-monotonic -u amil-dataplane -u amil-controlplane -u amil-bind-nics -u amil-hugepages | grep -E "Started|Finished|READY|ready|bound|uio|hugepages" | cat'
  echo "$out" | tail -n 12 | sed 's/^/  | /'
}

# amilctl status on the console: the node healthy and its data plane up.
# Health "ok" needs another live cluster member; a single appliance reports
# "alone" (no other member alive), which is healthy for it; "degraded"
# means the local data plane stopped answering, and fails.
status_healthy() {
  local tries=0
  while :; do
    console 'amilctl status'
    if [ "$rc" = 0 ] && echo "$out" | grep -Eq '^health +(ok|alone)$' && echo "$out" | grep -Eq '^dataplane +up'; then
      pass "boot $1: amilctl status: $(echo "$out" | grep -E '^health'), dataplane up"
      echo "$out" | sed -n '1,8s/^/  | /p'
      return 0
    fi
    tries=$((tries + 1))
    [ $tries -lt 10 ] || break
    sleep 3
  done
  fail "boot $1: amilctl status (rc $rc) is not healthy with the data plane up"
  echo "$out" | sed -n '1,8s/^/  | /p'
}

poweroff() {
  console 'sync' 30
  printf 'systemctl poweroff\n' >&3
  local deadline=$(($(date +%s) + 90))
  while kill -0 "$qpid" 2>/dev/null && [ "$(date +%s)" -lt $deadline ]; do sleep 1; done
  if kill -0 "$qpid" 2>/dev/null; then fail "boot $1: no power off within 90 s"; else pass "boot $1: powered off"; fi
  stop_vm
}

# ---- boot 1: first boot ----
boot 1
if ! wait_for 'amil-firstboot: allow-list line' "$timeout_s"; then
  fail "boot 1: no first-boot identity on the console within $timeout_s s"
  excerpt "$log" 60
  exit 1
fi
node=$(tr -d '\r' <"$log" | sed -n 's/.*amil-firstboot: node id \([0-9][0-9]*\).*/\1/p' | head -n 1)
pub=$(tr -d '\r' <"$log" | sed -n 's/.*amil-firstboot: public key \(.*\)$/\1/p' | head -n 1)
pass "boot 1: first boot: node id $node, public key $pub"
services_up "$timeout_s" 1 || { excerpt "$log" 60; exit 1; }
status_healthy 1

id=$(( ($(date +%s) % 1000000) * 1000 + $$ % 1000 + 1 ))
donate "$id"
if echo "$dout" | grep -q "donation $id: ACCEPTED.*node $node\( \|\$\)"; then
  pass "amil-donate: $dout"
else
  fail "amil-donate: no ACCEPTED from node $node: $dout"
fi
donate "$id"
if echo "$dout" | grep -q "donation $id: DUPLICATE.*node $node\( \|\$\)"; then
  pass "amil-donate retransmit: $dout"
else
  fail "amil-donate retransmit: no DUPLICATE: $dout"
fi
console 'amil-ledger totals /var/lib/amil/ledger'
if [ "$rc" = 0 ] && echo "$out" | grep -q 'SAR'; then pass "boot 1: amil-ledger totals: $(echo $out)"; else fail "boot 1: amil-ledger totals (rc $rc): $(echo $out)"; fi
boot1_s=$ready_s
poweroff 1

# ---- boot 2: identity and ledger kept ----
boot 2
services_up "$timeout_s" 2 || { excerpt "$log" 60; exit 1; }
if grep -aq 'amil-firstboot: picked node id\|amil-firstboot: created the CURVE' "$log"; then
  fail "boot 2: amil-firstboot made a new identity"
else
  pass "boot 2: amil-firstboot made no new identity"
fi
console '/usr/libexec/amil/amil-firstboot --status'
if echo "$out" | grep -q "node id $node\$" && echo "$out" | grep -qF "public key $pub"; then
  pass "boot 2: same node id $node and public key"
else
  fail "boot 2: identity changed: $(echo $out)"
fi
status_healthy 2
console 'amil-ledger verify /var/lib/amil/ledger'
if [ "$rc" = 0 ]; then pass "boot 2: amil-ledger verify: $(echo $out)"; else fail "boot 2: amil-ledger verify (rc $rc): $(echo $out)"; fi
donate "$id"
if echo "$dout" | grep -q "donation $id: DUPLICATE.*node $node\( \|\$\)"; then
  pass "boot 2: the donation of boot 1 is a DUPLICATE: $dout"
else
  fail "boot 2: the donation of boot 1 is not a DUPLICATE: $dout"
fi
poweroff 2

[ $fails -eq 0 ] || { excerpt "$work/serial-1.log" 30; excerpt "$work/serial-2.log" 30; }
say "$fails failed; services active ${boot1_s} s (first boot) and ${ready_s} s (second boot) after power on ($accel); total $(($(date +%s) - t0)) s"
[ $fails -eq 0 ]
