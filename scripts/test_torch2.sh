#!/usr/bin/env bash
# The whole test suite against libtorch 2.6: Debian trixie's libtorch-dev (GCC 14, Python 3.13's
# python3-torch 2.6 for torchrun) in a cached trixie root made with mmdebstrap. A copy of the tree
# (tracked and untracked, not ignored) is built there with ccache and ctest runs every group;
# ../shared is bind-mounted read-only when it exists. /proc and /dev are mounted for the run and
# unmounted on every exit.
#
# Usage: scripts/test_torch2.sh [--cuda] [ctest args...]      (as root: mmdebstrap and chroot)
#   --cuda             against libtorch-cuda-dev 2.6 (contrib; CUDA 12.4 + NCCL) instead: every CUDA and
#                      NCCL line compiles and links, and the suite runs on the CPU path (no GPU here).
#                      Its cuDNN comes from non-free's nvidia-cudnn, an installer that downloads from
#                      NVIDIA: a local equivs package stands in for it (nvcc 12.4 comes from
#                      nvidia-cuda-toolkit, for Caffe2's CMake), and the link resolves
#                      libcudnn.so.9 from $CORA_CUDNN_DIR (default: the CUDA toolkit's lib dir).
#   CORA_TRIXIE_ROOT   the root (default ~/.cache/cora/trixie-torch2, -cuda); kept between runs
# Exit codes: ctest's; 77 when the root cannot be made here (no root privileges or no Debian
# archive): the suite did not run, which is reported, not hidden.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cuda=0
if [ "${1:-}" = --cuda ]; then cuda=1; shift; fi
pkgs=(build-essential cmake ninja-build ccache pkg-config git libopenblas0-openmp
      libsentencepiece-dev nlohmann-json3-dev libspdlog-dev libcli11-dev libgtest-dev zlib1g-dev
      libssl-dev wordnet-base python3 libpcre2-dev libutf8proc-dev)
if ((cuda)); then
  ROOT=${CORA_TRIXIE_ROOT:-${HOME:-/root}/.cache/cora/trixie-torch2-cuda}
  pkgs+=(equivs)
  components="main contrib non-free"
  cudnn_dir=${CORA_CUDNN_DIR:-$(dirname "$(find /usr/local/cuda*/ -name 'libcudnn.so.9' 2>/dev/null | head -1)")}
  [ -f "$cudnn_dir/libcudnn.so.9" ] || { echo "test_torch2: no libcudnn.so.9 (CORA_CUDNN_DIR); skipped" >&2; exit 77; }
else
  ROOT=${CORA_TRIXIE_ROOT:-${HOME:-/root}/.cache/cora/trixie-torch2}
  pkgs+=(libtorch-dev python3-torch libgloo-dev)
  components="main"
fi
stamp="${pkgs[*]} cuda=$cuda"
((cuda)) && stamp+=" libtorch-cuda-dev nvidia-cuda-toolkit libgloo-cuda-dev libnccl-dev"  # installed by the hook below

if [ "$(id -u)" -ne 0 ]; then echo "test_torch2: needs root (mmdebstrap, chroot); skipped" >&2; exit 77; fi
if [ ! -f "$ROOT/.cora-root" ] || [ "$(cat "$ROOT/.cora-root")" != "$stamp" ]; then
  command -v mmdebstrap >/dev/null || "$src/scripts/setup.sh" mmdebstrap
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  echo "test_torch2: making the trixie root $ROOT from $mirror (~3 minutes, ~2 GB)" >&2
  rm -rf "$ROOT.tmp"
  mkdir -p "$(dirname "$ROOT")"
  hook=()
  if ((cuda)); then  # after the packages: the cuDNN stand-in, then libtorch-cuda-dev
    ctl=$(mktemp)
    printf '%s\n' 'Section: misc' 'Priority: optional' 'Standards-Version: 4.6.2' 'Package: nvidia-cudnn' \
      'Version: 9.0.0.312~cuda12' 'Provides: libcudnn-dev, libcudnn.so, libcudnn.so.9' \
      'Description: stand-in for the nvidia-cudnn installer (no download)' \
      ' libcudnn.so.9 is resolved at link time from the host CUDA toolkit.' >"$ctl"
    hook=(--customize-hook="cp $ctl \"\$1/tmp/cudnn.ctl\"" --customize-hook='chroot "$1" sh -c "cd /tmp &&
      equivs-build cudnn.ctl && dpkg -i nvidia-cudnn_*.deb &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libtorch-cuda-dev nvidia-cuda-toolkit libgloo-cuda-dev libnccl-dev"')
  fi
  if ! mmdebstrap --variant=apt --components="$components" --include="$(IFS=,; echo "${pkgs[*]}")" \
      "${hook[@]}" trixie "$ROOT.tmp" "$mirror" >"$ROOT.log" 2>&1; then
    tail -5 "$ROOT.log" >&2
    rm -rf "$ROOT.tmp"
    echo "test_torch2: could not make the trixie root (log: $ROOT.log); skipped" >&2
    exit 77
  fi
  echo "$stamp" >"$ROOT.tmp/.cora-root"
  rm -rf "$ROOT"
  mv "$ROOT.tmp" "$ROOT"
fi

mounted=()
cleanup() {
  local m
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    m=${mounted[i]}
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "test_torch2: could not unmount $m" >&2
  done
}
trap cleanup EXIT
mount_in() {  # mount_in <what> <where under the root> [mount args...]; 77 when this machine can't
  local where="$ROOT$2"
  mkdir -p "$where"
  if ! mount "${@:3}" "$1" "$where"; then
    echo "test_torch2: cannot mount $1 in the root here; skipped" >&2
    exit 77
  fi
  mounted+=("$where")
}
mount_in proc /proc -t proc
mount_in /dev /dev --bind
((cuda)) && mount_in "$cudnn_dir" /opt/cudnn --bind -o ro
if [ -d "$src/../shared" ]; then
  mount_in "$(cd "$src/../shared" && pwd)" /work/shared --bind -o ro
  mount -o remount,bind,ro "$ROOT/work/shared" 2>/dev/null || true
fi

# The tree as git sees it (tracked + untracked, not ignored); build/ is kept. Files are staged,
# then only those whose bytes changed replace the root's copy (with a new mtime, so ninja rebuilds
# exactly them: an unpacked old mtime would look older than the kept objects); vanished ones go.
stage="$ROOT/work/.stage"
rm -rf "$stage"
mkdir -p "$stage" "$ROOT/work/cora"
(cd "$src" && git ls-files -z --cached --others --exclude-standard |
  tar --null --ignore-failed-read -cf - -T - 2>/dev/null) | tar -xf - -C "$stage"
(cd "$stage" && find . -type f -print0) | while IFS= read -r -d '' f; do
  if ! cmp -s "$stage/$f" "$ROOT/work/cora/$f"; then
    mkdir -p "$(dirname "$ROOT/work/cora/$f")"
    cp "$stage/$f" "$ROOT/work/cora/$f" && touch "$ROOT/work/cora/$f"
  fi
done
(cd "$ROOT/work/cora" && find . -path ./build -prune -o -type f -print0) | while IFS= read -r -d '' f; do
  [ -e "$stage/$f" ] || rm -f "$ROOT/work/cora/$f"
done
rm -rf "$stage"

ver=$(chroot "$ROOT" dpkg-query -W -f='${Version}' "$( ((cuda)) && echo libtorch-cuda-dev || echo libtorch-dev)")
echo "test_torch2: libtorch $ver, $(chroot "$ROOT" g++ --version | head -1)" >&2
link=() ldpath=""
((cuda)) && link=(-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,/opt/cudnn) ldpath=/opt/cudnn
chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  CCACHE_DIR=/root/.ccache CCACHE_BASEDIR=/work/cora CCACHE_MAXSIZE=3G LD_LIBRARY_PATH="$ldpath" \
  bash -c 'cd /work/cora && cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "${@:1:$0}" >/dev/null &&
           ninja -C build && cd build && ctest --output-on-failure "${@:$0+1}"' "${#link[@]}" "${link[@]}" "$@"
