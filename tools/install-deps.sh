#!/usr/bin/env bash
# Install what Amil needs to build, run and test on Debian 12, skipping what
# is already there.  Idempotent; needs root (or sudo) only when something is
# missing.  Debian packages only.
set -euo pipefail

PKGS=(
  build-essential meson ninja-build pkg-config python3
  libdpdk-dev dpdk dpdk-dev          # DPDK 22.11: headers, PMDs, dpdk-testpmd, dpdk-telemetry.py
  libnuma-dev libsodium-dev libyaml-dev libpcap-dev libgtest-dev
  libzmq3-dev                        # control plane: ZeroMQ with CURVE (libsodium)
  libmicrohttpd-dev                  # control plane: Prometheus endpoint
  libsystemd-dev                     # sd_notify for the Type=notify units
  debhelper dpkg-dev fakeroot        # the amil Debian package (tests/package/check-deb.sh)
  mmdebstrap qemu-system-x86 qemu-utils ovmf dosfstools mtools fdisk e2fsprogs
                                     # the appliance image and its boot test (images/)
  iproute2 nftables ethtool          # namespaces, veth, loss, veth offloads for network tests
  clang libclang-rt-14-dev           # fuzzers (libFuzzer) and sanitizer runtimes
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
