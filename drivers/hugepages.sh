#!/usr/bin/env bash
# Reserve and mount 2 MiB hugepages for amil-dataplane (real NICs), or show /
# clear them.  Wraps DPDK's dpdk-hugepages.py.
#   hugepages.sh PAGES      reserve PAGES x 2 MiB and mount hugetlbfs at /dev/hugepages
#   hugepages.sh --show     show reservations and mounts
#   hugepages.sh --clear    unmount and release
set -euo pipefail
tool=$(command -v dpdk-hugepages.py) || { echo "hugepages.sh: dpdk-hugepages.py not found (apt-get install dpdk)" >&2; exit 1; }
case "${1:-}" in
  --show) exec "$tool" --show ;;
  --clear) "$tool" --unmount; exec "$tool" --clear ;;
  ""|-h|--help) sed -n '2,7p' "$0"; exit 0 ;;
esac
[[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ] || { echo "hugepages.sh: PAGES must be a positive integer, got '$1'" >&2; exit 2; }
echo "hugepages.sh: reserving $1 x 2 MiB pages ($(( $1 * 2 )) MiB) and mounting /dev/hugepages"
"$tool" --pagesize 2M --reserve "$(( $1 * 2 ))M" --mount
"$tool" --show
