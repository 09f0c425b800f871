#!/usr/bin/env bash
# The embedded default dataset: MovieLens ml-latest-small from Debian's r-cran-dslabs, exported
# as GroupLens CSVs and prepared with configs/data/ml_latest_small.json. Cached under
# ${XDG_CACHE_HOME:-~/.cache}/cora/data (skipped when up to date) and linked as data/default.
# Prints the split directory.
# Usage: scripts/default_data.sh [CORA_BINARY]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cora=${1:-${CORA_BIN:-$root/build/cora}}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cora/data
raw=$cache/ml-latest-small-raw
out=$cache/ml-latest-small
config=$root/configs/data/ml_latest_small.json

"$root/scripts/setup.sh" r-base-core r-cran-dslabs

if [ ! -s "$raw/ratings.csv" ] || [ ! -s "$raw/movies.csv" ]; then
  tmp=$(mktemp -d "$cache/.export.XXXXXX" 2>/dev/null || { mkdir -p "$cache"; mktemp -d "$cache/.export.XXXXXX"; })
  Rscript "$root/scripts/export_dslabs.R" "$tmp" >&2
  rm -rf "$raw"
  mv "$tmp" "$raw"
fi

if [ -s "$out/stats.json" ] && [ "$out/stats.json" -nt "$config" ] && [ "$out/stats.json" -nt "$raw/ratings.csv" ]; then
  echo "default_data: $out is up to date" >&2
else
  "$cora" prepare --format movielens-csv --input "$raw" --out "$out" --config "$config" >/dev/null
fi
# data/default -> the split, so configs can name it ("data": {"dir": "data/default"}).
mkdir -p "$root/data"
ln -sfn "$out" "$root/data/default"
echo "$out"
