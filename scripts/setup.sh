#!/usr/bin/env bash
# Installs cora's build and runtime packages from Debian, only those missing (idempotent).
# Extra package names given as arguments are installed the same way (e.g. the default dataset's R).
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache pkg-config libtorch-dev libopenblas0-openmp
      libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libgtest-dev zlib1g-dev libssl-dev
      wordnet-base python3 libgloo-dev python3-torch libpcre2-dev libutf8proc-dev "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
