#!/usr/bin/env bash
# End-to-end smoke run on the shared ML-1M split with tiny models (about a minute): pretrain a
# tiny LLM, train MF, train and evaluate CoRA with configs/tiny_cora.json, then re-evaluate.
# Used by ctest (test "smoke"); skips when ../shared is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cora=${1:-$root/build/cora}
cd "$root"
[ -f ../shared/data/ml-1m-collm/train.tsv ] || { echo "smoke: no ../shared split; skipped"; exit 0; }
out=$(mktemp -d)
trap 'rm -rf "$out" runs/tiny' EXIT
rm -rf runs/tiny
"$cora" pretrain --config configs/pretrain/tiny.json --out runs/tiny/llm >/dev/null
"$cora" train --config configs/ml1m/mf.json --out runs/tiny/mf --set cf.dim=16 \
  --set train.epochs=3 --set train.min_epochs=0 --set log_level=warn >/dev/null
"$cora" train --config configs/tiny_cora.json --out "$out/cora" > "$out/metrics.json"
"$cora" eval --run "$out/cora" --split test > "$out/eval.json"
python3 - "$out" <<'PY'
import json, math, sys
d = sys.argv[1]
m, e = json.load(open(f"{d}/metrics.json")), json.load(open(f"{d}/eval.json"))
assert m["method"] == "cora" and m["selection_metric"] == "auc", m
assert math.isfinite(m["test"]["auc"]) and m["test"]["n_rows"] == 7331, m["test"]
assert abs(e["auc"] - m["test"]["auc"]) < 1e-12, (e["auc"], m["test"]["auc"])
print(f"smoke: CoRA tiny test AUC {m['test']['auc']:.4f}, UAUC {m['test']['uauc']:.4f}: OK")
PY
