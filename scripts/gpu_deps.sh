#!/usr/bin/env bash
# What a GPU machine without Debian's archive lacks to build cora (sentencepiece + protobuf-lite,
# spdlog + fmt, CLI11, nlohmann-json, GoogleTest, zlib, OpenSSL and gloo's headers), as files
# unpacked from Debian bookworm's packages into third_party/deb/ (ignored by git; ~40 MB, carried
# to the device with the tree). Run here, where the archive is reachable; scripts/gpu_check.sh
# points CMake and the loader at it. Usage: scripts/gpu_deps.sh [DEST]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/third_party/deb}
pkgs=(libsentencepiece-dev libsentencepiece0 libprotobuf-lite32 libspdlog-dev libspdlog1.10 libfmt-dev
      libfmt9 libcli11-dev nlohmann-json3-dev libgtest-dev libgmock-dev zlib1g-dev libssl-dev libssl3
      libgloo-dev libpcre2-dev libpcre2-8-0 libutf8proc-dev libutf8proc2)
grep -q '^12' /etc/debian_version 2>/dev/null ||
  { echo "gpu_deps: the package names are Debian 12 (bookworm)'s; run this on bookworm" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "${pkgs[@]}" >/dev/null 2>&1) ||
  { echo "gpu_deps: apt-get download failed (is Debian's archive reachable?)" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest"
for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$dest"; done
ls "$tmp" | sed 's/_.*//' >"$dest/PACKAGES"
echo "gpu_deps: $(wc -l <"$dest/PACKAGES") packages unpacked into $dest ($(du -sh "$dest" | cut -f1))" >&2
