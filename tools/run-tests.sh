#!/usr/bin/env bash
# Every test: installs what is missing, builds, runs the unit and integration
# tests (release build), then the unit tests again under ASan + UBSan.
# Ends with one line "N passed, N failed" (Google Test cases over all runs)
# and exits nonzero on any failure, build failures included.
#
#   tools/run-tests.sh              # what CI runs (.ci/run)
#   SKIP_ASAN=1 tools/run-tests.sh  # quicker local run
set -uo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

status=0
dirs=()
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() {   # dir, meson setup args..., -- meson test args...
  local dir=$1; shift
  local setup=() test=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do setup+=("$1"); shift; done
  [ $# -gt 0 ] && shift
  test=("$@")
  echo "== $dir: build"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "${setup[@]}" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; status=1; return; }
  fi
  if ! ninja -C "$dir" -j "$jobs" >"$dir.build.log" 2>&1; then
    grep -E "error|FAILED" "$dir.build.log" | head -40
    status=1
    dirs+=("$dir")
    return
  fi
  rm -f "$dir"/*.xml
  echo "== $dir: test"
  meson test -C "$dir" --num-processes "$jobs" --print-errorlogs "${test[@]}" || status=1
  dirs+=("$dir")
}

# Leftovers from an interrupted earlier run must not fail this one.
rm -rf /var/run/dpdk/amil-test-* 2>/dev/null

run_suite build-test --buildtype=release -Dtests=true -- --suite unit --suite integration
if [ "${SKIP_ASAN:-0}" != 1 ]; then
  # DPDK's EAL keeps some allocations until exit by design: leak checking
  # stays on for our code, with EAL's own start-up allocations suppressed.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1}
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
  run_suite build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -- --suite unit
fi

if [ "${SKIP_FUZZ:-0}" != 1 ]; then
  # Every parser of untrusted bytes, fuzzed for a bounded time (libFuzzer).
  export CC=clang CXX=clang++
  run_suite build-fuzz --buildtype=debug -Dfuzz=true -Dtests=false -- --suite fuzz
  unset CC CXX
fi

python3 tools/test-summary.py "${dirs[@]}"
rc=$?
[ $status -eq 0 ] && [ $rc -eq 0 ]
