#!/usr/bin/env bash
# Bind a PCI NIC to vfio-pci for the data plane, or give it back to the kernel.
# Wraps DPDK's dpdk-devbind.py.
#   bind-nic.sh PCI_ADDR                 bind to vfio-pci (loads the module)
#   bind-nic.sh --unbind PCI_ADDR DRIVER give it back to DRIVER (e.g. ixgbe, i40e, ice, mlx5_core)
#   bind-nic.sh --show                   list network devices and their drivers
#   bind-nic.sh --from-ports [FILE]      bind every NIC listed in FILE (default /etc/amil/ports):
#                                        vfio-pci when the IOMMU is on, else uio_pci_generic
# Exit: 0 done (or nothing listed), 1 dpdk-devbind.py missing or a bind failed,
# 2 bad argument or ports line, 3 a listed NIC is not there, 4 vfio-pci asked
# for but there is no IOMMU.  Ports file format: configs/ports.example.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
say() { echo "bind-nic.sh: $*"; }
die() { local rc=$1; shift; echo "bind-nic.sh: $*" >&2; exit "$rc"; }

case "${1:-}" in
  ""|-h|--help) usage; exit 0 ;;
esac
tool=$(command -v dpdk-devbind.py) || die 1 "dpdk-devbind.py not found (apt-get install dpdk)"
pci_re='^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$'

# The IOMMU is on when the kernel made IOMMU groups; vfio-pci needs them
# (its no-IOMMU mode taints the kernel and is no safer than uio).
have_iommu() { [ -n "$(ls -A /sys/kernel/iommu_groups 2>/dev/null)" ]; }

current_driver() {   # PCI address -> driver name, or "" when unbound
  local link=/sys/bus/pci/devices/$1/driver
  [ -e "$link" ] && basename "$(readlink -f "$link")" || true
}

# Bind one NIC and check it took: dpdk-devbind.py only warns (exit 0) when it
# refuses, e.g. for an interface that carries routes.
bind_one() {   # name-as-written, PCI address, driver
  local name=$1 addr=$2 drv=$3 have
  have=$(current_driver "$addr")
  if [ "$have" = "$drv" ]; then
    say "$name ($addr) is already on $drv"
    return 0
  fi
  modprobe "$drv" || die 1 "cannot load kernel module $drv (modprobe $drv)"
  say "binding $name ($addr) to $drv${have:+ (was $have; its kernel interface goes away)}"
  "$tool" --bind="$drv" "$addr" || die 1 "dpdk-devbind.py failed to bind $addr to $drv"
  have=$(current_driver "$addr")
  [ "$have" = "$drv" ] || die 1 "$name ($addr) is still on '${have:-no driver}', not $drv:" \
    "dpdk-devbind.py will not take an interface that has routes (is it the management link?);" \
    "take it down first (ip link set DEV down) or list another NIC"
}

from_ports() {   # ports file
  local file=$1 line lineno=0 n=0 name drv extra addr
  [ -r "$file" ] || die 2 "cannot read ports file $file"
  while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    line=${line%%#*}
    read -r name drv extra <<<"$line" || true
    [ -n "${name:-}" ] || continue
    [ -z "${extra:-}" ] || die 2 "$file:$lineno: expected '<PCI address | interface> [driver]', got '$line'"
    if [[ "$name" =~ $pci_re ]]; then
      addr=$name
      [[ "$addr" =~ ^[0-9a-fA-F]{4}: ]] || addr=0000:$addr
      addr=${addr,,}
      [ -e "/sys/bus/pci/devices/$addr" ] || die 3 "$file:$lineno: no PCI device $addr on this machine (see bind-nic.sh --show)"
    elif [[ "$name" =~ ^[A-Za-z0-9_.:-]{1,15}$ ]]; then
      [ -e "/sys/class/net/$name" ] || die 3 "$file:$lineno: no network interface '$name' (already bound to DPDK? then list its PCI address; see bind-nic.sh --show)"
      [ -e "/sys/class/net/$name/device" ] || die 3 "$file:$lineno: '$name' is not a PCI NIC (virtual interface?): run the data plane on it with net_af_packet instead"
      addr=$(readlink -f "/sys/class/net/$name/device")
      # virtio-net hangs off a virtioN device whose parent is the PCI function.
      [[ "$(basename "$addr")" == virtio* ]] && addr=$(dirname "$addr")
      addr=$(basename "$addr")
      [[ "$addr" =~ $pci_re ]] || die 3 "$file:$lineno: '$name' is on bus device $addr, not PCI"
    else
      die 2 "$file:$lineno: '$name' is neither a PCI address like 0000:03:00.0 nor an interface name"
    fi
    case "${drv:-auto}" in
      auto)
        if have_iommu; then drv=vfio-pci; else
          drv=uio_pci_generic
          say "no IOMMU (no /sys/kernel/iommu_groups): using uio_pci_generic for $name;" \
              "for vfio-pci turn on VT-d/AMD-Vi in the firmware and intel_iommu=on or amd_iommu=on on the kernel command line"
        fi ;;
      vfio-pci)
        have_iommu || die 4 "$file:$lineno: $name asks for vfio-pci but there is no IOMMU" \
          "(turn on VT-d/AMD-Vi and intel_iommu=on / amd_iommu=on, or write uio_pci_generic or auto)" ;;
      uio_pci_generic) ;;
      *) die 2 "$file:$lineno: driver must be auto, vfio-pci or uio_pci_generic, got '$drv'" ;;
    esac
    bind_one "$name" "$addr" "$drv"
    n=$((n + 1))
  done <"$file"
  if [ "$n" -eq 0 ]; then
    say "no NICs listed in $file: nothing to bind (the data plane can still use net_af_packet)"
  else
    say "$n NIC(s) from $file ready for DPDK"
  fi
}

case "$1" in
  --show) exec "$tool" --status-dev net ;;
  --unbind)
    [ $# -eq 3 ] && [[ "$2" =~ $pci_re ]] || die 2 "usage: --unbind PCI_ADDR DRIVER"
    say "binding $2 to $3"
    exec "$tool" --bind="$3" "$2" ;;
  --from-ports)
    from_ports "${2:-/etc/amil/ports}"
    exit 0 ;;
esac
[[ "$1" =~ $pci_re ]] || die 2 "'$1' is not a PCI address like 0000:03:00.0"
have_iommu || echo "bind-nic.sh: warning: no IOMMU (no /sys/kernel/iommu_groups): vfio-pci will refuse the device;" \
  "use --from-ports with uio_pci_generic, or turn on intel_iommu=on / amd_iommu=on" >&2
modprobe vfio-pci
say "binding $1 to vfio-pci (its kernel interface goes away)"
exec "$tool" --bind=vfio-pci "$1"
