#!/usr/bin/env bash
# kill -9 soak: a tiny CoRA run (a tiny LLM pretrained on the split's titles, an MF run,
# checkpoints after every epoch) is killed with SIGKILL at N random moments (default 20) and resumed each time; then it runs
# to the end. Its metrics.json must equal an uninterrupted run's, key for key.
#   bash scripts/soak.sh [kills] [split dir]      (default split: data/default, made when missing)
# Prints each kill (seconds after start, the epoch the checkpoint held) and the verdict; exit 1 on
# any difference or when a resume fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cora=${CORA_BIN:-$root/build/cora}
kills=${1:-20}
data=${2:-}
if [ -z "$data" ]; then
  [ -f "$root/data/default/train.tsv" ] || bash "$root/scripts/default_data.sh" > /dev/null
  data=$root/data/default
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$cora" pretrain --config "$root/configs/pretrain/tiny.json" --out "$work/llm" --set data.dir="$data" > /dev/null 2>&1
"$cora" train --config "$root/configs/ml1m/mf.json" --out "$work/mf" --set data.dir="$data" \
  --set cf.dim=16 --set train.epochs=2 --set train.min_epochs=0 --set log_level=warn > /dev/null
cat > "$work/cora.json" <<JSON
{"method": "cora", "data": {"dir": "$data"}, "cf": {"run": "$work/mf", "dim": 16},
 "llm": {"dir": "$work/llm"},
 "cora": {"n_queries": 2, "layers": 1, "heads": 2, "intermediate": 64, "rank": 4, "alpha": 8},
 "train": {"seed": 0, "lr": 1e-3, "warmup_steps": 2, "min_lr": 1e-4, "batch_size": 8,
           "iterations": 6, "epochs": 12, "patience": 12, "eval_batch_size": 256, "valid_limit": 512,
           "selection_metric": "auc", "valid_split": "valid_small", "checkpoint_every_s": 0},
 "threads": 1, "log_level": "warn"}
JSON
start=$SECONDS
"$cora" train --config "$work/cora.json" --out "$work/clean" > /dev/null 2>&1
clean_s=$((SECONDS - start))
echo "soak: uninterrupted run ${clean_s}s; killing a second run $kills times at random moments"
resume=()
for ((k = 1; k <= kills; k++)); do
  [ -f "$work/killed/metrics.json" ] && { echo "soak: the run finished before kill $k"; break; }
  # 1 s to a fifth of an uninterrupted run: kills land in start-up, training steps, evaluations
  # and checkpoint writes, and the run still moves forward between them.
  delay=$(awk -v s="$RANDOM" -v m="$clean_s" 'BEGIN { srand(s); printf "%.2f", 1 + rand() * (m / 5) }')
  "$cora" train --config "$work/cora.json" --out "$work/killed" "${resume[@]}" > "$work/k$k.log" 2>&1 &
  pid=$!
  sleep "$delay"
  kill -9 "$pid" 2> /dev/null || true
  rc=0; wait "$pid" || rc=$?
  resume=(--resume)
  epoch=$(sed -n 's/.*"epoch": *\(-\?[0-9]*\).*/\1/p' "$work/killed/ckpt/progress.json" 2> /dev/null | head -1 || true)
  if ((rc != 137)) && [ ! -f "$work/killed/metrics.json" ]; then
    echo "soak: kill $k: the run exited $rc before the kill:" >&2; cat "$work/k$k.log" >&2; exit 1
  fi
  echo "soak: kill $k after ${delay}s (exit $rc), checkpoint at epoch ${epoch:-none}"
done
"$cora" train --config "$work/cora.json" --out "$work/killed" "${resume[@]}" > /dev/null 2>&1
/usr/bin/python3 - "$work/clean/metrics.json" "$work/killed/metrics.json" <<'PY'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
drop = {"seconds", "elapsed_s", "train_seconds"}
a = {k: v for k, v in a.items() if k not in drop}
b = {k: v for k, v in b.items() if k not in drop}
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k): print(f"soak: {k}: uninterrupted {a.get(k)} vs killed {b.get(k)}")
    sys.exit(1)
print(f"soak: identical metrics.json after the kills (test auc {a['test']['auc']}, uauc {a['test']['uauc']})")
PY
