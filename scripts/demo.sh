#!/usr/bin/env bash
# The main job, offline on a fresh Debian machine: installs packages, builds cora, prepares the
# embedded default dataset (MovieLens ml-latest-small from r-cran-dslabs), pretrains the demo LLM,
# trains MF, TALLRec and CoRA-MF, evaluates them on the test split, prints the three rows side by
# side and writes runs/demo/report.html (table + SVG charts). Every stage is cached: data and
# models under ${XDG_CACHE_HOME:-~/.cache}/cora, runs under runs/demo (finished runs are reused,
# interrupted ones resume). Per-stage times are printed at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/cora
stages=()
t_all=$(date +%s)
stage() {  # stage NAME COMMAND...
  local t0; t0=$(date +%s)
  echo "== $1" >&2
  "${@:2}"
  stages+=("$(printf '%-22s %5ds' "$1" $(( $(date +%s) - t0 )))")
}

stage "packages" scripts/setup.sh
stage "build" env CORA_TARGETS=cora scripts/build.sh
cora=$root/build/cora
stage "default dataset" scripts/default_data.sh "$cora"

# The demo LLM: rebuilt only when its config, the corpus or the binary changed.
llm=$cache/models/demo-llm
pretrain_llm() {
  local key; key=$(cat configs/pretrain/demo.json data/default/items.tsv | sha256sum | cut -c1-16)
  if [ -f "$llm/pretrain.json" ] && [ "$(cat "$llm/.cora-key" 2>/dev/null)" = "$key" ]; then
    echo "demo LLM: $llm is up to date" >&2
    return
  fi
  local resume=()
  if [ -f "$llm/ckpt/progress.json" ] && [ "$(cat "$llm/.cora-key" 2>/dev/null)" = "$key" ]; then
    resume=(--resume)
  else
    rm -rf "$llm"
  fi
  mkdir -p "$llm"
  echo "$key" > "$llm/.cora-key"
  "$cora" pretrain --config configs/pretrain/demo.json --out "$llm" "${resume[@]}" >/dev/null
}
stage "pretrain demo LLM" pretrain_llm

stage "MF, TALLRec, CoRA-MF" "$cora" table --config configs/tables/demo.json --out runs/demo \
  --set "llm.dir=$llm"
stage "report" "$cora" report --table runs/demo >/dev/null

echo
cat runs/demo/table.md
echo
echo "report: $root/runs/demo/report.html"
echo "stage times:"
printf '  %s\n' "${stages[@]}"
printf '  %-22s %5ds\n' "total" $(( $(date +%s) - t_all ))
