#!/usr/bin/env bash
# The main job on the default data: builds cora, trains the CF baselines (MF, LightGCN) on the
# paper's ML-1M split beside the repository (DATA=... to use another split directory), and
# prints their test AUC/UAUC. Runs land in runs/demo/ and are reused when complete.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
data=${DATA:-$root/../shared/data/ml-1m-collm}
[ -f "$data/train.tsv" ] || { echo "error: no split at $data (set DATA=...)" >&2; exit 1; }
scripts/build.sh >/dev/null
t0=$(date +%s)
for m in mf lightgcn; do
  dir=runs/demo/$m
  if [ ! -f "$dir/metrics.json" ]; then
    resume=(); [ -f "$dir/ckpt/progress.json" ] && resume=(--resume)
    echo "== training $m on $data" >&2
    build/cora train --config "configs/ml1m/$m.json" --out "$dir" --set "data.dir=$data" \
      "${resume[@]}" >/dev/null
  fi
done
printf '\n%-10s %10s %10s %10s %10s\n' method test_auc test_uauc valid_auc best_epoch
for m in mf lightgcn; do
  python3 -c "import json,sys; j=json.load(open('runs/demo/$m/metrics.json')); \
print('%-10s %10.4f %10.4f %10.4f %10d' % ('$m', j['test']['auc'], j['test']['uauc'], j['valid']['auc'], j['best_epoch']))"
done
echo "(paper, ML-1M test: MF 0.6486/0.6396, LightGCN 0.5858/0.6512; $(( $(date +%s) - t0 ))s)"
