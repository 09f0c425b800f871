#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) into ${CORA_FUZZ_DIR:-build-fuzz}
# and runs each for a fixed time, starting from the committed seed corpus (copied: new inputs the
# fuzzer finds stay in the build folder). Prints executions per target; any crash, sanitizer
# report, leak or timeout is a finding: its reproducer is kept under build-fuzz/findings and the
# script exits 1.
#   bash scripts/fuzz.sh [seconds per target, default 30] [target ...]
#   bash scripts/fuzz.sh 600 fuzz_config      # one target for 10 minutes
#   CORA_FUZZ_RUNS=1000000 bash scripts/fuzz.sh 900   # each target to 10^6 executions (15 min cap)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CORA_FUZZ_DIR:-$root/build-fuzz}
seconds=${1:-30}
shift || true
"$root/scripts/setup.sh" clang
export CCACHE_BASEDIR="$root" CCACHE_SLOPPINESS=include_file_mtime,include_file_ctime
if [ ! -f "$build/build.ninja" ]; then
  CXX=clang++ CC=clang cmake -S "$root/tests/fuzz" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$root"/tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
mkdir -p "$build/findings"
runs_arg=()
[ -n "${CORA_FUZZ_RUNS:-}" ] && runs_arg=(-runs="$CORA_FUZZ_RUNS")
scratch=${TMPDIR:-/dev/shm}
[ -w "$scratch" ] || scratch=/tmp
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
printf '%-28s %12s %8s %10s\n' target executions seconds corpus
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  cp -n "$root/tests/fuzz/corpus/$t/"* "$corpus/" 2>/dev/null || true
  log="$build/$t.log"
  rc=0
  TMPDIR=$scratch "$build/$t" "$corpus" -max_total_time="$seconds" "${runs_arg[@]}" -timeout=10 \
    -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  [ -n "$secs" ] || secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1 |
    awk -v r="${runs:-0}" '$1 > 0 { printf "%.0f", r / $1 }')
  printf '%-28s %12s %8s %10s\n' "$t" "${runs:-?}" "${secs:-?}" "$(ls "$corpus" | wc -l)"
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "fuzz: FINDING in $t (exit $rc); log: $log" >&2
    grep -E "ERROR|runtime error|SUMMARY|terminate|what\(\)" "$log" | head -20 >&2 || true
  fi
done
rm -f "$scratch"/cora-fuzz-* 2>/dev/null || true
exit $failed
