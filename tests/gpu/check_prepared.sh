#!/usr/bin/env bash
# The CPU-side parts of scripts/gpu_check.sh, run by ctest ("gpu_prep"): the scripts parse, the
# Python peers compile, scripts/gpu_deps.sh bundles the Debian packages, and CMake configured
# against that bundle takes every dependency from it (as it will on the GPU machine).
# Exit 77 (skipped) when Debian's archive is not reachable or this is not Debian 12.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash -n "$root/scripts/gpu_check.sh" "$root/scripts/gpu_deps.sh" "$root/scripts/test_torch2.sh"
/usr/bin/python3 -m py_compile "$root/tests/gpu/hf_compare.py" "$root/tests/gpu/peer_bench.py"
if ! grep -q '^12' /etc/debian_version 2>/dev/null; then  # e.g. inside test_torch2.sh's trixie root
  echo "check_prepared: the bundle is made from Debian 12 (bookworm) packages; this is $(cat /etc/debian_version 2>/dev/null || echo 'not Debian'); skipped"
  exit 77
fi
if ! bash "$root/scripts/gpu_deps.sh" "$tmp/deb" 2>"$tmp/deps.log"; then
  cat "$tmp/deps.log"
  echo "check_prepared: Debian's archive is not reachable; skipped"
  exit 77
fi
D=$tmp/deb/usr
cmake -S "$root" -B "$tmp/build" -G Ninja -DCMAKE_PREFIX_PATH="$D" -DCMAKE_INCLUDE_PATH="$D/include" \
  -DCMAKE_LIBRARY_PATH="$D/lib/x86_64-linux-gnu" >"$tmp/cmake.log" 2>&1 || { cat "$tmp/cmake.log"; exit 1; }
for v in spdlog_DIR fmt_DIR nlohmann_json_DIR CLI11_DIR GTest_DIR SENTENCEPIECE_LIB SENTENCEPIECE_TRAIN_LIB \
         PCRE2_LIB UTF8PROC_LIB PCRE2_INCLUDE UTF8PROC_INCLUDE; do
  line=$(grep "^$v:" "$tmp/build/CMakeCache.txt" || true)
  case "$line" in
    *"$tmp/deb/"*) ;;
    *) echo "check_prepared: $v does not come from the bundle: ${line:-unset}"; exit 1 ;;
  esac
done
echo "check_prepared: scripts parse, peers compile, $(wc -l <"$tmp/deb/PACKAGES") bundled packages configure cora"
