#!/usr/bin/env bash
# End-to-end smoke run on the shared ML-1M split with tiny models (a few minutes): pretrain a
# tiny LLM, train MF, train and evaluate CoRA with configs/tiny_cora.json, then re-evaluate; then
# every method of the paper's table (configs/tables/tiny.json, two seeds) and its HTML report.
# Used by ctest (test "smoke"); exits 77 (ctest: skipped) when ../shared is absent.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cora=${1:-$root/build/cora}
cd "$root"
[ -f ../shared/data/ml-1m-collm/train.tsv ] || { echo "smoke: no ../shared split; skipped"; exit 77; }
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
"$cora" table --config configs/tables/tiny.json --out "$out/table" > /dev/null 2> "$out/table.log" ||
  { cat "$out/table.log" >&2; exit 1; }
"$cora" report --table "$out/table" > /dev/null
python3 - "$out/table" <<'PY'
import csv, sys, xml.etree.ElementTree as ET
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/table.csv")))
names = [r["method"] for r in rows]
assert names == ["MF", "ICL", "TALLRec", "CoLLM-MF", "CoRA-MF", "CoRA-MF, random-init LLM"], names
for r in rows:
    assert r["seeds_done"] == "2" and float(r["auc_mean"]) > 0, r
    if r["method"] != "CoRA-MF":
        assert r["p_auc"] != "", r  # paired t-test against the reference over 2 seeds
html = open(f"{d}/report.html").read()
ET.fromstring(html.split("\n", 1)[1])  # well-formed XHTML (after the doctype line)
assert html.count("<svg") == 14 and all(n in html for n in names)  # 2 per method + 2 bar charts
print("smoke: tiny table (6 methods x 2 seeds) and report: OK")
PY
