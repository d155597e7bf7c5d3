#!/usr/bin/env bash
# Build the amil Debian package from a copy of the working tree and check
# what it holds.  Never builds in the source tree: the copy goes to a
# temporary directory (build*/ directories left out), so uncommitted files
# are packaged too and the tree keeps no debian/ build leftovers.
#
#   tests/package/check-deb.sh            build, check, print the .deb's path
#   KEEP=1 tests/package/check-deb.sh     keep the temporary directory
#   OUT=DIR tests/package/check-deb.sh    also copy the .deb into DIR
#
# Checks: dpkg-buildpackage succeeds; dpkg-deb -I (package name, Depends on
# dpdk and the DPDK plugins, conffiles under /etc/amil, maintainer scripts);
# dpkg-deb -c (binaries, units, tmpfiles.d, driver scripts, first-boot
# script, bash completion, no client library); each unit passes
# systemd-analyze verify against the unpacked package; lintian when
# installed (its findings are printed, not fatal).
# Exit: 0 all checks passed, 1 a check failed, 77 skipped (debhelper or
# dpkg-dev missing: apt-get install debhelper dpkg-dev).
set -uo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
fails=0
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

for t in dpkg-buildpackage dh dpkg-deb; do
  command -v "$t" >/dev/null || { echo "check-deb: $t not found (apt-get install debhelper dpkg-dev): skipped"; exit 77; }
done

work=$(mktemp -d /tmp/amil-deb.XXXXXX)
cleanup() { [ "${KEEP:-0}" = 1 ] && echo "check-deb: kept $work" || rm -rf "$work"; }
trap cleanup EXIT

start=$(date +%s)
# Copy the working tree, not HEAD: the packaging files may not be
# committed yet.  tar rather than rsync (not installed on every host).
mkdir "$work/amil"
tar -C "$src" --exclude='./build*' --exclude='./.git' --exclude='./obj-*' \
    --exclude='./debian/amil' --exclude='./debian/.debhelper' --exclude='./debian/tmp' \
    -cf - . | tar -C "$work/amil" -xf - || { echo "check-deb: cannot copy $src"; exit 1; }

echo "check-deb: dpkg-buildpackage -us -uc -b in $work/amil"
if ! (cd "$work/amil" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
        dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1); then
  tail -n 40 "$work/build.log"
  fail "dpkg-buildpackage (log: $work/build.log)"
  KEEP=1
  exit 1
fi
built=$(date +%s)
pass "dpkg-buildpackage in $((built - start)) s"

deb=$(ls "$work"/amil_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || { fail "no amil_*.deb produced"; exit 1; }
echo "check-deb: $(basename "$deb"), $(du -k "$deb" | cut -f1) KiB"

info=$(dpkg-deb -I "$deb")
contents=$(dpkg-deb -c "$deb")
conffiles=$(dpkg-deb -I "$deb" conffiles 2>/dev/null || true)

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = amil ] && pass "Package: amil" || fail "Package is '$(field Package)'"
for dep in dpdk librte-bus-pci23 librte-mempool-ring23 librte-net-af-packet23 libsystemd0 libzmq5 adduser; do
  field Depends | grep -Eq "(^|[ ,])$dep([ ,(]|$)" && pass "Depends: $dep" || fail "Depends lacks $dep"
done
for s in postinst postrm prerm; do
  grep -q " $s " <<<"$info" && pass "maintainer script $s" || fail "no $s in the package"
done

has() {   # path in the data archive
  grep -Eq "[ .]$1( |$)" <<<"$contents" && pass "contains $1" || fail "missing $1"
}
for b in amil-dataplane amil-controlplane amilctl amil-ledger amil-donate amil-pktgen amil-mkpcap; do
  has "/usr/bin/$b"
done
for u in amil-dataplane amil-controlplane amil-hugepages amil-bind-nics amil-firstboot; do
  has "/lib/systemd/system/$u.service"
done
for f in amil-firstboot hugepages.sh bind-nic.sh; do
  has "/usr/libexec/amil/$f"
  grep -E "/usr/libexec/amil/$f\$" <<<"$contents" | grep -q '^-rwxr-xr-x' &&
    pass "$f is executable" || fail "$f is not 0755"
done
has /usr/lib/tmpfiles.d/amil.conf
has /usr/share/bash-completion/completions/amilctl
has /usr/share/doc/amil/packaging.md
for c in dataplane.yaml dataplane.env controlplane.yaml controlplane.env centers allow-list hugepages.conf ports; do
  grep -qx "/etc/amil/$c" <<<"$conffiles" && pass "conffile /etc/amil/$c" || fail "/etc/amil/$c is not a conffile"
done
grep -q 'libamil_client\|amil_client\.h' <<<"$contents" && fail "client library/header shipped" ||
  pass "no client library or header"

# Unpack and look inside: postinst snippets, binaries built with sd_notify,
# and the units against the package's own files.
root="$work/root"
dpkg-deb -x "$deb" "$root"
ctrl="$work/control"
dpkg-deb -e "$deb" "$ctrl"
grep -q 'systemd-tmpfiles --create' "$ctrl/postinst" && pass "postinst creates the tmpfiles.d directories" ||
  fail "postinst does not run systemd-tmpfiles"
grep -q 'adduser .*--system' "$ctrl/postinst" && pass "postinst creates the amil user" || fail "no adduser in postinst"
grep -q 'deb-systemd-helper' "$ctrl/postinst" && pass "postinst enables units" || fail "postinst enables no unit"
grep -q 'deb-systemd-invoke stop' "$ctrl/prerm" && pass "prerm stops the units on removal" ||
  fail "prerm does not stop the units"
if [ -f "$ctrl/preinst" ] && grep -q 'deb-systemd-invoke stop' "$ctrl/preinst"; then
  fail "preinst stops the daemons on upgrade (nothing would start them again)"
else
  pass "upgrades leave the daemons running until postinst try-restart"
fi
for b in amil-dataplane amil-controlplane; do
  # Captured first: grep -q closing the pipe early would fail it (pipefail).
  needed=$(objdump -p "$root/usr/bin/$b" 2>/dev/null)
  grep -q 'NEEDED.*libsystemd' <<<"$needed" &&
    pass "$b links libsystemd (sd_notify)" || fail "$b lacks libsystemd: Type=notify would time out"
done
"$root/usr/bin/amil-controlplane" --help >/dev/null 2>&1 && pass "amil-controlplane --help runs" ||
  fail "amil-controlplane --help"
"$root/usr/bin/amil-dataplane" --help >/dev/null 2>&1 && pass "amil-dataplane --help runs" ||
  fail "amil-dataplane --help"
# The packaged configs must parse.  Both daemons read their YAML first and
# stop at the next step here, before any socket or EAL: the control plane at
# the missing key pair, the data plane at the placeholder centers file
# (which lists no center until the operator adds them).
out=$("$root/usr/bin/amil-controlplane" run --config "$root/etc/amil/controlplane.yaml" --node-id 1 \
        --keys "$work/nokeys" 2>&1)
grep -q "nokeys/curve.key" <<<"$out" && pass "controlplane.yaml parses" || fail "controlplane.yaml: $out"
out=$("$root/usr/bin/amil-dataplane" -- --config "$root/etc/amil/dataplane.yaml" --node-id 1 2>&1)
grep -q "etc/amil/centers: no centers defined" <<<"$out" && pass "dataplane.yaml parses" ||
  fail "dataplane.yaml: $out"

if command -v systemd-analyze >/dev/null; then
  # --root resolves ExecStart= and EnvironmentFile= inside the package.  The
  # units it orders against (sysinit.target, network.target, ...) come from
  # this host's systemd, copied without overwriting the package's; the
  # identity file is written at first boot, so stand one in.
  cp -an /lib/systemd/system/. "$root/lib/systemd/system/" 2>/dev/null
  echo "AMIL_NODE_ID=1" >"$root/etc/amil/identity"
  for u in amil-dataplane amil-controlplane amil-hugepages amil-bind-nics amil-firstboot; do
    if msg=$(systemd-analyze verify --root="$root" "$root/lib/systemd/system/$u.service" 2>&1) &&
       [ -z "$msg" ]; then
      pass "systemd-analyze verify $u.service"
    else
      fail "systemd-analyze verify $u.service: $msg"
    fi
  done
  for u in amil-dataplane amil-controlplane; do
    echo "check-deb: $(systemd-analyze security --offline=yes --root="$root" \
        "$root/lib/systemd/system/$u.service" 2>/dev/null | grep -o 'Overall exposure.*')"
  done
else
  echo "check-deb: systemd-analyze not installed: units not verified"
fi

if command -v lintian >/dev/null; then
  echo "check-deb: lintian (informational):"
  lintian --no-tag-display-limit "$deb" 2>&1 | sed 's/^/  /'
else
  echo "check-deb: lintian not installed: skipped (apt-get install lintian)"
fi

if [ -n "${OUT:-}" ]; then
  mkdir -p "$OUT" && cp "$deb" "$OUT/" && echo "check-deb: copied to $OUT/$(basename "$deb")"
fi
echo "check-deb: $fails failed; build $((built - start)) s, total $(( $(date +%s) - start )) s"
[ "$fails" -eq 0 ]
