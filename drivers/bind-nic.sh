#!/usr/bin/env bash
# Bind a PCI NIC to vfio-pci for the data plane, or give it back to the kernel.
# Wraps DPDK's dpdk-devbind.py.
#   bind-nic.sh PCI_ADDR                 bind to vfio-pci (loads the module)
#   bind-nic.sh --unbind PCI_ADDR DRIVER give it back to DRIVER (e.g. ixgbe, i40e, ice, mlx5_core)
#   bind-nic.sh --show                   list network devices and their drivers
set -euo pipefail
tool=$(command -v dpdk-devbind.py) || { echo "bind-nic.sh: dpdk-devbind.py not found (apt-get install dpdk)" >&2; exit 1; }
pci_re='^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$'
case "${1:-}" in
  --show) exec "$tool" --status-dev net ;;
  --unbind)
    [ $# -eq 3 ] && [[ "$2" =~ $pci_re ]] || { echo "bind-nic.sh: usage: --unbind PCI_ADDR DRIVER" >&2; exit 2; }
    echo "bind-nic.sh: binding $2 to $3"
    exec "$tool" --bind="$3" "$2" ;;
  ""|-h|--help) sed -n '2,7p' "$0"; exit 0 ;;
esac
[[ "$1" =~ $pci_re ]] || { echo "bind-nic.sh: '$1' is not a PCI address like 0000:03:00.0" >&2; exit 2; }
modprobe vfio-pci
echo "bind-nic.sh: binding $1 to vfio-pci (its kernel interface goes away)"
exec "$tool" --bind=vfio-pci "$1"
