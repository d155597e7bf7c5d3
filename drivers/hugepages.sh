#!/usr/bin/env bash
# Reserve and mount 2 MiB hugepages for amil-dataplane (real NICs), or show /
# clear them.  Wraps DPDK's dpdk-hugepages.py.
#   hugepages.sh PAGES                 reserve PAGES x 2 MiB and mount hugetlbfs at /dev/hugepages
#   hugepages.sh --from-config [FILE]  the same, PAGES from AMIL_HUGEPAGES= in FILE
#                                      (default /etc/amil/hugepages.conf; 0 = reserve none)
#   hugepages.sh --show                show reservations and mounts
#   hugepages.sh --clear               unmount and release
# Exit: 0 done, 1 dpdk-hugepages.py missing or the kernel refused, 2 bad
# argument or setting, 3 fewer pages than asked (memory too fragmented).
# On a NUMA machine PAGES is reserved on every node.
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
  ""|-h|--help) usage; exit 0 ;;
esac
tool=$(command -v dpdk-hugepages.py) || { echo "hugepages.sh: dpdk-hugepages.py not found (apt-get install dpdk)" >&2; exit 1; }
case "$1" in
  --show) exec "$tool" --show ;;
  --clear) "$tool" --unmount; exec "$tool" --clear ;;
  --from-config)
    conf=${2:-/etc/amil/hugepages.conf}
    [ -r "$conf" ] || { echo "hugepages.sh: cannot read $conf" >&2; exit 2; }
    # Read the one setting rather than sourcing the file: it is operator
    # text, and a typo should be named, not executed.
    pages=$(sed -n 's/^[[:space:]]*AMIL_HUGEPAGES[[:space:]]*=[[:space:]]*"\{0,1\}\([^"#[:space:]]*\)"\{0,1\}.*$/\1/p' "$conf" | tail -n 1)
    [ -n "$pages" ] || { echo "hugepages.sh: $conf: no AMIL_HUGEPAGES=N line" >&2; exit 2; }
    [[ "$pages" =~ ^[0-9]+$ ]] || { echo "hugepages.sh: $conf: AMIL_HUGEPAGES must be a number of 2 MiB pages, got '$pages'" >&2; exit 2; }
    if [ "$pages" -eq 0 ]; then
      echo "hugepages.sh: AMIL_HUGEPAGES=0 in $conf: reserving none (the data plane must run with --no-huge)"
      exit 0
    fi
    set -- "$pages" ;;
esac
[[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ] || { echo "hugepages.sh: PAGES must be a positive integer, got '$1'" >&2; exit 2; }
[ -d /sys/kernel/mm/hugepages/hugepages-2048kB ] || {
  echo "hugepages.sh: this kernel has no 2 MiB hugepages (/sys/kernel/mm/hugepages/hugepages-2048kB missing);" \
       "use af_packet with --no-huge (docs/packaging.md)" >&2; exit 1; }
echo "hugepages.sh: reserving $1 x 2 MiB pages ($(( $1 * 2 )) MiB) and mounting /dev/hugepages"
# dpdk-hugepages.py exits non-zero itself ("Unable to set pages (N instead
# of M)") when the kernel hands out fewer pages than asked.
if ! "$tool" --pagesize 2M --reserve "$(( $1 * 2 ))M" --mount; then
  got=$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages 2>/dev/null || echo 0)
  echo "hugepages.sh: got $got of $1 pages: memory is too fragmented or too small;" \
       "reserve them at boot instead (kernel command line hugepages=$1) or lower AMIL_HUGEPAGES" >&2
  exit 3
fi
"$tool" --show
