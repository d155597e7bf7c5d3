#!/usr/bin/env bash
# Build the Amil appliance disk image: Debian 12 (bookworm), the amil
# package, systemd-boot on a UEFI system partition, a serial console.
# One command, no loop devices, no containers (images/README.md):
#
#   images/build.sh [options]                  as root
#
# Options:
#   --out DIR          where amil.raw, amil.qcow2 and manifest.txt go
#                      (default images/out); the work files go to DIR/work
#   --deb FILE         install this amil_*.deb (default: build one with
#                      tests/package/check-deb.sh)
#   --dataplane MODE   virtio (default): DPDK drives the NIC at --port
#                      through uio_pci_generic/vfio-pci with 512 hugepages;
#                      af_packet: the data plane serves on kernel interface
#                      eth0 through AF_PACKET, without hugepages
#   --port PCI         the data-plane NIC for --dataplane virtio
#                      (default 0000:00:03.0, the boot test's virtio NIC)
#   --centers FILE     install FILE as /etc/amil/centers (default: the
#                      packaged one, which lists no center)
#   --no-autologin     lock the serial console behind a login (default:
#                      root is logged in on ttyS0; there is no network login)
#   --mirror URL       Debian mirror (default http://deb.debian.org/debian;
#                      a snapshot.debian.org URL pins every package version)
#   -h, --help         this help
#
# Steps: mmdebstrap (variant apt, mode root, into a directory) with the
# kernel, systemd, systemd-boot's EFI binary and the amil package; the
# appliance settings; the package manifest (dpkg-query -W) into
# /usr/share/amil/manifest.txt and next to the image; the root file system
# with mkfs.ext4 -d; the EFI system partition with mkfs.vfat + mtools
# (systemd-boot, kernel, initrd); both into a GPT disk written by sfdisk
# (dd at the partitions' offsets); qcow2 by qemu-img convert.  Prints the
# sizes and the build time.
# Exit: 0 built, 1 a step failed (named), 2 bad usage or missing tool.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
out=$src/images/out
deb=""
dataplane=virtio
port=0000:00:03.0
centers=""
autologin=1
mirror=${AMIL_IMAGE_MIRROR:-http://deb.debian.org/debian}
suite=bookworm

say() { printf 'images/build: %s\n' "$*"; }
die() { printf 'images/build: %s\n' "$2" >&2; exit "$1"; }

while [ $# -gt 0 ]; do
  case "$1" in
  --out) out=$2; shift 2 ;;
  --deb) deb=$2; shift 2 ;;
  --dataplane) dataplane=$2; shift 2 ;;
  --port) port=$2; shift 2 ;;
  --centers) centers=$2; shift 2 ;;
  --no-autologin) autologin=0; shift ;;
  --mirror) mirror=$2; shift 2 ;;
  -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die 2 "unknown argument $1 (see --help)" ;;
  esac
done
case "$dataplane" in virtio | af_packet) ;; *) die 2 "--dataplane must be virtio or af_packet" ;; esac
[ -z "$centers" ] || [ -r "$centers" ] || die 2 "cannot read --centers $centers"
[ "$(id -u)" -eq 0 ] || die 2 "must run as root (mmdebstrap --mode=root, files owned by root in the image)"

# The Debian 12 tools this needs (tools/install-deps.sh installs them).
for t in mmdebstrap mkfs.ext4 mkfs.vfat mmd mcopy sfdisk qemu-img dpkg-deb; do
  command -v "$t" >/dev/null ||
    die 2 "$t not found: apt-get install mmdebstrap e2fsprogs dosfstools mtools fdisk qemu-utils dpkg"
done

start=$(date +%s)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$out/work
rm -rf "$work"
mkdir -p "$work"
rootfs=$work/rootfs

# 1. The package.
if [ -z "$deb" ]; then
  say "building the amil package (tests/package/check-deb.sh)"
  OUT="$work" "$src/tests/package/check-deb.sh" >"$work/check-deb.log" 2>&1 ||
    { tail -n 30 "$work/check-deb.log"; die 1 "tests/package/check-deb.sh failed (log: $work/check-deb.log)"; }
  deb=$(ls "$work"/amil_*_amd64.deb | head -n 1)
fi
[ -r "$deb" ] || die 2 "no package $deb"
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
say "package $(basename "$deb")"

# The NIC drivers the package recommends are part of the appliance (it is
# installed without Recommends so nothing else comes along).
recommends=$(dpkg-deb -f "$deb" Recommends | tr -d ' ' | tr ',' ' ')

# 2. The root file system.  Variant apt: Essential packages and apt, then
# only what is listed here and their dependencies.
pkgs=linux-image-amd64,systemd,systemd-sysv,udev,kmod,initramfs-tools,systemd-boot-efi,iproute2,less
# The apt sources the appliance keeps (updates come from Debian).
sources=$work/sources.list
{
  echo "deb $mirror $suite main"
  case "$mirror" in
  *snapshot.debian.org*) ;;   # a snapshot pins versions: no moving suites
  *)
    echo "deb $mirror $suite-updates main"
    echo "deb http://deb.debian.org/debian-security $suite-security main"
    ;;
  esac
} >"$sources"

kernel_args="console=tty0 console=ttyS0,115200 net.ifnames=0 rw"

say "mmdebstrap $suite ($(tr '\n' ' ' <"$sources"| sed 's/ *$//'))"
mmdebstrap --variant=apt --mode=root --format=directory \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-include=/usr/share/doc/amil/*' \
  --include="$pkgs" \
  --customize-hook="copy-in '$deb' /tmp" \
  --customize-hook="chroot \"\$1\" apt-get install -y --no-install-recommends /tmp/$(basename "$deb") $recommends" \
  --customize-hook="rm -f \"\$1\"/tmp/$(basename "$deb")" \
  "$suite" "$rootfs" "$sources" >"$work/mmdebstrap.log" 2>&1 ||
  { tail -n 40 "$work/mmdebstrap.log"; die 1 "mmdebstrap failed (log: $work/mmdebstrap.log)"; }

# 3. Appliance settings.
echo amil >"$rootfs/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tamil\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
# Every disk written from the image gets its own machine id at first boot.
: >"$rootfs/etc/machine-id"
rm -f "$rootfs/var/lib/dbus/machine-id"
ln -sf /usr/share/zoneinfo/Etc/UTC "$rootfs/etc/localtime"
# No periodic apt runs on an appliance (updates are new images or apt by hand).
for u in apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$u"
done

if [ "$autologin" = 1 ]; then
  # The serial console is the operator's interface: whoever reaches it has
  # the hardware.  There is no network login.
  mkdir -p "$rootfs/etc/systemd/system/serial-getty@ttyS0.service.d"
  cat >"$rootfs/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
# Amil appliance image: root on the serial console without a password.
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF
fi

if [ -n "$centers" ]; then
  install -m 0640 -o root -g "$(chroot "$rootfs" getent group amil | cut -d: -f3)" "$centers" "$rootfs/etc/amil/centers"
fi

case "$dataplane" in
virtio)
  # The NIC at $port belongs to DPDK (amil-bind-nics at boot); the
  # packaged 512 hugepages and EAL arguments stay.
  printf '\n# Appliance image: the data-plane NIC.\n%s\n' "$port" >>"$rootfs/etc/amil/ports"
  ;;
af_packet)
  sed -i 's/^AMIL_HUGEPAGES=.*/AMIL_HUGEPAGES=0/' "$rootfs/etc/amil/hugepages.conf"
  sed -i 's/^AMIL_EAL_ARGS=.*/AMIL_EAL_ARGS="-l 0-1 --file-prefix amil --no-pci --no-huge -m 512 --vdev net_af_packet0,iface=eth0"/' \
    "$rootfs/etc/amil/dataplane.env"
  ;;
esac

# 4. The manifest: every package and version in the image.
mkdir -p "$rootfs/usr/share/amil"
{
  echo "# Amil appliance image $(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ): dpkg-query -W"
  echo "# amil package sha256 $(sha256sum "$deb" | cut -d' ' -f1); sources:"
  sed 's/^/#   /' "$sources"
  chroot "$rootfs" dpkg-query -W -f '${Package}\t${Version}\t${Architecture}\n'
} >"$rootfs/usr/share/amil/manifest.txt"
cp "$rootfs/usr/share/amil/manifest.txt" "$out/manifest.txt"

# 5. Kernel and initrd go to the ESP (systemd-boot reads only the ESP).
kver=$(basename "$(ls -d "$rootfs"/lib/modules/* | sort -V | tail -n 1)")
[ -f "$rootfs/boot/vmlinuz-$kver" ] && [ -f "$rootfs/boot/initrd.img-$kver" ] ||
  die 1 "no kernel or initrd for $kver in the image"
efi=$rootfs/usr/lib/systemd/boot/efi/systemd-bootx64.efi
[ -f "$efi" ] || die 1 "no systemd-bootx64.efi in the image (systemd-boot-efi)"

# 6. The root file system image.
root_uuid=$(cat /proc/sys/kernel/random/uuid)
echo "UUID=$root_uuid / ext4 defaults,errors=remount-ro 0 1" >"$rootfs/etc/fstab"
used_mib=$(( $(du -sxm "$rootfs" | cut -f1) ))
# Room for the ledger (64 MiB segments) and logs: a disk written from the
# image can be grown (growpart/resize2fs) for more.
root_mib=$(( used_mib * 13 / 10 + 768 ))
say "root file system: ${used_mib} MiB used, ${root_mib} MiB partition"
rm -f "$work/root.ext4"
mkfs.ext4 -q -F -L amil-root -U "$root_uuid" -d "$rootfs" "$work/root.ext4" "${root_mib}M" >/dev/null ||
  die 1 "mkfs.ext4 -d failed"

# 7. The EFI system partition.
esp_mib=128
rm -f "$work/esp.vfat"
mkfs.vfat -C -F 32 -n AMIL-ESP "$work/esp.vfat" $((esp_mib * 1024)) >/dev/null || die 1 "mkfs.vfat failed"
cat >"$work/loader.conf" <<EOF
default amil.conf
timeout 0
editor no
EOF
cat >"$work/amil.conf" <<EOF
title   Amil appliance (Debian 12, Linux $kver)
linux   /amil/vmlinuz
initrd  /amil/initrd.img
options root=UUID=$root_uuid $kernel_args
EOF
export MTOOLS_SKIP_CHECK=1
img=$work/esp.vfat
mmd -i "$img" ::/EFI ::/EFI/BOOT ::/EFI/systemd ::/loader ::/loader/entries ::/amil
mcopy -i "$img" "$efi" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$img" "$efi" ::/EFI/systemd/systemd-bootx64.efi
mcopy -i "$img" "$work/loader.conf" ::/loader/loader.conf
mcopy -i "$img" "$work/amil.conf" ::/loader/entries/amil.conf
mcopy -i "$img" "$rootfs/boot/vmlinuz-$kver" ::/amil/vmlinuz
mcopy -i "$img" "$rootfs/boot/initrd.img-$kver" ::/amil/initrd.img

# 8. The disk: GPT, ESP then root, each at a MiB boundary.
sector=512
esp_start=2048
esp_sectors=$((esp_mib * 2048))
root_start=$((esp_start + esp_sectors))
root_sectors=$((root_mib * 2048))
total_sectors=$((root_start + root_sectors + 2048))
raw=$out/amil.raw
rm -f "$raw" "$out/amil.qcow2"
truncate -s $((total_sectors * sector)) "$raw"
sfdisk -q "$raw" <<EOF >/dev/null || die 1 "sfdisk failed"
label: gpt
unit: sectors
start=$esp_start, size=$esp_sectors, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="ESP"
start=$root_start, size=$root_sectors, type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name="amil-root"
EOF
dd if="$work/esp.vfat" of="$raw" bs=1M seek=$((esp_start / 2048)) conv=notrunc,sparse status=none
dd if="$work/root.ext4" of="$raw" bs=1M seek=$((root_start / 2048)) conv=notrunc,sparse status=none
qemu-img convert -f raw -O qcow2 -c "$raw" "$out/amil.qcow2" || die 1 "qemu-img convert failed"

end=$(date +%s)
mib() { echo "$(( $(stat -c %s "$1") / 1048576 )) MiB"; }
alloc() { echo "$(( $(du -k "$1" | cut -f1) / 1024 )) MiB"; }
say "image $raw: $(mib "$raw") (allocated $(alloc "$raw"))"
say "image $out/amil.qcow2: $(alloc "$out/amil.qcow2")"
say "manifest $out/manifest.txt: $(grep -vc '^#' "$out/manifest.txt") packages; kernel $kver; data plane $dataplane"
say "build time $((end - start)) s"
rm -rf "$rootfs"
