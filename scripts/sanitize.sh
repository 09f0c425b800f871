#!/usr/bin/env bash
# Builds the library, the CLI and the test suite with AddressSanitizer + UndefinedBehaviorSanitizer
# (GCC, -DCORA_SANITIZE=ON) into ${CORA_BUILD_DIR:-build-asan} and runs the suite through ctest.
# Any sanitizer report fails the test it happens in (halt_on_error; UBSan does not recover).
# libtorch itself is not instrumented; leak checking is off because libtorch keeps its
# allocator caches and registries alive until exit. Extra arguments go to ctest.
#   bash scripts/sanitize.sh                 # unit + behaviour + shared + dist + smoke
#   bash scripts/sanitize.sh -R unit         # one group
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export CORA_BUILD_DIR=${CORA_BUILD_DIR:-$root/build-asan}
if [ ! -f "$CORA_BUILD_DIR/build.ninja" ]; then
  "$root/scripts/build.sh" -DCORA_SANITIZE=ON
else
  "$root/scripts/build.sh"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:halt_on_error=1:abort_on_error=0:detect_odr_violation=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$CORA_BUILD_DIR"
start=$SECONDS
ctest --output-on-failure -E gpu_prep "$@"
echo "sanitize: ctest took $((SECONDS - start))s" >&2
