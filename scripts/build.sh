#!/usr/bin/env bash
# Configures and builds cora (Release, Ninja, ccache) into ${CORA_BUILD_DIR:-build}.
# Extra arguments go to cmake, e.g. -DCMAKE_PREFIX_PATH=... for a PyTorch wheel's libtorch.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${CORA_BUILD_DIR:-$root/build}
"$root/scripts/setup.sh"
export CCACHE_BASEDIR="$root" CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
if [ ! -f "$build/build.ninja" ] || [ "$#" -gt 0 ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
fi
# CORA_TARGETS="cora" builds the CLI alone (the demo); default: everything, tests included.
targets=()
for t in ${CORA_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "${CORA_JOBS:-$(nproc)}" "${targets[@]}"
